//! Contract 0.3.0 against the real authorization server: a sign-in through a pushed
//! authorization request (RFC 9126), and DPoP-bound connections (RFC 9449): proofs on the
//! code exchange, refresh and API calls, all with the connection's one key; a nonce
//! challenge answered once.

use std::path::Path;

use connector_host::signer::{KeyFileSigner, jwk_thumbprint};
use connector_host::store::Store;
use connector_host::types::{HttpMethod, HttpRequest, KeyValue};
use connector_host::{AllowList, HttpTransport, Limits};
use serde_json::{Value, json};

use crate::client_auth::connect_issuer;
use crate::connect::{Outcome, cli};
use crate::server::{OidcServer, TempDir};

/// `connect NAME --issuer ISSUER --client-id CLIENT --client-secret-env SECRET` plus `extra`.
fn connect_confidential(
    server: &OidcServer,
    store: &str,
    name: &str,
    client: &str,
    secret: &str,
    extra: &[&str],
) -> Outcome {
    let extra = [&["--client-secret-env", "SECRET"], extra].concat();
    connect_issuer(server, store, name, client, &extra, &[("SECRET", secret)])
}

fn records(server: &OidcServer, path: &str) -> Vec<Value> {
    server.get(path).as_array().unwrap().clone()
}

#[test]
fn a_par_client_signs_in_through_a_pushed_request() {
    let (server, dir) = (OidcServer::start(), TempDir::new("par"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let outcome = connect_confidential(&server, &store, "par", "par-client", "par-secret", &[]);
    assert_eq!(outcome.code, 0, "{}", outcome.err);
    let requests = records(&server, "/__token-requests");
    let paths: Vec<&str> = requests
        .iter()
        .map(|request| request["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/request", "/token"]);
    let push = &requests[0];
    assert_eq!(
        (&push["authorization"], &push["dpop"]),
        (&json!("Basic"), &json!(false))
    );
    let mut names: Vec<&String> = push["params"].as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "client_id",
            "code_challenge",
            "code_challenge_method",
            "redirect_uri",
            "response_type",
            "scope",
            "state"
        ]
    );
    let params = &push["params"];
    assert_eq!(
        (
            &params["client_id"],
            &params["response_type"],
            &params["scope"],
            &params["code_challenge_method"]
        ),
        (
            &json!("par-client"),
            &json!("code"),
            &json!("openid"),
            &json!("S256")
        )
    );
    // The code exchange used the redirect URI that was pushed.
    assert_eq!(
        requests[1]["params"]["redirect_uri"],
        params["redirect_uri"]
    );
    assert_eq!(
        requests[1]["params"]["grant_type"],
        json!("authorization_code")
    );
    // The browser saw only `client_id` and `request_uri` (the CLI logs the URL at -vv; the
    // connection's `show` is enough here: the server refuses a plain authorize URL for
    // par-client, so the sign-in could only succeed through the push).
    let stored = Store::open(Path::new(&store)).unwrap().get("par").unwrap();
    assert_eq!(
        stored.config.profile.pushed_authorization_request_url,
        Some(format!("{}/request", server.issuer))
    );
    assert!(stored.tokens.refresh_token.is_some());
}

/// The JWK thumbprint of every proof's header key, in order.
fn proof_thumbprints(proofs: &[Value]) -> Vec<String> {
    proofs
        .iter()
        .map(|proof| jwk_thumbprint(&proof["header"]["jwk"].to_string()).unwrap())
        .collect()
}

