//! The web page (`GET /`): a tenant signs in with its API key and sees its integrations and
//! its connections with their status, with buttons to connect, re-authorize, revoke and
//! remove. Server-rendered HTML and the service's stylesheet; no script.
//!
//! Signing in makes a web session: a cookie holding 256 random bits, valid
//! [`SESSION_LIFETIME`]; the store keeps only the token's SHA-256 (`web_sessions`). A session
//! made before the tenant's key was last rotated no longer counts: rotating a leaked key ends
//! the sessions made with it. An expired session's row is deleted when it is met (and all
//! expired rows at each sign-in).
//!
//! Every form post but the sign-in needs the session and its CSRF token, derived from the
//! session token ([`csrf_token`]), so there is nothing more to store and it ends with the
//! session. Every form post, the sign-in included, is refused when the browser says it comes
//! from elsewhere: an `Origin` that is not the public URL's (`null` included), or a
//! `Sec-Fetch-Site` other than `same-origin` or `none`. The pages send
//! `Referrer-Policy: same-origin`, not `no-referrer`: with `no-referrer` browsers send
//! `Origin: null` on the page's own posts.
//!
//! The cookie is `SameSite=Lax`, not `Strict`: the end user comes back from the provider
//! through a cross-site redirect chain (`/oauth/callback`, then 303 to `/`) and must still be
//! signed in there. Lax cookies are not sent on cross-site posts, which the checks above
//! refuse anyway.
//!
//! Connecting from the page answers with a small page that moves on to `/connect/<token>` by
//! a meta refresh, not with a redirect: the page's CSP says `form-action 'self'`, and Chromium
//! applies it to every redirect of a form's navigation, so a redirect chain from the form to
//! the provider would be blocked. A meta refresh is a new navigation, which no CSP governs.

use std::fmt::Write as _;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;

use super::AppState;
use super::auth::{Body, TenantId, body_bytes};
use super::connect::{NewSession, create_session, escape};
use super::connections::{ConnectionView, internal_name, load, page_views, remove_connection};
use super::errors::{ApiError, Code};
use super::integrations;
use super::tenants::{constant_time_eq, hash, random_token};
use crate::connections::Connections;
use crate::sql_params as params;
use crate::store::{Grant, Store};

/// How long a sign-in lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// The session cookie's name on an `http` public URL.
pub const COOKIE: &str = "connector_session";

/// The session cookie's name on an `https` public URL: the `__Host-` prefix makes browsers
/// refuse it unless it is `Secure`, for this host only and for every path.
pub const SECURE_COOKIE: &str = "__Host-connector_session";

/// The routes of the page.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/sign-in", post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/ui/connect", post(connect))
        .route("/ui/connections/{id}/reauthorize", post(reauthorize))
        .route("/ui/connections/{id}/revoke", post(revoke))
        .route("/ui/connections/{id}/remove", post(remove))
}

/// The headers of the page's responses: a CSP that allows the service's stylesheet and forms
/// that post to the service only; the referrer kept to this origin (see the module's doc);
/// no framing, no caching, no sniffing.
pub fn ui_headers() -> [(HeaderName, &'static str); 5] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ]
}

/// The CSRF token of the session whose token is `session_token`: base64url (no padding) of
/// SHA-256("csrf\0" || session token). Derived, never stored; only the session's holder can
/// compute it, and the store's hash of the session token does not give it.
pub fn csrf_token(session_token: &str) -> String {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(b"csrf\0");
    digest.update(session_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.finish())
}

/// Whether `presented` is the CSRF token of `session_token` (compared in constant time).
fn csrf_matches(session_token: &str, presented: Option<&str>) -> bool {
    presented.is_some_and(|presented| {
        constant_time_eq(csrf_token(session_token).as_bytes(), presented.as_bytes())
    })
}

/// The session cookie's name: [`SECURE_COOKIE`] when the public URL is `https`.
fn cookie_name(secure: bool) -> &'static str {
    if secure { SECURE_COOKIE } else { COOKIE }
}

/// Whether the public URL is `https` (the cookie is then `Secure` and `__Host-`).
fn is_secure(state: &super::State) -> bool {
    state.public_url.starts_with("https://")
}

