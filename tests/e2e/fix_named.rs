//! Every error of issue 14's "Errors that must name the fix": each case runs the CLI and
//! checks its exit code and a stable part of the message that names the fix (the flag to
//! pass, the part of an origin that differs, the store searched), never the whole text.

use std::net::TcpListener;
use std::path::Path;

use connector_host::cli::EXIT_USAGE;
use connector_host::store::Store;
use serde_json::json;

use crate::client_auth::connect_client_credentials;
use crate::connect::cli;
use crate::lifecycle::profile;
use crate::server::{OidcServer, TempDir};

/// What is wrong, the arguments, the environment, the exit code, and the parts of the
/// message that name the fix.
struct Case<'a> {
    what: &'a str,
    args: Vec<String>,
    env: &'a [(&'a str, &'a str)],
    code: i32,
    fix: Vec<String>,
}

/// Owned copies of `texts`.
fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|text| (*text).to_owned()).collect()
}

impl<'a> Case<'a> {
    fn new(what: &'a str, args: Vec<String>, code: i32, fix: &[&str]) -> Self {
        Self {
            what,
            args,
            env: &[],
            code,
            fix: strings(fix),
        }
    }

    fn env(mut self, env: &'a [(&'a str, &'a str)]) -> Self {
        self.env = env;
        self
    }

    /// Runs the CLI on `store` and checks the outcome.
    fn check(&self, store: &str) {
        let mut args = vec!["--store", store];
        args.extend(self.args.iter().map(String::as_str));
        let outcome = cli(&args, self.env);
        assert_eq!(outcome.code, self.code, "{}: {}", self.what, outcome.err);
        for part in &self.fix {
            assert!(
                outcome.err.contains(part.as_str()),
                "{}: expected `{part}` in: {}",
                self.what,
                outcome.err
            );
        }
    }
}

/// A port nothing listens on (taken, then let go).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The errors found before anything is sent: flags, variables, options the grant does not
/// use, a missing connection. No server: the profile's endpoints are never reached.
#[test]
fn errors_found_before_sending_name_the_fix() {
    let dir = TempDir::new("fix-named-local");
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let plain = dir.0.join("plain.json");
    std::fs::write(
        &plain,
        r#"{"id": "plain", "authorize-url": "http://127.0.0.1:9/auth",
            "token-url": "http://127.0.0.1:9/token", "client-auth": "none"}"#,
    )
    .unwrap();
    let templated = dir.0.join("templated.json");
    std::fs::write(
        &templated,
        r#"{"id": "tenanted", "authorize-url": "http://127.0.0.1:9/{tenant}/auth",
            "token-url": "http://127.0.0.1:9/{tenant}/token", "variables": ["tenant"],
            "client-auth": "none"}"#,
    )
    .unwrap();
    let (plain, templated) = (plain.to_str().unwrap(), templated.to_str().unwrap());
    let connect = |profile: &str, more: &[&str]| -> Vec<String> {
        let mut args = vec!["connect", "c", "--profile", profile, "--client-id", "id"];
        args.extend_from_slice(more);
        args.into_iter().map(str::to_owned).collect()
    };
    let cases = [
        Case::new(
            "--secret-ref without --client-secret-env",
            connect(plain, &["--secret-ref"]),
            EXIT_USAGE,
            &["--client-secret-env <VAR>"],
        ),
        Case::new(
            "reconnect --secret-ref without --client-secret-env",
            strings(&["reconnect", "c", "--secret-ref"]),
            EXIT_USAGE,
            &["--client-secret-env <VAR>"],
        ),
        Case::new(
            "a variable that is set but empty",
            connect(plain, &["--client-secret-env", "SECRET"]),
            1,
            &["environment variable SECRET is empty"],
        )
        .env(&[("SECRET", "")]),
        Case::new(
            "an unknown --var for a profile without variables",
            connect(plain, &["--var", "tenant=contoso"]),
            EXIT_USAGE,
            &["has no variable `tenant`; it takes no --var"],
        ),
        Case::new(
            "a misspelt --var",
            connect(templated, &["--var", "tennant=contoso"]),
            EXIT_USAGE,
            &["has no variable `tennant`; its variables: `tenant`"],
        ),
        Case::new(
            "a refused variable value",
            connect(templated, &["--var", "tenant=a/b"]),
            1,
            &["the value of `tenant`", "letters, digits, `.`, `-` and `_`"],
        ),
        Case::new(
            "--redirect-uri with client credentials",
            connect(
                plain,
                &[
                    "--grant",
                    "client-credentials",
                    "--redirect-uri",
                    "http://127.0.0.1:0/callback",
                ],
            ),
            EXIT_USAGE,
            &["--redirect-uri does not apply to the client-credentials grant"],
        ),
        Case::new(
            "browser options with client credentials",
            connect(
                plain,
                &[
                    "--grant",
                    "client-credentials",
                    "--browser",
                    "true",
                    "--timeout",
                    "5",
                    "--offline",
                ],
            ),
            EXIT_USAGE,
            &["--offline, --browser, --timeout do not apply to the client-credentials grant"],
        ),
        Case::new(
            "--redirect-uri and --param with the device grant",
            connect(
                plain,
                &[
                    "--grant",
                    "device",
                    "--redirect-uri",
                    "http://127.0.0.1:0/callback",
                    "--param",
                    "prompt=login",
                ],
            ),
            EXIT_USAGE,
            &["--redirect-uri, --param do not apply to the device grant"],
        ),
    ];
    for case in &cases {
        case.check(&store);
    }
    // None of them stored anything (the first ones never created the store).
    if Path::new(&store).exists() {
        assert!(
            Store::open(Path::new(&store))
                .unwrap()
                .list()
                .unwrap()
                .is_empty()
        );
    }
}

