//! Starting the local authorization server and talking to it.

use std::path::{Path, PathBuf};

use connector_host::local_server::{self, LocalServer};
use connector_host::types::{HttpMethod, HttpRequest, KeyValue};
use connector_host::{AllowList, HttpTransport, Limits};

pub fn oidc_dir() -> PathBuf {
    local_server::server_dir()
}

/// A running `server.mjs` (see `connector_host::local_server`), with test helpers.
pub struct OidcServer {
    server: LocalServer,
    pub issuer: String,
}

impl OidcServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// With server settings, for example `ACCESS_TOKEN_TTL`.
    pub fn start_with(env: &[(&str, &str)]) -> Self {
        let server = LocalServer::start(env).expect("start the local authorization server");
        Self {
            issuer: server.issuer().to_owned(),
            server,
        }
    }

    /// A profile file for this server, written into `dir`.
    pub fn profile_file(&self, dir: &Path, extra: &str) -> PathBuf {
        let path = dir.join("profile.json");
        std::fs::write(&path, self.server.profile_json(extra)).unwrap();
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

    /// A test-observation endpoint's JSON answer, for example `/__assertions`.
    pub fn get(&self, path: &str) -> serde_json::Value {
        self.send(HttpMethod::Get, path, vec![], "")
    }

    /// Delays every `refresh_token` grant by `ms` (0: no delay); a delayed request whose
    /// client went away meanwhile is then handed on (`"process"`: the refresh token is
    /// rotated, and nobody gets the new one) or discarded (`"drop"`). Answers the setting
    /// and the counts (see `GET /__token-delay` in the server's README).
    pub fn delay_refreshes(&self, ms: u64, abandoned: &str) -> serde_json::Value {
        self.send(
            HttpMethod::Post,
            &format!("/__token-delay?ms={ms}&abandoned={abandoned}"),
            vec![],
            "",
        )
    }

    /// The delayed refreshes' counts: `delayed`, `dropped`, `processed_after_close`.
    pub fn delayed_refreshes(&self) -> serde_json::Value {
        self.get("/__token-delay")
    }

    /// A test knob's JSON answer to a POST, for example `/__dpop-nonce?required=1`.
    pub fn post(&self, path: &str) -> serde_json::Value {
        self.send(HttpMethod::Post, path, vec![], "")
    }

    /// Zeroes the server's request counters.
    pub fn reset_stats(&self) {
        self.send(HttpMethod::Post, "/__stats/reset", vec![], "");
    }

    /// How many token requests the server has received, by grant type.
    pub fn token_requests(&self) -> serde_json::Value {
        self.send(HttpMethod::Get, "/__stats", vec![], "")
    }

    /// Every credential that passed through the server's token endpoint.
    pub fn credentials(&self) -> Vec<String> {
        serde_json::from_value(self.send(HttpMethod::Get, "/__credentials", vec![], ""))
            .expect("a list of strings")
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

/// The scripted user agent as a `--browser` command, with its options.
pub fn user_agent(options: &str) -> String {
    LocalServer::user_agent_command(options)
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
