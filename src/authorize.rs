//! Beginning an authorization-code flow (RFC 6749 §4.1.1, RFC 7636 §4.3).

use crate::prelude::*;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::callback::AuthorizationCode;
use crate::client_auth::{AuthContext, JTI_RANDOM_BYTES, KeyCheckOnly, Signer};
use crate::dpop::Prover;
use crate::error::{ConfigError, Error};
use crate::form::{self, push_pair};
use crate::http::{HttpRequest, HttpResponse};
use crate::pkce::{self, VERIFIER_RANDOM_BYTES};
use crate::profile::{ConnectionConfig, KeyValue, Prepared, RequestKind};
use crate::secret::{PkceVerifier, Secret};
use crate::token::{invalid_answer, json_answer};

/// Random bytes behind one `state`: 256 bits, well over the 128 the flow needs
/// (RFC 6749 §10.10 asks for a guessing probability at most 2^-128).
pub const STATE_RANDOM_BYTES: usize = 32;

/// How long a pending authorization stays valid: users take a while to log in and consent,
/// but an old callback is more likely an attack than a slow user.
pub const PENDING_LIFETIME_SECS: u64 = 600;

/// Parameters the flow sets itself; an extra parameter may not override them.
pub const RESERVED_AUTHORIZE_PARAMS: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// The randomness one `begin` consumes, passed in so that the core stays deterministic.
pub struct BeginRandom {
    /// Bytes for `state`.
    pub state: [u8; STATE_RANDOM_BYTES],
    /// Bytes for the PKCE verifier.
    pub verifier: [u8; VERIFIER_RANDOM_BYTES],
}

/// The pending half of a flow (the WIT `pending-authorization`).
#[derive(Debug)]
pub struct PendingAuthorization {
    /// The `state` sent.
    pub state: String,
    /// The PKCE verifier, absent when PKCE is disabled.
    pub code_verifier: Option<PkceVerifier>,
    /// The redirect URI sent, if any.
    pub redirect_uri: Option<String>,
    /// The scopes requested.
    pub requested_scopes: Vec<String>,
    /// When the flow began (Unix seconds).
    pub created_at: u64,
    /// When the callback stops being accepted (Unix seconds).
    pub expires_at: u64,
}

/// What `begin` returns.
#[derive(Debug)]
pub struct AuthorizationRequest {
    /// The URL to open in the browser.
    pub url: String,
    /// The record to keep until the callback.
    pub pending: PendingAuthorization,
    /// Where the flow's own parameters start in `url` (after the endpoint's own query):
    /// what a pushed authorization request sends.
    pub params_at: usize,
}

