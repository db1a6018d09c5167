//! The token lifecycle: the refresh decision, refresh (RFC 6749 §6) with rotation, revocation
//! (RFC 7009) and introspection (RFC 7662). Sans-IO: `*_request` builds what to send and the
//! other functions read what came back.

use crate::prelude::*;

use serde_json::Value;

use crate::client_auth::AuthContext;
use crate::error::{ConfigError, Error, ErrorCode, InvalidResponse};
use crate::http::{HttpRequest, HttpResponse};
use crate::profile::{ConnectionConfig, KeyValue, Prepared};
use crate::secret::Secret;
use crate::token::{
    self, TokenSet, excerpt, invalid_answer, json_answer, parse_fields, scrubbed_oauth_error,
    unavailable,
};
use crate::token_request;

/// The refresh margin's floor and ceiling when none is configured.
pub const MARGIN_FLOOR_SECS: u64 = 30;
/// See [`MARGIN_FLOOR_SECS`].
pub const MARGIN_CEILING_SECS: u64 = 300;

/// Whether the access token should be refreshed at `now`.
///
/// Due when it expires within the margin: `margin` when given, else a tenth of the lifetime
/// clamped to 30..300 s, and never more than half the lifetime. Never due for an unknown
/// expiry.
pub fn needs_refresh(tokens: &TokenSet, margin: Option<u64>, now: u64) -> bool {
    let Some(expires_at) = tokens.expires_at else {
        return false;
    };
    let lifetime = expires_at.saturating_sub(tokens.obtained_at);
    let margin = margin.unwrap_or_else(|| {
        (lifetime / 10)
            .clamp(MARGIN_FLOOR_SECS, MARGIN_CEILING_SECS)
            .min(lifetime / 2)
    });
    now.saturating_add(margin) >= expires_at
}

/// The refresh request for `tokens`.
pub fn refresh_request(
    config: &Prepared,
    tokens: &TokenSet,
    auth: &AuthContext<'_>,
) -> Result<HttpRequest, Error> {
    let refresh_token = tokens
        .refresh_token
        .as_ref()
        .ok_or(ConfigError::NoRefreshToken)?;
    token_request::refresh(config, refresh_token, auth)
}

/// Reads the refresh response and merges it into `old`: a new refresh token replaces the old
/// one; none keeps it (the same for the ID token); scopes and extras follow the response when
/// it has them. `invalid_grant` and `invalid_token` mean the grant is gone.
pub fn finish_refresh(
    config: &ConnectionConfig,
    old: &TokenSet,
    response: &HttpResponse,
    now: u64,
) -> Result<TokenSet, Error> {
    let refresh_token = old.refresh_token.as_ref().map(Secret::expose);
    let secrets = config.secrets(refresh_token.as_slice());
    let quirks = &config.profile.token_response;
    let fresh = match token::parse_refresh_response(response, &old.scopes, quirks, now, &secrets) {
        Ok(fresh) => fresh,
        Err(Error::ServerSaidNo(error))
            if matches!(
                error.code,
                ErrorCode::InvalidGrant | ErrorCode::InvalidToken
            ) =>
        {
            return Err(Error::ReauthorizationRequired(error));
        }
        Err(error) => return Err(error),
    };
    Ok(TokenSet {
        refresh_token: fresh.refresh_token.or_else(|| old.refresh_token.clone()),
        id_token: fresh.id_token.or_else(|| old.id_token.clone()),
        ..fresh
    })
}

/// The revocation requests for `tokens`: the refresh token first (RFC 7009 §2.1: revoking it
/// may revoke its access tokens too), then the access token.
pub fn revocation_requests(
    config: &Prepared,
    tokens: &TokenSet,
    auth: &AuthContext<'_>,
) -> Result<Vec<HttpRequest>, Error> {
    let mut requests = vec![];
    if let Some(refresh_token) = &tokens.refresh_token {
        requests.push(token_request::revocation(
            config,
            refresh_token,
            "refresh_token",
            auth,
        )?);
    }
    requests.push(token_request::revocation(
        config,
        &tokens.access_token,
        "access_token",
        auth,
    )?);
    Ok(requests)
}

/// Reads one revocation response for `tokens`: 200 is success (RFC 7009 §2.2).
pub fn finish_revocation(
    config: &ConnectionConfig,
    tokens: &TokenSet,
    response: &HttpResponse,
    now: u64,
) -> Result<(), Error> {
    let mut extra = vec![tokens.access_token.expose()];
    extra.extend(tokens.refresh_token.as_ref().map(Secret::expose));
    let secrets = config.secrets(&extra);
    if response.status == 200 {
        return Ok(());
    }
    let fields = parse_fields(response);
    if let Some(error) = unavailable(response, fields.as_ref(), now, &secrets) {
        return Err(error);
    }
    if let Some(error) = fields
        .as_ref()
        .and_then(|fields| scrubbed_oauth_error(fields, &secrets))
    {
        return Err(Error::ServerSaidNo(error));
    }
    Err(Error::InvalidResponse(InvalidResponse {
        status: response.status,
        reason: "revocation answered neither 200 nor an OAuth error".into(),
        excerpt: excerpt(&response.body, &secrets),
    }))
}

