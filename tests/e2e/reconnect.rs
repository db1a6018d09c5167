//! `connect` on a name already stored is refused unless `--force` is given, and
//! `reconnect NAME` runs the connection's grant again with its stored settings, against the
//! real authorization server.

use std::path::Path;

use connector_host::cli::EXIT_USAGE;
use connector_host::store::{ConnectionState, Grant, SecretSource, Store, StoredConnection};
use serde_json::json;

use crate::connect::{Outcome, cli};
use crate::lifecycle::{connect_code_args, connect_service_args, profile};
use crate::server::{OidcServer, TempDir, user_agent};

fn stored(store: &str, name: &str) -> StoredConnection {
    Store::open(Path::new(store)).unwrap().get(name).unwrap()
}

/// `connect conn` with basic-client (secret `basic-secret` from `SECRET`) plus `extra`.
fn connect_basic(server: &OidcServer, dir: &Path, store: &str, extra: &[&str]) -> Outcome {
    let profile = profile(server, dir);
    let browser = user_agent("");
    let mut args = connect_code_args(store, "conn", &profile, "basic-client", &browser);
    args.extend_from_slice(extra);
    cli(&args, &[("SECRET", "basic-secret")])
}

/// `reconnect conn` signing in through the scripted user agent, with `extra` and `env`.
fn reconnect(store: &str, extra: &[&str], env: &[(&str, &str)]) -> Outcome {
    let browser = user_agent("");
    let mut args = vec![
        "--store",
        store,
        "reconnect",
        "conn",
        "--browser",
        &browser,
        "--timeout",
        "60",
    ];
    args.extend_from_slice(extra);
    cli(&args, env)
}

#[test]
fn connect_on_an_existing_name_is_refused_without_force_and_replaces_with_it() {
    let (server, dir) = (OidcServer::start(), TempDir::new("connect-existing"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let first = connect_basic(&server, &dir.0, &store, &[]);
    assert_eq!(first.code, 0, "{}", first.err);
    let before = stored(&store, "conn");
    server.reset_stats();

    let again = connect_basic(&server, &dir.0, &store, &[]);
    assert_eq!(again.code, EXIT_USAGE, "{}", again.err);
    assert_eq!(again.out, "");
    assert!(again.err.contains("--force"), "{}", again.err);
    assert!(
        again.err.contains("`connector-host reconnect conn`"),
        "{}",
        again.err
    );
    // Untouched, and nothing was sent.
    let after = stored(&store, "conn");
    assert_eq!(after.tokens, before.tokens);
    assert_eq!(after.config, before.config);
    assert_eq!(after.secret, before.secret);
    assert_eq!(after.token_writes, before.token_writes);
    assert_eq!(after.updated_at, before.updated_at);
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 0, "by_grant": {}})
    );

    // With --force: replaced, here by another client.
    let profile = profile(&server, &dir.0);
    let browser = user_agent("");
    let mut args = connect_code_args(&store, "conn", &profile, "post-client", &browser);
    args.extend(["--client-auth", "client-secret-post", "--force"]);
    let forced = cli(&args, &[("SECRET", "post-secret")]);
    assert_eq!(forced.code, 0, "{}", forced.err);
    let replaced = stored(&store, "conn");
    assert_eq!(replaced.config.client.client_id, "post-client");
    assert_eq!(replaced.secret, SecretSource::Stored("post-secret".into()));
    assert_ne!(replaced.tokens.access_token, before.tokens.access_token);
    assert_eq!(replaced.token_writes, before.token_writes + 1);
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"authorization_code": 1}})
    );
}

#[test]
fn reconnect_signs_in_again_with_the_stored_settings_and_clears_the_mark() {
    let (server, dir) = (OidcServer::start(), TempDir::new("reconnect-stored"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let connected = connect_basic(
        &server,
        &dir.0,
        &store,
        &["--scope", "openid", "--scope", "profile"],
    );
    assert_eq!(connected.code, 0, "{}", connected.err);
    let revoke = cli(&["--store", &store, "revoke", "conn"], &[]);
    assert_eq!(revoke.code, 0, "{}", revoke.err);
    let before = stored(&store, "conn");
    assert!(matches!(
        before.state,
        ConnectionState::NeedsReauthorization { .. }
    ));
    server.reset_stats();

    // No secret in the environment: the stored one is used.
    let again = reconnect(&store, &[], &[]);
    assert_eq!(again.code, 0, "{}", again.err);
    let after = stored(&store, "conn");
    assert_eq!(after.state, ConnectionState::Active);
    assert_eq!(after.config, before.config, "the same settings");
    assert_eq!(after.config.client.client_id, "basic-client");
    assert_eq!(after.config.scopes, ["openid", "profile"]);
    assert_eq!(after.secret, SecretSource::Stored("basic-secret".into()));
    assert_eq!(after.grant, Grant::AuthorizationCode);
    assert_eq!(after.tokens.scopes, ["openid", "profile"]);
    assert_ne!(after.tokens.access_token, before.tokens.access_token);
    assert_eq!(
        server.introspect(&after.tokens.access_token)["client_id"],
        json!("basic-client")
    );
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"authorization_code": 1}})
    );
    let token = cli(&["--store", &store, "token", "conn"], &[]);
    assert_eq!(token.code, 0, "{}", token.err);
    assert_eq!(token.out, format!("{}\n", after.tokens.access_token));
}

#[test]
fn reconnect_takes_overrides_from_the_command_line() {
    let (server, dir) = (OidcServer::start(), TempDir::new("reconnect-override"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let connected = connect_basic(&server, &dir.0, &store, &[]);
    assert_eq!(connected.code, 0, "{}", connected.err);
    let before = stored(&store, "conn");

    let again = reconnect(
        &store,
        &[
            "--scope",
            "openid",
            "--client-secret-env",
            "OTHER",
            "--secret-ref",
            "--redirect-uri",
            "http://127.0.0.1:0/callback",
        ],
        &[("OTHER", "basic-secret")],
    );
    assert_eq!(again.code, 0, "{}", again.err);
    let after = stored(&store, "conn");
    assert_eq!(after.config.scopes, ["openid"]);
    assert_eq!(after.tokens.scopes, ["openid"]);
    assert_eq!(after.secret, SecretSource::Environment("OTHER".into()));
    assert_eq!(
        after.config.client.client_id,
        before.config.client.client_id
    );
    assert_eq!(after.config.profile, before.config.profile);
}

#[test]
fn reconnect_runs_the_stored_grant_and_needs_a_stored_connection() {
    let (server, dir) = (OidcServer::start(), TempDir::new("reconnect-grant"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let profile = profile(&server, &dir.0);
    let connected = cli(
        &connect_service_args(&store, &profile),
        &[("SECRET", "service-secret")],
    );
    assert_eq!(connected.code, 0, "{}", connected.err);
    server.reset_stats();

    let again = cli(&["--store", &store, "reconnect", "svc"], &[]);
    assert_eq!(again.code, 0, "{}", again.err);
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"client_credentials": 1}})
    );
    assert_eq!(stored(&store, "svc").tokens.scopes, ["api:read"]);

    let missing = cli(&["--store", &store, "reconnect", "nope"], &[]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.err.contains("no connection named `nope`"),
        "{}",
        missing.err
    );
}