/// Builds the authorize URL and the pending record (RFC 6749 §4.1.1).
///
/// Parameter order: the authorize URL's own query, then `response_type`, `client_id`,
/// `redirect_uri`, `scope`, `state`, `code_challenge`, `code_challenge_method`, then the
/// profile's extra parameters, then the caller's. A caller parameter with the same name as a
/// profile parameter replaces it in place, so nothing is sent twice.
///
/// Then `resource` for each of the connection's resources (RFC 8707) and `dpop_jkt` when
/// given (RFC 9449 §10). A profile that requires pushed authorization requests (RFC 9126 §5)
/// needs its endpoint: the URL built here is then only the push's parameters (see
/// [`push_request`]).
pub fn begin(
    config: &Prepared,
    now: u64,
    random: &BeginRandom,
    dpop_jkt: Option<&str>,
) -> Result<AuthorizationRequest, Error> {
    let profile = &config.profile;
    if profile.requires_pushed_authorization_requests
        && profile.pushed_authorization_request_url.is_none()
    {
        return Err(ConfigError::MissingEndpoint("pushed-authorization-request-url".into()).into());
    }
    let endpoint = config
        .endpoint("authorize-url")
        .ok_or_else(|| ConfigError::MissingEndpoint("authorize-url".into()))?;
    if config.client.client_id.is_empty() {
        return Err(ConfigError::InvalidValue("client-id".into()).into());
    }
    config.check_redirect_uri()?;
    let client_id_param = profile.client_id_param();
    for (name, _) in endpoint.query_pairs() {
        reject_reserved(&name, client_id_param)?;
    }
    let extras = merge_extras(
        &profile.authorize_params,
        &config.authorize_params,
        client_id_param,
    )?;

    let state = URL_SAFE_NO_PAD.encode(random.state);
    let scopes = config.effective_scopes().to_vec();
    let method = pkce::method_name(profile.pkce);
    let code_verifier = method.map(|_| pkce::verifier_from_random(&random.verifier));

    // The endpoint's own query is kept and the parameters follow it: its serialisation ends
    // with the query, if any (a fragment was refused). `query` is where the pairs start.
    let own_query = endpoint.query().map(str::len);
    let mut url = String::from(endpoint.as_str());
    // Room for the parameters of a typical flow (state and challenge are 43 bytes each), so
    // that the URL is not copied as it grows.
    url.reserve(512);
    let query = match own_query {
        Some(len) => url.len() - len,
        None => {
            url.push('?');
            url.len()
        }
    };
    push_pair(&mut url, query, "response_type", "code");
    push_pair(
        &mut url,
        query,
        profile.client_id_param(),
        &config.client.client_id,
    );
    if let Some(redirect_uri) = &config.redirect_uri {
        push_pair(&mut url, query, "redirect_uri", redirect_uri);
    }
    if let Some((first, rest)) = scopes.split_first() {
        // The scopes joined by the separator, encoded as one value (the encoding is per byte).
        push_pair(&mut url, query, "scope", first);
        for scope in rest {
            form::push_encoded(&mut url, &profile.scope_separator);
            form::push_encoded(&mut url, scope);
        }
    }
    push_pair(&mut url, query, "state", &state);
    if let (Some(verifier), Some(method)) = (&code_verifier, method)
        && let Some(challenge) = pkce::challenge(verifier, profile.pkce)
    {
        push_pair(&mut url, query, "code_challenge", &challenge);
        push_pair(&mut url, query, "code_challenge_method", method);
    }
    for (name, value) in extras {
        push_pair(&mut url, query, name, value);
    }
    for resource in &config.resources {
        push_pair(&mut url, query, "resource", resource);
    }
    if let Some(thumbprint) = dpop_jkt {
        push_pair(&mut url, query, "dpop_jkt", thumbprint);
    }

    Ok(AuthorizationRequest {
        params_at: query + own_query.map_or(0, |len| len + usize::from(len > 0)),
        url,
        pending: PendingAuthorization {
            state,
            code_verifier,
            redirect_uri: config.redirect_uri.clone(),
            requested_scopes: scopes,
            created_at: now,
            expires_at: now.saturating_add(PENDING_LIFETIME_SECS),
        },
    })
}

/// Refuses a parameter the flow sets itself (the client id under the profile's name for it
/// too).
fn reject_reserved(name: &str, client_id_param: &str) -> Result<(), ConfigError> {
    if RESERVED_AUTHORIZE_PARAMS.contains(&name) || name == client_id_param {
        Err(ConfigError::ReservedParameter(name.to_owned()))
    } else {
        Ok(())
    }
}

/// The profile's extras followed by the caller's, as (name, value); a caller parameter whose
/// name the profile already uses replaces that value in place.
fn merge_extras<'a>(
    profile: &'a [KeyValue],
    caller: &'a [KeyValue],
    client_id_param: &str,
) -> Result<Vec<(&'a str, &'a str)>, ConfigError> {
    let mut merged: Vec<(&str, &str)> = Vec::with_capacity(profile.len() + caller.len());
    for extra in profile {
        reject_reserved(&extra.name, client_id_param)?;
        merged.push((&extra.name, &extra.value));
    }
    for extra in caller {
        reject_reserved(&extra.name, client_id_param)?;
        match merged[..profile.len()]
            .iter_mut()
            .find(|(name, _)| *name == extra.name)
        {
            Some(existing) => existing.1 = &extra.value,
            None => merged.push((&extra.name, &extra.value)),
        }
    }
    Ok(merged)
}

