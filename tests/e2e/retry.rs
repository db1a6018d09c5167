//! Retrying what the server says to retry, end to end: a proxy on 127.0.0.1 in front of the
//! real authorization server answers the first token (or API) requests itself with 429 or
//! 503 and forwards the rest. A sign-in whose code exchange meets a 429 or 503 still
//! succeeds with the same code: one sign-in, two token requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use connector_host::cli::format_time;
use connector_host::loopback::{LoopbackServer, Recorded, Reply};
use connector_host::store::Store;
use connector_host::types::{HttpMethod, HttpRequest, KeyValue};
use connector_host::{AllowList, HttpTransport, Limits};
use serde_json::json;

use crate::connect::cli;
use crate::server::{OidcServer, TempDir, user_agent};

/// What the proxy answers for one of the first requests on a path, instead of forwarding
/// (`None`: forward that one).
type Scripted = Option<Box<dyn Fn() -> Reply + Send + Sync>>;

/// A proxy in front of `server`: the first `scripted.len()` requests to `path` get the
/// scripted answers, in order; everything else is forwarded.
fn proxy(server: &OidcServer, path: &'static str, scripted: Vec<Scripted>) -> LoopbackServer {
    let upstream = server.issuer.clone();
    let seen = Arc::new(AtomicUsize::new(0));
    LoopbackServer::start(move |request: &Recorded| {
        let target_path = request.target.split('?').next().unwrap_or_default();
        if target_path == path {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            if let Some(Some(answer)) = scripted.get(n) {
                return answer();
            }
        }
        forward(&upstream, request)
    })
}

/// Sends `request` on to `upstream` and answers with its response.
pub fn forward(upstream: &str, request: &Recorded) -> Reply {
    let transport = HttpTransport::new(AllowList::from_urls([upstream]), Limits::default());
    let headers = request
        .headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "host" | "content-length" | "user-agent"))
        .map(|(name, value)| KeyValue {
            name: name.clone(),
            value: value.clone(),
        })
        .collect();
    let method = match request.method.as_str() {
        "GET" => HttpMethod::Get,
        "POST" => HttpMethod::Post,
        other => HttpMethod::Other(other.to_owned()),
    };
    let response = transport
        .send(HttpRequest {
            method,
            url: format!("{upstream}{}", request.target),
            headers,
            body: request.body.clone(),
        })
        .expect("the upstream server answers");
    Reply {
        status: response.status,
        headers: response
            .headers
            .into_iter()
            .filter(|h| {
                !matches!(
                    h.name.to_ascii_lowercase().as_str(),
                    "content-length" | "connection" | "transfer-encoding" | "keep-alive"
                )
            })
            .map(|h| (h.name, h.value))
            .collect(),
        body: response.body,
        delay: Duration::ZERO,
    }
}

/// `unix` as an IMF-fixdate (RFC 9110 §5.6.7), for example `Wed, 02 Dec 2026 17:20:06 GMT`.
fn imf_fixdate(unix: u64) -> String {
    let rfc3339 = format_time(unix); // 2026-12-02T17:20:06Z
    let (date, time) = rfc3339.trim_end_matches('Z').split_once('T').unwrap();
    let mut parts = date.split('-');
    let (year, month, day) = (
        parts.next().unwrap(),
        parts.next().unwrap().parse::<usize>().unwrap(),
        parts.next().unwrap(),
    );
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // 1970-01-01 was a Thursday.
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let weekday = DAYS[(unix / 86_400 % 7) as usize];
    format!("{weekday}, {day} {} {year} {time} GMT", MONTHS[month - 1])
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A profile for `server` whose token endpoint is the proxy's.
fn profile_through(server: &OidcServer, proxy: &LoopbackServer, dir: &TempDir) -> String {
    let issuer = &server.issuer;
    let path = dir.0.join("proxied.json");
    std::fs::write(
        &path,
        format!(
            r#"{{"id": "proxied", "issuer": "{issuer}", "authorize-url": "{issuer}/auth",
                "token-url": "{}", "api-base-url": "{}", "default-scopes": ["openid", "profile"],
                "requires-iss": true}}"#,
            proxy.url("/token"),
            proxy.url("")
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

fn connect(store: &str, profile: &str) -> crate::connect::Outcome {
    let browser = user_agent("");
    cli(
        &crate::lifecycle::connect_code_args(store, "conn", profile, "basic-client", &browser),
        &[("SECRET", "basic-secret")],
    )
}

fn token_requests_at(proxy: &LoopbackServer) -> usize {
    proxy
        .requests()
        .iter()
        .filter(|r| r.target == "/token")
        .count()
}

#[test]
fn a_429_with_retry_after_seconds_then_success_needs_one_sign_in() {
    let (server, dir) = (OidcServer::start(), TempDir::new("retry-429"));
    let proxy = proxy(
        &server,
        "/token",
        vec![Some(Box::new(|| {
            Reply::new(
                429,
                &[("Retry-After", "1"), ("Content-Type", "application/json")],
                r#"{"error":"slow_down_please"}"#,
            )
        }))],
    );
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let started = Instant::now();
    let outcome = connect(&store, &profile_through(&server, &proxy, &dir));
    assert_eq!(outcome.code, 0, "{}", outcome.err);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited the Retry-After"
    );
    assert!(
        outcome.err.contains(
            "the server answered HTTP 429; retrying in 1.0 s (the server's Retry-After) \
             (attempt 2 of 4)"
        ),
        "{}",
        outcome.err
    );
    assert_eq!(token_requests_at(&proxy), 2, "exactly two token requests");
    // One sign-in: the server issued one code and exchanged it once.
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"authorization_code": 1}})
    );
    let stored = Store::open(std::path::Path::new(&store))
        .unwrap()
        .get("conn")
        .unwrap();
    assert_eq!(
        server.introspect(&stored.tokens.access_token)["active"],
        json!(true)
    );
}

