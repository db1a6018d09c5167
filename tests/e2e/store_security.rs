//! The store's files against another local user (issue 12): SQLite's `-wal`/`-shm` files,
//! the rescue directory and the refresh lock. The tests run as root and play the other user
//! (uid 65534) with `setpriv`, in a directory anyone may write to (mode 1777, like /tmp).
//! They need root (to act as another user and to `chown`), and Unix.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use connector_host::Runtime;
use connector_host::connections::{ConnectionError, Connections, RescueProblem};
use connector_host::loopback::{LoopbackServer, Recorded, Reply};
use connector_host::store::{Store, StoreError, UnsafeFile};

use crate::connect::cli;
use crate::retry::forward;
use crate::server::{OidcServer, TempDir, user_agent};

/// The other local user (`nobody`).
const OTHER_UID: u32 = 65534;

/// `dir/shared`, writable by anyone, with the sticky bit (like /tmp).
fn shared_dir(dir: &TempDir) -> PathBuf {
    let shared = dir.0.join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    shared
}

/// Runs `script` with `sh` in `dir` as the other user, with no groups.
fn as_other_user(dir: &Path, script: &str) {
    let status = Command::new("setpriv")
        .args([
            &format!("--reuid={OTHER_UID}"),
            &format!("--regid={OTHER_UID}"),
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .current_dir(dir)
        .status()
        .expect("run setpriv (util-linux)");
    assert!(status.success(), "{script}");
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token endpoint on 127.0.0.1 that issues a new access token for every request.
fn token_endpoint() -> LoopbackServer {
    let issued = AtomicUsize::new(0);
    LoopbackServer::start(move |_: &Recorded| {
        let n = issued.fetch_add(1, Ordering::SeqCst);
        Reply::json(
            200,
            &format!(r#"{{"access_token":"issued-{n}","token_type":"Bearer","expires_in":3600}}"#),
        )
    })
}

/// `connect conn` with client credentials against `endpoint`, the secret `s3cret-value`.
fn connect_service(dir: &Path, store: &Path, endpoint: &LoopbackServer) -> crate::connect::Outcome {
    let profile = dir.join("profile.json");
    std::fs::write(
        &profile,
        format!(
            r#"{{"id": "fake", "token-url": "{}"}}"#,
            endpoint.url("/token")
        ),
    )
    .unwrap();
    cli(
        &[
            "--store",
            store.to_str().unwrap(),
            "connect",
            "conn",
            "--grant",
            "client-credentials",
            "--profile",
            profile.to_str().unwrap(),
            "--client-id",
            "id",
            "--client-secret-env",
            "SECRET",
        ],
        &[("SECRET", "s3cret-value")],
    )
}

/// Marks the stored tokens of `conn` as expired, so that the next use renews them.
fn expire(store: &Path) {
    let store = Store::open(store).unwrap();
    let mut tokens = store.get("conn").unwrap().tokens;
    tokens.expires_at = Some(now() - 1);
    store.update_tokens("conn", &tokens).unwrap();
}

/// A foreign `-wal` or `-shm` file beside a new store (planted by another user, mode 0666,
/// hard-linked so that it outlives any deletion) is refused before SQLite opens the store:
/// nothing is created, and nothing is written to the planted file, by the library or the CLI.
#[test]
fn a_foreign_wal_or_shm_beside_a_new_store_is_refused_before_use() {
    let endpoint = token_endpoint();
    for suffix in ["-wal", "-shm"] {
        let dir = TempDir::new("foreign-sidecar");
        let shared = shared_dir(&dir);
        let store = shared.join("conn.db");
        let planted = shared.join(format!("conn.db{suffix}"));
        as_other_user(
            &shared,
            &format!("umask 0; : > conn.db{suffix}; ln conn.db{suffix} kept{suffix}"),
        );

        assert_refused_as_not_ours(Store::open(&store), &planted);
        assert!(!store.exists(), "{suffix}: nothing is created");

        let connect = connect_service(&dir.0, &store, &endpoint);
        assert_eq!(connect.code, 1, "{suffix}: {}", connect.err);
        assert!(
            connect.err.contains(planted.to_str().unwrap()),
            "{suffix}: the error names the file: {}",
            connect.err
        );
        assert_eq!(std::fs::metadata(&planted).unwrap().len(), 0, "{suffix}");
        assert!(!store.exists(), "{suffix}: nothing is created");
    }
    assert_eq!(endpoint.requests().len(), 0, "no token was requested");
}

/// Item 5 of issue 12: a foreign `-shm` planted beside an existing store (where it could hold
/// SQLite's locks and force every refresh onto the rescue path) is refused before use.
#[test]
fn a_foreign_shm_beside_an_existing_store_is_refused_before_use() {
    let endpoint = token_endpoint();
    let dir = TempDir::new("foreign-shm");
    let shared = shared_dir(&dir);
    let store = shared.join("conn.db");
    let connect = connect_service(&dir.0, &store, &endpoint);
    assert_eq!(connect.code, 0, "{}", connect.err);
    let planted = shared.join("conn.db-shm");
    assert!(!planted.exists(), "SQLite removed its files on close");
    as_other_user(&shared, "umask 0; : > conn.db-shm");

    assert_refused_as_not_ours(Store::open(&store), &planted);
    let token = cli(&["--store", store.to_str().unwrap(), "token", "conn"], &[]);
    assert_eq!(token.code, 1, "{}", token.err);
    assert!(
        token.err.contains(planted.to_str().unwrap()),
        "{}",
        token.err
    );
    assert_eq!(std::fs::metadata(&planted).unwrap().len(), 0);
}

/// Asserts that opening the store was refused because `path` belongs to the other user.
fn assert_refused_as_not_ours(opened: Result<Store, StoreError>, path: &Path) {
    match opened {
        Err(StoreError::Unsafe(at, problem)) => assert_eq!(
            (at, problem),
            (
                path.canonicalize().unwrap(),
                UnsafeFile::NotOwned { owner: OTHER_UID }
            )
        ),
        Err(error) => panic!("expected {} to be refused, got {error}", path.display()),
        Ok(_) => panic!(
            "expected {} to be refused, the store opened",
            path.display()
        ),
    }
}

/// A rescue record planted by another user is never recovered into the victim's connection:
/// neither in a rescue directory the other user made, nor as a file of theirs in ours.
#[test]
fn a_foreign_rescue_record_is_not_recovered() {
    let endpoint = token_endpoint();
    // A rescue record of the victim's connection, with newer tokens of the other user's.
    let record = |own: &connector_host::types::TokenSet, access: &str| {
        let mut planted = own.clone();
        planted.access_token = access.to_owned();
        planted.obtained_at = now() + 60;
        serde_json::json!({"name": "conn", "tokens": planted}).to_string()
    };

    // (a) The other user made the rescue directory.
    let dir = TempDir::new("foreign-rescue-dir");
    let shared = shared_dir(&dir);
    let store = shared.join("conn.db");
    assert_eq!(connect_service(&dir.0, &store, &endpoint).code, 0);
    let own = Store::open(&store).unwrap().get("conn").unwrap().tokens;
    let planted_record = record(&own, "planted-by-another-user");
    std::fs::write(dir.0.join("record.json"), &planted_record).unwrap();
    as_other_user(
        &shared,
        &format!(
            "umask 0; mkdir conn.db.unsaved && cp {} conn.db.unsaved/636f6e6e.json",
            dir.0.join("record.json").display()
        ),
    );
    let planted_dir = shared.join("conn.db.unsaved");
    assert_refused_as_not_ours(Store::open(&store), &planted_dir);
    let token = cli(&["--store", store.to_str().unwrap(), "token", "conn"], &[]);
    assert_eq!(token.code, 1, "{}{}", token.out, token.err);
    assert!(!token.out.contains("planted"), "{}", token.out);
    assert!(
        token.err.contains(planted_dir.to_str().unwrap()),
        "{}",
        token.err
    );
    assert_eq!(
        rusqlite_tokens(&store),
        serde_json::to_value(&own).unwrap(),
        "the victim's connection keeps its own tokens"
    );

    // (b) A file of the other user's in the victim's own rescue directory.
    let dir = TempDir::new("foreign-rescue-file");
    let store = dir.0.join("conn.db");
    assert_eq!(connect_service(&dir.0, &store, &endpoint).code, 0);
    let own = Store::open(&store).unwrap().get("conn").unwrap().tokens;
    let rescue_dir = dir.0.join("conn.db.unsaved");
    std::fs::DirBuilder::new().create(&rescue_dir).unwrap();
    std::fs::set_permissions(&rescue_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let file = rescue_dir.join("636f6e6e.json");
    std::fs::write(&file, record(&own, "planted-in-our-directory")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&file, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
    let runtime = Runtime::load_built().unwrap();
    let env = |_: &str| None;
    let connections = Connections::open(&runtime, &store, &env).unwrap();
    let error = connections.valid_tokens("conn").err();
    let file = file.canonicalize().unwrap();
    assert!(
        matches!(
            &error,
            Some(ConnectionError::Rescue(at, RescueProblem::Unsafe(UnsafeFile::NotOwned { owner })))
                if *at == file && *owner == OTHER_UID
        ),
        "{error:?}"
    );
    assert_eq!(
        rusqlite_tokens(&store),
        serde_json::to_value(&own).unwrap(),
        "the victim's connection keeps its own tokens"
    );
    assert!(
        file.exists(),
        "the planted file is left for the user to inspect"
    );

    // (c) A symbolic link in its place is not followed; (d) a record of ours that names
    // another connection is not used either.
    std::fs::remove_file(&file).unwrap();
    let elsewhere = dir.0.join("record.json");
    std::fs::write(&elsewhere, record(&own, "through-a-link")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &file).unwrap();
    let error = connections.valid_tokens("conn").err();
    assert!(
        matches!(
            &error,
            Some(ConnectionError::Rescue(at, RescueProblem::Unsafe(UnsafeFile::Symlink))) if *at == file
        ),
        "{error:?}"
    );
    std::fs::remove_file(&file).unwrap();
    let mut other = own.clone();
    other.access_token = "another-connection's".into();
    other.obtained_at = now() + 60;
    std::fs::write(
        &file,
        serde_json::json!({"name": "other", "tokens": other}).to_string(),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let error = connections.valid_tokens("conn").err();
    assert!(
        matches!(
            &error,
            Some(ConnectionError::Rescue(at, RescueProblem::OtherConnection)) if *at == file
        ),
        "{error:?}"
    );
    assert_eq!(
        rusqlite_tokens(&store),
        serde_json::to_value(&own).unwrap(),
        "the victim's connection keeps its own tokens"
    );
}

/// The stored token set of `conn`, read with SQLite directly.
fn rusqlite_tokens(store: &Path) -> serde_json::Value {
    let db = rusqlite::Connection::open(store).unwrap();
    let text: String = db
        .query_row(
            "SELECT tokens FROM connections WHERE name = 'conn'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A `.partial` symlink the other user planted in the rescue directory, pointing at a file of
/// the victim's, is never followed: the victim's file keeps its contents.
#[test]
fn a_partial_symlink_in_the_rescue_directory_is_not_followed() {
    let endpoint = token_endpoint();
    let dir = TempDir::new("partial-symlink");
    let shared = shared_dir(&dir);
    let store = shared.join("conn.db");
    assert_eq!(connect_service(&dir.0, &store, &endpoint).code, 0);
    let victim = dir.0.join("bashrc");
    std::fs::write(&victim, "alias ls='ls --color'\n").unwrap();
    // The next refresh's commit fails, which sends its tokens to the rescue directory.
    expire(&store);
    let db = rusqlite::Connection::open(&store).unwrap();
    db.execute_batch(
        "CREATE TRIGGER refuse_writes BEFORE UPDATE OF tokens ON connections
         BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END;",
    )
    .unwrap();
    let requests_before = endpoint.requests().len();
    as_other_user(
        &shared,
        &format!(
            "umask 0; mkdir conn.db.unsaved && ln -s {} conn.db.unsaved/636f6e6e.partial",
            victim.display()
        ),
    );

    assert_refused_as_not_ours(Store::open(&store), &shared.join("conn.db.unsaved"));

    let token = cli(&["--store", store.to_str().unwrap(), "token", "conn"], &[]);
    assert_eq!(token.code, 1, "{}", token.err);
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "alias ls='ls --color'\n",
        "the victim's file is unchanged"
    );
    assert_eq!(
        endpoint.requests().len(),
        requests_before,
        "refused before any token request"
    );
}

/// A proxy in front of `server` that delays every refresh answer by `delay` and counts the
/// refresh requests.
fn delaying_proxy(server: &OidcServer, delay: Duration) -> (LoopbackServer, Arc<AtomicUsize>) {
    let upstream = server.issuer.clone();
    let refreshes = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&refreshes);
    let proxy = LoopbackServer::start(move |request: &Recorded| {
        let mut reply = forward(&upstream, request);
        let body = String::from_utf8_lossy(&request.body);
        if request.target == "/token" && body.contains("grant_type=refresh_token") {
            counted.fetch_add(1, Ordering::SeqCst);
            reply.delay = delay;
        }
        reply
    });
    (proxy, refreshes)
}

const WORKERS_PER_PATH: usize = 3;

/// One store, opened through its real path by three processes and through a symbolic link
/// to it (in another directory) by three more, all asking for tokens of one expired connection whose token
/// endpoint answers after 0.5 s: exactly one refresh, and every caller gets the new tokens.
#[test]
fn one_store_through_a_symlinked_path_refreshes_once() {
    let server = OidcServer::start();
    let (proxy, refreshes) = delaying_proxy(&server, Duration::from_millis(500));
    let dir = TempDir::new("symlinked-store");
    // The store in `real/`, and a symbolic link to it in `elsewhere/`.
    let (real, elsewhere) = (dir.0.join("real"), dir.0.join("elsewhere"));
    std::fs::create_dir(&real).unwrap();
    std::fs::create_dir(&elsewhere).unwrap();
    let store = real.join("store.db");
    let linked = elsewhere.join("conn.db");

    let issuer = &server.issuer;
    let profile = dir.0.join("proxied.json");
    std::fs::write(
        &profile,
        format!(
            r#"{{"id": "proxied", "issuer": "{issuer}", "authorize-url": "{issuer}/auth",
                "token-url": "{}", "default-scopes": ["openid", "profile"],
                "requires-iss": true}}"#,
            proxy.url("/token")
        ),
    )
    .unwrap();
    let browser = user_agent("");
    let connect = cli(
        &crate::lifecycle::connect_code_args(
            store.to_str().unwrap(),
            "conn",
            profile.to_str().unwrap(),
            "basic-client",
            &browser,
        ),
        &[("SECRET", "basic-secret")],
    );
    assert_eq!(connect.code, 0, "{}", connect.err);
    std::os::unix::fs::symlink(&store, &linked).unwrap();
    expire(&store);
    server.reset_stats();

    let start_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 2500;
    let children: Vec<_> = [&store, &linked]
        .iter()
        .flat_map(|path| std::iter::repeat_n(*path, WORKERS_PER_PATH))
        .map(|path| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--ignored",
                    "--exact",
                    "store_security::symlinked_store_worker",
                    "--nocapture",
                ])
                .env("WORKER_STORE", path)
                .env("WORKER_START_AT_MS", start_at.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start a worker process")
        })
        .collect();
    let mut tokens = vec![];
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "worker failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        tokens.extend(
            stdout
                .lines()
                .filter_map(|line| line.strip_prefix("worker-token "))
                .map(str::to_owned),
        );
    }
    assert_eq!(tokens.len(), 2 * WORKERS_PER_PATH, "every caller succeeded");
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "every caller got the one refreshed token");
    assert_eq!(
        refreshes.load(Ordering::SeqCst),
        1,
        "one refresh at the proxy"
    );
    assert_eq!(
        server.token_requests(),
        serde_json::json!({"token_requests": 1, "by_grant": {"refresh_token": 1}}),
        "one refresh at the server"
    );
}

