//! `connector-host connect` against the real authorization server, for each client
//! authentication method, plus denied consent and forged callbacks.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connector_host::cli::{Io, run};
use connector_host::connect::{
    ConnectError, ConnectUi, FlowOptions, RedirectListener, authorize_in_browser,
};
use connector_host::store::{SecretSource, Store};
use connector_host::types::{Client, ConnectionConfig, Error, ErrorCode, OauthError, TokenSet};
use connector_host::{CallError, Runtime};
use serde_json::json;

use crate::server::{OidcServer, TempDir, oidc_dir, user_agent};

pub struct Outcome {
    pub code: i32,
    pub out: String,
    pub err: String,
    /// The diagnostic log lines (`-v`).
    pub log: String,
}

/// Runs the CLI in-process with `env` as its whole environment.
pub fn cli(args: &[&str], env: &[(&str, &str)]) -> Outcome {
    cli_with_terminal(args, env, false)
}

/// [`cli`], with stdout taken for a terminal when `out_is_terminal`.
pub fn cli_with_terminal(args: &[&str], env: &[(&str, &str)], out_is_terminal: bool) -> Outcome {
    let mut out = Vec::new();
    let outcome = cli_into(args, env, &mut out, out_is_terminal);
    Outcome {
        out: String::from_utf8(out).unwrap(),
        ..outcome
    }
}

/// Runs the CLI in-process with an empty environment and a standard output whose reader is
/// gone (every write fails with `BrokenPipe`): its exit code and standard error.
pub fn cli_without_stdout(args: &[&str]) -> (i32, String) {
    struct Closed;
    impl std::io::Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }
    let outcome = cli_into(args, &[], &mut Closed, false);
    (outcome.code, outcome.err)
}

/// Runs the CLI in-process with `env` as its whole environment and `out` as its standard
/// output; the outcome's `out` is left empty.
fn cli_into(
    args: &[&str],
    env: &[(&str, &str)],
    out: &mut dyn std::io::Write,
    out_is_terminal: bool,
) -> Outcome {
    let env_lookup = |name: &str| {
        env.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned())
    };
    let mut err = Vec::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let argv = std::iter::once("connector-host")
        .chain(args.iter().copied())
        .map(OsString::from);
    let code = run(
        argv,
        &mut Io {
            env: &env_lookup,
            out,
            err: &mut err,
            err_is_terminal: false,
            out_is_terminal,
            log: log.clone(),
        },
    );
    Outcome {
        code,
        out: String::new(),
        err: String::from_utf8(err).unwrap(),
        log: String::from_utf8(log.lock().unwrap().clone()).unwrap(),
    }
}

/// `connect NAME` for `client_id`, with the secret (if any) in `CLIENT_SECRET`.
fn connect(server: &OidcServer, dir: &Path, client_id: &str, secret: Option<&str>) -> Outcome {
    let profile = server.profile_file(dir, "");
    let store = dir.join("store.db");
    let browser = user_agent("");
    let mut args = vec![
        "--store",
        store.to_str().unwrap(),
        "connect",
        "conn",
        "--profile",
        profile.to_str().unwrap(),
        "--client-id",
        client_id,
        "--redirect-uri",
        "http://127.0.0.1:0/callback",
        "--browser",
        &browser,
        "--timeout",
        "60",
    ];
    let env: Vec<(&str, &str)> = secret.map(|s| ("CLIENT_SECRET", s)).into_iter().collect();
    if secret.is_some() {
        args.extend(["--client-secret-env", "CLIENT_SECRET"]);
    }
    cli(&args, &env)
}

