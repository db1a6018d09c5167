//! Secret hygiene: the CLI runs its flows at the most verbose log level against the real
//! authorization server, and no client secret, authorization code, PKCE verifier or token
//! appears in any output line, log line, error message or `Debug` print.
//!
//! The server records every credential that passes through its token endpoint
//! (`GET /__credentials`), so the list searched for does not depend on the client.

use std::collections::HashSet;
use std::path::Path;

use base64::Engine as _;
use connector_host::Runtime;
use connector_host::cli::EXIT_REAUTHORIZE;
use connector_host::connections::Connections;
use connector_host::store::Store;
use connector_host::types::{HttpMethod, HttpRequest};

use crate::connect::{Outcome, cli};
use crate::lifecycle::{
    connect_code_args, connect_service_args, profile, short_lived_server, wait_for_expiry,
};
use crate::server::{TempDir, user_agent};

const CLIENT_ID: &str = "hygiene-client";
const SECRET: &str = "HYGIENE-client-secret-5f0c2b9e71d4";
const WRONG_SECRET: &str = "WRONG-6c1e0d93a7c4be12f5a9";
const SERVICE_SECRET: &str = "service-secret";

/// Everything the flows printed, under a label for the failure message.
#[derive(Default)]
struct Captured(Vec<(String, String)>);

impl Captured {
    /// Keeps a CLI run's stdout, stderr and log; returns its outcome.
    fn run(&mut self, label: &str, args: &[&str], env: &[(&str, &str)]) -> Outcome {
        let mut verbose = vec!["-vvv"];
        verbose.extend_from_slice(args);
        let outcome = cli(&verbose, env);
        self.keep(&format!("{label} stdout"), &outcome.out);
        self.keep(&format!("{label} stderr"), &outcome.err);
        self.keep(&format!("{label} log"), &outcome.log);
        outcome
    }

    fn keep(&mut self, label: &str, text: &str) {
        self.0.push((label.to_owned(), text.to_owned()));
    }

    fn all_logs(&self) -> String {
        self.0
            .iter()
            .filter(|(label, _)| label.ends_with(" log"))
            .map(|(_, text)| text.as_str())
            .collect()
    }
}

