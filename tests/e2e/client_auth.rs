//! Client authentication per client against the real authorization server: a public
//! client and a `client_secret_post` client found through `--issuer`, the device grant with
//! a public client, `private_key_jwt` (RS256, ES256, EdDSA) and `client_secret_jwt` for the
//! code exchange, refresh, client credentials and revocation; configuration errors found
//! before any browser opens; and a connection without a refresh token.

use std::path::Path;

use connector_host::cli::EXIT_REAUTHORIZE;
use connector_host::store::{SecretSource, Store};
use connector_host::types::ClientAuthMethod;
use serde_json::{Value, json};

use crate::connect::{Outcome, cli};
use crate::lifecycle::wait_for_expiry;
use crate::server::{OidcServer, TempDir, user_agent};

/// `connect NAME --issuer ISSUER --client-id CLIENT` plus `extra`, signing in through the
/// scripted user agent.
pub fn connect_issuer(
    server: &OidcServer,
    store: &str,
    name: &str,
    client_id: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Outcome {
    let browser = user_agent("");
    let mut args = vec![
        "--store",
        store,
        "connect",
        name,
        "--issuer",
        &server.issuer,
        "--client-id",
        client_id,
        "--scope",
        "openid",
        "--redirect-uri",
        "http://127.0.0.1:0/callback",
        "--browser",
        &browser,
        "--timeout",
        "60",
    ];
    args.extend_from_slice(extra);
    cli(&args, env)
}

/// `connect NAME --grant client-credentials` with the profile from `source` (`--issuer URL`
/// or `--profile FILE`) for `client_id`, plus `extra`.
pub fn connect_client_credentials(
    store: &str,
    name: &str,
    source: [&str; 2],
    client_id: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Outcome {
    let mut args = vec![
        "--store",
        store,
        "connect",
        name,
        "--grant",
        "client-credentials",
        source[0],
        source[1],
        "--client-id",
        client_id,
    ];
    args.extend_from_slice(extra);
    cli(&args, env)
}

fn stored(store: &str, name: &str) -> connector_host::store::StoredConnection {
    Store::open(Path::new(store)).unwrap().get(name).unwrap()
}

/// The `client auth:` line of `show`.
fn shown_client_auth(store: &str, name: &str) -> String {
    let show = cli(&["--store", store, "show", name], &[]);
    assert_eq!(show.code, 0, "{}", show.err);
    show.out
        .lines()
        .find(|line| line.starts_with("client auth:"))
        .expect("show prints the client auth method")
        .to_owned()
}

/// The assertions the server received, decoded.
fn assertions(server: &OidcServer) -> Vec<Value> {
    server.get("/__assertions").as_array().unwrap().clone()
}

#[test]
fn a_public_client_connects_through_the_issuer_with_none() {
    let (server, dir) = (OidcServer::start(), TempDir::new("public-issuer"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let outcome = connect_issuer(&server, &store, "pub", "public-client", &[], &[]);
    assert_eq!(outcome.code, 0, "{}", outcome.err);
    let connection = stored(&store, "pub");
    assert_eq!(
        connection.config.client.auth_method,
        Some(ClientAuthMethod::None)
    );
    // The server's metadata still names its own default for confidential clients.
    assert_eq!(
        connection.config.profile.client_auth,
        ClientAuthMethod::ClientSecretBasic
    );
    assert_eq!(connection.secret, SecretSource::None);
    assert!(connection.tokens.refresh_token.is_some());
    assert_eq!(
        server.introspect(&connection.tokens.access_token)["client_id"],
        json!("public-client")
    );
    assert_eq!(shown_client_auth(&store, "pub"), "client auth:    none");
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"authorization_code": 1}})
    );
}