/// The `Set-Cookie` value of a new session.
fn session_cookie(secure: bool, token: &str) -> String {
    format!(
        "{}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{}",
        cookie_name(secure),
        SESSION_LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends the session cookie.
fn cleared_cookie(secure: bool) -> String {
    format!(
        "{}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0{}",
        cookie_name(secure),
        if secure { "; Secure" } else { "" }
    )
}

/// The session token the request's cookie carries, if exactly one cookie of that name is
/// sent: a second one (planted for a parent domain by a sibling host, on an `http` public
/// URL whose cookie cannot have the `__Host-` prefix) makes the request signed out rather
/// than signed in as whoever planted it.
fn cookie_token(headers: &HeaderMap, secure: bool) -> Option<String> {
    let name = cookie_name(secure);
    let mut tokens = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(key, _)| *key == name)
        .map(|(_, value)| value);
    let token = tokens.next().filter(|value| !value.is_empty())?;
    tokens.next().is_none().then(|| token.to_owned())
}

/// Whether a form post's headers say it comes from the page itself: every `Origin` is the
/// public URL's origin (`null`, sent by privacy-sensitive contexts, is not), and
/// `Sec-Fetch-Site`, when sent, is `same-origin` or `none` (typed by the user).
fn from_this_origin(headers: &HeaderMap, public_url: &str) -> bool {
    let origins_match = headers
        .get_all(header::ORIGIN)
        .iter()
        .all(|origin| origin.to_str().is_ok_and(|origin| origin == public_url));
    let site_matches = headers
        .get_all("sec-fetch-site")
        .iter()
        .all(|site| matches!(site.to_str(), Ok("same-origin" | "none")));
    origins_match && site_matches
}

/// Why a page request was refused, as the browser sees it.
enum Refused {
    /// No session, or an expired or ended one: to the sign-in page (303 to `/`).
    SignIn,
    /// A post from another origin, or without the session's CSRF token: 403.
    Forbidden(&'static str),
    /// What the API would answer, as a page with its status.
    Api(ApiError),
}

impl<E: Into<ApiError>> From<E> for Refused {
    fn from(error: E) -> Self {
        Self::Api(error.into())
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn => (ui_headers(), Redirect::to("/")).into_response(),
            Self::Forbidden(message) => (
                StatusCode::FORBIDDEN,
                ui_headers(),
                message_page("Refused", message),
            )
                .into_response(),
            Self::Api(error) => {
                let title = match error.code {
                    Code::NotFound => "Not found",
                    Code::Internal => "Something went wrong",
                    _ => "Not done",
                };
                (
                    error.code.status(),
                    ui_headers(),
                    message_page(title, &error.message),
                )
                    .into_response()
            }
        }
    }
}

/// A posted form's fields (the first value of a repeated name counts).
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(body).into_owned().collect())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Field `name`, trimmed; empty when absent.
    fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().trim().to_owned()
    }
}

/// Refuses a post from another origin ([`from_this_origin`]).
fn check_origin(state: &super::State, headers: &HeaderMap) -> Result<(), Refused> {
    if from_this_origin(headers, &state.public_url) {
        Ok(())
    } else {
        Err(Refused::Forbidden(
            "This form was not sent from this service's page. Open the page and try again.",
        ))
    }
}

/// A signed-in browser's form post, checked: from this origin, with a session cookie and its
/// CSRF token. Returns the form and the session token (whether the session is still valid is
/// checked with the work, [`signed_in`]).
fn checked_form(
    state: &super::State,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Form, String), Refused> {
    check_origin(state, headers)?;
    let form = Form::parse(&body_bytes(body)?);
    let token = cookie_token(headers, is_secure(state)).ok_or(Refused::SignIn)?;
    if !csrf_matches(&token, form.get("csrf")) {
        return Err(Refused::Forbidden(
            "This form has expired or did not come from this page. Reload the page and try \
             again.",
        ));
    }
    Ok((form, token))
}

