//! The loopback redirect listener against other local processes: idle or trickling
//! connections must not starve the real callback, and a `localhost` redirect URI holds both
//! loopback addresses so that no other process can take the callback on `[::1]`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use connector_host::Runtime;
use connector_host::connect::{
    ConnectError, ConnectUi, FlowOptions, RedirectListener, authorize_in_browser,
};
use serde_json::json;

use crate::connect::basic_client_config;
use crate::server::{OidcServer, oidc_dir};

/// The value of `name` in the query of `url`.
fn query(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .unwrap()
}

/// The port of the redirect URI in an authorize URL.
fn redirect_port(authorize_url: &str) -> u16 {
    url::Url::parse(&query(authorize_url, "redirect_uri"))
        .unwrap()
        .port()
        .unwrap()
}

/// Another local process: before the browser arrives, it opens `idle` connections to the
/// listener, half of them silent and half stopping in the middle of a request head, and holds
/// them open. Then the scripted user agent brings the real callback.
struct IdleThenReal {
    idle: usize,
    sockets: Vec<TcpStream>,
    user_agent: Option<Child>,
    waiting_calls: usize,
    ignored: usize,
}

impl IdleThenReal {
    fn new(idle: usize) -> Self {
        Self {
            idle,
            sockets: vec![],
            user_agent: None,
            waiting_calls: 0,
            ignored: 0,
        }
    }
}

impl ConnectUi for IdleThenReal {
    fn authorize_url(&mut self, url: &str) {
        // The listener is bound: these connections complete in the kernel's accept queue,
        // ahead of the browser's.
        let address = format!("127.0.0.1:{}", redirect_port(url));
        for index in 0..self.idle {
            let mut socket = TcpStream::connect(&address).unwrap();
            if index % 2 == 1 {
                socket.write_all(b"GET /callback?state=").unwrap();
            }
            self.sockets.push(socket);
        }
        self.user_agent = Some(
            Command::new("node")
                .arg(oidc_dir().join("user-agent.mjs"))
                .arg(url)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the user agent"),
        );
    }
    fn waiting(&mut self, _: Duration, _: Duration) {
        self.waiting_calls += 1;
    }
    fn ignored(&mut self, _: &str) {
        self.ignored += 1;
    }
}

impl Drop for IdleThenReal {
    fn drop(&mut self) {
        if let Some(child) = &mut self.user_agent {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs a sign-in with `idle` connections opened ahead of the browser's, with a 20 s timeout.
fn sign_in_behind_idle_connections(idle: usize) {
    let server = OidcServer::start();
    let runtime = Runtime::load_built().unwrap();
    let mut config = basic_client_config(&runtime, &server);
    let listener = RedirectListener::bind("http://127.0.0.1:0/callback").unwrap();
    let mut ui = IdleThenReal::new(idle);
    let started = Instant::now();
    let result = authorize_in_browser(
        &runtime,
        &mut config,
        &listener,
        Duration::from_secs(20),
        &FlowOptions::default(),
        &mut ui,
    );
    let elapsed = started.elapsed();
    let tokens = result.unwrap_or_else(|error| panic!("after {elapsed:?}: {error}"));
    assert!(
        elapsed < Duration::from_secs(10),
        "the idle connections held up the callback for {elapsed:?}"
    );
    assert_eq!(ui.sockets.len(), idle);
    assert_eq!(ui.ignored, 0, "an idle connection is not a request");
    assert!(ui.waiting_calls >= 1, "the user sees the wait");
    assert!(
        ui.waiting_calls <= (elapsed.as_millis() / 100) as usize + 2,
        "about ten progress updates a second, not {} in {elapsed:?}",
        ui.waiting_calls
    );
    assert_eq!(
        server.introspect(&tokens.access_token)["active"],
        json!(true)
    );
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"authorization_code": 1}})
    );
    // The flow is over: the listener has let go of every connection it was still reading.
    for socket in &mut ui.sockets {
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        match socket.read(&mut [0; 64]) {
            Ok(0) => {}
            Ok(read) => panic!("an idle connection was answered ({read} bytes)"),
            Err(error) => assert_eq!(
                error.kind(),
                std::io::ErrorKind::ConnectionReset,
                "the connection is still open after the flow ended"
            ),
        }
    }
}

/// Twenty connections that send nothing (or half a request head) and stay open do not delay
/// the real callback: each would otherwise hold the listener for its 5 s head deadline.
#[test]
fn idle_connections_do_not_starve_the_callback() {
    sign_in_behind_idle_connections(20);
}

/// More idle connections than the listener reads at once: the oldest are closed to make room,
/// and the callback still gets through.
#[test]
fn idle_connections_beyond_the_reader_cap_do_not_starve_the_callback() {
    sign_in_behind_idle_connections(100);
}

/// One request on a fresh connection to `address`; the status of the answer (0 for none).
fn raw_request(address: &str, request: &str) -> u16 {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0)
}