/// Checks a completed `connect`: the stored connection, its tokens accepted by the server,
/// exactly one token request, and the outputs of `show`, `list` and `token`.
fn assert_connected(
    server: &OidcServer,
    dir: &Path,
    outcome: &Outcome,
    client_id: &str,
    secret: SecretSource,
) {
    assert_eq!(outcome.code, 0, "connect failed: {}", outcome.err);
    let store_path = dir.join("store.db");
    let stored = Store::open(&store_path).unwrap().get("conn").unwrap();
    assert_eq!(stored.config.client.client_id, client_id);
    assert_eq!(
        stored.config.client.client_secret, None,
        "the secret lives in `secret` only"
    );
    assert_eq!(stored.secret, secret);
    let tokens = &stored.tokens;
    assert_eq!(tokens.token_type, "bearer");
    assert_eq!(tokens.scopes, ["openid", "profile"]);
    assert_eq!(
        tokens.expires_at.map(|at| at - tokens.obtained_at),
        Some(3600)
    );
    assert!(tokens.refresh_token.is_some());
    assert!(tokens.id_token.is_some());
    assert_eq!(
        stored
            .config
            .redirect_uri
            .as_deref()
            .map(|uri| uri.starts_with("http://127.0.0.1:")),
        Some(true)
    );

    let introspection = server.introspect(&tokens.access_token);
    assert_eq!(introspection["active"], json!(true));
    assert_eq!(introspection["client_id"], json!(client_id));
    assert_eq!(introspection["scope"], json!("openid profile"));
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"authorization_code": 1}})
    );

    // `connect` prints the stored connection; `show` prints the same, never a secret.
    let store_arg = store_path.to_str().unwrap();
    let show = cli(&["--store", store_arg, "show", "conn"], &[]);
    assert_eq!(show.code, 0);
    // The same text, but for the relative "(in N s)" of the expiry, which can tick between.
    let without_expiry = |text: &str| -> String {
        text.lines()
            .filter(|line| !line.starts_with("expires:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(without_expiry(&show.out), without_expiry(&outcome.out));
    assert!(show.out.contains("\nexpires:        "));
    // Who signed in: the ID token's issuer and subject (the user agent signs in as `alice`).
    let issuer = &server.issuer;
    assert!(
        show.out.starts_with(&format!(
            "name:           conn\n\
             provider:       local-oidc\n\
             issuer:         {issuer}\n\
             subject:        alice\n\
             token url:      {issuer}/token\n"
        )),
        "{}",
        show.out
    );
    assert!(show.out.contains(&format!("client id:      {client_id}\n")));
    assert!(show.out.contains("scopes:         openid profile\n"));
    assert!(show.out.contains("refresh token:  yes\n"));
    assert!(show.out.ends_with("token writes:   1\n"), "{}", show.out);
    for secret in [
        tokens.access_token.as_str(),
        tokens.refresh_token.as_deref().unwrap(),
        tokens.id_token.as_deref().unwrap(),
    ] {
        assert!(
            !show.out.contains(secret)
                && !outcome.out.contains(secret)
                && !outcome.err.contains(secret)
        );
    }
    // `show --json`: the same, in stable fields; the ID token itself never.
    let json = cli(&["--store", store_arg, "show", "conn", "--json"], &[]);
    assert_eq!(json.code, 0, "{}", json.err);
    let view: serde_json::Value = serde_json::from_str(&json.out).unwrap();
    assert_eq!(
        [
            "issuer",
            "subject",
            "subject_issuer",
            "id_token",
            "requested_scopes",
            "effective_requested_scopes",
            "scopes",
        ]
        .map(|field| (field, view[field].clone())),
        [
            ("issuer", json!(issuer)),
            ("subject", json!("alice")),
            ("subject_issuer", json!(issuer)),
            ("id_token", json!(true)),
            ("requested_scopes", json!([])),
            ("effective_requested_scopes", json!(["openid", "profile"])),
            ("scopes", json!(["openid", "profile"])),
        ]
    );
    assert!(!json.out.contains(tokens.id_token.as_deref().unwrap()));
    let list = cli(&["--store", store_arg, "list"], &[]);
    assert_eq!(list.code, 0);
    assert!(
        list.out
            .starts_with("NAME\tPROVIDER\tEXPIRES OR STATE\tSCOPES\nconn\tlocal-oidc\t"),
        "{}",
        list.out
    );
    let token = cli(&["--store", store_arg, "token", "conn"], &[]);
    assert_eq!(token.code, 0);
    assert_eq!(token.out, format!("{}\n", tokens.access_token));
}

#[cfg(unix)]
fn assert_owner_only(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the store holds secrets");
}

#[test]
fn confidential_client_secret_basic() {
    let (server, dir) = (OidcServer::start(), TempDir::new("basic"));
    let outcome = connect(&server, &dir.0, "basic-client", Some("basic-secret"));
    assert_connected(
        &server,
        &dir.0,
        &outcome,
        "basic-client",
        SecretSource::Stored("basic-secret".into()),
    );
    #[cfg(unix)]
    assert_owner_only(&dir.0.join("store.db"));
}

#[test]
fn confidential_client_secret_post() {
    let (server, dir) = (OidcServer::start(), TempDir::new("post"));
    let profile = server.profile_file(&dir.0, r#", "client-auth": "client-secret-post""#);
    let store = dir.0.join("store.db");
    let browser = user_agent("");
    let outcome = cli(
        &[
            "--store",
            store.to_str().unwrap(),
            "connect",
            "conn",
            "--profile",
            profile.to_str().unwrap(),
            "--client-id",
            "post-client",
            "--client-secret-env",
            "POST_SECRET",
            "--secret-ref",
            "--redirect-uri",
            "http://127.0.0.1:0/callback",
            "--browser",
            &browser,
            "--timeout",
            "60",
        ],
        &[("POST_SECRET", "post-secret")],
    );
    assert_connected(
        &server,
        &dir.0,
        &outcome,
        "post-client",
        SecretSource::Environment("POST_SECRET".into()),
    );
}

#[test]
fn secret_with_reserved_characters_over_basic() {
    let (server, dir) = (OidcServer::start(), TempDir::new("special"));
    let secret = "p+a:s&s%w/o=r d";
    let outcome = connect(&server, &dir.0, "special-client", Some(secret));
    assert_connected(
        &server,
        &dir.0,
        &outcome,
        "special-client",
        SecretSource::Stored(secret.into()),
    );
}

#[test]
fn public_client_with_pkce() {
    let (server, dir) = (OidcServer::start(), TempDir::new("public"));
    let profile = server.profile_file(&dir.0, r#", "client-auth": "none""#);
    let store = dir.0.join("store.db");
    let browser = user_agent("");
    let outcome = cli(
        &[
            "--store",
            store.to_str().unwrap(),
            "connect",
            "conn",
            "--profile",
            profile.to_str().unwrap(),
            "--client-id",
            "public-client",
            "--redirect-uri",
            "http://127.0.0.1:0/callback",
            "--browser",
            &browser,
            "--timeout",
            "60",
        ],
        &[],
    );
    assert_connected(
        &server,
        &dir.0,
        &outcome,
        "public-client",
        SecretSource::None,
    );
}

/// The server drops `offline_access` from an authorization request without `prompt=consent`
/// (OpenID Connect Core §11): `show` gives the granted scopes and, beside them, the requested
/// ones.
#[test]
fn show_names_the_requested_scopes_when_fewer_were_granted() {
    let (server, dir) = (OidcServer::start(), TempDir::new("fewer-scopes"));
    let profile = server.profile_file(&dir.0, "");
    let store = dir.0.join("store.db");
    let store = store.to_str().unwrap();
    let browser = user_agent("");
    let mut args = vec![
        "--store",
        store,
        "connect",
        "conn",
        "--profile",
        profile.to_str().unwrap(),
        "--client-id",
        "basic-client",
        "--client-secret-env",
        "CLIENT_SECRET",
        "--redirect-uri",
        "http://127.0.0.1:0/callback",
        "--browser",
        &browser,
        "--timeout",
        "60",
    ];
    for scope in ["openid", "profile", "offline_access"] {
        args.extend(["--scope", scope]);
    }
    let outcome = cli(&args, &[("CLIENT_SECRET", "basic-secret")]);
    assert_eq!(outcome.code, 0, "{}", outcome.err);
    let show = cli(&["--store", store, "show", "conn"], &[]);
    assert_eq!(show.code, 0, "{}", show.err);
    assert!(
        show.out.contains(
            "\nscopes:         openid profile (requested: openid profile offline_access)\n"
        ),
        "{}",
        show.out
    );
    let json = cli(&["--store", store, "show", "conn", "--json"], &[]);
    let view: serde_json::Value = serde_json::from_str(&json.out).unwrap();
    let requested = json!(["openid", "profile", "offline_access"]);
    assert_eq!(
        (
            &view["requested_scopes"],
            &view["effective_requested_scopes"],
            &view["scopes"]
        ),
        (&requested, &requested, &json!(["openid", "profile"]))
    );
}

#[test]
fn unset_secret_variable_fails_before_anything_else() {
    let (server, dir) = (OidcServer::start(), TempDir::new("unset"));
    let profile = server.profile_file(&dir.0, "");
    let store = dir.0.join("store.db");
    let outcome = cli(
        &[
            "--store",
            store.to_str().unwrap(),
            "connect",
            "conn",
            "--profile",
            profile.to_str().unwrap(),
            "--client-id",
            "basic-client",
            "--client-secret-env",
            "UNSET_VARIABLE",
            "--timeout",
            "5",
        ],
        &[],
    );
    assert_eq!(outcome.code, 1);
    assert!(!store.exists(), "nothing is created");
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 0, "by_grant": {}})
    );
}

#[test]
fn confidential_profile_without_a_secret_sends_no_token_request() {
    let (server, dir) = (OidcServer::start(), TempDir::new("nosecret"));
    let outcome = connect(&server, &dir.0, "basic-client", None);
    assert_eq!(outcome.code, 1);
    assert!(
        Store::open(&dir.0.join("store.db"))
            .unwrap()
            .list()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 0, "by_grant": {}})
    );
}

