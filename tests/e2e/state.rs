//! A connection's state end to end: once revoked (by `revoke`, or at the server behind the
//! CLI's back, which the next refresh learns as `invalid_grant`), a connection is marked and
//! hands out no token: `token` and `call` exit 3 at once, naming the fix, and send nothing;
//! `show` and `list` say so; connecting again clears the mark.

use std::path::Path;

use connector_host::Runtime;
use connector_host::cli::EXIT_REAUTHORIZE;
use connector_host::connections::{ConnectionError, Connections};
use connector_host::store::{ConnectionState, Reauthorization, Store};
use connector_host::types::{HttpMethod, HttpRequest, KeyValue};
use connector_host::{AllowList, HttpTransport, Limits};
use serde_json::json;

use crate::connect::{Outcome, cli};
use crate::lifecycle::{connect_code_args, profile, short_lived_server, wait_for_expiry};
use crate::server::{OidcServer, TempDir, user_agent};

/// What a marked connection's `token` and `call` say: the command that fixes it.
const FIX: &str =
    "run `connector-host reconnect conn` (it signs in again with the stored settings)";

/// `list`'s header row.
const LIST_HEADER: &str = "NAME\tPROVIDER\tEXPIRES OR STATE\tSCOPES\n";

/// `connect conn --force` with basic-client, in the store `store` (`--force`: the tests
/// connect the marked connection again under its name).
fn connect(server: &OidcServer, dir: &Path, store: &str) -> Outcome {
    let profile = profile(server, dir);
    let browser = user_agent("");
    let mut args = connect_code_args(store, "conn", &profile, "basic-client", &browser);
    args.push("--force");
    cli(&args, &[("SECRET", "basic-secret")])
}

fn stored(store: &str) -> connector_host::store::StoredConnection {
    Store::open(Path::new(store)).unwrap().get("conn").unwrap()
}

fn run(store: &str, args: &[&str]) -> Outcome {
    let mut argv = vec!["--store", store];
    argv.extend_from_slice(args);
    cli(&argv, &[])
}

/// The `show` line of the state and what follows it, up to `id token:`.
fn state_lines(show: &str) -> Vec<&str> {
    show.lines()
        .skip_while(|line| !line.starts_with("state:"))
        .take_while(|line| !line.starts_with("id token:"))
        .collect()
}

/// `Authorization: Basic` for `basic-client` (base64 of `basic-client:basic-secret`).
const BASIC_CLIENT: &str = "Basic YmFzaWMtY2xpZW50OmJhc2ljLXNlY3JldA==";

/// Revokes `token` at the server (RFC 7009) behind the CLI's back, authenticated by the
/// `Authorization` header `client`, as a user revoking an app's access at the provider would.
pub fn revoke_at_server(server: &OidcServer, client: &str, token: &str) {
    let transport = HttpTransport::new(
        AllowList::from_urls([server.issuer.as_str()]),
        Limits::default(),
    );
    let body = format!(
        "token={}",
        url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
    );
    let response = transport
        .send(HttpRequest {
            method: HttpMethod::Post,
            url: format!("{}/token/revocation", server.issuer),
            headers: vec![
                KeyValue {
                    name: "Content-Type".into(),
                    value: "application/x-www-form-urlencoded".into(),
                },
                KeyValue {
                    name: "Authorization".into(),
                    value: client.into(),
                },
            ],
            body: body.into_bytes(),
        })
        .expect("reach the test server");
    assert_eq!(response.status, 200);
    assert_eq!(server.introspect(token)["active"], json!(false));
}

