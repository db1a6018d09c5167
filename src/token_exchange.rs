//! OAuth 2.0 Token Exchange (RFC 8693).

use crate::prelude::*;

use crate::client_auth::AuthContext;
use crate::error::{ConfigError, Error};
use crate::http::{HttpRequest, HttpResponse};
use crate::profile::{ConnectionConfig, KeyValue, Prepared, RequestKind, check_resource};
use crate::secret::Secret;
use crate::token::{TokenSet, invalid_answer, parse_token_response};
use crate::token_request::{authenticated_post, push_resources};

/// The RFC 8693 grant type.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// What to exchange (the WIT `exchange-request`).
#[derive(Debug)]
pub struct ExchangeRequest {
    /// `subject_token` (a secret).
    pub subject_token: Secret,
    /// `subject_token_type`.
    pub subject_token_type: String,
    /// `actor_token` (a secret).
    pub actor_token: Option<Secret>,
    /// `actor_token_type`.
    pub actor_token_type: Option<String>,
    /// `requested_token_type`.
    pub requested_token_type: Option<String>,
    /// `audience`, repeated.
    pub audiences: Vec<String>,
    /// `resource`, repeated, after the connection's.
    pub resources: Vec<String>,
    /// The scopes; empty: the connection's effective scopes.
    pub scopes: Vec<String>,
}

/// The token request (RFC 8693 §2.1): `grant_type`, `resource`s (the connection's, then the
/// request's), `audience`s, `scope`, `requested_token_type`, `subject_token` and its type,
/// `actor_token` and its type, then client authentication and the `token-exchange` extras.
pub fn request(
    config: &Prepared,
    exchange: &ExchangeRequest,
    auth: &AuthContext<'_>,
) -> Result<HttpRequest, Error> {
    let invalid = |field: &str| Error::from(ConfigError::InvalidValue(field.into()));
    if exchange.subject_token.expose().is_empty() {
        return Err(invalid("subject-token"));
    }
    if exchange.subject_token_type.is_empty() {
        return Err(invalid("subject-token-type"));
    }
    match (&exchange.actor_token, &exchange.actor_token_type) {
        (Some(token), Some(kind)) if !token.expose().is_empty() && !kind.is_empty() => {}
        (None, None) => {}
        (Some(_), _) => return Err(invalid("actor-token-type")),
        (None, Some(_)) => return Err(invalid("actor-token")),
    }
    for resource in &exchange.resources {
        check_resource("resources", resource)?;
    }
    let mut params = vec![KeyValue::new("grant_type", TOKEN_EXCHANGE_GRANT)];
    push_resources(config, &mut params);
    for resource in &exchange.resources {
        params.push(KeyValue::new("resource", resource));
    }
    for audience in &exchange.audiences {
        params.push(KeyValue::new("audience", audience));
    }
    let scopes = requested_scopes(config, exchange);
    if !scopes.is_empty() {
        params.push(KeyValue::new(
            "scope",
            scopes.join(&config.profile.scope_separator),
        ));
    }
    if let Some(kind) = &exchange.requested_token_type {
        params.push(KeyValue::new("requested_token_type", kind));
    }
    params.push(KeyValue::new(
        "subject_token",
        exchange.subject_token.expose(),
    ));
    params.push(KeyValue::new(
        "subject_token_type",
        &exchange.subject_token_type,
    ));
    if let (Some(token), Some(kind)) = (&exchange.actor_token, &exchange.actor_token_type) {
        params.push(KeyValue::new("actor_token", token.expose()));
        params.push(KeyValue::new("actor_token_type", kind));
    }
    authenticated_post(
        config,
        "token-url",
        params,
        Some(RequestKind::TokenExchange),
        auth,
    )
}

fn requested_scopes<'a>(
    config: &'a ConnectionConfig,
    exchange: &'a ExchangeRequest,
) -> &'a [String] {
    if exchange.scopes.is_empty() {
        config.effective_scopes()
    } else {
        &exchange.scopes
    }
}

