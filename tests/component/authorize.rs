//! `authorization-code.begin` and `providers.*` through the component.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use connector_host::types::{ConfigurationError, Error, PkceMethod};
use connector_host::{AllowList, CallError, HttpTransport, Limits};
use sha2::{Digest, Sha256};

use crate::common::{ScriptedRandom, config, kv, profile, runtime, session};

/// RFC 7636 Appendix B octets.
const RFC_OCTETS: [u8; 32] = [
    116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77,
    105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
];
/// base64url of 32 bytes of 7.
const STATE: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc";
const AUTHORIZE: &str = "https://auth.example.com/authorize";
const TOKEN: &str = "https://auth.example.com/token";

fn scripted() -> ScriptedRandom {
    ScriptedRandom::new([7u8; 32].into_iter().chain(RFC_OCTETS))
}

fn begin_scripted(
    config: &connector_host::types::ConnectionConfig,
) -> Result<connector_host::bindings::AuthorizationRequest, CallError> {
    let transport = HttpTransport::new(AllowList::default(), Limits::default());
    runtime()
        .instantiate_with_random(transport, scripted())
        .unwrap()
        .begin(config)
}

fn config_error(config: &connector_host::types::ConnectionConfig) -> ConfigurationError {
    match begin_scripted(config) {
        Err(CallError::Connector(Error::Configuration(error))) => error,
        Err(other) => panic!("expected a configuration error, got {other}"),
        Ok(request) => panic!("expected a configuration error, got {}", request.url),
    }
}

#[test]
fn rfc7636_vector_through_the_component() {
    let request = begin_scripted(&config(profile(AUTHORIZE, TOKEN))).unwrap();
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
        pending.code_verifier.as_deref(),
        Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    );
    assert_eq!(
        pending.redirect_uri.as_deref(),
        Some("http://127.0.0.1:8765/callback")
    );
    assert_eq!(pending.requested_scopes, ["openid", "profile"]);
    assert_eq!(pending.expires_at - pending.created_at, 600);
}

#[test]
fn system_random_gives_fresh_state_and_a_matching_challenge() {
    let config = config(profile(AUTHORIZE, TOKEN));
    let first = session(AllowList::default()).begin(&config).unwrap();
    let second = session(AllowList::default()).begin(&config).unwrap();
    assert_ne!(first.pending.state, second.pending.state);
    for request in [first, second] {
        let pending = request.pending;
        let verifier = pending.code_verifier.expect("S256 by default");
        assert_eq!(pending.state.len(), 43, "256 bits, base64url");
        assert_eq!(verifier.len(), 43);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        assert_eq!(
            request.url,
            format!(
                "https://auth.example.com/authorize?response_type=code&client_id=my+client\
                 &redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&scope=openid+profile\
                 &state={}&code_challenge={challenge}&code_challenge_method=S256",
                pending.state
            )
        );
    }
}

#[test]
fn existing_query_profile_and_caller_params_kept_in_order() {
    let mut profile = profile(
        "https://auth.example.com/authorize?tenant=acme&api-version=2",
        TOKEN,
    );
    profile.authorize_params = vec![kv("access_type", "offline"), kv("prompt", "consent")];
    profile.pkce = PkceMethod::Disabled;
    let mut config = config(profile);
    config.redirect_uri = None;
    config.authorize_params = vec![
        kv("prompt", "select_account"),
        kv("token_access_type", "offline"),
    ];
    let request = begin_scripted(&config).unwrap();
    assert_eq!(
        request.url,
        format!(
            "https://auth.example.com/authorize?tenant=acme&api-version=2\
             &response_type=code&client_id=my+client&scope=openid+profile&state={STATE}\
             &access_type=offline&prompt=select_account&token_access_type=offline"
        )
    );
    assert_eq!(request.pending.code_verifier, None);
}

#[test]
fn plain_pkce_comma_separator_default_scopes() {
    let mut profile = profile(AUTHORIZE, TOKEN);
    profile.pkce = PkceMethod::Plain;
    profile.scope_separator = ",".into();
    profile.default_scopes = vec!["repo".into(), "user:email".into()];
    let mut config = config(profile);
    config.scopes = vec![];
    config.redirect_uri = None;
    assert_eq!(
        begin_scripted(&config).unwrap().url,
        format!(
            "https://auth.example.com/authorize?response_type=code&client_id=my+client\
             &scope=repo%2Cuser%3Aemail&state={STATE}\
             &code_challenge=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk\
             &code_challenge_method=plain"
        )
    );
}

