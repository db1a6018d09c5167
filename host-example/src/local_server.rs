//! The local authorization server used by the demo and the end-to-end tests: the
//! independently written `oidc-provider` (npm, pinned 8.8.1) configured in
//! `tests/oidc-server/`, started on 127.0.0.1 with an ephemeral port.
//!
//! Needs Node.js 20+ and npm; the npm packages are installed on first use (`npm ci`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use anyhow::{Context as _, anyhow, bail};

/// The folder holding `server.mjs`, `user-agent.mjs` and the npm lock file.
pub fn server_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("oidc-server")
}

/// The packages `package.json` depends on that `node_modules` lacks.
fn missing_packages() -> anyhow::Result<Vec<String>> {
    let manifest = server_dir().join("package.json");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let manifest: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", manifest.display()))?;
    let dependencies = manifest["dependencies"]
        .as_object()
        .map(|dependencies| dependencies.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    let modules = server_dir().join("node_modules");
    Ok(dependencies
        .into_iter()
        .filter(|name| !modules.join(name).join("package.json").exists())
        .collect())
}

/// Runs `npm ci` in the server folder unless every package its `package.json` depends on
/// is installed (a checkout whose `node_modules` predates a new dependency installs again).
pub fn ensure_installed() -> anyhow::Result<()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if missing_packages()?.is_empty() {
        return Ok(());
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(server_dir())
        .status()
        .context("running npm (Node.js 20 and npm are needed for the local server)")?;
    if !status.success() {
        bail!("npm ci in {} failed", server_dir().display());
    }
    Ok(())
}

/// A running local authorization server, stopped on drop.
pub struct LocalServer {
    child: Child,
    issuer: String,
}

impl LocalServer {
    /// Starts `server.mjs` with `env` added (for example `ACCESS_TOKEN_TTL`).
    pub fn start(env: &[(&str, &str)]) -> anyhow::Result<Self> {
        ensure_installed()?;
        let mut command = Command::new("node");
        command
            .arg("server.mjs")
            .current_dir(server_dir())
            .env("PORT", "0")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().context("starting node server.mjs")?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(issuer) = line.trim().strip_prefix("listening ") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the local server did not start (first line: {line:?})");
        };
        Ok(Self {
            issuer: issuer.to_owned(),
            child,
        })
    }

    /// The issuer, `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// A provider profile (JSON) for this server; `extra` is spliced in as more fields, for
    /// example `, "client-auth": "none"`.
    pub fn profile_json(&self, extra: &str) -> String {
        let issuer = &self.issuer;
        format!(
            r#"{{"id": "local-oidc", "issuer": "{issuer}", "authorize-url": "{issuer}/auth",
  "token-url": "{issuer}/token", "default-scopes": ["openid", "profile"],
  "requires-iss": true{extra}}}"#
        )
    }

    /// The scripted user agent as a `connect --browser` command, with its options.
    pub fn user_agent_command(options: &str) -> String {
        format!(
            "node {} {options}",
            server_dir().join("user-agent.mjs").display()
        )
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
