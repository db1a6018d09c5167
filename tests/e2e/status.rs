//! `status`, `list` (its header row and `--json`) and `show --json` on a store built through
//! the store API: exact output, the exit code of `status`, and never a secret or a token.
//! Nothing here loads the component or talks to a server.

use std::path::{Path, PathBuf};

use connector_host::cli::EXIT_REAUTHORIZE;
use connector_host::cli::format_time;
use connector_host::store::{Grant, Reauthorization, SecretSource, Store, StoredConnection};
use connector_host::types::{
    Client, ClientAuthMethod, ConnectionConfig, ProviderProfile, TokenSet,
};
use serde_json::{Value, json};

use crate::connect::{Outcome, cli, cli_without_stdout};
use crate::server::TempDir;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn config(client_id: &str, scopes: &[&str]) -> ConnectionConfig {
    ConnectionConfig {
        profile: ProviderProfile {
            issuer: Some("https://login.example.com".into()),
            api_base_url: Some("https://api.example.com".into()),
            ..connector_host::profile_with_defaults("example", "https://login.example.com/token")
        },
        client: Client {
            client_id: client_id.into(),
            client_secret: Some("SECRET-never-shown".into()),
            auth_method: None,
        },
        redirect_uri: Some("http://127.0.0.1:8765/callback".into()),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        authorize_params: vec![],
        token_requests: connector_host::no_token_extras(),
        variables: vec![],
        offline_access: false,
        resources: vec![],
        dpop: false,
    }
}

fn tokens(access: &str, expires_at: u64, refresh: bool) -> TokenSet {
    TokenSet {
        access_token: access.into(),
        token_type: "bearer".into(),
        expires_at: Some(expires_at),
        refresh_token: refresh.then(|| format!("REFRESH-{access}")),
        id_token: None,
        scopes: vec!["openid".into(), "profile".into()],
        obtained_at: expires_at - 3600,
        extras: vec![],
        dpop_key_thumbprint: None,
    }
}

/// The ID token of `a-valid`: a JWS whose payload says `{"iss":"https://login.example.com",
/// "sub":"alice","aud":"web"}` (the signature is never checked for display).
const ID_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.\
    eyJpc3MiOiJodHRwczovL2xvZ2luLmV4YW1wbGUuY29tIiwic3ViIjoiYWxpY2UiLCJhdWQiOiJ3ZWIifQ.\
    ID-TOKEN-signature";

/// A store with one connection in each status; returns its path and the times of the
/// revoked and refused marks.
fn store_with_every_status(dir: &Path, now: u64) -> (String, u64, u64) {
    let path = dir.join("store.db");
    let store = Store::open(&path).unwrap();
    let save = |name: &str, config: ConnectionConfig, secret, grant, tokens: TokenSet| {
        store.save(name, &config, &secret, grant, &tokens).unwrap();
    };
    let code = Grant::AuthorizationCode;
    let stored = |s: &str| SecretSource::Stored(s.into());
    save(
        "a-valid",
        config("web", &["openid"]),
        stored("SECRET-a"),
        code,
        TokenSet {
            id_token: Some(ID_TOKEN.to_owned()),
            ..tokens("ACCESS-a", now + 3600, true)
        },
    );
    let mut service = config("svc", &[]);
    service.client.auth_method = Some(ClientAuthMethod::ClientSecretPost);
    service.redirect_uri = None;
    save(
        "b-soon",
        service,
        SecretSource::Environment("SVC_SECRET".into()),
        Grant::ClientCredentials,
        tokens("ACCESS-b", now + 60, false),
    );
    save(
        "c-expired",
        config("tv", &[]),
        SecretSource::None,
        Grant::Device,
        TokenSet {
            id_token: Some("ID-TOKEN-that-is-not-a-jwt".to_owned()),
            ..tokens("ACCESS-c", now - 60, true)
        },
    );
    save(
        "d-stale",
        config("web", &[]),
        stored("SECRET-d"),
        code,
        tokens("ACCESS-d", now - 60, false),
    );
    save(
        "e-revoked",
        config("web", &[]),
        stored("SECRET-e"),
        code,
        tokens("ACCESS-e", now + 3600, true),
    );
    store
        .mark_needs_reauthorization("e-revoked", &Reauthorization::Revoked)
        .unwrap();
    save(
        "f-refused",
        config("signed", &[]),
        SecretSource::PrivateKey {
            path: PathBuf::from("/keys/app.pem"),
            key_id: Some("k1".into()),
        },
        code,
        tokens("ACCESS-f", now + 3600, true),
    );
    store
        .mark_needs_reauthorization(
            "f-refused",
            &Reauthorization::RefreshRefused("invalid_grant".into()),
        )
        .unwrap();
    let since = |name: &str| match store.get(name).unwrap().state {
        connector_host::store::ConnectionState::NeedsReauthorization { since, .. } => since,
        connector_host::store::ConnectionState::Active => panic!("{name} is marked"),
    };
    (
        path.to_str().unwrap().to_owned(),
        since("e-revoked"),
        since("f-refused"),
    )
}

