//! The token lifecycle end to end: short-lived access tokens with refresh-token rotation,
//! concurrent callers across processes, client credentials, the device flow, revocation.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use connector_host::Runtime;
use connector_host::cli::EXIT_REAUTHORIZE;
use connector_host::connections::{ConnectionError, Connections, UnsavedTokens};
use connector_host::store::{Store, StoreError};
use serde_json::json;

use crate::connect::cli;
use crate::server::{OidcServer, TempDir, user_agent};

/// Access tokens live this long on the server in these tests.
const TTL_SECONDS: u64 = 2;

pub fn profile(server: &OidcServer, dir: &Path) -> String {
    let issuer = &server.issuer;
    let extra = format!(
        r#", "revocation-url": "{issuer}/token/revocation",
             "introspection-url": "{issuer}/token/introspection",
             "device-authorization-url": "{issuer}/device/auth",
             "api-base-url": "{issuer}""#
    );
    server
        .profile_file(dir, &extra)
        .to_str()
        .unwrap()
        .to_owned()
}

pub fn short_lived_server() -> OidcServer {
    OidcServer::start_with(&[("ACCESS_TOKEN_TTL", &TTL_SECONDS.to_string())])
}

/// `connect conn` with basic-client; returns the store path.
fn connect_basic(server: &OidcServer, dir: &Path) -> String {
    let store = dir.join("store.db").to_str().unwrap().to_owned();
    let profile = profile(server, dir);
    let browser = user_agent("");
    let outcome = cli(
        &connect_code_args(&store, "conn", &profile, "basic-client", &browser),
        &[("SECRET", "basic-secret")],
    );
    assert_eq!(outcome.code, 0, "{}", outcome.err);
    store
}

/// `connect NAME` with the authorization-code grant for `client_id`, the secret in `SECRET`,
/// signing in through `browser` on a loopback redirect.
pub fn connect_code_args<'a>(
    store: &'a str,
    name: &'a str,
    profile: &'a str,
    client_id: &'a str,
    browser: &'a str,
) -> Vec<&'a str> {
    vec![
        "--store",
        store,
        "connect",
        name,
        "--profile",
        profile,
        "--client-id",
        client_id,
        "--client-secret-env",
        "SECRET",
        "--redirect-uri",
        "http://127.0.0.1:0/callback",
        "--browser",
        browser,
        "--timeout",
        "60",
    ]
}

/// `connect svc` for `service-client` with client credentials and scope `api:read`; the
/// secret in `SECRET`.
pub fn connect_service_args<'a>(store: &'a str, profile: &'a str) -> Vec<&'a str> {
    vec![
        "--store",
        store,
        "connect",
        "svc",
        "--grant",
        "client-credentials",
        "--profile",
        profile,
        "--client-id",
        "service-client",
        "--client-secret-env",
        "SECRET",
        "--scope",
        "api:read",
    ]
}

pub fn wait_for_expiry() {
    std::thread::sleep(Duration::from_millis(TTL_SECONDS * 1000 + 300));
}

#[test]
fn connection_keeps_working_across_many_expiries() {
    let (server, dir) = (short_lived_server(), TempDir::new("expiries"));
    let store = connect_basic(&server, &dir.0);
    let userinfo = format!("{}/me", server.issuer);
    let mut refresh_tokens = vec![refresh_token(&store)];
    const ROUNDS: usize = 6;
    for _ in 0..ROUNDS {
        wait_for_expiry();
        let call = cli(&["--store", &store, "call", "conn", "GET", &userinfo], &[]);
        assert_eq!(call.code, 0, "{}", call.err);
        assert_eq!(call.out, r#"{"sub":"alice","name":"Test User alice"}"#);
        assert!(call.err.starts_with("HTTP 200\n"), "{}", call.err);
        refresh_tokens.push(refresh_token(&store));
    }
    // Every refresh rotated the refresh token, and no old one was ever replayed (a replay
    // would have revoked the grant and failed the next call).
    let mut distinct = refresh_tokens.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), ROUNDS + 1);
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": ROUNDS + 1, "by_grant": {"authorization_code": 1, "refresh_token": ROUNDS}})
    );
}

fn refresh_token(store: &str) -> String {
    Store::open(Path::new(store))
        .unwrap()
        .get("conn")
        .unwrap()
        .tokens
        .refresh_token
        .expect("a refresh token")
}

/// Makes every write of the store's token sets fail, as a disk that fills up (or breaks)
/// between the refresh's record and its tokens would. The record itself (written before the
/// refresh is sent) still goes in: a store that cannot take even that is not refreshed at
/// all. Dropping the returned connection does not lift it; [`allow_writes`] does.
fn refuse_writes(store: &str) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(store).unwrap();
    db.execute_batch(
        "CREATE TRIGGER refuse_writes BEFORE UPDATE OF tokens ON connections
         BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END;",
    )
    .unwrap();
    db
}

