//! Beginning an authorization-code flow (RFC 6749 §4.1.1, RFC 7636 §4.3).

use crate::prelude::*;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::callback::AuthorizationCode;
use crate::client_auth::{AuthContext, JTI_RANDOM_BYTES, KeyCheckOnly, Signer};
use crate::endpoint::parse_endpoint;
use crate::error::{ConfigError, Error};
use crate::form::{self, push_pair};
use crate::pkce::{self, VERIFIER_RANDOM_BYTES};
use crate::profile::{ConnectionConfig, KeyValue};
use crate::secret::{PkceVerifier, Secret};

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
}

/// Builds the authorize URL and the pending record (RFC 6749 §4.1.1).
///
/// Parameter order: the authorize URL's own query, then `response_type`, `client_id`,
/// `redirect_uri`, `scope`, `state`, `code_challenge`, `code_challenge_method`, then the
/// profile's extra parameters, then the caller's. A caller parameter with the same name as a
/// profile parameter replaces it in place, so nothing is sent twice.
pub fn begin(
    config: &ConnectionConfig,
    now: u64,
    random: &BeginRandom,
) -> Result<AuthorizationRequest, Error> {
    let profile = &config.profile;
    profile.validate()?;
    let authorize_url = profile
        .authorize_url
        .as_deref()
        .ok_or_else(|| ConfigError::MissingEndpoint("authorize-url".into()))?;
    let endpoint = parse_endpoint("authorize-url", authorize_url)?;
    if config.client.client_id.is_empty() {
        return Err(ConfigError::InvalidValue("client-id".into()).into());
    }
    if let Some(redirect_uri) = &config.redirect_uri {
        parse_endpoint("redirect-uri", redirect_uri)?;
    }
    for (name, _) in endpoint.query_pairs() {
        reject_reserved(&name)?;
    }
    let extras = merge_extras(&profile.authorize_params, &config.authorize_params)?;

    let state = URL_SAFE_NO_PAD.encode(random.state);
    let scopes = config.effective_scopes().to_vec();
    let method = pkce::method_name(profile.pkce);
    let code_verifier = method.map(|_| pkce::verifier_from_random(&random.verifier));

    // The endpoint's own query is kept and the parameters follow it: its serialisation ends
    // with the query, if any (a fragment was refused). `query` is where the pairs start.
    let own_query = endpoint.query().map(str::len);
    let mut url = String::from(endpoint);
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
    push_pair(&mut url, query, "client_id", &config.client.client_id);
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

    Ok(AuthorizationRequest {
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

fn reject_reserved(name: &str) -> Result<(), ConfigError> {
    if RESERVED_AUTHORIZE_PARAMS.contains(&name) {
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
) -> Result<Vec<(&'a str, &'a str)>, ConfigError> {
    let mut merged: Vec<(&str, &str)> = Vec::with_capacity(profile.len() + caller.len());
    for extra in profile {
        reject_reserved(&extra.name)?;
        merged.push((&extra.name, &extra.value));
    }
    for extra in caller {
        reject_reserved(&extra.name)?;
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
pub fn check(config: &ConnectionConfig, now: u64, signer: &dyn Signer) -> Result<(), Error> {
    let stand_in = BeginRandom {
        state: [0; STATE_RANDOM_BYTES],
        verifier: [0; VERIFIER_RANDOM_BYTES],
    };
    let request = begin(config, now, &stand_in)?;
    let code = AuthorizationCode {
        code: Secret::new("check"),
    };
    let auth = AuthContext {
        now,
        random: &|| Some([0; JTI_RANDOM_BYTES]),
        signer: &KeyCheckOnly(signer),
    };
    crate::token_request::code_exchange(config, &request.pending, &code, &auth).map(drop)
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
        }
    }

    fn url_of(config: &ConnectionConfig) -> String {
        begin(config, NOW, &RANDOM).unwrap().url
    }

    fn config_error(config: &ConnectionConfig) -> ConfigError {
        match begin(config, NOW, &RANDOM) {
            Err(Error::Configuration(error)) => error,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn default_flow_uses_s256_and_space_scopes() {
        let request = begin(&config(), NOW, &RANDOM).unwrap();
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
        let request = begin(&config, NOW, &RANDOM).unwrap();
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
        let a = begin(&config(), NOW, &RANDOM).unwrap().pending;
        let b = begin(&config(), NOW, &other).unwrap().pending;
        assert_ne!(a.state, b.state);
        assert_eq!(b.state.len(), 43);
        assert_eq!(b.code_verifier.unwrap().expose().len(), 43);
    }
}
