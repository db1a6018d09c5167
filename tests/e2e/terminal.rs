//! Terminal escapes from servers never reach the screen: scopes and token types from a token
//! response (`connect`, `list`, `show`), the issuer of a mismatched discovery document, and
//! error descriptions are printed through one sanitiser.

use connector_host::loopback::{LoopbackServer, Reply};

use crate::client_auth::connect_client_credentials;
use crate::connect::{Outcome, cli};
use crate::server::TempDir;

/// ESC `[2J` clears the screen; ESC `]0;…BEL` sets the window title.
const CLEAR: &str = "\\u001b[2J";
const TITLE: &str = "\\u001b]0;pwned\\u0007";

fn assert_clean(label: &str, outcome: &Outcome) {
    for (stream, text) in [("stdout", &outcome.out), ("stderr", &outcome.err)] {
        assert!(
            !text.contains(['\u{1b}', '\u{7}']),
            "{label} {stream} holds a control character: {text:?}"
        );
    }
}

#[test]
fn token_response_text_is_sanitised_in_connect_list_and_show() {
    let dir = TempDir::new("terminal");
    let body = format!(
        r#"{{"access_token":"at","token_type":"Bearer{CLEAR}","expires_in":3600,"scope":"read{TITLE} write"}}"#
    );
    let server = LoopbackServer::start(move |_| Reply::json(200, &body));
    let profile = dir.0.join("profile.json");
    std::fs::write(
        &profile,
        format!(
            r#"{{"id": "escapes", "token-url": "{}"}}"#,
            server.url("/token")
        ),
    )
    .unwrap();
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let connect = connect_client_credentials(
        &store,
        "esc",
        ["--profile", profile.to_str().unwrap()],
        "c",
        &["--client-secret-env", "S"],
        &[("S", "s")],
    );
    assert_eq!(connect.code, 0, "{}", connect.err);
    assert_clean("connect", &connect);
    // The stored values are kept as sent; only what is shown is sanitised.
    let stored = connector_host::store::Store::open(std::path::Path::new(&store))
        .unwrap()
        .get("esc")
        .unwrap();
    assert_eq!(stored.tokens.token_type, "bearer\u{1b}[2j");
    let list = cli(&["--store", &store, "list"], &[]);
    assert_eq!(list.code, 0, "{}", list.err);
    assert_clean("list", &list);
    assert!(
        list.out.ends_with("\tread?]0;pwned? write\n"),
        "{:?}",
        list.out
    );
    let show = cli(&["--store", &store, "show", "esc"], &[]);
    assert_clean("show", &show);
    assert!(
        show.out.contains("token type:     bearer?[2j\n"),
        "{}",
        show.out
    );
}

#[test]
fn a_mismatched_issuer_and_an_error_description_are_sanitised() {
    let dir = TempDir::new("terminal-issuer");
    let server = LoopbackServer::start(|request| {
        if request.target.starts_with("/.well-known/") {
            Reply::json(
                200,
                &format!(
                    r#"{{"issuer": "https://evil.example{CLEAR}", "token_endpoint": "https://evil.example/token"}}"#
                ),
            )
        } else {
            Reply::json(
                400,
                &format!(
                    r#"{{"error":"invalid_client","error_description":"gone{CLEAR}{TITLE}"}}"#
                ),
            )
        }
    });
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let issuer = server.url("");
    let discover = cli(
        &[
            "--store",
            &store,
            "connect",
            "x",
            "--issuer",
            &issuer,
            "--client-id",
            "c",
        ],
        &[],
    );
    assert_eq!(discover.code, 1);
    assert_clean("discovery", &discover);
    assert!(
        discover.err.contains("`https://evil.example?[2J`"),
        "{}",
        discover.err
    );

    let profile = dir.0.join("profile.json");
    std::fs::write(
        &profile,
        format!(r#"{{"id": "p", "token-url": "{}"}}"#, server.url("/token")),
    )
    .unwrap();
    let refused = connect_client_credentials(
        &store,
        "y",
        ["--profile", profile.to_str().unwrap()],
        "c",
        &["--client-secret-env", "S"],
        &[("S", "s")],
    );
    assert_eq!(refused.code, 1);
    assert_clean("error description", &refused);
    assert!(
        refused.err.contains("invalid_client: gone?[2J?]0;pwned?"),
        "{}",
        refused.err
    );
}