fn allow_writes(db: &rusqlite::Connection) {
    db.execute_batch("DROP TRIGGER refuse_writes").unwrap();
}

fn stored(store: &str) -> connector_host::store::StoredConnection {
    Store::open(Path::new(store)).unwrap().get("conn").unwrap()
}

/// A refresh whose tokens cannot be stored hands the rotated tokens back instead of
/// dropping them, keeps them in a rescue file, and leaves the stored connection as it was.
#[test]
fn a_refresh_that_cannot_be_stored_hands_the_tokens_back() {
    let (server, dir) = (short_lived_server(), TempDir::new("unsaved"));
    let store = connect_basic(&server, &dir.0);
    let before = stored(&store).tokens;
    let db = refuse_writes(&store);

    wait_for_expiry();
    let runtime = Runtime::load_built().unwrap();
    let env = |_: &str| None;
    let connections = Connections::open(&runtime, Path::new(&store), &env).unwrap();
    let error = connections.valid_tokens("conn").unwrap_err();
    assert!(!error.needs_reauthorization());
    let printed = format!("{error:?}{error}");
    let ConnectionError::Unsaved {
        error: StoreError::Database(_),
        tokens: UnsavedTokens(rotated),
        rescue: Ok(rescue),
    } = error
    else {
        panic!("expected unsaved tokens, got {error:?}");
    };
    assert_eq!(rescue, dir.0.join("store.db.unsaved/636f6e6e.json"));
    let rotated_refresh = rotated
        .refresh_token
        .clone()
        .expect("a rotated refresh token");
    for token in [&rotated.access_token, &rotated_refresh] {
        assert!(
            !printed.contains(token.as_str()),
            "no token in the error's text"
        );
    }
    assert_ne!(Some(&rotated_refresh), before.refresh_token.as_ref());
    // The handed-back refresh token is the live one; the stored one was consumed.
    assert_eq!(server.introspect(&rotated_refresh)["active"], json!(true));
    assert_eq!(
        server.introspect(before.refresh_token.as_deref().unwrap())["active"],
        json!(false)
    );
    let stored = connections.store().get("conn").unwrap();
    assert_eq!((&stored.tokens, stored.token_writes), (&before, 1));
    assert!(
        stored.refresh_interrupted_at.is_some(),
        "the refresh stays on record until its tokens are stored"
    );

    // The caller may store them itself once the store accepts writes again; the rescue
    // file, holding the same tokens, is then discarded on the next use.
    allow_writes(&db);
    connections.store().update_tokens("conn", &rotated).unwrap();
    assert_eq!(
        connections
            .store()
            .get("conn")
            .unwrap()
            .refresh_interrupted_at,
        None
    );
    wait_for_expiry();
    let outcome = connections.valid_tokens("conn").unwrap();
    assert!(outcome.refreshed);
    assert_eq!(connections.store().get("conn").unwrap().token_writes, 3);
    assert!(!rescue.exists());
}

/// A store that cannot record a refresh before it is sent (every write refused) is not
/// refreshed at all: nothing is sent, so no rotated refresh token can be lost.
#[test]
fn a_refresh_that_cannot_be_recorded_is_not_sent() {
    let (server, dir) = (short_lived_server(), TempDir::new("unrecorded"));
    let store = connect_basic(&server, &dir.0);
    let before = stored(&store);
    let db = rusqlite::Connection::open(&store).unwrap();
    db.execute_batch(
        "CREATE TRIGGER refuse_writes BEFORE UPDATE ON connections
         BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END;",
    )
    .unwrap();
    wait_for_expiry();
    server.reset_stats();
    let runtime = Runtime::load_built().unwrap();
    let env = |_: &str| None;
    let connections = Connections::open(&runtime, Path::new(&store), &env).unwrap();
    let error = connections.valid_tokens("conn").unwrap_err();
    assert!(
        matches!(&error, ConnectionError::Store(StoreError::Database(message)) if message.contains("simulated write failure")),
        "{error:?}"
    );
    assert_eq!(server.token_requests()["token_requests"], 0, "nothing sent");
    let after = stored(&store);
    assert_eq!(
        (after.tokens, after.token_writes),
        (before.tokens, before.token_writes)
    );
    assert_eq!(after.refresh_interrupted_at, None);
    // Writable again: the refresh goes through.
    allow_writes(&db);
    assert!(connections.valid_tokens("conn").unwrap().refreshed);
}

