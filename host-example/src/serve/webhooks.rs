//! `/v1/webhook`: a tenant's webhook, and the notifier that tells it when a connection's
//! status changes.
//!
//! **The resource.** `PUT /v1/webhook {"url"}` creates or replaces the tenant's one webhook
//! and issues a new signing secret, `whsec_` and 256 random bits (base64url): shown in that
//! answer only, stored sealed with the store's key ([`super::tenants::seal_webhook_secret`]);
//! the previous secret stops signing at once. `GET` answers `{"url", "created_at"}` (never the
//! secret) or `404 not_found`; `DELETE` answers `204` (or `404` when there is none).
//!
//! **Which URLs** (server-side request forgery: the service sends requests where a tenant
//! says): `http` or `https` only, no user name or password, no fragment; the URL's origin must
//! be one the operator allows with `--webhook-origin ORIGIN` (repeatable) or, when none is
//! given, any `https` URL. Deliveries go through the host's transport with an allow-list of
//! exactly that origin; redirects are never followed (a `3xx` is a failed delivery). Without
//! `--webhook-origin`, an `https` URL may still name a host inside the operator's network:
//! operators with internal HTTPS services should list the allowed origins.
//!
//! **Events.** A service connection's coarse status is `connected`, `needs-reauthorization`
//! (revoked; a refresh refused, with the server's error code; or an access token expired
//! with no refresh token to renew it) or `removed`. When it differs from the status last
//! told (`notified_status`), the tenant's webhook gets
//!
//! ```text
//! POST <url>
//! Content-Type: application/json
//! Connector-Event-Id: evt_…
//! Connector-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//!
//! {"id": "evt_…", "type": "connection.status", "connection": "alice",
//!  "integration": "github", "status": "needs-reauthorization",
//!  "previous_status": "connected", "reason": "refresh-refused", "error": "invalid_grant",
//!  "at": "2025-01-01T00:00:00Z"}
//! ```
//!
//! `previous_status` is null for a connection's first event; `reason` (`revoked`,
//! `refresh-refused`, `refresh-interrupted` or `expired`) comes with `needs-reauthorization`
//! only, `error` with `refresh-refused` and `refresh-interrupted` only; `at` is when the
//! change happened (when the service first saw it, unless the store knows better). The HMAC
//! key is the secret's UTF-8 bytes, `whsec_` included; a receiver recomputes it over the
//! raw body, compares in constant time and refuses an old `t` (replays). The body holds no
//! token.
//!
//! **Delivery.** Events are level-triggered: the service compares the current status with the
//! last one told (`notified_status`), so changes between two looks are coalesced (a receiver
//! gets the latest status; fetch the connection for details). The service's own changes (a
//! browser or client-credentials connect, `DELETE`, a refresh refused during `/token`,
//! `/request` or the keep-alive sweep) nudge the notifier of the process that made them, which
//! delivers within about a second; changes made elsewhere (the CLI, or another replica of the
//! service on the same database) are found at the next sweep (`--keep-alive-interval`). Each
//! event is POSTed up to [`ATTEMPTS`] times (waits of 1 s, then 2 s; 5 s to connect, 10 s in
//! all per attempt); success is any `2xx`. One tenant's failing receiver never holds up
//! another's: each tenant's deliveries run on a thread of their own (at most
//! [`MAX_DELIVERY_THREADS`] at once), in order, stopping at the first that fails; that
//! tenant's deliveries then wait for the next sweep. A tenant without a webhook has its changes
//! recorded as told, so a new webhook hears about changes from then on. A removed connection's
//! row stays until its `removed` event is delivered (or the tenant has no webhook). Failures
//! are logged with the tenant, connection, event id, attempt count and the receiver's origin
//! (never the URL's path or query, the secret or the body).
//!
//! **Claims.** Every replica of the service on one database runs a notifier over the same
//! rows, so an event is claimed before it is sent: its connection's `notified_status` is moved
//! from the status read to the new one by one compare-and-set `UPDATE`, and only the process
//! whose update changed the row sends the event (to the others there is nothing left to tell).
//! An event that fails every attempt is released: `notified_status` is put back the same way
//! (unless a newer status was told meanwhile, which stands), and the next sweep of any replica
//! claims it again. So a change is sent by one process at a time, and again until it is
//! delivered. But since the claim comes first, a process that stops (or cannot write to the
//! store) between claiming an event and delivering or releasing it loses that event: the
//! receiver next hears of the connection's following change, whose `previous_status` names the
//! status it missed. (Before claims, `notified_status` was written once a delivery succeeded:
//! such an event was sent again after a restart, and every replica sent every event.) Replicas
//! do not order their deliveries with each other: when a connection changes again while one
//! replica delivers its event, another replica may send the newer event first.
//!
//! **Event ids.** Receivers should deduplicate by `id`. An id is `evt_` and a SHA-256
//! (base64url) of what the event says (tenant, connection, integration, both statuses, reason,
//! error, `at`) and of the stored connection's creation time and count of token writes, which
//! tell apart two changes to the same status. A `needs-reauthorization` event's `at` is the
//! store's (when the mark was set, or when the token expired), so whichever process sends it,
//! and however often, it has the same id and body. The store keeps no time for `connected`
//! and `removed`: their `at` is when the sending process first saw the change, and random bits
//! enter their id. A process keeps a `connected` event for its own later attempts (the same id
//! and `at`, unless tokens were written meanwhile); another replica that claims it after a
//! release makes its own. A `removed` event gets new random bits at every claim, since nothing
//! in the store tells one removal of a connection from the next, and an id must never name two
//! changes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use ring::hmac;
use serde::Deserialize;

use super::auth::{Body, TenantId, body_bytes, json_body};
use super::connections::internal_name;
use super::errors::{ApiError, Code};
use super::tenants::{open_webhook_secret, random_token, seal_webhook_secret};
use super::{AppState, ServeError};
use crate::connections::health;
use crate::describe::format_time;
use crate::sql_params as params;
use crate::store::{ConnectionState, Store, StoreError, StoredConnection};
use crate::types::{HttpMethod, HttpRequest, KeyValue};
use crate::{AllowList, HttpTransport, Limits};

/// What a signing secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";

/// How many times an event is POSTed before it waits for the next sweep.
pub const ATTEMPTS: u32 = 3;

/// The waits between attempts.
const BACKOFF: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

/// How many tenants' deliveries run at once.
pub const MAX_DELIVERY_THREADS: usize = 8;