/// Checks, without side effects, everything a sign-in with `config` needs before the
/// browser opens: what [`begin`] checks, then that the code exchange can be built (client
/// id, the secret or signer key the client's method needs, the token URL, the extras).
/// The signer is asked for its key only, never for a signature.
pub fn check(config: &Prepared, now: u64, signer: &dyn Signer) -> Result<(), Error> {
    let stand_in = BeginRandom {
        state: [0; STATE_RANDOM_BYTES],
        verifier: [0; VERIFIER_RANDOM_BYTES],
    };
    let request = begin(config, now, &stand_in, None)?;
    let code = AuthorizationCode {
        code: Secret::new("check"),
    };
    let auth = AuthContext {
        now,
        random: &|| Some([0; JTI_RANDOM_BYTES]),
        signer: &KeyCheckOnly(signer),
    };
    Prover::for_connection(config, None, &auth)?;
    push_request(config, &request, &auth)?;
    crate::token_request::code_exchange(config, &request.pending, &code, &auth).map(drop)
}

/// The pushed authorization request (RFC 9126 §2.1) for `request`, when the profile has a
/// `pushed-authorization-request-url`: the flow's parameters as a form POST with client
/// authentication and the `pushed-authorization` extras' headers. `None`: no push, the URL
/// is used as it is.
pub fn push_request(
    config: &Prepared,
    request: &AuthorizationRequest,
    auth: &AuthContext<'_>,
) -> Result<Option<HttpRequest>, Error> {
    if config.profile.pushed_authorization_request_url.is_none() {
        return Ok(None);
    }
    let params = form::decode(&request.url.as_bytes()[request.params_at..]);
    let push = crate::token_request::authenticated_post(
        config,
        "pushed-authorization-request-url",
        params,
        Some(RequestKind::PushedAuthorization),
        auth,
    )?;
    Ok(Some(push))
}