/// The tenant signed in with the session whose token hashes to `token_hash`; `None` when
/// there is no such session, it has expired, or the tenant's key was rotated after it was
/// made (the row of a session that is no longer valid is deleted).
fn session_tenant(store: &Store, token_hash: &[u8]) -> Result<Option<TenantId>, ApiError> {
    let db = store.db();
    let row = db.query_opt(
        "SELECT w.tenant_id, w.expires_at, w.created_at >= t.key_rotated_at
         FROM web_sessions w JOIN tenants t ON t.id = w.tenant_id
         WHERE w.token_hash = ?1",
        params![token_hash],
        |row| Ok((row.get::<i64>(0)?, row.get::<i64>(1)?, row.get::<bool>(2)?)),
    )?;
    match row {
        Some((tenant, expires_at, current))
            if current && expires_at > crate::store::now() as i64 =>
        {
            Ok(Some(TenantId(tenant)))
        }
        // Dead: deleted now that it is met.
        Some(_) => {
            db.execute(
                "DELETE FROM web_sessions WHERE token_hash = ?1",
                params![token_hash],
            )?;
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Makes tenant `tenant` a web session and returns its token (the store keeps its hash);
/// ends the browser's earlier session `replaced` (its token), if any, and deletes every
/// expired session.
fn start_session(
    store: &Store,
    tenant: TenantId,
    replaced: Option<&str>,
) -> Result<String, ApiError> {
    let token = random_token().map_err(|error| ApiError::internal(&error))?;
    let now = crate::store::now() as i64;
    let db = store.db();
    db.execute(
        "DELETE FROM web_sessions WHERE expires_at <= ?1",
        params![now],
    )?;
    if let Some(replaced) = replaced {
        db.execute(
            "DELETE FROM web_sessions WHERE token_hash = ?1",
            params![hash(replaced)],
        )?;
    }
    db.execute(
        "INSERT INTO web_sessions (token_hash, tenant_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![
            hash(&token),
            tenant.0,
            now,
            now + SESSION_LIFETIME.as_secs() as i64
        ],
    )?;
    Ok(token)
}

/// Runs `work` on a store thread for the tenant signed in with session `token`;
/// [`Refused::SignIn`] when the session is not valid ([`session_tenant`]).
async fn signed_in<T: Send + 'static>(
    state: &AppState,
    token: &str,
    work: impl FnOnce(&Connections<'static>, TenantId) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, Refused> {
    let token_hash = hash(token);
    state
        .blocking(
            move |connections| match session_tenant(connections.store(), &token_hash)? {
                Some(tenant) => work(connections, tenant).map(Some),
                None => Ok(None),
            },
        )
        .await?
        .ok_or(Refused::SignIn)
}

/// An integration as the page lists it (no secret leaves the store thread).
struct IntegrationRow {
    id: String,
    grant: Grant,
    /// Where its profile came from, and which: `issuer <URL>`, `provider <preset>` or
    /// `profile <id>`.
    source: String,
    scopes: Vec<String>,
}

/// Tenant `tenant`'s integrations, by id.
fn integration_rows(store: &Store, tenant: TenantId) -> Result<Vec<IntegrationRow>, ApiError> {
    let ids = store.db().query(
        "SELECT id FROM integrations WHERE tenant_id = ?1 ORDER BY id",
        params![tenant.0],
        |row| row.get::<String>(0),
    )?;
    ids.iter()
        .map(|id| {
            let integration = integrations::load(store, tenant, id)?;
            let profile = &integration.config.profile;
            let which = match integration.source.as_str() {
                "issuer" => profile.issuer.as_deref().unwrap_or(&profile.id),
                _ => &profile.id,
            };
            Ok(IntegrationRow {
                source: format!("{} {which}", integration.source),
                id: integration.id,
                grant: integration.grant,
                scopes: integration.config.scopes,
            })
        })
        .collect()
}

/// How many connections the page lists at a time (a link leads to the next ones).
pub const CONNECTIONS_PER_PAGE: usize = 100;

/// What the signed-in page shows.
struct Dashboard {
    tenant_name: String,
    integrations: Vec<IntegrationRow>,
    /// One page of connections: those after `after`, by id.
    connections: Vec<ConnectionView>,
    /// Where this page starts (none: the first page).
    after: Option<String>,
    /// Where the next page starts, when there is one.
    next: Option<String>,
}

fn dashboard_of(
    store: &Store,
    tenant: TenantId,
    after: Option<String>,
) -> Result<Dashboard, ApiError> {
    let tenant_name = store.db().query_one(
        "SELECT name FROM tenants WHERE id = ?1",
        params![tenant.0],
        |row| row.get::<String>(0),
    )?;
    let (connections, next) = page_views(store, tenant, after.as_deref(), CONNECTIONS_PER_PAGE)?;
    Ok(Dashboard {
        tenant_name,
        integrations: integration_rows(store, tenant)?,
        connections,
        after,
        next,
    })
}

/// The connection id the page starts after (`?after=ID`), if any.
fn page_start(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == "after")
        .map(|(_, value)| value.into_owned())
        .filter(|after| !after.is_empty() && after.len() <= 1000)
}

/// The notice for `?done=VALUE` after an action: a fixed text per known value (the query is
/// never shown).
fn notice(query: Option<&str>) -> Option<&'static str> {
    let done = url::form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == "done")?
        .1;
    match done.as_ref() {
        "revoked" => Some("The connection's tokens were revoked. Re-authorize it to use it again."),
        "removed" => Some("The connection was removed."),
        _ => None,
    }
}

/// `GET /`: the dashboard when signed in, else the sign-in page.
async fn home(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let Some(token) = cookie_token(&headers, is_secure(&state)) else {
        return sign_in_page(StatusCode::OK, None);
    };
    let after = page_start(uri.query());
    match signed_in(&state, &token, |connections, tenant| {
        dashboard_of(connections.store(), tenant, after)
    })
    .await
    {
        Ok(dashboard) => (
            ui_headers(),
            dashboard_page(&dashboard, &csrf_token(&token), notice(uri.query())),
        )
            .into_response(),
        Err(Refused::SignIn) => sign_in_page(StatusCode::OK, None),
        Err(refused) => refused.into_response(),
    }
}

/// `POST /sign-in` (`key`): a valid tenant key makes a web session (cookie, 303 to `/`); a
/// wrong one shows the sign-in page again with 401.
async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    check_origin(&state, &headers)?;
    let form = Form::parse(&body_bytes(body)?);
    let key = form.text("key");
    let tenant = if key.is_empty() {
        None
    } else {
        state.authenticate(&key).await?
    };
    let Some(tenant) = tenant.map(TenantId) else {
        return Ok(sign_in_page(
            StatusCode::UNAUTHORIZED,
            Some("That is not a valid API key. Check it and try again."),
        ));
    };
    let secure = is_secure(&state);
    let replaced = cookie_token(&headers, secure);
    let token = state
        .blocking(move |connections| {
            start_session(connections.store(), tenant, replaced.as_deref())
        })
        .await?;
    tracing::info!(tenant = tenant.0, "signed in to the web page");
    Ok((
        ui_headers(),
        [(header::SET_COOKIE, session_cookie(secure, &token))],
        Redirect::to("/"),
    )
        .into_response())
}

