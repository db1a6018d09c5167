//! Shared test parts: the runtime (compiled once), a scripted random source, and a small
//! HTTP/1.1 server on 127.0.0.1 that records every request and answers from a handler.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;

use connector_host::types::{Client, ConnectionConfig, KeyValue, ProviderProfile};
use connector_host::{AllowList, HttpTransport, Limits, Runtime, Session};

/// The component, compiled and pre-instantiated once per test run.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::load_built().expect("load the built component"))
}

/// A session whose transport may reach only `allow`.
pub fn session(allow: AllowList) -> Session {
    runtime()
        .instantiate(HttpTransport::new(allow, Limits::default()))
        .expect("instantiate")
}

/// A `wasi:random/random` source that yields the given bytes in order (little-endian for
/// `get-random-u64`), then zeros.
pub struct ScriptedRandom(VecDeque<u8>);

impl ScriptedRandom {
    pub fn new(bytes: impl IntoIterator<Item = u8>) -> Self {
        Self(bytes.into_iter().collect())
    }
}

impl rand_core::TryRng for ScriptedRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Infallible> {
        for byte in dest {
            *byte = self.0.pop_front().unwrap_or(0);
        }
        Ok(())
    }
}

pub fn kv(name: &str, value: &str) -> KeyValue {
    KeyValue {
        name: name.into(),
        value: value.into(),
    }
}

/// A profile with defaults for everything but the two endpoints.
pub fn profile(authorize_url: &str, token_url: &str) -> ProviderProfile {
    ProviderProfile {
        authorize_url: Some(authorize_url.into()),
        ..connector_host::profile_with_defaults("test", token_url)
    }
}

/// A configuration for `profile` with client id `my client` and scopes `openid profile`.
pub fn config(profile: ProviderProfile) -> ConnectionConfig {
    ConnectionConfig {
        profile,
        client: Client {
            client_id: "my client".into(),
            client_secret: None,
        },
        redirect_uri: Some("http://127.0.0.1:8765/callback".into()),
        scopes: vec!["openid".into(), "profile".into()],
        authorize_params: vec![],
        token_requests: connector_host::no_token_extras(),
        variables: vec![],
        offline_access: false,
    }
}

/// One request as the test server received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    /// Path and query, as sent on the request line.
    pub target: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a handler answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Sleep this long before answering (for timeout tests).
    pub delay: std::time::Duration,
}

impl Reply {
    pub fn new(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.into(),
            delay: std::time::Duration::ZERO,
        }
    }

    pub fn json(status: u16, body: &str) -> Self {
        Self::new(status, &[("Content-Type", "application/json")], body)
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// An HTTP/1.1 server on 127.0.0.1 (port 0): one request per connection, recorded, then
/// answered by the handler. It runs until the test process ends.
pub struct TestServer {
    pub port: u16,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl TestServer {
    pub fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let recorded = Arc::clone(&requests);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let handler = Arc::clone(&handler);
                let recorded = Arc::clone(&recorded);
                thread::spawn(move || serve(stream, &*handler, &recorded));
            }
        });
        Self { port, requests }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, handler: &Handler, recorded: &Mutex<Vec<Recorded>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.trim_end().splitn(3, ' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = header.trim_end().split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let request = Recorded {
        method,
        target,
        headers,
        body,
    };
    recorded.lock().unwrap().push(request.clone());
    let reply = handler(&request);
    thread::sleep(reply.delay);
    let mut out = stream;
    let mut head = format!("HTTP/1.1 {} X\r\n", reply.status);
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        reply.body.len()
    ));
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(&reply.body);
}