#[test]
fn no_secret_reaches_any_output_at_the_most_verbose_level() {
    let (server, dir) = (short_lived_server(), TempDir::new("hygiene"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let profile = profile(&server, &dir.0);
    let browser = user_agent("");
    let userinfo = format!("{}/me", server.issuer);
    let mut captured = Captured::default();
    let connect_args =
        |name: &'static str| connect_code_args(&store, name, &profile, CLIENT_ID, &browser);

    // Authorization code with PKCE and client_secret_basic.
    let connect = captured.run("connect", &connect_args("conn"), &[("SECRET", SECRET)]);
    assert_eq!(connect.code, 0, "{}", connect.err);
    for (label, args) in [
        ("list", vec!["--store", &store, "list"]),
        ("show", vec!["--store", &store, "show", "conn"]),
        (
            "call",
            vec!["--store", &store, "call", "conn", "GET", &userinfo],
        ),
        (
            "call --json",
            vec![
                "--store", &store, "call", "conn", "GET", &userinfo, "--json",
            ],
        ),
    ] {
        let outcome = captured.run(label, &args, &[]);
        assert_eq!(outcome.code, 0, "{label}: {}", outcome.err);
    }

    // A refresh with rotation, through `call` and through `token`.
    wait_for_expiry();
    let call = captured.run(
        "call after expiry",
        &["--store", &store, "call", "conn", "GET", &userinfo],
        &[],
    );
    assert_eq!(call.code, 0, "{}", call.err);
    wait_for_expiry();
    let token = cli(&["-vvv", "--store", &store, "token", "conn"], &[]);
    assert_eq!(token.code, 0, "{}", token.err);
    // `token` exists to print the access token on stdout; everything else it prints counts.
    let stored = Store::open(Path::new(&store)).unwrap().get("conn").unwrap();
    assert_eq!(token.out.trim_end(), stored.tokens.access_token);
    captured.keep("token stderr", &token.err);
    captured.keep("token log", &token.log);

    // Library values a host might print.
    captured.keep("Debug of the stored connection", &format!("{stored:?}"));
    let runtime = Runtime::load_built().unwrap();
    let env = |_: &str| None;
    let connections = Connections::open(&runtime, Path::new(&store), &env).unwrap();
    wait_for_expiry();
    let outcome = connections.valid_tokens("conn").unwrap();
    assert!(outcome.refreshed);
    captured.keep("Debug of a refresh outcome", &format!("{outcome:?}"));

    // Failures: a wrong client secret, a revoked grant.
    let wrong = captured.run(
        "connect with a wrong secret",
        &connect_args("other"),
        &[("SECRET", WRONG_SECRET)],
    );
    assert_eq!(wrong.code, 1);
    assert!(wrong.err.contains("invalid_client"), "{}", wrong.err);
    let revoke = captured.run("revoke", &["--store", &store, "revoke", "conn"], &[]);
    assert_eq!(revoke.code, 0, "{}", revoke.err);
    let refused = captured.run(
        "call after revocation",
        &["--store", &store, "call", "conn", "GET", &userinfo],
        &[],
    );
    assert_eq!(refused.code, EXIT_REAUTHORIZE, "{}", refused.err);
    let request = HttpRequest {
        method: HttpMethod::Get,
        url: userinfo.clone(),
        headers: vec![],
        body: vec![],
    };
    let error = connections.call("conn", &request).unwrap_err();
    captured.keep("Display of a reauthorization error", &error.to_string());
    captured.keep("Debug of a reauthorization error", &format!("{error:?}"));

    // Client credentials.
    let service = captured.run(
        "connect client credentials",
        &connect_service_args(&store, &profile),
        &[("SECRET", SERVICE_SECRET)],
    );
    assert_eq!(service.code, 0, "{}", service.err);

    // The logs were on, and said what happened (so the search below searched something).
    let logs = captured.all_logs();
    for expected in [
        "POST",
        "/token",
        "status=200",
        "refreshed and stored",
        "rotated=true",
        "revoked at the server",
        "headers=[",
    ] {
        assert!(logs.contains(expected), "no `{expected}` in the logs");
    }

    let credentials = server.credentials();
    assert!(
        credentials.len() >= 12,
        "the server saw only {} credentials",
        credentials.len()
    );
    let basic = |id: &str, secret: &str| {
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    };
    let mut secrets = credentials;
    secrets.extend([
        SECRET.to_owned(),
        WRONG_SECRET.to_owned(),
        SERVICE_SECRET.to_owned(),
        basic(CLIENT_ID, SECRET),
        basic(CLIENT_ID, WRONG_SECRET),
        basic("service-client", SERVICE_SECRET),
    ]);
    // The store and SQLite's side files are owner-only, and a store others can read is
    // refused before anything is read from it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &str| {
            std::fs::metadata(path)
                .map(|meta| meta.permissions().mode() & 0o777)
                .ok()
        };
        assert_eq!(mode(&store), Some(0o600));
        for side in ["-wal", "-shm"] {
            let side = format!("{store}{side}");
            assert!(matches!(mode(&side), None | Some(0o600)), "{side}");
        }
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = captured.run(
            "list of a readable store",
            &["--store", &store, "list"],
            &[],
        );
        assert_eq!(refused.code, 1);
        assert!(refused.err.contains("chmod 600"), "{}", refused.err);
        assert_eq!(refused.out, "");
    }

    let fragments = Fragments::of(&secrets);
    for (label, text) in &captured.0 {
        if let Some(found) = fragments.find_in(text) {
            panic!("a credential ({found} characters of it) appears in {label}");
        }
    }
}

