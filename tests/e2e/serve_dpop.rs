//! DPoP-bound connections (RFC 9449) and resource indicators (RFC 8707) in the service end to
//! end, against the real authorization server's `dpop-client`, whose tokens must be
//! DPoP-bound (`tests/oidc-server/server.mjs`; `GET /__dpop` lists every proof it received).
//! A connect session of a DPoP integration gets its connection's key when it is made, kept
//! sealed in the session's row; the pushed request names it (`dpop_jkt`), the code exchange
//! and every call and refresh (the keep-alive sweep's too) prove it, and the connection
//! keeps it. `/token` never hands out such a token; `/request` calls with proofs the service
//! signs. The same on a PostgreSQL fleet, where one replica makes the session and another
//! finishes it; a session never finished goes with its key; client-credentials connections
//! get keys of their own. Resources are checked (a `400` naming the entry), stored and shown.

use std::path::Path;
use std::time::{Duration, Instant};

use connector_host::seal::SealingKey;
use connector_host::signer::{KeyFileSigner, jwk_thumbprint};
use connector_host::store::Store;
use connector_host::types::HttpMethod;
use serde_json::{Value, json};

use crate::server::{OidcServer, TempDir};
use crate::service::*;

/// How long the server's access tokens live: long enough that the first calls use the first
/// token without refreshing it on a loaded machine (a token is refreshed in its last 5
/// seconds).
const TTL_SECONDS: u64 = 10;

fn records(server: &OidcServer, path: &str) -> Vec<Value> {
    server.get(path).as_array().unwrap().clone()
}

/// (path, JWK thumbprint of the proof's key) of every DPoP proof the server received.
fn proofs(server: &OidcServer) -> Vec<(String, String)> {
    records(server, "/__dpop")
        .iter()
        .map(|proof| {
            (
                proof["path"].as_str().unwrap().to_owned(),
                jwk_thumbprint(&proof["header"]["jwk"].to_string()).unwrap(),
            )
        })
        .collect()
}

/// Creates `body`'s integration: (status, answer).
fn create(service: &Service, key: &str, body: Value) -> (u16, Value) {
    let (status, mut created) = service.api(HttpMethod::Post, "/v1/integrations", key, Some(body));
    if status == 201 {
        assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
        created["created_at"] = Value::Null;
    }
    (status, created)
}

