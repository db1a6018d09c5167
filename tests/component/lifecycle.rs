//! The lifecycle exports through the component against servers on 127.0.0.1: refresh with
//! rotation, client credentials, device authorization, API calls, revocation and
//! introspection, each with its exact request and typed errors.

use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use connector_host::bindings::exports::oauth_connector::oauth2::device_authorization::DevicePoll;
use connector_host::types::{
    ClientAuthMethod, ConfigurationError, ConnectionConfig, Error, ErrorCode, HttpMethod,
    HttpRequest, OauthError, ServerUnavailable, TokenHeader, TokenPlacement, TokenRejection,
    TokenSet,
};
use connector_host::{AllowList, HttpTransport, Limits, Session};

use crate::common::{Recorded, Reply, TestServer, config, connector_error, kv, profile, runtime};

fn session_for(server: &TestServer) -> Session {
    let transport = HttpTransport::new(
        AllowList::from_urls([server.url("/").as_str()]),
        Limits::default(),
    );
    runtime().instantiate(transport).unwrap()
}

fn config_for(server: &TestServer) -> ConnectionConfig {
    let mut config = config(profile(
        &server.url("/authorize"),
        &server.url("/token?v=1"),
    ));
    config.client.client_secret = Some("s3cret".into());
    config
}

fn tokens(refresh: Option<&str>) -> TokenSet {
    TokenSet {
        access_token: "at-old".into(),
        token_type: "bearer".into(),
        expires_at: Some(1_000),
        refresh_token: refresh.map(str::to_owned),
        id_token: Some("id-old".into()),
        scopes: vec!["openid".into(), "profile".into()],
        obtained_at: 400,
        extras: vec![],
        dpop_key_thumbprint: None,
    }
}

fn body(request: &Recorded) -> String {
    String::from_utf8(request.body.clone()).unwrap()
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

#[test]
fn refresh_sends_the_exact_request_and_merges_rotation() {
    let server = TestServer::start(|_| {
        Reply::json(
            200,
            r#"{"access_token":"at-new","token_type":"Bearer","expires_in":60,"refresh_token":"rt-new"}"#,
        )
    });
    let mut config = config_for(&server);
    config.profile.token_requests.refresh.params = vec![kv("resource", "https://api.example")];
    config.token_requests.refresh.headers = vec![kv("X-Tenant", "t1")];
    let fresh = session_for(&server)
        .refresh(&config, &tokens(Some("rt-old")))
        .unwrap();
    assert_eq!(fresh.access_token, "at-new");
    assert_eq!(fresh.refresh_token.as_deref(), Some("rt-new"), "rotated");
    assert_eq!(fresh.id_token.as_deref(), Some("id-old"), "kept");
    assert_eq!(
        fresh.scopes,
        ["openid", "profile"],
        "kept when the response has none"
    );
    assert_eq!(fresh.expires_at.unwrap() - fresh.obtained_at, 60);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.target, "/token?v=1");
    assert_eq!(
        body(request),
        "grant_type=refresh_token&refresh_token=rt-old&resource=https%3A%2F%2Fapi.example"
    );
    assert_eq!(
        request.header("authorization"),
        Some(basic("my+client", "s3cret").as_str())
    );
    assert_eq!(request.header("x-tenant"), Some("t1"));
    assert_eq!(request.header("accept"), Some("application/json"));
}