/// The most events one tenant's delivery thread sends before the notifier looks again.
const MAX_EVENTS_PER_BATCH: usize = 100;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/webhook", get(show).put(replace).delete(remove))
}

/// `PUT /v1/webhook`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWebhook {
    url: String,
}

/// `url` checked as a webhook URL against the allowed `origins` (none: any `https` URL):
/// the URL as it will be used, or why it is refused (for an `invalid_request`).
pub fn check_url(url: &str, origins: &[url::Origin]) -> Result<String, String> {
    let parsed =
        url::Url::parse(url).map_err(|_| "url: not an absolute http or https URL".to_owned())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err("url: not an absolute http or https URL".to_owned());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("url: must not carry a user name or password".to_owned());
    }
    if parsed.fragment().is_some() {
        return Err("url: must not have a fragment (`#…`)".to_owned());
    }
    if origins.is_empty() {
        if parsed.scheme() != "https" {
            return Err(
                "url: must be https; an http origin must be allowed by the service's \
                        operator (`serve --webhook-origin ORIGIN`)"
                    .to_owned(),
            );
        }
        if internal_host(&parsed) {
            return Err(
                "url: names this machine or a private network (a loopback, private, \
                 link-local or unspecified address, or localhost); such an origin must be \
                 allowed by the service's operator (`serve --webhook-origin ORIGIN`)"
                    .to_owned(),
            );
        }
    } else if !origins.contains(&parsed.origin()) {
        let allowed: Vec<String> = origins
            .iter()
            .map(url::Origin::ascii_serialization)
            .collect();
        return Err(format!(
            "url: its origin is not allowed; the service sends webhooks to {} only (its \
             operator's `serve --webhook-origin`)",
            allowed.join(", ")
        ));
    }
    Ok(parsed.to_string())
}

/// Whether `url`'s host is `localhost` (or a name under it) or an IP address of this
/// machine or a private network: loopback, private (RFC 1918, IPv6 unique local),
/// link-local, unspecified, CGNAT shared space, or an IPv4-mapped IPv6 form of one. Host
/// names that resolve to such addresses are not caught here: an operator who must rule them
/// out lists the allowed origins (`--webhook-origin`).
fn internal_host(url: &url::Url) -> bool {
    use std::net::{IpAddr, Ipv4Addr};
    let v4 = |ip: Ipv4Addr| {
        ip.is_loopback()
            || ip.is_private()
            || ip.is_link_local()
            || ip.is_unspecified()
            || ip.is_broadcast()
            || (ip.octets()[0] == 100 && (ip.octets()[1] & 0xC0) == 64)
    };
    let ip = |ip: IpAddr| match ip {
        IpAddr::V4(ip) => v4(ip),
        IpAddr::V6(ip) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xFE00) == 0xFC00
                || (ip.segments()[0] & 0xFFC0) == 0xFE80
                || ip.to_ipv4_mapped().is_some_and(v4)
        }
    };
    match url.host() {
        Some(url::Host::Ipv4(address)) => v4(address),
        Some(url::Host::Ipv6(address)) => ip(IpAddr::V6(address)),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.');
            name == "localhost" || name.ends_with(".localhost")
        }
        None => true,
    }
}

async fn replace(
    State(state): State<AppState>,
    tenant: TenantId,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let request: NewWebhook = json_body(&body_bytes(body)?)?;
    let url = check_url(&request.url, &state.webhook_origins).map_err(ApiError::invalid)?;
    let secret = format!(
        "{SECRET_PREFIX}{}",
        random_token().map_err(|error| ApiError::internal(&error))?
    );
    let created_at = crate::store::now();
    let (stored_url, stored_secret) = (url.clone(), secret.clone());
    state
        .blocking(move |connections| {
            let store = connections.store();
            store.db().execute(
                "INSERT INTO webhooks (tenant_id, url, secret, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(tenant_id) DO UPDATE SET url = ?2, secret = ?3, created_at = ?4",
                params![
                    tenant.0,
                    stored_url,
                    seal_webhook_secret(store, tenant.0, stored_secret),
                    created_at as i64
                ],
            )?;
            Ok(())
        })
        .await?;
    state.changes.webhook_changed(tenant.0);
    Ok((
        // The answer holds the secret.
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({
            "url": url,
            "secret": secret,
            "created_at": format_time(created_at),
        })),
    ))
}

fn no_webhook() -> ApiError {
    ApiError::new(
        Code::NotFound,
        "no webhook; create one with PUT /v1/webhook",
    )
}

async fn show(
    State(state): State<AppState>,
    tenant: TenantId,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (url, created_at) = state
        .blocking(move |connections| {
            connections
                .store()
                .db()
                .query_opt(
                    "SELECT url, created_at FROM webhooks WHERE tenant_id = ?1",
                    params![tenant.0],
                    |row| Ok((row.get::<String>(0)?, row.get::<i64>(1)?)),
                )?
                .ok_or_else(no_webhook)
        })
        .await?;
    Ok(Json(serde_json::json!({
        "url": url,
        "created_at": format_time(created_at.max(0) as u64),
    })))
}

async fn remove(State(state): State<AppState>, tenant: TenantId) -> Result<StatusCode, ApiError> {
    state
        .blocking(move |connections| {
            let removed = connections.store().db().execute(
                "DELETE FROM webhooks WHERE tenant_id = ?1",
                params![tenant.0],
            )?;
            if removed == 0 {
                return Err(no_webhook());
            }
            Ok(())
        })
        .await?;
    state.changes.webhook_changed(tenant.0);
    Ok(StatusCode::NO_CONTENT)
}

/// A connection's coarse status, as events name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Usable: its tokens are valid or can be renewed without the user.
    Connected,
    /// The user must connect it again.
    NeedsReauthorization,
    /// Deleted.
    Removed,
}

impl Status {
    /// Its name in events (and in `notified_status`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::NeedsReauthorization => "needs-reauthorization",
            Self::Removed => "removed",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [Self::Connected, Self::NeedsReauthorization, Self::Removed]
            .into_iter()
            .find(|status| status.name() == name)
    }
}

/// A connection's status as the notifier sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The coarse status.
    pub status: Status,
    /// Why it needs re-authorization: `revoked`, `refresh-refused`, `refresh-interrupted` or
    /// `expired`.
    pub reason: Option<&'static str>,
    /// The server's error code, for `refresh-refused` and `refresh-interrupted`.
    pub error: Option<String>,
    /// Since when, when the store knows (Unix seconds).
    pub since: Option<u64>,
}