/// The JWT client authentication methods at `-vvv`: neither the private key (in the host's
/// key file), nor the `client_secret_jwt` secret, nor any assertion the server received
/// appears in any output, log or `Debug` print.
#[test]
fn jwt_client_authentication_leaks_no_key_secret_or_assertion() {
    let dir = TempDir::new("hygiene-jwt");
    let keys = dir.0.join("keys");
    std::fs::create_dir(&keys).unwrap();
    let server = crate::server::OidcServer::start_with(&[
        ("CLIENT_KEYS_DIR", keys.to_str().unwrap()),
        ("ACCESS_TOKEN_TTL", "2"),
    ]);
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let key = keys.join("es256.pem");
    let key = key.to_str().unwrap();
    const JWT_SECRET: &str = "HS256-key-7f3a9c1e5b2d8f4a6c0e9b7d5f3a1c8e";
    let browser = user_agent("");
    let issuer = server.issuer.clone();
    let mut captured = Captured::default();
    let code_args = |name: &str, client: &str, extra: &[&str]| {
        let mut args = vec![
            "--store".to_owned(),
            store.clone(),
            "connect".into(),
            name.into(),
            "--issuer".into(),
            issuer.clone(),
            "--client-id".into(),
            client.into(),
            "--scope".into(),
            "openid".into(),
            "--redirect-uri".into(),
            "http://127.0.0.1:0/callback".into(),
            "--browser".into(),
            browser.clone(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };
    let run = |captured: &mut Captured, label: &str, args: Vec<String>, env: &[(&str, &str)]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let outcome = captured.run(label, &args, env);
        assert_eq!(outcome.code, 0, "{label}: {}", outcome.err);
    };
    run(
        &mut captured,
        "connect private_key_jwt",
        code_args(
            "signed",
            "es256-client",
            &["--private-key", key, "--key-id", "ec-1"],
        ),
        &[],
    );
    run(
        &mut captured,
        "connect client_secret_jwt",
        code_args(
            "hs",
            "secret-jwt-client",
            &[
                "--client-secret-env",
                "S",
                "--client-auth",
                "client-secret-jwt",
            ],
        ),
        &[("S", JWT_SECRET)],
    );
    wait_for_expiry();
    for name in ["signed", "hs"] {
        run(
            &mut captured,
            &format!("call {name} after expiry"),
            [
                "--store",
                &store,
                "call",
                name,
                "GET",
                &format!("{issuer}/me"),
            ]
            .map(str::to_owned)
            .to_vec(),
            &[("S", JWT_SECRET)],
        );
        run(
            &mut captured,
            &format!("show {name}"),
            ["--store", &store, "show", name]
                .map(str::to_owned)
                .to_vec(),
            &[],
        );
    }
    run(
        &mut captured,
        "revoke signed",
        ["--store", &store, "revoke", "signed"]
            .map(str::to_owned)
            .to_vec(),
        &[],
    );
    let signer =
        connector_host::signer::KeyFileSigner::from_pem_file(Path::new(key), Some("ec-1".into()))
            .unwrap();
    captured.keep("Debug of the key file signer", &format!("{signer:?}"));
    let stored = Store::open(Path::new(&store))
        .unwrap()
        .get("signed")
        .unwrap();
    captured.keep("Debug of the stored connection", &format!("{stored:?}"));

    let assertions = server.get("/__assertions");
    assert_eq!(
        assertions.as_array().map(Vec::len),
        Some(8),
        "two pushed requests, two code exchanges, two refreshes and two revocations: \
         {assertions}"
    );
    let logs = captured.all_logs();
    assert!(logs.contains("refreshed and stored"), "the logs were on");
    // The key's PEM body, as one string (its 64-character lines joined) and line by line.
    let pem = std::fs::read_to_string(key).unwrap();
    let body: Vec<String> = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .map(str::to_owned)
        .collect();
    let mut secrets = server.credentials();
    assert!(
        secrets.iter().any(|c| c.starts_with("eyJ")),
        "assertions are recorded"
    );
    secrets.push(JWT_SECRET.to_owned());
    secrets.push(body.concat());
    secrets.extend(body);
    let fragments = Fragments::of(&secrets);
    for (label, text) in &captured.0 {
        if let Some(found) = fragments.find_in(text) {
            panic!("a credential ({found} characters of it) appears in {label}");
        }
    }
}

/// What to search for: each credential whole, and for credentials of at least
/// `2 * FRAGMENT` characters every `FRAGMENT`-character piece, so that a credential cut
/// into lines (a hex dump prints 16 bytes a line) is still found.
struct Fragments {
    whole: Vec<String>,
    pieces: HashSet<Vec<u8>>,
}

const FRAGMENT: usize = 10;

impl Fragments {
    fn of(secrets: &[String]) -> Self {
        let pieces = secrets
            .iter()
            .filter(|secret| secret.len() >= 2 * FRAGMENT)
            .flat_map(|secret| secret.as_bytes().windows(FRAGMENT).map(<[u8]>::to_vec))
            .collect();
        Self {
            whole: secrets.to_vec(),
            pieces,
        }
    }

    /// The length of what was found in `text`, if anything.
    fn find_in(&self, text: &str) -> Option<usize> {
        if let Some(secret) = self
            .whole
            .iter()
            .find(|secret| text.contains(secret.as_str()))
        {
            return Some(secret.len());
        }
        text.as_bytes()
            .windows(FRAGMENT)
            .any(|window| self.pieces.contains(window))
            .then_some(FRAGMENT)
    }
}
