//! `call` with a path relative to the profile's `api-base-url`, its exit code on an HTTP
//! error answer (1, the body still printed, as `gh api` does), and its output (`--json`, a
//! newline on a terminal), against the real authorization server's userinfo endpoint and its
//! test endpoints for bodies that are not JSON.

use connector_host::cli::EXIT_USAGE;
use connector_host::store::{Grant, SecretSource, Store};
use connector_host::types::{Client, ConnectionConfig, TokenSet};
use serde_json::json;

use crate::connect::{cli, cli_with_terminal, cli_without_stdout};
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
    // A JSON error body is parsed too.
    assert_eq!(object["json"]["error"], "invalid_request", "{}", json.out);
    assert_eq!(object.get("body"), None, "{}", json.out);
    assert_eq!(json.err, "error: the API answered HTTP 404\n");

    // Standard output's reader gone (`| head`): an error answer still exits 1, a good one 0.
    let closed = cli_without_stdout(&["--store", &store, "call", "conn", "GET", "/no-such-route"]);
    assert_eq!(closed.0, 1, "{}", closed.1);
    assert!(
        closed.1.ends_with("error: the API answered HTTP 404\n"),
        "{}",
        closed.1
    );
    let (code, err) = cli_without_stdout(&["--store", &store, "call", "conn", "GET", "/me"]);
    assert_eq!(code, 0, "{err}");
    // The status and the headers, nothing else: no error line.
    assert!(err.starts_with("HTTP 200\n"), "{err}");
    assert!(!err.contains("error"), "{err}");
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
        resources: vec![],
        dpop: false,
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
        dpop_key_thumbprint: None,
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

/// `call ... --json` for `path`: the object printed, its `headers` checked (an array of
/// `[name, value]` pairs with the content type) and taken out, since they carry a date.
fn call_json(store: &str, path: &str, content_type: &str) -> serde_json::Value {
    let outcome = cli(
        &["--store", store, "call", "conn", "GET", path, "--json"],
        &[],
    );
    assert_eq!(outcome.code, 0, "{}", outcome.err);
    assert_eq!(outcome.err, "");
    assert!(outcome.out.ends_with("}\n"), "{}", outcome.out);
    let mut object: serde_json::Value = serde_json::from_str(&outcome.out).unwrap();
    let headers = object
        .as_object_mut()
        .unwrap()
        .remove("headers")
        .expect("a headers field");
    let pairs: Vec<(String, String)> = serde_json::from_value(headers).unwrap();
    let found = pairs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.as_str());
    assert_eq!(found, Some(content_type), "{pairs:?}");
    object
}

#[test]
fn call_json_parses_a_json_body_and_keeps_text_and_bytes() {
    let (server, dir) = (OidcServer::start(), TempDir::new("call-json"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let profile = profile(&server, &dir.0);
    let browser = user_agent("");
    let connected = cli(
        &connect_code_args(&store, "conn", &profile, "basic-client", &browser),
        &[("SECRET", "basic-secret")],
    );
    assert_eq!(connected.code, 0, "{}", connected.err);

    // A JSON body: parsed, under `json` (so `jq .json.sub` works), and no `body`.
    assert_eq!(
        call_json(&store, "/me", "application/json; charset=utf-8"),
        json!({ "status": 200, "json": { "sub": "alice", "name": "Test User alice" } })
    );
    // Text that is not JSON: under `body`, as it came.
    assert_eq!(
        call_json(&store, "/__text", "text/plain; charset=utf-8"),
        json!({ "status": 200, "body": "plain text, no newline" })
    );
    // Bytes that are not UTF-8: base64 under `body_base64` (ff 00 41).
    assert_eq!(
        call_json(&store, "/__bytes", "application/octet-stream"),
        json!({ "status": 200, "body_base64": "/wBB" })
    );
}

#[test]
fn call_ends_the_body_with_a_newline_on_a_terminal_only() {
    let (server, dir) = (OidcServer::start(), TempDir::new("call-terminal"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let profile = profile(&server, &dir.0);
    let browser = user_agent("");
    let connected = cli(
        &connect_code_args(&store, "conn", &profile, "basic-client", &browser),
        &[("SECRET", "basic-secret")],
    );
    assert_eq!(connected.code, 0, "{}", connected.err);
    let call = |path: &str, terminal: bool| {
        let outcome = cli_with_terminal(
            &["--store", &store, "call", "conn", "GET", path],
            &[],
            terminal,
        );
        assert_eq!(outcome.code, 0, "{}", outcome.err);
        outcome.out
    };

    // A pipe gets the body byte for byte; a terminal gets a newline after it.
    assert_eq!(call("/__text", false), "plain text, no newline");
    assert_eq!(call("/__text", true), "plain text, no newline\n");
    assert_eq!(
        call("/me", true),
        "{\"sub\":\"alice\",\"name\":\"Test User alice\"}\n"
    );
    // A body that ends with a newline gets no second one.
    assert_eq!(call("/__text?text=one%20line%0A", true), "one line\n");
}
