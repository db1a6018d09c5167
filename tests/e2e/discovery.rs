//! Discovery (RFC 8414 / OpenID Connect) against the real authorization server, and a
//! connection made from the issuer URL alone.

use std::path::Path;

use connector_host::store::Store;
use connector_host::types::{ClientAuthMethod, PkceMethod};
use connector_host::{AllowList, HttpTransport, Limits, Runtime};
use serde_json::json;

use crate::connect::cli;
use crate::server::{OidcServer, TempDir, user_agent};

#[test]
fn discovery_builds_a_profile_from_the_issuer() {
    let server = OidcServer::start();
    let issuer = &server.issuer;
    let runtime = Runtime::load_built().unwrap();
    let transport = HttpTransport::new(AllowList::from_urls([issuer.as_str()]), Limits::default());
    let profile = runtime
        .instantiate(transport)
        .unwrap()
        .discover(issuer)
        .unwrap();
    assert_eq!(profile.issuer.as_deref(), Some(issuer.as_str()));
    assert_eq!(profile.authorize_url, Some(format!("{issuer}/auth")));
    assert_eq!(profile.token_url, format!("{issuer}/token"));
    assert_eq!(
        profile.revocation_url,
        Some(format!("{issuer}/token/revocation"))
    );
    assert_eq!(
        profile.introspection_url,
        Some(format!("{issuer}/token/introspection"))
    );
    assert_eq!(
        profile.device_authorization_url,
        Some(format!("{issuer}/device/auth"))
    );
    assert_eq!(profile.userinfo_url, Some(format!("{issuer}/me")));
    assert_eq!(profile.pkce, PkceMethod::S256);
    assert_eq!(profile.client_auth, ClientAuthMethod::ClientSecretBasic);
    assert!(profile.requires_iss, "oidc-provider 8 sends iss (RFC 9207)");
    assert_eq!(profile.default_scopes, ["openid"]);
}

#[test]
fn connect_from_the_issuer_alone() {
    let (server, dir) = (OidcServer::start(), TempDir::new("issuer"));
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let browser = user_agent("");
    let outcome = cli(
        &[
            "--store",
            &store,
            "connect",
            "conn",
            "--issuer",
            &server.issuer,
            "--client-id",
            "basic-client",
            "--client-secret-env",
            "SECRET",
            "--scope",
            "openid",
            "--scope",
            "profile",
            "--redirect-uri",
            "http://127.0.0.1:0/callback",
            "--browser",
            &browser,
            "--timeout",
            "60",
        ],
        &[("SECRET", "basic-secret")],
    );
    assert_eq!(outcome.code, 0, "{}", outcome.err);
    let stored = Store::open(Path::new(&store)).unwrap().get("conn").unwrap();
    assert_eq!(
        stored.config.profile.issuer.as_deref(),
        Some(server.issuer.as_str())
    );
    assert!(stored.config.profile.requires_iss);
    let call = cli(
        &[
            "--store",
            &store,
            "call",
            "conn",
            "GET",
            &format!("{}/me", server.issuer),
        ],
        &[],
    );
    assert_eq!(call.code, 0, "{}", call.err);
    assert_eq!(call.out, r#"{"sub":"alice","name":"Test User alice"}"#);
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"authorization_code": 1}})
    );
}