/// `POST /sign-out` (`csrf`): ends the session, clears the cookie, 303 to `/`.
async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    let secure = is_secure(&state);
    let signed_out = (
        ui_headers(),
        [(header::SET_COOKIE, cleared_cookie(secure))],
        Redirect::to("/"),
    );
    let token = match checked_form(&state, &headers, body) {
        Ok((_, token)) => token,
        // Nothing to end.
        Err(Refused::SignIn) => return Ok(signed_out.into_response()),
        Err(refused) => return Err(refused),
    };
    let token_hash = hash(&token);
    state
        .blocking(move |connections| {
            connections.store().db().execute(
                "DELETE FROM web_sessions WHERE token_hash = ?1",
                params![token_hash],
            )?;
            Ok(())
        })
        .await?;
    Ok(signed_out.into_response())
}

/// Where the browser goes once a connection made from the page is connected: the page.
fn return_to(state: &super::State) -> String {
    format!("{}/", state.public_url)
}

/// `POST /ui/connect` (`integration`, `connection`, `csrf`): a connect session as `POST
/// /v1/connect-sessions` makes, returning to the page; answers with the page that moves on
/// to the sign-in.
async fn connect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    let (form, token) = checked_form(&state, &headers, body)?;
    let request = NewSession {
        integration: form.text("integration"),
        connection: form.text("connection"),
        scopes: None,
        return_to: Some(return_to(&state)),
    };
    let connection = request.connection.clone();
    let shared = state.clone();
    let session = signed_in(&state, &token, move |connections, tenant| {
        create_session(connections.store(), &shared, tenant, request)
    })
    .await?;
    Ok((ui_headers(), continue_page(&session.path, &connection)).into_response())
}

/// `POST /ui/connections/{id}/reauthorize` (`csrf`): a connect session for the connection's
/// own integration, name and scopes; answers as [`connect`].
async fn reauthorize(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    let (_, token) = checked_form(&state, &headers, body)?;
    let shared = state.clone();
    let connection = id.clone();
    let session = signed_in(&state, &token, move |connections, tenant| {
        let (stored, integration) = load(connections, tenant, &id)?;
        if stored.grant != Grant::AuthorizationCode {
            return Err(ApiError::invalid(format!(
                "connection `{id}` uses the {} grant: nobody signs in to it",
                stored.grant.name()
            )));
        }
        let integration = integration.ok_or_else(|| {
            ApiError::invalid(format!("connection `{id}` belongs to no integration"))
        })?;
        let request = NewSession {
            integration,
            connection: id,
            scopes: Some(stored.config.scopes),
            return_to: Some(return_to(&shared)),
        };
        create_session(connections.store(), &shared, tenant, request)
    })
    .await?;
    Ok((ui_headers(), continue_page(&session.path, &connection)).into_response())
}

/// `POST /ui/connections/{id}/revoke` (`csrf`): revokes its tokens at the server and marks
/// it revoked, as the CLI's `revoke` does; 303 to `/?done=revoked`.
async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    let (_, token) = checked_form(&state, &headers, body)?;
    let connection = id.clone();
    let tenant = signed_in(&state, &token, move |connections, tenant| {
        load(connections, tenant, &id)?;
        connections.revoke(&internal_name(tenant, &id))?;
        tracing::info!(
            tenant = tenant.0,
            connection = id.as_str(),
            "revoked from the web page"
        );
        Ok(tenant)
    })
    .await?;
    state.connection_changed(tenant, &connection);
    Ok((ui_headers(), Redirect::to("/?done=revoked")).into_response())
}

/// `POST /ui/connections/{id}/remove` (`csrf`): what `DELETE /v1/connections/{id}` does
/// (revoked first when possible); 303 to `/?done=removed`.
async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    let (_, token) = checked_form(&state, &headers, body)?;
    let connection = id.clone();
    let tenant = signed_in(&state, &token, move |connections, tenant| {
        remove_connection(connections, tenant, &id).map(|_| tenant)
    })
    .await?;
    state.connection_changed(tenant, &connection);
    Ok((ui_headers(), Redirect::to("/?done=removed")).into_response())
}

/// A page: `title` (escaped), `head` and `body` (HTML, their text escaped by the caller).
fn layout(title: &str, head: &str, wide: bool, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title>\
         <link rel=\"stylesheet\" href=\"{stylesheet}\">{head}</head>\n\
         <body{class}>\n{body}</body></html>\n",
        title = escape(title),
        stylesheet = super::STYLESHEET_PATH,
        class = if wide { " class=\"wide\"" } else { "" },
    ))
}

