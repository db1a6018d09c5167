//! The harness of the service tests: `connector-host serve` as a worker process of this test
//! binary (the CLI's `serve`, all that `connector-host`'s `main` does; the binary itself
//! belongs to another package, which cargo does not build for this package's tests), and
//! helpers to call its API, add tenants and connect through the scripted user agent.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use connector_host::compile_cache::CACHE_ENV;
use connector_host::seal::SealingKey;
use connector_host::types::{HttpMethod, HttpRequest, HttpResponse, KeyValue};
use connector_host::{AllowList, HttpTransport, Limits};
use serde_json::{Value, json};

use crate::connect::cli;
use crate::server::{OidcServer, oidc_dir};

/// The userinfo answer for the scripted user agent's `alice`.
pub const ALICE: &str = r#"{"sub":"alice","name":"Test User alice"}"#;

/// What the worker prints before the bound address.
pub const LISTENING: &str = "listening on ";

/// A running `connector-host serve` (a worker process), stopped on drop.
pub struct Service {
    child: Child,
    /// The service's URL, `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Service {
    /// Starts `connector-host --store STORE serve --listen 127.0.0.1:0 EXTRA…` and waits
    /// until it listens. Its public URL is its bound address (the default).
    pub fn start(store: &str, cache: &Path, extra: &[&str]) -> Self {
        let mut args = vec!["-v", "--store", store, "serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "service::serve_worker",
                "--nocapture",
            ])
            .env("SERVE_ARGS", serde_json::to_string(&args).unwrap())
            .env(CACHE_ENV, cache)
            // Where a PostgreSQL store's rescue files go: the test's directory, not $HOME.
            .env("XDG_DATA_HOME", cache.with_file_name("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the service worker");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let base = loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let _ = child.kill();
                panic!("the service ended before it listened");
            }
            if let Some(address) = line.trim_end().strip_prefix(LISTENING) {
                break address.to_owned();
            }
        };
        // Keep draining its stdout so that it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Self { child, base }
    }

    /// Sends `method path` with the tenant `key` (if any) and a JSON `body` (if any).
    pub fn send(
        &self,
        method: HttpMethod,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> HttpResponse {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut headers = vec![];
        if let Some(key) = key {
            headers.push(header("Authorization", &format!("Bearer {key}")));
        }
        if body.is_some() {
            headers.push(header("Content-Type", "application/json"));
        }
        loopback(&self.base)
            .send(HttpRequest {
                method,
                url,
                headers,
                body: body.unwrap_or("").as_bytes().to_vec(),
            })
            .expect("reach the service")
    }

    /// An API call: (status, JSON body).
    pub fn api(
        &self,
        method: HttpMethod,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let body = body.map(|body| body.to_string());
        let response = self.send(method, path, Some(key), body.as_deref());
        (response.status, json_of(&response))
    }
}