/// The status of a service connection stored as `connection` (`None`: no longer stored) at
/// `now`.
pub fn observe(connection: Option<&StoredConnection>, now: u64) -> Observed {
    let observed = |status, reason, error, since| Observed {
        status,
        reason,
        error,
        since,
    };
    let Some(connection) = connection else {
        return observed(Status::Removed, None, None, None);
    };
    if !health(connection, now).needs_action() {
        return observed(Status::Connected, None, None, None);
    }
    let needs = Status::NeedsReauthorization;
    match &connection.state {
        ConnectionState::NeedsReauthorization { reason, since } => observed(
            needs,
            Some(reason.name()),
            reason.error().map(str::to_owned),
            Some(*since),
        ),
        ConnectionState::Active => {
            observed(needs, Some("expired"), None, connection.tokens.expires_at)
        }
    }
}

/// An event to tell a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `evt_` and a SHA-256 of the change (see the module's documentation, also for when
    /// another attempt at delivering the same change has another id).
    pub id: String,
    /// The tenant's connection id.
    pub connection: String,
    /// Its integration.
    pub integration: String,
    /// Its status now.
    pub observed: Observed,
    /// The status last told (`None`: none yet).
    pub previous: Option<Status>,
    /// When the change happened (Unix seconds).
    pub at: u64,
}

/// The JSON body of `event`.
pub fn event_body(event: &Event) -> Vec<u8> {
    let mut body = serde_json::json!({
        "id": event.id,
        "type": "connection.status",
        "connection": event.connection,
        "integration": event.integration,
        "status": event.observed.status.name(),
        "previous_status": event.previous.map(Status::name),
        "at": format_time(event.at),
    });
    if let Some(reason) = event.observed.reason {
        body["reason"] = reason.into();
    }
    if let Some(error) = &event.observed.error {
        body["error"] = error.as_str().into();
    }
    body.to_string().into_bytes()
}

/// The `Connector-Signature` header of `body` sent at `timestamp` (Unix seconds):
/// `t=<timestamp>,v1=<lowercase hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut context = hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    let hex = crate::seal::hex(context.sign().as_ref());
    format!("t={timestamp},v1={hex}")
}

/// Sends `body` (event `id`) to `url`, signed with `secret`, up to [`ATTEMPTS`] times,
/// sleeping with `sleep` between attempts: the number of attempts it took, or (attempts,
/// why the last failed: a status or the kind of transport failure).
pub fn deliver(
    url: &str,
    secret: &str,
    id: &str,
    body: &[u8],
    sleep: &mut dyn FnMut(Duration),
) -> Result<u32, (u32, String)> {
    let transport = HttpTransport::new(
        AllowList::from_urls([url]),
        Limits {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(10),
            max_response_bytes: 64 * 1024,
            ..Limits::default()
        },
    );
    let header = |name: &str, value: String| KeyValue {
        name: name.to_owned(),
        value,
    };
    let mut why = String::new();
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            sleep(BACKOFF[(attempt as usize - 2).min(BACKOFF.len() - 1)]);
        }
        let request = HttpRequest {
            method: HttpMethod::Post,
            url: url.to_owned(),
            headers: vec![
                header("Content-Type", "application/json".to_owned()),
                header("Connector-Event-Id", id.to_owned()),
                header(
                    "Connector-Signature",
                    signature(secret, crate::store::now(), body),
                ),
            ],
            body: body.to_vec(),
        };
        why = match transport.send(request) {
            Ok(response) if (200..300).contains(&response.status) => return Ok(attempt),
            Ok(response) => format!("HTTP {}", response.status),
            Err(error) => transport_failure(&error).to_owned(),
        };
    }
    Err((ATTEMPTS, why))
}

/// The kind of a transport failure, for the log (never its text, which may quote the URL).
fn transport_failure(error: &crate::types::TransportError) -> &'static str {
    use crate::types::TransportError as E;
    match error {
        E::Denied(_) => "denied by the allow-list",
        E::InvalidRequest(_) => "invalid request",
        E::ConnectionFailed(_) => "connection failed",
        E::Tls(_) => "TLS failed",
        E::Timeout => "timed out",
        E::ResponseTooLarge(_) => "answer too large",
        E::Other(_) => "failed",
    }
}

/// What the notifier is told.
enum Wake {
    /// Tenant `0`'s connection `1` may have changed.
    Connection(i64, String),
    /// Tenant `0`'s webhook was created, replaced or deleted.
    Tenant(i64),
    /// A tenant's delivery thread finished.
    Done(Delivered),
}

/// An event this process claimed (see the module's documentation): its connection's
/// `notified_status` was moved from `from` to the event's status.
#[derive(Clone)]
struct Claimed {
    event: Event,
    /// `notified_status` as it was before the claim (put back if the event is not
    /// delivered).
    from: Option<String>,
}

/// What a delivery thread did.
struct Delivered {
    tenant: i64,
    /// The events delivered, in order.
    delivered: Vec<Claimed>,
    /// The events not delivered: the one that failed (or panicked) and those after it.
    undelivered: Vec<Claimed>,
}

/// Tells the notifier of changes: cheap, never blocks, never fails (a stopped notifier is
/// ignored; the change is found at the next start's first sweep).
#[derive(Clone)]
pub struct Notifier(mpsc::Sender<Wake>);

impl Notifier {
    /// Tenant `tenant`'s connection `id` may have changed status (connected, removed, a
    /// refresh refused).
    pub fn connection_changed(&self, tenant: i64, id: &str) {
        let _ = self.0.send(Wake::Connection(tenant, id.to_owned()));
    }

    /// Tenant `tenant`'s webhook was created, replaced or deleted: pending events go to the
    /// new one at once.
    pub fn webhook_changed(&self, tenant: i64) {
        let _ = self.0.send(Wake::Tenant(tenant));
    }
}

/// Where a look at the connections is limited to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    Tenant(i64),
    Connection(i64, String),
}

/// A change found, not yet told.
#[derive(Clone, Debug)]
struct Change {
    tenant: i64,
    id: String,
    integration: String,
    observed: Observed,
    previous: Option<Status>,
    /// `notified_status` as it was read: what the claim expects to find.
    notified: Option<String>,
    /// The stored connection's creation time and token-write count (`None`: not stored).
    /// Two changes to the same status of one connection differ here when their status and
    /// time do not: becoming usable again takes new tokens (or a new connection).
    stored: Option<(u64, u64)>,
}

