//! The host transport's policy, observed on real servers on 127.0.0.1.

use std::time::{Duration, Instant};

use connector_host::types::{HttpMethod, HttpRequest, TransportError};
use connector_host::{AllowList, HttpTransport, Limits};

use crate::common::{Reply, TestServer, get, runtime, session};

#[test]
fn disallowed_host_is_denied_without_a_connection() {
    let allowed = TestServer::start(|_| Reply::json(200, "{}"));
    let other = TestServer::start(|_| Reply::json(200, "{}"));
    let mut session = session(AllowList::from_urls([allowed.url("/token").as_str()]));

    let denied = session.transport_send(get(&other.url("/token")));
    assert_eq!(
        denied.unwrap_err(),
        TransportError::Denied("127.0.0.1".into())
    );
    assert!(
        other.requests().is_empty(),
        "nothing may reach a denied origin"
    );

    let denied_by_name =
        session.transport_send(get(&format!("http://localhost:{}/x", allowed.port)));
    assert_eq!(
        denied_by_name.unwrap_err(),
        TransportError::Denied("localhost".into())
    );

    let response = session.transport_send(get(&allowed.url("/token"))).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"{}");
    assert_eq!(allowed.requests().len(), 1);
}

#[test]
fn redirects_are_returned_not_followed() {
    let target = TestServer::start(|_| Reply::json(200, r#"{"stolen": true}"#));
    let location = target.url("/elsewhere");
    let redirecting = TestServer::start(move |_| Reply::new(302, &[("Location", &location)], ""));
    let allow = AllowList::from_urls([redirecting.url("/").as_str(), target.url("/").as_str()]);
    let mut session = session(allow);

    let response = session
        .transport_send(get(&redirecting.url("/token")))
        .unwrap();
    assert_eq!(response.status, 302);
    let location_header = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("location"))
        .map(|h| h.value.clone());
    assert_eq!(location_header, Some(target.url("/elsewhere")));
    assert!(
        target.requests().is_empty(),
        "the redirect target must not be contacted"
    );
    assert_eq!(redirecting.requests().len(), 1);
}

#[test]
fn oversized_body_is_a_typed_error() {
    let server = TestServer::start(|_| Reply::new(200, &[], vec![b'x'; 4096]));
    let limits = Limits {
        max_response_bytes: 1024,
        ..Limits::default()
    };
    let transport = HttpTransport::new(AllowList::from_urls([server.url("/").as_str()]), limits);
    let mut session = runtime().instantiate(transport).unwrap();
    let error = session
        .transport_send(get(&server.url("/big")))
        .unwrap_err();
    assert_eq!(error, TransportError::ResponseTooLarge(1024));
}

#[test]
fn slow_server_times_out() {
    let server = TestServer::start(|_| {
        let mut reply = Reply::json(200, "{}");
        reply.delay = Duration::from_secs(3);
        reply
    });
    let limits = Limits {
        total_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let transport = HttpTransport::new(AllowList::from_urls([server.url("/").as_str()]), limits);
    let mut session = runtime().instantiate(transport).unwrap();
    let started = Instant::now();
    let error = session
        .transport_send(get(&server.url("/slow")))
        .unwrap_err();
    assert_eq!(error, TransportError::Timeout);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn request_is_sent_exactly() {
    let server = TestServer::start(|_| Reply::json(201, r#"{"ok":true}"#));
    let mut session = session(AllowList::from_urls([server.url("/").as_str()]));
    let response = session
        .transport_send(HttpRequest {
            method: HttpMethod::Post,
            url: server.url("/token?api-version=2"),
            headers: vec![connector_host::types::KeyValue {
                name: "X-Custom".into(),
                value: "yes".into(),
            }],
            body: b"a=1&b=2".to_vec(),
        })
        .unwrap();
    assert_eq!(response.status, 201);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.target, "/token?api-version=2");
    assert_eq!(request.header("x-custom"), Some("yes"));
    assert_eq!(request.body, b"a=1&b=2");
}

/// Security review: ureq's default agent reads `ALL_PROXY`, `HTTPS_PROXY` and `HTTP_PROXY`,
/// which would send every byte (plain-HTTP loopback token requests included) to a host the
/// allow-list never checked. The environment is set for a worker process (the agent is
/// shared per process); the proxy it names must see nothing.
#[test]
fn proxy_variables_in_the_environment_are_ignored() {
    let target = TestServer::start(|_| Reply::json(200, r#"{"direct":true}"#));
    let proxy = TestServer::start(|_| Reply::json(502, r#"{"proxied":true}"#));
    let proxy_url = proxy.url("");
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "transport::proxy_worker",
            "--nocapture",
        ])
        .env("PROXY_WORKER_URL", target.url("/token"))
        .env("ALL_PROXY", &proxy_url)
        .env("HTTPS_PROXY", &proxy_url)
        .env("HTTP_PROXY", &proxy_url)
        .env("http_proxy", &proxy_url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("worker-status 200"), "{stdout}");
    assert_eq!(proxy.requests().len(), 0, "nothing went to the proxy");
    assert_eq!(target.requests().len(), 1);
}

/// The worker of `proxy_variables_in_the_environment_are_ignored`.
#[test]
#[ignore = "a worker process started by proxy_variables_in_the_environment_are_ignored"]
fn proxy_worker() {
    let url = std::env::var("PROXY_WORKER_URL").expect("started by the proxy test");
    let transport = HttpTransport::new(AllowList::from_urls([url.as_str()]), Limits::default());
    let response = transport.send(get(&url)).expect("a direct answer");
    println!("worker-status {}", response.status);
}

/// A proxy set explicitly is used (ureq tunnels through it with `CONNECT`); an invalid one
/// fails every request rather than connecting directly.
#[test]
fn an_explicit_proxy_is_used() {
    let target = TestServer::start(|_| Reply::json(200, "{}"));
    // This proxy refuses every tunnel: the request fails, and it saw where it was to go.
    let proxy = TestServer::start(|_| Reply::new(403, &[], ""));
    let url = target.url("/token");
    let limits = Limits {
        proxy: Some(proxy.url("")),
        ..Limits::default()
    };
    let transport = HttpTransport::new(AllowList::from_urls([url.as_str()]), limits);
    assert!(transport.send(get(&url)).is_err());
    let seen = proxy.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "CONNECT");
    assert_eq!(seen[0].target, format!("127.0.0.1:{}", target.port));
    assert!(target.requests().is_empty());

    let invalid = Limits {
        proxy: Some("not a proxy".into()),
        ..Limits::default()
    };
    let transport = HttpTransport::new(AllowList::from_urls([url.as_str()]), invalid);
    assert_eq!(
        transport.send(get(&url)).unwrap_err(),
        TransportError::InvalidRequest("the configured proxy is not a valid proxy URL".into())
    );
    assert!(target.requests().is_empty());
}