#[test]
fn a_revoked_connection_hands_out_no_token_until_connected_again() {
    let (server, dir) = (OidcServer::start(), TempDir::new("state-revoked"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let connected = connect(&server, &dir.0, &store);
    assert_eq!(connected.code, 0, "{}", connected.err);
    assert_eq!(state_lines(&connected.out)[0], "state:          active");
    let tokens = stored(&store).tokens;

    let revoke = run(&store, &["revoke", "conn"]);
    assert_eq!(revoke.code, 0, "{}", revoke.err);
    let ConnectionState::NeedsReauthorization {
        reason: Reauthorization::Revoked,
        since,
    } = stored(&store).state
    else {
        panic!("revoke marks the connection");
    };
    let revoked_at = format!(
        "revoked at {} (by `revoke`)",
        connector_host::cli::format_time(since)
    );
    server.reset_stats();

    // `token`: exit 3 at once, the fix named, no token printed anywhere.
    let token = run(&store, &["token", "conn"]);
    assert_eq!(token.code, EXIT_REAUTHORIZE, "{}", token.err);
    assert_eq!(token.out, "");
    assert_eq!(
        token.err,
        format!(
            "error: connection `conn` {revoked_at}; no token is used until it is connected \
             again: {FIX}\n"
        )
    );
    assert!(!token.log.contains(&tokens.access_token));

    // `call`: the same, and the API is never called.
    let call = run(
        &store,
        &["call", "conn", "GET", &format!("{}/me", server.issuer)],
    );
    assert_eq!(call.code, EXIT_REAUTHORIZE, "{}", call.err);
    assert_eq!(call.out, "");
    assert!(call.err.contains(FIX), "{}", call.err);
    assert!(!call.err.starts_with("HTTP "), "{}", call.err);

    // `show` and `list` say it is revoked, not when its tokens expire.
    let show = run(&store, &["show", "conn"]);
    assert_eq!(show.code, 0, "{}", show.err);
    assert_eq!(
        state_lines(&show.out),
        [
            format!("state:          {revoked_at}").as_str(),
            "tokens:         unusable; connect again: connector-host reconnect conn",
        ]
    );
    assert!(!show.out.contains("expires:"), "{}", show.out);
    assert!(!show.out.contains("refresh token:"), "{}", show.out);
    let list = run(&store, &["list"]);
    assert_eq!(list.code, 0, "{}", list.err);
    assert_eq!(
        list.out,
        format!(
            "{LIST_HEADER}conn\tlocal-oidc\t{revoked_at}\t{}\n",
            tokens.scopes.join(" ")
        )
    );

    // Typed, through the library.
    let runtime = Runtime::load_built().unwrap();
    let env = |_: &str| None;
    let connections = Connections::open(&runtime, Path::new(&store), &env).unwrap();
    let error = connections.valid_tokens("conn").unwrap_err();
    assert!(error.needs_reauthorization());
    assert!(matches!(
        error,
        ConnectionError::NeedsReauthorization { ref name, reason: Reauthorization::Revoked, since: at }
            if name == "conn" && at == since
    ));
    drop(connections);
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 0, "by_grant": {}}),
        "nothing was sent for a revoked connection"
    );

    // Connecting again clears the mark.
    let again = connect(&server, &dir.0, &store);
    assert_eq!(again.code, 0, "{}", again.err);
    assert_eq!(stored(&store).state, ConnectionState::Active);
    let token = run(&store, &["token", "conn"]);
    assert_eq!(token.code, 0, "{}", token.err);
    assert_eq!(token.out.trim_end(), stored(&store).tokens.access_token);
    assert_ne!(token.out.trim_end(), tokens.access_token);
    let show = run(&store, &["show", "conn"]);
    assert_eq!(state_lines(&show.out)[0], "state:          active");
    assert!(
        state_lines(&show.out)[1].starts_with("expires:        "),
        "{}",
        show.out
    );
}

#[test]
fn a_refresh_refused_with_invalid_grant_marks_the_connection() {
    let (server, dir) = (short_lived_server(), TempDir::new("state-refused"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let connected = connect(&server, &dir.0, &store);
    assert_eq!(connected.code, 0, "{}", connected.err);
    let tokens = stored(&store).tokens;
    // Revoked at the server, behind the CLI's back: the next refresh is refused.
    revoke_at_server(
        &server,
        BASIC_CLIENT,
        tokens.refresh_token.as_deref().unwrap(),
    );
    wait_for_expiry();
    server.reset_stats();

    let first = run(&store, &["token", "conn"]);
    assert_eq!(first.code, EXIT_REAUTHORIZE, "{}", first.err);
    assert_eq!(first.out, "");
    assert!(
        first.err.starts_with(
            "error: the connection must be authorized again (connect again): invalid_grant"
        ),
        "{}",
        first.err
    );
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"refresh_token": 1}})
    );
    let marked = stored(&store);
    let ConnectionState::NeedsReauthorization {
        reason: Reauthorization::RefreshRefused(ref code),
        since,
    } = marked.state
    else {
        panic!(
            "the refused refresh marks the connection: {:?}",
            marked.state
        );
    };
    assert_eq!(code, "invalid_grant");
    // The tokens are kept as they were.
    assert_eq!(marked.tokens, tokens);
    let state = format!(
        "needs re-authorization since {} (the server refused to renew it: invalid_grant)",
        connector_host::cli::format_time(since)
    );

    // The second `token` fails at once: no second refresh request.
    let second = run(&store, &["token", "conn"]);
    assert_eq!(second.code, EXIT_REAUTHORIZE, "{}", second.err);
    assert_eq!(second.out, "");
    assert_eq!(
        second.err,
        format!(
            "error: connection `conn` {state}; no token is used until it is connected again: \
             {FIX}\n"
        )
    );
    let call = run(
        &store,
        &["call", "conn", "GET", &format!("{}/me", server.issuer)],
    );
    assert_eq!(call.code, EXIT_REAUTHORIZE, "{}", call.err);
    assert!(call.err.contains(FIX), "{}", call.err);
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"refresh_token": 1}}),
        "a marked connection sends no refresh"
    );
    let show = run(&store, &["show", "conn"]);
    assert_eq!(
        state_lines(&show.out)[0],
        format!("state:          {state}")
    );
    let list = run(&store, &["list"]);
    assert!(
        list.out
            .starts_with(&format!("{LIST_HEADER}conn\tlocal-oidc\t{state}\t")),
        "{}",
        list.out
    );

    // Connecting again clears the mark, and the new tokens refresh as before.
    let again = connect(&server, &dir.0, &store);
    assert_eq!(again.code, 0, "{}", again.err);
    assert_eq!(stored(&store).state, ConnectionState::Active);
    wait_for_expiry();
    let token = run(&store, &["token", "conn"]);
    assert_eq!(token.code, 0, "{}", token.err);
    assert_eq!(token.out.trim_end(), stored(&store).tokens.access_token);
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 3, "by_grant": {"refresh_token": 2, "authorization_code": 1}})
    );
}
