//! The grants of contract 0.3.0 that involve no user, against the real authorization
//! server: token exchange (RFC 8693) from a stored connection and from an environment
//! variable, and the JWT bearer grant (RFC 7523 §2.1) signed with the host's key; and a
//! connection from a protected resource's URL alone (RFC 9728, RFC 7591).

use std::path::Path;

use connector_host::store::{Grant, SecretSource, Store, TokenSource};
use serde_json::{Value, json};

use crate::client_auth::connect_issuer;
use crate::connect::cli;
use crate::server::{OidcServer, TempDir, user_agent};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

fn stored(store: &str, name: &str) -> connector_host::store::StoredConnection {
    Store::open(Path::new(store)).unwrap().get(name).unwrap()
}

/// A user's connection `user` with `basic-client`, signed in through the user agent.
fn connect_user(server: &OidcServer, store: &str) {
    let extra = ["--client-secret-env", "SECRET"];
    let env = [("SECRET", "basic-secret")];
    let outcome = connect_issuer(server, store, "user", "basic-client", &extra, &env);
    assert_eq!(outcome.code, 0, "{}", outcome.err);
}

/// `connect NAME --grant token-exchange` for `exchange-client`, plus `extra`.
fn exchange(
    server: &OidcServer,
    store: &str,
    name: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> crate::connect::Outcome {
    let mut args = vec![
        "--store",
        store,
        "connect",
        name,
        "--grant",
        "token-exchange",
        "--issuer",
        &server.issuer,
        "--client-id",
        "exchange-client",
        "--client-secret-env",
        "EXCHANGE_SECRET",
    ];
    args.extend_from_slice(extra);
    let mut env = env.to_vec();
    env.push(("EXCHANGE_SECRET", "exchange-secret"));
    cli(&args, &env)
}

fn exchange_requests(server: &OidcServer) -> Vec<Value> {
    server
        .get("/__token-requests")
        .as_array()
        .unwrap()
        .iter()
        .filter(|request| request["params"]["grant_type"] == EXCHANGE)
        .cloned()
        .collect()
}

#[test]
fn a_stored_connections_token_is_exchanged_and_exchanged_again_when_due() {
    // Long enough that the exchanged token is still active when it is introspected on a
    // loaded machine; the expiry below waits as long.
    const TTL_SECONDS: u64 = 5;
    let (server, dir) = (
        OidcServer::start_with(&[("ACCESS_TOKEN_TTL", &TTL_SECONDS.to_string())]),
        TempDir::new("exchange"),
    );
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    connect_user(&server, &store);
    let outcome = exchange(
        &server,
        &store,
        "api",
        &[
            "--subject-connection",
            "user",
            "--audience",
            "https://api.example.test",
            "--audience",
            "https://other.example.test",
        ],
        &[],
    );
    assert_eq!(outcome.code, 0, "{}", outcome.err);
    let user = stored(&store, "user");
    let api = stored(&store, "api");
    assert_eq!(api.grant, Grant::TokenExchange);
    assert_eq!(
        api.secrets.exchange().unwrap().subject,
        TokenSource::Connection("user".into())
    );
    let requests = exchange_requests(&server);
    assert_eq!(requests.len(), 1);
    let params = &requests[0]["params"];
    assert_eq!(requests[0]["authorization"], json!("Basic"));
    assert_eq!(
        (
            &params["subject_token"],
            &params["subject_token_type"],
            &params["audience"]
        ),
        (
            &json!(user.tokens.access_token),
            &json!(ACCESS_TOKEN),
            &json!(["https://api.example.test", "https://other.example.test"])
        )
    );
    let introspection = server.introspect(&api.tokens.access_token);
    assert_eq!(
        (
            &introspection["active"],
            &introspection["client_id"],
            &introspection["aud"]
        ),
        (
            &json!(true),
            &json!("exchange-client"),
            &json!(["https://api.example.test", "https://other.example.test"])
        )
    );
    let show = cli(&["--store", &store, "show", "api"], &[]);
    assert!(
        show.out
            .contains("exchanges:      connection `user` (exchanged again when due)"),
        "{}",
        show.out
    );
    // Expired: `token` exchanges the user's (refreshed) token again, unattended.
    std::thread::sleep(std::time::Duration::from_millis(TTL_SECONDS * 1000 + 300));
    let token = cli(&["--store", &store, "token", "api"], &[]);
    assert_eq!(token.code, 0, "{}", token.err);
    let again = stored(&store, "api");
    assert_ne!(again.tokens.access_token, api.tokens.access_token);
    let user_now = stored(&store, "user");
    assert_ne!(user_now.tokens.access_token, user.tokens.access_token);
    let requests = exchange_requests(&server);
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1]["params"]["subject_token"],
        json!(user_now.tokens.access_token)
    );
}

