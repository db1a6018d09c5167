//! `connector-host serve` end to end: the service runs as a process of its own (this test
//! binary started again as a worker that runs the CLI's `serve`, all that `connector-host`'s
//! `main` does; the binary itself belongs to another package, which cargo does not build for
//! this package's tests), against the real authorization server, with the scripted user
//! agent as the end user's browser. Everything talks to 127.0.0.1 only.

use std::collections::BTreeSet;
use std::path::Path;

use connector_host::compile_cache::CACHE_ENV;
use connector_host::store::Store;
use connector_host::types::HttpMethod;
use serde_json::{Value, json};

use crate::connect::cli;
use crate::server::TempDir;
use crate::service::*;

#[test]
fn browser_connect_then_token_and_request_for_its_tenant_only() {
    let server = server_with(&[]);
    let dir = TempDir::new("serve-browser");
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let acme = add_tenant(&store, "acme");
    let beta = add_tenant(&store, "beta");
    let (service, key_file, _) = start_sealed(&dir.0, &store, &[]);

    // No key, a wrong key, a key of the wrong form: 401 with a Bearer challenge.
    for key in [
        None,
        Some("ck_1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        Some("nonsense"),
    ] {
        let response = service.send(HttpMethod::Get, "/v1/integrations", key, None);
        assert_eq!(response.status, 401, "{key:?}");
        assert_eq!(header_of(&response, "www-authenticate"), Some("Bearer"));
        assert_eq!(json_of(&response)["error"]["code"], "unauthorized");
    }

    // An integration by issuer: the secret is never returned.
    let mut integration = create_code_integration(&service, &server, &acme);
    assert!(integration["created_at"].as_str().unwrap().ends_with('Z'));
    integration["created_at"] = Value::Null;
    assert_eq!(
        integration,
        json!({
            "id": "oidc",
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
            "scopes": ["openid", "profile"],
            "params": {},
            "offline": false,
            "dpop": false,
            "resources": [],
            "created_at": null,
        })
    );
    assert!(
        !service
            .send(HttpMethod::Get, "/v1/integrations/oidc", Some(&acme), None)
            .body
            .windows(12)
            .any(|w| w == b"basic-secret")
    );
    let (status, again) = service.api(
        HttpMethod::Post,
        "/v1/integrations",
        &acme,
        Some(json!({"id": "oidc", "issuer": server.issuer, "client_id": "basic-client"})),
    );
    assert_eq!((status, &again["error"]["code"]), (409, &json!("conflict")));

    // The browser signs in and consents; the callback completes the flow.
    server.reset_stats();
    let callback_file = dir.0.join("callback.url");
    let options = format!("--save-callback={}", callback_file.display());
    let said = connect_in_browser(&service, &acme, "conn", None, &options);
    assert!(said.contains("callback /oauth/callback -> 200"), "{said}");
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"authorization_code": 1}}),
        "one code exchange"
    );

    // Replayed: an error page, and no token request.
    let callback = std::fs::read_to_string(&callback_file).unwrap();
    assert!(callback.starts_with(&format!("{}/oauth/callback?", service.base)));
    let replay = service.send(HttpMethod::Get, &callback, None, None);
    assert_eq!(replay.status, 400);
    assert_page_headers(&replay);
    assert!(String::from_utf8_lossy(&replay.body).contains("<h1>Connection failed</h1>"));
    let forged = service.send(
        HttpMethod::Get,
        &format!("/oauth/callback?code=x&state=forged&iss={}", server.issuer),
        None,
        None,
    );
    assert_eq!(forged.status, 400);
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"authorization_code": 1}}),
        "replayed and forged callbacks sent nothing"
    );

    // Listed as valid.
    let (status, listed) = service.api(HttpMethod::Get, "/v1/connections", &acme, None);
    assert_eq!(status, 200);
    let connection = &listed["connections"][0];
    assert_eq!(listed["connections"].as_array().unwrap().len(), 1);
    assert_eq!(connection["id"], "conn");
    assert_eq!(connection["integration"], "oidc");
    assert_eq!(connection["grant"], "authorization-code");
    assert_eq!(connection["status"], "valid");
    assert_eq!(connection["refresh_token"], true);
    assert_eq!(connection["scopes"], json!(["openid", "profile"]));
    assert_eq!(connection["last_refresh"], Value::Null);
    assert_eq!(connection["reauthorization"], Value::Null);
    let (_, shown) = service.api(HttpMethod::Get, "/v1/connections/conn", &acme, None);
    assert_eq!(&shown, connection);

    // A token the server's userinfo accepts, and a proxied call.
    let (status, token) = service.api(HttpMethod::Post, "/v1/connections/conn/token", &acme, None);
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["token_type"], "bearer");
    assert!(token["expires_at"].as_str().unwrap().ends_with('Z'));
    let access = token["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&server, access), (200, ALICE.to_owned()));
    let (status, proxied) = service.api(
        HttpMethod::Post,
        "/v1/connections/conn/request",
        &acme,
        Some(json!({"method": "GET", "url": format!("{}/me", server.issuer)})),
    );
    assert_eq!(status, 200, "{proxied}");
    assert_eq!(proxied["status"], 200);
    assert_eq!(proxied["body"], ALICE);
    // Off the integration's allow-list: refused, nothing sent.
    let (status, refused) = service.api(
        HttpMethod::Post,
        "/v1/connections/conn/request",
        &acme,
        Some(json!({"method": "GET", "url": "http://127.0.0.1:9/elsewhere"})),
    );
    assert_eq!(
        (status, &refused["error"]["code"]),
        (400, &json!("invalid_request"))
    );

    // Another tenant finds none of it.
    for (method, path) in [
        (HttpMethod::Get, "/v1/integrations/oidc"),
        (HttpMethod::Delete, "/v1/integrations/oidc"),
        (HttpMethod::Get, "/v1/connections/conn"),
        (HttpMethod::Post, "/v1/connections/conn/token"),
        (HttpMethod::Delete, "/v1/connections/conn"),
    ] {
        let (status, body) = service.api(method, path, &beta, None);
        assert_eq!(
            (status, &body["error"]["code"]),
            (404, &json!("not_found")),
            "{path}"
        );
    }
    let (status, body) = service.api(
        HttpMethod::Post,
        "/v1/connections/conn/request",
        &beta,
        Some(json!({"method": "GET", "url": "/me"})),
    );
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
    let (status, body) = service.api(
        HttpMethod::Post,
        "/v1/connect-sessions",
        &beta,
        Some(json!({"integration": "oidc", "connection": "conn"})),
    );
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
    assert_eq!(
        service.api(HttpMethod::Get, "/v1/connections", &beta, None),
        (200, json!({"connections": [], "next": null}))
    );
    assert_eq!(
        service.api(HttpMethod::Get, "/v1/integrations", &beta, None),
        (200, json!({"integrations": []}))
    );

    // Revoked (here by the CLI, on the same store): the service says to connect again, and
    // a new connect session does.
    let revoke = cli(
        &[
            "--store",
            &store,
            "--key-file",
            &key_file,
            "revoke",
            "t1:conn",
        ],
        &[],
    );
    assert_eq!(revoke.code, 0, "{}", revoke.err);
    assert_eq!(userinfo(&server, access).0, 401, "revoked at the server");
    let (status, body) = service.api(HttpMethod::Post, "/v1/connections/conn/token", &acme, None);
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("reauthorization_required"))
    );
    let (_, shown) = service.api(HttpMethod::Get, "/v1/connections/conn", &acme, None);
    assert_eq!(shown["status"], "revoked");
    assert_eq!(shown["reauthorization"]["reason"], "revoked");
    let said = connect_in_browser(&service, &acme, "conn", None, "");
    assert!(said.contains("callback /oauth/callback -> 200"), "{said}");
    let (_, shown) = service.api(HttpMethod::Get, "/v1/connections/conn", &acme, None);
    assert_eq!(shown["status"], "valid");
    assert_eq!(shown["reauthorization"], Value::Null);
    let (status, token) = service.api(HttpMethod::Post, "/v1/connections/conn/token", &acme, None);
    assert_eq!(status, 200, "{token}");
    let access = token["access_token"].as_str().unwrap().to_owned();

    // An integration in use is not deleted; the connection is revoked, then removed.
    let (status, body) = service.api(HttpMethod::Delete, "/v1/integrations/oidc", &acme, None);
    assert_eq!((status, &body["error"]["code"]), (409, &json!("conflict")));
    assert_eq!(
        service.api(HttpMethod::Delete, "/v1/connections/conn", &acme, None),
        (200, json!({"removed": true, "revoked": true}))
    );
    assert_eq!(userinfo(&server, &access).0, 401, "revoked at the server");
    let (status, _) = service.api(HttpMethod::Get, "/v1/connections/conn", &acme, None);
    assert_eq!(status, 404);
    let deleted = service.send(
        HttpMethod::Delete,
        "/v1/integrations/oidc",
        Some(&acme),
        None,
    );
    assert_eq!(deleted.status, 204);
}

