//! A fleet: several `serve` replicas (worker processes, as in `serve.rs`) on one PostgreSQL
//! database (a throwaway cluster of the machine's PostgreSQL, [`PgCluster`]), against the
//! real authorization server, which rotates refresh tokens and revokes a grant whose old
//! refresh token is replayed. What must hold across replicas: one refresh per expiry
//! fleet-wide, a connect flow begun on one replica finished on another, a replica killed
//! while it refreshes costs nothing silently, and a database restart is survived.

use std::time::{Duration, Instant};

use connector_host::seal::SealingKey;
use connector_host::store::Store;
use connector_host::types::HttpMethod;
use serde_json::{Value, json};

use crate::postgres::PgCluster;
use crate::server::{OidcServer, TempDir};
use crate::service::*;

/// A fleet's shared parts: the database, the tenant's API key, the sealing key (and its
/// file, which every replica is started with).
struct Fleet {
    cluster: PgCluster,
    dir: TempDir,
    store: String,
    key: String,
    key_file: String,
    sealing_key: SealingKey,
}

impl Fleet {
    /// A new database with one tenant, `acme`.
    fn new(label: &str) -> Self {
        let cluster = PgCluster::start();
        let dir = TempDir::new(label);
        let store = cluster.url();
        let key = add_tenant(&store, "acme");
        let (key_file, sealing_key) = new_key(&dir.0, "key");
        Self {
            cluster,
            dir,
            store,
            key,
            key_file,
            sealing_key,
        }
    }

    /// A replica, with `extra` arguments; replicas share the compile cache.
    fn replica(&self, extra: &[&str]) -> Service {
        let mut args = vec!["--key-file", self.key_file.as_str()];
        args.extend_from_slice(extra);
        Service::start(&self.store, &self.dir.0.join("compiled"), &args)
    }

    /// The store, opened from the test.
    fn open(&self) -> Store {
        Store::open_sealed(std::path::Path::new(&self.store), self.sealing_key.clone())
            .expect("open the PostgreSQL store")
    }

    /// Makes `t1:NAME`'s access token expired, as if it had been issued with no lifetime.
    fn expire(&self, name: &str) {
        let store = self.open();
        let mut tokens = store.get(name).unwrap().tokens;
        tokens.expires_at = Some(tokens.obtained_at);
        store.update_tokens(name, &tokens).unwrap();
    }
}

/// Connects `conn` (integration `oidc`) through a connect session created on `begin`, whose
/// URL is opened on `begin` too; the provider redirects to the fleet's public URL, so the
/// callback reaches whichever replica that is.
fn connect_across(begin: &Service, server: &OidcServer, key: &str) -> String {
    create_code_integration(begin, server, key);
    let (status, session) = begin.api(
        HttpMethod::Post,
        "/v1/connect-sessions",
        key,
        Some(json!({"integration": "oidc", "connection": "conn"})),
    );
    assert_eq!(status, 201, "{session}");
    let url = session["url"].as_str().unwrap();
    let path = &url[url.find("/connect/").expect("a connect URL")..];
    follow_connect_url(begin, &format!("{}{path}", begin.base), "")
}