/// A page with one message and a way back.
fn message_page(title: &str, message: &str) -> Html<String> {
    layout(
        title,
        "",
        false,
        &format!(
            "<h1>{}</h1>\n<p class=\"error\">{}</p>\n<p><a href=\"/\">Back to the connections</a></p>\n",
            escape(title),
            escape(message)
        ),
    )
}

/// The sign-in page, with `status` and an error message (a fixed text, never the key).
fn sign_in_page(status: StatusCode, error: Option<&str>) -> Response {
    let mut body = String::from("<h1>Connections</h1>\n");
    if let Some(error) = error {
        let _ = writeln!(body, "<p class=\"error\">{}</p>", escape(error));
    }
    body.push_str(
        "<form id=\"sign-in\" method=\"post\" action=\"/sign-in\">\n\
         <p><label for=\"key\">Your tenant's API key</label><br>\
         <input type=\"password\" name=\"key\" id=\"key\" required autocomplete=\"off\"></p>\n\
         <p><button type=\"submit\">Sign in</button></p>\n</form>\n",
    );
    (status, ui_headers(), layout("Sign in", "", false, &body)).into_response()
}

/// A hidden field with the CSRF token.
fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(csrf)
    )
}

/// A form with one button that posts the CSRF token to `action`.
fn button_form(action: &str, csrf: &str, label: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\">{}<button type=\"submit\">{}</button></form>",
        escape(action),
        csrf_field(csrf),
        escape(label)
    )
}

/// The signed-in page.
fn dashboard_page(dashboard: &Dashboard, csrf: &str, notice: Option<&str>) -> Html<String> {
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<header><h1>Connections</h1><p>Signed in as <strong>{}</strong>.</p>\
         <form id=\"sign-out\" method=\"post\" action=\"/sign-out\">{}\
         <button type=\"submit\">Sign out</button></form></header>",
        escape(&dashboard.tenant_name),
        csrf_field(csrf)
    );
    if let Some(notice) = notice {
        let _ = writeln!(body, "<p class=\"notice\">{}</p>", escape(notice));
    }

    body.push_str(
        "<h2>Integrations</h2>\n<table id=\"integrations\"><thead><tr><th>Integration</th>\
         <th>Grant</th><th>Source</th><th>Scopes</th><th>Connect</th></tr></thead><tbody>\n",
    );
    for integration in &dashboard.integrations {
        let id = escape(&integration.id);
        let connect = if integration.grant == Grant::AuthorizationCode {
            format!(
                "<form class=\"connect\" method=\"post\" action=\"/ui/connect\">\
                 <input type=\"hidden\" name=\"integration\" value=\"{id}\">{}\
                 <input name=\"connection\" required maxlength=\"100\" \
                 placeholder=\"connection name\" aria-label=\"Connection name\">\
                 <button type=\"submit\">Connect</button></form>",
                csrf_field(csrf)
            )
        } else {
            "with the API (POST /v1/connections)".to_owned()
        };
        let _ = writeln!(
            body,
            "<tr data-integration=\"{id}\"><td>{id}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{connect}</td></tr>",
            escape(integration.grant.name()),
            escape(&integration.source),
            escape(&integration.scopes.join(" "))
        );
    }
    body.push_str("</tbody></table>\n");
    if dashboard.integrations.is_empty() {
        body.push_str(
            "<p class=\"empty\">No integrations yet: create one with the API \
             (POST /v1/integrations).</p>\n",
        );
    }

    body.push_str(
        "<h2>Connections</h2>\n<table id=\"connections\"><thead><tr><th>Connection</th>\
         <th>Integration</th><th>Status</th><th>Expires</th><th>Refresh token</th>\
         <th>Last refresh</th><th>Actions</th></tr></thead><tbody>\n",
    );
    for connection in &dashboard.connections {
        let id = escape(&connection.id);
        let actions_of = |action: &str| format!("/ui/connections/{}/{action}", connection.id);
        let mut actions = String::new();
        if connection.grant == Grant::AuthorizationCode.name() {
            actions.push_str(&button_form(
                &actions_of("reauthorize"),
                csrf,
                "Re-authorize",
            ));
        }
        actions.push_str(&button_form(&actions_of("revoke"), csrf, "Revoke"));
        actions.push_str(&button_form(&actions_of("remove"), csrf, "Remove"));
        let _ = writeln!(
            body,
            "<tr data-connection=\"{id}\"><td>{id}</td><td>{}</td>\
             <td class=\"status\">{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"actions\">{actions}</td></tr>",
            escape(connection.integration.as_deref().unwrap_or("—")),
            escape(connection.status),
            escape(connection.expires_at.as_deref().unwrap_or("—")),
            if connection.refresh_token {
                "yes"
            } else {
                "no"
            },
            escape(connection.last_refresh.as_deref().unwrap_or("never")),
        );
    }
    body.push_str("</tbody></table>\n");
    match (dashboard.connections.is_empty(), &dashboard.after) {
        (true, None) => body.push_str("<p class=\"empty\">No connections yet.</p>\n"),
        (true, Some(_)) => body.push_str("<p class=\"empty\">No more connections.</p>\n"),
        _ => {}
    }
    if dashboard.after.is_some() || dashboard.next.is_some() {
        body.push_str("<p class=\"pages\">");
        if dashboard.after.is_some() {
            body.push_str("<a id=\"first\" href=\"/\">First page</a> ");
        }
        if let Some(next) = &dashboard.next {
            let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
            let _ = write!(
                body,
                "<a id=\"next\" href=\"/?after={}\">Next page</a>",
                escape(&next)
            );
        }
        body.push_str("</p>\n");
    }
    layout("Connections", "", true, &body)
}

