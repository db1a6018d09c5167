//! `connector-host serve`'s web page (`GET /` and its forms) end to end, over plain HTTP as a
//! browser would send it (the cookie, `Origin` and `Sec-Fetch-Site` set by hand): sign-in,
//! the dashboard, connecting through the real authorization server with the scripted user
//! agent, revoke, remove, sign-out, CSRF and origin checks, tenant isolation, expired
//! sessions, and the pages' security headers.

use connector_host::serve::pages::csrf_token;
use connector_host::serve::tenants::hash;
use connector_host::types::{HttpMethod, HttpRequest, HttpResponse};
use serde_json::{Value, json};

use crate::connect::cli;
use crate::server::TempDir;
use crate::service::*;

/// The page's security headers (not the callback's: the referrer stays on this origin).
fn assert_ui_headers(response: &HttpResponse) {
    assert_eq!(
        header_of(response, "content-security-policy"),
        Some(
            "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; \
             base-uri 'none'"
        )
    );
    assert_eq!(header_of(response, "referrer-policy"), Some("same-origin"));
    assert_eq!(header_of(response, "x-frame-options"), Some("DENY"));
    assert_eq!(header_of(response, "cache-control"), Some("no-store"));
    assert_eq!(
        header_of(response, "x-content-type-options"),
        Some("nosniff")
    );
}

fn text(response: &HttpResponse) -> String {
    String::from_utf8(response.body.clone()).unwrap()
}

/// A browser talking to the service: its session cookie (if any) and the `Origin` its
/// posts carry (the service's own, unless a test says otherwise).
struct Browser<'a> {
    service: &'a Service,
    /// `NAME=TOKEN`.
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(service: &'a Service) -> Self {
        Self {
            service,
            cookie: None,
        }
    }

    /// The session token in the cookie.
    fn token(&self) -> &str {
        self.cookie.as_deref().unwrap().split_once('=').unwrap().1
    }

    fn request(
        &self,
        method: HttpMethod,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> HttpResponse {
        let mut all: Vec<_> = headers.iter().map(|(n, v)| header(n, v)).collect();
        if let Some(cookie) = &self.cookie {
            all.push(header("Cookie", cookie));
        }
        loopback(&self.service.base)
            .send(HttpRequest {
                method,
                url: format!("{}{path}", self.service.base),
                headers: all,
                body: body.as_bytes().to_vec(),
            })
            .expect("reach the service")
    }

    fn get(&self, path: &str) -> HttpResponse {
        self.request(HttpMethod::Get, path, &[], "")
    }

    /// A form post as a browser sends it from the page: the service's `Origin`,
    /// `Sec-Fetch-Site: same-origin`, plus `headers`.
    fn post_with(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> HttpResponse {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut all = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if !headers.iter().any(|(name, _)| *name == "Origin") {
            all.push(("Origin", &self.service.base));
        }
        if !headers.iter().any(|(name, _)| *name == "Sec-Fetch-Site") {
            all.push(("Sec-Fetch-Site", "same-origin"));
        }
        all.extend_from_slice(headers);
        self.request(HttpMethod::Post, path, &all, &body)
    }

    fn post(&self, path: &str, fields: &[(&str, &str)]) -> HttpResponse {
        self.post_with(path, fields, &[])
    }

    /// Signs in with `key`: checks the redirect and the cookie's attributes, keeps it.
    fn sign_in(&mut self, key: &str, cookie_name: &str, secure: bool) {
        let response = self.post("/sign-in", &[("key", key)]);
        assert_eq!(response.status, 303, "{}", text(&response));
        assert_eq!(header_of(&response, "location"), Some("/"));
        assert_ui_headers(&response);
        let set = header_of(&response, "set-cookie").unwrap();
        let (pair, attributes) = set.split_once("; ").unwrap();
        let expected = format!(
            "HttpOnly; SameSite=Lax; Path=/; Max-Age=43200{}",
            if secure { "; Secure" } else { "" }
        );
        assert_eq!(attributes, expected);
        let token = pair.strip_prefix(&format!("{cookie_name}=")).unwrap();
        assert_eq!(token.len(), 43, "256 bits, base64url");
        self.cookie = Some(pair.to_owned());
    }

    /// `GET /`, signed in: the dashboard's HTML (checked headers).
    fn dashboard(&self, path: &str) -> String {
        let response = self.get(path);
        assert_eq!(response.status, 200);
        assert_ui_headers(&response);
        let html = text(&response);
        assert!(html.contains("<table id=\"connections\">"), "{html}");
        html
    }

    /// The CSRF token the dashboard's forms carry (checked: every form has the same).
    fn csrf(&self) -> String {
        let html = self.dashboard("/");
        let marker = "name=\"csrf\" value=\"";
        let values: std::collections::BTreeSet<&str> = html
            .match_indices(marker)
            .map(|(at, _)| {
                let rest = &html[at + marker.len()..];
                &rest[..rest.find('"').unwrap()]
            })
            .collect();
        assert_eq!(values.len(), 1, "{html}");
        let csrf = values.into_iter().next().unwrap().to_owned();
        assert_eq!(csrf, csrf_token(self.token()));
        csrf
    }
}

/// The sign-in page's form.
fn assert_sign_in_page(html: &str) {
    for part in [
        "<form id=\"sign-in\" method=\"post\" action=\"/sign-in\">",
        "<input type=\"password\" name=\"key\" id=\"key\"",
        "<button type=\"submit\">Sign in</button>",
    ] {
        assert!(html.contains(part), "{part}\n{html}");
    }
    assert!(!html.contains("<table"), "{html}");
}

/// The connect-on interstitial: its `/connect/TOKEN` path (refresh and link agree).
fn continue_path(response: &HttpResponse) -> String {
    assert_eq!(response.status, 200, "{}", text(response));
    assert_ui_headers(response);
    let html = text(response);
    let marker = "<a id=\"continue\" href=\"";
    let at = html.find(marker).unwrap_or_else(|| panic!("{html}")) + marker.len();
    let path = html[at..at + html[at..].find('"').unwrap()].to_owned();
    assert!(path.starts_with("/connect/"), "{path}");
    assert!(
        html.contains(&format!(
            "<meta http-equiv=\"refresh\" content=\"0; url={path}\">"
        )),
        "{html}"
    );
    assert!(html.contains(&format!("href=\"{path}\">Continue to sign in</a>")));
    path
}

/// The dashboard's row of connection `id`, if listed.
fn row<'h>(html: &'h str, id: &str) -> Option<&'h str> {
    let start = html.find(&format!("<tr data-connection=\"{id}\">"))?;
    Some(&html[start..start + html[start..].find("</tr>").unwrap()])
}