/// `/token` for `conn` on `replica`, by `callers` threads at once (after a barrier): each
/// caller's (status, body).
fn storm(replicas: &[&Service], key: &str, callers: usize) -> Vec<(u16, Value)> {
    let barrier = std::sync::Barrier::new(callers);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..callers)
            .map(|caller| {
                let (barrier, replica) = (&barrier, replicas[caller % replicas.len()]);
                scope.spawn(move || {
                    barrier.wait();
                    replica.api(HttpMethod::Post, "/v1/connections/conn/token", key, None)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

#[test]
fn three_replicas_refresh_once_per_expiry_and_finish_each_others_flows() {
    let server = server_with(&[]);
    let fleet = Fleet::new("fleet-three");
    // Replica 2's address is the fleet's public URL (a load balancer's, in production): the
    // connect URLs and the one callback point there.
    let second = fleet.replica(&[]);
    let first = fleet.replica(&["--public-url", &second.base]);
    let third = fleet.replica(&["--public-url", &second.base]);

    // Begun on replica 1 (the session, and the redirect that stores the pending flow),
    // completed by the callback on replica 2.
    server.reset_stats();
    let said = connect_across(&first, &server, &fleet.key);
    assert!(said.contains("callback /oauth/callback -> 200"), "{said}");
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"authorization_code": 1}}),
    );
    let (status, shown) = third.api(HttpMethod::Get, "/v1/connections/conn", &fleet.key, None);
    assert_eq!(
        (status, &shown["status"]),
        (200, &json!("valid")),
        "{shown}"
    );

    // The database never sees a secret or token in clear: every sealed column is an
    // envelope under the fleet's key, in every row.
    for sql in [
        "SELECT secret || '|' || tokens FROM connections",
        "SELECT client_secret FROM integrations",
    ] {
        let values = fleet.cluster.psql(sql);
        let values: Vec<&str> = values.lines().flat_map(|line| line.split('|')).collect();
        assert!(!values.is_empty(), "{sql}");
        for value in values {
            assert!(value.starts_with("sealed:"), "{sql}: {value}");
            assert!(value.contains(fleet.sealing_key.id()), "{sql}: {value}");
        }
    }
    let stored = fleet.open().get("t1:conn").unwrap();
    let dump = fleet.cluster.psql("SELECT * FROM connections");
    assert!(!dump.contains(&stored.tokens.access_token));
    assert!(!dump.contains(stored.tokens.refresh_token.as_deref().unwrap()));

    // Several expiries; each time 3 × 64 concurrent `/token`: one refresh fleet-wide.
    let mut previous = fleet.open().get("t1:conn").unwrap();
    for round in 0..3 {
        fleet.expire("t1:conn");
        server.reset_stats();
        let started = Instant::now();
        let answers = storm(&[&first, &second, &third], &fleet.key, 3 * 64);
        eprintln!(
            "fleet round {round}: 192 concurrent /token on 3 replicas answered in {:.0} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
        let token = the_one_token(&answers, &format!("round {round}"));
        assert_eq!(
            server.token_requests(),
            json!({"token_requests": 1, "by_grant": {"refresh_token": 1}}),
            "round {round}: one refresh for 192 requests on 3 replicas"
        );
        let stored = fleet.open().get("t1:conn").unwrap();
        assert_eq!(
            stored.token_writes,
            previous.token_writes + 2,
            "expired, then refreshed"
        );
        assert_ne!(
            stored.tokens.refresh_token, previous.tokens.refresh_token,
            "rotated"
        );
        assert_eq!(stored.refresh_interrupted_at, None);
        assert_eq!(stored.tokens.access_token, token);
        assert_eq!(userinfo(&server, token), (200, ALICE.to_owned()));
        previous = stored;
    }
    for replica in [&first, &second, &third] {
        let (_, shown) = replica.api(HttpMethod::Get, "/v1/connections/conn", &fleet.key, None);
        assert_eq!(shown["status"], "valid", "{shown}");
    }
}

/// A replica killed (SIGKILL) while it holds `conn`'s refresh lock, its refresh request
/// delayed at the server, which then handles the abandoned request as `abandoned` says.
/// Returns what the other replica answers then.
fn killed_while_refreshing(abandoned: &str) -> Aftermath {
    let server = server_with(&[]);
    let fleet = Fleet::new(&format!("fleet-kill-{abandoned}"));
    let survivor = fleet.replica(&[]);
    let mut doomed = fleet.replica(&["--public-url", &survivor.base]);
    let said = connect_across(&doomed, &server, &fleet.key);
    assert!(said.contains("callback /oauth/callback -> 200"), "{said}");
    fleet.expire("t1:conn");
    server.reset_stats();
    server.delay_refreshes(4_000, abandoned);

    // The doomed replica takes the lock, records the refresh and sends it; the server holds
    // the request. Then the replica dies, its lock with its database session.
    std::thread::scope(|scope| {
        let key = fleet.key.clone();
        let base = doomed.base.clone();
        scope.spawn(move || {
            // Never answered: the process is killed first.
            let _ = loopback(&base).send(connector_host::types::HttpRequest {
                method: HttpMethod::Post,
                url: format!("{base}/v1/connections/conn/token"),
                headers: vec![header("Authorization", &format!("Bearer {key}"))],
                body: vec![],
            });
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.delayed_refreshes()["delayed"] != 1 {
            assert!(
                Instant::now() < deadline,
                "the refresh never reached the server"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let recorded = fleet.open().get("t1:conn").unwrap();
        assert!(
            recorded.refresh_interrupted_at.is_some(),
            "recorded before it was sent"
        );
        doomed.kill();
    });
    server.delay_refreshes(0, "process");
    // The server deals with the abandoned request when its delay ends.
    let counter = if abandoned == "drop" {
        "dropped"
    } else {
        "processed_after_close"
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.delayed_refreshes()[counter] != 1 {
        assert!(
            Instant::now() < deadline,
            "the server never handled the abandoned refresh"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The lock went with the dead replica's session: the survivor gets it at once.
    let started = Instant::now();
    let answer = survivor.api(
        HttpMethod::Post,
        "/v1/connections/conn/token",
        &fleet.key,
        None,
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no wait for a dead replica's lock"
    );
    let (_, shown) = survivor.api(HttpMethod::Get, "/v1/connections/conn", &fleet.key, None);
    Aftermath {
        answer,
        shown,
        survivor,
        fleet,
        server,
    }
}

/// What [`killed_while_refreshing`] leaves: the surviving replica's `/token` answer and the
/// connection as it then shows it.
struct Aftermath {
    answer: (u16, Value),
    shown: Value,
    survivor: Service,
    fleet: Fleet,
    server: OidcServer,
}

#[test]
fn a_replica_killed_mid_refresh_whose_request_never_ran_leaves_a_valid_connection() {
    let Aftermath {
        answer: (status, token),
        shown,
        fleet,
        server,
        ..
    } = killed_while_refreshing("drop");
    assert_eq!(status, 200, "{token}");
    assert_eq!(shown["status"], "valid", "{shown}");
    assert_eq!(shown["reauthorization"], Value::Null);
    // The abandoned request and the survivor's retry of the same refresh token.
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 2, "by_grant": {"refresh_token": 2}}),
    );
    let stored = fleet.open().get("t1:conn").unwrap();
    assert_eq!(stored.refresh_interrupted_at, None, "settled");
    let access = token["access_token"].as_str().unwrap();
    assert_eq!(stored.tokens.access_token, access);
    assert_eq!(userinfo(&server, access), (200, ALICE.to_owned()));
}

#[test]
fn a_replica_killed_mid_refresh_whose_token_was_rotated_marks_the_connection() {
    let Aftermath {
        answer: (status, body),
        shown,
        survivor,
        fleet,
        server,
    } = killed_while_refreshing("process");
    // The server rotated the refresh token for a replica that died; the retry with the old
    // one is a replay, which it refuses (and revokes the grant).
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("reauthorization_required")),
        "{body}"
    );
    assert_eq!(shown["status"], "needs-reauthorization", "{shown}");
    assert_eq!(
        shown["reauthorization"]["reason"], "refresh-interrupted",
        "{shown}"
    );
    assert_eq!(
        shown["reauthorization"]["error"], "invalid_grant",
        "{shown}"
    );
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 2, "by_grant": {"refresh_token": 2}}),
    );
    // Marked, so nothing more is sent until it is connected again.
    let (status, body) = survivor.api(
        HttpMethod::Post,
        "/v1/connections/conn/token",
        &fleet.key,
        None,
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("reauthorization_required"))
    );
    assert_eq!(server.token_requests()["token_requests"], 2);
    assert_eq!(
        fleet.open().get("t1:conn").unwrap().refresh_interrupted_at,
        None,
        "settled"
    );
}

