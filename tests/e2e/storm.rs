//! A refresh storm across processes: 32 `connector-host call`s start at one instant on a
//! connection whose access token has expired, against the real authorization server, which
//! rotates refresh tokens (a refresh token used twice revokes the whole grant). Exactly one
//! refresh reaches the server, and every call succeeds. Correctness only: how fast the storm
//! ends is the benchmark's to measure (`cargo bench --bench connector`).
//!
//! Each caller is a process of its own: this test binary started again as a worker that runs
//! the CLI once, through `connector_host::cli::run` (all that `connector-host`'s `main` does,
//! with its arguments). The `connector-host` binary itself belongs to another package, which
//! cargo does not build for this package's tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Instant;

use connector_host::compile_cache::CACHE_ENV;
use connector_host::store::Store;
use serde_json::json;

use crate::connect::{Outcome, cli};
use crate::lifecycle::{connect_code_args, profile};
use crate::server::{OidcServer, TempDir, user_agent};

/// How many CLI processes call at once.
const CALLERS: usize = 32;

/// What a caller prints once it waits for the start, and before its outcome.
const READY: &str = "storm-caller ready";
const OUTCOME: &str = "storm-caller outcome ";

/// What each caller's log says about its tokens: exactly one of these.
const REFRESHED: &str = "refreshed and stored";
const TOOK_OTHERS: &str = "another process refreshed meanwhile; using its tokens";
const FOUND_VALID: &str = "stored tokens are valid";

/// The userinfo answer for the scripted user agent's `alice`.
const ALICE: &str = r#"{"sub":"alice","name":"Test User alice"}"#;