#[test]
fn empty_scope_is_omitted() {
    let mut config = config(profile(AUTHORIZE, TOKEN));
    config.scopes = vec![];
    config.redirect_uri = None;
    assert_eq!(
        begin_scripted(&config).unwrap().url,
        format!(
            "https://auth.example.com/authorize?response_type=code&client_id=my+client\
             &state={STATE}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
             &code_challenge_method=S256"
        )
    );
}

#[test]
fn loopback_http_is_allowed() {
    for base in [
        "http://127.0.0.1:9000",
        "http://[::1]:9000",
        "http://localhost:9000",
    ] {
        let config = config(profile(
            &format!("{base}/authorize"),
            &format!("{base}/token"),
        ));
        let url = begin_scripted(&config).unwrap().url;
        assert!(
            url.starts_with(&format!("{base}/authorize?response_type=code&")),
            "{url}"
        );
    }
}

#[test]
fn every_configuration_error_through_the_component() {
    let base = || config(profile(AUTHORIZE, TOKEN));

    let mut c = base();
    c.profile.authorize_url = None;
    assert_eq!(
        config_error(&c),
        ConfigurationError::MissingEndpoint("authorize-url".into())
    );

    let mut c = base();
    c.profile.authorize_url = Some("http://auth.example.com/authorize".into());
    assert_eq!(
        config_error(&c),
        ConfigurationError::InsecureUrl("authorize-url".into())
    );

    let mut c = base();
    c.profile.token_url = "http://auth.example.com/token".into();
    assert_eq!(
        config_error(&c),
        ConfigurationError::InsecureUrl("token-url".into())
    );

    let mut c = base();
    c.profile.authorize_url = Some("auth.example.com/authorize".into());
    assert_eq!(
        config_error(&c),
        ConfigurationError::InvalidUrl("authorize-url".into())
    );

    let mut c = base();
    c.redirect_uri = Some("http://app.example.com/callback".into());
    assert_eq!(
        config_error(&c),
        ConfigurationError::InsecureUrl("redirect-uri".into())
    );

    let mut c = base();
    c.client.client_id = String::new();
    assert_eq!(
        config_error(&c),
        ConfigurationError::InvalidValue("client-id".into())
    );

    let mut c = base();
    c.profile.scope_separator = String::new();
    assert_eq!(
        config_error(&c),
        ConfigurationError::InvalidValue("scope-separator".into())
    );

    for name in [
        "state",
        "code_challenge",
        "code_challenge_method",
        "redirect_uri",
        "client_id",
        "response_type",
        "scope",
    ] {
        let mut caller = base();
        caller.authorize_params = vec![kv(name, "x")];
        assert_eq!(
            config_error(&caller),
            ConfigurationError::ReservedParameter(name.into())
        );
        let mut profile = base();
        profile.profile.authorize_params = vec![kv(name, "x")];
        assert_eq!(
            config_error(&profile),
            ConfigurationError::ReservedParameter(name.into())
        );
    }
}

#[test]
fn parse_profile_through_the_component() {
    let mut session = session(AllowList::default());
    let parsed = session
        .parse_profile(
            r#"{"id": "acme", "authorize-url": "https://a.example/auth?x=1",
                "token-url": "https://a.example/token", "scope-separator": ",",
                "pkce": "plain", "client-auth": "client-secret-post",
                "authorize-params": [{"name": "access_type", "value": "offline"}]}"#,
        )
        .unwrap();
    let mut expected = profile("https://a.example/auth?x=1", "https://a.example/token");
    expected.id = "acme".into();
    expected.scope_separator = ",".into();
    expected.pkce = PkceMethod::Plain;
    expected.client_auth = connector_host::types::ClientAuthMethod::ClientSecretPost;
    expected.authorize_params = vec![kv("access_type", "offline")];
    assert_eq!(parsed, expected);
    session.validate_profile(&parsed).unwrap();

    match session.parse_profile("<html>not a profile</html>") {
        Err(CallError::Connector(Error::Configuration(ConfigurationError::InvalidProfile(_)))) => {}
        other => panic!("{:?}", other.map(|_| ())),
    }
    match session.parse_profile(r#"{"token-url": "http://a.example/token"}"#) {
        Err(CallError::Connector(Error::Configuration(ConfigurationError::InsecureUrl(f)))) => {
            assert_eq!(f, "token-url");
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}