/// The CLI: a refresh that cannot be stored exits with an error naming the rescue file;
/// the next command stores the rescued tokens (no second refresh) and carries on.
#[test]
fn the_cli_recovers_tokens_a_failed_store_write_left_aside() {
    // 20 s tokens are due for refresh after 10 s (half their lifetime): the rescued tokens
    // stay fresh for the second command however slowly the machine runs it.
    let server = OidcServer::start_with(&[("ACCESS_TOKEN_TTL", "20")]);
    let dir = TempDir::new("rescue");
    let store = connect_basic(&server, &dir.0);
    let before = stored(&store).tokens;
    let db = refuse_writes(&store);
    std::thread::sleep(Duration::from_millis(11_000));
    server.reset_stats();
    let failed = cli(&["--store", &store, "token", "conn"], &[]);
    assert_eq!(failed.code, 1);
    assert_eq!(failed.out, "");
    let rescue = dir.0.join("store.db.unsaved/636f6e6e.json");
    assert!(
        failed
            .err
            .contains(&format!("they are kept in {}", rescue.display())),
        "{}",
        failed.err
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&rescue).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert_eq!(stored(&store).tokens, before);

    allow_writes(&db);
    let token = cli(&["--store", &store, "token", "conn"], &[]);
    assert_eq!(token.code, 0, "{}", token.err);
    let now = stored(&store);
    assert_eq!(token.out.trim_end(), now.tokens.access_token);
    assert_ne!(now.tokens.refresh_token, before.refresh_token);
    assert_eq!(now.token_writes, 2);
    assert!(!rescue.exists());
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"refresh_token": 1}}),
        "the rescued tokens were used, not refreshed again"
    );
    let introspection = server.introspect(now.tokens.refresh_token.as_deref().unwrap());
    assert_eq!(introspection["active"], json!(true));
}

#[test]
fn refresh_window_is_measured() {
    let (server, dir) = (short_lived_server(), TempDir::new("window"));
    let store = connect_basic(&server, &dir.0);
    let runtime = Runtime::load_built().unwrap();
    let env = |_: &str| None;
    let connections = Connections::open(&runtime, Path::new(&store), &env).unwrap();
    let mut windows = vec![];
    for _ in 0..3 {
        wait_for_expiry();
        let outcome = connections.valid_tokens("conn").unwrap();
        assert!(outcome.refreshed);
        windows.push(outcome.window.expect("a refresh measures its window"));
        // Fresh tokens are not refreshed again.
        assert!(!connections.valid_tokens("conn").unwrap().refreshed);
    }
    let max = windows.iter().max().unwrap();
    eprintln!("refresh window (server answer -> durable commit): {windows:?}, max {max:?}");
    assert!(*max < Duration::from_secs(5));
}

/// Four processes with eight threads each call the API on one expired connection at once:
/// exactly one refresh request reaches the server, and every call succeeds.
#[test]
fn concurrent_callers_across_processes_refresh_once() {
    // Long enough that the refreshed token stays valid while all the workers start.
    const STORM_TTL: u64 = 20;
    let server = OidcServer::start_with(&[("ACCESS_TOKEN_TTL", &STORM_TTL.to_string())]);
    let dir = TempDir::new("storm");
    let store = connect_basic(&server, &dir.0);
    std::thread::sleep(Duration::from_millis(STORM_TTL * 1000 + 300));
    server.reset_stats();
    // Every worker's threads start their calls at the same instant, after all the processes
    // have started and loaded the component.
    let start_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 3000;
    const PROCESSES: usize = 4;
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--ignored",
                    "--exact",
                    "lifecycle::storm_worker",
                    "--nocapture",
                ])
                .env("STORM_STORE", &store)
                .env("STORM_URL", format!("{}/me", server.issuer))
                .env("STORM_START_AT_MS", start_at.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start a worker process")
        })
        .collect();
    let mut ok = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "worker failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        ok += stdout.matches("storm-call ok").count();
    }
    let calls = PROCESSES * STORM_THREADS;
    assert_eq!(ok, calls, "every call succeeded");
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"refresh_token": 1}}),
        "one refresh for {calls} concurrent calls"
    );
    // ... and one write of refreshed tokens to the store (after the connect's).
    let stored = Store::open(Path::new(&store)).unwrap().get("conn").unwrap();
    assert_eq!(stored.token_writes, 2);
    eprintln!(
        "storm: {calls} calls from {PROCESSES} processes x {STORM_THREADS} threads, 1 refresh request, 0 failures"
    );
}

const STORM_THREADS: usize = 8;

