//! `private_key_jwt` in the service end to end: an integration created with the client's
//! private key (PEM text in `POST /v1/integrations`), against the real authorization server's
//! `private_key_jwt` clients (`tests/oidc-server/server.mjs`, keys written to
//! `CLIENT_KEYS_DIR`). The server records every client assertion it receives (`GET
//! /__assertions`): the code exchange, the refreshes of `/token`, `/request` and the
//! keep-alive sweep, client credentials and the revocations of `DELETE` each carry one, signed
//! with the integration's key. The key is never answered, and the store holds it sealed only.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use connector_host::store::{SecretSource, Store};
use connector_host::types::HttpMethod;
use serde_json::{Value, json};

use crate::connect::cli;
use crate::lifecycle::wait_for_expiry;
use crate::server::{OidcServer, TempDir};
use crate::service::*;

/// A server whose `private_key_jwt` clients' keys are written to `dir/keys`, with access
/// tokens that live 2 seconds.
fn jwt_server(dir: &Path) -> OidcServer {
    let keys = dir.join("keys");
    std::fs::create_dir(&keys).unwrap();
    server_with(&[
        ("CLIENT_KEYS_DIR", keys.to_str().unwrap()),
        ("ACCESS_TOKEN_TTL", "2"),
    ])
}

/// The PEM text of the server's key file `name` (`rs256.pem`, `es256.pem`, `eddsa.pem`).
fn key_pem(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join("keys").join(name)).unwrap()
}

/// The assertions the server received, decoded.
fn assertions(server: &OidcServer) -> Vec<Value> {
    server.get("/__assertions").as_array().unwrap().clone()
}

/// (path, grant type, status) of each assertion the server received.
fn assertion_requests(server: &OidcServer) -> Vec<(String, Value, Value)> {
    assertions(server)
        .into_iter()
        .map(|a| {
            (
                a["path"].as_str().unwrap().to_owned(),
                a["grant_type"].clone(),
                a["status"].clone(),
            )
        })
        .collect()
}