/// An event this process made, kept for its own later attempts.
struct Made {
    event: Event,
    /// The [`Change::stored`] it was made for.
    stored: Option<(u64, u64)>,
}

/// The notifier's state, on its own thread.
struct Notifications {
    store: Store,
    wake: mpsc::Sender<Wake>,
    /// Tenants whose delivery thread runs.
    in_flight: HashSet<i64>,
    /// Tenants whose last delivery failed: left until the next sweep.
    held_back: HashSet<i64>,
    /// Tenants with changes left for want of a delivery thread.
    deferred: BTreeSet<i64>,
    /// The events this process made for changes not yet told (their id and time), kept
    /// across its attempts; dropped once told, by this process or another.
    events: HashMap<(i64, String), Made>,
    /// The origins webhooks may be sent to (`--webhook-origin`; empty: https, not internal):
    /// checked again before every delivery, since a URL stored under another setting (an
    /// earlier run, another instance) may no longer be allowed.
    origins: Vec<url::Origin>,
}

/// Starts the notifier on the store at `path` (sealed with `key`): looks at every service
/// connection each `interval`, and at those it is told of at once. Returns once it has
/// opened the store.
pub fn start(
    path: std::path::PathBuf,
    key: Option<crate::seal::SealingKey>,
    interval: Duration,
    origins: Vec<url::Origin>,
) -> Result<Notifier, ServeError> {
    let (wake, woken) = mpsc::channel();
    let notifier = Notifier(wake.clone());
    let (opened, open_result) = mpsc::channel();
    let dispatch = tracing::dispatcher::get_default(|dispatch| dispatch.clone());
    std::thread::Builder::new()
        .name("connector-notifier".into())
        .spawn(move || {
            let _log = tracing::dispatcher::set_default(&dispatch);
            let store = match Store::open_with_key(&path, key) {
                Ok(store) => {
                    let _ = opened.send(Ok(()));
                    store
                }
                Err(error) => {
                    let _ = opened.send(Err(ServeError::Store(error)));
                    return;
                }
            };
            let mut notifications = Notifications {
                store,
                wake,
                in_flight: HashSet::new(),
                held_back: HashSet::new(),
                deferred: BTreeSet::new(),
                events: HashMap::new(),
                origins,
            };
            notifications.run(&woken, interval);
        })
        .map_err(ServeError::Io)?;
    open_result.recv().unwrap_or_else(|_| {
        Err(ServeError::Io(std::io::Error::other(
            "the notifier ended before opening the store",
        )))
    })?;
    Ok(notifier)
}

/// Moves tenant `tenant`'s connection `id`'s `notified_status` from `from` to `to`, if it is
/// still `from` (a compare-and-set: one statement, so of several processes trying the same
/// move, one succeeds): whether it did.
fn move_notified(
    db: &crate::store::Db,
    tenant: i64,
    id: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<bool, StoreError> {
    let changed = db.execute(
        "UPDATE service_connections SET notified_status = ?3
         WHERE tenant_id = ?1 AND id = ?2 AND notified_status IS NOT DISTINCT FROM ?4",
        params![tenant, id, to, from],
    )?;
    Ok(changed == 1)
}

/// The id of the event that tells `change` as happened at `at`: `evt_` and the SHA-256
/// (base64url, 43 characters) of everything the event says (tenant, connection,
/// integration, previous and new status, reason, error, `at`), the stored connection's
/// creation time and token-write count, and `nonce` (random bits, when the store does not
/// know the time of the change). Without a nonce, every process that tells the change
/// derives the same id.
fn event_id(change: &Change, at: u64, nonce: Option<&str>) -> String {
    use base64::Engine as _;
    let mut input = String::from("connector-event-id/1");
    let mut part = |value: Option<&str>| match value {
        None => input.push_str("|-"),
        Some(value) => input.push_str(&format!("|{}:{value}", value.len())),
    };
    part(Some(&change.tenant.to_string()));
    part(Some(&change.id));
    part(Some(&change.integration));
    part(change.previous.map(Status::name));
    part(Some(change.observed.status.name()));
    part(change.observed.reason);
    part(change.observed.error.as_deref());
    part(Some(&at.to_string()));
    part(
        change
            .stored
            .map(|(created, writes)| format!("{created}/{writes}"))
            .as_deref(),
    );
    part(nonce);
    let digest = ring::digest::digest(&ring::digest::SHA256, input.as_bytes());
    format!(
        "evt_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
    )
}

/// 256 random bits (base64url), for an event id's nonce. The system's random source failing
/// is all but impossible; the time then still makes it unique.
fn nonce() -> String {
    random_token().unwrap_or_else(|_| {
        format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        )
    })
}