#[test]
fn a_client_secret_post_client_connects_through_the_issuer() {
    let (server, dir) = (OidcServer::start(), TempDir::new("post-issuer"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let outcome = connect_issuer(
        &server,
        &store,
        "post",
        "post-client",
        &[
            "--client-secret-env",
            "SECRET",
            "--client-auth",
            "client-secret-post",
        ],
        &[("SECRET", "post-secret")],
    );
    assert_eq!(outcome.code, 0, "{}", outcome.err);
    assert_eq!(
        stored(&store, "post").config.client.auth_method,
        Some(ClientAuthMethod::ClientSecretPost)
    );
    assert_eq!(
        shown_client_auth(&store, "post"),
        "client auth:    client_secret_post"
    );
    // The secret went in the body (RFC 6749 §2.3.1), where the server records it.
    assert!(
        server.credentials().iter().any(|c| c == "post-secret"),
        "client_secret was sent in the form body"
    );
}

#[test]
fn the_device_grant_with_a_public_client_through_the_issuer() {
    let (server, dir) = (OidcServer::start(), TempDir::new("device-issuer"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let browser = user_agent("");
    let outcome = cli(
        &[
            "--store",
            &store,
            "connect",
            "tv",
            "--grant",
            "device",
            "--issuer",
            &server.issuer,
            "--client-id",
            "device-client",
            "--scope",
            "openid",
            "--browser",
            &browser,
            "--timeout",
            "60",
        ],
        &[],
    );
    assert_eq!(outcome.code, 0, "{}", outcome.err);
    let connection = stored(&store, "tv");
    assert_eq!(
        connection.config.client.auth_method,
        Some(ClientAuthMethod::None)
    );
    assert_eq!(
        server.introspect(&connection.tokens.access_token)["active"],
        json!(true)
    );
}

/// `private_key_jwt` with one key type, for every request the connection makes: the code
/// exchange, a refresh, client credentials and revocation, each verified by the server.
fn private_key_jwt(client_id: &str, key_file: &str, kid: &str, alg: &str) {
    let dir = TempDir::new(&format!("pkjwt-{alg}"));
    let keys = dir.0.join("keys");
    std::fs::create_dir(&keys).unwrap();
    let server = OidcServer::start_with(&[
        ("CLIENT_KEYS_DIR", keys.to_str().unwrap()),
        ("ACCESS_TOKEN_TTL", "2"),
    ]);
    let key = keys.join(key_file);
    let key = key.to_str().unwrap();
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let connect = connect_issuer(
        &server,
        &store,
        "signed",
        client_id,
        &["--private-key", key, "--key-id", kid],
        &[],
    );
    assert_eq!(connect.code, 0, "{}", connect.err);
    let connection = stored(&store, "signed");
    assert_eq!(
        connection.config.client.auth_method,
        Some(ClientAuthMethod::PrivateKeyJwt)
    );
    assert_eq!(
        connection.secret,
        SecretSource::PrivateKey {
            path: key.into(),
            key_id: Some(kid.into())
        }
    );
    let show = cli(&["--store", &store, "show", "signed"], &[]);
    assert!(
        show.out.contains(&format!(
            "client secret:  none; signs with the private key {key} (kid {kid})"
        )),
        "{}",
        show.out
    );
    assert!(show.out.contains("client auth:    private_key_jwt"));

    wait_for_expiry();
    let token = cli(&["--store", &store, "token", "signed"], &[]);
    assert_eq!(token.code, 0, "{}", token.err);
    assert!(
        token.err.starts_with("refreshed the tokens"),
        "{}",
        token.err
    );

    let service = connect_client_credentials(
        &store,
        "svc",
        ["--issuer", &server.issuer],
        client_id,
        &["--private-key", key, "--key-id", kid, "--scope", "api:read"],
        &[],
    );
    assert_eq!(service.code, 0, "{}", service.err);
    let revoke = cli(&["--store", &store, "revoke", "signed"], &[]);
    assert_eq!(revoke.code, 0, "{}", revoke.err);

    let issuer = &server.issuer;
    let seen: Vec<(String, Value, Value, Value)> = assertions(&server)
        .into_iter()
        .map(|a| {
            (
                a["path"].as_str().unwrap().to_owned(),
                a["grant_type"].clone(),
                a["status"].clone(),
                a["header"].clone(),
            )
        })
        .collect();
    let header = json!({"alg": alg, "typ": "JWT", "kid": kid});
    // The server advertises a pushed-authorization endpoint, so the sign-in pushes first
    // (RFC 9126 §2.1: with client authentication; 201 Created).
    assert_eq!(
        seen,
        [
            ("/request", Value::Null, 201),
            ("/token", json!("authorization_code"), 200),
            ("/token", json!("refresh_token"), 200),
            ("/token", json!("client_credentials"), 200),
            ("/token/revocation", Value::Null, 200),
            ("/token/revocation", Value::Null, 200),
        ]
        .map(|(path, grant, status)| (
            path.to_owned(),
            grant,
            json!(status),
            header.clone()
        ))
    );
    for assertion in assertions(&server) {
        let claims = &assertion["claims"];
        assert_eq!(claims["iss"], json!(client_id));
        assert_eq!(claims["sub"], json!(client_id));
        assert_eq!(claims["aud"], json!(format!("{issuer}/token")));
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
    let jtis: std::collections::BTreeSet<String> = assertions(&server)
        .iter()
        .map(|a| a["claims"]["jti"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(jtis.len(), 6, "every assertion has its own jti");
}

#[test]
fn private_key_jwt_rs256() {
    private_key_jwt("rs256-client", "rs256.pem", "rs-1", "RS256");
}

#[test]
fn private_key_jwt_es256() {
    private_key_jwt("es256-client", "es256.pem", "ec-1", "ES256");
}

#[test]
fn private_key_jwt_eddsa() {
    private_key_jwt("eddsa-client", "eddsa.pem", "ed-1", "EdDSA");
}

#[test]
fn client_secret_jwt_for_the_code_exchange_refresh_and_client_credentials() {
    let dir = TempDir::new("secret-jwt");
    let server = OidcServer::start_with(&[("ACCESS_TOKEN_TTL", "2")]);
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let secret = [("SECRET", "HS256-key-7f3a9c1e5b2d8f4a6c0e9b7d5f3a1c8e")];
    let connect = connect_issuer(
        &server,
        &store,
        "hs",
        "secret-jwt-client",
        &[
            "--client-secret-env",
            "SECRET",
            "--client-auth",
            "client-secret-jwt",
        ],
        &secret,
    );
    assert_eq!(connect.code, 0, "{}", connect.err);
    wait_for_expiry();
    let token = cli(&["--store", &store, "token", "hs"], &[]);
    assert_eq!(token.code, 0, "{}", token.err);
    let hs_args = [
        "--client-secret-env",
        "SECRET",
        "--client-auth",
        "client-secret-jwt",
    ];
    let service = connect_client_credentials(
        &store,
        "svc",
        ["--issuer", &server.issuer],
        "secret-jwt-client",
        &[&hs_args[..], &["--scope", "api:read"]].concat(),
        &secret,
    );
    assert_eq!(service.code, 0, "{}", service.err);
    let seen: Vec<(Value, Value, Value)> = assertions(&server)
        .into_iter()
        .map(|a| {
            (
                a["grant_type"].clone(),
                a["status"].clone(),
                a["header"].clone(),
            )
        })
        .collect();
    let header = json!({"alg": "HS256", "typ": "JWT"});
    // The pushed authorization request first (201 Created), then the grants.
    assert_eq!(
        seen,
        [
            (Value::Null, 201),
            (json!("authorization_code"), 200),
            (json!("refresh_token"), 200),
            (json!("client_credentials"), 200),
        ]
        .map(|(grant, status)| (grant, json!(status), header.clone()))
    );
    // A wrong secret signs an assertion the server refuses.
    let wrong = connect_client_credentials(
        &store,
        "svc2",
        ["--issuer", &server.issuer],
        "secret-jwt-client",
        &hs_args,
        &[("SECRET", "not-the-secret")],
    );
    assert_eq!(wrong.code, 1);
    assert!(wrong.err.contains("invalid_client"), "{}", wrong.err);
}

/// Each configuration that cannot work fails before a browser opens: the browser command
/// (which would leave a marker file) never runs, and the server sees no request.
#[test]
fn configuration_errors_are_found_before_the_browser_opens() {
    let dir = TempDir::new("before-browser");
    let keys = dir.0.join("keys");
    std::fs::create_dir(&keys).unwrap();
    let server = OidcServer::start_with(&[("CLIENT_KEYS_DIR", keys.to_str().unwrap())]);
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let marker = dir.0.join("browser-ran");
    let browser = format!("touch {}", marker.display());
    let profile = server.profile_file(&dir.0, "");
    let profile = profile.to_str().unwrap();
    let templated = dir.0.join("templated.json");
    std::fs::write(
        &templated,
        format!(
            r#"{{"authorize-url": "{0}/auth", "token-url": "{0}/{{tenant}}/token",
                "variables": ["tenant"], "client-auth": "none"}}"#,
            server.issuer
        ),
    )
    .unwrap();
    let open_key = dir.0.join("open.pem");
    std::fs::copy(keys.join("es256.pem"), &open_key).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let not_a_key = dir.0.join("not-a-key.pem");
    std::fs::write(&not_a_key, "hello").unwrap();
    let base = |source: &'static str, value: String| -> Vec<String> {
        [
            "--store",
            &store,
            "connect",
            "conn",
            source,
            &value,
            "--client-id",
            "basic-client",
            "--redirect-uri",
            "http://127.0.0.1:0/callback",
            "--browser",
            &browser,
            "--timeout",
            "30",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let with = |mut args: Vec<String>, more: &[&str]| {
        args.extend(more.iter().map(|s| (*s).to_owned()));
        args
    };
    // What is wrong, the arguments, the environment, and what the error must say.
    type Case<'a> = (&'a str, Vec<String>, &'a [(&'a str, &'a str)], &'a str);
    let cases: Vec<Case> = vec![
        (
            "a confidential method without a secret",
            base("--profile", profile.to_owned()),
            &[],
            "needs a client secret and none is configured (pass --client-secret-env VAR; for a public client, --client-auth none)",
        ),
        (
            "client_secret_jwt without a secret",
            with(
                base("--issuer", server.issuer.clone()),
                &["--client-auth", "client-secret-jwt"],
            ),
            &[],
            "needs a client secret",
        ),
        (
            "private_key_jwt without a key",
            with(
                base("--profile", profile.to_owned()),
                &["--client-auth", "private-key-jwt"],
            ),
            &[],
            "needs the client's key: pass --private-key FILE",
        ),
        (
            "a key file others can read",
            with(
                base("--profile", profile.to_owned()),
                &["--private-key", open_key.to_str().unwrap()],
            ),
            &[],
            "chmod 600",
        ),
        (
            "a file that holds no key",
            with(
                base("--profile", profile.to_owned()),
                &["--private-key", not_a_key.to_str().unwrap()],
            ),
            &[],
            not_a_key.to_str().unwrap(),
        ),
        (
            "an unset variable",
            base("--profile", templated.to_str().unwrap().to_owned()),
            &[],
            "needs a value for `tenant` (pass --var tenant=VALUE)",
        ),
        (
            "a reserved authorize parameter",
            with(
                base("--issuer", server.issuer.clone()),
                &["--param", "state=mine"],
            ),
            &[],
            "extra parameter `state` would override one the flow sets itself",
        ),
        (
            "a secret variable that is empty",
            with(
                base("--profile", profile.to_owned()),
                &["--client-secret-env", "SECRET"],
            ),
            &[("SECRET", "")],
            "environment variable SECRET is empty",
        ),
    ];
    for (what, args, env, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = std::time::Instant::now();
        let outcome = cli(&args, env);
        assert_eq!(outcome.code, 1, "{what}: {}", outcome.err);
        assert!(
            outcome.err.contains(expected),
            "{what}: expected `{expected}` in: {}",
            outcome.err
        );
        assert!(!marker.exists(), "{what}: the browser was opened");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{what}: took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 0, "by_grant": {}})
    );
    assert!(
        Store::open(Path::new(&store))
            .unwrap()
            .list()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_rejected_token_without_a_refresh_token_asks_to_connect_again() {
    let (server, dir) = (OidcServer::start(), TempDir::new("norefresh"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let outcome = connect_issuer(
        &server,
        &store,
        "gh",
        "norefresh-client",
        &["--client-secret-env", "SECRET"],
        &[("SECRET", "norefresh-secret")],
    );
    assert_eq!(outcome.code, 0, "{}", outcome.err);
    let connection = stored(&store, "gh");
    assert_eq!(connection.tokens.refresh_token, None);
    let me = format!("{}/me", server.issuer);
    let call = cli(&["--store", &store, "call", "gh", "GET", &me], &[]);
    assert_eq!(call.code, 0, "{}", call.err);
    // The server forgets the access token (as when a user revokes an app's access at the
    // provider; `revoke` would mark the connection, and `call` would not try the token).
    // base64("norefresh-client:norefresh-secret")
    crate::state::revoke_at_server(
        &server,
        "Basic bm9yZWZyZXNoLWNsaWVudDpub3JlZnJlc2gtc2VjcmV0",
        &connection.tokens.access_token,
    );
    server.reset_stats();
    let call = cli(&["--store", &store, "call", "gh", "GET", &me], &[]);
    assert_eq!(call.code, EXIT_REAUTHORIZE, "{}", call.err);
    assert_eq!(
        call.err,
        "error: the connection must be authorized again (connect again): the API rejected its \
         access token, and the server issued no refresh token to renew it\n"
    );
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 0, "by_grant": {}}),
        "no refresh was attempted"
    );
}