/// The authorize URL after a push (RFC 9126 §4): the endpoint (its own query kept) with
/// `client_id` and the `request_uri` the server returned (§2.2). The server's refusal is
/// typed as for token requests.
pub fn pushed(
    config: &ConnectionConfig,
    mut request: AuthorizationRequest,
    response: &HttpResponse,
    now: u64,
) -> Result<AuthorizationRequest, Error> {
    let secrets = config.secrets(&[]);
    let fields = json_answer(response, &secrets, now)?;
    let request_uri = match fields.get("request_uri") {
        Some(serde_json::Value::String(uri)) if !uri.is_empty() => uri,
        _ => return Err(invalid_answer(response, "no `request_uri`", &secrets)),
    };
    // Back to the endpoint and its own query (`begin` always wrote a `?`; the endpoint has
    // no fragment), then the two parameters.
    request.url.truncate(request.params_at);
    if request.url.ends_with('&') {
        request.url.pop();
    }
    let query = request.url.find('?').map_or(request.url.len(), |at| at + 1);
    push_pair(
        &mut request.url,
        query,
        config.profile.client_id_param(),
        &config.client.client_id,
    );
    push_pair(&mut request.url, query, "request_uri", request_uri);
    request.params_at = request.url.len();
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Client, PkceMethod, ProviderProfile, TokenRequestExtras};

    /// RFC 7636 Appendix B octets, so that expected challenges are the RFC's.
    const RFC_OCTETS: [u8; 32] = [
        116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37,
        77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
    ];
    const RANDOM: BeginRandom = BeginRandom {
        state: [7; 32],
        verifier: RFC_OCTETS,
    };
    /// base64url of 32 bytes of 7.
    const STATE: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc";
    const NOW: u64 = 1_700_000_000;

    fn config() -> ConnectionConfig {
        ConnectionConfig {
            profile: ProviderProfile::from_json(
                r#"{"id": "t", "authorize-url": "https://auth.example.com/authorize",
                    "token-url": "https://auth.example.com/token"}"#,
            )
            .unwrap(),
            client: Client {
                client_id: "my client".into(),
                client_secret: None,
                auth_method: None,
            },
            redirect_uri: Some("http://127.0.0.1:8765/callback".into()),
            scopes: vec!["openid".into(), "profile".into()],
            authorize_params: vec![],
            token_requests: TokenRequestExtras::default(),
            variables: vec![],
            offline_access: false,
            resources: vec![],
            dpop: false,
        }
    }

    fn url_of(config: &ConnectionConfig) -> String {
        begin(&config.prepare().unwrap(), NOW, &RANDOM, None)
            .unwrap()
            .url
    }

    fn config_error(config: &ConnectionConfig) -> ConfigError {
        match config
            .prepare()
            .map_err(Error::from)
            .and_then(|config| begin(&config, NOW, &RANDOM, None))
        {
            Err(Error::Configuration(error)) => error,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn default_flow_uses_s256_and_space_scopes() {
        let request = begin(&config().prepare().unwrap(), NOW, &RANDOM, None).unwrap();
        assert_eq!(
            request.url,
            format!(
                "https://auth.example.com/authorize?response_type=code&client_id=my+client\
                 &redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&scope=openid+profile\
                 &state={STATE}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
                 &code_challenge_method=S256"
            )
        );
        let pending = request.pending;
        assert_eq!(pending.state, STATE);
        assert_eq!(
            pending.code_verifier.as_ref().map(PkceVerifier::expose),
            Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        );
        assert_eq!(
            pending.redirect_uri.as_deref(),
            Some("http://127.0.0.1:8765/callback")
        );
        assert_eq!(pending.requested_scopes, ["openid", "profile"]);
        assert_eq!(pending.created_at, NOW);
        assert_eq!(pending.expires_at, NOW + PENDING_LIFETIME_SECS);
    }

    #[test]
    fn the_client_id_goes_under_the_profiles_name_for_it() {
        let mut config = config();
        config.profile.client_id_parameter = Some("client_key".into());
        config.profile.pkce = PkceMethod::Disabled;
        assert_eq!(
            url_of(&config),
            format!(
                "https://auth.example.com/authorize?response_type=code&client_key=my+client\
                 &redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&scope=openid+profile\
                 &state={STATE}"
            )
        );
        // Nothing else may set it: not an extra, not the endpoint's own query.
        config.authorize_params = vec![KeyValue::new("client_key", "other")];
        assert_eq!(
            config_error(&config),
            ConfigError::ReservedParameter("client_key".into())
        );
        config.authorize_params = vec![];
        config.profile.authorize_url =
            Some("https://auth.example.com/authorize?client_key=x".into());
        assert_eq!(
            config_error(&config),
            ConfigError::ReservedParameter("client_key".into())
        );
    }

    #[test]
    fn keeps_existing_query_and_appends_extras_in_order() {
        let mut config = config();
        config.profile.authorize_url =
            Some("https://auth.example.com/authorize?tenant=acme&api-version=2".into());
        config.profile.authorize_params = vec![
            KeyValue::new("access_type", "offline"),
            KeyValue::new("prompt", "consent"),
        ];
        config.authorize_params = vec![
            KeyValue::new("prompt", "select_account"),
            KeyValue::new("token_access_type", "offline"),
        ];
        config.redirect_uri = None;
        config.profile.pkce = PkceMethod::Disabled;
        assert_eq!(
            url_of(&config),
            format!(
                "https://auth.example.com/authorize?tenant=acme&api-version=2\
                 &response_type=code&client_id=my+client&scope=openid+profile&state={STATE}\
                 &access_type=offline&prompt=select_account&token_access_type=offline"
            )
        );
    }

    #[test]
    fn plain_pkce_and_comma_separator_and_default_scopes() {
        let mut config = config();
        config.profile.pkce = PkceMethod::Plain;
        config.profile.scope_separator = ",".into();
        config.profile.default_scopes = vec!["repo".into(), "user:email".into()];
        config.scopes = vec![];
        config.redirect_uri = None;
        assert_eq!(
            url_of(&config),
            format!(
                "https://auth.example.com/authorize?response_type=code&client_id=my+client\
                 &scope=repo%2Cuser%3Aemail&state={STATE}\
                 &code_challenge=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk\
                 &code_challenge_method=plain"
            )
        );
    }

    #[test]
    fn empty_scope_is_omitted_and_disabled_pkce_keeps_no_verifier() {
        let mut config = config();
        config.scopes = vec![];
        config.redirect_uri = None;
        config.profile.pkce = PkceMethod::Disabled;
        let request = begin(&config.prepare().unwrap(), NOW, &RANDOM, None).unwrap();
        assert_eq!(
            request.url,
            format!(
                "https://auth.example.com/authorize?response_type=code&client_id=my+client\
                 &state={STATE}"
            )
        );
        assert!(request.pending.code_verifier.is_none());
        assert!(request.pending.requested_scopes.is_empty());
    }

    #[test]
    fn loopback_http_endpoints_are_allowed() {
        for authorize in [
            "http://127.0.0.1:9000/authorize",
            "http://[::1]:9000/authorize",
            "http://localhost:9000/authorize",
        ] {
            let mut config = config();
            config.profile.authorize_url = Some(authorize.into());
            config.profile.token_url = authorize.replace("authorize", "token");
            assert!(url_of(&config).starts_with(&format!("{authorize}?response_type=code")));
        }
    }

    #[test]
    fn every_reserved_parameter_is_refused_from_every_source() {
        for name in RESERVED_AUTHORIZE_PARAMS {
            let mut caller = config();
            caller.authorize_params = vec![KeyValue::new(name, "x")];
            assert_eq!(
                config_error(&caller),
                ConfigError::ReservedParameter(name.into())
            );

            let mut profile = config();
            profile.profile.authorize_params = vec![KeyValue::new(name, "x")];
            assert_eq!(
                config_error(&profile),
                ConfigError::ReservedParameter(name.into())
            );

            let mut query = config();
            query.profile.authorize_url =
                Some(format!("https://auth.example.com/authorize?{name}=x"));
            assert_eq!(
                config_error(&query),
                ConfigError::ReservedParameter(name.into())
            );
        }
    }

    #[test]
    fn every_configuration_error() {
        let mut missing = config();
        missing.profile.authorize_url = None;
        assert_eq!(
            config_error(&missing),
            ConfigError::MissingEndpoint("authorize-url".into())
        );

        let mut insecure = config();
        insecure.profile.authorize_url = Some("http://auth.example.com/authorize".into());
        assert_eq!(
            config_error(&insecure),
            ConfigError::InsecureUrl("authorize-url".into())
        );

        let mut insecure_token = config();
        insecure_token.profile.token_url = "http://auth.example.com/token".into();
        assert_eq!(
            config_error(&insecure_token),
            ConfigError::InsecureUrl("token-url".into())
        );

        let mut invalid = config();
        invalid.profile.authorize_url = Some("auth.example.com/authorize".into());
        assert_eq!(
            config_error(&invalid),
            ConfigError::InvalidUrl("authorize-url".into())
        );

        let mut insecure_redirect = config();
        insecure_redirect.redirect_uri = Some("http://app.example.com/cb".into());
        assert_eq!(
            config_error(&insecure_redirect),
            ConfigError::InsecureUrl("redirect-uri".into())
        );

        let mut fragment_redirect = config();
        fragment_redirect.redirect_uri = Some("https://app.example.com/cb#x".into());
        assert_eq!(
            config_error(&fragment_redirect),
            ConfigError::InvalidUrl("redirect-uri".into())
        );

        let mut empty_client = config();
        empty_client.client.client_id = String::new();
        assert_eq!(
            config_error(&empty_client),
            ConfigError::InvalidValue("client-id".into())
        );

        let mut empty_separator = config();
        empty_separator.profile.scope_separator = String::new();
        assert_eq!(
            config_error(&empty_separator),
            ConfigError::InvalidValue("scope-separator".into())
        );
    }

    #[test]
    fn state_and_verifier_come_from_the_random_bytes() {
        let other = BeginRandom {
            state: [9; 32],
            verifier: [1; 32],
        };
        let a = begin(&config().prepare().unwrap(), NOW, &RANDOM, None)
            .unwrap()
            .pending;
        let b = begin(&config().prepare().unwrap(), NOW, &other, None)
            .unwrap()
            .pending;
        assert_ne!(a.state, b.state);
        assert_eq!(b.state.len(), 43);
        assert_eq!(b.code_verifier.unwrap().expose().len(), 43);
    }

    fn par_config(authorize_url: &str) -> ConnectionConfig {
        let mut config = config();
        config.profile.authorize_url = Some(authorize_url.into());
        config.profile.pushed_authorization_request_url =
            Some("https://auth.example.com/par".into());
        config.client.client_secret = Some(Secret::new("s3cret"));
        config.resources = vec!["https://api.example.com/".into()];
        config.profile.token_requests.pushed_authorization.headers =
            vec![KeyValue::new("X-Tenant", "acme")];
        config
    }

    fn par_response(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    /// RFC 9126 §2.1: the flow's parameters (not the endpoint's own query) are pushed with
    /// client authentication; §4: the authorize URL then carries only `client_id` and
    /// `request_uri`, after the endpoint's own query.
    #[test]
    fn a_pushed_request_carries_the_flow_and_the_url_only_its_reference() {
        for (authorize_url, expected) in [
            (
                "https://auth.example.com/authorize?tenant=acme",
                "https://auth.example.com/authorize?tenant=acme&client_id=my+client\
                 &request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Abwc4JK",
            ),
            (
                "https://auth.example.com/authorize",
                "https://auth.example.com/authorize?client_id=my+client\
                 &request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Abwc4JK",
            ),
        ] {
            let config = par_config(authorize_url);
            let request = begin(&config.prepare().unwrap(), NOW, &RANDOM, Some("jkt-1")).unwrap();
            let auth = AuthContext::without_assertions();
            let push = push_request(&config.prepare().unwrap(), &request, &auth)
                .unwrap()
                .unwrap();
            assert_eq!(push.url, "https://auth.example.com/par");
            assert_eq!(
                push.headers,
                [
                    KeyValue::new("Content-Type", "application/x-www-form-urlencoded"),
                    KeyValue::new("Accept", "application/json"),
                    KeyValue::new("Authorization", "Basic bXkrY2xpZW50OnMzY3JldA=="),
                    KeyValue::new("X-Tenant", "acme"),
                ]
            );
            assert_eq!(
                String::from_utf8(push.body).unwrap(),
                format!(
                    "response_type=code&client_id=my+client\
                     &redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&scope=openid+profile\
                     &state={STATE}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
                     &code_challenge_method=S256&resource=https%3A%2F%2Fapi.example.com%2F\
                     &dpop_jkt=jkt-1"
                )
            );
            let answer = par_response(
                201,
                r#"{"request_uri":"urn:ietf:params:oauth:request_uri:bwc4JK","expires_in":60}"#,
            );
            let pushed = pushed(&config, request, &answer, NOW).unwrap();
            assert_eq!(pushed.url, expected);
            assert_eq!(pushed.pending.state, STATE);
        }
    }

    #[test]
    fn a_public_client_pushes_its_client_id_once() {
        let mut config = par_config("https://auth.example.com/authorize");
        config.client.client_secret = None;
        config.client.auth_method = Some(crate::profile::ClientAuthMethod::None);
        let request = begin(&config.prepare().unwrap(), NOW, &RANDOM, None).unwrap();
        let push = push_request(
            &config.prepare().unwrap(),
            &request,
            &AuthContext::without_assertions(),
        )
        .unwrap()
        .unwrap();
        let body = String::from_utf8(push.body).unwrap();
        assert_eq!(body.matches("client_id=").count(), 1, "{body}");
    }

    #[test]
    fn without_an_endpoint_nothing_is_pushed_unless_the_server_requires_it() {
        let mut config = config();
        let request = begin(&config.prepare().unwrap(), NOW, &RANDOM, None).unwrap();
        let auth = AuthContext::without_assertions();
        assert_eq!(
            push_request(&config.prepare().unwrap(), &request, &auth).unwrap(),
            None
        );
        config.profile.requires_pushed_authorization_requests = true;
        assert_eq!(
            config_error(&config),
            ConfigError::MissingEndpoint("pushed-authorization-request-url".into())
        );
    }

    #[test]
    fn a_refused_push_is_typed_like_a_token_error() {
        let config = par_config("https://auth.example.com/authorize");
        let begun = || begin(&config.prepare().unwrap(), NOW, &RANDOM, None).unwrap();
        let refused = pushed(
            &config,
            begun(),
            &par_response(
                401,
                r#"{"error":"invalid_client","error_description":"bad s3cret"}"#,
            ),
            NOW,
        )
        .unwrap_err();
        assert_eq!(
            refused,
            Error::ServerSaidNo(crate::error::OAuthError {
                code: crate::error::ErrorCode::InvalidClient,
                description: Some("bad [redacted]".into()),
                uri: None,
            })
        );
        let empty = pushed(
            &config,
            begun(),
            &par_response(201, r#"{"expires_in":60}"#),
            NOW,
        );
        assert!(
            matches!(&empty, Err(Error::InvalidResponse(e)) if e.reason == "no `request_uri`"),
            "{empty:?}"
        );
        let busy = pushed(&config, begun(), &par_response(503, ""), NOW).unwrap_err();
        assert!(matches!(busy, Error::ServerUnavailable(_)), "{busy:?}");
    }
}
