//! Starting the local authorization server and talking to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use connector_host::types::{HttpMethod, HttpRequest, KeyValue};
use connector_host::{AllowList, HttpTransport, Limits};

pub fn oidc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-server")
}

/// Installs the server's npm packages once per test run if they are missing (`.ci/run` has
/// already done it in CI; this makes `cargo test` work on its own too).
fn ensure_installed() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    INSTALLED.get_or_init(|| {
        let _guard = LOCK.lock().unwrap();
        if oidc_dir().join("node_modules/oidc-provider").exists() {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(oidc_dir())
            .status()
            .expect("run npm (Node.js 20 and npm are needed for the end-to-end tests)");
        assert!(status.success(), "npm ci in tests/oidc-server failed");
    });
}

/// A running `server.mjs`, killed on drop.
pub struct OidcServer {
    child: Child,
    pub issuer: String,
}

impl OidcServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(env: &[(&str, &str)]) -> Self {
        ensure_installed();
        let mut command = Command::new("node");
        command
            .arg("server.mjs")
            .current_dir(oidc_dir())
            .env("PORT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start node server.mjs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read the server's first line");
        let issuer = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected first line from server.mjs: {line:?}"))
            .to_owned();
        Self { child, issuer }
    }

    /// A profile file for this server, written into `dir`.
    pub fn profile_file(&self, dir: &Path, extra: &str) -> PathBuf {
        let path = dir.join("profile.json");
        let issuer = &self.issuer;
        std::fs::write(
            &path,
            format!(
                r#"{{"id": "local-oidc", "issuer": "{issuer}", "authorize-url": "{issuer}/auth",
                    "token-url": "{issuer}/token", "default-scopes": ["openid", "profile"],
                    "requires-iss": true{extra}}}"#
            ),
        )
        .unwrap();
        path
    }

    fn send(
        &self,
        method: HttpMethod,
        path: &str,
        headers: Vec<KeyValue>,
        body: &str,
    ) -> serde_json::Value {
        let transport = HttpTransport::new(
            AllowList::from_urls([self.issuer.as_str()]),
            Limits::default(),
        );
        let response = transport
            .send(HttpRequest {
                method,
                url: format!("{}{path}", self.issuer),
                headers,
                body: body.as_bytes().to_vec(),
            })
            .expect("reach the test server");
        serde_json::from_slice(&response.body).expect("a JSON answer")
    }

    /// How many token requests the server has received, by grant type.
    pub fn token_requests(&self) -> serde_json::Value {
        self.send(HttpMethod::Get, "/__stats", vec![], "")
    }

    /// RFC 7662 introspection of `token`, authenticated as `basic-client`.
    pub fn introspect(&self, token: &str) -> serde_json::Value {
        let body = format!(
            "token={}",
            url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
        );
        let headers = vec![
            KeyValue {
                name: "Content-Type".into(),
                value: "application/x-www-form-urlencoded".into(),
            },
            KeyValue {
                name: "Authorization".into(),
                // base64("basic-client:basic-secret")
                value: "Basic YmFzaWMtY2xpZW50OmJhc2ljLXNlY3JldA==".into(),
            },
        ];
        self.send(HttpMethod::Post, "/token/introspection", headers, &body)
    }
}

impl Drop for OidcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The scripted user agent as a `--browser` command, with its options.
pub fn user_agent(options: &str) -> String {
    format!(
        "node {} {options}",
        oidc_dir().join("user-agent.mjs").display()
    )
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "oauth-connector-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
