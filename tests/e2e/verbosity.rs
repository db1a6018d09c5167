//! What each `-v` level logs on real flows against the real authorization server: `-v` the
//! flow's steps, one line each (checked exactly) and never a dependency's; `-vv` our debug
//! lines too; `-vvv` the dependencies' internals too (ureq's).

use std::path::Path;

use connector_host::cli::{EXIT_REAUTHORIZE, format_time};
use connector_host::store::{ConnectionState, Store};

use crate::connect::{Outcome, cli};
use crate::server::{OidcServer, TempDir, user_agent};

/// Fields whose values differ from run to run (a duration): shown as `#`.
const VARIABLE_FIELDS: [&str; 1] = ["window_ms="];

/// Each line of `log` as `LEVEL target: message fields`: without its timestamp, with
/// `replace`'s values (variable URLs and times) replaced by their names and the values of
/// [`VARIABLE_FIELDS`] by `#`.
fn steps(log: &str, replace: &[(&str, &str)]) -> Vec<String> {
    log.lines()
        .map(|line| {
            let (_timestamp, rest) = line.split_once(' ').unwrap_or(("", line));
            let mut rest = rest.trim_start().to_owned();
            for (value, name) in replace {
                rest = rest.replace(value, name);
            }
            for field in VARIABLE_FIELDS {
                if let Some(start) = rest.find(field).map(|at| at + field.len()) {
                    let end = rest[start..].find(' ').map_or(rest.len(), |at| start + at);
                    rest.replace_range(start..end, "#");
                }
            }
            rest
        })
        .collect()
}

/// The target of a step (`connector_host::cli`, `ureq::unversioned::transport::tcp`, ...).
fn target(step: &str) -> &str {
    step.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .trim_end_matches(':')
}

/// Asserts that `outcome` succeeded and logged only this crate's lines.
fn assert_ours_only(outcome: &Outcome) {
    assert_eq!(outcome.code, 0, "{}", outcome.err);
    for step in steps(&outcome.log, &[]) {
        assert!(
            target(&step).starts_with("connector_host"),
            "a dependency's line at -v: {step}"
        );
    }
}

/// Makes `conn`'s access token due, as if the server had issued it with no lifetime.
fn make_due(store: &str) {
    let store = Store::open(Path::new(store)).unwrap();
    let mut tokens = store.get("conn").unwrap().tokens;
    tokens.expires_at = Some(tokens.obtained_at);
    store.update_tokens("conn", &tokens).unwrap();
}

#[test]
fn v_logs_each_flow_step_and_vvv_the_dependencies() {
    let (server, dir) = (OidcServer::start(), TempDir::new("verbosity"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let browser = user_agent("");
    let issuer = server.issuer.clone();

    // Sign-in through discovery.
    let connect = cli(
        &[
            "-v",
            "--store",
            &store,
            "connect",
            "conn",
            "--issuer",
            &issuer,
            "--client-id",
            "basic-client",
            "--client-secret-env",
            "SECRET",
            "--scope",
            "openid",
            "--redirect-uri",
            "http://127.0.0.1:0/callback",
            "--browser",
            &browser,
            "--timeout",
            "60",
        ],
        &[("SECRET", "basic-secret")],
    );
    assert_ours_only(&connect);
    let stored = || Store::open(Path::new(&store)).unwrap().get("conn").unwrap();
    let redirect_uri = stored().config.redirect_uri.unwrap();
    let names = [
        (issuer.as_str(), "ISSUER"),
        (redirect_uri.as_str(), "REDIRECT_URI"),
    ];
    assert_eq!(
        steps(&connect.log, &names),
        [
            "INFO connector_host::configure: discovery: fetched the server's metadata issuer=ISSUER/",
            // The server advertises PAR (RFC 9126): the URL carries only the reference.
            "INFO connector_host::connect: authorization: authorize URL ready; waiting for the \
             callback authorize_url=ISSUER/auth query names [client_id, request_uri] \
             redirect_uri=REDIRECT_URI",
            "INFO connector_host::cli: authorization: opened the authorize URL in the browser",
            "INFO connector_host::connect: authorization: callback received \
             callback=REDIRECT_URI query names [code, state, iss]",
            "INFO connector_host::cli: tokens obtained connection=\"conn\" \
             grant=\"authorization-code\" scopes=[\"openid\"] expires_in_s=3600 refresh_token=true \
             id_token=true",
        ]
    );

    // Refresh decisions: not needed; then, the access token due, refreshed.
    let token = cli(&["-v", "--store", &store, "token", "conn"], &[]);
    assert_ours_only(&token);
    let expires = format_time(stored().tokens.expires_at.unwrap());
    assert_eq!(
        steps(&token.log, &[(expires.as_str(), "EXPIRES")]),
        [
            "INFO connector_host::connections: refresh: not needed; stored tokens are valid \
             connection=\"conn\" expires_at=EXPIRES"
        ]
    );
    make_due(&store);
    let token = cli(&["-v", "--store", &store, "token", "conn"], &[]);
    assert_ours_only(&token);
    let expires = format_time(stored().tokens.expires_at.unwrap());
    assert_eq!(
        steps(&token.log, &[(expires.as_str(), "EXPIRES")]),
        [
            "INFO connector_host::connections: refresh: refreshing with the refresh token \
             connection=\"conn\" grant=\"authorization-code\" why=\"the access token is due\"",
            "INFO connector_host::connections: refresh: refreshed and stored \
             connection=\"conn\" grant=\"authorization-code\" rotated=true expires_at=EXPIRES \
             window_ms=#",
        ]
    );

    // -vv: our debug lines too, still no dependency's.
    make_due(&store);
    let token = cli(&["-vv", "--store", &store, "token", "conn"], &[]);
    assert_ours_only(&token);
    assert!(
        steps(&token.log, &[])
            .iter()
            .any(|step| step.starts_with("DEBUG connector_host::")),
        "{}",
        token.log
    );

    // -vvv: the dependencies' internals too.
    make_due(&store);
    let token = cli(&["-vvv", "--store", &store, "token", "conn"], &[]);
    assert_eq!(token.code, 0, "{}", token.err);
    assert!(
        steps(&token.log, &[])
            .iter()
            .any(|step| step.starts_with("DEBUG ") && target(step).starts_with("ureq")),
        "{}",
        token.log
    );

    // Refused: a revoked connection is not refreshed.
    let revoke = cli(&["-v", "--store", &store, "revoke", "conn"], &[]);
    assert_ours_only(&revoke);
    let token = cli(&["-v", "--store", &store, "token", "conn"], &[]);
    assert_eq!(token.code, EXIT_REAUTHORIZE, "{}", token.err);
    let ConnectionState::NeedsReauthorization { since, .. } = stored().state else {
        panic!("revoked");
    };
    let since = format_time(since);
    assert_eq!(
        steps(&token.log, &[(since.as_str(), "SINCE")]),
        [
            "INFO connector_host::connections: refresh: refused; the connection must be \
             authorized again connection=\"conn\" state=revoked at SINCE (by `revoke`)"
        ]
    );
}
