//! `authorization-code.complete` through the component against token endpoints on
//! 127.0.0.1: the exact request for each client authentication method, each response format,
//! and each typed error.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use connector_host::types::{
    CallbackError, ClientAuthMethod, ConfigurationError, ConnectionConfig, Error, ErrorCode,
    OauthError, PendingAuthorization, PkceMethod, RequestExtras, ServerUnavailable, TokenSet,
    TransportError,
};
use connector_host::{AllowList, CallError, HttpTransport, Limits};

use crate::common::{
    Recorded, Reply, ScriptedRandom, TestServer, config, connector_error, kv, profile, runtime,
};

/// base64url of 32 bytes of 7, the scripted state.
const STATE: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc";
/// The verifier scripted random gives (RFC 7636 Appendix B).
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const RFC_OCTETS: [u8; 32] = [
    116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77,
    105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
];
const TOKEN_JSON: &str = r#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-1","scope":"openid profile","id_token":"idt","tenant":"acme"}"#;
const SPECIAL_SECRET: &str = "p+a:s&s%w/o=r d";

fn config_for(
    server: &TestServer,
    auth: ClientAuthMethod,
    secret: Option<&str>,
) -> ConnectionConfig {
    let mut profile = profile(
        "https://auth.example.com/authorize",
        &server.url("/token?api-version=2"),
    );
    profile.client_auth = auth;
    let mut config = config(profile);
    config.client.client_secret = secret.map(str::to_owned);
    config
}

fn transport_for(server: &TestServer) -> HttpTransport {
    HttpTransport::new(
        AllowList::from_urls([server.url("/").as_str()]),
        Limits::default(),
    )
}

/// Begins with scripted random (so state and verifier are known), then completes with the
/// given callback query.
fn run(
    server: &TestServer,
    config: &ConnectionConfig,
    callback_query: &str,
) -> (PendingAuthorization, Result<TokenSet, CallError>) {
    let random = ScriptedRandom::new([7u8; 32].into_iter().chain(RFC_OCTETS));
    let request = runtime()
        .instantiate_with_random(transport_for(server), random)
        .unwrap()
        .begin(config)
        .unwrap();
    let callback = format!("http://127.0.0.1:8765/callback?{callback_query}");
    let result = runtime()
        .instantiate(transport_for(server))
        .unwrap()
        .complete(config, &request.pending, &callback);
    (request.pending, result)
}

fn good_callback() -> String {
    format!("code=the%2Fcode%2B1&state={STATE}")
}

fn token_server() -> TestServer {
    TestServer::start(|_| Reply::json(200, TOKEN_JSON))
}

fn only_request(server: &TestServer) -> Recorded {
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "exactly one token request");
    requests.into_iter().next().unwrap()
}