/// A `ConnectUi` that launches the scripted user agent with `options` and counts ignored
/// requests.
struct ScriptedUser {
    options: Vec<String>,
    child: Option<Child>,
    ignored: usize,
}

impl ScriptedUser {
    fn new(options: Vec<String>) -> Self {
        Self {
            options,
            child: None,
            ignored: 0,
        }
    }

    /// Waits for the user agent to finish.
    fn finish(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

impl ConnectUi for ScriptedUser {
    fn authorize_url(&mut self, url: &str) {
        let mut command = Command::new("node");
        command.arg(oidc_dir().join("user-agent.mjs"));
        command.args(&self.options);
        self.child = Some(
            command
                .arg(url)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the user agent"),
        );
    }
    fn waiting(&mut self, _: Duration, _: Duration) {}
    fn ignored(&mut self, _: &str) {
        self.ignored += 1;
    }
}

impl Drop for ScriptedUser {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A configuration for `basic-client` at `server`, its profile parsed by the component.
pub fn basic_client_config(runtime: &Runtime, server: &OidcServer) -> ConnectionConfig {
    let dir = TempDir::new("config");
    let profile_json = std::fs::read_to_string(server.profile_file(&dir.0, "")).unwrap();
    let profile = runtime
        .instantiate(connector_host::HttpTransport::new(
            Default::default(),
            Default::default(),
        ))
        .unwrap()
        .parse_profile(&profile_json)
        .unwrap();
    ConnectionConfig {
        profile,
        client: Client {
            client_id: "basic-client".into(),
            client_secret: Some("basic-secret".into()),
            auth_method: None,
        },
        redirect_uri: None,
        scopes: vec![],
        authorize_params: vec![],
        token_requests: connector_host::no_token_extras(),
        variables: vec![],
        offline_access: false,
        resources: vec![],
        dpop: false,
    }
}

fn library_flow(
    server: &OidcServer,
    options: &'static str,
    timeout: Duration,
) -> (Result<TokenSet, ConnectError>, usize) {
    let runtime = Runtime::load_built().unwrap();
    let mut config = basic_client_config(&runtime, server);
    let listener = RedirectListener::bind("http://127.0.0.1:0/callback").unwrap();
    let mut user = ScriptedUser::new(options.split_whitespace().map(str::to_owned).collect());
    let result = authorize_in_browser(
        &runtime,
        &mut config,
        &listener,
        timeout,
        &FlowOptions::default(),
        &mut user,
    );
    (result, user.ignored)
}

#[test]
fn denied_consent_is_a_typed_access_denied() {
    let server = OidcServer::start();
    let (result, ignored) = library_flow(&server, "--deny", Duration::from_secs(60));
    match result {
        Err(ConnectError::Call(CallError::Connector(Error::ServerSaidNo(OauthError {
            code: ErrorCode::AccessDenied,
            description,
            uri: None,
        })))) => assert_eq!(description.as_deref(), Some("End-User aborted interaction")),
        Err(other) => panic!("expected access_denied, got {other}"),
        Ok(_) => panic!("expected access_denied, got tokens"),
    }
    assert_eq!(ignored, 0);
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 0, "by_grant": {}})
    );
}