#[test]
fn resources_are_checked_stored_and_shown() {
    let (server, dir) = (server_with(&[]), TempDir::new("serve-resources"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let acme = add_tenant(&store, "acme");
    let (service, _, _) = start_sealed(&dir.0, &store, &[]);
    let api = format!("{}/api", server.issuer);
    let integration = |id: &str, resources: Value| {
        json!({
            "id": id,
            "issuer": server.issuer,
            "client_id": "basic-client",
            "client_secret": "basic-secret",
            "resources": resources,
        })
    };
    let message = |index: usize| {
        format!(
            "resources[{index}]: give an absolute URI without a fragment (RFC 8707 §2), such \
             as `https://api.example.com/`"
        )
    };
    for (resources, index) in [
        (json!([api, "https://api.example/#part"]), 1),
        (json!(["api"]), 0),
        (json!(["/relative/path"]), 0),
        (json!([api, api, "https://api.example/a b"]), 2),
        (json!(["https://api.example/#"]), 0),
    ] {
        assert_eq!(
            create(&service, &acme, integration("bad", resources.clone())),
            (
                400,
                json!({"error": {"code": "invalid_request", "message": message(index)}})
            ),
            "{resources}"
        );
    }
    // Refused before anything was stored.
    assert_eq!(
        service.api(HttpMethod::Get, "/v1/integrations", &acme, None),
        (200, json!({"integrations": []}))
    );

    let expected = json!({
        "id": "api",
        "grant": "authorization-code",
        "source": "issuer",
        "provider": "127.0.0.1",
        "issuer": server.issuer,
        "api_base_url": null,
        "client_id": "basic-client",
        "client_auth": "client_secret_basic",
        "client_secret_set": true,
        "private_key_set": false,
        "key_algorithm": null,
        "key_id": null,
        "scopes": [],
        "params": {},
        "offline": false,
        "dpop": false,
        "resources": [api],
        "created_at": null,
    });
    assert_eq!(
        create(&service, &acme, integration("api", json!([api]))),
        (201, expected.clone())
    );
    let (status, mut shown) = service.api(HttpMethod::Get, "/v1/integrations/api", &acme, None);
    shown["created_at"] = Value::Null;
    assert_eq!((status, shown), (200, expected));
}

#[test]
fn a_dpop_integration_binds_each_connection_to_a_key_the_service_holds() {
    let (server, dir) = (
        server_with(&[("ACCESS_TOKEN_TTL", &TTL_SECONDS.to_string())]),
        TempDir::new("serve-dpop"),
    );
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let acme = add_tenant(&store, "acme");
    let (service, _, sealing_key) = start_sealed(&dir.0, &store, &[]);

    // The integration says it is DPoP-bound; checking it sent nothing.
    assert_eq!(
        create(
            &service,
            &acme,
            json!({
                "id": "oidc",
                "issuer": server.issuer,
                "client_id": "dpop-client",
                "client_secret": "dpop-secret",
                "scopes": ["openid", "profile"],
                "dpop": true,
            })
        ),
        (
            201,
            json!({
                "id": "oidc",
                "grant": "authorization-code",
                "source": "issuer",
                "provider": "127.0.0.1",
                "issuer": server.issuer,
                "api_base_url": null,
                "client_id": "dpop-client",
                "client_auth": "client_secret_basic",
                "client_secret_set": true,
                "private_key_set": false,
                "key_algorithm": null,
                "key_id": null,
                "scopes": ["openid", "profile"],
                "params": {},
                "offline": false,
                "dpop": true,
                "resources": [],
                "created_at": null,
            })
        )
    );
    assert_eq!(proofs(&server), []);

    // A connect session holds its connection's key from the start, sealed.
    let (status, session) = service.api(
        HttpMethod::Post,
        "/v1/connect-sessions",
        &acme,
        Some(json!({"integration": "oidc", "connection": "conn"})),
    );
    assert_eq!(status, 201, "{session}");
    let db = rusqlite::Connection::open(&store).unwrap();
    let pending: String = db
        .query_row("SELECT pending FROM connect_sessions", [], |row| row.get(0))
        .unwrap();
    assert!(
        pending.starts_with(&format!("sealed:v1:{}:", sealing_key.id())),
        "{}",
        &pending[..20]
    );
    drop(db);
    let raw = std::fs::read(&store).unwrap();
    assert!(!contains(&raw, "PRIVATE KEY"));

    // Signed in: the pushed request names the key, the code exchange proves it.
    let said = follow_connect_url(&service, session["url"].as_str().unwrap(), "");
    assert!(said.contains("callback /oauth/callback -> 200"), "{said}");
    let stored = Store::open_sealed(Path::new(&store), sealing_key.clone())
        .unwrap()
        .get("t1:conn")
        .unwrap();
    let pem = stored.secrets.dpop_key.clone().unwrap();
    let thumbprint = KeyFileSigner::from_pem(&pem, None).unwrap().thumbprint();
    assert_eq!(
        stored.tokens.dpop_key_thumbprint.as_deref(),
        Some(thumbprint.as_str())
    );
    assert!(stored.tokens.token_type.eq_ignore_ascii_case("dpop"));
    assert_eq!(
        server.introspect(&stored.tokens.access_token)["cnf"]["jkt"],
        json!(thumbprint)
    );
    let requests = records(&server, "/__token-requests");
    let shape: Vec<(&Value, &Value, &Value)> = requests
        .iter()
        .map(|r| (&r["path"], &r["params"]["grant_type"], &r["dpop"]))
        .collect();
    assert_eq!(
        shape,
        [
            (&json!("/request"), &Value::Null, &json!(false)),
            (&json!("/token"), &json!("authorization_code"), &json!(true)),
        ]
    );
    assert_eq!(requests[0]["params"]["dpop_jkt"], json!(thumbprint));
    let signed = |path: &str| (path.to_owned(), thumbprint.clone());
    assert_eq!(proofs(&server), [signed("/token")]);
    // The session went with its key; the connection keeps it sealed only.
    let db = rusqlite::Connection::open(&store).unwrap();
    let sessions: i64 = db
        .query_row("SELECT count(*) FROM connect_sessions", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(sessions, 0);
    drop(db);
    assert_not_in_clear(&store, &pem);

    // Its view shows the key's (public) thumbprint. (A 10-second token expires within the
    // 300 seconds of `expiring-soon`.)
    let (status, shown) = service.api(HttpMethod::Get, "/v1/connections/conn", &acme, None);
    assert_eq!(status, 200, "{shown}");
    assert_eq!(
        (
            &shown["integration"],
            &shown["grant"],
            &shown["status"],
            &shown["reauthorization"],
            &shown["dpop_key_thumbprint"]
        ),
        (
            &json!("oidc"),
            &json!("authorization-code"),
            &json!("expiring-soon"),
            &Value::Null,
            &json!(thumbprint)
        )
    );
    // Listed the same way.
    let (status, listed) = service.api(HttpMethod::Get, "/v1/connections", &acme, None);
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["connections"][0]["dpop_key_thumbprint"],
        json!(thumbprint)
    );

    // `/token` hands out no token its caller could not use.
    assert_eq!(
        service.api(HttpMethod::Post, "/v1/connections/conn/token", &acme, None),
        (
            409,
            json!({"error": {
                "code": "dpop_bound",
                "message": "connection `conn` is DPoP-bound (RFC 9449): its access token \
                            works only with proofs signed by a key the service holds; call \
                            the API through the service instead: POST \
                            /v1/connections/conn/request",
            }})
        )
    );

    // `/request` calls with a proof of the connection's key.
    let me = format!("{}/me", server.issuer);
    let call = json!({"method": "GET", "url": me});
    let (status, proxied) = service.api(
        HttpMethod::Post,
        "/v1/connections/conn/request",
        &acme,
        Some(call.clone()),
    );
    assert_eq!(status, 200, "{proxied}");
    assert_eq!(
        (&proxied["status"], &proxied["body"]),
        (&json!(200), &json!(ALICE))
    );
    let at_me: Vec<Value> = records(&server, "/__dpop")
        .into_iter()
        .filter(|proof| proof["path"] == "/me")
        .collect();
    assert_eq!(at_me.len(), 1, "{at_me:?}");
    assert_eq!(
        (
            &at_me[0]["claims"]["htm"],
            &at_me[0]["claims"]["htu"],
            &at_me[0]["header"]["alg"]
        ),
        (&json!("GET"), &json!(me), &json!("ES256"))
    );
    assert!(at_me[0]["claims"]["ath"].is_string());
    assert_eq!(proofs(&server), [signed("/token"), signed("/me")]);

    // A nonce required (RFC 9449 §9): the call is answered once with the nonce and sent
    // again with it, signed by the same key; no token request.
    server.reset_stats();
    server.post("/__dpop-nonce?required=1");
    let (status, proxied) = service.api(
        HttpMethod::Post,
        "/v1/connections/conn/request",
        &acme,
        Some(call.clone()),
    );
    server.post("/__dpop-nonce?required=0");
    assert_eq!(
        (status, &proxied["status"], &proxied["body"]),
        (200, &json!(200), &json!(ALICE)),
        "{proxied}"
    );
    let nonces: Vec<bool> = records(&server, "/__dpop")
        .iter()
        .map(|proof| proof["claims"]["nonce"].is_string())
        .collect();
    assert_eq!(nonces, [false, true]);
    assert_eq!(proofs(&server), [signed("/me"), signed("/me")]);

    // Expired: `/request` refreshes first, with a proof of the same key, and the new token
    // is bound to it too.
    server.reset_stats();
    std::thread::sleep(std::time::Duration::from_millis(TTL_SECONDS * 1000 + 300));
    let (status, proxied) = service.api(
        HttpMethod::Post,
        "/v1/connections/conn/request",
        &acme,
        Some(call),
    );
    assert_eq!(status, 200, "{proxied}");
    assert_eq!(proxied["status"], json!(200));
    assert_eq!(proofs(&server), [signed("/token"), signed("/me")]);
    let refreshed = Store::open_sealed(Path::new(&store), sealing_key)
        .unwrap()
        .get("t1:conn")
        .unwrap();
    assert_ne!(refreshed.tokens.access_token, stored.tokens.access_token);
    assert_eq!(
        server.introspect(&refreshed.tokens.access_token)["cnf"]["jkt"],
        json!(thumbprint)
    );
    assert_eq!(refreshed.secrets.dpop_key.as_deref(), Some(pem.as_str()));
    drop(service);
    assert_not_in_clear(&store, &pem);
}

/// Creates the DPoP integration `oidc` (dpop-client).
fn create_dpop_integration(service: &Service, server: &OidcServer, key: &str) {
    let (status, created) = create(
        service,
        key,
        json!({
            "id": "oidc",
            "issuer": server.issuer,
            "client_id": "dpop-client",
            "client_secret": "dpop-secret",
            "scopes": ["openid", "profile"],
            "dpop": true,
        }),
    );
    assert_eq!((status, &created["dpop"]), (201, &json!(true)), "{created}");
}

/// The stored connection `t1:NAME`'s DPoP key's thumbprint and access token.
fn stored_binding(store: &str, sealing_key: &SealingKey, name: &str) -> (String, String) {
    let stored = Store::open_sealed(Path::new(store), sealing_key.clone())
        .unwrap()
        .get(name)
        .unwrap();
    let key = KeyFileSigner::from_pem(stored.secrets.dpop_key.as_deref().unwrap(), None).unwrap();
    (key.thumbprint(), stored.tokens.access_token)
}

#[test]
fn keep_alive_refreshes_keep_the_binding() {
    let (server, dir) = (server_with(&[]), TempDir::new("serve-dpop-keepalive"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let acme = add_tenant(&store, "acme");
    let (service, _, sealing_key) = start_sealed(
        &dir.0,
        &store,
        &["--keep-alive-interval", "1", "--keep-alive-after", "1"],
    );
    create_dpop_integration(&service, &server, &acme);
    let said = connect_in_browser(&service, &acme, "conn", None, "");
    assert!(said.contains("callback /oauth/callback -> 200"), "{said}");
    let (thumbprint, first_token) = stored_binding(&store, &sealing_key, "t1:conn");
    server.reset_stats();

    // Refreshed in the background, with no call: each refresh proves the connection's key.
    let deadline = Instant::now() + Duration::from_secs(15);
    let refreshes = loop {
        let refreshes: Vec<Value> = records(&server, "/__token-requests")
            .into_iter()
            .filter(|request| request["params"]["grant_type"] == "refresh_token")
            .collect();
        if !refreshes.is_empty() {
            break refreshes;
        }
        assert!(Instant::now() < deadline, "no keep-alive refresh");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        refreshes
            .iter()
            .all(|request| request["dpop"] == json!(true)),
        "{refreshes:?}"
    );
    let signed = proofs(&server);
    assert!(!signed.is_empty());
    assert!(
        signed
            .iter()
            .all(|(path, key)| path == "/token" && *key == thumbprint),
        "{signed:?}"
    );
    // Wait for the refresh to be stored (the server answered; the sweep commits after).
    let deadline = Instant::now() + Duration::from_secs(5);
    let token = loop {
        let (now_bound_to, token) = stored_binding(&store, &sealing_key, "t1:conn");
        assert_eq!(now_bound_to, thumbprint, "the key is kept");
        if token != first_token {
            break token;
        }
        assert!(Instant::now() < deadline, "the refresh was not stored");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(server.introspect(&token)["cnf"]["jkt"], json!(thumbprint));

    // Still used through the service, with proofs of the same key.
    let (status, proxied) = service.api(
        HttpMethod::Post,
        "/v1/connections/conn/request",
        &acme,
        Some(json!({"method": "GET", "url": format!("{}/me", server.issuer)})),
    );
    assert_eq!(status, 200, "{proxied}");
    assert_eq!(proxied["status"], json!(200), "{proxied}");
}

#[test]
fn an_abandoned_session_goes_with_its_key() {
    let (server, dir) = (server_with(&[]), TempDir::new("serve-dpop-expiry"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let acme = add_tenant(&store, "acme");
    let (service, _, sealing_key) = start_sealed(&dir.0, &store, &["--session-ttl", "1"]);
    create_dpop_integration(&service, &server, &acme);
    let session = |connection: &str| {
        let (status, session) = service.api(
            HttpMethod::Post,
            "/v1/connect-sessions",
            &acme,
            Some(json!({"integration": "oidc", "connection": connection})),
        );
        assert_eq!(status, 201, "{session}");
        session["url"].as_str().unwrap().to_owned()
    };
    let sessions = || -> Vec<(String, String)> {
        let db = rusqlite::Connection::open(&store).unwrap();
        let mut statement = db
            .prepare("SELECT connection, pending FROM connect_sessions ORDER BY connection")
            .unwrap();
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let abandoned = session("first");
    let kept = sessions();
    assert_eq!(kept.len(), 1);
    assert!(
        kept[0]
            .1
            .starts_with(&format!("sealed:v1:{}:", sealing_key.id())),
        "the key is sealed"
    );

    // Expired: the next session sweeps it, key and all; its link is gone.
    std::thread::sleep(Duration::from_millis(2100));
    session("second");
    let left = sessions();
    assert_eq!(
        left.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
        ["second"]
    );
    assert_ne!(left[0].1, kept[0].1, "a key of its own");
    let opened = service.send(HttpMethod::Get, &abandoned, None, None);
    assert_eq!(opened.status, 404);
}

#[test]
fn on_postgresql_a_session_made_on_one_replica_is_finished_by_another_with_its_key() {
    let server = server_with(&[]);
    let cluster = crate::postgres::PgCluster::start();
    let dir = TempDir::new("serve-dpop-pg");
    let store = cluster.url();
    let acme = add_tenant(&store, "acme");
    let (key_file, sealing_key) = new_key(&dir.0, "key");
    let replica = || {
        Service::start(
            &store,
            &dir.0.join("compiled"),
            &["--key-file", key_file.as_str()],
        )
    };
    let (first, second) = (replica(), replica());
    create_dpop_integration(&first, &server, &acme);

    // Made on the first replica: its key is in the database, sealed.
    let (status, session) = first.api(
        HttpMethod::Post,
        "/v1/connect-sessions",
        &acme,
        Some(json!({"integration": "oidc", "connection": "conn"})),
    );
    assert_eq!(status, 201, "{session}");
    let pending = cluster.psql("SELECT pending FROM connect_sessions");
    assert!(
        pending.starts_with(&format!("sealed:v1:{}:", sealing_key.id())),
        "{pending}"
    );
    assert!(!pending.contains("PRIVATE KEY"));

    // Opened and finished on the second (its own callback URL).
    let url = session["url"].as_str().unwrap();
    let path = &url[url.find("/connect/").unwrap()..];
    let said = follow_connect_url(&second, &format!("{}{path}", second.base), "");
    assert!(said.contains("callback /oauth/callback -> 200"), "{said}");
    assert_eq!(cluster.psql("SELECT count(*) FROM connect_sessions"), "0\n");
    let (thumbprint, token) = stored_binding(&store, &sealing_key, "t1:conn");
    assert_eq!(server.introspect(&token)["cnf"]["jkt"], json!(thumbprint));
    let requests = records(&server, "/__token-requests");
    assert_eq!(requests[0]["params"]["dpop_jkt"], json!(thumbprint));
    assert_eq!(proofs(&server), [("/token".to_owned(), thumbprint.clone())]);

    // Either replica: `/token` refuses, `/request` proves the key.
    for replica in [&first, &second] {
        let (status, refused) =
            replica.api(HttpMethod::Post, "/v1/connections/conn/token", &acme, None);
        assert_eq!(
            (status, &refused["error"]["code"]),
            (409, &json!("dpop_bound")),
            "{refused}"
        );
        let (status, proxied) = replica.api(
            HttpMethod::Post,
            "/v1/connections/conn/request",
            &acme,
            Some(json!({"method": "GET", "url": format!("{}/me", server.issuer)})),
        );
        assert_eq!(
            (status, &proxied["status"]),
            (200, &json!(200)),
            "{proxied}"
        );
    }
    assert!(proofs(&server).iter().all(|(_, key)| *key == thumbprint));
    let (status, shown) = second.api(HttpMethod::Get, "/v1/connections/conn", &acme, None);
    assert_eq!(
        (status, &shown["dpop_key_thumbprint"]),
        (200, &json!(thumbprint))
    );
}

#[test]
fn a_client_credentials_connection_gets_a_key_of_its_own_too() {
    let (server, dir) = (server_with(&[]), TempDir::new("serve-dpop-machine"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let acme = add_tenant(&store, "acme");
    let (service, _, sealing_key) = start_sealed(&dir.0, &store, &[]);
    let (status, created) = create(
        &service,
        &acme,
        json!({
            "id": "svc",
            "issuer": server.issuer,
            "grant": "client-credentials",
            "client_id": "service-client",
            "client_secret": "service-secret",
            "scopes": ["api:read"],
            "dpop": true,
        }),
    );
    assert_eq!((status, &created["dpop"]), (201, &json!(true)), "{created}");
    let mut thumbprints = Vec::new();
    for id in ["one", "two"] {
        let (status, connection) = service.api(
            HttpMethod::Post,
            "/v1/connections",
            &acme,
            Some(json!({"integration": "svc", "connection": id})),
        );
        assert_eq!(status, 201, "{connection}");
        let (thumbprint, token) = stored_binding(&store, &sealing_key, &format!("t1:{id}"));
        assert_eq!(connection["dpop_key_thumbprint"], json!(thumbprint));
        assert_eq!(server.introspect(&token)["cnf"]["jkt"], json!(thumbprint));
        let (status, refused) = service.api(
            HttpMethod::Post,
            &format!("/v1/connections/{id}/token"),
            &acme,
            None,
        );
        assert_eq!(
            (status, &refused["error"]["code"]),
            (409, &json!("dpop_bound")),
            "{refused}"
        );
        thumbprints.push(thumbprint);
    }
    assert_ne!(thumbprints[0], thumbprints[1], "a key per connection");
    let signed = proofs(&server);
    assert_eq!(
        signed,
        thumbprints
            .iter()
            .map(|thumbprint| ("/token".to_owned(), thumbprint.clone()))
            .collect::<Vec<_>>()
    );
}