#[test]
fn an_environment_token_is_exchanged_once_and_an_unknown_audience_is_refused() {
    // Long enough that the subject token is still active when it is exchanged on a loaded
    // machine (two CLI runs after the sign-in); the expiry below waits as long.
    const TTL_SECONDS: u64 = 6;
    let (server, dir) = (
        OidcServer::start_with(&[("ACCESS_TOKEN_TTL", &TTL_SECONDS.to_string())]),
        TempDir::new("exchange-env"),
    );
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    connect_user(&server, &store);
    let subject = stored(&store, "user").tokens.access_token;
    let outcome = exchange(
        &server,
        &store,
        "once",
        &[
            "--subject-token-env",
            "SUBJECT",
            "--resource",
            &format!("{}/api", server.issuer),
        ],
        &[("SUBJECT", &subject)],
    );
    assert_eq!(outcome.code, 0, "{}", outcome.err);
    let once = stored(&store, "once");
    assert_eq!(
        server.introspect(&once.tokens.access_token)["aud"],
        json!(format!("{}/api", server.issuer))
    );
    // The subject token was not kept.
    assert_eq!(once.secret, SecretSource::Stored("exchange-secret".into()));
    assert_eq!(
        once.secrets.exchange().unwrap().subject,
        TokenSource::Environment("SUBJECT".into())
    );
    // Expired: it must be connected again (exit 3), and says why.
    std::thread::sleep(std::time::Duration::from_millis(TTL_SECONDS * 1000 + 300));
    let token = cli(&["--store", &store, "token", "once"], &[]);
    assert_eq!(
        token.code,
        connector_host::cli::EXIT_REAUTHORIZE,
        "{}",
        token.err
    );
    assert!(
        token.err.contains("$SUBJECT at connect, which is not kept"),
        "{}",
        token.err
    );

    // An audience the server does not serve: its typed refusal.
    let refused = exchange(
        &server,
        &store,
        "elsewhere",
        &[
            "--subject-connection",
            "user",
            "--audience",
            "https://unknown.example.test",
        ],
        &[],
    );
    assert_eq!(refused.code, 1, "{}", refused.err);
    assert!(refused.err.contains("invalid_target"), "{}", refused.err);
    assert!(
        !Store::open(Path::new(&store))
            .unwrap()
            .contains("elsewhere")
            .unwrap()
    );
}