/// Connection `id`'s access token through the API.
fn access_token(service: &Service, key: &str, id: &str) -> String {
    let (status, token) = service.api(
        HttpMethod::Post,
        &format!("/v1/connections/{id}/token"),
        key,
        None,
    );
    assert_eq!(status, 200, "{token}");
    token["access_token"].as_str().unwrap().to_owned()
}

fn status_of(service: &Service, key: &str, id: &str) -> (u16, Value) {
    let (status, body) = service.api(HttpMethod::Get, &format!("/v1/connections/{id}"), key, None);
    (status, body["status"].clone())
}

/// The store file and its write-ahead log.
fn store_bytes(store: &str) -> Vec<u8> {
    let mut raw = std::fs::read(store).unwrap();
    raw.extend(std::fs::read(format!("{store}-wal")).unwrap_or_default());
    raw
}

fn has_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// The store, opened beside the running service.
fn sqlite(store: &str) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(store).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    db
}

#[test]
fn sign_in_connect_revoke_reauthorize_remove_and_sign_out_for_one_tenant_only() {
    let server = server_with(&[]);
    let dir = TempDir::new("pages");
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let acme = add_tenant(&store, "acme");
    let beta = add_tenant(&store, "beta");
    let (service, _, _) = start_sealed(&dir.0, &store, &[]);
    create_code_integration(&service, &server, &acme);

    // Not signed in: the sign-in page.
    let mut browser = Browser::new(&service);
    let page = browser.get("/");
    assert_eq!(page.status, 200);
    assert_ui_headers(&page);
    assert_sign_in_page(&text(&page));

    // A wrong key, a key of the wrong form, none: 401, the sign-in page, the key not shown.
    let wrong = format!("ck_1_{}", "A".repeat(43));
    for key in [wrong.as_str(), "not-a-key-SECRETLIKE", ""] {
        let response = browser.post("/sign-in", &[("key", key)]);
        assert_eq!(response.status, 401, "{key}");
        assert_ui_headers(&response);
        assert_eq!(header_of(&response, "set-cookie"), None);
        let html = text(&response);
        assert_sign_in_page(&html);
        assert!(html.contains("class=\"error\""), "{html}");
        if !key.is_empty() {
            assert!(!html.contains(key), "{html}");
        }
    }
    // The right key from another origin, from an opaque origin, or cross-site: refused.
    for headers in [
        [("Origin", "http://evil.example")],
        [("Origin", "null")],
        [("Sec-Fetch-Site", "cross-site")],
    ] {
        let response = browser.post_with("/sign-in", &[("key", &acme)], &headers);
        assert_eq!(response.status, 403, "{headers:?}");
        assert_ui_headers(&response);
        assert_eq!(header_of(&response, "set-cookie"), None);
        assert!(!text(&response).contains(&acme));
    }

    // Signed in: a session cookie; the store keeps the token's hash, never the token.
    browser.sign_in(&acme, "connector_session", false);
    let rows: i64 = sqlite(&store)
        .query_row(
            "SELECT count(*) FROM web_sessions WHERE token_hash = ?1 AND tenant_id = 1
             AND expires_at - created_at = 43200",
            [hash(browser.token())],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(rows, 1);
    let raw = store_bytes(&store);
    assert!(has_bytes(&raw, &hash(browser.token())));
    assert!(!has_bytes(&raw, browser.token().as_bytes()));

    // The dashboard: the integration with its Connect form, no connections yet.
    let html = browser.dashboard("/");
    assert!(
        html.contains("Signed in as <strong>acme</strong>"),
        "{html}"
    );
    assert!(html.contains("<table id=\"integrations\">"));
    assert!(
        html.contains(&format!(
            "<tr data-integration=\"oidc\"><td>oidc</td><td>authorization-code</td>\
             <td>issuer {}</td><td>openid profile</td>",
            server.issuer
        )),
        "{html}"
    );
    assert!(html.contains("<form class=\"connect\" method=\"post\" action=\"/ui/connect\">"));
    assert!(!html.contains("data-connection="), "{html}");
    assert!(html.contains("<form id=\"sign-out\" method=\"post\" action=\"/sign-out\">"));
    let csrf = browser.csrf();

    // Connect from the page: the interstitial, then the provider, then back to `/` (303).
    let response = browser.post(
        "/ui/connect",
        &[
            ("integration", "oidc"),
            ("connection", "alice"),
            ("csrf", &csrf),
        ],
    );
    let path = continue_path(&response);
    let said = follow_connect_url(&service, &path, "");
    assert!(said.contains("callback /oauth/callback -> 303"), "{said}");
    let html = browser.dashboard("/");
    let alice = row(&html, "alice").unwrap_or_else(|| panic!("{html}"));
    assert!(
        alice.starts_with(
            "<tr data-connection=\"alice\"><td>alice</td><td>oidc</td>\
             <td class=\"status\">valid</td><td>20"
        ),
        "{alice}"
    );
    assert!(alice.contains("<td>yes</td><td>never</td>"), "{alice}");
    for (action, label) in [
        ("reauthorize", "Re-authorize"),
        ("revoke", "Revoke"),
        ("remove", "Remove"),
    ] {
        assert!(
            alice.contains(&format!(
                "<form method=\"post\" action=\"/ui/connections/alice/{action}\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <button type=\"submit\">{label}</button></form>"
            )),
            "{alice}"
        );
    }
    assert_eq!(status_of(&service, &acme, "alice"), (200, json!("valid")));

    // Another tenant's session sees none of it and can touch none of it.
    let mut other = Browser::new(&service);
    other.sign_in(&beta, "connector_session", false);
    let html = other.dashboard("/");
    assert!(
        html.contains("Signed in as <strong>beta</strong>"),
        "{html}"
    );
    assert!(!html.contains("data-connection="), "{html}");
    assert!(!html.contains("data-integration="), "{html}");
    let other_csrf = other.csrf();
    for action in ["reauthorize", "revoke", "remove"] {
        let response = other.post(
            &format!("/ui/connections/alice/{action}"),
            &[("csrf", &other_csrf)],
        );
        assert_eq!(response.status, 404, "{action}");
        assert_ui_headers(&response);
    }
    let response = other.post(
        "/ui/connect",
        &[
            ("integration", "oidc"),
            ("connection", "alice"),
            ("csrf", &other_csrf),
        ],
    );
    assert_eq!(response.status, 404);
    assert_eq!(status_of(&service, &acme, "alice"), (200, json!("valid")));

    // Posts without the CSRF token, with another session's, from another origin, from an
    // opaque origin, cross-site, or without a session: refused, nothing changed.
    let access = access_token(&service, &acme, "alice");
    for (fields, headers) in [
        (vec![], vec![]),
        (vec![("csrf", "")], vec![]),
        (vec![("csrf", other_csrf.as_str())], vec![]),
        (vec![("csrf", &csrf[..42])], vec![]),
        (
            vec![("csrf", csrf.as_str())],
            vec![("Origin", "http://evil.example")],
        ),
        (vec![("csrf", csrf.as_str())], vec![("Origin", "null")]),
        (
            vec![("csrf", csrf.as_str())],
            vec![("Sec-Fetch-Site", "same-site")],
        ),
    ] {
        for action in ["revoke", "remove", "reauthorize"] {
            let response = browser.post_with(
                &format!("/ui/connections/alice/{action}"),
                &fields,
                &headers,
            );
            assert_eq!(response.status, 403, "{action} {fields:?} {headers:?}");
            assert_ui_headers(&response);
        }
        let response = browser.post_with(
            "/ui/connect",
            &[
                &fields[..],
                &[("integration", "oidc"), ("connection", "bob")][..],
            ]
            .concat(),
            &headers,
        );
        assert_eq!(response.status, 403, "{fields:?} {headers:?}");
        let response = browser.post_with("/sign-out", &fields, &headers);
        assert_eq!(response.status, 403, "{fields:?} {headers:?}");
    }
    let anonymous = Browser::new(&service);
    let response = anonymous.post("/ui/connections/alice/revoke", &[("csrf", &csrf)]);
    assert_eq!(response.status, 303);
    assert_eq!(header_of(&response, "location"), Some("/"));
    assert_eq!(status_of(&service, &acme, "alice"), (200, json!("valid")));
    assert_eq!(server.introspect(&access)["active"], true);
    assert_eq!(status_of(&service, &acme, "bob").0, 404);
    browser.dashboard("/"); // still signed in

    // Revoke: at the server, and marked revoked.
    let response = browser.post("/ui/connections/alice/revoke", &[("csrf", &csrf)]);
    assert_eq!(response.status, 303, "{}", text(&response));
    assert_eq!(header_of(&response, "location"), Some("/?done=revoked"));
    assert_ui_headers(&response);
    assert_eq!(status_of(&service, &acme, "alice"), (200, json!("revoked")));
    assert_eq!(server.introspect(&access)["active"], false);
    assert_eq!(userinfo(&server, &access).0, 401);
    let html = browser.dashboard("/?done=revoked");
    assert!(html.contains("<p class=\"notice\">"), "{html}");
    assert!(
        row(&html, "alice")
            .unwrap()
            .contains("<td class=\"status\">revoked</td>")
    );
    // An unknown notice shows nothing.
    assert!(
        !browser
            .dashboard("/?done=%3Cb%3E")
            .contains("class=\"notice\"")
    );

    // Re-authorize: a new sign-in for the same connection; valid again.
    let response = browser.post("/ui/connections/alice/reauthorize", &[("csrf", &csrf)]);
    let path = continue_path(&response);
    let said = follow_connect_url(&service, &path, "");
    assert!(said.contains("callback /oauth/callback -> 303"), "{said}");
    assert_eq!(status_of(&service, &acme, "alice"), (200, json!("valid")));
    let html = browser.dashboard("/");
    assert!(
        row(&html, "alice")
            .unwrap()
            .contains("<td class=\"status\">valid</td>")
    );

    // Remove: revoked at the server, then gone.
    let access = access_token(&service, &acme, "alice");
    assert_eq!(server.introspect(&access)["active"], true);
    let response = browser.post("/ui/connections/alice/remove", &[("csrf", &csrf)]);
    assert_eq!(response.status, 303, "{}", text(&response));
    assert_eq!(header_of(&response, "location"), Some("/?done=removed"));
    assert_eq!(status_of(&service, &acme, "alice").0, 404);
    assert_eq!(server.introspect(&access)["active"], false);
    let html = browser.dashboard("/?done=removed");
    assert!(html.contains("<p class=\"notice\">"), "{html}");
    assert_eq!(row(&html, "alice"), None);
    let response = browser.post("/ui/connections/alice/remove", &[("csrf", &csrf)]);
    assert_eq!(response.status, 404);

    // Sign out: the cookie is cleared, the session ends, the old cookie signs nobody in.
    let response = browser.post("/sign-out", &[("csrf", &csrf)]);
    assert_eq!(response.status, 303);
    assert_eq!(header_of(&response, "location"), Some("/"));
    assert_eq!(
        header_of(&response, "set-cookie"),
        Some("connector_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0")
    );
    let page = browser.get("/");
    assert_eq!(page.status, 200);
    assert_sign_in_page(&text(&page));
    let response = browser.post(
        "/ui/connect",
        &[
            ("integration", "oidc"),
            ("connection", "carol"),
            ("csrf", &csrf),
        ],
    );
    assert_eq!(response.status, 303);
    assert_eq!(header_of(&response, "location"), Some("/"));
    let sessions: i64 = sqlite(&store)
        .query_row(
            "SELECT count(*) FROM web_sessions WHERE token_hash = ?1",
            [hash(browser.token())],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(sessions, 0);
    // The other tenant's session goes on.
    other.dashboard("/");
    // The sessions' tokens never reached the store.
    let raw = store_bytes(&store);
    assert!(!has_bytes(&raw, browser.token().as_bytes()));
    assert!(!has_bytes(&raw, other.token().as_bytes()));
}

/// A profile object for a server that is never reached.
fn unreachable_profile() -> Value {
    json!({
        "id": "nowhere",
        "authorize-url": "http://127.0.0.1:9/authorize",
        "token-url": "http://127.0.0.1:9/token",
    })
}

#[test]
fn expired_and_superseded_sessions_https_cookies_and_refused_forms() {
    let dir = TempDir::new("pages-sessions");
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let acme = add_tenant(&store, "acme");
    let public = "https://connect.example";
    let (service, key_file, _) = start_sealed(&dir.0, &store, &["--public-url", public]);
    for (id, grant) in [
        ("code", "authorization-code"),
        ("machine", "client-credentials"),
    ] {
        let (status, body) = service.api(
            HttpMethod::Post,
            "/v1/integrations",
            &acme,
            Some(json!({
                "id": id,
                "grant": grant,
                "profile": unreachable_profile(),
                "client_id": "c",
                "client_auth": "none",
            })),
        );
        assert_eq!(status, 201, "{body}");
    }

    // An https public URL: the cookie is `__Host-` and Secure; posts must come from it.
    let mut browser = Browser::new(&service);
    let response = browser.post("/sign-in", &[("key", &acme)]);
    assert_eq!(
        response.status, 403,
        "the service's bound address is not its origin"
    );
    let https = [("Origin", public)];
    let response = browser.post_with("/sign-in", &[("key", &acme)], &https);
    assert_eq!(response.status, 303, "{}", text(&response));
    let set = header_of(&response, "set-cookie").unwrap();
    let (pair, attributes) = set.split_once("; ").unwrap();
    assert!(pair.starts_with("__Host-connector_session="), "{set}");
    assert_eq!(
        attributes,
        "HttpOnly; SameSite=Lax; Path=/; Max-Age=43200; Secure"
    );
    browser.cookie = Some(pair.to_owned());
    let html = browser.dashboard("/");
    let csrf = browser.csrf();
    // The client-credentials integration has no Connect form (no one signs in).
    assert_eq!(html.matches("<form class=\"connect\"").count(), 1, "{html}");
    assert!(html.contains("<tr data-integration=\"machine\">"), "{html}");
    // The cookie under the http name signs nobody in here.
    let plain = Browser {
        service: &service,
        cookie: Some(format!("connector_session={}", browser.token())),
    };
    assert_sign_in_page(&text(&plain.get("/")));

    // Refused connects: a client-credentials integration or a bad name (400), an unknown
    // integration (404); each a page with the page's headers.
    for (integration, connection, status) in [
        ("machine", "m", 400),
        ("code", "a b", 400),
        ("code", "", 400),
        ("nope", "n", 404),
    ] {
        let response = browser.post_with(
            "/ui/connect",
            &[
                ("integration", integration),
                ("connection", connection),
                ("csrf", &csrf),
            ],
            &https,
        );
        assert_eq!(response.status, status, "{integration} {connection}");
        assert_ui_headers(&response);
        assert!(text(&response).contains("<a href=\"/\">"));
    }
    // A connect from the page: the interstitial, and a session that returns to the page.
    let response = browser.post_with(
        "/ui/connect",
        &[
            ("integration", "code"),
            ("connection", "c"),
            ("csrf", &csrf),
        ],
        &https,
    );
    continue_path(&response);
    let return_to: String = sqlite(&store)
        .query_row(
            "SELECT return_to FROM connect_sessions WHERE connection = 'c'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(return_to, format!("{public}/"));

    // An expired session: the sign-in page, its row deleted, its posts sent to sign in.
    let db = sqlite(&store);
    db.execute("UPDATE web_sessions SET expires_at = 1", [])
        .unwrap();
    let page = browser.get("/");
    assert_eq!(page.status, 200);
    assert_ui_headers(&page);
    assert_sign_in_page(&text(&page));
    let left: i64 = db
        .query_row("SELECT count(*) FROM web_sessions", [], |row| row.get(0))
        .unwrap();
    assert_eq!(left, 0, "the expired row was deleted");
    let response = browser.post_with("/sign-out", &[("csrf", &csrf)], &https);
    assert_eq!(response.status, 303);

    // A session made before the tenant's key was rotated: ended.
    let response = browser.post_with("/sign-in", &[("key", &acme)], &https);
    assert_eq!(response.status, 303);
    let pair = header_of(&response, "set-cookie")
        .unwrap()
        .split_once("; ")
        .unwrap()
        .0
        .to_owned();
    browser.cookie = Some(pair);
    browser.dashboard("/");
    db.execute("UPDATE web_sessions SET created_at = created_at - 10", [])
        .unwrap();
    let rotated = cli(
        &[
            "--store",
            &store,
            "--key-file",
            &key_file,
            "tenants",
            "rotate-key",
            "acme",
        ],
        &[],
    );
    assert_eq!(rotated.code, 0, "{}", rotated.err);
    assert_sign_in_page(&text(&browser.get("/")));
    let left: i64 = db
        .query_row("SELECT count(*) FROM web_sessions", [], |row| row.get(0))
        .unwrap();
    assert_eq!(left, 0, "the superseded row was deleted");
    let new_key = rotated.out.lines().last().unwrap().to_owned();
    let response = browser.post_with("/sign-in", &[("key", &acme)], &https);
    assert_eq!(response.status, 401, "the old key");
    let response = browser.post_with("/sign-in", &[("key", &new_key)], &https);
    assert_eq!(response.status, 303);

    // Only POST on the forms' routes, only GET on the page.
    for (method, path) in [
        (HttpMethod::Get, "/sign-in"),
        (HttpMethod::Get, "/ui/connect"),
        (HttpMethod::Get, "/ui/connections/c/revoke"),
        (HttpMethod::Post, "/"),
        (HttpMethod::Delete, "/"),
    ] {
        let response = browser.request(method, path, &[], "");
        assert_eq!(response.status, 405, "{path}");
    }
}
