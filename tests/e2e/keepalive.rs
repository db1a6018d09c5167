//! The service's keep-alive sweep and webhooks end to end: `connector-host serve` as a
//! worker process, the real authorization server, and webhook receivers that are small
//! HTTP/1.1 servers in this test on 127.0.0.1 (each request recorded; its signature checked
//! here, with the `hmac` crate, independently of the service's `ring`).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use connector_host::seal::SealingKey;
use connector_host::store::Store;
use connector_host::types::{HttpMethod, HttpRequest};
use hmac::Mac as _;
use serde_json::{Value, json};

use crate::connect::cli;
use crate::server::{OidcServer, TempDir};
use crate::service::*;

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Received {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// When it arrived.
    at: Instant,
    /// The status it was answered with.
    answered: u16,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A webhook receiver on 127.0.0.1: answers each request with the next scripted status, or
/// `otherwise` once the script is spent.
#[derive(Clone)]
struct Receiver {
    url: String,
    origin: String,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<(VecDeque<u16>, u16)>>,
}

impl Receiver {
    fn start(script: &[u16], otherwise: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let receiver = Self {
            url: format!("{origin}/hooks/in?source=connector"),
            origin,
            received: Arc::default(),
            script: Arc::new(Mutex::new((script.iter().copied().collect(), otherwise))),
        };
        let shared = receiver.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || shared.serve(stream));
            }
        });
        receiver
    }

    /// Reads one request (its body by `Content-Length`), records it, answers, closes.
    fn serve(&self, mut stream: std::net::TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or_default().to_owned(),
            parts.next().unwrap_or_default().to_owned(),
        );
        let mut headers = Vec::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap();
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, value)| value.parse().unwrap());
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let answered = {
            let mut script = self.script.lock().unwrap();
            let otherwise = script.1;
            script.0.pop_front().unwrap_or(otherwise)
        };
        self.received.lock().unwrap().push(Received {
            method,
            path,
            headers,
            body,
            at: Instant::now(),
            answered,
        });
        let _ = write!(
            stream,
            "HTTP/1.1 {answered} Scripted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Answers `status` from now on.
    fn answer(&self, status: u16) {
        *self.script.lock().unwrap() = (VecDeque::new(), status);
    }

    /// Waits until `count` requests have arrived (at most `timeout`): all of them.
    fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{} request(s) within {timeout:?}, not {count}: {received:?}",
                received.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Checks a delivery as a receiver would: the method, path and headers, the event id, and
/// the signature (recomputed here with `secret`, its time within a minute); the event.
fn verify(received: &Received, secret: &str) -> Value {
    assert_eq!(received.method, "POST");
    assert_eq!(received.path, "/hooks/in?source=connector");
    assert_eq!(received.header("content-type"), Some("application/json"));
    let event: Value = serde_json::from_slice(&received.body).unwrap();
    assert_eq!(
        received.header("connector-event-id"),
        event["id"].as_str(),
        "the header names the body's event"
    );
    let signature = received.header("connector-signature").unwrap();
    let (t, v1) = signature
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .unwrap_or_else(|| panic!("not `t=…,v1=…`: {signature}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(t.parse::<u64>().unwrap()) <= 60, "{signature}");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&received.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(v1, expected, "the signature verifies with the secret");
    event
}

/// `event` without its random `id` and its time (checked to be `evt_…` and RFC 3339 UTC).
fn fields(mut event: Value) -> Value {
    let object = event.as_object_mut().unwrap();
    let id = object.remove("id").unwrap();
    assert!(id.as_str().unwrap().starts_with("evt_"), "{id}");
    assert_eq!(id.as_str().unwrap().len(), "evt_".len() + 43);
    let at = object.remove("at").unwrap();
    assert!(at.as_str().unwrap().ends_with('Z'), "{at}");
    event
}

/// `PUT /v1/webhook` with `url`: its secret.
fn put_webhook(service: &Service, key: &str, url: &str) -> String {
    let (status, body) = service.api(
        HttpMethod::Put,
        "/v1/webhook",
        key,
        Some(json!({ "url": url })),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["url"], url);
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    let secret = body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() == "whsec_".len() + 43);
    secret
}

/// Revokes the refresh token `token` at the server (RFC 7009, as `basic-client`): the server
/// revokes its whole grant (even when `token` was rotated since).
fn revoke_at_server(server: &OidcServer, token: &str) {
    let response = loopback(&server.issuer)
        .send(HttpRequest {
            method: HttpMethod::Post,
            url: format!("{}/token/revocation", server.issuer),
            headers: vec![
                header("Content-Type", "application/x-www-form-urlencoded"),
                // base64("basic-client:basic-secret")
                header(
                    "Authorization",
                    "Basic YmFzaWMtY2xpZW50OmJhc2ljLXNlY3JldA==",
                ),
            ],
            body: format!("token={token}&token_type_hint=refresh_token").into_bytes(),
        })
        .unwrap();
    assert_eq!(response.status, 200);
}

/// The refresh-token grants the server has answered since its counters were reset.
fn refresh_grants(server: &OidcServer) -> u64 {
    server.token_requests()["by_grant"]["refresh_token"]
        .as_u64()
        .unwrap_or(0)
}

/// Waits until `condition` holds (at most `timeout`).
fn eventually(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {timeout:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Tenant `tenant`'s connection `id`'s row in `service_connections`: (notified_status,
/// kept_alive_at), or `None` when there is none.
fn service_row(store: &str, tenant: i64, id: &str) -> Option<(Option<String>, Option<i64>)> {
    let db = rusqlite::Connection::open(store).unwrap();
    db.query_row(
        "SELECT notified_status, kept_alive_at FROM service_connections
         WHERE tenant_id = ?1 AND id = ?2",
        rusqlite::params![tenant, id],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .ok()
}

/// The stored refresh token of store connection `name`.
fn stored_refresh_token(store: &str, key: &SealingKey, name: &str) -> String {
    Store::open_sealed(std::path::Path::new(store), key.clone())
        .unwrap()
        .get(name)
        .unwrap()
        .tokens
        .refresh_token
        .unwrap()
}

#[test]
fn a_tenant_sets_gets_and_deletes_its_webhook_whose_secret_is_shown_once_and_sealed() {
    let dir = TempDir::new("webhook-api");
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let acme = add_tenant(&store, "acme");
    let beta = add_tenant(&store, "beta");
    let allowed = "http://127.0.0.1:9";
    let (service, _, _) = start_sealed(&dir.0, &store, &["--webhook-origin", allowed]);

    let none = json!({"error": {
        "code": "not_found",
        "message": "no webhook; create one with PUT /v1/webhook",
    }});
    assert_eq!(
        service.api(HttpMethod::Get, "/v1/webhook", &acme, None),
        (404, none.clone())
    );
    let url = format!("{allowed}/hooks/in");
    let first = put_webhook(&service, &acme, &url);
    let response = service.send(
        HttpMethod::Put,
        "/v1/webhook",
        Some(&acme),
        Some(&json!({ "url": url }).to_string()),
    );
    assert_eq!(response.status, 200);
    assert_eq!(header_of(&response, "cache-control"), Some("no-store"));
    let second = json_of(&response)["secret"].as_str().unwrap().to_owned();
    assert_ne!(first, second, "a new secret each time");

    // Shown once: not on GET.
    let (status, shown) = service.api(HttpMethod::Get, "/v1/webhook", &acme, None);
    assert_eq!(status, 200);
    assert_eq!(shown["url"], url);
    assert!(shown["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(shown.as_object().unwrap().len(), 2, "{shown}");

    // Another tenant sees none, and deletes none.
    assert_eq!(
        service.api(HttpMethod::Get, "/v1/webhook", &beta, None),
        (404, none.clone())
    );
    assert_eq!(
        service.api(HttpMethod::Delete, "/v1/webhook", &beta, None),
        (404, none.clone())
    );
    assert_eq!(
        service.api(HttpMethod::Get, "/v1/webhook", &acme, None).0,
        200
    );

    // URLs off the allowed origins, with credentials or a fragment, or not http(s): 400,
    // and the webhook is unchanged.
    for refused in [
        "https://hooks.example/in",
        "http://127.0.0.1:10/hooks/in",
        "http://user:pw@127.0.0.1:9/hooks/in",
        "http://127.0.0.1:9/hooks/in#x",
        "ftp://127.0.0.1:9/hooks/in",
        "hooks/in",
    ] {
        let (status, body) = service.api(
            HttpMethod::Put,
            "/v1/webhook",
            &acme,
            Some(json!({ "url": refused })),
        );
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &json!("invalid_request")),
            "{refused}"
        );
    }
    let (_, off_origin) = service.api(
        HttpMethod::Put,
        "/v1/webhook",
        &acme,
        Some(json!({ "url": "https://hooks.example/in" })),
    );
    assert!(
        off_origin["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--webhook-origin"),
        "{off_origin}"
    );
    let (status, body) = service.api(
        HttpMethod::Put,
        "/v1/webhook",
        &acme,
        Some(json!({ "url": url, "secret": "mine" })),
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("invalid_request"))
    );
    assert_eq!(
        service.api(HttpMethod::Get, "/v1/webhook", &acme, None).1["url"],
        url
    );

    // The store holds the secret sealed, never in clear.
    let db = rusqlite::Connection::open(&store).unwrap();
    let sealed: String = db
        .query_row("SELECT secret FROM webhooks", [], |row| row.get(0))
        .unwrap();
    assert!(sealed.starts_with("sealed:"), "{sealed}");
    drop(db);
    for file in ["store.db", "store.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.0.join(file)) {
            for secret in [&first, &second] {
                assert!(!contains(&bytes, secret), "{file} holds a secret in clear");
                assert!(!contains(&bytes, &secret["whsec_".len()..]));
            }
        }
    }

    let deleted = service.send(HttpMethod::Delete, "/v1/webhook", Some(&acme), None);
    assert_eq!((deleted.status, deleted.body.len()), (204, 0));
    assert_eq!(
        service.api(HttpMethod::Get, "/v1/webhook", &acme, None),
        (404, none.clone())
    );
    assert_eq!(
        service.api(HttpMethod::Delete, "/v1/webhook", &acme, None),
        (404, none)
    );
}

#[test]
fn idle_connections_are_refreshed_in_the_background_and_status_changes_are_signed_events() {
    let server = server_with(&[]);
    let dir = TempDir::new("keepalive");
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let acme = add_tenant(&store, "acme");
    let receiver = Receiver::start(&[], 200);
    let (service, _, sealing_key) = start_sealed(
        &dir.0,
        &store,
        &[
            "--keep-alive-interval",
            "1",
            "--keep-alive-after",
            "1",
            "--webhook-origin",
            &receiver.origin,
        ],
    );
    let secret = put_webhook(&service, &acme, &receiver.url);
    create_code_integration(&service, &server, &acme);

    // Connected through the browser: one `connected` event, at once.
    let said = connect_in_browser(&service, &acme, "conn", None, "");
    assert!(said.contains("callback /oauth/callback -> 200"), "{said}");
    let connected_at = Instant::now();
    let refresh_token = stored_refresh_token(&store, &sealing_key, "t1:conn");
    server.reset_stats();
    let received = receiver.wait_for(1, Duration::from_secs(5));
    let latency = received[0].at.saturating_duration_since(connected_at);
    eprintln!("connected event {latency:?} after the callback");
    assert!(latency < Duration::from_secs(2), "{latency:?}");
    assert_eq!(
        fields(verify(&received[0], &secret)),
        json!({
            "type": "connection.status",
            "connection": "conn",
            "integration": "oidc",
            "status": "connected",
            "previous_status": null,
        })
    );

    // Kept alive with no /token call: the server sees refresh-token grants, the refresh
    // token rotates, and the connection still works.
    eventually(Duration::from_secs(10), "a keep-alive refresh", || {
        refresh_grants(&server) >= 1
    });
    assert_eq!(
        server.token_requests()["by_grant"]
            .as_object()
            .unwrap()
            .len(),
        1,
        "only refresh-token grants: {}",
        server.token_requests()
    );
    eventually(Duration::from_secs(5), "kept_alive_at is set", || {
        service_row(&store, 1, "conn").is_some_and(|(_, kept)| kept.is_some())
    });
    assert_ne!(
        stored_refresh_token(&store, &sealing_key, "t1:conn"),
        refresh_token,
        "rotated"
    );
    let (_, shown) = service.api(HttpMethod::Get, "/v1/connections/conn", &acme, None);
    assert_eq!(shown["status"], "valid");
    assert!(shown["last_refresh"].as_str().unwrap().ends_with('Z'));
    assert_eq!(shown["last_error"], Value::Null);
    let (status, token) = service.api(HttpMethod::Post, "/v1/connections/conn/token", &acme, None);
    assert_eq!(status, 200, "{token}");
    let access = token["access_token"].as_str().unwrap().to_owned();
    assert_eq!(userinfo(&server, &access), (200, ALICE.to_owned()));
    assert_eq!(receiver.received().len(), 1, "refreshes change no status");

    // The grant revoked at the server: the next keep-alive refresh is refused, the
    // connection is marked, its last error recorded, and the tenant told.
    revoke_at_server(
        &server,
        &stored_refresh_token(&store, &sealing_key, "t1:conn"),
    );
    let received = receiver.wait_for(2, Duration::from_secs(10));
    assert_eq!(
        fields(verify(&received[1], &secret)),
        json!({
            "type": "connection.status",
            "connection": "conn",
            "integration": "oidc",
            "status": "needs-reauthorization",
            "previous_status": "connected",
            "reason": "refresh-refused",
            "error": "invalid_grant",
        })
    );
    let (_, shown) = service.api(HttpMethod::Get, "/v1/connections/conn", &acme, None);
    assert_eq!(shown["status"], "needs-reauthorization");
    assert_eq!(shown["reauthorization"]["error"], "invalid_grant");
    let last_error = &shown["last_error"];
    assert_eq!(last_error["code"], "invalid_grant");
    assert!(
        last_error["message"].as_str().unwrap().len() > 10,
        "{last_error}"
    );
    assert!(last_error["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(last_error.as_object().unwrap().len(), 3, "{last_error}");
    let (_, listed) = service.api(HttpMethod::Get, "/v1/connections", &acme, None);
    assert_eq!(&listed["connections"][0]["last_error"], last_error);
    // A marked connection is not kept alive: no more refreshes.
    let refreshes = refresh_grants(&server);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(refresh_grants(&server), refreshes);
    assert_eq!(receiver.received().len(), 2, "told once");

    // Connected again: `connected`, and the last error is gone.
    connect_in_browser(&service, &acme, "conn", None, "");
    let received = receiver.wait_for(3, Duration::from_secs(5));
    assert_eq!(
        fields(verify(&received[2], &secret)),
        json!({
            "type": "connection.status",
            "connection": "conn",
            "integration": "oidc",
            "status": "connected",
            "previous_status": "needs-reauthorization",
        })
    );
    let (_, shown) = service.api(HttpMethod::Get, "/v1/connections/conn", &acme, None);
    assert_eq!(
        (&shown["status"], &shown["last_error"]),
        (&json!("valid"), &Value::Null)
    );

    // Deleted: `removed`, and its row goes once told.
    let (status, _) = service.api(HttpMethod::Delete, "/v1/connections/conn", &acme, None);
    let deleted_at = Instant::now();
    assert_eq!(status, 200);
    let received = receiver.wait_for(4, Duration::from_secs(5));
    eprintln!(
        "removed event {:?} after the DELETE's answer",
        received[3].at.saturating_duration_since(deleted_at)
    );
    assert_eq!(
        fields(verify(&received[3], &secret)),
        json!({
            "type": "connection.status",
            "connection": "conn",
            "integration": "oidc",
            "status": "removed",
            "previous_status": "connected",
        })
    );
    eventually(Duration::from_secs(5), "the removed row is gone", || {
        service_row(&store, 1, "conn").is_none()
    });
    let ids: std::collections::BTreeSet<&str> = received
        .iter()
        .map(|r| r.header("connector-event-id").unwrap())
        .collect();
    assert_eq!(ids.len(), 4, "one id per event");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.received().len(), 4, "nothing more");
}

#[test]
fn deliveries_are_retried_and_a_failing_receiver_holds_up_no_other_tenant() {
    let server = server_with(&[]);
    let dir = TempDir::new("webhook-retries");
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let acme = add_tenant(&store, "acme");
    let beta = add_tenant(&store, "beta");
    // acme's receiver fails twice, then answers 200; beta's fails until told otherwise.
    let flaky = Receiver::start(&[500, 500], 200);
    let down = Receiver::start(&[], 500);
    let (service, key_file, _) = start_sealed(
        &dir.0,
        &store,
        &[
            "--keep-alive-interval",
            "2",
            "--keep-alive-after",
            "0",
            "--webhook-origin",
            &flaky.origin,
            "--webhook-origin",
            &down.origin,
        ],
    );
    let acme_secret = put_webhook(&service, &acme, &flaky.url);
    let beta_secret = put_webhook(&service, &beta, &down.url);
    for key in [&acme, &beta] {
        create_service_integration(&service, &server, key);
    }
    let connect = |key: &str, connection: &str| {
        let (status, body) = service.api(
            HttpMethod::Post,
            "/v1/connections",
            key,
            Some(json!({"integration": "svc", "connection": connection})),
        );
        assert_eq!(status, 201, "{body}");
    };

    // beta's receiver is down; acme's gets its event on the third attempt meanwhile.
    connect(&beta, "beta-machine");
    let started = Instant::now();
    connect(&acme, "acme-machine");
    let attempts = flaky.wait_for(3, Duration::from_secs(8));
    assert_eq!(
        attempts.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [500, 500, 200]
    );
    eprintln!(
        "first attempt {:?}, third (delivered) {:?} after POST /v1/connections was sent",
        attempts[0].at - started,
        attempts[2].at - started
    );
    assert!(attempts[2].at - started < Duration::from_secs(6));
    let events: Vec<Value> = attempts.iter().map(|r| verify(r, &acme_secret)).collect();
    assert!(
        events.iter().all(|event| *event == events[0]),
        "the same event each time"
    );
    assert!(attempts[1].at - attempts[0].at >= Duration::from_millis(900));
    assert!(attempts[2].at - attempts[1].at >= Duration::from_millis(1900));
    assert_eq!(
        fields(events[0].clone()),
        json!({
            "type": "connection.status",
            "connection": "acme-machine",
            "integration": "svc",
            "status": "connected",
            "previous_status": null,
        })
    );
    assert!(
        down.received().len() >= 2,
        "beta's attempts ran alongside: {:?}",
        down.received().len()
    );

    // beta's event is tried again at the next sweep (with the same id), and delivered once
    // its receiver answers.
    let failed = down.wait_for(4, Duration::from_secs(10));
    assert!(failed[..3].iter().all(|r| r.answered == 500));
    let first = verify(&failed[0], &beta_secret);
    assert_eq!(first["connection"], "beta-machine");
    assert!(failed.iter().all(|r| verify(r, &beta_secret) == first));
    down.answer(200);
    eventually(Duration::from_secs(10), "beta's event is delivered", || {
        down.received().iter().any(|r| r.answered == 200)
    });
    eventually(
        Duration::from_secs(5),
        "beta's event is recorded as told",
        || {
            service_row(&store, 2, "beta-machine")
                .is_some_and(|(told, _)| told.as_deref() == Some("connected"))
        },
    );
    let delivered = down.received().len();
    std::thread::sleep(Duration::from_millis(4500));
    assert_eq!(
        down.received().len(),
        delivered,
        "not sent again once delivered"
    );
    assert!(
        flaky
            .received()
            .iter()
            .all(|r| verify(r, &acme_secret)["connection"] == "acme-machine")
    );

    // A change made outside the service (the CLI on the same store) is found at a sweep.
    let revoke = cli(
        &[
            "--store",
            &store,
            "--key-file",
            &key_file,
            "revoke",
            "t1:acme-machine",
        ],
        &[],
    );
    assert_eq!(revoke.code, 0, "{}", revoke.err);
    let received = flaky.wait_for(4, Duration::from_secs(6));
    assert_eq!(
        fields(verify(&received[3], &acme_secret)),
        json!({
            "type": "connection.status",
            "connection": "acme-machine",
            "integration": "svc",
            "status": "needs-reauthorization",
            "previous_status": "connected",
            "reason": "revoked",
        })
    );
}
