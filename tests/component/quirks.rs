//! Vendor quirks as data, each against a server on 127.0.0.1 that behaves like the vendor;
//! presets and placeholders through the component.

use connector_host::presets::Catalogue;
use connector_host::types::{
    BodyFormat, ClientAuthMethod, ConfigurationError, ConnectionConfig, Error, ErrorCode,
    OauthError, PkceMethod,
};
use connector_host::{AllowList, CallError, HttpTransport, Limits, Session};

use crate::common::{Recorded, Reply, TestServer, config, kv, profile, runtime};

fn session_for(server: &TestServer) -> Session {
    let transport = HttpTransport::new(
        AllowList::from_urls([server.url("/").as_str()]),
        Limits::default(),
    );
    runtime().instantiate(transport).unwrap()
}

fn body(request: &Recorded) -> String {
    String::from_utf8(request.body.clone()).unwrap()
}

/// Runs the code flow with `code` as the code the "browser" brings back.
fn exchange(
    server: &TestServer,
    config: &ConnectionConfig,
    code: &str,
) -> Result<connector_host::types::TokenSet, CallError> {
    let mut session = session_for(server);
    let request = session.begin(config)?;
    let callback = format!(
        "http://127.0.0.1:8765/callback?code={code}&state={}",
        request.pending.state
    );
    session_for(server).complete(config, &request.pending, &callback)
}

fn base_config(server: &TestServer) -> ConnectionConfig {
    let mut config = config(profile(&server.url("/authorize"), &server.url("/token")));
    config.client.client_secret = Some("shh".into());
    config
}

#[test]
fn form_encoded_unless_json_is_asked_for() {
    // Like GitHub: form-encoded unless the request says Accept: application/json.
    let server = TestServer::start(|request| {
        if request.header("accept") == Some("application/json") {
            Reply::json(
                200,
                r#"{"access_token":"gho_json","token_type":"bearer","scope":"repo,gist"}"#,
            )
        } else {
            Reply::new(
                200,
                &[("Content-Type", "application/x-www-form-urlencoded")],
                "access_token=gho_form",
            )
        }
    });
    let tokens = exchange(&server, &base_config(&server), "c").unwrap();
    assert_eq!(tokens.access_token, "gho_json");
    assert_eq!(tokens.scopes, ["repo", "gist"]);
    assert_eq!(tokens.expires_at, None);
}