/// What introspection says (the WIT `introspection`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Introspection {
    /// `active`
    pub active: bool,
    /// `scope`, split
    pub scopes: Vec<String>,
    /// `client_id`
    pub client_id: Option<String>,
    /// `sub`
    pub subject: Option<String>,
    /// `exp`
    pub expires_at: Option<u64>,
    /// Other members as JSON text.
    pub extras: Vec<KeyValue>,
}

/// The introspection request for `token`.
pub fn introspection_request(
    config: &Prepared,
    token: &Secret,
    hint: Option<&str>,
    auth: &AuthContext<'_>,
) -> Result<HttpRequest, Error> {
    token_request::introspection(config, token, hint, auth)
}

/// Reads the introspection response for `token` (RFC 7662 §2.2).
pub fn finish_introspection(
    config: &ConnectionConfig,
    token: &Secret,
    response: &HttpResponse,
    now: u64,
) -> Result<Introspection, Error> {
    let secrets = config.secrets(&[token.expose()]);
    let mut fields = json_answer(response, &secrets, now)?;
    let Some(Value::Bool(active)) = fields.remove("active") else {
        return Err(invalid_answer(response, "no boolean `active`", &secrets));
    };
    let mut text = |name: &str| match fields.remove(name) {
        Some(Value::String(value)) => Some(value),
        _ => None,
    };
    let scopes = text("scope")
        .map(|s| token::split_scopes(&s))
        .unwrap_or_default();
    let client_id = text("client_id");
    let subject = text("sub");
    let expires_at = fields.remove("exp").and_then(|value| value.as_u64());
    Ok(Introspection {
        active,
        scopes,
        client_id,
        subject,
        expires_at,
        extras: fields
            .into_iter()
            .map(|(name, value)| KeyValue::new(name, value.to_string()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{OAuthError, ServerUnavailable};
    use crate::profile::{Client, ProviderProfile, TokenRequestExtras};

    fn tokens(obtained_at: u64, expires_at: Option<u64>) -> TokenSet {
        TokenSet {
            access_token: Secret::new("at"),
            token_type: "bearer".into(),
            expires_at,
            refresh_token: Some(Secret::new("rt-old")),
            id_token: Some(Secret::new("id-old")),
            scopes: vec!["a".into(), "b".into()],
            obtained_at,
            extras: vec![KeyValue::new("x", "1")],
            dpop_key_thumbprint: None,
        }
    }

    fn config() -> ConnectionConfig {
        ConnectionConfig {
            profile: ProviderProfile::from_json(
                r#"{"token-url": "https://a.example/token", "refresh-url": "https://a.example/refresh?v=2",
                    "revocation-url": "https://a.example/revoke",
                    "token-requests": {"refresh": {"params": [{"name": "scope", "value": "a"}]}}}"#,
            )
            .unwrap(),
            client: Client {
                client_id: "cid".into(),
                client_secret: Some(Secret::new("csecret")),
                auth_method: None,
            },
            redirect_uri: None,
            scopes: vec![],
            authorize_params: vec![],
            token_requests: TokenRequestExtras::default(),
            variables: vec![],
            offline_access: false,
            resources: vec![],
            dpop: false,
        }
    }

    fn json(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![KeyValue::new("Content-Type", "application/json")],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn refresh_decision() {
        // One hour: margin 300 s (a tenth is 360, clamped to the ceiling).
        let hour = tokens(1000, Some(4600));
        assert!(!needs_refresh(&hour, None, 4299));
        assert!(needs_refresh(&hour, None, 4300));
        // Five minutes: a tenth is 30 s (the floor).
        let five = tokens(0, Some(300));
        assert!(!needs_refresh(&five, None, 269));
        assert!(needs_refresh(&five, None, 270));
        // Ten seconds: the floor would exceed half the lifetime; 5 s.
        let ten = tokens(0, Some(10));
        assert!(!needs_refresh(&ten, None, 4));
        assert!(needs_refresh(&ten, None, 5));
        // A configured margin wins; unknown expiry never asks.
        assert!(needs_refresh(&hour, Some(1000), 3600));
        assert!(!needs_refresh(&tokens(0, None), None, u64::MAX));
        assert!(needs_refresh(&hour, None, u64::MAX));
    }

    #[test]
    fn refresh_request_uses_refresh_url_auth_and_extras() {
        let request = refresh_request(
            &config().prepare().unwrap(),
            &tokens(0, Some(10)),
            &AuthContext::without_assertions(),
        )
        .unwrap();
        assert_eq!(request.url, "https://a.example/refresh?v=2");
        assert_eq!(
            String::from_utf8(request.body).unwrap(),
            "grant_type=refresh_token&refresh_token=rt-old&scope=a"
        );
        assert_eq!(
            request.headers[2],
            KeyValue::new(
                "Authorization",
                crate::form::basic_authorization("cid", "csecret")
            )
        );
        let mut no_refresh = tokens(0, Some(10));
        no_refresh.refresh_token = None;
        assert_eq!(
            refresh_request(
                &config().prepare().unwrap(),
                &no_refresh,
                &AuthContext::without_assertions()
            )
            .unwrap_err(),
            Error::Configuration(ConfigError::NoRefreshToken)
        );
    }

    #[test]
    fn rotation_replaces_and_absence_keeps() {
        let old = tokens(0, Some(10));
        let rotated = finish_refresh(
            &config(),
            &old,
            &json(
                200,
                r#"{"access_token":"at2","expires_in":60,"refresh_token":"rt-new","scope":"a"}"#,
            ),
            100,
        )
        .unwrap();
        assert_eq!(rotated.access_token.expose(), "at2");
        assert_eq!(rotated.refresh_token.unwrap().expose(), "rt-new");
        assert_eq!(rotated.id_token.unwrap().expose(), "id-old");
        assert_eq!(rotated.scopes, ["a"]);
        assert_eq!(rotated.expires_at, Some(160));
        assert!(rotated.extras.is_empty());

        let kept = finish_refresh(
            &config(),
            &old,
            &json(200, r#"{"access_token":"at3"}"#),
            100,
        )
        .unwrap();
        assert_eq!(kept.refresh_token.unwrap().expose(), "rt-old");
        assert_eq!(kept.scopes, ["a", "b"]);
        assert_eq!(kept.expires_at, None);
    }

    #[test]
    fn refresh_errors_are_classified() {
        let old = tokens(0, Some(10));
        for code in ["invalid_grant", "invalid_token"] {
            let error = finish_refresh(
                &config(),
                &old,
                &json(400, &format!(r#"{{"error":"{code}"}}"#)),
                1,
            );
            assert_eq!(
                error.unwrap_err(),
                Error::ReauthorizationRequired(OAuthError {
                    code: ErrorCode::parse(code),
                    description: None,
                    uri: None
                })
            );
        }
        assert_eq!(
            finish_refresh(
                &config(),
                &old,
                &json(401, r#"{"error":"invalid_client"}"#),
                1
            )
            .unwrap_err(),
            Error::ServerSaidNo(OAuthError {
                code: ErrorCode::InvalidClient,
                description: None,
                uri: None
            })
        );
        let mut busy = json(429, "{}");
        busy.headers.push(KeyValue::new("Retry-After", "3"));
        assert_eq!(
            finish_refresh(&config(), &old, &busy, 1).unwrap_err(),
            Error::ServerUnavailable(ServerUnavailable {
                status: 429,
                retry_after_seconds: Some(3),
                error: None
            })
        );
        // An echoed refresh token never reaches the excerpt.
        match finish_refresh(&config(), &old, &json(400, "rt-old was bad"), 1).unwrap_err() {
            Error::InvalidResponse(invalid) => assert_eq!(invalid.excerpt, "[redacted] was bad"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn revocation_and_introspection() {
        let requests = revocation_requests(
            &config().prepare().unwrap(),
            &tokens(0, Some(10)),
            &AuthContext::without_assertions(),
        )
        .unwrap();
        assert_eq!(requests.len(), 2);
        assert_eq!(
            String::from_utf8(requests[0].body.clone()).unwrap(),
            "token=rt-old&token_type_hint=refresh_token"
        );
        assert_eq!(
            String::from_utf8(requests[1].body.clone()).unwrap(),
            "token=at&token_type_hint=access_token"
        );
        let (cfg, set) = (config(), tokens(0, Some(10)));
        let revoked = |response: &HttpResponse| finish_revocation(&cfg, &set, response, 0);
        assert_eq!(revoked(&json(200, "")), Ok(()));
        assert!(matches!(
            revoked(&json(400, r#"{"error":"unsupported_token_type"}"#)),
            Err(Error::ServerSaidNo(_))
        ));
        assert!(matches!(
            revoked(&json(503, "")),
            Err(Error::ServerUnavailable(_))
        ));
        let mut no_endpoint = config();
        no_endpoint.profile.revocation_url = None;
        assert_eq!(
            revocation_requests(
                &no_endpoint.prepare().unwrap(),
                &tokens(0, None),
                &AuthContext::without_assertions()
            )
            .unwrap_err(),
            Error::Configuration(ConfigError::MissingEndpoint("revocation-url".into()))
        );

        let active = finish_introspection(
            &cfg,
            &Secret::new("at"),
            &json(
                200,
                r#"{"active":true,"scope":"a b","client_id":"c","sub":"u","exp":99,"iss":"i"}"#,
            ),
            0,
        )
        .unwrap();
        assert_eq!(
            active,
            Introspection {
                active: true,
                scopes: vec!["a".into(), "b".into()],
                client_id: Some("c".into()),
                subject: Some("u".into()),
                expires_at: Some(99),
                extras: vec![KeyValue::new("iss", "\"i\"")],
            }
        );
        assert!(matches!(
            finish_introspection(
                &cfg,
                &Secret::new("at"),
                &json(200, r#"{"active":"yes"}"#),
                0
            ),
            Err(Error::InvalidResponse(_))
        ));
    }
}