/// The errors that need a stored connection or a real server: a missing secret, an origin
/// off the allow-list (and `show` listing the allowed ones), a transport failure, a secret
/// variable emptied since, a busy redirect port, a missing connection, options the stored
/// grant does not use.
#[test]
fn errors_with_a_server_name_the_fix() {
    let (server, dir) = (OidcServer::start(), TempDir::new("fix-named-server"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let issuer = url::Url::parse(&server.issuer).unwrap();
    let (host, port) = (issuer.host_str().unwrap(), issuer.port().unwrap());
    let origin = format!("http://{host}:{port}");

    // `svc` may reach the server; `ref` keeps only its secret's variable; `dead`'s API base
    // URL is a port nothing listens on.
    let reachable = profile(&server, &dir.0);
    let secret = [("SECRET", "service-secret")];
    let source = ["--profile", reachable.as_str()];
    for (name, extra) in [
        ("svc", &["--client-secret-env", "SECRET"][..]),
        ("ref", &["--client-secret-env", "SECRET", "--secret-ref"]),
    ] {
        let connected =
            connect_client_credentials(&store, name, source, "service-client", extra, &secret);
        assert_eq!(connected.code, 0, "{name}: {}", connected.err);
    }
    let dead_port = free_port();
    let dead_api = format!("http://127.0.0.1:{dead_port}");
    // In a folder of its own: `profile_file` always writes `profile.json`.
    let dead_dir = dir.0.join("dead");
    std::fs::create_dir(&dead_dir).unwrap();
    let unreachable = server.profile_file(&dead_dir, &format!(r#", "api-base-url": "{dead_api}""#));
    let connected = connect_client_credentials(
        &store,
        "dead",
        ["--profile", unreachable.to_str().unwrap()],
        "service-client",
        &["--client-secret-env", "SECRET"],
        &secret,
    );
    assert_eq!(connected.code, 0, "{}", connected.err);

    let show = cli(&["--store", &store, "show", "svc"], &[]);
    assert_eq!(show.code, 0, "{}", show.err);
    assert!(
        show.out
            .contains(&format!("api base url:   {}\n", server.issuer)),
        "{}",
        show.out
    );
    assert!(
        show.out.contains(&format!("allow-list:     {origin}\n")),
        "{}",
        show.out
    );

    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_uri = format!(
        "http://127.0.0.1:{}/callback",
        busy.local_addr().unwrap().port()
    );
    let other_port = format!("http://{host}:{}/me", free_port());
    let other_scheme = format!("https://{host}:{port}/me");
    let other_host = format!("http://localhost:{port}/me");
    let allowed = format!("allowed origins: {origin}");
    let code_flow = |more: &[&str]| -> Vec<String> {
        let mut args = vec![
            "connect",
            "code",
            "--profile",
            unreachable.to_str().unwrap(),
            "--client-id",
            "basic-client",
            "--no-browser",
        ];
        args.extend_from_slice(more);
        args.into_iter().map(str::to_owned).collect()
    };
    let cases = [
        Case::new(
            "a confidential client without a secret",
            code_flow(&[]),
            1,
            &["--client-secret-env", "--client-auth none"],
        ),
        Case::new(
            "client credentials without a secret",
            strings(&[
                "connect",
                "svc2",
                "--grant",
                "client-credentials",
                "--profile",
                &reachable,
                "--client-id",
                "service-client",
            ]),
            1,
            &["--client-secret-env", "--client-auth"],
        ),
        Case::new(
            "another port",
            strings(&["call", "svc", "GET", &other_port]),
            1,
            &["its port differs from the nearest allowed origin", &allowed],
        ),
        Case::new(
            "another scheme",
            strings(&["call", "svc", "GET", &other_scheme]),
            1,
            &[
                "its scheme differs from the nearest allowed origin",
                &allowed,
            ],
        ),
        Case::new(
            "another host",
            strings(&["call", "svc", "GET", &other_host]),
            1,
            &["its host differs from the nearest allowed origin", &allowed],
        ),
        Case::new(
            "a transport failure",
            strings(&["call", "dead", "GET", "/me"]),
            1,
            &[&format!("connection failed: {dead_api}")],
        ),
        Case::new(
            "a secret variable emptied since connecting",
            strings(&["call", "ref", "GET", "/me"]),
            1,
            &["comes from $SECRET, which is empty"],
        )
        .env(&[("SECRET", "")]),
        Case::new(
            "a busy redirect port",
            code_flow(&["--client-secret-env", "SECRET", "--redirect-uri", &busy_uri]),
            1,
            &["pass --redirect-uri http://127.0.0.1:0/callback"],
        )
        .env(&secret),
        Case::new(
            "show, a missing connection",
            strings(&["show", "nope"]),
            1,
            &[&format!("no connection named `nope` in the store {store}")],
        ),
        Case::new(
            "token, a missing connection",
            strings(&["token", "nope"]),
            1,
            &[&format!("no connection named `nope` in the store {store}")],
        ),
        Case::new(
            "reconnect with a browser option the stored grant does not use",
            strings(&["reconnect", "svc", "--no-browser"]),
            EXIT_USAGE,
            &[
                "--no-browser does not apply to the client-credentials grant",
                "connector-host connect svc --force",
            ],
        ),
    ];
    server.reset_stats();
    for case in &cases {
        case.check(&store);
    }
    drop(busy);
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 0, "by_grant": {}}),
        "no case reached the token endpoint"
    );
    let names: Vec<String> = Store::open(Path::new(&store))
        .unwrap()
        .list()
        .unwrap()
        .into_iter()
        .map(|connection| connection.name)
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}
