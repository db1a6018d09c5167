//! `call` with a path relative to the profile's `api-base-url`, and its exit code on an
//! HTTP error answer (1, the body still printed, as `gh api` does), against the real
//! authorization server's userinfo endpoint.

use connector_host::cli::EXIT_USAGE;
use connector_host::store::{Grant, SecretSource, Store};
use connector_host::types::{Client, ConnectionConfig, TokenSet};

use crate::connect::cli;
use crate::lifecycle::{connect_code_args, profile};
use crate::server::{OidcServer, TempDir, user_agent};

#[test]
fn call_takes_a_path_under_the_api_base_url_and_exits_1_on_an_http_error() {
    let (server, dir) = (OidcServer::start(), TempDir::new("call-path"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    // The profile's api-base-url is the server's issuer, which serves `/me` (userinfo).
    let profile = profile(&server, &dir.0);
    let browser = user_agent("");
    let connected = cli(
        &connect_code_args(&store, "conn", &profile, "basic-client", &browser),
        &[("SECRET", "basic-secret")],
    );
    assert_eq!(connected.code, 0, "{}", connected.err);

    let absolute = cli(
        &[
            "--store",
            &store,
            "call",
            "conn",
            "GET",
            &format!("{}/me", server.issuer),
        ],
        &[],
    );
    assert_eq!(absolute.code, 0, "{}", absolute.err);
    let relative = cli(&["--store", &store, "call", "conn", "GET", "/me"], &[]);
    assert_eq!(relative.code, 0, "{}", relative.err);
    assert_eq!(relative.out, r#"{"sub":"alice","name":"Test User alice"}"#);
    assert_eq!(relative.out, absolute.out);

    // An error answer: exit 1, the body on stdout, the status on stderr.
    let missing = cli(
        &["--store", &store, "call", "conn", "GET", "/no-such-route"],
        &[],
    );
    assert_eq!(missing.code, 1, "{}", missing.err);
    assert!(missing.err.starts_with("HTTP 404\n"), "{}", missing.err);
    assert!(
        missing.err.ends_with("error: the API answered HTTP 404\n"),
        "{}",
        missing.err
    );
    let body: serde_json::Value = serde_json::from_str(&missing.out).unwrap();
    assert_eq!(body["error"], "invalid_request", "{}", missing.out);

    // The same with --json: the one object on stdout, the exit code 1.
    let json = cli(
        &[
            "--store",
            &store,
            "call",
            "conn",
            "GET",
            "/no-such-route",
            "--json",
        ],
        &[],
    );
    assert_eq!(json.code, 1, "{}", json.err);
    let object: serde_json::Value = serde_json::from_str(&json.out).unwrap();
    assert_eq!(object["status"], 404);
    assert_eq!(json.err, "error: the API answered HTTP 404\n");
}

#[test]
fn a_path_without_an_api_base_url_is_refused_before_anything_is_sent() {
    let dir = TempDir::new("call-no-base");
    let path = dir.0.join("store.db");
    let config = ConnectionConfig {
        // No api-base-url; the token URL is never reached.
        profile: connector_host::profile_with_defaults("bare", "https://127.0.0.1:9/token"),
        client: Client {
            client_id: "id".into(),
            client_secret: None,
            auth_method: None,
        },
        redirect_uri: None,
        scopes: vec![],
        authorize_params: vec![],
        token_requests: connector_host::no_token_extras(),
        variables: vec![],
        offline_access: false,
    };
    let tokens = TokenSet {
        access_token: "at".into(),
        token_type: "bearer".into(),
        expires_at: None,
        refresh_token: None,
        id_token: None,
        scopes: vec![],
        obtained_at: 0,
        extras: vec![],
    };
    Store::open(&path)
        .unwrap()
        .save("c", &config, &SecretSource::None, Grant::Device, &tokens)
        .unwrap();
    let store = path.to_str().unwrap();
    let call = cli(&["--store", store, "call", "c", "GET", "/user"], &[]);
    assert_eq!(call.code, EXIT_USAGE, "{}", call.err);
    assert_eq!(call.out, "");
    assert!(call.err.contains("has no api-base-url"), "{}", call.err);
    assert!(call.err.contains("pass the full URL"), "{}", call.err);
}