#[test]
fn tampered_state_is_rejected_without_a_token_request() {
    let server = OidcServer::start();
    let (result, ignored) = library_flow(&server, "--tamper-state", Duration::from_secs(15));
    assert!(
        matches!(result, Err(ConnectError::Timeout(_))),
        "the listener keeps waiting for the real callback"
    );
    assert_eq!(ignored, 1, "the forged callback was answered and ignored");
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 0, "by_grant": {}})
    );
}

/// A completed sign-in's real callback, replayed to a later sign-in on the same listener, is
/// refused without a token request (its `state` belongs to a finished flow), and the later
/// sign-in completes.
#[test]
fn a_completed_flows_callback_replayed_later_is_refused() {
    let server = OidcServer::start();
    let runtime = Runtime::load_built().unwrap();
    let dir = TempDir::new("replay");
    let saved = dir.0.join("callback.url");
    let listener = RedirectListener::bind("http://127.0.0.1:0/callback").unwrap();
    let sign_in = |options: String| {
        let mut config = basic_client_config(&runtime, &server);
        let mut user = ScriptedUser::new(vec![options]);
        let result = authorize_in_browser(
            &runtime,
            &mut config,
            &listener,
            Duration::from_secs(60),
            &FlowOptions::default(),
            &mut user,
        );
        user.finish();
        (
            result.unwrap_or_else(|error| panic!("{error}")),
            user.ignored,
        )
    };

    let (_, ignored) = sign_in(format!("--save-callback={}", saved.display()));
    assert_eq!(ignored, 0);
    let replayed = std::fs::read_to_string(&saved).unwrap();
    assert!(replayed.contains("code="), "{replayed}");
    let (tokens, ignored) = sign_in(format!("--replay-first={}", saved.display()));
    assert_eq!(ignored, 1, "the replayed callback was answered and ignored");
    assert_eq!(
        server.introspect(&tokens.access_token)["active"],
        json!(true)
    );
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 2, "by_grant": {"authorization_code": 2}}),
        "one token request per sign-in; none for the replay"
    );
}

