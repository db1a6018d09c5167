//! The end user's web page of `connector-host serve` in a real browser: headless Chromium
//! (Debian's `chromium`, driven by playwright-core in `tests/oidc-server/browser.mjs`) signs
//! in with the tenant's key, clicks Connect, signs in and consents at the local authorization
//! server, comes back and sees the connection listed as valid; the API agrees and its token
//! works; after the browser's Revoke, the API says revoked. Every request the browser makes
//! stays on 127.0.0.1 (browser.mjs refuses and reports any other).
//!
//! Without Chromium this test fails, saying what to install: it never skips silently.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use connector_host::types::HttpMethod;
use serde_json::{Value, json};

use crate::server::{OidcServer, TempDir, oidc_dir};
use crate::service::*;

/// Where Debian's `chromium` package puts the browser (`.ci/run` installs it).
const CHROMIUM: &str = "/usr/bin/chromium";

/// The Content-Security-Policy of the service's page.
const CSP: &str = "default-src 'none'; style-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// The one request off 127.0.0.1 that a page makes, refused by the browser before it is sent:
/// oidc-provider's development login and consent pages `@import` this stylesheet.
const FONTS: &str = "https://fonts.googleapis.com";

/// Runs `node browser.mjs OPTIONS… SERVICE CONNECTION`, signed in with the tenant `key`:
/// its JSON report (the fields are described at the top of browser.mjs).
fn browser(service: &Service, key: &str, options: &[&str], connection: &str) -> Value {
    let started = Instant::now();
    let output = Command::new("node")
        .arg("browser.mjs")
        .args(options)
        .args([service.base.as_str(), connection])
        // In the environment, not the arguments: a key is a credential.
        .env("TENANT_API_KEY", key)
        .env("CHROMIUM", CHROMIUM)
        .current_dir(oidc_dir())
        .stdin(Stdio::null())
        .output()
        .expect("run node browser.mjs");
    eprintln!(
        "browser.mjs {options:?}: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser.mjs {options:?} failed ({}):\n{stderr}",
        output.status
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "browser.mjs printed no JSON report: {}\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The report's top-level requests as `METHOD place/path`, the place being `service` or
/// `server` (the authorization server), with the server's interaction ids elided.
fn pages(report: &Value, service: &Service, server: &OidcServer) -> Vec<String> {
    report["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|page| {
            let (method, url) = page.as_str().unwrap().split_once(' ').unwrap();
            let page = if let Some(path) = url.strip_prefix(&service.base) {
                format!("{method} service{path}")
            } else if let Some(path) = url.strip_prefix(&server.issuer) {
                format!("{method} server{path}")
            } else {
                format!("{method} {url}")
            };
            match page.rsplit_once('/') {
                Some((path, _)) if path.ends_with("/interaction") || path.ends_with("/auth") => {
                    format!("{path}/…")
                }
                _ => page,
            }
        })
        .collect()
}

/// Only 127.0.0.1 was reached: the service and the authorization server. Requests elsewhere
/// are the authorization server's stylesheet import, refused; the service's own pages made
/// none and logged no error (a violation of their CSP would be one).
fn assert_loopback_only(report: &Value, service: &Service, server: &OidcServer) {
    for origin in report["origins"].as_array().unwrap() {
        assert!(
            [service.base.as_str(), server.issuer.as_str(), FONTS]
                .contains(&origin.as_str().unwrap()),
            "the browser requested {origin}: {report}"
        );
    }
    for blocked in report["blocked"].as_array().unwrap() {
        assert!(
            blocked["url"].as_str().unwrap().starts_with(FONTS),
            "{report}"
        );
        let from = blocked["from"].as_str().unwrap();
        assert!(from.starts_with(&server.issuer), "{report}");
    }
    for error in report["page_errors"].as_array().unwrap() {
        let url = error["url"].as_str().unwrap();
        assert!(
            !url.starts_with(&service.base),
            "an error on the service's page: {error}"
        );
    }
}

#[test]
fn chromium_connects_on_the_page_and_revokes() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "no Chromium at {CHROMIUM}: this test drives a real browser; install Debian's \
         chromium (`apt-get install --no-install-recommends chromium`; .ci/run does)"
    );
    let started = Instant::now();
    // Installs the npm packages on first use, playwright-core among them.
    let server = server_with(&[]);
    assert!(
        oidc_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci` in {} (.ci/run does)",
        oidc_dir().display()
    );
    let dir = TempDir::new("serve-chromium");
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let key = add_tenant(&store, "acme");
    let (service, _, _) = start_sealed(&dir.0, &store, &[]);
    create_code_integration(&service, &server, &key);

    // In the browser: sign in, connect `laptop` through `oidc`, sign in and consent at the
    // authorization server, and back on the page, listed as valid.
    server.reset_stats();
    let connected = browser(&service, &key, &["--connect=oidc"], "laptop");
    assert_eq!(connected["connected"], "valid", "{connected}");
    assert_eq!(
        connected["rows"],
        json!([{"connection": "laptop", "status": "valid"}])
    );
    assert_eq!(connected["csp"], CSP);
    assert_eq!(connected["signed_out"], true);
    assert_loopback_only(&connected, &service, &server);
    // The way it went: the page's form, the page that moves on to the connect URL, the
    // server's login and consent, the callback, and the page again.
    let way = pages(&connected, &service, &server);
    let expected = [
        "GET service/",
        "POST service/sign-in",
        "GET service/",
        "POST service/ui/connect",
        "GET service/connect/…",
        "GET server/auth",
        "GET server/interaction/…",
        "POST server/interaction/…",
        "GET server/auth/…",
        "GET server/interaction/…",
        "POST server/interaction/…",
        "GET server/auth/…",
        "GET service/oauth/callback",
        "GET service/",
    ];
    assert_eq!(
        way.iter()
            .map(String::as_str)
            .take(expected.len())
            .collect::<Vec<_>>(),
        expected,
        "{way:#?}"
    );
    assert_eq!(
        server.token_requests(),
        json!({"token_requests": 1, "by_grant": {"authorization_code": 1}}),
        "one code exchange"
    );

    // The API agrees, and its token is one the authorization server accepts.
    let (status, shown) = service.api(HttpMethod::Get, "/v1/connections/laptop", &key, None);
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["integration"], "oidc");
    assert_eq!(shown["status"], "valid");
    let (status, token) = service.api(HttpMethod::Post, "/v1/connections/laptop/token", &key, None);
    assert_eq!(status, 200, "{token}");
    let access = token["access_token"].as_str().unwrap().to_owned();
    assert_eq!(userinfo(&server, &access), (200, ALICE.to_owned()));

    // A new browser signs in again and clicks Revoke: revoked on the page, in the API and at
    // the authorization server.
    let revoked = browser(&service, &key, &["--revoke"], "laptop");
    assert_eq!(revoked["revoked"], "revoked", "{revoked}");
    assert_eq!(
        revoked["rows"],
        json!([{"connection": "laptop", "status": "revoked"}])
    );
    assert_loopback_only(&revoked, &service, &server);
    let (_, shown) = service.api(HttpMethod::Get, "/v1/connections/laptop", &key, None);
    assert_eq!(shown["status"], "revoked");
    assert_eq!(shown["reauthorization"]["reason"], "revoked");
    let (status, body) = service.api(HttpMethod::Post, "/v1/connections/laptop/token", &key, None);
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("reauthorization_required"))
    );
    assert_eq!(userinfo(&server, &access).0, 401, "revoked at the server");
    eprintln!(
        "browser test: {:.1} s in all",
        started.elapsed().as_secs_f64()
    );
}