#[test]
fn thirty_two_cli_processes_on_an_expired_connection_refresh_once() {
    let (server, dir) = (OidcServer::start(), TempDir::new("storm-cli"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    // The compile cache. `connect` loads the component through it, so it is warm before the
    // storm: each caller loads the compiled component (about a millisecond) instead of
    // compiling it, and the storm tests the refresh lock, not 32 compilations on two cores.
    // Each caller's log says where its component came from (checked below).
    let cache = dir.0.join("compiled");
    let cache = cache.to_str().unwrap();
    let profile = profile(&server, &dir.0);
    let browser = user_agent("");
    let connect = cli(
        &connect_code_args(&store, "conn", &profile, "basic-client", &browser),
        &[("SECRET", "basic-secret"), (CACHE_ENV, cache)],
    );
    assert_eq!(connect.code, 0, "{}", connect.err);

    // Expired: as if the server had issued the access token with no lifetime, so that it is
    // due for refresh whatever the clock says. (The server would still accept it; each
    // caller's log shows that none used it.)
    let before = {
        let store = Store::open(Path::new(&store)).unwrap();
        let mut tokens = store.get("conn").unwrap().tokens;
        tokens.expires_at = Some(tokens.obtained_at);
        store.update_tokens("conn", &tokens).unwrap();
        tokens
    };
    server.reset_stats();

    // The barrier: every caller has started and waits on its standard input; closing them
    // all releases the callers together.
    let userinfo = format!("{}/me", server.issuer);
    let mut callers: Vec<Caller> = (0..CALLERS)
        .map(|_| Caller::start(&store, &userinfo, cache))
        .collect();
    for caller in &mut callers {
        caller.wait_until_ready();
    }
    let released = Instant::now();
    for caller in &mut callers {
        drop(caller.child.stdin.take());
    }
    let outcomes: Vec<Outcome> = callers.into_iter().map(Caller::finish).collect();
    let storm = released.elapsed();

    // Every caller succeeded, with the compiled component from the cache, and went exactly
    // one way: it refreshed, or it took the tokens another had refreshed while it waited
    // for the lock, or it found them valid.
    let mut ways = [0; 3];
    for (n, outcome) in outcomes.iter().enumerate() {
        assert_eq!(
            outcome.code, 0,
            "caller {n}: {}{}",
            outcome.err, outcome.log
        );
        assert_eq!(outcome.out, ALICE, "caller {n}");
        assert!(
            outcome.log.contains("component loaded origin=Cache"),
            "caller {n} compiled the component: {}",
            outcome.log
        );
        let went: Vec<usize> = [REFRESHED, TOOK_OTHERS, FOUND_VALID]
            .iter()
            .enumerate()
            .filter(|(_, said)| outcome.log.contains(*said))
            .map(|(way, _)| way)
            .collect();
        assert_eq!(went.len(), 1, "caller {n}: {}", outcome.log);
        ways[went[0]] += 1;
    }
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"refresh_token": 1}}),
        "one refresh for {CALLERS} concurrent processes"
    );
    assert_eq!(ways[0], 1, "exactly one caller refreshed: {ways:?}");

    // Each caller printed what a call made after the storm prints (its tokens are valid),
    // but for the response's date.
    let after = cli(
        &["--store", &store, "call", "conn", "GET", &userinfo],
        &[(CACHE_ENV, cache)],
    );
    assert_eq!(after.code, 0, "{}", after.err);
    assert_eq!(after.out, ALICE);
    let undated = |err: &str| -> Vec<String> {
        err.lines()
            .filter(|line| !line.starts_with("date: "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(undated(&after.err)[0], "HTTP 200");
    for (n, outcome) in outcomes.iter().enumerate() {
        assert_eq!(undated(&outcome.err), undated(&after.err), "caller {n}");
    }

    // One write of the refreshed tokens (after the connect's and the expiry's). The refresh
    // rotated the refresh token, and no one replayed the old one: a replay would have
    // revoked the grant, the new refresh token with it.
    let now = Store::open(Path::new(&store)).unwrap().get("conn").unwrap();
    assert_eq!(now.token_writes, 3);
    assert_ne!(now.tokens.access_token, before.access_token);
    let (old_refresh, new_refresh) = (
        before.refresh_token.as_deref().unwrap(),
        now.tokens.refresh_token.as_deref().unwrap(),
    );
    assert_ne!(new_refresh, old_refresh);
    assert_eq!(server.introspect(new_refresh)["active"], json!(true));
    assert_eq!(server.introspect(old_refresh)["active"], json!(false));
    eprintln!(
        "storm: {CALLERS} CLI processes, 1 refresh request, 0 failures; refreshed, took \
         another's, found valid: {ways:?}; {:.2} s from release to the last exit",
        storm.as_secs_f64()
    );
}

/// One caller process of the storm, started and waiting for the release.
struct Caller {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Caller {
    /// Starts [`storm_caller`] for `connector-host --store STORE call conn GET URL`.
    fn start(store: &str, url: &str, cache: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "storm::storm_caller", "--nocapture"])
            .env("STORM_STORE", store)
            .env("STORM_URL", url)
            .env(CACHE_ENV, cache)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a caller process");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self { child, stdout }
    }

    /// Waits until the caller says it is ready.
    fn wait_until_ready(&mut self) {
        let mut line = String::new();
        while line.trim_end() != READY {
            line.clear();
            if self.stdout.read_line(&mut line).unwrap() == 0 {
                panic!("a caller ended before the storm: {}", self.rest());
            }
        }
    }

    /// The caller's outcome, once it has ended.
    fn finish(mut self) -> Outcome {
        let mut printed = String::new();
        self.stdout.read_to_string(&mut printed).unwrap();
        let Some(line) = printed.lines().find_map(|line| line.strip_prefix(OUTCOME)) else {
            panic!("a caller printed no outcome: {printed}{}", self.rest());
        };
        assert!(self.child.wait().unwrap().success(), "{printed}");
        let outcome: serde_json::Value = serde_json::from_str(line).unwrap();
        let text = |field: &str| outcome[field].as_str().unwrap().to_owned();
        Outcome {
            code: outcome["code"].as_i64().unwrap() as i32,
            out: text("out"),
            err: text("err"),
            log: text("log"),
        }
    }

    /// What the caller printed on standard error, once it has ended.
    fn rest(&mut self) -> String {
        let _ = self.child.wait();
        let mut err = String::new();
        let _ = self.child.stderr.take().unwrap().read_to_string(&mut err);
        err
    }
}

/// One caller of the storm (a worker process, run by the storm test with `--ignored`): says
/// it is ready, waits for the release (its standard input closing), runs `connector-host -vv
/// --store STORE call conn GET URL` once, and prints its outcome as one line of JSON.
#[test]
#[ignore = "a worker process started by thirty_two_cli_processes_on_an_expired_connection_refresh_once"]
fn storm_caller() {
    let store = std::env::var("STORM_STORE").expect("started by the storm test");
    let url = std::env::var("STORM_URL").expect("started by the storm test");
    let cache = std::env::var(CACHE_ENV).expect("started by the storm test");
    println!("{READY}");
    std::io::stdout().flush().unwrap();
    std::io::stdin().read_to_end(&mut Vec::new()).unwrap();
    let outcome = cli(
        &["-vv", "--store", &store, "call", "conn", "GET", &url],
        &[(CACHE_ENV, &cache)],
    );
    let printed = json!({
        "code": outcome.code,
        "out": outcome.out,
        "err": outcome.err,
        "log": outcome.log,
    });
    println!("{OUTCOME}{printed}");
}