impl Service {
    /// Kills the service at once (SIGKILL): no cleanup of its own runs, as when a replica's
    /// machine fails.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill the service");
        self.child.wait().expect("reap the service");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The worker process of [`Service`] (run with `--ignored`): the CLI with `$SERVE_ARGS`,
/// on the process's real environment and streams.
#[test]
#[ignore = "a worker process started by the serve tests"]
pub fn serve_worker() {
    let args: Vec<String> =
        serde_json::from_str(&std::env::var("SERVE_ARGS").expect("started by a serve test"))
            .unwrap();
    let env = |name: &str| std::env::var(name).ok();
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let code = connector_host::cli::run(
        std::iter::once("connector-host".to_owned())
            .chain(args)
            .map(std::ffi::OsString::from),
        &mut connector_host::cli::Io {
            env: &env,
            out: &mut out,
            err: &mut err,
            err_is_terminal: false,
            out_is_terminal: false,
            log: std::sync::Arc::new(std::sync::Mutex::new(std::io::stderr())),
        },
    );
    panic!("the service ended (exit {code})");
}

pub fn header(name: &str, value: &str) -> KeyValue {
    KeyValue {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

/// A transport to `base`'s origin only.
pub fn loopback(base: &str) -> HttpTransport {
    HttpTransport::new(AllowList::from_urls([base]), Limits::default())
}

pub fn json_of(response: &HttpResponse) -> Value {
    serde_json::from_slice(&response.body).unwrap_or_else(|_| {
        panic!(
            "HTTP {} is not JSON: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        )
    })
}

pub fn header_of<'a>(response: &'a HttpResponse, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|kv| kv.name.eq_ignore_ascii_case(name))
        .map(|kv| kv.value.as_str())
}

/// The security headers of the end user's pages.
pub fn assert_page_headers(response: &HttpResponse) {
    assert_eq!(header_of(response, "referrer-policy"), Some("no-referrer"));
    assert_eq!(header_of(response, "x-frame-options"), Some("DENY"));
    assert_eq!(header_of(response, "cache-control"), Some("no-store"));
    let csp = header_of(response, "content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
}

/// `tenants add NAME` on `store`: the key, the last line of stdout.
pub fn add_tenant(store: &str, name: &str) -> String {
    let added = cli(&["--store", store, "tenants", "add", name], &[]);
    assert_eq!(added.code, 0, "{}", added.err);
    let key = added.out.lines().last().unwrap().to_owned();
    assert!(key.starts_with("ck_"), "{key}");
    key
}

/// A new sealing key in `dir/name` (owner-only): (its path, the key).
pub fn new_key(dir: &Path, name: &str) -> (String, SealingKey) {
    let path = dir.join(name);
    let key = SealingKey::generate();
    key.write_new_file(&path).unwrap();
    (path.to_str().unwrap().to_owned(), key)
}

/// Starts `serve` on `store`, sealed with a new key in `dir/key`, its compiled component
/// cached in `dir/compiled`, with `extra` arguments: the service, the key file's path and
/// the key.
pub fn start_sealed(dir: &Path, store: &str, extra: &[&str]) -> (Service, String, SealingKey) {
    let (key_file, key) = new_key(dir, "key");
    let mut args = vec!["--key-file", key_file.as_str()];
    args.extend_from_slice(extra);
    let service = Service::start(store, &dir.join("compiled"), &args);
    (service, key_file, key)
}

/// The lines of `pem`'s base64 body: none may ever be answered or stored in clear.
pub fn body_lines(pem: &str) -> Vec<&str> {
    pem.lines()
        .filter(|line| !line.starts_with("-----") && line.len() >= 16)
        .collect()
}

/// Neither the store file nor its write-ahead log holds `pem` (or any PEM) in clear.
pub fn assert_not_in_clear(store: &str, pem: &str) {
    let mut raw = std::fs::read(store).unwrap();
    raw.extend(std::fs::read(format!("{store}-wal")).unwrap_or_default());
    assert!(
        !contains(&raw, "PRIVATE KEY"),
        "a PEM in clear in the store"
    );
    for line in body_lines(pem) {
        assert!(!contains(&raw, line), "the key is in the store in clear");
    }
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// An authorization server whose clients accept `/oauth/callback` on any loopback port.
pub fn server_with(env: &[(&str, &str)]) -> OidcServer {
    let mut all = vec![("REDIRECT_URIS", "http://127.0.0.1:8765/oauth/callback")];
    all.extend_from_slice(env);
    OidcServer::start_with(&all)
}

/// `GET url` at the authorization server with `token` as bearer: (status, body).
pub fn userinfo(server: &OidcServer, token: &str) -> (u16, String) {
    let response = loopback(&server.issuer)
        .send(HttpRequest {
            method: HttpMethod::Get,
            url: format!("{}/me", server.issuer),
            headers: vec![header("Authorization", &format!("Bearer {token}"))],
            body: vec![],
        })
        .unwrap();
    (response.status, String::from_utf8(response.body).unwrap())
}

/// Creates the client-credentials integration `svc` by issuer (service-client, scope
/// `api:read`).
pub fn create_service_integration(service: &Service, server: &OidcServer, key: &str) {
    let (status, body) = service.api(
        HttpMethod::Post,
        "/v1/integrations",
        key,
        Some(json!({
            "id": "svc",
            "issuer": server.issuer,
            "grant": "client-credentials",
            "client_id": "service-client",
            "client_secret": "service-secret",
            "scopes": ["api:read"],
        })),
    );
    assert_eq!(status, 201, "{body}");
}

/// The one access token every answer of a `/token` storm carries (each must be 200).
pub fn the_one_token<'a>(answers: &'a [(u16, Value)], what: &str) -> &'a str {
    let distinct: std::collections::BTreeSet<&str> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{what}: {body}");
            body["access_token"].as_str().unwrap()
        })
        .collect();
    assert_eq!(distinct.len(), 1, "{what}: one token for every caller");
    distinct.into_iter().next().unwrap()
}

/// Creates the code integration `oidc` by issuer (basic-client).
pub fn create_code_integration(service: &Service, server: &OidcServer, key: &str) -> Value {
    let (status, body) = service.api(
        HttpMethod::Post,
        "/v1/integrations",
        key,
        Some(json!({
            "id": "oidc",
            "issuer": server.issuer,
            "client_id": "basic-client",
            "client_secret": "basic-secret",
            "scopes": ["openid", "profile"],
        })),
    );
    assert_eq!(status, 201, "{body}");
    body
}

/// A connect session for `connection` (with `return_to`, if any), followed by the scripted
/// user agent (with `options`): returns what the user agent said (its callback's status).
pub fn connect_in_browser(
    service: &Service,
    key: &str,
    connection: &str,
    return_to: Option<&str>,
    options: &str,
) -> String {
    let mut request = json!({"integration": "oidc", "connection": connection});
    if let Some(return_to) = return_to {
        request["return_to"] = return_to.into();
    }
    let (status, session) =
        service.api(HttpMethod::Post, "/v1/connect-sessions", key, Some(request));
    assert_eq!(status, 201, "{session}");
    let url = session["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("{}/connect/", service.base)),
        "{url}"
    );
    assert!(session["expires_at"].as_str().unwrap().ends_with('Z'));
    follow_connect_url(service, &url, options)
}

/// Opens a connect URL (`<base>/connect/TOKEN`, or its path) as the end user's browser
/// would: the service's redirect to the provider, then the scripted user agent (with
/// `options`) signs in and delivers the callback. Returns what the user agent said.
pub fn follow_connect_url(service: &Service, url: &str, options: &str) -> String {
    let begin = service.send(HttpMethod::Get, url, None, None);
    assert_eq!(
        begin.status,
        302,
        "{}",
        String::from_utf8_lossy(&begin.body)
    );
    assert_page_headers(&begin);
    let authorize = header_of(&begin, "location").unwrap().to_owned();
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} '{authorize}'",
            crate::server::user_agent(options)
        ))
        .current_dir(oidc_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "the user agent failed: {said}");
    said
}