/// The page that moves on to the connect session's URL `path` (`/connect/<token>`) at once,
/// with a link for a browser that does not follow the refresh.
fn continue_page(path: &str, connection: &str) -> Html<String> {
    let path = escape(path);
    layout(
        "Continue to sign in",
        &format!("<meta http-equiv=\"refresh\" content=\"0; url={path}\">"),
        false,
        &format!(
            "<h1>Continue to sign in</h1>\n<p>Sign in at the provider to connect \
             <strong>{}</strong>.</p>\n<p><a id=\"continue\" href=\"{path}\">Continue to sign \
             in</a></p>\n",
            escape(connection)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn text(html: Html<String>) -> String {
        html.0
    }

    #[test]
    fn the_csrf_token_is_derived_from_the_session_and_compared_exactly() {
        let token = "session-token";
        let mut expected = b"csrf\0".to_vec();
        expected.extend_from_slice(token.as_bytes());
        let digest = ring::digest::digest(&ring::digest::SHA256, &expected);
        let csrf = csrf_token(token);
        assert_eq!(
            csrf,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
        );
        assert_eq!(csrf.len(), 43);
        assert_ne!(csrf, csrf_token("another-session"));
        // Not the hash the store keeps.
        assert_ne!(
            csrf,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash(token))
        );
        assert!(csrf_matches(token, Some(&csrf)));
        for wrong in [None, Some(""), Some(&csrf[..42]), Some("x")] {
            assert!(!csrf_matches(token, wrong), "{wrong:?}");
        }
        assert!(!csrf_matches("another-session", Some(&csrf)));
    }

    #[test]
    fn cookies_are_http_only_lax_whole_site_and_secure_host_only_on_https() {
        assert_eq!(
            session_cookie(false, "T"),
            "connector_session=T; HttpOnly; SameSite=Lax; Path=/; Max-Age=43200"
        );
        assert_eq!(
            session_cookie(true, "T"),
            "__Host-connector_session=T; HttpOnly; SameSite=Lax; Path=/; Max-Age=43200; Secure"
        );
        assert_eq!(
            cleared_cookie(false),
            "connector_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"
        );
        assert_eq!(
            cleared_cookie(true),
            "__Host-connector_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0; Secure"
        );
        let sent = headers(&[(
            "cookie",
            "other=1; connector_session=abc; __Host-connector_session=def",
        )]);
        assert_eq!(cookie_token(&sent, false).as_deref(), Some("abc"));
        assert_eq!(cookie_token(&sent, true).as_deref(), Some("def"));
        for none in [
            headers(&[]),
            headers(&[("cookie", "connector_session=")]),
            headers(&[("cookie", "xconnector_session=abc")]),
        ] {
            assert_eq!(cookie_token(&none, false), None);
        }
        // In a second Cookie header too.
        let two = headers(&[("cookie", "a=1"), ("cookie", "connector_session=xyz")]);
        assert_eq!(cookie_token(&two, false).as_deref(), Some("xyz"));
        // Two of the name (one planted for a parent domain): signed out, not either one.
        for tossed in [
            headers(&[(
                "cookie",
                "connector_session=planted; connector_session=mine",
            )]),
            headers(&[
                ("cookie", "connector_session=planted"),
                ("cookie", "connector_session=mine"),
            ]),
            headers(&[("cookie", "connector_session=; connector_session=mine")]),
        ] {
            assert_eq!(cookie_token(&tossed, false), None);
        }
    }

    #[test]
    fn posts_from_elsewhere_are_told_apart() {
        let public = "http://127.0.0.1:8080";
        for allowed in [
            headers(&[]),
            headers(&[("origin", public)]),
            headers(&[("origin", public), ("sec-fetch-site", "same-origin")]),
            headers(&[("sec-fetch-site", "none")]),
        ] {
            assert!(from_this_origin(&allowed, public), "{allowed:?}");
        }
        for refused in [
            headers(&[("origin", "http://evil.example")]),
            headers(&[("origin", "null")]),
            headers(&[("origin", "http://127.0.0.1:8081")]),
            headers(&[("origin", "https://127.0.0.1:8080")]),
            headers(&[("origin", "http://127.0.0.1:8080/")]),
            headers(&[("origin", public), ("origin", "null")]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site")]),
            headers(&[("origin", public), ("sec-fetch-site", "cross-site")]),
        ] {
            assert!(!from_this_origin(&refused, public), "{refused:?}");
        }
    }

    #[test]
    fn notices_are_fixed_texts_for_known_values_only() {
        assert!(notice(Some("done=revoked")).unwrap().contains("revoked"));
        assert!(
            notice(Some("x=1&done=removed"))
                .unwrap()
                .contains("removed")
        );
        for unknown in [
            None,
            Some(""),
            Some("done="),
            Some("done=%3Cscript%3E"),
            Some("done=Revoked"),
            Some("other=revoked"),
        ] {
            assert_eq!(notice(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn forms_take_the_first_value_of_a_field() {
        let form = Form::parse(b"key=%20ck_1_a%2Bb%20&csrf=x&csrf=y&empty=");
        assert_eq!(form.text("key"), "ck_1_a+b");
        assert_eq!(form.get("csrf"), Some("x"));
        assert_eq!(form.get("empty"), Some(""));
        assert_eq!(form.get("missing"), None);
        assert_eq!(form.text("missing"), "");
    }

    fn view(id: &str, grant: Grant, status: &'static str) -> ConnectionView {
        ConnectionView {
            id: id.to_owned(),
            integration: Some("<i>".to_owned()),
            grant: grant.name(),
            status,
            expires_at: None,
            refresh_token: true,
            scopes: vec![],
            created_at: String::new(),
            last_refresh: None,
            reauthorization: None,
            last_error: None,
            dpop_key_thumbprint: None,
        }
    }

    #[test]
    fn the_dashboard_escapes_every_text_and_has_a_csrf_field_in_every_form() {
        let dashboard = Dashboard {
            tenant_name: "a<b".to_owned(),
            integrations: vec![
                IntegrationRow {
                    id: "code".to_owned(),
                    grant: Grant::AuthorizationCode,
                    source: "issuer https://x.example/?a=1&b=\"2\"".to_owned(),
                    scopes: vec!["openid".to_owned(), "<s>".to_owned()],
                },
                IntegrationRow {
                    id: "machine".to_owned(),
                    grant: Grant::ClientCredentials,
                    source: "provider p".to_owned(),
                    scopes: vec![],
                },
            ],
            connections: vec![
                view("alice", Grant::AuthorizationCode, "valid"),
                view("svc", Grant::ClientCredentials, "revoked"),
            ],
            after: None,
            next: None,
        };
        let html = text(dashboard_page(&dashboard, "CSRF", Some("Done & dusted")));
        for expected in [
            "Signed in as <strong>a&lt;b</strong>",
            "<p class=\"notice\">Done &amp; dusted</p>",
            "<td>issuer https://x.example/?a=1&amp;b=&quot;2&quot;</td>",
            "<td>openid &lt;s&gt;</td>",
            "<table id=\"integrations\">",
            "<tr data-integration=\"code\">",
            "<form class=\"connect\" method=\"post\" action=\"/ui/connect\">\
             <input type=\"hidden\" name=\"integration\" value=\"code\">\
             <input type=\"hidden\" name=\"csrf\" value=\"CSRF\">\
             <input name=\"connection\" required",
            "<table id=\"connections\">",
            "<tr data-connection=\"alice\"><td>alice</td><td>&lt;i&gt;</td>\
             <td class=\"status\">valid</td>",
            "<td class=\"status\">revoked</td>",
            "action=\"/ui/connections/alice/reauthorize\">\
             <input type=\"hidden\" name=\"csrf\" value=\"CSRF\">\
             <button type=\"submit\">Re-authorize</button>",
            "action=\"/ui/connections/svc/revoke\">",
            "action=\"/ui/connections/svc/remove\">",
            "<form id=\"sign-out\" method=\"post\" action=\"/sign-out\">\
             <input type=\"hidden\" name=\"csrf\" value=\"CSRF\">\
             <button type=\"submit\">Sign out</button></form>",
        ] {
            assert!(html.contains(expected), "{expected}\n{html}");
        }
        // One connect form (the client-credentials integration has none), one re-authorize
        // (the code connection), a revoke and a remove each; each form carries the token.
        assert_eq!(html.matches("action=\"/ui/connect\"").count(), 1);
        assert_eq!(html.matches("/reauthorize\"").count(), 1);
        assert_eq!(html.matches("<form").count(), 7);
        assert_eq!(html.matches("name=\"csrf\" value=\"CSRF\"").count(), 7);
        // No inline style or script, no raw angle brackets from the data.
        for absent in [
            "<script",
            "style=",
            "<i>",
            "<s>",
            "a<b",
            "id=\"next\"",
            "id=\"first\"",
        ] {
            assert!(!html.contains(absent), "{absent}");
        }
    }

    #[test]
    fn a_page_of_connections_links_the_next_and_the_first() {
        let page = |after: Option<&str>, next: Option<&str>, connections| {
            text(dashboard_page(
                &Dashboard {
                    tenant_name: "t".to_owned(),
                    integrations: vec![],
                    connections,
                    after: after.map(str::to_owned),
                    next: next.map(str::to_owned),
                },
                "CSRF",
                None,
            ))
        };
        let first = page(None, Some("b&c"), vec![view("a", Grant::Device, "valid")]);
        assert!(first.contains("<a id=\"next\" href=\"/?after=b%26c\">Next page</a>"));
        assert!(!first.contains("id=\"first\""));
        let middle = page(
            Some("b&c"),
            Some("d"),
            vec![view("c", Grant::Device, "valid")],
        );
        assert!(middle.contains("<a id=\"first\" href=\"/\">First page</a>"));
        assert!(middle.contains("href=\"/?after=d\""));
        let past_the_end = page(Some("z"), None, vec![]);
        assert!(past_the_end.contains("No more connections."));
        assert!(!past_the_end.contains("id=\"next\""));
        assert!(page(None, None, vec![]).contains("No connections yet."));
        assert_eq!(
            page_start(Some("after=b%26c&done=x")).as_deref(),
            Some("b&c")
        );
        assert_eq!(page_start(Some("after=")), None);
        assert_eq!(
            page_start(Some(&format!("after={}", "x".repeat(1001)))),
            None
        );
        assert_eq!(page_start(None), None);
    }

    #[test]
    fn the_continue_page_refreshes_to_the_connect_url_and_links_it() {
        let html = text(continue_page("/connect/TOKEN", "al\"ice"));
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"0; url=/connect/TOKEN\">"));
        assert!(
            html.contains("<a id=\"continue\" href=\"/connect/TOKEN\">Continue to sign in</a>")
        );
        assert!(html.contains("<strong>al&quot;ice</strong>"));
        assert!(!html.contains("<script"));
    }

    /// Web sessions in `store` (without service tables): valid until they expire or the
    /// tenant's key is rotated after them; a dead one's row is deleted when it is met.
    fn sessions_flow(store: &Store) {
        use super::super::tenants;
        let (acme, _) = tenants::add(store, "acme").unwrap();
        let tenant = TenantId(acme.id);
        let sessions = || -> i64 {
            store
                .db()
                .query_one("SELECT count(*) FROM web_sessions", &[], |row| row.get(0))
                .unwrap()
        };
        let first = start_session(store, tenant, None).unwrap();
        assert_eq!(session_tenant(store, &hash(&first)).unwrap(), Some(tenant));
        // A second sign-in in the same browser ends the first session.
        let second = start_session(store, tenant, Some(&first)).unwrap();
        assert_eq!(session_tenant(store, &hash(&first)).unwrap(), None);
        assert_eq!(session_tenant(store, &hash(&second)).unwrap(), Some(tenant));
        assert_eq!(sessions(), 1);
        // Made before the key was last rotated: dead, and deleted.
        store
            .db()
            .execute(
                "UPDATE tenants SET key_rotated_at = key_rotated_at + 10 WHERE id = ?1",
                params![tenant.0],
            )
            .unwrap();
        assert_eq!(session_tenant(store, &hash(&second)).unwrap(), None);
        assert_eq!(sessions(), 0);
        // Expired: dead; and every expired session goes at the next sign-in.
        store
            .db()
            .execute("UPDATE tenants SET key_rotated_at = 0", &[])
            .unwrap();
        let third = start_session(store, tenant, None).unwrap();
        let fourth = start_session(store, tenant, None).unwrap();
        store
            .db()
            .execute(
                "UPDATE web_sessions SET expires_at = 1 WHERE token_hash = ?1",
                params![hash(&third)],
            )
            .unwrap();
        assert_eq!(session_tenant(store, &hash(&third)).unwrap(), None);
        store
            .db()
            .execute("UPDATE web_sessions SET expires_at = 1", &[])
            .unwrap();
        let fifth = start_session(store, tenant, None).unwrap();
        assert_eq!(sessions(), 1);
        assert_eq!(session_tenant(store, &hash(&fourth)).unwrap(), None);
        assert_eq!(session_tenant(store, &hash(&fifth)).unwrap(), Some(tenant));
        assert!(integration_rows(store, tenant).unwrap().is_empty());
    }

    #[test]
    fn web_sessions_end_when_they_expire_or_the_key_is_rotated() {
        let dir =
            std::env::temp_dir().join(format!("connector-pages-sessions-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir.join("store.db")).unwrap();
        sessions_flow(&store);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn web_sessions_work_in_postgres() {
        let cluster = crate::test_postgres::PgCluster::start();
        let path = super::super::tenants::tests::empty_postgres(&cluster, "pages_sessions");
        sessions_flow(&Store::open(&path).unwrap());
    }

    #[test]
    fn the_pages_headers_allow_own_forms_and_keep_the_origin() {
        let headers: std::collections::BTreeMap<_, _> = ui_headers()
            .into_iter()
            .map(|(name, value)| (name.as_str().to_owned(), value))
            .collect();
        assert_eq!(
            headers["content-security-policy"],
            "default-src 'none'; style-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'"
        );
        assert_eq!(headers["referrer-policy"], "same-origin");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }
}