/// The worker process of `concurrent_callers_across_processes_refresh_once` (run by it, with
/// `--ignored`); it checks its own calls.
#[test]
#[ignore = "a worker process started by concurrent_callers_across_processes_refresh_once"]
fn storm_worker() {
    let store = std::env::var("STORM_STORE").expect("started by the storm test");
    let url = std::env::var("STORM_URL").expect("started by the storm test");
    let start_at: u128 = std::env::var("STORM_START_AT_MS").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    std::thread::sleep(Duration::from_millis(start_at.saturating_sub(now) as u64));
    let barrier = std::sync::Barrier::new(STORM_THREADS);
    std::thread::scope(|scope| {
        for _ in 0..STORM_THREADS {
            scope.spawn(|| {
                barrier.wait();
                let call = cli(&["--store", &store, "call", "conn", "GET", &url], &[]);
                assert_eq!(call.code, 0, "{}", call.err);
                assert_eq!(call.out, r#"{"sub":"alice","name":"Test User alice"}"#);
                println!("storm-call ok");
            });
        }
    });
}

#[test]
fn client_credentials_with_scopes_refetch_when_due() {
    let (server, dir) = (short_lived_server(), TempDir::new("cc"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let profile = profile(&server, &dir.0);
    let outcome = cli(
        &connect_service_args(&store, &profile),
        &[("SECRET", "service-secret")],
    );
    assert_eq!(outcome.code, 0, "{}", outcome.err);
    let first = Store::open(Path::new(&store))
        .unwrap()
        .get("svc")
        .unwrap()
        .tokens;
    assert_eq!(first.scopes, ["api:read"]);
    assert_eq!(first.refresh_token, None);
    let introspection = server.introspect(&first.access_token);
    assert_eq!(introspection["active"], json!(true));
    assert_eq!(introspection["scope"], json!("api:read"));

    wait_for_expiry();
    let token = cli(&["--store", &store, "token", "svc"], &[]);
    assert_eq!(token.code, 0, "{}", token.err);
    let second = token.out.trim_end().to_owned();
    assert_ne!(second, first.access_token);
    assert_eq!(server.introspect(&second)["active"], json!(true));
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 2, "by_grant": {"client_credentials": 2}})
    );
}

#[test]
fn device_flow_approved_by_the_test() {
    let (server, dir) = (OidcServer::start(), TempDir::new("device"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let issuer = &server.issuer;
    let profile = dir.0.join("device.json");
    std::fs::write(
        &profile,
        format!(
            r#"{{"id": "local-device", "token-url": "{issuer}/token", "client-auth": "none",
                "device-authorization-url": "{issuer}/device/auth", "api-base-url": "{issuer}",
                "default-scopes": ["openid", "profile"]}}"#
        ),
    )
    .unwrap();
    let browser = user_agent("");
    let outcome = cli(
        &[
            "--store",
            &store,
            "connect",
            "tv",
            "--grant",
            "device",
            "--profile",
            profile.to_str().unwrap(),
            "--client-id",
            "device-client",
            "--browser",
            &browser,
            "--timeout",
            "60",
        ],
        &[],
    );
    assert_eq!(outcome.code, 0, "{}", outcome.err);
    assert!(
        outcome.err.contains("and enter the code "),
        "{}",
        outcome.err
    );
    let tokens = Store::open(Path::new(&store))
        .unwrap()
        .get("tv")
        .unwrap()
        .tokens;
    assert!(tokens.refresh_token.is_some());
    assert_eq!(tokens.scopes, ["openid", "profile"]);
    assert_eq!(
        server.introspect(&tokens.access_token)["active"],
        json!(true)
    );
    let stats = server.token_requests();
    let polls = stats["by_grant"]["urn:ietf:params:oauth:grant-type:device_code"]
        .as_u64()
        .unwrap();
    assert!(polls >= 1);
    assert_eq!(stats["token_requests"], json!(polls), "only device polls");
}

#[test]
fn revocation_makes_the_next_call_require_reauthorization() {
    let (server, dir) = (OidcServer::start(), TempDir::new("revoke"));
    let store = connect_basic(&server, &dir.0);
    let tokens = Store::open(Path::new(&store))
        .unwrap()
        .get("conn")
        .unwrap()
        .tokens;
    let revoke = cli(&["--store", &store, "revoke", "conn"], &[]);
    assert_eq!(revoke.code, 0, "{}", revoke.err);
    assert_eq!(
        server.introspect(&tokens.access_token)["active"],
        json!(false)
    );
    assert_eq!(
        server.introspect(&tokens.refresh_token.clone().unwrap())["active"],
        json!(false)
    );

    let call = cli(
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
    assert_eq!(call.code, EXIT_REAUTHORIZE, "{}", call.err);

    // The same through the library, typed.
    let runtime = Runtime::load_built().unwrap();
    let env = |_: &str| None;
    let connections = Connections::open(&runtime, Path::new(&store), &env).unwrap();
    let request = connector_host::types::HttpRequest {
        method: connector_host::types::HttpMethod::Get,
        url: format!("{}/me", server.issuer),
        headers: vec![],
        body: vec![],
    };
    let error = connections.call("conn", &request).unwrap_err();
    assert!(error.needs_reauthorization(), "{error}");

    let remove = cli(&["--store", &store, "remove", "conn"], &[]);
    assert_eq!(remove.code, 0);
    assert_eq!(cli(&["--store", &store, "show", "conn"], &[]).code, 1);
}