fn run(store: &str, args: &[&str]) -> Outcome {
    let mut argv = vec!["--store", store];
    argv.extend_from_slice(args);
    cli(&argv, &[])
}

fn stored(store: &str, name: &str) -> StoredConnection {
    Store::open(Path::new(store)).unwrap().get(name).unwrap()
}

/// Asserts that no secret or token of the fixture appears in `text`.
fn assert_no_secret(text: &str) {
    for secret in ["SECRET-", "ACCESS-", "REFRESH-", "ID-TOKEN", "eyJ"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[test]
fn status_lists_every_connection_and_exits_3_when_any_needs_action() {
    let dir = TempDir::new("status-every");
    let now = now();
    let (store, revoked, refused) = store_with_every_status(&dir.0, now);
    let status = run(&store, &["status"]);
    assert_eq!(status.code, EXIT_REAUTHORIZE, "{}", status.err);
    let t = format_time;
    assert_eq!(
        status.out,
        format!(
            "NAME\tSTATUS\tDETAIL\n\
             a-valid\tvalid\texpires at {}\n\
             b-soon\texpiring-soon\texpires at {}\n\
             c-expired\texpired-refreshable\texpired at {}; renewed on next use\n\
             d-stale\tneeds-reauthorization\texpired at {} and nothing can renew it without \
             you; run `connector-host reconnect d-stale`\n\
             e-revoked\trevoked\trevoked at {} (by `revoke`); run `connector-host reconnect \
             e-revoked`\n\
             f-refused\tneeds-reauthorization\tneeds re-authorization since {} (the server \
             refused to renew it: invalid_grant); run `connector-host reconnect f-refused`\n",
            t(now + 3600),
            t(now + 60),
            t(now - 60),
            t(now - 60),
            t(revoked),
            t(refused),
        )
    );
    assert_eq!(status.err, "3 of 6 connections must be authorized again\n");
    assert_no_secret(&status.out);

    // Standard output's reader gone (`status | head`): the exit code still says it.
    assert_eq!(
        cli_without_stdout(&["--store", &store, "status"]),
        (
            EXIT_REAUTHORIZE,
            "3 of 6 connections must be authorized again\n".to_owned()
        )
    );
}

#[test]
fn status_exits_0_when_no_connection_needs_action() {
    let dir = TempDir::new("status-fine");
    let now = now();
    let (store, _, _) = store_with_every_status(&dir.0, now);
    {
        let store = Store::open(Path::new(&store)).unwrap();
        for name in ["d-stale", "e-revoked", "f-refused"] {
            store.remove(name).unwrap();
        }
    }
    let status = run(&store, &["status"]);
    assert_eq!(status.code, 0, "{}", status.err);
    assert_eq!(status.err, "");
    assert_eq!(status.out.lines().count(), 4, "{}", status.out);

    // An empty store: nothing needs action.
    let empty = dir.0.join("empty.db");
    drop(Store::open(&empty).unwrap());
    let status = run(empty.to_str().unwrap(), &["status"]);
    assert_eq!(status.code, 0, "{}", status.err);
    assert_eq!(status.out, "");
    assert!(
        status.err.starts_with("no connections in "),
        "{}",
        status.err
    );

    // No store: an error, and none is created.
    let missing = dir.0.join("missing.db");
    let status = run(missing.to_str().unwrap(), &["status"]);
    assert_eq!(status.code, 1);
    assert!(status.err.contains("no store at"), "{}", status.err);
    assert!(!missing.exists());
}

#[test]
fn list_has_a_header_row() {
    let dir = TempDir::new("list-header");
    let now = now();
    let (store, revoked, _) = store_with_every_status(&dir.0, now);
    let list = run(&store, &["list"]);
    assert_eq!(list.code, 0, "{}", list.err);
    let lines: Vec<&str> = list.out.lines().collect();
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[0], "NAME\tPROVIDER\tEXPIRES OR STATE\tSCOPES");
    assert_eq!(
        lines[5],
        format!(
            "e-revoked\texample\trevoked at {} (by `revoke`)\topenid profile",
            format_time(revoked)
        )
    );
    assert_no_secret(&list.out);
}

/// The fields of `show --json` (and of each object of `list --json`), in order.
const FIELDS: [&str; 35] = [
    "name",
    "provider",
    "issuer",
    "token_url",
    "api_base_url",
    "grant",
    "client_id",
    "client_auth",
    "client_auth_from_profile",
    "credential",
    "secret_env",
    "private_key",
    "key_id",
    "redirect_uri",
    "requested_scopes",
    "effective_requested_scopes",
    "scopes",
    "token_type",
    "status",
    "mark",
    "expires_at",
    "refresh_token",
    "id_token",
    "subject",
    "subject_issuer",
    "obtained_at",
    "created_at",
    "updated_at",
    "token_writes",
    "dpop_key_thumbprint",
    "resources",
    "subject_connection",
    "subject_env",
    "audiences",
    "registered_client",
];

/// The `--json` view the fixture's connection `name` should have.
fn expected_view(store: &str, name: &str, status: &str) -> Value {
    let connection = stored(store, name);
    let t = format_time;
    let tokens = &connection.tokens;
    let mut view = json!({
        "name": name,
        "provider": "example",
        "issuer": "https://login.example.com",
        "token_url": "https://login.example.com/token",
        "api_base_url": "https://api.example.com",
        "grant": "authorization-code",
        "client_id": "web",
        "client_auth": "client_secret_basic",
        "client_auth_from_profile": true,
        "credential": "stored-secret",
        "secret_env": null,
        "private_key": null,
        "key_id": null,
        "redirect_uri": "http://127.0.0.1:8765/callback",
        "requested_scopes": [],
        "effective_requested_scopes": [],
        "scopes": ["openid", "profile"],
        "token_type": "bearer",
        "status": status,
        "mark": null,
        "expires_at": t(tokens.expires_at.unwrap()),
        "refresh_token": tokens.refresh_token.is_some(),
        "id_token": false,
        "subject": null,
        "subject_issuer": null,
        "obtained_at": t(tokens.obtained_at),
        "created_at": t(connection.created_at),
        "updated_at": t(connection.updated_at),
        "token_writes": 1,
        // Contract 0.3.0: none of these connections is DPoP-bound, names resources, comes
        // from a token exchange or has a registered client.
        "dpop_key_thumbprint": null,
        "resources": [],
        "subject_connection": null,
        "subject_env": null,
        "audiences": [],
        "registered_client": false,
    });
    let fields = view.as_object_mut().unwrap();
    match name {
        "a-valid" => {
            fields["requested_scopes"] = json!(["openid"]);
            fields["effective_requested_scopes"] = json!(["openid"]);
            fields["id_token"] = json!(true);
            fields["subject"] = json!("alice");
            fields["subject_issuer"] = json!("https://login.example.com");
        }
        "b-soon" => {
            fields["grant"] = json!("client-credentials");
            fields["client_id"] = json!("svc");
            fields["client_auth"] = json!("client_secret_post");
            fields["client_auth_from_profile"] = json!(false);
            fields["credential"] = json!("secret-from-environment");
            fields["secret_env"] = json!("SVC_SECRET");
            fields["redirect_uri"] = json!(null);
        }
        "c-expired" => {
            fields["grant"] = json!("device");
            fields["client_id"] = json!("tv");
            fields["credential"] = json!("none");
            // An ID token that cannot be read names no subject; it is no error.
            fields["id_token"] = json!(true);
        }
        "e-revoked" | "f-refused" => {
            let connector_host::store::ConnectionState::NeedsReauthorization { since, .. } =
                connection.state
            else {
                panic!("{name} is marked");
            };
            let (reason, error) = if name == "e-revoked" {
                ("revoked", json!(null))
            } else {
                ("refresh-refused", json!("invalid_grant"))
            };
            fields["mark"] = json!({"reason": reason, "error": error, "since": t(since)});
            if name == "f-refused" {
                fields["client_id"] = json!("signed");
                fields["credential"] = json!("private-key");
                fields["private_key"] = json!("/keys/app.pem");
                fields["key_id"] = json!("k1");
            }
        }
        _ => {}
    }
    view
}

#[test]
fn list_and_show_json_describe_connections_without_secrets() {
    let dir = TempDir::new("list-json");
    let now = now();
    let (store, _, _) = store_with_every_status(&dir.0, now);
    let expected: Vec<Value> = [
        ("a-valid", "valid"),
        ("b-soon", "expiring-soon"),
        ("c-expired", "expired-refreshable"),
        ("d-stale", "needs-reauthorization"),
        ("e-revoked", "revoked"),
        ("f-refused", "needs-reauthorization"),
    ]
    .iter()
    .map(|(name, status)| expected_view(&store, name, status))
    .collect();

    let list = run(&store, &["list", "--json"]);
    assert_eq!(list.code, 0, "{}", list.err);
    assert_eq!(list.err, "");
    assert_no_secret(&list.out);
    let listed: Value = serde_json::from_str(&list.out).unwrap();
    assert_eq!(listed, Value::Array(expected.clone()));

    for view in &expected {
        let name = view["name"].as_str().unwrap();
        let show = run(&store, &["show", name, "--json"]);
        assert_eq!(show.code, 0, "{}", show.err);
        assert_no_secret(&show.out);
        let shown: Value = serde_json::from_str(&show.out).unwrap();
        assert_eq!(&shown, view);
        // One pretty-printed object, its fields in the documented order.
        let keys: Vec<&str> = show
            .out
            .lines()
            .filter_map(|line| line.strip_prefix("  \""))
            .filter_map(|line| line.split('"').next())
            .collect();
        assert_eq!(keys, FIELDS);
        assert!(show.out.starts_with("{\n") && show.out.ends_with("\n}\n"));
    }

    // An empty store lists as an empty array.
    let empty = dir.0.join("empty.db");
    drop(Store::open(&empty).unwrap());
    let list = run(empty.to_str().unwrap(), &["list", "--json"]);
    assert_eq!((list.code, list.out.as_str()), (0, "[]\n"));
}

/// The lines of `show NAME` from the first to the one before `expires:` (whose "(in N s)"
/// can tick while the test runs).
fn show_head(store: &str, name: &str) -> String {
    let show = run(store, &["show", name]);
    assert_eq!(show.code, 0, "{}", show.err);
    assert_no_secret(&show.out);
    show.out
        .lines()
        .take_while(|line| !line.starts_with("expires:"))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[test]
fn show_names_who_signed_in_and_the_requested_scopes_when_they_differ() {
    let dir = TempDir::new("show-identity");
    let (store, _, _) = store_with_every_status(&dir.0, now());
    // The ID token's `iss` and `sub`; granted `openid profile` for `openid`.
    assert_eq!(
        show_head(&store, "a-valid"),
        "name:           a-valid\n\
         provider:       example\n\
         issuer:         https://login.example.com\n\
         subject:        alice\n\
         token url:      https://login.example.com/token\n\
         api base url:   https://api.example.com\n\
         allow-list:     https://api.example.com:443, https://login.example.com:443\n\
         client id:      web\n\
         client auth:    client_secret_basic (the profile's default)\n\
         client secret:  stored\n\
         scopes:         openid profile (requested: openid)\n\
         token type:     bearer\n\
         state:          active\n"
    );
    // An ID token that cannot be read: the profile's issuer, no subject, no error. Nothing
    // requested (the profile has no default scopes): the granted scopes alone.
    assert_eq!(
        show_head(&store, "c-expired"),
        "name:           c-expired\n\
         provider:       example\n\
         issuer:         https://login.example.com\n\
         token url:      https://login.example.com/token\n\
         api base url:   https://api.example.com\n\
         allow-list:     https://api.example.com:443, https://login.example.com:443\n\
         client id:      tv\n\
         client auth:    client_secret_basic (the profile's default)\n\
         client secret:  none (public client)\n\
         scopes:         openid profile\n\
         token type:     bearer\n\
         state:          active\n"
    );
}