#[test]
fn refresh_without_a_new_refresh_token_keeps_the_old_one_and_uses_refresh_url() {
    let server =
        TestServer::start(|_| Reply::json(200, r#"{"access_token":"at-new","scope":"openid"}"#));
    let mut config = config_for(&server);
    config.profile.refresh_url = Some(server.url("/refresh"));
    config.profile.client_auth = ClientAuthMethod::ClientSecretPost;
    let fresh = session_for(&server)
        .refresh(&config, &tokens(Some("rt-old")))
        .unwrap();
    assert_eq!(fresh.refresh_token.as_deref(), Some("rt-old"));
    assert_eq!(fresh.scopes, ["openid"]);
    assert_eq!(fresh.expires_at, None);
    let request = &server.requests()[0];
    assert_eq!(request.target, "/refresh");
    assert_eq!(
        body(request),
        "grant_type=refresh_token&refresh_token=rt-old&client_id=my+client&client_secret=s3cret"
    );
}

#[test]
fn refresh_errors_are_typed() {
    let grant_gone = TestServer::start(|_| {
        Reply::json(
            400,
            r#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#,
        )
    });
    assert_eq!(
        connector_error(
            session_for(&grant_gone).refresh(&config_for(&grant_gone), &tokens(Some("rt")))
        ),
        Error::ReauthorizationRequired(OauthError {
            code: ErrorCode::InvalidGrant,
            description: Some("grant request is invalid".into()),
            uri: None,
        })
    );
    let busy = TestServer::start(|_| Reply::new(429, &[("Retry-After", "7")], "slow down"));
    assert_eq!(
        connector_error(session_for(&busy).refresh(&config_for(&busy), &tokens(Some("rt")))),
        Error::ServerUnavailable(ServerUnavailable {
            status: 429,
            retry_after_seconds: Some(7),
            error: None,
        })
    );
    let server = TestServer::start(|_| Reply::json(200, "{}"));
    assert_eq!(
        connector_error(session_for(&server).refresh(&config_for(&server), &tokens(None))),
        Error::Configuration(ConfigurationError::NoRefreshToken)
    );
    assert!(server.requests().is_empty());
}

#[test]
fn needs_refresh_through_the_component() {
    let server = TestServer::start(|_| Reply::json(200, "{}"));
    let mut session = session_for(&server);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut hour = tokens(Some("rt"));
    hour.obtained_at = now;
    hour.expires_at = Some(now + 3600);
    assert!(!session.needs_refresh(&hour, None).unwrap());
    assert!(session.needs_refresh(&hour, Some(3600)).unwrap());
    hour.expires_at = Some(now + 200);
    hour.obtained_at = now - 3400;
    assert!(
        session.needs_refresh(&hour, None).unwrap(),
        "inside the 300 s margin"
    );
    hour.expires_at = None;
    assert!(
        !session.needs_refresh(&hour, None).unwrap(),
        "unknown expiry"
    );
}

/// The service keeps a valid token in memory only while the component's largest default
/// margin cannot make it due (`connector_host::serve::token_cache`): that margin must be the
/// component's.
#[test]
fn the_largest_default_margin_is_the_one_the_service_cache_assumes() {
    let server = TestServer::start(|_| Reply::json(200, "{}"));
    let mut session = session_for(&server);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ceiling = connector_host::serve::token_cache::MARGIN_CEILING_SECS;
    // A long-lived token: a tenth of its lifetime is beyond the ceiling, so the margin is it.
    let mut long = tokens(Some("rt"));
    long.obtained_at = 0;
    long.expires_at = Some(now + ceiling + 60);
    assert!(!session.needs_refresh(&long, None).unwrap());
    long.expires_at = Some(now + ceiling - 2);
    assert!(session.needs_refresh(&long, None).unwrap());
}

#[test]
fn client_credentials_with_scopes_and_audience() {
    let server = TestServer::start(|_| {
        Reply::json(
            200,
            r#"{"access_token":"cc","token_type":"Bearer","expires_in":3600}"#,
        )
    });
    let mut config = config_for(&server);
    config.scopes = vec!["api:read".into(), "api:write".into()];
    config.token_requests.client_credentials.params = vec![kv("audience", "https://api.example")];
    let tokens = session_for(&server)
        .fetch_client_credentials(&config)
        .unwrap();
    assert_eq!(tokens.access_token, "cc");
    assert_eq!(tokens.scopes, ["api:read", "api:write"]);
    assert_eq!(tokens.refresh_token, None);
    let request = &server.requests()[0];
    assert_eq!(request.target, "/token?v=1");
    assert_eq!(
        body(request),
        "grant_type=client_credentials&scope=api%3Aread+api%3Awrite&audience=https%3A%2F%2Fapi.example"
    );
    assert_eq!(
        request.header("authorization"),
        Some(basic("my+client", "s3cret").as_str())
    );

    let mut duplicate = config_for(&server);
    duplicate.scopes = vec!["a".into()];
    duplicate.token_requests.client_credentials.params = vec![kv("scope", "b")];
    assert_eq!(
        connector_error(session_for(&server).fetch_client_credentials(&duplicate)),
        Error::Configuration(ConfigurationError::ReservedParameter("scope".into()))
    );
}

#[test]
fn device_flow_begin_and_every_poll_outcome() {
    let polls = AtomicUsize::new(0);
    let server = TestServer::start(move |request| {
        if request.target == "/device/auth" {
            return Reply::json(
                200,
                r#"{"device_code":"dc-1","user_code":"WDJB-MJHT","verification_uri":"https://a.example/device","verification_uri_complete":"https://a.example/device?user_code=WDJB-MJHT","expires_in":900}"#,
            );
        }
        match polls.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::json(400, r#"{"error":"authorization_pending"}"#),
            1 => Reply::json(400, r#"{"error":"slow_down"}"#),
            2 => Reply::json(
                200,
                r#"{"access_token":"dev-at","refresh_token":"dev-rt","expires_in":60}"#,
            ),
            3 => Reply::json(400, r#"{"error":"access_denied"}"#),
            _ => Reply::json(400, r#"{"error":"expired_token"}"#),
        }
    });
    let mut config = config_for(&server);
    config.profile.client_auth = ClientAuthMethod::None;
    config.profile.device_authorization_url = Some(server.url("/device/auth"));
    let mut session = session_for(&server);
    let mut device = session.begin_device(&config).unwrap();
    assert_eq!(device.user_code, "WDJB-MJHT");
    assert_eq!(device.interval_seconds, 5, "RFC 8628 default");
    assert_eq!(
        device.verification_uri_complete.as_deref(),
        Some("https://a.example/device?user_code=WDJB-MJHT")
    );
    assert_eq!(
        body(&server.requests()[0]),
        "scope=openid+profile&client_id=my+client"
    );

    assert!(matches!(
        session.poll_device(&config, &device).unwrap(),
        DevicePoll::Pending(5)
    ));
    match session.poll_device(&config, &device).unwrap() {
        DevicePoll::SlowDown(interval) => {
            assert_eq!(interval, 10);
            device.interval_seconds = interval;
        }
        _ => panic!("expected slow_down"),
    }
    match session.poll_device(&config, &device).unwrap() {
        DevicePoll::Complete(tokens) => {
            assert_eq!(tokens.access_token, "dev-at");
            assert_eq!(tokens.scopes, ["openid", "profile"]);
        }
        _ => panic!("expected tokens"),
    }
    for code in [ErrorCode::AccessDenied, ErrorCode::ExpiredToken] {
        assert_eq!(
            connector_error(session.poll_device(&config, &device)),
            Error::ServerSaidNo(OauthError {
                code,
                description: None,
                uri: None
            })
        );
    }
    let poll = &server.requests()[1];
    assert_eq!(poll.target, "/token?v=1");
    assert_eq!(
        body(poll),
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=dc-1&client_id=my+client"
    );
}

fn api_get(url: String) -> HttpRequest {
    HttpRequest {
        method: HttpMethod::Get,
        url,
        headers: vec![kv("Accept", "application/json")],
        body: vec![],
    }
}

#[test]
fn api_calls_attach_the_token_and_report_rejection() {
    let server = TestServer::start(|request| match request.target.as_str() {
        "/ok" => Reply::json(200, r#"{"ok":true}"#),
        "/expired" => Reply::new(
            401,
            &[("WWW-Authenticate", r#"Bearer error="invalid_token""#)],
            "",
        ),
        "/forbidden" => Reply::new(403, &[], ""),
        _ => Reply::json(200, r#"{"ok":false,"error":"invalid_auth"}"#),
    });
    let config = config_for(&server);
    let mut session = session_for(&server);
    let ok = session
        .call_api(&config, &tokens(None), &api_get(server.url("/ok")))
        .unwrap();
    assert!(!ok.token_rejected);
    assert_eq!(ok.response.status, 200);
    assert_eq!(ok.response.body, br#"{"ok":true}"#);
    let sent = &server.requests()[0];
    assert_eq!(sent.header("authorization"), Some("Bearer at-old"));
    assert_eq!(sent.header("accept"), Some("application/json"));

    let expired = session
        .call_api(&config, &tokens(None), &api_get(server.url("/expired")))
        .unwrap();
    assert!(expired.token_rejected);
    assert_eq!(expired.response.status, 401);
    assert!(
        !session
            .call_api(&config, &tokens(None), &api_get(server.url("/forbidden")))
            .unwrap()
            .token_rejected
    );
    assert!(
        !session
            .call_api(&config, &tokens(None), &api_get(server.url("/slack")))
            .unwrap()
            .token_rejected
    );

    // A vendor that signals rejection with 403 or inside a 200, and wants its own header.
    let mut quirky = config_for(&server);
    quirky.profile.token_rejection = TokenRejection {
        statuses: vec![403],
        body_markers: vec![r#""error":"invalid_auth""#.into()],
    };
    quirky.profile.token_placement = TokenPlacement::Header(TokenHeader {
        name: "X-Api-Token".into(),
        prefix: "Token ".into(),
    });
    assert!(
        session
            .call_api(&quirky, &tokens(None), &api_get(server.url("/forbidden")))
            .unwrap()
            .token_rejected
    );
    assert!(
        session
            .call_api(&quirky, &tokens(None), &api_get(server.url("/slack")))
            .unwrap()
            .token_rejected
    );
    let custom = server.requests().pop().unwrap();
    assert_eq!(custom.header("x-api-token"), Some("Token at-old"));
    assert_eq!(custom.header("authorization"), None);

    assert_eq!(
        connector_error(session.call_api(
            &config,
            &tokens(None),
            &api_get("http://api.example.com/x".into())
        )),
        Error::Configuration(ConfigurationError::InsecureUrl("url".into()))
    );
}

#[test]
fn revocation_sends_both_tokens_and_introspection_reads_the_answer() {
    let server = TestServer::start(|request| match request.target.as_str() {
        "/revoke" => Reply::new(200, &[], ""),
        _ => Reply::json(
            200,
            r#"{"active":true,"scope":"openid profile","client_id":"my client","sub":"alice","exp":2000}"#,
        ),
    });
    let mut config = config_for(&server);
    config.profile.revocation_url = Some(server.url("/revoke"));
    config.profile.introspection_url = Some(server.url("/introspect"));
    let mut session = session_for(&server);
    session.revoke(&config, &tokens(Some("rt-old"))).unwrap();
    let introspection = session
        .introspect(&config, "at-old", Some("access_token"))
        .unwrap();
    assert!(introspection.active);
    assert_eq!(introspection.scopes, ["openid", "profile"]);
    assert_eq!(introspection.subject.as_deref(), Some("alice"));
    assert_eq!(introspection.expires_at, Some(2000));

    let requests = server.requests();
    let bodies: Vec<String> = requests.iter().map(body).collect();
    assert_eq!(
        bodies,
        [
            "token=rt-old&token_type_hint=refresh_token",
            "token=at-old&token_type_hint=access_token",
            "token=at-old&token_type_hint=access_token",
        ]
    );
    for request in &requests {
        assert_eq!(
            request.header("authorization"),
            Some(basic("my+client", "s3cret").as_str())
        );
    }

    let mut no_endpoint = config_for(&server);
    no_endpoint.profile.revocation_url = None;
    assert_eq!(
        connector_error(session.revoke(&no_endpoint, &tokens(None))),
        Error::Configuration(ConfigurationError::MissingEndpoint("revocation-url".into()))
    );
}