#[test]
fn listener_survives_a_forged_callback_and_takes_the_real_one() {
    let server = OidcServer::start();
    let (result, ignored) = library_flow(&server, "--forge-first", Duration::from_secs(60));
    let tokens = result.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(ignored, 1);
    assert_eq!(
        server.introspect(&tokens.access_token)["active"],
        json!(true)
    );
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"authorization_code": 1}})
    );
}

/// Sends hostile requests to the listener, then lets the scripted user agent bring the real
/// callback (from a thread: the listener serves them once `authorize_url` returns).
struct HostileThenReal {
    statuses: std::sync::Arc<std::sync::Mutex<Vec<u16>>>,
    worker: Option<std::thread::JoinHandle<()>>,
    ignored: usize,
}

fn raw_request(address: &str, request: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(request.as_bytes());
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0)
}

impl ConnectUi for HostileThenReal {
    fn authorize_url(&mut self, url: &str) {
        let url = url.to_owned();
        let statuses = self.statuses.clone();
        self.worker = Some(std::thread::spawn(move || {
            let parsed = url::Url::parse(&url).unwrap();
            let query = |name: &str| {
                parsed
                    .query_pairs()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.into_owned())
                    .unwrap()
            };
            let state = query("state");
            let redirect = url::Url::parse(&query("redirect_uri")).unwrap();
            let address = format!("127.0.0.1:{}", redirect.port().unwrap());
            let oversized = "a".repeat(20_000);
            let requests = [
                format!("POST /callback?state={state}&code=x HTTP/1.1\r\nHost: x\r\n\r\n"),
                "GET /other HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
                format!("GET /callback?code=a&code=b&state={state} HTTP/1.1\r\n\r\n"),
                format!(
                    "GET /callback?code=a&state={state}&iss=https%3A%2F%2Fevil.example HTTP/1.1\r\n\r\n"
                ),
                format!("GET /callback?state={state} HTTP/1.1\r\n\r\n"),
                format!("GET /callback?state={state}&code={oversized} HTTP/1.1\r\n\r\n"),
                "GET /callback?code=a&state=someone-elses HTTP/1.1\r\n\r\n".to_owned(),
            ];
            for request in &requests {
                let status = raw_request(&address, request);
                statuses.lock().unwrap().push(status);
            }
            let _ = Command::new("node")
                .arg(oidc_dir().join("user-agent.mjs"))
                .arg(&url)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }));
    }
    fn waiting(&mut self, _: Duration, _: Duration) {}
    fn ignored(&mut self, _: &str) {
        self.ignored += 1;
    }
}