#[test]
fn a_dpop_bound_connection_proves_its_key_everywhere() {
    // Long enough that the calls below use the first token without refreshing it first
    // (a 10-second token is refreshed in its last 5 seconds) on a loaded machine; a refresh
    // would bring a nonce from the token endpoint before the resource's challenge.
    const TTL_SECONDS: u64 = 10;
    let (server, dir) = (
        OidcServer::start_with(&[("ACCESS_TOKEN_TTL", &TTL_SECONDS.to_string())]),
        TempDir::new("dpop"),
    );
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let outcome = connect_confidential(
        &server,
        &store,
        "bound",
        "dpop-client",
        "dpop-secret",
        &["--dpop"],
    );
    assert_eq!(outcome.code, 0, "{}", outcome.err);
    let stored = Store::open(Path::new(&store))
        .unwrap()
        .get("bound")
        .unwrap();
    let key = KeyFileSigner::from_pem(stored.secrets.dpop_key.as_deref().unwrap(), None).unwrap();
    let thumbprint = key.thumbprint();
    assert_eq!(
        stored.tokens.dpop_key_thumbprint.as_deref(),
        Some(thumbprint.as_str())
    );
    assert!(stored.tokens.token_type.eq_ignore_ascii_case("dpop"));
    assert!(
        outcome
            .out
            .contains(&format!("dpop:           bound to key {thumbprint}")),
        "{}",
        outcome.out
    );
    // The server bound the token to that key.
    assert_eq!(
        server.introspect(&stored.tokens.access_token)["cnf"]["jkt"],
        json!(thumbprint)
    );

    // An API call carries a proof of the same key, with `ath`.
    let me = format!("{}/me", server.issuer);
    let call = cli(&["--store", &store, "call", "bound", "GET", &me], &[]);
    assert_eq!(call.code, 0, "{}", call.err);
    let proofs = records(&server, "/__dpop");
    let at_me: Vec<&Value> = proofs.iter().filter(|p| p["path"] == "/me").collect();
    assert_eq!(at_me.len(), 1);
    assert_eq!(
        (
            &at_me[0]["method"],
            &at_me[0]["claims"]["htm"],
            &at_me[0]["claims"]["htu"]
        ),
        (&json!("GET"), &json!("GET"), &json!(me))
    );
    assert!(at_me[0]["claims"]["ath"].is_string());
    assert_eq!(at_me[0]["header"]["typ"], json!("dpop+jwt"));
    assert_eq!(at_me[0]["header"]["alg"], json!("ES256"));

    // As a bearer token it is refused.
    let transport = HttpTransport::new(AllowList::from_urls([me.as_str()]), Limits::default());
    let bearer = transport
        .send(HttpRequest {
            method: HttpMethod::Get,
            url: me.clone(),
            headers: vec![KeyValue {
                name: "Authorization".into(),
                value: format!("Bearer {}", stored.tokens.access_token),
            }],
            body: vec![],
        })
        .unwrap();
    assert_eq!(bearer.status, 401);

    // A nonce required: the call is answered once with the nonce, and succeeds.
    server.reset_stats();
    server.post("/__dpop-nonce?required=1");
    let call = cli(&["--store", &store, "call", "bound", "GET", &me], &[]);
    assert_eq!(call.code, 0, "{}", call.err);
    let proofs = records(&server, "/__dpop");
    let at_me: Vec<&Value> = proofs.iter().filter(|p| p["path"] == "/me").collect();
    assert_eq!(at_me.len(), 2, "{proofs:?}");
    assert_eq!(proofs.len(), 2, "no token request: {proofs:?}");
    assert!(at_me[0]["claims"]["nonce"].is_null());
    assert!(at_me[1]["claims"]["nonce"].is_string());
    server.post("/__dpop-nonce?required=0");

    // A refresh keeps the binding: the same key proves it, and the tokens stay DPoP.
    server.reset_stats();
    std::thread::sleep(std::time::Duration::from_millis(TTL_SECONDS * 1000 + 300));
    let token = cli(&["--store", &store, "token", "bound"], &[]);
    assert_eq!(token.code, 0, "{}", token.err);
    let requests = records(&server, "/__token-requests");
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        (&requests[0]["params"]["grant_type"], &requests[0]["dpop"]),
        (&json!("refresh_token"), &json!(true))
    );
    let proofs = records(&server, "/__dpop");
    assert!(!proofs.is_empty());
    assert!(
        proof_thumbprints(&proofs)
            .iter()
            .all(|proof| *proof == thumbprint)
    );
    let refreshed = Store::open(Path::new(&store))
        .unwrap()
        .get("bound")
        .unwrap();
    assert_ne!(refreshed.tokens.access_token, stored.tokens.access_token);
    assert!(refreshed.tokens.token_type.eq_ignore_ascii_case("dpop"));
    assert_eq!(
        refreshed.tokens.dpop_key_thumbprint.as_deref(),
        Some(thumbprint.as_str())
    );
    // `list` says it is bound (the thumbprint is public; the key never shows).
    let list = cli(&["--store", &store, "list"], &[]);
    assert!(
        list.out.contains(&format!("(dpop {thumbprint})")),
        "{}",
        list.out
    );
    assert!(!list.out.contains("PRIVATE KEY") && !list.err.contains("PRIVATE KEY"));
}