#[test]
fn a_503_with_an_http_date_retry_after_then_success() {
    let (server, dir) = (OidcServer::start(), TempDir::new("retry-503"));
    let proxy = proxy(
        &server,
        "/token",
        vec![Some(Box::new(|| {
            let now = now();
            let (date, retry) = (imf_fixdate(now), imf_fixdate(now + 2));
            Reply::new(
                503,
                &[
                    ("Retry-After", retry.as_str()),
                    ("Date", date.as_str()),
                    ("Content-Type", "text/html"),
                ],
                "<html><body>Service Unavailable</body></html>",
            )
        }))],
    );
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let started = Instant::now();
    let outcome = connect(&store, &profile_through(&server, &proxy, &dir));
    assert_eq!(outcome.code, 0, "{}", outcome.err);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited until the date"
    );
    assert!(
        outcome.err.contains(
            "the server answered HTTP 503; retrying in 2.0 s (the server's Retry-After) \
             (attempt 2 of 4)"
        ),
        "{}",
        outcome.err
    );
    assert_eq!(token_requests_at(&proxy), 2);
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"authorization_code": 1}})
    );
}

#[test]
fn a_server_that_always_answers_503_stops_within_the_cap() {
    let (server, dir) = (OidcServer::start(), TempDir::new("retry-always"));
    let always: Vec<Scripted> = (0..10)
        .map(|_| Some(Box::new(|| Reply::new(503, &[], "down")) as _))
        .collect();
    let proxy = proxy(&server, "/token", always);
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let started = Instant::now();
    let outcome = connect(&store, &profile_through(&server, &proxy, &dir));
    let elapsed = started.elapsed();
    assert_eq!(outcome.code, 1, "{}", outcome.err);
    assert!(
        elapsed < Duration::from_secs(30),
        "stopped within the cap: {elapsed:?}"
    );
    assert_eq!(token_requests_at(&proxy), 4);
    let last = outcome.err.lines().last().unwrap();
    assert!(
        last.starts_with(
            "error: the server is unavailable (HTTP 503) (gave up after 4 attempts over "
        ),
        "{last}"
    );
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 0, "by_grant": {}})
    );
    assert!(
        Store::open(std::path::Path::new(&store))
            .unwrap()
            .list()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn api_calls_retry_429_and_503_for_idempotent_methods_only() {
    let (server, dir) = (OidcServer::start(), TempDir::new("retry-api"));
    let busy: Vec<Scripted> = vec![
        Some(Box::new(|| {
            Reply::new(503, &[("Retry-After", "1")], "busy")
        })),
        // The GET's second attempt goes through.
        None,
        // The POST: answered 429 and never sent again.
        Some(Box::new(|| {
            Reply::new(429, &[("Retry-After", "1")], "busy")
        })),
    ];
    let proxy = proxy(&server, "/me", busy);
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let outcome = connect(&store, &profile_through(&server, &proxy, &dir));
    assert_eq!(outcome.code, 0, "{}", outcome.err);
    let me = proxy.url("/me");
    let get = cli(&["--store", &store, "call", "conn", "GET", &me], &[]);
    assert_eq!(get.code, 0, "{}", get.err);
    assert_eq!(get.out, r#"{"sub":"alice","name":"Test User alice"}"#);
    assert!(
        get.err.contains("the API answered HTTP 503; retrying in 1.0 s (the server's Retry-After) (attempt 2 of 4)"),
        "{}",
        get.err
    );
    let post = cli(&["--store", &store, "call", "conn", "POST", &me], &[]);
    // An answer of 400 or above exits 1, its body printed.
    assert_eq!(post.code, 1, "{}", post.err);
    assert_eq!(post.out, "busy");
    assert!(post.err.contains("HTTP 429\n"), "{}", post.err);
    assert!(
        post.err.contains("the API answered HTTP 429; a POST is not sent again on its own (it may not be idempotent)"),
        "{}",
        post.err
    );
    assert!(!post.err.contains("retrying"), "{}", post.err);
    let calls: Vec<String> = proxy
        .requests()
        .iter()
        .filter(|r| r.target == "/me")
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(calls, ["GET", "GET", "POST"]);
}
