//! Shared test parts: the runtime (compiled once), a scripted random source, a small
//! HTTP/1.1 server on 127.0.0.1 that records every request and answers from a handler, and
//! scratch directories that clean up after themselves.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use connector_host::types::{
    Client, ConnectionConfig, Error, HttpMethod, HttpRequest, KeyValue, ProviderProfile,
};
use connector_host::{AllowList, CallError, HttpTransport, Limits, Runtime, Session};

/// A fresh directory path under the system's temporary directory, unique to `label` and
/// this test process (nothing is there yet); the directory and whatever a test put there are
/// removed when this is dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(label: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("connector-test-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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

/// A session whose transport may reach only `server` and whose `wasi:random` yields
/// `random` in order, then zeros (so that `state`, PKCE verifiers and `jti`s are known).
pub fn scripted_session(server: &TestServer, random: impl IntoIterator<Item = u8>) -> Session {
    let transport = HttpTransport::new(
        AllowList::from_urls([server.url("/").as_str()]),
        Limits::default(),
    );
    runtime()
        .instantiate_with_random(transport, ScriptedRandom::new(random))
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
            auth_method: None,
        },
        redirect_uri: Some("http://127.0.0.1:8765/callback".into()),
        scopes: vec!["openid".into(), "profile".into()],
        authorize_params: vec![],
        token_requests: connector_host::no_token_extras(),
        variables: vec![],
        offline_access: false,
        resources: vec![],
        dpop: false,
    }
}

/// A GET of `url` with no headers.
pub fn get(url: &str) -> HttpRequest {
    HttpRequest {
        method: HttpMethod::Get,
        url: url.into(),
        headers: vec![],
        body: vec![],
    }
}

/// The component's typed error from `result`; any other outcome fails the test.
pub fn connector_error<T>(result: Result<T, CallError>) -> Error {
    match result {
        Err(CallError::Connector(error)) => error,
        Err(other) => panic!("not the component's typed answer: {other}"),
        Ok(_) => panic!("expected an error"),
    }
}

pub use connector_host::loopback::{LoopbackServer as TestServer, Recorded, Reply};