/// The worker process of `one_store_through_a_symlinked_path_refreshes_once`: loads the
/// component first (so that the callers start together), waits for the common start instant,
/// asks for valid tokens as `connector-host token` does (`Connections::valid_tokens`), and
/// prints the access token (a test token of the local server).
#[test]
#[ignore = "a worker process started by one_store_through_a_symlinked_path_refreshes_once"]
fn symlinked_store_worker() {
    let store = std::env::var("WORKER_STORE").expect("started by the symlink test");
    let start_at: u128 = std::env::var("WORKER_START_AT_MS")
        .unwrap()
        .parse()
        .unwrap();
    let runtime = Runtime::load_built().unwrap();
    let env = |_: &str| None;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    std::thread::sleep(Duration::from_millis(start_at.saturating_sub(now) as u64));
    let connections = Connections::open(&runtime, Path::new(&store), &env).unwrap();
    let outcome = connections.valid_tokens("conn").unwrap();
    println!("worker-token {}", outcome.tokens.access_token);
}

/// A lock held by another process (here `flock(1)`, as a hung refresh would) makes the wait
/// give up within its bound with a typed, retryable error.
#[test]
fn a_held_lock_gives_up_within_its_bound() {
    let dir = TempDir::new("held-lock");
    let store_path = dir.0.join("conn.db");
    let store = Store::open(&store_path).unwrap();
    // Creates the lock directory and file (there is no connection to remove).
    assert!(connector_host::connections::remove(&store, "conn").is_err());
    let lock_file = dir.0.join("conn.db.locks/636f6e6e.lock");
    assert!(lock_file.exists());
    let mut holder = Command::new("flock")
        .args(["--exclusive", lock_file.to_str().unwrap(), "sleep", "30"])
        .spawn()
        .expect("run flock (util-linux)");
    // flock(1) holds the lock once it runs `sleep`.
    std::thread::sleep(Duration::from_millis(300));

    let runtime = Runtime::load_built().unwrap();
    let (done, result) = std::sync::mpsc::channel();
    let started = Instant::now();
    std::thread::spawn(move || {
        let env = |_: &str| None;
        let connections = Connections::open(&runtime, &store_path, &env)
            .unwrap()
            .with_lock_timeout(Duration::from_secs(1));
        let _ = done.send(connections.refresh_locked("conn", None).map(|_| ()));
    });
    // A watchdog, so that a wait without bound fails the test instead of hanging it.
    let outcome = result.recv_timeout(Duration::from_secs(5));
    let _ = holder.kill();
    let _ = holder.wait();
    let error = outcome
        .expect("the lock wait gave up within its bound")
        .expect_err("the lock is held");
    let ConnectionError::LockTimeout { path, waited } = error else {
        panic!("expected a lock timeout, got {error:?}");
    };
    assert_eq!(path, lock_file.canonicalize().unwrap());
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}