#[test]
fn the_jwt_bearer_grant_signs_its_assertion_with_the_stored_key() {
    let dir = TempDir::new("jwt-bearer");
    let keys = dir.0.join("keys");
    std::fs::create_dir(&keys).unwrap();
    let server = OidcServer::start_with(&[("CLIENT_KEYS_DIR", keys.to_str().unwrap())]);
    let key = keys.join("es256.pem");
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let outcome = cli(
        &[
            "--store",
            &store,
            "connect",
            "robot",
            "--grant",
            "jwt-bearer",
            "--issuer",
            &server.issuer,
            "--client-id",
            "jwt-bearer-client",
            // The spelling: with --grant jwt-bearer, --private-key is the key that
            // signs the grant's assertion (--assertion-key when --private-key is needed for
            // private_key_jwt client authentication).
            "--private-key",
            key.to_str().unwrap(),
            "--key-id",
            "ec-1",
            "--assertion-issuer",
            "robot@service.test",
            "--scope",
            "openid",
        ],
        &[],
    );
    assert_eq!(outcome.code, 0, "{}", outcome.err);
    let assertions: Vec<Value> = server
        .get("/__assertions")
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer")
        .cloned()
        .collect();
    assert_eq!(assertions.len(), 1, "{assertions:?}");
    let assertion = &assertions[0];
    assert_eq!(
        (
            &assertion["status"],
            &assertion["client_id"],
            &assertion["client_assertion_type"]
        ),
        (&json!(200), &json!("jwt-bearer-client"), &Value::Null)
    );
    assert_eq!(
        (&assertion["header"]["alg"], &assertion["header"]["kid"]),
        (&json!("ES256"), &json!("ec-1"))
    );
    let claims = &assertion["claims"];
    assert_eq!(
        (&claims["iss"], &claims["sub"], &claims["aud"]),
        (
            &json!("robot@service.test"),
            &json!("robot@service.test"),
            &json!(format!("{}/token", server.issuer))
        )
    );
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 300);
    assert!(claims["jti"].as_str().is_some_and(|jti| jti.len() >= 16));
    let robot = stored(&store, "robot");
    assert_eq!(robot.grant, Grant::JwtBearer);
    let settings = robot.secrets.jwt_bearer().unwrap();
    assert_eq!(settings.pem, std::fs::read_to_string(&key).unwrap());
    let show = cli(&["--store", &store, "show", "robot"], &[]);
    assert!(
        show.out
            .contains("assertion key:  stored with it (kid ec-1)"),
        "{}",
        show.out
    );
    assert!(!show.out.contains("PRIVATE KEY"));
}

#[test]
fn a_resource_url_alone_registers_a_client_and_connects() {
    let (server, dir) = (OidcServer::start(), TempDir::new("resource"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let whoami = format!("{}/api/whoami", server.issuer);
    let browser = user_agent("");
    let outcome = cli(
        &[
            "--store",
            &store,
            "connect",
            "mcp",
            "--resource",
            &whoami,
            "--scope",
            "openid",
            "--redirect-uri",
            "http://127.0.0.1:0/callback",
            "--browser",
            &browser,
            "--timeout",
            "60",
        ],
        &[],
    );
    assert_eq!(outcome.code, 0, "{}", outcome.err);
    let registrations = server.get("/__registrations");
    let registrations = registrations.as_array().unwrap();
    assert_eq!(registrations.len(), 1);
    assert_eq!(registrations[0]["status"], json!(201));
    assert_eq!(
        registrations[0]["body"]["token_endpoint_auth_method"],
        json!("none")
    );
    let mcp = stored(&store, "mcp");
    assert_eq!(
        Some(mcp.config.client.client_id.as_str()),
        registrations[0]["client_id"].as_str()
    );
    let resource = format!("{}/api", server.issuer);
    assert_eq!(mcp.config.resources, std::slice::from_ref(&resource));
    assert_eq!(
        mcp.secrets
            .registration
            .as_ref()
            .unwrap()
            .resource
            .as_deref(),
        Some(resource.as_str())
    );
    let call = cli(
        &["--store", &store, "call", "mcp", "GET", &whoami, "--json"],
        &[],
    );
    assert_eq!(call.code, 0, "{}", call.err);
    let answer: Value = serde_json::from_str(&call.out).unwrap();
    assert_eq!(answer["status"], json!(200));
    assert_eq!(
        (&answer["json"]["aud"], &answer["json"]["client_id"]),
        (&json!(resource), &json!(mcp.config.client.client_id))
    );
}