impl Notifications {
    /// Waits for changes, finished deliveries and sweeps, forever.
    fn run(&mut self, woken: &mpsc::Receiver<Wake>, interval: Duration) {
        // The first sweep at once: changes made while the service was stopped.
        let mut next_sweep = Instant::now();
        loop {
            let mut woke = Vec::new();
            match woken.recv_timeout(next_sweep.saturating_duration_since(Instant::now())) {
                Ok(wake) => woke.push(wake),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            // Everything else already queued, in the same look.
            woke.extend(woken.try_iter());
            let sweep = Instant::now() >= next_sweep;
            if sweep {
                next_sweep = Instant::now() + interval;
            }
            let looked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if sweep {
                    // A sweep is when failed deliveries are tried again.
                    self.held_back.clear();
                }
                let mut scopes = BTreeSet::new();
                for wake in woke {
                    self.take(wake, &mut scopes);
                }
                self.look(if sweep { None } else { Some(&scopes) })
            }));
            match looked {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, "webhooks: could not read the store"),
                Err(_) => tracing::error!("webhooks: a look at the connections panicked"),
            }
        }
    }

    /// Takes in one wake-up: what to look at.
    fn take(&mut self, wake: Wake, scopes: &mut BTreeSet<Scope>) {
        match wake {
            Wake::Connection(tenant, id) => {
                scopes.insert(Scope::Connection(tenant, id));
            }
            Wake::Tenant(tenant) => {
                self.held_back.remove(&tenant);
                scopes.insert(Scope::Tenant(tenant));
            }
            Wake::Done(done) => {
                let tenant = done.tenant;
                self.in_flight.remove(&tenant);
                for claimed in &done.delivered {
                    self.told(tenant, &claimed.event);
                }
                for claimed in &done.undelivered {
                    self.release(tenant, claimed);
                }
                if done.undelivered.is_empty() {
                    // Changes that came while it delivered.
                    scopes.insert(Scope::Tenant(tenant));
                } else {
                    self.held_back.insert(tenant);
                }
                for deferred in std::mem::take(&mut self.deferred) {
                    scopes.insert(Scope::Tenant(deferred));
                }
            }
        }
    }

    /// Looks at the connections in `scopes` (`None`: all), and tells each tenant what
    /// changed.
    fn look(&mut self, scopes: Option<&BTreeSet<Scope>>) -> Result<(), StoreError> {
        let changes = match scopes {
            None => self.changes(None)?,
            Some(scopes) => {
                let mut all = Vec::new();
                for scope in scopes {
                    all.extend(self.changes(Some(scope))?);
                }
                all
            }
        };
        let mut by_tenant: BTreeMap<i64, Vec<Change>> = BTreeMap::new();
        for change in changes {
            by_tenant.entry(change.tenant).or_default().push(change);
        }
        for (tenant, changes) in by_tenant {
            if self.in_flight.contains(&tenant) || self.held_back.contains(&tenant) {
                continue;
            }
            let Some((url, secret)) = self.webhook(tenant)? else {
                // No webhook: recorded as told.
                for change in changes {
                    self.settle(&change);
                }
                continue;
            };
            if self.in_flight.len() >= MAX_DELIVERY_THREADS {
                self.deferred.insert(tenant);
                continue;
            }
            let mut claimed = Vec::new();
            for change in changes.into_iter().take(MAX_EVENTS_PER_BATCH) {
                match self.claim(&change) {
                    Ok(true) => {
                        let from = change.notified.clone();
                        claimed.push(Claimed {
                            event: self.event(change),
                            from,
                        });
                    }
                    // Claimed or told by another process, or changed again: not ours to
                    // send (a later look sees what it is now).
                    Ok(false) => {
                        self.events.remove(&(tenant, change.id));
                    }
                    Err(error) => {
                        tracing::error!(
                            tenant,
                            connection = change.id.as_str(),
                            %error,
                            "webhooks: could not claim an event; tried again at the next sweep"
                        );
                        break;
                    }
                }
            }
            if !claimed.is_empty() {
                self.in_flight.insert(tenant);
                self.send(tenant, url, secret, claimed);
            }
        }
        Ok(())
    }

    /// The changes not yet told in `scope` (`None`: every service connection).
    fn changes(&mut self, scope: Option<&Scope>) -> Result<Vec<Change>, StoreError> {
        let (tenant, id) = match scope {
            None => (None, None),
            Some(Scope::Tenant(tenant)) => (Some(*tenant), None),
            Some(Scope::Connection(tenant, id)) => (Some(*tenant), Some(id.as_str())),
        };
        // The casts: PostgreSQL cannot tell a parameter's type from `IS NULL` alone.
        let rows: Vec<(i64, String, String, Option<String>, bool)> = self.store.db().query(
            "SELECT sc.tenant_id, sc.id, sc.integration, sc.notified_status,
                    c.name IS NOT NULL
             FROM service_connections sc
             LEFT JOIN connections c ON c.name = 't' || sc.tenant_id || ':' || sc.id
             WHERE (CAST(?1 AS BIGINT) IS NULL OR sc.tenant_id = ?1)
               AND (CAST(?2 AS TEXT) IS NULL OR sc.id = ?2)
             ORDER BY sc.tenant_id, sc.id",
            params![tenant, id],
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            },
        )?;
        let now = crate::store::now();
        let mut changes = Vec::new();
        for (tenant, id, integration, notified, stored) in rows {
            let connection = if stored {
                match self.store.get(&internal_name(TenantId(tenant), &id)) {
                    Ok(connection) => Some(connection),
                    Err(StoreError::NotFound(_)) => None,
                    Err(error) => {
                        tracing::error!(tenant, connection = id.as_str(), %error, "webhooks: unreadable");
                        continue;
                    }
                }
            } else {
                None
            };
            let observed = observe(connection.as_ref(), now);
            let previous = notified.as_deref().and_then(Status::parse);
            if previous == Some(observed.status) {
                // Told, by this process or another: an event kept for it is done with
                // (unless it is on its way from here, and may be tried again).
                if !self.in_flight.contains(&tenant) {
                    self.events.remove(&(tenant, id));
                }
                continue;
            }
            changes.push(Change {
                tenant,
                id,
                integration,
                observed,
                previous,
                notified,
                stored: connection
                    .as_ref()
                    .map(|connection| (connection.created_at, connection.token_writes)),
            });
        }
        Ok(changes)
    }

    /// Tenant `tenant`'s webhook: its URL and opened secret, if it has one.
    fn webhook(&self, tenant: i64) -> Result<Option<(String, String)>, StoreError> {
        let Some((url, secret)) = self.store.db().query_opt(
            "SELECT url, secret FROM webhooks WHERE tenant_id = ?1",
            params![tenant],
            |row| Ok((row.get::<String>(0)?, row.get::<String>(1)?)),
        )?
        else {
            return Ok(None);
        };
        if let Err(refused) = check_url(&url, &self.origins) {
            // Treated as no webhook: its changes are recorded as told, not held for a URL
            // the operator no longer allows.
            tracing::warn!(
                tenant,
                reason = refused.as_str(),
                "webhook: not sent; the stored URL is not allowed by this service's settings"
            );
            return Ok(None);
        }
        Ok(Some((
            url,
            open_webhook_secret(&self.store, tenant, secret)?,
        )))
    }

    /// Claims `change` for this process: moves its `notified_status` from the value read to
    /// the new status, unless it changed meanwhile (another process claimed or told it, or
    /// the connection's row is gone). Whether this process is to send it.
    fn claim(&self, change: &Change) -> Result<bool, StoreError> {
        move_notified(
            self.store.db(),
            change.tenant,
            &change.id,
            change.notified.as_deref(),
            Some(change.observed.status.name()),
        )
    }

    /// The event for `change`, just claimed: the one this process made for it before (the
    /// same id and time for its every attempt), or a new one. A `removed` event is always
    /// new: nothing in the store tells one removal of a connection from the next.
    fn event(&mut self, change: Change) -> Event {
        let key = (change.tenant, change.id.clone());
        if let Some(made) = self.events.get(&key)
            && change.observed.status != Status::Removed
            && made.stored == change.stored
            && made.event.observed == change.observed
            && made.event.previous == change.previous
            && made.event.integration == change.integration
        {
            return made.event.clone();
        }
        // The store's time of the change (a mark, an expiry) makes the id the same in every
        // process; without it (`connected`, `removed`), random bits make it this process's.
        let at = change.observed.since.unwrap_or_else(crate::store::now);
        let nonce = change.observed.since.is_none().then(nonce);
        let event = Event {
            id: event_id(&change, at, nonce.as_deref()),
            at,
            connection: change.id,
            integration: change.integration,
            observed: change.observed,
            previous: change.previous,
        };
        if event.observed.status == Status::Removed {
            self.events.remove(&key);
        } else {
            self.events.insert(
                key,
                Made {
                    event: event.clone(),
                    stored: change.stored,
                },
            );
        }
        event
    }

    /// Records that tenant `tenant` needs not be told of `change` (it has no webhook, or one
    /// this service may not send to): `notified_status` becomes the new status (unless it
    /// changed meanwhile), and a removed connection's row goes.
    fn settle(&mut self, change: &Change) {
        self.events.remove(&(change.tenant, change.id.clone()));
        let settled = self.claim(change).and_then(|_| {
            if change.observed.status == Status::Removed {
                self.delete_removed(change.tenant, &change.id)?;
            }
            Ok(())
        });
        if let Err(error) = settled {
            tracing::error!(
                tenant = change.tenant,
                connection = change.id.as_str(),
                %error,
                "webhooks: could not record what was told"
            );
        }
    }

    /// `event` was delivered to tenant `tenant` (its claim recorded it as told): forgets it,
    /// and a removed connection's row goes.
    fn told(&mut self, tenant: i64, event: &Event) {
        self.forget(tenant, event);
        if event.observed.status == Status::Removed
            && let Err(error) = self.delete_removed(tenant, &event.connection)
        {
            tracing::error!(
                tenant,
                connection = event.connection.as_str(),
                %error,
                "webhooks: could not delete a removed connection's row"
            );
        }
    }

    /// Puts back the `notified_status` that an undelivered event's claim replaced, unless it
    /// changed since (another process told a newer status: that one stands), so that the
    /// next sweep (of any process) tries the change again.
    fn release(&mut self, tenant: i64, claimed: &Claimed) {
        let event = &claimed.event;
        match move_notified(
            self.store.db(),
            tenant,
            &event.connection,
            Some(event.observed.status.name()),
            claimed.from.as_deref(),
        ) {
            Ok(true) => {}
            Ok(false) => self.forget(tenant, event),
            Err(error) => tracing::error!(
                tenant,
                connection = event.connection.as_str(),
                event = event.id.as_str(),
                %error,
                "webhooks: could not release an undelivered event; it stays recorded as told"
            ),
        }
    }

    /// Drops the event kept for `event`'s connection if it is `event`.
    fn forget(&mut self, tenant: i64, event: &Event) {
        let key = (tenant, event.connection.clone());
        if self
            .events
            .get(&key)
            .is_some_and(|made| made.event.id == event.id)
        {
            self.events.remove(&key);
        }
    }

    /// Deletes tenant `tenant`'s connection `id`'s row once its removal was told, unless the
    /// connection was made again meanwhile.
    fn delete_removed(&self, tenant: i64, id: &str) -> Result<usize, StoreError> {
        self.store.db().execute(
            "DELETE FROM service_connections WHERE tenant_id = ?1 AND id = ?2
             AND NOT EXISTS (SELECT 1 FROM connections WHERE name = ?3)",
            params![tenant, id, internal_name(TenantId(tenant), id)],
        )
    }

    /// Delivers tenant `tenant`'s `events` (claimed) in order on a thread of their own,
    /// stopping at the first that fails; reports back with [`Wake::Done`].
    fn send(&mut self, tenant: i64, url: String, secret: String, events: Vec<Claimed>) {
        let wake = self.wake.clone();
        let dispatch = tracing::dispatcher::get_default(|dispatch| dispatch.clone());
        // Released if the thread cannot start.
        let kept = events.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("connector-webhook-{tenant}"))
            .spawn(move || {
                let _log = tracing::dispatcher::set_default(&dispatch);
                let origin = url::Url::parse(&url)
                    .map(|url| url.origin().ascii_serialization())
                    .unwrap_or_default();
                let mut sent = 0;
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    for claimed in &events {
                        let event = &claimed.event;
                        let body = event_body(event);
                        match deliver(&url, &secret, &event.id, &body, &mut std::thread::sleep) {
                            Ok(attempts) => {
                                tracing::info!(
                                    tenant,
                                    connection = event.connection.as_str(),
                                    event = event.id.as_str(),
                                    status = event.observed.status.name(),
                                    attempts,
                                    "webhook: delivered"
                                );
                                sent += 1;
                            }
                            Err((attempts, why)) => {
                                tracing::warn!(
                                    tenant,
                                    connection = event.connection.as_str(),
                                    event = event.id.as_str(),
                                    receiver = origin.as_str(),
                                    attempts,
                                    last = why.as_str(),
                                    "webhook: not delivered; tried again at the next sweep"
                                );
                                break;
                            }
                        }
                    }
                }));
                if outcome.is_err() {
                    tracing::error!(tenant, "webhook: a delivery panicked");
                }
                let mut delivered = events;
                let undelivered = delivered.split_off(sent.min(delivered.len()));
                let _ = wake.send(Wake::Done(Delivered {
                    tenant,
                    delivered,
                    undelivered,
                }));
            });
        if let Err(error) = spawned {
            tracing::error!(tenant, %error, "webhook: could not start a delivery thread");
            self.in_flight.remove(&tenant);
            self.held_back.insert(tenant);
            for claimed in &kept {
                self.release(tenant, claimed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Grant, Reauthorization, SecretSource};
    use crate::types::TokenSet;

    #[test]
    fn the_signature_is_hmac_sha256_of_time_dot_body_in_lowercase_hex() {
        // Computed independently: Python's `hmac.new(b"whsec_test", b"1700000000.{}",
        // hashlib.sha256).hexdigest()`.
        assert_eq!(
            signature("whsec_test", 1_700_000_000, b"{}"),
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
        assert_ne!(
            signature("whsec_test", 1_700_000_001, b"{}"),
            signature("whsec_test", 1_700_000_000, b"{}")
        );
    }

    #[test]
    fn webhook_urls_are_http_or_https_without_credentials_on_an_allowed_origin() {
        let local = url::Url::parse("http://127.0.0.1:9000").unwrap().origin();
        // No origins given: https only.
        assert_eq!(
            check_url("https://hooks.example/in?x=1", &[]).as_deref(),
            Ok("https://hooks.example/in?x=1")
        );
        for refused in [
            "http://hooks.example/in",
            "ftp://hooks.example/in",
            "https://user:pw@hooks.example/in",
            "https://user@hooks.example/in",
            "https://hooks.example/in#part",
            "/relative",
            "not a url",
            "file:///etc/passwd",
        ] {
            assert!(check_url(refused, &[]).is_err(), "{refused}");
        }
        assert!(
            check_url("http://hooks.example/in", &[])
                .unwrap_err()
                .contains("--webhook-origin")
        );
        // No origins given: nothing on this machine or a private network, by address.
        for internal in [
            "https://127.0.0.1/in",
            "https://127.8.9.10:8443/in",
            "https://10.0.0.5/in",
            "https://172.16.1.1/in",
            "https://192.168.1.1/in",
            "https://169.254.169.254/latest",
            "https://100.64.0.1/in",
            "https://0.0.0.0/in",
            "https://[::1]/in",
            "https://[::]/in",
            "https://[fd00::1]/in",
            "https://[fe80::1]/in",
            "https://[::ffff:10.0.0.1]/in",
            "https://localhost/in",
            "https://api.localhost./in",
            "https://2130706433/in",
        ] {
            let refused = check_url(internal, &[]).unwrap_err();
            assert!(refused.contains("private network"), "{internal}: {refused}");
        }
        for public in [
            "https://8.8.8.8/in",
            "https://[2001:db8::1]/in",
            "https://100.128.0.1/in",
        ] {
            assert!(check_url(public, &[]).is_ok(), "{public}");
        }
        // Origins given: exactly those (scheme, host and port).
        let allowed = [local];
        assert!(check_url("http://127.0.0.1:9000/hook", &allowed).is_ok());
        for refused in [
            "http://127.0.0.1:9001/hook",
            "https://127.0.0.1:9000/hook",
            "https://hooks.example/in",
            "http://127.0.0.1:9000/hook#x",
        ] {
            assert!(check_url(refused, &allowed).is_err(), "{refused}");
        }
    }

    fn stored(state: ConnectionState, expires_at: Option<u64>, refresh: bool) -> StoredConnection {
        StoredConnection {
            name: "t1:c".into(),
            config: crate::config_with_defaults(
                crate::profile_with_defaults("p", "https://a.example/token"),
                "id",
            ),
            secret: SecretSource::None,
            secrets: Default::default(),
            grant: Grant::AuthorizationCode,
            tokens: TokenSet {
                access_token: "at".into(),
                token_type: "bearer".into(),
                expires_at,
                refresh_token: refresh.then(|| "rt".to_owned()),
                id_token: None,
                scopes: vec![],
                obtained_at: 0,
                extras: vec![],
                dpop_key_thumbprint: None,
            },
            created_at: 0,
            updated_at: 0,
            token_writes: 1,
            state,
            refresh_interrupted_at: None,
        }
    }

    #[test]
    fn the_coarse_status_and_its_reason() {
        let now = 1000;
        let status = |connection: Option<&StoredConnection>| {
            let observed = observe(connection, now);
            (
                observed.status,
                observed.reason,
                observed.error,
                observed.since,
            )
        };
        let active = ConnectionState::Active;
        assert_eq!(
            status(Some(&stored(active.clone(), Some(now - 1), true))),
            (Status::Connected, None, None, None)
        );
        assert_eq!(
            status(Some(&stored(active.clone(), None, false))),
            (Status::Connected, None, None, None)
        );
        assert_eq!(
            status(Some(&stored(active, Some(now - 1), false))),
            (
                Status::NeedsReauthorization,
                Some("expired"),
                None,
                Some(now - 1)
            )
        );
        let refused = ConnectionState::NeedsReauthorization {
            reason: Reauthorization::RefreshRefused("invalid_grant".into()),
            since: 7,
        };
        assert_eq!(
            status(Some(&stored(refused, Some(now + 99), true))),
            (
                Status::NeedsReauthorization,
                Some("refresh-refused"),
                Some("invalid_grant".into()),
                Some(7)
            )
        );
        let revoked = ConnectionState::NeedsReauthorization {
            reason: Reauthorization::Revoked,
            since: 8,
        };
        assert_eq!(
            status(Some(&stored(revoked, None, true))),
            (Status::NeedsReauthorization, Some("revoked"), None, Some(8))
        );
        assert_eq!(status(None), (Status::Removed, None, None, None));
        for status in [
            Status::Connected,
            Status::NeedsReauthorization,
            Status::Removed,
        ] {
            assert_eq!(Status::parse(status.name()), Some(status));
        }
        assert_eq!(Status::parse("valid"), None);
    }

    #[test]
    fn the_event_body_names_the_change() {
        let mut event = Event {
            id: "evt_1".into(),
            connection: "alice".into(),
            integration: "github".into(),
            observed: Observed {
                status: Status::NeedsReauthorization,
                reason: Some("refresh-refused"),
                error: Some("invalid_grant".into()),
                since: Some(0),
            },
            previous: Some(Status::Connected),
            at: 0,
        };
        let body: serde_json::Value = serde_json::from_slice(&event_body(&event)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "id": "evt_1",
                "type": "connection.status",
                "connection": "alice",
                "integration": "github",
                "status": "needs-reauthorization",
                "previous_status": "connected",
                "reason": "refresh-refused",
                "error": "invalid_grant",
                "at": "1970-01-01T00:00:00Z",
            })
        );
        event.observed = observe(None, 0);
        event.previous = None;
        let body: serde_json::Value = serde_json::from_slice(&event_body(&event)).unwrap();
        assert_eq!(body["status"], "removed");
        assert_eq!(body["previous_status"], serde_json::Value::Null);
        assert!(body.get("reason").is_none() && body.get("error").is_none());
    }

    /// A notifier's state on `store`, as one process of the service has it.
    fn notifications(store: Store) -> Notifications {
        Notifications {
            store,
            wake: mpsc::channel().0,
            in_flight: HashSet::new(),
            held_back: HashSet::new(),
            deferred: BTreeSet::new(),
            events: HashMap::new(),
            origins: Vec::new(),
        }
    }

    /// Tenant `tenant`'s connection `id`'s `notified_status`, or `None` when it has no row.
    fn notified(store: &Store, tenant: i64, id: &str) -> Option<Option<String>> {
        store
            .db()
            .query_opt(
                "SELECT notified_status FROM service_connections
                 WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, id],
                |row| row.get(0),
            )
            .unwrap()
    }

    /// Two processes' notifiers on the store at `path` (a new one): one claim per change,
    /// released claims are claimed again, and event ids follow the module's rules.
    fn claims_flow(path: &std::path::Path) {
        let (one, two) = (Store::open(path).unwrap(), Store::open(path).unwrap());
        super::super::tenants::migrate(&one).unwrap();
        let tenant = super::super::tenants::add(&one, "acme").unwrap().0.id;
        let name = internal_name(TenantId(tenant), "c");
        let connection = stored(ConnectionState::Active, None, true);
        one.save(
            &name,
            &connection.config,
            &connection.secret,
            Grant::AuthorizationCode,
            &connection.tokens,
        )
        .unwrap();
        super::super::connections::record(&one, TenantId(tenant), "c", "i").unwrap();
        let (mut one, mut two) = (notifications(one), notifications(two));

        // Both see the change; one claim succeeds.
        let seen = one.changes(None).unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            (seen[0].observed.status, seen[0].previous, &seen[0].notified),
            (Status::Connected, None, &None)
        );
        let theirs = two.changes(Some(&Scope::Tenant(tenant))).unwrap();
        assert_eq!(theirs.len(), 1);
        assert!(one.claim(&seen[0]).unwrap());
        assert!(!two.claim(&theirs[0]).unwrap());
        assert!(!one.claim(&seen[0]).unwrap(), "claimed once");
        assert_eq!(
            notified(&one.store, tenant, "c"),
            Some(Some("connected".into()))
        );
        assert!(
            two.changes(None).unwrap().is_empty(),
            "nothing left to tell"
        );

        // Not delivered: released, claimed again by the other process. Its `connected`
        // event is its own; the first process keeps its event (same id) for its retries.
        let event = one.event(seen[0].clone());
        assert_eq!(event.id, one.event(seen[0].clone()).id);
        assert_eq!(event.id.len(), "evt_".len() + 43);
        let claimed = Claimed {
            event: event.clone(),
            from: None,
        };
        one.release(tenant, &claimed);
        assert_eq!(notified(&one.store, tenant, "c"), Some(None));
        let again = two.changes(None).unwrap();
        assert_eq!(again.len(), 1);
        assert!(two.claim(&again[0]).unwrap());
        let theirs = two.event(again[0].clone());
        assert_ne!(theirs.id, event.id);
        two.told(tenant, &theirs);
        assert_eq!(
            notified(&one.store, tenant, "c"),
            Some(Some("connected".into()))
        );
        assert!(one.changes(None).unwrap().is_empty());
        assert!(one.events.is_empty(), "told elsewhere: forgotten");

        // Marked: the event is the same, id included, in every process.
        one.store
            .mark_needs_reauthorization(&name, &Reauthorization::Revoked)
            .unwrap();
        let (mine, theirs) = (one.changes(None).unwrap(), two.changes(None).unwrap());
        assert_eq!(mine[0].previous, Some(Status::Connected));
        let event = one.event(mine[0].clone());
        assert_eq!(event, two.event(theirs[0].clone()));
        assert_eq!(Some(event.at), event.observed.since);

        // Claimed here, then removed and claimed by the other process: this one's release
        // leaves the newer status alone.
        assert!(one.claim(&mine[0]).unwrap());
        one.store.remove(&name).unwrap();
        let removed = two.changes(None).unwrap();
        assert_eq!(
            (removed[0].observed.status, removed[0].previous),
            (Status::Removed, Some(Status::NeedsReauthorization))
        );
        assert!(two.claim(&removed[0]).unwrap());
        one.release(
            tenant,
            &Claimed {
                event,
                from: mine[0].notified.clone(),
            },
        );
        assert_eq!(
            notified(&one.store, tenant, "c"),
            Some(Some("removed".into()))
        );
        assert!(one.events.is_empty());
        let (first, second) = (two.event(removed[0].clone()), two.event(removed[0].clone()));
        assert_ne!(first.id, second.id, "a removal's id is new at every claim");
        // Told: the row goes.
        two.told(tenant, &second);
        assert_eq!(notified(&one.store, tenant, "c"), None);

        // A tenant without a webhook: changes are recorded as told, and a removed
        // connection's row goes.
        let name = internal_name(TenantId(tenant), "d");
        one.store
            .save(
                &name,
                &connection.config,
                &connection.secret,
                Grant::AuthorizationCode,
                &connection.tokens,
            )
            .unwrap();
        super::super::connections::record(&one.store, TenantId(tenant), "d", "i").unwrap();
        one.look(None).unwrap();
        assert_eq!(
            notified(&one.store, tenant, "d"),
            Some(Some("connected".into()))
        );
        one.store.remove(&name).unwrap();
        two.look(None).unwrap();
        assert_eq!(notified(&one.store, tenant, "d"), None);
    }

    #[test]
    fn one_process_claims_each_change_and_a_release_lets_another_retry() {
        let dir =
            std::env::temp_dir().join(format!("connector-webhooks-claims-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        claims_flow(&dir.join("store.db"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn claims_work_in_postgres() {
        let cluster = crate::test_postgres::PgCluster::start();
        claims_flow(&super::super::tenants::tests::empty_postgres(
            &cluster,
            "webhook_claims",
        ));
    }

    #[test]
    fn event_ids_name_one_change() {
        let change = Change {
            tenant: 1,
            id: "c".into(),
            integration: "i".into(),
            observed: Observed {
                status: Status::NeedsReauthorization,
                reason: Some("revoked"),
                error: None,
                since: Some(5),
            },
            previous: Some(Status::Connected),
            notified: Some("connected".into()),
            stored: Some((1, 2)),
        };
        let id = event_id(&change, 5, None);
        assert_eq!(id, event_id(&change, 5, None));
        assert!(id.starts_with("evt_") && id.len() == 4 + 43, "{id}");
        let differs = |change: Change| assert_ne!(event_id(&change, 5, None), id);
        differs(Change {
            tenant: 2,
            ..change.clone()
        });
        differs(Change {
            stored: Some((1, 3)),
            ..change.clone()
        });
        differs(Change {
            previous: None,
            ..change.clone()
        });
        assert_ne!(event_id(&change, 6, None), id);
        assert_ne!(event_id(&change, 5, Some("n")), id);
    }
}