/// Every assertion the server received was signed for `client_id` with the key `kid` and
/// algorithm `alg` (RFC 7523 §3): `iss` = `sub` = the client id, `aud` = the token URL,
/// two minutes to live, the jwt-bearer assertion type, and a `jti` of its own.
fn assert_assertions(server: &OidcServer, client_id: &str, alg: &str, kid: &str) {
    let all = assertions(server);
    for assertion in &all {
        assert_eq!(
            assertion["header"],
            json!({"alg": alg, "typ": "JWT", "kid": kid})
        );
        let claims = &assertion["claims"];
        assert_eq!(claims["iss"], json!(client_id));
        assert_eq!(claims["sub"], json!(client_id));
        assert_eq!(claims["aud"], json!(format!("{}/token", server.issuer)));
        let (iat, exp) = (
            claims["iat"].as_u64().unwrap(),
            claims["exp"].as_u64().unwrap(),
        );
        assert_eq!(exp - iat, 120);
        assert_eq!(
            assertion["client_assertion_type"],
            json!("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        );
    }
    let jtis: BTreeSet<&str> = all
        .iter()
        .map(|a| a["claims"]["jti"].as_str().unwrap())
        .collect();
    assert_eq!(jtis.len(), all.len(), "every assertion has its own jti");
}

/// Creates `body`'s integration: its answer (201).
fn create(service: &Service, key: &str, body: Value) -> Value {
    let (status, created) = service.api(HttpMethod::Post, "/v1/integrations", key, Some(body));
    assert_eq!(status, 201, "{created}");
    created
}

/// The integration `oidc` (authorization code) and `svc` (client credentials) of
/// `client_id` with its key; every answer and read-back says the key is set, its algorithm
/// and kid, and holds none of it.
fn create_integrations(
    service: &Service,
    server: &OidcServer,
    key: &str,
    client_id: &str,
    pem: &str,
    (alg, kid): (&str, &str),
) {
    let mut created = create(
        service,
        key,
        json!({
            "id": "oidc",
            "issuer": server.issuer,
            "client_id": client_id,
            "private_key": pem,
            "key_id": kid,
            "scopes": ["openid", "profile"],
        }),
    );
    created["created_at"] = Value::Null;
    assert_eq!(
        created,
        json!({
            "id": "oidc",
            "grant": "authorization-code",
            "source": "issuer",
            "provider": "127.0.0.1",
            "issuer": server.issuer,
            "api_base_url": null,
            "client_id": client_id,
            "client_auth": "private_key_jwt",
            "client_secret_set": false,
            "private_key_set": true,
            "key_algorithm": alg,
            "key_id": kid,
            "scopes": ["openid", "profile"],
            "params": {},
            "offline": false,
            "dpop": false,
            "resources": [],
            "created_at": null,
        })
    );
    let svc = create(
        service,
        key,
        json!({
            "id": "svc",
            "issuer": server.issuer,
            "grant": "client-credentials",
            "client_id": client_id,
            "client_auth": "private_key_jwt",
            "private_key": pem,
            "key_id": kid,
            "scopes": ["api:read"],
        }),
    );
    assert_eq!(
        (
            &svc["client_auth"],
            &svc["private_key_set"],
            &svc["key_algorithm"]
        ),
        (&json!("private_key_jwt"), &json!(true), &json!(alg))
    );
    for path in [
        "/v1/integrations",
        "/v1/integrations/oidc",
        "/v1/integrations/svc",
    ] {
        let answer = service.send(HttpMethod::Get, path, Some(key), None);
        assert_eq!(answer.status, 200, "{path}");
        for line in body_lines(pem) {
            assert!(!contains(&answer.body, line), "{path} answered the key");
        }
    }
    let (_, shown) = service.api(HttpMethod::Get, "/v1/integrations/oidc", key, None);
    assert_eq!(
        (&shown["private_key_set"], &shown["key_id"]),
        (&json!(true), &json!(kid))
    );
}

/// One key type through every use: the code exchange, `/token` and `/request` after expiry,
/// client credentials (fetched, then fetched again after expiry), and revocation on
/// `DELETE`, each with an assertion the server accepted; the stored connection signs with
/// the key stored (sealed) with it.
fn signs_everything(client_id: &str, key_file: &str, kid: &str, alg: &str) {
    let dir = TempDir::new(&format!("serve-jwt-{alg}"));
    let server = jwt_server(&dir.0);
    let pem = key_pem(&dir.0, key_file);
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let acme = add_tenant(&store, "acme");
    let (service, key_file, sealing_key) = start_sealed(&dir.0, &store, &[]);
    create_integrations(&service, &server, &acme, client_id, &pem, (alg, kid));
    assert!(
        assertions(&server).is_empty(),
        "checking the integration sent nothing"
    );

    // Connected through the browser; client credentials without one.
    let said = connect_in_browser(&service, &acme, "conn", None, "");
    assert!(said.contains("callback /oauth/callback -> 200"), "{said}");
    let (status, machine) = service.api(
        HttpMethod::Post,
        "/v1/connections",
        &acme,
        Some(json!({"integration": "svc", "connection": "machine"})),
    );
    assert_eq!(status, 201, "{machine}");
    // (Its access token lives 2 seconds: `expiring-soon` at once.)
    assert_eq!(
        (&machine["grant"], &machine["reauthorization"]),
        (&json!("client-credentials"), &Value::Null)
    );

    // The connection keeps the key, sealed, as its credential: the CLI sees it too.
    let stored = Store::open_sealed(Path::new(&store), sealing_key.clone())
        .unwrap()
        .get("t1:conn")
        .unwrap();
    assert_eq!(
        stored.secret,
        SecretSource::StoredPrivateKey {
            pem: pem.clone(),
            key_id: Some(kid.to_owned())
        }
    );
    let show = cli(
        &[
            "--store",
            &store,
            "--key-file",
            &key_file,
            "show",
            "t1:conn",
        ],
        &[],
    );
    assert_eq!(show.code, 0, "{}", show.err);
    assert!(
        show.out.contains(&format!(
            "client secret:  none; signs with the private key stored with it (kid {kid})"
        )),
        "{}",
        show.out
    );
    assert_not_in_clear(&store, &pem);

    // Expired: `/token` refreshes (authorization code) and fetches again (client
    // credentials), each with an assertion.
    wait_for_expiry();
    for id in ["conn", "machine"] {
        let (status, token) = service.api(
            HttpMethod::Post,
            &format!("/v1/connections/{id}/token"),
            &acme,
            None,
        );
        assert_eq!(status, 200, "{id}: {token}");
        if id == "conn" {
            let access = token["access_token"].as_str().unwrap();
            assert_eq!(userinfo(&server, access), (200, ALICE.to_owned()));
        }
    }
    // Expired again: `/request` refreshes before it calls.
    wait_for_expiry();
    let (status, proxied) = service.api(
        HttpMethod::Post,
        "/v1/connections/conn/request",
        &acme,
        Some(json!({"method": "GET", "url": format!("{}/me", server.issuer)})),
    );
    assert_eq!(status, 200, "{proxied}");
    assert_eq!(
        (&proxied["status"], &proxied["body"]),
        (&json!(200), &json!(ALICE))
    );

    // Removed: revoked at the server first, with assertions.
    for id in ["conn", "machine"] {
        assert_eq!(
            service.api(
                HttpMethod::Delete,
                &format!("/v1/connections/{id}"),
                &acme,
                None
            ),
            (200, json!({"removed": true, "revoked": true})),
            "{id}"
        );
    }

    let ok = |path: &str, grant: Value| (path.to_owned(), grant, json!(200));
    assert_eq!(
        assertion_requests(&server),
        [
            // The pushed authorization request (RFC 9126), authenticated too: 201 Created.
            ("/request".to_owned(), Value::Null, json!(201)),
            ok("/token", json!("authorization_code")),
            ok("/token", json!("client_credentials")),
            ok("/token", json!("refresh_token")),
            ok("/token", json!("client_credentials")),
            ok("/token", json!("refresh_token")),
            ok("/token/revocation", Value::Null),
            ok("/token/revocation", Value::Null),
            ok("/token/revocation", Value::Null),
        ]
    );
    assert_assertions(&server, client_id, alg, kid);

    // At rest: the integration's key sealed, its kid in clear; nowhere in clear in the file
    // or its write-ahead log.
    let db = rusqlite::Connection::open(&store).unwrap();
    let (sealed, stored_kid): (String, String) = db
        .query_row(
            "SELECT private_key, key_id FROM integrations WHERE id = 'oidc'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert!(
        sealed.starts_with(&format!("sealed:v1:{}:", sealing_key.id())),
        "{}",
        &sealed[..20]
    );
    assert_eq!(stored_kid, kid);
    drop(db);
    drop(service);
    assert_not_in_clear(&store, &pem);
}

#[test]
fn an_rs256_key_signs_every_request_of_the_service() {
    signs_everything("rs256-client", "rs256.pem", "rs-1", "RS256");
}

#[test]
fn an_eddsa_key_signs_every_request_of_the_service() {
    signs_everything("eddsa-client", "eddsa.pem", "ed-1", "EdDSA");
}

/// The keep-alive sweep refreshes an idle connection with an assertion too.
#[test]
fn the_keep_alive_sweep_signs_its_refreshes() {
    let dir = TempDir::new("serve-jwt-keepalive");
    let server = jwt_server(&dir.0);
    let pem = key_pem(&dir.0, "es256.pem");
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let acme = add_tenant(&store, "acme");
    let (service, _, _) = start_sealed(
        &dir.0,
        &store,
        &["--keep-alive-interval", "1", "--keep-alive-after", "1"],
    );
    create(
        &service,
        &acme,
        json!({
            "id": "oidc",
            "issuer": server.issuer,
            "client_id": "es256-client",
            "private_key": pem,
            "key_id": "ec-1",
            "scopes": ["openid"],
        }),
    );
    let said = connect_in_browser(&service, &acme, "conn", None, "");
    assert!(said.contains("callback /oauth/callback -> 200"), "{said}");
    // No /token call: the sweep refreshes it (more than once if the test is slow).
    let deadline = Instant::now() + Duration::from_secs(15);
    while !assertion_requests(&server)
        .iter()
        .any(|(_, grant, _)| grant == "refresh_token")
    {
        assert!(Instant::now() < deadline, "no keep-alive refresh");
        std::thread::sleep(Duration::from_millis(100));
    }
    let requests = assertion_requests(&server);
    assert_eq!(
        requests[..2],
        [
            ("/request".to_owned(), Value::Null, json!(201)),
            ("/token".to_owned(), json!("authorization_code"), json!(200))
        ]
    );
    for request in &requests[2..] {
        assert_eq!(
            request,
            &("/token".to_owned(), json!("refresh_token"), json!(200))
        );
    }
    assert_assertions(&server, "es256-client", "ES256", "ec-1");
    // The server answers before the sweep commits: wait for the commit, not the request.
    let shown = loop {
        let (_, shown) = service.api(HttpMethod::Get, "/v1/connections/conn", &acme, None);
        if shown["last_refresh"].is_string() {
            break shown;
        }
        assert!(
            Instant::now() < deadline,
            "the refresh was never committed: {shown}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // Still usable (its access token lives 2 seconds: never `valid` for long).
    assert_eq!(
        (&shown["reauthorization"], &shown["last_error"]),
        (&Value::Null, &Value::Null),
        "{shown}"
    );
    assert!(shown["last_refresh"].as_str().unwrap().ends_with('Z'));
}

/// What cannot work is refused before anything is stored or sent, with exact messages that
/// never quote the key.
#[test]
fn keys_that_cannot_sign_and_methods_without_a_key_are_refused_exactly() {
    let dir = TempDir::new("serve-jwt-refused");
    let server = jwt_server(&dir.0);
    let rsa = key_pem(&dir.0, "rs256.pem");
    let ec = key_pem(&dir.0, "es256.pem");
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let acme = add_tenant(&store, "acme");
    let (service, _, _) = start_sealed(&dir.0, &store, &[]);
    let public_key = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
         -----END PUBLIC KEY-----\n";
    let base = || {
        json!({
            "id": "signed",
            "issuer": server.issuer,
            "client_id": "rs256-client",
        })
    };
    let with = |fields: Value| {
        let mut body = base();
        for (name, value) in fields.as_object().unwrap() {
            body[name] = value.clone();
        }
        body
    };
    let cases = [
        (
            with(json!({"private_key": "hello"})),
            "private_key: the PEM text is not PEM: it has no `-----BEGIN` line",
        ),
        (
            with(json!({"private_key": public_key})),
            "private_key: the PEM text holds no private key: expected `-----BEGIN PRIVATE \
             KEY-----` (PKCS#8) or `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1)",
        ),
        (
            with(json!({"private_key": format!("{rsa}{ec}"), "key_id": "rs-1"})),
            "private_key: the PEM text holds more than one private key; keep only the one to \
             sign with",
        ),
        (
            with(json!({"client_auth": "private_key_jwt"})),
            "client_auth `private_key_jwt` needs the client's key: give `private_key` (a \
             PKCS#8 PEM)",
        ),
        (
            with(json!({"client_auth": "private_key_jwt", "client_secret": "s", "key_id": "rs-1"})),
            "key_id: it is the `kid` of the client's `private_key`; give the key too",
        ),
        (
            with(json!({"private_key": rsa, "client_secret": "s"})),
            "give `client_secret` or `private_key`, not both: a `private_key_jwt` client signs \
             with its key and sends no secret",
        ),
        (
            with(json!({"private_key": rsa, "client_auth": "client_secret_basic"})),
            "private_key: only a `private_key_jwt` client signs with a key, and client_auth is \
             `client_secret_basic`",
        ),
    ];
    for (body, message) in cases {
        let sent = body.to_string();
        let answer = service.send(
            HttpMethod::Post,
            "/v1/integrations",
            Some(&acme),
            Some(&sent),
        );
        assert_eq!(
            (answer.status, json_of(&answer)),
            (
                400,
                json!({"error": {"code": "invalid_request", "message": message}})
            ),
            "{message}"
        );
        for line in body_lines(&rsa).into_iter().chain(body_lines(&ec)) {
            assert!(!contains(&answer.body, line), "the key was quoted back");
        }
    }
    // Nothing was stored, and the server heard of none of it.
    assert_eq!(
        service.api(HttpMethod::Get, "/v1/integrations", &acme, None),
        (200, json!({"integrations": []}))
    );
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 0, "by_grant": {}})
    );
    assert!(assertions(&server).is_empty());
}