#[test]
fn client_credentials_and_sixty_four_concurrent_tokens_refresh_once() {
    let server = server_with(&[]);
    let dir = TempDir::new("serve-storm");
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let key = add_tenant(&store, "acme");
    let (service, _, sealing_key) = start_sealed(&dir.0, &store, &[]);

    // Client credentials: connected without a browser.
    create_service_integration(&service, &server, &key);
    let (status, body) = service.api(
        HttpMethod::Post,
        "/v1/connect-sessions",
        &key,
        Some(json!({"integration": "svc", "connection": "x"})),
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("invalid_request"))
    );
    server.reset_stats();
    let (status, created) = service.api(
        HttpMethod::Post,
        "/v1/connections",
        &key,
        Some(json!({"integration": "svc", "connection": "machine"})),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["grant"], "client-credentials");
    assert_eq!(created["integration"], "svc");
    assert_eq!(created["status"], "valid");
    assert_eq!(created["scopes"], json!(["api:read"]));
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"client_credentials": 1}})
    );
    let (status, token) = service.api(
        HttpMethod::Post,
        "/v1/connections/machine/token",
        &key,
        None,
    );
    assert_eq!(status, 200, "{token}");
    let machine_token = token["access_token"].as_str().unwrap().to_owned();

    // A user who denies consent: an error page, no token request, nothing stored.
    create_code_integration(&service, &server, &key);
    server.reset_stats();
    let said = connect_in_browser(&service, &key, "denied", None, "--deny");
    assert!(said.contains("callback /oauth/callback -> 400"), "{said}");
    assert_eq!(server.token_requests()["token_requests"], 0);
    let (status, _) = service.api(HttpMethod::Get, "/v1/connections/denied", &key, None);
    assert_eq!(status, 404);

    // A browser connection whose access token has expired (as if issued with no lifetime).
    // ... ending on the tenant's page (303 to its `return_to`, on the public URL's origin).
    let return_to = format!("{}/done?step=2", service.base);
    let said = connect_in_browser(&service, &key, "conn", Some(&return_to), "");
    assert!(said.contains("callback /oauth/callback -> 303"), "{said}");
    let name = "t1:conn";
    let before = {
        let store = Store::open_sealed(Path::new(&store), sealing_key.clone()).unwrap();
        let mut tokens = store.get(name).unwrap().tokens;
        tokens.expires_at = Some(tokens.obtained_at);
        store.update_tokens(name, &tokens).unwrap();
        store.get(name).unwrap()
    };
    let (_, shown) = service.api(HttpMethod::Get, "/v1/connections/conn", &key, None);
    assert_eq!(shown["status"], "expired-refreshable");
    server.reset_stats();

    // 64 at once: one refresh (the server rotates refresh tokens), 64 successes.
    const CALLERS: usize = 64;
    let barrier = std::sync::Barrier::new(CALLERS);
    let mut released = None;
    let tokens: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    service.api(HttpMethod::Post, "/v1/connections/conn/token", &key, None)
                })
            })
            .collect();
        released = Some(std::time::Instant::now());
        callers.into_iter().map(|c| c.join().unwrap()).collect()
    });
    eprintln!(
        "serve storm: {CALLERS} concurrent /token on an expired connection answered in {:.0} ms",
        released.unwrap().elapsed().as_secs_f64() * 1e3
    );
    let refreshed = the_one_token(&tokens, "serve storm");
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"refresh_token": 1}}),
        "one refresh for {CALLERS} concurrent requests"
    );
    let after = Store::open_sealed(Path::new(&store), sealing_key.clone())
        .unwrap()
        .get(name)
        .unwrap();
    assert_eq!(after.token_writes, before.token_writes + 1);
    assert_ne!(refreshed, before.tokens.access_token);
    assert_eq!(userinfo(&server, refreshed), (200, ALICE.to_owned()));
    let (_, shown) = service.api(HttpMethod::Get, "/v1/connections/conn", &key, None);
    assert_eq!(shown["status"], "valid");
    assert!(shown["last_refresh"].as_str().unwrap().ends_with('Z'));

    // The list, a page at a time (by id): `next` is the id to continue after.
    let page = |query: &str| {
        let (status, body) = service.api(
            HttpMethod::Get,
            &format!("/v1/connections{query}"),
            &key,
            None,
        );
        let ids: Vec<String> = body["connections"]
            .as_array()
            .map(|views| {
                views
                    .iter()
                    .map(|view| view["id"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        (
            status,
            ids,
            body["next"].clone(),
            body["error"]["code"].clone(),
        )
    };
    assert_eq!(
        page(""),
        (
            200,
            vec!["conn".into(), "machine".into()],
            Value::Null,
            Value::Null
        )
    );
    assert_eq!(
        page("?limit=1"),
        (200, vec!["conn".into()], json!("conn"), Value::Null)
    );
    assert_eq!(
        page("?limit=1&after=conn"),
        (200, vec!["machine".into()], Value::Null, Value::Null)
    );
    assert_eq!(
        page("?after=machine"),
        (200, vec![], Value::Null, Value::Null)
    );
    // `after` is only compared: any text, even one no id could be.
    assert_eq!(
        page("?after=a%2Fb"),
        (
            200,
            vec!["conn".into(), "machine".into()],
            Value::Null,
            Value::Null
        )
    );
    let long = format!("?after={}", "x".repeat(1001));
    for refused in [
        "?limit=0",
        "?limit=1001",
        "?limit=x",
        long.as_str(),
        "?page=2",
    ] {
        assert_eq!(
            page(refused),
            (400, vec![], Value::Null, json!("invalid_request")),
            "{refused}"
        );
    }

    // A sign-in begun and not completed: its pending authorization (with the PKCE
    // verifier) is stored until the callback.
    let (status, session) = service.api(
        HttpMethod::Post,
        "/v1/connect-sessions",
        &key,
        Some(json!({"integration": "oidc", "connection": "pending"})),
    );
    assert_eq!(status, 201, "{session}");
    let begin = service.send(
        HttpMethod::Get,
        session["url"].as_str().unwrap(),
        None,
        None,
    );
    assert_eq!(begin.status, 302);
    // The server advertises PAR (RFC 9126): the browser is sent only a reference, and the
    // PKCE challenge went in the pushed request.
    let location = header_of(&begin, "location").unwrap();
    assert!(location.contains("request_uri="), "{location}");
    assert!(!location.contains("code_challenge="), "{location}");
    let pushed = server.get("/__token-requests");
    let push = pushed
        .as_array()
        .unwrap()
        .iter()
        .rfind(|request| request["path"] == "/request")
        .unwrap_or_else(|| panic!("no pushed request: {pushed}"));
    assert_eq!(push["params"]["code_challenge_method"], "S256", "{push}");
    assert_eq!(push["authorization"], "Basic", "{push}");

    // Secrets at rest: neither the store file nor its write-ahead log holds a client
    // secret, an access or refresh token (current or earlier) or a PKCE verifier in clear.
    drop(service);
    let mut raw = std::fs::read(&store).unwrap();
    raw.extend(std::fs::read(format!("{store}-wal")).unwrap_or_default());
    assert!(contains(&raw, &format!("sealed:v1:{}:", sealing_key.id())));
    let mut secrets = vec![
        "service-secret".to_owned(),
        "basic-secret".to_owned(),
        machine_token,
        before.tokens.access_token.clone(),
        after.tokens.access_token.clone(),
        "code_verifier".to_owned(),
        "code-verifier".to_owned(),
    ];
    secrets.extend(before.tokens.refresh_token.clone());
    secrets.extend(after.tokens.refresh_token.clone());
    assert!(before.tokens.refresh_token.is_some());
    for secret in &secrets {
        assert!(!contains(&raw, secret), "{secret} is in the store in clear");
    }

    // Another key: `serve` refuses to start, naming both keys' ids, and changes nothing.
    // (Opened and closed once with its key first, so that the log is folded into the file.)
    drop(Store::open_sealed(Path::new(&store), sealing_key.clone()).unwrap());
    let unchanged = std::fs::read(&store).unwrap();
    let (wrong_file, wrong_key) = new_key(&dir.0, "wrong");
    let cache = dir.0.join("compiled");
    let cache_env = [(CACHE_ENV, cache.to_str().unwrap())];
    let serve = ["serve", "--listen", "127.0.0.1:0"];
    // On a port another socket holds: the key is checked before the port is taken, so the
    // error is the key's, not the port's.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_address = taken.local_addr().unwrap().to_string();
    let wrong = cli(
        &[
            &["--store", &store, "--key-file", &wrong_file][..],
            &["serve", "--listen", &taken_address],
        ]
        .concat(),
        &cache_env,
    );
    drop(taken);
    assert!(!wrong.err.contains("cannot listen"), "{}", wrong.err);
    assert_eq!(wrong.code, 1, "{}", wrong.err);
    assert!(wrong.out.is_empty(), "it never listened: {}", wrong.out);
    assert!(
        wrong.err.contains(sealing_key.id()) && wrong.err.contains(wrong_key.id()),
        "{}",
        wrong.err
    );
    assert_eq!(std::fs::read(&store).unwrap(), unchanged);
    // No key and no --no-encryption: refused (a usage error), naming both ways to give one
    // and how to make one.
    let no_key = cli(&[&["--store", &store][..], &serve].concat(), &cache_env);
    assert_eq!(no_key.code, 2, "{}", no_key.err);
    for named in [
        "--key-file",
        "CONNECTOR_KEY",
        "keys generate",
        "--no-encryption",
    ] {
        assert!(no_key.err.contains(named), "{}", no_key.err);
    }
    assert_eq!(std::fs::read(&store).unwrap(), unchanged);
}

/// A profile object for a server that is never reached.
fn unreachable_profile() -> Value {
    json!({
        "id": "nowhere",
        "authorize-url": "http://127.0.0.1:9/authorize",
        "token-url": "http://127.0.0.1:9/token",
        "api-base-url": "http://127.0.0.1:9/api",
    })
}

#[test]
fn refused_requests_expired_sessions_and_the_openapi_document() {
    let dir = TempDir::new("serve-refusals");
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let key = add_tenant(&store, "acme");
    // Sessions that expire at once.
    let (service, _, _) = start_sealed(
        &dir.0,
        &store,
        &[
            "--session-ttl",
            "0",
            "--return-origin",
            "https://app.example",
        ],
    );
    let (status, body) = service.api(
        HttpMethod::Post,
        "/v1/integrations",
        &key,
        Some(json!({
            "id": "p",
            "profile": unreachable_profile(),
            "client_id": "c",
            "client_auth": "none",
        })),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["client_secret_set"], false);
    assert_eq!(body["api_base_url"], "http://127.0.0.1:9/api");

    // Bad JSON, an unknown field, a wrong type, a missing field, a bad id: 400.
    for body in [
        "{",
        "[]",
        r#"{"integration": "p", "connection": "c", "extra": 1}"#,
        r#"{"integration": "p", "connection": 7}"#,
        r#"{"integration": "p"}"#,
        r#"{"integration": "p", "connection": "a b"}"#,
        r#"{"integration": "p", "connection": "c", "return_to": "https://evil.example/"}"#,
    ] {
        let response = service.send(
            HttpMethod::Post,
            "/v1/connect-sessions",
            Some(&key),
            Some(body),
        );
        assert_eq!(response.status, 400, "{body}");
        assert_eq!(
            json_of(&response)["error"]["code"],
            "invalid_request",
            "{body}"
        );
    }
    // A wrong type's value is not quoted back (it may be a secret).
    let response = service.send(
        HttpMethod::Post,
        "/v1/integrations",
        Some(&key),
        Some(r#"{"id": "q", "provider": "github", "client_id": "c", "client_secret": ["SECRET-VALUE"]}"#),
    );
    assert_eq!(response.status, 400);
    assert!(!String::from_utf8_lossy(&response.body).contains("SECRET-VALUE"));
    // Too large.
    let huge = format!(r#"{{"id": "{}"}}"#, "x".repeat(1 << 20));
    let response = service.send(
        HttpMethod::Post,
        "/v1/integrations",
        Some(&key),
        Some(&huge),
    );
    assert_eq!(response.status, 413);
    assert_eq!(json_of(&response)["error"]["code"], "payload_too_large");

    // An expired connect session: refused with an error page.
    let (status, session) = service.api(
        HttpMethod::Post,
        "/v1/connect-sessions",
        &key,
        Some(
            json!({"integration": "p", "connection": "c", "return_to": "https://app.example/done"}),
        ),
    );
    assert_eq!(status, 201, "{session}");
    let page = service.send(
        HttpMethod::Get,
        session["url"].as_str().unwrap(),
        None,
        None,
    );
    assert_eq!(page.status, 410);
    assert_page_headers(&page);
    // ... and gone.
    let page = service.send(
        HttpMethod::Get,
        session["url"].as_str().unwrap(),
        None,
        None,
    );
    assert_eq!(page.status, 404);

    // The OpenAPI document and the server agree: every documented route answers (not the
    // router's own 404 or 405), every other method on a documented path is 405, and the
    // service's route list is the document's.
    let document: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            let concrete = path.replace("{id}", "p").replace("{token}", "unknown");
            let verb = match method {
                "get" => HttpMethod::Get,
                "post" => HttpMethod::Post,
                "put" => HttpMethod::Put,
                "patch" => HttpMethod::Patch,
                _ => HttpMethod::Delete,
            };
            let body = (method != "get" && method != "delete").then_some("{}");
            let response = service.send(verb, &concrete, Some(&key), body);
            let fallback = response.status == 405
                || (response.status == 404
                    && serde_json::from_slice::<Value>(&response.body)
                        .is_ok_and(|body| body["error"]["message"] == "no such route"));
            if item.get(method).is_some() {
                documented.insert((method.to_ascii_uppercase(), path.clone()));
                assert!(!fallback, "{method} {path} is documented but not served");
            } else {
                assert_eq!(
                    response.status, 405,
                    "{method} {path} is served but not documented"
                );
            }
        }
    }
    let served: BTreeSet<(String, String)> = connector_host::serve::ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(served, documented);
    for path in [
        "/index.html",
        "/v1",
        "/v1/tenants",
        "/v2/integrations",
        "/oauth/other",
    ] {
        let response = service.send(HttpMethod::Get, path, Some(&key), None);
        assert_eq!(response.status, 404, "{path}");
    }
}