/// The browser's walk through the server's sign-in pages, stopping at the redirect: the
/// callback URL, not delivered.
fn walk_to_callback(authorize_url: &str) -> String {
    let lib = url::Url::from_file_path(oidc_dir().join("lib.mjs")).unwrap();
    let script = format!(
        "import {{ CookieJar, walkToCallback }} from '{lib}';\n\
         console.log = console.error;\n\
         const start = process.argv[process.argv.length - 1];\n\
         const redirect = new URL(start).searchParams.get('redirect_uri');\n\
         const callback = await walkToCallback(new CookieJar(), start, redirect);\n\
         process.stdout.write(callback.href);\n"
    );
    let output = Command::new("node")
        .args(["--input-type=module", "-e", &script, "--", authorize_url])
        .stderr(Stdio::null())
        .output()
        .expect("run node");
    assert!(output.status.success(), "the sign-in walk failed");
    String::from_utf8(output.stdout).unwrap()
}

/// Requests another path on both loopback addresses, then delivers the real callback on
/// `[::1]`, as a browser that resolves `localhost` to `::1` first would.
struct CallbackOverIpv6 {
    statuses: Arc<Mutex<Vec<u16>>>,
    worker: Option<JoinHandle<()>>,
    ignored: usize,
}

impl ConnectUi for CallbackOverIpv6 {
    fn authorize_url(&mut self, url: &str) {
        let url = url.to_owned();
        let statuses = self.statuses.clone();
        self.worker = Some(std::thread::spawn(move || {
            let port = redirect_port(&url);
            let (v4, v6) = (format!("127.0.0.1:{port}"), format!("[::1]:{port}"));
            let other = "GET /other HTTP/1.1\r\nHost: localhost\r\n\r\n";
            for address in [&v4, &v6] {
                let status = raw_request(address, other);
                statuses.lock().unwrap().push(status);
            }
            let callback = url::Url::parse(&walk_to_callback(&url)).unwrap();
            assert_eq!(callback.host_str(), Some("localhost"));
            let request = format!(
                "GET {}?{} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n",
                callback.path(),
                callback.query().unwrap()
            );
            let status = raw_request(&v6, &request);
            statuses.lock().unwrap().push(status);
        }));
    }
    fn waiting(&mut self, _: Duration, _: Duration) {}
    fn ignored(&mut self, _: &str) {
        self.ignored += 1;
    }
}

/// Whether this machine can listen on `::1` at all.
fn has_ipv6_loopback() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// A `localhost` redirect URI is served on both 127.0.0.1 and ::1, on the same port, and the
/// callback is taken on whichever the browser uses.
#[test]
fn localhost_redirect_is_served_on_both_loopback_addresses() {
    if !has_ipv6_loopback() {
        eprintln!("skipped: no IPv6 loopback on this machine");
        return;
    }
    let server = OidcServer::start_with(&[("REDIRECT_URIS", "http://localhost:8765/callback")]);
    let runtime = Runtime::load_built().unwrap();
    let mut config = basic_client_config(&runtime, &server);
    let listener = RedirectListener::bind("http://localhost:0/callback").unwrap();
    let port = url::Url::parse(listener.redirect_uri())
        .unwrap()
        .port()
        .unwrap();
    assert_ne!(port, 0);
    for address in [format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
        assert!(
            TcpListener::bind(&address).is_err(),
            "{address} is free for another process to take"
        );
    }
    let statuses = Arc::new(Mutex::new(vec![]));
    let mut ui = CallbackOverIpv6 {
        statuses: statuses.clone(),
        worker: None,
        ignored: 0,
    };
    let tokens = authorize_in_browser(
        &runtime,
        &mut config,
        &listener,
        Duration::from_secs(60),
        &FlowOptions::default(),
        &mut ui,
    )
    .unwrap_or_else(|error| panic!("{error}"));
    ui.worker.take().unwrap().join().unwrap();
    assert_eq!(
        *statuses.lock().unwrap(),
        [404, 404, 200],
        "another path on 127.0.0.1, the same on ::1, then the callback on ::1"
    );
    assert_eq!(ui.ignored, 2);
    assert_eq!(
        config.redirect_uri,
        Some(format!("http://localhost:{port}/callback"))
    );
    assert_eq!(
        server.introspect(&tokens.access_token)["active"],
        json!(true)
    );
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"authorization_code": 1}})
    );
}

/// When another process already listens on `[::1]:PORT`, binding `localhost:PORT` fails and
/// names that address, rather than leaving the callback to the other process.
#[test]
fn localhost_redirect_refuses_a_port_taken_on_ipv6_loopback() {
    if !has_ipv6_loopback() {
        eprintln!("skipped: no IPv6 loopback on this machine");
        return;
    }
    let squatter = TcpListener::bind("[::1]:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    match RedirectListener::bind(&format!("http://localhost:{port}/callback")) {
        Err(ConnectError::Listen(address, error)) => {
            assert_eq!(address, format!("[::1]:{port}"));
            assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
        }
        Err(other) => panic!("expected a listen error, got {other}"),
        Ok(_) => panic!("bound localhost:{port} while another process holds [::1]:{port}"),
    }
    // 127.0.0.1 was let go again: an IP-literal redirect URI on that port still works.
    RedirectListener::bind(&format!("http://127.0.0.1:{port}/callback")).unwrap();
}