/// The headers as sent: the transport's own (ureq writes them first), then the component's.
fn expected_headers(
    server: &TestServer,
    authorization: Option<&str>,
    body_len: usize,
) -> Vec<(String, String)> {
    let mut headers = vec![
        ("content-length".to_owned(), body_len.to_string()),
        (
            "user-agent".to_owned(),
            format!("oauth-connector/{}", env!("CARGO_PKG_VERSION")),
        ),
        ("host".to_owned(), format!("127.0.0.1:{}", server.port)),
        (
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("accept".to_owned(), "application/json".to_owned()),
    ];
    if let Some(authorization) = authorization {
        headers.push(("authorization".to_owned(), authorization.to_owned()));
    }
    headers
}

fn assert_token_set(tokens: &TokenSet, pending: &PendingAuthorization) {
    assert_eq!(tokens.access_token, "at-1");
    assert_eq!(tokens.token_type, "bearer");
    assert_eq!(tokens.refresh_token.as_deref(), Some("rt-1"));
    assert_eq!(tokens.id_token.as_deref(), Some("idt"));
    assert_eq!(tokens.scopes, ["openid", "profile"]);
    assert_eq!(tokens.extras, [kv("tenant", "\"acme\"")]);
    let expires_in = tokens.expires_at.unwrap() - tokens.obtained_at;
    assert_eq!(expires_in, 3600);
    assert!(tokens.obtained_at >= pending.created_at);
}

#[test]
fn client_secret_basic_with_a_secret_full_of_reserved_characters() {
    let server = token_server();
    let config = config_for(
        &server,
        ClientAuthMethod::ClientSecretBasic,
        Some(SPECIAL_SECRET),
    );
    let (pending, result) = run(&server, &config, &good_callback());
    assert_token_set(&result.unwrap(), &pending);

    let request = only_request(&server);
    let body = format!(
        "grant_type=authorization_code&code=the%2Fcode%2B1\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&code_verifier={VERIFIER}"
    );
    // RFC 6749 §2.3.1: id and secret form-urlencoded, then joined and base64-encoded.
    let basic = format!(
        "Basic {}",
        STANDARD.encode("my+client:p%2Ba%3As%26s%25w%2Fo%3Dr+d")
    );
    assert_eq!(request.method, "POST");
    assert_eq!(request.target, "/token?api-version=2");
    assert_eq!(
        request.headers,
        expected_headers(&server, Some(&basic), body.len())
    );
    assert_eq!(String::from_utf8(request.body).unwrap(), body);
}

#[test]
fn client_secret_post() {
    let server = token_server();
    let config = config_for(
        &server,
        ClientAuthMethod::ClientSecretPost,
        Some(SPECIAL_SECRET),
    );
    let (pending, result) = run(&server, &config, &good_callback());
    assert_token_set(&result.unwrap(), &pending);
    let request = only_request(&server);
    let body = format!(
        "grant_type=authorization_code&code=the%2Fcode%2B1\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&code_verifier={VERIFIER}\
         &client_id=my+client&client_secret=p%2Ba%3As%26s%25w%2Fo%3Dr+d"
    );
    assert_eq!(request.headers, expected_headers(&server, None, body.len()));
    assert_eq!(String::from_utf8(request.body).unwrap(), body);
}

#[test]
fn public_client_with_pkce_and_extras() {
    let server = token_server();
    let mut config = config_for(&server, ClientAuthMethod::None, None);
    config.profile.token_requests.code_exchange = RequestExtras {
        params: vec![kv("resource", "https://api.example.com")],
        headers: vec![kv("X-Vendor-Version", "2024-01")],
    };
    config.token_requests.code_exchange = RequestExtras {
        params: vec![kv("audience", "my-api")],
        headers: vec![kv("X-Request-Source", "test")],
    };
    let (pending, result) = run(&server, &config, &good_callback());
    assert_token_set(&result.unwrap(), &pending);
    let request = only_request(&server);
    let body = format!(
        "grant_type=authorization_code&code=the%2Fcode%2B1\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&code_verifier={VERIFIER}\
         &client_id=my+client&resource=https%3A%2F%2Fapi.example.com&audience=my-api"
    );
    let mut headers = expected_headers(&server, None, body.len());
    headers.push(("x-vendor-version".into(), "2024-01".into()));
    headers.push(("x-request-source".into(), "test".into()));
    assert_eq!(request.headers, headers);
    assert_eq!(String::from_utf8(request.body).unwrap(), body);
}

#[test]
fn no_pkce_and_no_redirect_uri() {
    let server = token_server();
    let mut config = config_for(&server, ClientAuthMethod::ClientSecretPost, Some("s"));
    config.profile.pkce = PkceMethod::Disabled;
    config.redirect_uri = None;
    let (_, result) = run(&server, &config, &good_callback());
    result.unwrap();
    assert_eq!(
        String::from_utf8(only_request(&server).body).unwrap(),
        "grant_type=authorization_code&code=the%2Fcode%2B1&client_id=my+client&client_secret=s"
    );
}

fn complete_with(reply: impl Fn() -> Reply + Send + Sync + 'static) -> Result<TokenSet, CallError> {
    let server = TestServer::start(move |_| reply());
    let config = config_for(
        &server,
        ClientAuthMethod::ClientSecretPost,
        Some("client-secret-value"),
    );
    run(&server, &config, &good_callback()).1
}

#[test]
fn response_formats() {
    let form = complete_with(|| {
        Reply::new(
            200,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            "access_token=gho_16C7e42F292c&token_type=bearer&scope=repo%2Cgist",
        )
    })
    .unwrap();
    assert_eq!(form.access_token, "gho_16C7e42F292c");
    assert_eq!(form.scopes, ["repo", "gist"]);
    assert_eq!(form.expires_at, None, "no expires_in: unknown expiry");
    assert_eq!(form.refresh_token, None);

    let string_expiry = complete_with(|| {
        Reply::json(
            200,
            r#"{"access_token":"a","token_type":"BEARER","expires_in":"120"}"#,
        )
    })
    .unwrap();
    assert_eq!(
        string_expiry.expires_at.unwrap() - string_expiry.obtained_at,
        120
    );
    assert_eq!(string_expiry.token_type, "bearer");
    assert_eq!(
        string_expiry.scopes,
        ["openid", "profile"],
        "absent scope: the requested ones"
    );
}

#[test]
fn error_responses_are_typed() {
    let expected = Error::ServerSaidNo(OauthError {
        code: ErrorCode::InvalidGrant,
        description: Some("The code has expired".into()),
        uri: None,
    });
    for status in [400, 401, 200] {
        let error = connector_error(complete_with(move || {
            Reply::json(
                status,
                r#"{"error":"invalid_grant","error_description":"The code has expired"}"#,
            )
        }));
        assert_eq!(error, expected, "status {status}");
    }

    let html = connector_error(complete_with(|| {
        Reply::new(
            404,
            &[("Content-Type", "text/html")],
            "<html><h1>404 Not Found</h1> echo: client-secret-value</html>",
        )
    }));
    match html {
        Error::InvalidResponse(invalid) => {
            assert_eq!(invalid.status, 404);
            assert_eq!(
                invalid.reason,
                "error status with a body that is not an OAuth error"
            );
            assert_eq!(
                invalid.excerpt,
                "<html><h1>404 Not Found</h1> echo: [redacted]</html>"
            );
        }
        other => panic!("{other:?}"),
    }

    let overloaded = connector_error(complete_with(|| {
        Reply::new(
            503,
            &[("Content-Type", "text/html"), ("Retry-After", "30")],
            "<html>503 Service Unavailable</html>",
        )
    }));
    assert_eq!(
        overloaded,
        Error::ServerUnavailable(ServerUnavailable {
            status: 503,
            retry_after_seconds: Some(30),
            error: None,
        })
    );

    let garbage = connector_error(complete_with(|| {
        Reply::new(200, &[], vec![0xff, 0xfe, 0x00, 0x41])
    }));
    match garbage {
        Error::InvalidResponse(invalid) => {
            assert_eq!(invalid.status, 200);
            assert_eq!(invalid.reason, "body is neither a JSON object nor a form");
        }
        other => panic!("{other:?}"),
    }

    let huge = connector_error(complete_with(|| {
        Reply::json(200, &"x".repeat(9 * 1024 * 1024))
    }));
    assert_eq!(
        huge,
        Error::Transport(TransportError::ResponseTooLarge(8 * 1024 * 1024))
    );
}

#[test]
fn refused_callbacks_send_no_token_request() {
    let cases: Vec<(String, Error)> = vec![
        (
            format!("code=abc&state={STATE}x"),
            Error::Callback(CallbackError::StateMismatch),
        ),
        (
            "code=abc".into(),
            Error::Callback(CallbackError::MissingState),
        ),
        (
            format!("code=a&code=b&state={STATE}"),
            Error::Callback(CallbackError::Malformed(
                "parameter `code` appears more than once".into(),
            )),
        ),
        (
            format!("state={STATE}"),
            Error::Callback(CallbackError::MissingCode),
        ),
        (
            format!("error=access_denied&error_description=The+user+denied&state={STATE}"),
            Error::ServerSaidNo(OauthError {
                code: ErrorCode::AccessDenied,
                description: Some("The user denied".into()),
                uri: None,
            }),
        ),
    ];
    for (query, expected) in cases {
        let server = token_server();
        let config = config_for(&server, ClientAuthMethod::ClientSecretBasic, Some("s"));
        let (_, result) = run(&server, &config, &query);
        assert_eq!(connector_error(result), expected, "{query}");
        assert!(server.requests().is_empty(), "{query}: no token request");
    }

    // RFC 9207: a different `iss`, or none when the profile requires it.
    let server = token_server();
    let mut config = config_for(&server, ClientAuthMethod::ClientSecretBasic, Some("s"));
    config.profile.issuer = Some("https://auth.example.com".into());
    let (_, mismatch) = run(
        &server,
        &config,
        &format!("{}&iss=https%3A%2F%2Fevil.example", good_callback()),
    );
    assert_eq!(
        connector_error(mismatch),
        Error::Callback(CallbackError::IssuerMismatch)
    );
    config.profile.requires_iss = true;
    let (_, missing) = run(&server, &config, &good_callback());
    assert_eq!(
        connector_error(missing),
        Error::Callback(CallbackError::IssuerMissing)
    );
    assert!(server.requests().is_empty());
    let (_, matching) = run(
        &server,
        &config,
        &format!("{}&iss=https%3A%2F%2Fauth.example.com", good_callback()),
    );
    matching.unwrap();
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn expired_pending_record_is_refused() {
    let server = token_server();
    let config = config_for(&server, ClientAuthMethod::ClientSecretBasic, Some("s"));
    let pending = PendingAuthorization {
        state: STATE.into(),
        code_verifier: Some(VERIFIER.into()),
        redirect_uri: None,
        requested_scopes: vec![],
        created_at: 1,
        expires_at: 601,
    };
    let result = runtime()
        .instantiate(transport_for(&server))
        .unwrap()
        .complete(
            &config,
            &pending,
            &format!("http://127.0.0.1:8765/callback?{}", good_callback()),
        );
    assert_eq!(
        connector_error(result),
        Error::Callback(CallbackError::Expired)
    );
    assert!(server.requests().is_empty());
}

#[test]
fn missing_secret_is_a_configuration_error_before_any_request() {
    let server = token_server();
    let config = config_for(&server, ClientAuthMethod::ClientSecretBasic, None);
    let (_, result) = run(&server, &config, &good_callback());
    assert_eq!(
        connector_error(result),
        Error::Configuration(ConfigurationError::MissingClientSecret)
    );
    assert!(server.requests().is_empty());
}

#[test]
fn token_endpoint_off_the_allow_list_is_denied() {
    let server = token_server();
    let config = config_for(&server, ClientAuthMethod::ClientSecretBasic, Some("s"));
    let random = ScriptedRandom::new([7u8; 32].into_iter().chain(RFC_OCTETS));
    let other = TestServer::start(|_| Reply::json(200, "{}"));
    let pending = runtime()
        .instantiate_with_random(transport_for(&other), random)
        .unwrap()
        .begin(&config)
        .unwrap()
        .pending;
    let result = runtime()
        .instantiate(transport_for(&other))
        .unwrap()
        .complete(
            &config,
            &pending,
            &format!("http://127.0.0.1:8765/callback?{}", good_callback()),
        );
    assert_eq!(
        connector_error(result),
        Error::Transport(TransportError::Denied("127.0.0.1".into()))
    );
    assert!(server.requests().is_empty());
}

#[test]
fn state_from_callback() {
    let mut session = runtime()
        .instantiate(HttpTransport::new(AllowList::default(), Limits::default()))
        .unwrap();
    assert_eq!(
        session
            .state_from_callback("http://127.0.0.1:8765/callback?code=x&state=abc%2Bdef")
            .unwrap(),
        "abc+def"
    );
    match session.state_from_callback("http://127.0.0.1:8765/callback?code=x") {
        Err(CallError::Connector(Error::Callback(CallbackError::MissingState))) => {}
        other => panic!("{:?}", other.map(|_| ())),
    }
    match session.state_from_callback("not a url at all") {
        Err(CallError::Connector(Error::Callback(CallbackError::Malformed(_)))) => {}
        other => panic!("{:?}", other.map(|_| ())),
    }
}