#[test]
fn nested_tokens_and_errors_inside_a_200() {
    // Like Slack's oauth.v2.access: the user token under authed_user, failures as ok:false.
    let server = TestServer::start(|request| {
        if body(request).contains("code=bad") {
            Reply::json(200, r#"{"ok":false,"error":"invalid_code"}"#)
        } else {
            Reply::json(
                200,
                r#"{"ok":true,"app_id":"A1","access_token":"xoxb-bot","token_type":"bot",
                    "authed_user":{"id":"U1","scope":"chat:write,users:read","access_token":"xoxp-user","token_type":"user"},
                    "team":{"id":"T1"}}"#,
            )
        }
    });
    let mut config = base_config(&server);
    config.profile.scope_separator = ",".into();
    config.profile.token_response.success_flag = Some("ok".into());
    config.profile.token_response.path = vec!["authed_user".into()];
    let tokens = exchange(&server, &config, "good").unwrap();
    assert_eq!(tokens.access_token, "xoxp-user");
    assert_eq!(tokens.token_type, "user");
    assert_eq!(tokens.scopes, ["chat:write", "users:read"]);
    assert_eq!(
        tokens.extras,
        [
            kv("app_id", "\"A1\""),
            kv("id", "\"U1\""),
            kv("ok", "true"),
            kv("team", r#"{"id":"T1"}"#),
        ]
    );
    match exchange(&server, &config, "bad") {
        Err(CallError::Connector(error)) => assert_eq!(
            error,
            Error::ServerSaidNo(OauthError {
                code: ErrorCode::Extension("invalid_code".into()),
                description: None,
                uri: None
            })
        ),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn basic_authentication_with_a_json_body() {
    // Like Notion: HTTP Basic and a JSON token request.
    let server =
        TestServer::start(|_| Reply::json(200, r#"{"access_token":"secret_n","bot_id":"b1"}"#));
    let mut config = base_config(&server);
    config.profile.token_request_format = BodyFormat::Json;
    config.profile.pkce = PkceMethod::Disabled;
    config.redirect_uri = Some("http://127.0.0.1:8765/callback".into());
    let tokens = exchange(&server, &config, "c0de").unwrap();
    assert_eq!(tokens.access_token, "secret_n");
    let request = &server.requests()[0];
    assert_eq!(request.header("content-type"), Some("application/json"));
    // base64("my+client:shh")
    assert_eq!(
        request.header("authorization"),
        Some("Basic bXkrY2xpZW50OnNoaA==")
    );
    assert_eq!(
        body(request),
        r#"{"grant_type":"authorization_code","code":"c0de","redirect_uri":"http://127.0.0.1:8765/callback"}"#
    );
}

#[test]
fn refresh_token_only_with_the_offline_authorize_parameter() {
    // Like Dropbox: a refresh token only when the authorize request had
    // token_access_type=offline. The "browser" here reads the authorize URL and brings back
    // a code saying which kind of grant the user approved.
    let server = TestServer::start(|request| {
        if body(request).contains("code=offline") {
            Reply::json(
                200,
                r#"{"access_token":"sl.a","expires_in":14400,"refresh_token":"r1"}"#,
            )
        } else {
            Reply::json(200, r#"{"access_token":"sl.a","expires_in":14400}"#)
        }
    });
    let mut config = base_config(&server);
    config.profile.offline_access.authorize_params = vec![kv("token_access_type", "offline")];
    for offline in [false, true] {
        config.offline_access = offline;
        let mut session = session_for(&server);
        let request = session.begin(&config).unwrap();
        let asked = request.url.contains("&token_access_type=offline");
        assert_eq!(asked, offline, "{}", request.url);
        let code = if asked { "offline" } else { "online" };
        let callback = format!(
            "http://127.0.0.1:8765/callback?code={code}&state={}",
            request.pending.state
        );
        let tokens = session_for(&server)
            .complete(&config, &request.pending, &callback)
            .unwrap();
        assert_eq!(tokens.refresh_token.is_some(), offline);
    }
}

#[test]
fn offline_access_by_scope_and_default_expiry() {
    // Like Salesforce: a refresh token by scope, and no expires_in in the response.
    let server = TestServer::start(|_| {
        Reply::json(
            200,
            r#"{"access_token":"00D","refresh_token":"5Aep","instance_url":"https://na1.salesforce.com"}"#,
        )
    });
    let mut config = base_config(&server);
    config.scopes = vec!["api".into()];
    config.offline_access = true;
    config.profile.offline_access.scopes = vec!["refresh_token".into()];
    config.profile.token_response.default_expires_in = Some(7200);
    let request = session_for(&server).begin(&config).unwrap();
    assert!(
        request.url.contains("&scope=api+refresh_token&"),
        "{}",
        request.url
    );
    let callback = format!(
        "http://127.0.0.1:8765/callback?code=c&state={}",
        request.pending.state
    );
    let tokens = session_for(&server)
        .complete(&config, &request.pending, &callback)
        .unwrap();
    assert_eq!(tokens.expires_at.unwrap() - tokens.obtained_at, 7200);
    assert_eq!(tokens.scopes, ["api", "refresh_token"]);
    assert_eq!(
        tokens.extras,
        [kv("instance_url", "\"https://na1.salesforce.com\"")]
    );
}

#[test]
fn required_query_parameter_and_custom_header_on_the_token_endpoint() {
    // A vendor that needs ?api-version=2 on its token URL and an X-Vendor-Key header.
    let server = TestServer::start(|request| {
        if request.target != "/token?api-version=2" {
            return Reply::json(
                400,
                r#"{"error":"invalid_request","error_description":"api-version required"}"#,
            );
        }
        if request.header("x-vendor-key") != Some("k-123") {
            return Reply::json(401, r#"{"error":"invalid_client"}"#);
        }
        Reply::json(200, r#"{"access_token":"ok"}"#)
    });
    let mut config = base_config(&server);
    config.profile.token_url = server.url("/token?api-version=2");
    config.profile.client_auth = ClientAuthMethod::ClientSecretPost;
    config.profile.token_requests.code_exchange.headers = vec![kv("X-Vendor-Key", "k-123")];
    assert_eq!(exchange(&server, &config, "c").unwrap().access_token, "ok");

    config.profile.token_requests.code_exchange.headers = vec![];
    match exchange(&server, &config, "c") {
        Err(CallError::Connector(Error::ServerSaidNo(error))) => {
            assert_eq!(error.code, ErrorCode::InvalidClient)
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn presets_and_placeholders_through_the_component() {
    let mut session = runtime()
        .instantiate(HttpTransport::new(AllowList::default(), Limits::default()))
        .unwrap();
    // Every built-in preset's profile is parsed and checked by the component itself.
    let catalogue = Catalogue::built_in();
    assert!(
        catalogue.presets().len() >= 100,
        "{}",
        catalogue.presets().len()
    );
    for preset in catalogue.presets() {
        let profile = preset
            .profile(&mut session)
            .unwrap_or_else(|e| panic!("{}: {e}", preset.id));
        assert_eq!(profile.id, preset.id);
        assert_eq!(profile.variables, preset.variables, "{}", preset.id);
    }
    let microsoft = catalogue.get("microsoft").unwrap();
    assert_eq!(microsoft.variables, ["tenant"]);
    assert!(!microsoft.sources.is_empty());

    let profile = catalogue.profile("microsoft", &mut session).unwrap();
    let mut config = config(profile);
    match session.resolve_profile(&config) {
        Err(CallError::Connector(Error::Configuration(ConfigurationError::MissingVariable(
            name,
        )))) => {
            assert_eq!(name, "tenant")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    config.variables = vec![kv("tenant", "contoso.onmicrosoft.com")];
    let resolved = session.resolve_profile(&config).unwrap();
    assert_eq!(
        resolved.token_url,
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    config.variables = vec![kv("tenant", "evil.example/x?")];
    assert!(matches!(
        session.resolve_profile(&config),
        Err(CallError::Connector(Error::Configuration(
            ConfigurationError::InvalidVariable(_)
        )))
    ));
    assert!(matches!(
        catalogue.profile("myspace", &mut session),
        Err(CallError::Connector(Error::Configuration(
            ConfigurationError::UnknownPreset(_)
        )))
    ));
}

#[test]
fn discovery_paths_and_typed_errors() {
    use connector_host::types::DiscoveryError;
    let server = TestServer::start(|request| {
        // Documents name this server's own origin, as a real issuer would.
        let origin = format!("http://{}", request.header("host").unwrap_or_default());
        let json = |body: String| Reply::json(200, &body);
        match request.target.as_str() {
            "/.well-known/oauth-authorization-server/mismatch" => json(
                r#"{"issuer":"https://evil.example","token_endpoint":"https://evil.example/t"}"#
                    .into(),
            ),
            "/.well-known/oauth-authorization-server/incomplete" => {
                json(format!(r#"{{"issuer":"{origin}/incomplete"}}"#))
            }
            // A web app's catch-all page at the RFC 8414 location, metadata at the OIDC one.
            "/.well-known/oauth-authorization-server/spa" => {
                Reply::new(200, &[("Content-Type", "text/html")], "<html>app</html>")
            }
            "/spa/.well-known/openid-configuration" => json(format!(
                r#"{{"issuer":"{origin}/spa","token_endpoint":"{origin}/spa/token"}}"#
            )),
            "/.well-known/oauth-authorization-server/html" => {
                Reply::new(200, &[("Content-Type", "text/html")], "<html>login</html>")
            }
            "/oidc-only/.well-known/openid-configuration" => json(format!(
                r#"{{"issuer":"{origin}/oidc-only","token_endpoint":"{origin}/oidc-only/token",
                    "authorization_endpoint":"{origin}/oidc-only/auth",
                    "code_challenge_methods_supported":["S256"],
                    "token_endpoint_auth_methods_supported":["client_secret_post"]}}"#
            )),
            _ => Reply::new(404, &[], ""),
        }
    });
    let discover = |path: &str| session_for(&server).discover(&server.url(path));
    let discovery_error = |path: &str| match discover(path) {
        Err(CallError::Connector(Error::Discovery(error))) => error,
        other => panic!("{path}: {:?}", other.map(|_| ())),
    };
    assert_eq!(discovery_error("/missing"), DiscoveryError::NotFound(404));
    assert_eq!(
        discovery_error("/mismatch"),
        DiscoveryError::IssuerMismatch("https://evil.example".into())
    );
    assert_eq!(
        discovery_error("/incomplete"),
        DiscoveryError::MissingField("token_endpoint".into())
    );
    assert!(matches!(
        discover("/html"),
        Err(CallError::Connector(Error::InvalidResponse(_)))
    ));
    assert_eq!(
        discover("/spa").unwrap().token_url,
        server.url("/spa/token")
    );
    let profile = discover("/oidc-only").unwrap();
    assert_eq!(profile.token_url, server.url("/oidc-only/token"));
    assert_eq!(profile.client_auth, ClientAuthMethod::ClientSecretPost);
    assert_eq!(profile.pkce, PkceMethod::S256);

    // RFC 8414 first (suffix inserted before the path), then OpenID Connect (appended).
    let targets: Vec<String> = server.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets[..2],
        [
            "/.well-known/oauth-authorization-server/missing".to_owned(),
            "/missing/.well-known/openid-configuration".to_owned()
        ]
    );
}

/// The README's example profiles parse and validate through the component.
#[test]
fn example_profiles_parse() {
    let mut session = runtime()
        .instantiate(HttpTransport::new(AllowList::default(), Limits::default()))
        .unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for name in ["local-profile.json", "unusual-vendor.json"] {
        let json = std::fs::read_to_string(dir.join(name)).unwrap();
        let profile = session
            .parse_profile(&json)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        session.validate_profile(&profile).unwrap();
    }
    let unusual = session
        .parse_profile(&std::fs::read_to_string(dir.join("unusual-vendor.json")).unwrap())
        .unwrap();
    assert_eq!(unusual.variables, ["subdomain"]);
    assert_eq!(unusual.token_request_format, BodyFormat::Json);
    assert_eq!(unusual.token_response.path, ["data"]);
}