/// Reads the answer (RFC 8693 §2.2): a token response that must name its
/// `issued_token_type`, which is taken out of the set's extras.
pub fn finish(
    config: &ConnectionConfig,
    exchange: &ExchangeRequest,
    response: &HttpResponse,
    now: u64,
) -> Result<(TokenSet, String), Error> {
    let mut secrets = config.secrets(&[exchange.subject_token.expose()]);
    if let Some(actor) = &exchange.actor_token {
        secrets.push(actor.expose());
    }
    let mut tokens = parse_token_response(
        response,
        requested_scopes(config, exchange),
        &config.profile.token_response,
        now,
        &secrets,
    )?;
    let at = tokens
        .extras
        .iter()
        .position(|extra| extra.name == "issued_token_type");
    let issued = at
        .map(|at| tokens.extras.remove(at).value)
        .and_then(|json| match serde_json::from_slice(json.as_bytes()) {
            Ok(serde_json::Value::String(kind)) if !kind.is_empty() => Some(kind),
            _ => None,
        })
        .ok_or_else(|| invalid_answer(response, "no `issued_token_type`", &secrets))?;
    Ok((tokens, issued))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorCode, OAuthError};
    use crate::profile::{Client, ClientAuthMethod, ProviderProfile};

    fn config() -> ConnectionConfig {
        ConnectionConfig {
            profile: ProviderProfile::from_json(
                r#"{"token-url": "https://as.example.com/token", "default-scopes": ["a"]}"#,
            )
            .unwrap(),
            client: Client {
                client_id: "gateway".into(),
                client_secret: Some(Secret::new("gw-secret")),
                auth_method: Some(ClientAuthMethod::ClientSecretPost),
            },
            redirect_uri: None,
            scopes: vec![],
            authorize_params: vec![],
            token_requests: Default::default(),
            variables: vec![],
            offline_access: false,
            resources: vec!["https://r1.example/".into()],
            dpop: false,
        }
    }

    fn exchange() -> ExchangeRequest {
        ExchangeRequest {
            subject_token: Secret::new("subject-tok"),
            subject_token_type: "urn:ietf:params:oauth:token-type:access_token".into(),
            actor_token: Some(Secret::new("actor-tok")),
            actor_token_type: Some("urn:ietf:params:oauth:token-type:jwt".into()),
            requested_token_type: Some("urn:ietf:params:oauth:token-type:access_token".into()),
            audiences: vec!["api-a".into(), "api b".into()],
            resources: vec!["https://r2.example/x".into()],
            scopes: vec!["read".into(), "write".into()],
        }
    }

    #[test]
    fn the_request_is_rfc_8693s_exactly() {
        let request = request(
            &config().prepare().unwrap(),
            &exchange(),
            &AuthContext::without_assertions(),
        )
        .unwrap();
        assert_eq!(request.url, "https://as.example.com/token");
        assert_eq!(
            String::from_utf8(request.body).unwrap(),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
             &resource=https%3A%2F%2Fr1.example%2F&resource=https%3A%2F%2Fr2.example%2Fx\
             &audience=api-a&audience=api+b&scope=read+write\
             &requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token\
             &subject_token=subject-tok\
             &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token\
             &actor_token=actor-tok&actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt\
             &client_id=gateway&client_secret=gw-secret"
        );
    }

    #[test]
    fn incomplete_requests_are_refused_by_field() {
        let auth = AuthContext::without_assertions();
        type Change = fn(&mut ExchangeRequest);
        let cases: [(Change, &str); 5] = [
            (|e| e.subject_token = Secret::new(""), "subject-token"),
            (|e| e.subject_token_type.clear(), "subject-token-type"),
            (|e| e.actor_token_type = None, "actor-token-type"),
            (|e| e.actor_token = None, "actor-token"),
            (
                |e| e.resources = vec!["https://r.example/#f".into()],
                "resources",
            ),
        ];
        for (change, field) in cases {
            let mut exchange = exchange();
            change(&mut exchange);
            assert_eq!(
                request(&config().prepare().unwrap(), &exchange, &auth).unwrap_err(),
                Error::Configuration(ConfigError::InvalidValue(field.into())),
            );
        }
    }

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_answer_names_its_issued_token_type() {
        let (tokens, issued) = finish(
            &config(),
            &exchange(),
            &response(
                200,
                r#"{"access_token":"new","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":60,"other":1}"#,
            ),
            100,
        )
        .unwrap();
        assert_eq!(issued, "urn:ietf:params:oauth:token-type:access_token");
        assert_eq!(tokens.access_token.expose(), "new");
        assert_eq!(tokens.expires_at, Some(160));
        assert_eq!(tokens.scopes, ["read", "write"]);
        assert_eq!(tokens.extras, [KeyValue::new("other", "1")]);
        let missing = finish(
            &config(),
            &exchange(),
            &response(200, r#"{"access_token":"new","token_type":"Bearer"}"#),
            100,
        )
        .unwrap_err();
        assert!(
            matches!(&missing, Error::InvalidResponse(e) if e.reason == "no `issued_token_type`"),
            "{missing:?}"
        );
        let refused = finish(
            &config(),
            &exchange(),
            &response(
                400,
                r#"{"error":"invalid_target","error_description":"subject-tok is not for api-a"}"#,
            ),
            100,
        )
        .unwrap_err();
        assert_eq!(
            refused,
            Error::ServerSaidNo(OAuthError {
                code: ErrorCode::Extension("invalid_target".into()),
                description: Some("[redacted] is not for api-a".into()),
                uri: None,
            })
        );
    }
}