#[test]
fn a_database_restart_under_load_fails_retryably_and_recovers_by_itself() {
    let server = server_with(&[]);
    let fleet = Fleet::new("fleet-restart");
    let replicas = [fleet.replica(&[]), fleet.replica(&[])];
    create_service_integration(&replicas[0], &server, &fleet.key);
    let (status, body) = replicas[1].api(
        HttpMethod::Post,
        "/v1/connections",
        &fleet.key,
        Some(json!({"integration": "svc", "connection": "conn"})),
    );
    assert_eq!(status, 201, "{body}");
    let before = fleet.open().get("t1:conn").unwrap();

    // Load on both replicas throughout: every answer is a token or a retryable error.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (answers, down_for) = std::thread::scope(|scope| {
        let load: Vec<_> = (0..8)
            .map(|caller| {
                let (replica, stop, key) = (&replicas[caller % 2], &stop, &fleet.key);
                scope.spawn(move || {
                    let mut seen = Vec::new();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let at = Instant::now();
                        let (status, body) =
                            replica.api(HttpMethod::Post, "/v1/connections/conn/token", key, None);
                        seen.push((at, status, body));
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    seen
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(1));
        let stopped = Instant::now();
        fleet.cluster.stop();
        std::thread::sleep(Duration::from_secs(3));
        fleet.cluster.start_again();
        let down_for = (stopped, Instant::now());
        std::thread::sleep(Duration::from_secs(4));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let answers: Vec<_> = load.into_iter().flat_map(|t| t.join().unwrap()).collect();
        (answers, down_for)
    });
    let (mut ok, mut retryable) = (0, 0);
    for (_, status, body) in &answers {
        match status {
            200 => {
                assert_eq!(
                    body["access_token"].as_str(),
                    Some(before.tokens.access_token.as_str())
                );
                ok += 1;
            }
            503 => {
                assert_eq!(body["error"]["code"], "server_unavailable", "{body}");
                assert!(body["error"]["retry_after"].is_u64(), "{body}");
                retryable += 1;
            }
            other => panic!("status {other} while the database restarted: {body}"),
        }
    }
    eprintln!("database restart: {ok} tokens and {retryable} retryable errors");
    assert!(retryable > 0, "the database was down for 3 s");
    // Recovered: the last second of requests all succeeded, on both replicas.
    let settled = down_for.1 + Duration::from_secs(3);
    let late: Vec<_> = answers.iter().filter(|(at, ..)| *at > settled).collect();
    assert!(!late.is_empty());
    assert!(
        late.iter().all(|(_, status, _)| *status == 200),
        "recovered without a restart"
    );
    for replica in &replicas {
        let (status, body) = replica.api(HttpMethod::Get, "/v1/connections/conn", &fleet.key, None);
        assert_eq!((status, &body["status"]), (200, &json!("valid")), "{body}");
    }
    let after = fleet.open().get("t1:conn").unwrap();
    assert_eq!(after.tokens, before.tokens, "nothing lost or changed");
    assert_eq!(after.token_writes, before.token_writes);
}

#[test]
fn the_cli_uses_the_fleet_store_and_never_shows_its_password() {
    let server = server_with(&[]);
    let fleet = Fleet::new("fleet-cli");
    let replica = fleet.replica(&[]);
    create_service_integration(&replica, &server, &fleet.key);
    let (status, body) = replica.api(
        HttpMethod::Post,
        "/v1/connections",
        &fleet.key,
        Some(json!({"integration": "svc", "connection": "machine"})),
    );
    assert_eq!(status, 201, "{body}");

    // The CLI on the same database, with the password in the URL (as a test may; the README
    // says to use PGPASSWORD): what the service stored, and never the password.
    let password = fleet
        .store
        .split(':')
        .nth(2)
        .unwrap()
        .split('@')
        .next()
        .unwrap();
    assert_eq!(password.len(), 32, "{}", fleet.store);
    let run = |args: &[&str]| {
        let mut all = vec![
            "--store",
            fleet.store.as_str(),
            "--key-file",
            fleet.key_file.as_str(),
        ];
        all.extend_from_slice(args);
        let ran = crate::connect::cli(&all, &[]);
        for text in [&ran.out, &ran.err, &ran.log] {
            assert!(!text.contains(password), "{text}");
        }
        ran
    };
    let listed = run(&["list"]);
    assert_eq!(listed.code, 0, "{}", listed.err);
    assert!(listed.out.contains("t1:machine"), "{}", listed.out);
    let token = run(&["-v", "token", "t1:machine"]);
    assert_eq!(token.code, 0, "{}", token.err);
    let (_, served) = replica.api(
        HttpMethod::Post,
        "/v1/connections/machine/token",
        &fleet.key,
        None,
    );
    assert_eq!(token.out.trim(), served["access_token"].as_str().unwrap());

    let missing = run(&["show", "t1:nobody"]);
    assert_eq!(missing.code, 1, "{}", missing.err);
    assert!(
        missing.err.contains(
            "no connection named `t1:nobody` in the store postgres://connector:***@127.0.0.1:"
        ),
        "{}",
        missing.err
    );

    // A wrong password: a clear error naming the database, without any password.
    let wrong = fleet.store.replace(password, "not-the-password");
    let refused = crate::connect::cli(&["--store", &wrong, "list"], &[]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.err.contains("postgres://connector:***@127.0.0.1:"),
        "{}",
        refused.err
    );
    assert!(
        refused.err.contains("password authentication failed"),
        "{}",
        refused.err
    );
    assert!(!refused.err.contains("not-the-password"), "{}", refused.err);
}

#[test]
fn unfinished_connect_sessions_are_swept_once_expired() {
    let server = server_with(&[]);
    let fleet = Fleet::new("fleet-sweep");
    // Sessions live 4 s: long enough to be opened on a loaded machine (1 s was not: the
    // open was answered 410), short enough to be swept within the test.
    let replica = fleet.replica(&["--session-ttl", "4"]);
    create_code_integration(&replica, &server, &fleet.key);
    let begin = |connection: &str| {
        let (status, session) = replica.api(
            HttpMethod::Post,
            "/v1/connect-sessions",
            &fleet.key,
            Some(json!({"integration": "oidc", "connection": connection})),
        );
        assert_eq!(status, 201, "{session}");
        // Opened, so that its pending flow (state, sealed PKCE verifier) is stored too.
        let url = session["url"].as_str().unwrap();
        let opened = replica.send(HttpMethod::Get, url, None, None);
        assert_eq!(opened.status, 302);
    };
    let sessions = || {
        fleet
            .cluster
            .psql("SELECT connection FROM connect_sessions ORDER BY 1")
    };
    begin("first");
    assert_eq!(sessions(), "first\n");
    std::thread::sleep(Duration::from_millis(5_100));
    begin("second");
    assert_eq!(sessions(), "second\n", "the expired session went");
}

#[test]
fn a_refresh_the_database_refuses_to_store_is_kept_aside_and_recovered() {
    let server = server_with(&[]);
    let fleet = Fleet::new("fleet-rescue");
    let replica = fleet.replica(&[]);
    let said = connect_across(&replica, &server, &fleet.key);
    assert!(said.contains("callback /oauth/callback -> 200"), "{said}");
    fleet.expire("t1:conn");
    let before = fleet.open().get("t1:conn").unwrap();
    // The database takes the refresh's record, then refuses its tokens (as a full disk or a
    // failing database would, between the two).
    fleet.cluster.psql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'simulated write failure'; END $$",
    );
    fleet.cluster.psql(
        "CREATE TRIGGER refuse_writes BEFORE UPDATE OF tokens ON connections \
         FOR EACH ROW EXECUTE FUNCTION refuse()",
    );
    server.reset_stats();
    let (status, body) = replica.api(
        HttpMethod::Post,
        "/v1/connections/conn/token",
        &fleet.key,
        None,
    );
    assert_ne!(status, 200, "{body}");
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"refresh_token": 1}}),
    );
    let stored = fleet.open().get("t1:conn").unwrap();
    assert_eq!(stored.tokens, before.tokens, "not stored");
    assert!(stored.refresh_interrupted_at.is_some(), "on record");

    // Writable again: the same replica's next use stores the rotated tokens it kept aside,
    // with no second refresh, and they work.
    fleet
        .cluster
        .psql("DROP TRIGGER refuse_writes ON connections");
    let (status, token) = replica.api(
        HttpMethod::Post,
        "/v1/connections/conn/token",
        &fleet.key,
        None,
    );
    assert_eq!(status, 200, "{token}");
    assert_eq!(
        server.token_requests()["token_requests"],
        1,
        "no second refresh"
    );
    let recovered = fleet.open().get("t1:conn").unwrap();
    assert_ne!(
        recovered.tokens.refresh_token, before.tokens.refresh_token,
        "the rotated one"
    );
    assert_eq!(recovered.refresh_interrupted_at, None);
    let access = token["access_token"].as_str().unwrap();
    assert_eq!(recovered.tokens.access_token, access);
    assert_eq!(userinfo(&server, access), (200, ALICE.to_owned()));
}