#[test]
fn listener_refuses_abusive_callbacks_and_takes_the_real_one() {
    let server = OidcServer::start();
    let runtime = Runtime::load_built().unwrap();
    let mut config = basic_client_config(&runtime, &server);
    let listener = RedirectListener::bind("http://127.0.0.1:0/callback").unwrap();
    let statuses = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
    let mut ui = HostileThenReal {
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
    let statuses = statuses.lock().unwrap().clone();
    assert_eq!(statuses[..5], [405, 404, 400, 400, 400]);
    // The oversized request is cut at the head cap; closing a socket with unread input may
    // reset the connection before the client reads the 400, so 0 (no answer read) is allowed.
    assert!(matches!(statuses[5], 400 | 0), "{statuses:?}");
    assert_eq!(statuses[6], 400);
    assert_eq!(
        ui.ignored, 7,
        "every abusive request was answered and ignored"
    );
    assert_eq!(
        server.introspect(&tokens.access_token)["active"],
        json!(true)
    );
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"authorization_code": 1}}),
        "only the real callback led to a token request"
    );
}

#[test]
fn help_and_version_go_to_stdout() {
    for args in [&["--help"][..], &["connect", "--help"], &["-V"]] {
        let outcome = cli(args, &[]);
        assert_eq!(outcome.code, 0, "{args:?}");
        assert_eq!(outcome.err, "", "{args:?}");
        assert!(!outcome.out.is_empty(), "{args:?}");
    }
    let help = cli(&["connect", "--help"], &[]);
    assert!(help.out.contains("--client-auth <METHOD>"), "{}", help.out);
    assert_eq!(
        cli(&["-V"], &[]).out,
        format!("connector-host {}\n", env!("CARGO_PKG_VERSION"))
    );
    let usage = cli(&["connect"], &[]);
    assert_eq!(usage.code, 2);
    assert_eq!(usage.out, "");
    assert!(usage.err.starts_with("error:"), "{}", usage.err);
}

#[test]
fn read_only_commands_never_create_a_store() {
    let dir = TempDir::new("no-store");
    let store = dir.0.join("mistyped.db");
    let store_arg = store.to_str().unwrap();
    for args in [&["list"][..], &["show", "conn"]] {
        let mut all = vec!["--store", store_arg];
        all.extend_from_slice(args);
        let outcome = cli(&all, &[]);
        assert_eq!(outcome.code, 1, "{args:?}");
        assert_eq!(
            outcome.err,
            format!("error: no store at {store_arg} (connect first, or pass the right --store)\n")
        );
        assert!(!store.exists(), "{args:?} created a store");
    }
}
