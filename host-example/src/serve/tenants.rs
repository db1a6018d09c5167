//! The service's own tables in the connection store's SQLite file, and its tenants.
//!
//! The tables (`tenants`, `integrations`, `connect_sessions`, `service_connections`) live
//! beside the store's `connections` table, with their own schema version in
//! `service_schema` (one row), so that the store's migrations and the service's never
//! touch each other's tables. [`migrate`] creates or upgrades them; every front end that
//! uses them (`serve`, `tenants …`) calls it first.
//!
//! When the store has a sealing key ([`Store::sealing_key`]), the service's secrets are
//! sealed with it as the store's own columns are: an integration's client secret (bound to
//! `integrations/client_secret/<tenant id>/<integration id>`) and private key (bound to
//! `integrations/private_key/<tenant id>/<integration id>`), a connect session's pending
//! authorization, which holds the PKCE verifier (bound to
//! `connect_sessions/pending/<session token hash in hex>`), and a tenant's webhook signing
//! secret (bound to `webhooks/secret/<tenant id>`). [`migrate`] compares the key with
//! every sealed value's key id before anything is written, so a wrong or missing key stops a
//! front end at once and changes nothing; [`reseal`] rewrites them when the key changes.
//!
//! A tenant's API key is `ck_<tenant id>_<43 characters>`: 256 random bits, base64url. The
//! store keeps only its SHA-256; a presented key is looked up by the id it carries and its
//! hash compared in constant time. The key is shown once, when it is made.

use base64::Engine as _;
use ring::digest;
use ring::rand::{SecureRandom as _, SystemRandom};
use rusqlite::{Connection as Db, OptionalExtension as _, params};

use crate::describe::format_time;
use crate::seal::{self, SealError, SealingKey};
use crate::store::{Store, StoreError};

/// The service schema's version; [`migrate`] brings an older one up to it.
pub const SERVICE_SCHEMA_VERSION: i64 = 3;

/// What an API key starts with (so that a leaked one is recognisable, for example by a
/// secret scanner).
pub const KEY_PREFIX: &str = "ck_";

/// Creates the service's tables, or upgrades them to [`SERVICE_SCHEMA_VERSION`]; refuses a
/// store whose service schema is newer than this program's, and (before writing anything) one
/// whose sealed service values another key sealed ([`StoreError::Sealed`]) or that needs a
/// key the store was opened without ([`StoreError::KeyRequired`]).
pub fn migrate(store: &Store) -> Result<(), StoreError> {
    let db = store.sqlite();
    check_key(db, store.sealing_key())?;
    db.execute_batch("CREATE TABLE IF NOT EXISTS service_schema (version INTEGER NOT NULL);")?;
    let version: Option<i64> = db
        .query_row("SELECT version FROM service_schema", [], |row| row.get(0))
        .optional()?;
    match version {
        Some(SERVICE_SCHEMA_VERSION) => return Ok(()),
        Some(newer) if newer > SERVICE_SCHEMA_VERSION => {
            return Err(StoreError::Io(
                store.path().to_owned(),
                std::io::Error::other(format!(
                    "its service tables have schema version {newer}, newer than this \
                     program's {SERVICE_SCHEMA_VERSION}: use a newer connector-host"
                )),
            ));
        }
        _ => {}
    }
    db.execute_batch(
        "BEGIN IMMEDIATE;
         CREATE TABLE IF NOT EXISTS tenants (
             id INTEGER PRIMARY KEY,
             name TEXT NOT NULL UNIQUE,
             key_hash BLOB NOT NULL,
             created_at INTEGER NOT NULL,
             key_rotated_at INTEGER NOT NULL
         );
         CREATE TABLE IF NOT EXISTS integrations (
             tenant_id INTEGER NOT NULL REFERENCES tenants(id),
             id TEXT NOT NULL,
             grant_type TEXT NOT NULL,
             source TEXT NOT NULL,
             config TEXT NOT NULL,
             client_secret TEXT,
             created_at INTEGER NOT NULL,
             PRIMARY KEY (tenant_id, id)
         );
         CREATE TABLE IF NOT EXISTS connect_sessions (
             token_hash BLOB PRIMARY KEY,
             tenant_id INTEGER NOT NULL REFERENCES tenants(id),
             integration TEXT NOT NULL,
             connection TEXT NOT NULL,
             scopes TEXT,
             return_to TEXT,
             created_at INTEGER NOT NULL,
             expires_at INTEGER NOT NULL,
             state TEXT UNIQUE,
             pending TEXT
         );
         CREATE TABLE IF NOT EXISTS service_connections (
             tenant_id INTEGER NOT NULL REFERENCES tenants(id),
             id TEXT NOT NULL,
             integration TEXT NOT NULL,
             PRIMARY KEY (tenant_id, id)
         );
         INSERT INTO service_schema (version)
             SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM service_schema);
         COMMIT;",
    )?;
    migrate_to_2(db)?;
    migrate_to_3(db)
}

/// Runs `statements` and sets the service schema's version to `to` in one immediate
/// transaction, unless the version (read inside it, so that processes upgrading at once
/// upgrade once) is `to` already or newer.
fn upgrade(db: &Db, to: i64, statements: &str) -> Result<(), StoreError> {
    let transaction =
        rusqlite::Transaction::new_unchecked(db, rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 =
        transaction.query_row("SELECT version FROM service_schema", [], |row| row.get(0))?;
    if version >= to {
        return Ok(());
    }
    transaction.execute_batch(statements)?;
    transaction.execute("UPDATE service_schema SET version = ?1", [to])?;
    transaction.commit()?;
    Ok(())
}

/// Version 2: the web page's sign-in sessions (`web_sessions`: the SHA-256 of the cookie's
/// token, never the token), a tenant's webhook (`webhooks`: its URL and signing secret,
/// sealed like the other secrets), and per connection what the keep-alive task last saw and
/// told (`service_connections`: `notified_status`, the status last sent to the webhook;
/// `last_error` and `last_error_at`, the last failed refresh or call; `kept_alive_at`, the
/// last background refresh).
fn migrate_to_2(db: &Db) -> Result<(), StoreError> {
    upgrade(
        db,
        2,
        "CREATE TABLE IF NOT EXISTS web_sessions (
             token_hash BLOB PRIMARY KEY,
             tenant_id INTEGER NOT NULL REFERENCES tenants(id),
             created_at INTEGER NOT NULL,
             expires_at INTEGER NOT NULL
         );
         CREATE TABLE IF NOT EXISTS webhooks (
             tenant_id INTEGER PRIMARY KEY REFERENCES tenants(id),
             url TEXT NOT NULL,
             secret TEXT NOT NULL,
             created_at INTEGER NOT NULL
         );
         ALTER TABLE service_connections ADD COLUMN notified_status TEXT;
         ALTER TABLE service_connections ADD COLUMN last_error TEXT;
         ALTER TABLE service_connections ADD COLUMN last_error_at INTEGER;
         ALTER TABLE service_connections ADD COLUMN kept_alive_at INTEGER;",
    )
}

/// Version 3: an integration's private key for `private_key_jwt` (`integrations`:
/// `private_key`, its PKCS#8 PEM, sealed like the client secret; `key_id`, its `kid`, in
/// clear).
fn migrate_to_3(db: &Db) -> Result<(), StoreError> {
    upgrade(
        db,
        3,
        "ALTER TABLE integrations ADD COLUMN private_key TEXT;
         ALTER TABLE integrations ADD COLUMN key_id TEXT;",
    )
}

/// A sealed column of the service's tables.
#[derive(Clone, Copy)]
struct SealedColumn {
    table: &'static str,
    column: &'static str,
    /// The SQL expression of a row's key (its part of the context).
    row_key: &'static str,
    /// What it holds, as errors name it.
    label: &'static str,
}

const CLIENT_SECRET: SealedColumn = SealedColumn {
    table: "integrations",
    column: "client_secret",
    row_key: "tenant_id || '/' || id",
    label: "client secret",
};

const PRIVATE_KEY: SealedColumn = SealedColumn {
    table: "integrations",
    column: "private_key",
    row_key: "tenant_id || '/' || id",
    label: "private key",
};

const PENDING: SealedColumn = SealedColumn {
    table: "connect_sessions",
    column: "pending",
    row_key: "lower(hex(token_hash))",
    label: "pending authorization",
};

const WEBHOOK_SECRET: SealedColumn = SealedColumn {
    table: "webhooks",
    column: "secret",
    row_key: "CAST(tenant_id AS TEXT)",
    label: "webhook secret",
};

const SEALED_COLUMNS: [SealedColumn; 4] = [CLIENT_SECRET, PRIVATE_KEY, PENDING, WEBHOOK_SECRET];

impl SealedColumn {
    fn context(self, row_key: &str) -> Vec<u8> {
        format!("{}/{}/{row_key}", self.table, self.column).into_bytes()
    }

    fn error(self, row_key: &str, error: SealError) -> StoreError {
        StoreError::Sealed {
            name: format!("{} {row_key}", self.table),
            column: self.label,
            error,
        }
    }
}

/// `value` as integration `tenant`/`id`'s client secret is written: sealed with the store's
/// key, or as it is without one.
pub fn seal_client_secret(store: &Store, tenant: i64, id: &str, value: String) -> String {
    seal_value(store, CLIENT_SECRET, &format!("{tenant}/{id}"), value)
}

/// `pem` as integration `tenant`/`id`'s private key is written: sealed with the store's key,
/// or as it is without one.
pub fn seal_private_key(store: &Store, tenant: i64, id: &str, pem: String) -> String {
    seal_value(store, PRIVATE_KEY, &format!("{tenant}/{id}"), pem)
}

/// Integration `tenant`/`id`'s stored private key (PEM), opened.
pub fn open_private_key(
    store: &Store,
    tenant: i64,
    id: &str,
    text: String,
) -> Result<String, StoreError> {
    open_value(store, PRIVATE_KEY, &format!("{tenant}/{id}"), text)
}

/// `value` as tenant `tenant`'s webhook signing secret is written.
pub fn seal_webhook_secret(store: &Store, tenant: i64, value: String) -> String {
    seal_value(store, WEBHOOK_SECRET, &tenant.to_string(), value)
}

/// Tenant `tenant`'s stored webhook signing secret, opened.
pub fn open_webhook_secret(store: &Store, tenant: i64, text: String) -> Result<String, StoreError> {
    open_value(store, WEBHOOK_SECRET, &tenant.to_string(), text)
}

/// Integration `tenant`/`id`'s stored client secret, opened.
pub fn open_client_secret(
    store: &Store,
    tenant: i64,
    id: &str,
    text: String,
) -> Result<String, StoreError> {
    open_value(store, CLIENT_SECRET, &format!("{tenant}/{id}"), text)
}

/// `value` as the pending authorization of the connect session whose token hashes to
/// `token_hash` is written.
pub fn seal_pending(store: &Store, token_hash: &[u8], value: String) -> String {
    seal_value(store, PENDING, &crate::seal::hex(token_hash), value)
}

/// The stored pending authorization of the connect session whose token hashes to
/// `token_hash`, opened.
pub fn open_pending(store: &Store, token_hash: &[u8], text: String) -> Result<String, StoreError> {
    open_value(store, PENDING, &crate::seal::hex(token_hash), text)
}

fn seal_value(store: &Store, column: SealedColumn, row_key: &str, value: String) -> String {
    match store.sealing_key() {
        Some(key) => key.seal(value.as_bytes(), &column.context(row_key)),
        None => value,
    }
}

fn open_value(
    store: &Store,
    column: SealedColumn,
    row_key: &str,
    text: String,
) -> Result<String, StoreError> {
    open_with(store.sealing_key(), column, row_key, text)
}

/// `text` opened with `key` when it is sealed; as it is when in clear.
fn open_with(
    key: Option<&SealingKey>,
    column: SealedColumn,
    row_key: &str,
    text: String,
) -> Result<String, StoreError> {
    if !seal::is_sealed(&text) {
        return Ok(text);
    }
    let Some(key) = key else {
        let key_id =
            seal::key_id_of(&text).ok_or_else(|| column.error(row_key, SealError::Malformed))?;
        return Err(StoreError::KeyRequired {
            key_id: key_id.to_owned(),
        });
    };
    let plaintext = key
        .open(&text, &column.context(row_key))
        .map_err(|error| column.error(row_key, error))?;
    String::from_utf8(plaintext).map_err(|_| column.error(row_key, SealError::Malformed))
}

/// Whether the service's tables exist in `db`.
fn has_tables(db: &Db) -> Result<bool, StoreError> {
    has_table(db, "service_schema")
}

/// Whether table `name` exists in `db` (a store of an older service schema lacks the newer
/// tables until [`migrate`] runs).
fn has_table(db: &Db, name: &str) -> Result<bool, StoreError> {
    Ok(db
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Whether `column`'s table and column exist in `db` (a store of an older service schema
/// lacks the newer ones until [`migrate`] runs; the key is checked before it does).
fn has_column(db: &Db, column: SealedColumn) -> Result<bool, StoreError> {
    Ok(has_table(db, column.table)?
        && db
            .query_row(
                "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2",
                [column.table, column.column],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
}

/// Compares `key` with the key id of every sealed value in the service's tables (reading
/// only): [`StoreError::KeyRequired`] without a key, [`StoreError::Sealed`] with
/// [`SealError::WrongKey`] when another key sealed one.
fn check_key(db: &Db, key: Option<&SealingKey>) -> Result<(), StoreError> {
    if !has_tables(db)? {
        return Ok(());
    }
    for column in SEALED_COLUMNS {
        if !has_column(db, column)? {
            continue;
        }
        let sql = format!(
            "SELECT {row_key}, substr({column}, 1, 32) FROM {table}
             WHERE substr({column}, 1, 7) = 'sealed:'",
            row_key = column.row_key,
            column = column.column,
            table = column.table
        );
        let mut statement = db.prepare(&sql)?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let row_key: String = row.get(0)?;
            let head: String = row.get(1)?;
            let stored = seal::key_id_of(&head)
                .ok_or_else(|| column.error(&row_key, SealError::Malformed))?;
            match key {
                None => {
                    return Err(StoreError::KeyRequired {
                        key_id: stored.to_owned(),
                    });
                }
                Some(key) if key.id() != stored => {
                    return Err(column.error(
                        &row_key,
                        SealError::WrongKey {
                            given_key_id: key.id().to_owned(),
                            stored_key_id: stored.to_owned(),
                        },
                    ));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// Rewrites the service's sealed values (opened with `from`, or in clear) sealed with `to`
/// (or in clear); values already sealed with `to` are kept. Returns how many values
/// changed. Runs inside the store's key rewrite ([`Store::rotate_key_with`]), in its
/// transaction: a value that does not open fails the whole.
pub(crate) fn reseal(
    db: &Db,
    from: Option<&SealingKey>,
    to: Option<&SealingKey>,
) -> Result<usize, StoreError> {
    if !has_tables(db)? {
        return Ok(0);
    }
    let mut rewritten = 0;
    for column in SEALED_COLUMNS {
        if !has_column(db, column)? {
            continue;
        }
        let select = format!(
            "SELECT rowid, {row_key}, {column} FROM {table} WHERE {column} IS NOT NULL",
            row_key = column.row_key,
            column = column.column,
            table = column.table
        );
        let rows = db
            .prepare(&select)?
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let update = format!(
            "UPDATE {table} SET {column} = ?2 WHERE rowid = ?1",
            table = column.table,
            column = column.column
        );
        for (rowid, row_key, text) in rows {
            let sealed_with = seal::key_id_of(&text);
            match to {
                Some(to) if sealed_with == Some(to.id()) => continue,
                None if !seal::is_sealed(&text) => continue,
                _ => {}
            }
            let plaintext = open_with(from, column, &row_key, text)?;
            let new = match to {
                Some(to) => to.seal(plaintext.as_bytes(), &column.context(&row_key)),
                None => plaintext,
            };
            db.execute(&update, params![rowid, new])?;
            rewritten += 1;
        }
    }
    Ok(rewritten)
}

/// A tenant, as `tenants list` shows it (never its key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// Its id (part of its API key, and of its connections' names in the store).
    pub id: i64,
    /// Its unique name.
    pub name: String,
    /// When it was created (Unix seconds).
    pub created_at: u64,
    /// When its key was last made (Unix seconds).
    pub key_rotated_at: u64,
}

/// An API key, shown once. Its `Debug` is redacted.
pub struct ApiKey(pub String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// Why a tenant operation failed.
#[derive(Debug)]
pub enum TenantError {
    /// The store failed.
    Store(StoreError),
    /// A tenant of that name exists already.
    Exists(String),
    /// No tenant of that name.
    NotFound(String),
    /// The name is empty or not printable.
    BadName(String),
    /// The system's random source failed.
    Random,
}

impl std::fmt::Display for TenantError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store(error) => error.fmt(f),
            Self::Exists(name) => write!(
                f,
                "a tenant named `{name}` exists already (`tenants rotate-key {name}` makes it \
                 a new key)"
            ),
            Self::NotFound(name) => write!(
                f,
                "no tenant named `{name}` (`tenants list` shows the tenants)"
            ),
            Self::BadName(name) => write!(
                f,
                "`{}` is not a tenant name: use 1 to 100 letters, digits, `.`, `_` or `-`",
                crate::describe::printable(name)
            ),
            Self::Random => f.write_str("the system's random source failed"),
        }
    }
}

impl std::error::Error for TenantError {}

impl From<StoreError> for TenantError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<rusqlite::Error> for TenantError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Store(error.into())
    }
}

/// Whether `id` is a usable identifier (tenant names, integration and connection ids): 1 to
/// 100 ASCII letters, digits, `.`, `_` or `-`, and not `.` or `..` alone (a path segment
/// that clients and browsers collapse, so that `/v1/connections/../token` could never name
/// it).
pub fn valid_id(id: &str) -> bool {
    !matches!(id, "." | "..")
        && (1..=100).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// 32 random bytes, base64url without padding (43 characters).
pub fn random_token() -> Result<String, TenantError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| TenantError::Random)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256 of `secret`.
pub fn hash(secret: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, secret.as_bytes())
        .as_ref()
        .to_vec()
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// A new key for tenant `id`, and its hash.
fn new_key(id: i64) -> Result<(ApiKey, Vec<u8>), TenantError> {
    let key = format!("{KEY_PREFIX}{id}_{}", random_token()?);
    let hashed = hash(&key);
    Ok((ApiKey(key), hashed))
}

/// Creates tenant `name`; returns it and its API key (shown once).
pub fn add(store: &Store, name: &str) -> Result<(Tenant, ApiKey), TenantError> {
    if !valid_id(name) {
        return Err(TenantError::BadName(name.to_owned()));
    }
    migrate(store)?;
    let db = store.sqlite();
    let now = crate::store::now() as i64;
    // The key carries the id, which exists only once the row does: insert with a
    // placeholder hash, then set the real one, in one transaction.
    let tx = db.unchecked_transaction()?;
    let inserted = tx.execute(
        "INSERT INTO tenants (name, key_hash, created_at, key_rotated_at)
         VALUES (?1, x'', ?2, ?2) ON CONFLICT(name) DO NOTHING",
        params![name, now],
    )?;
    if inserted == 0 {
        return Err(TenantError::Exists(name.to_owned()));
    }
    let id = tx.last_insert_rowid();
    let (key, hashed) = new_key(id)?;
    tx.execute(
        "UPDATE tenants SET key_hash = ?2 WHERE id = ?1",
        params![id, hashed],
    )?;
    tx.commit()?;
    Ok((get(db, name)?, key))
}

/// Makes tenant `name` a new API key (the old one stops working at once); returns it.
pub fn rotate_key(store: &Store, name: &str) -> Result<ApiKey, TenantError> {
    migrate(store)?;
    let db = store.sqlite();
    let tenant = get(db, name)?;
    let (key, hashed) = new_key(tenant.id)?;
    // The page's sign-ins were made with the old key: they end with it.
    let transaction = db.unchecked_transaction()?;
    transaction.execute(
        "UPDATE tenants SET key_hash = ?2, key_rotated_at = ?3 WHERE id = ?1",
        params![tenant.id, hashed, crate::store::now() as i64],
    )?;
    transaction.execute("DELETE FROM web_sessions WHERE tenant_id = ?1", [tenant.id])?;
    transaction.commit()?;
    Ok(key)
}

/// Every tenant, by name.
pub fn list(store: &Store) -> Result<Vec<Tenant>, TenantError> {
    migrate(store)?;
    let mut statement = store
        .sqlite()
        .prepare("SELECT id, name, created_at, key_rotated_at FROM tenants ORDER BY name")?;
    let tenants = statement
        .query_map([], tenant_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(tenants)
}

fn tenant_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Tenant> {
    Ok(Tenant {
        id: row.get(0)?,
        name: row.get(1)?,
        created_at: row.get::<_, i64>(2)? as u64,
        key_rotated_at: row.get::<_, i64>(3)? as u64,
    })
}

fn get(db: &Db, name: &str) -> Result<Tenant, TenantError> {
    db.query_row(
        "SELECT id, name, created_at, key_rotated_at FROM tenants WHERE name = ?1",
        [name],
        tenant_row,
    )
    .optional()?
    .ok_or_else(|| TenantError::NotFound(name.to_owned()))
}

/// The tenant whose API key `key` is, if any: looked up by the id the key carries, its hash
/// compared in constant time.
pub fn authenticate(store: &Store, key: &str) -> Result<Option<i64>, StoreError> {
    let Some(id) = key
        .strip_prefix(KEY_PREFIX)
        .and_then(|rest| rest.split_once('_'))
        .and_then(|(id, _)| id.parse::<i64>().ok())
    else {
        return Ok(None);
    };
    // Prepared once per connection (every request runs it).
    let stored: Option<Vec<u8>> = store
        .sqlite()
        .prepare_cached("SELECT key_hash FROM tenants WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    Ok(stored
        .filter(|stored| constant_time_eq(stored, &hash(key)))
        .map(|_| id))
}

/// One line of `tenants list`: name, id, created, key made.
pub fn list_line(tenant: &Tenant) -> String {
    format!(
        "{}\t{}\t{}\t{}",
        tenant.name,
        tenant.id,
        format_time(tenant.created_at),
        format_time(tenant.key_rotated_at)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store(label: &str) -> (std::path::PathBuf, Store) {
        let dir =
            std::env::temp_dir().join(format!("connector-tenants-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir.join("store.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn keys_authenticate_their_tenant_only_until_rotated() {
        let (dir, store) = temp_store("keys");
        let (acme, acme_key) = add(&store, "acme").unwrap();
        let (beta, beta_key) = add(&store, "beta").unwrap();
        assert_eq!((acme.id, beta.id), (1, 2));
        assert!(acme_key.0.starts_with("ck_1_"));
        assert_eq!(acme_key.0.len(), "ck_1_".len() + 43);
        assert_eq!(authenticate(&store, &acme_key.0).unwrap(), Some(1));
        assert_eq!(authenticate(&store, &beta_key.0).unwrap(), Some(2));
        // Another tenant's secret under this tenant's id, a truncated key, nonsense: none.
        let swapped = format!("ck_1_{}", &beta_key.0["ck_2_".len()..]);
        for key in [
            swapped.as_str(),
            &acme_key.0[..20],
            "",
            "ck_",
            "ck_x_y",
            "Bearer",
        ] {
            assert_eq!(authenticate(&store, key).unwrap(), None, "{key}");
        }
        let rotated = rotate_key(&store, "acme").unwrap();
        assert_eq!(authenticate(&store, &acme_key.0).unwrap(), None);
        assert_eq!(authenticate(&store, &rotated.0).unwrap(), Some(1));
        assert!(matches!(add(&store, "acme"), Err(TenantError::Exists(_))));
        assert!(matches!(add(&store, "a b"), Err(TenantError::BadName(_))));
        for refused in [".", "..", "", "a/b", &"x".repeat(101)] {
            assert!(!valid_id(refused), "{refused}");
        }
        assert!(valid_id("a.b") && valid_id("...") && valid_id(&"x".repeat(100)));
        assert!(matches!(
            rotate_key(&store, "nobody"),
            Err(TenantError::NotFound(_))
        ));
        let names: Vec<String> = list(&store).unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["acme", "beta"]);
        // The store holds the key's hash, never the key.
        let stored: Vec<u8> = store
            .sqlite()
            .query_row("SELECT key_hash FROM tenants WHERE id = 1", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(stored, hash(&rotated.0));
        assert_eq!(format!("{rotated:?}"), "ApiKey([redacted])");
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn migrating_twice_changes_nothing_and_a_newer_schema_is_refused() {
        let (dir, store) = temp_store("schema");
        migrate(&store).unwrap();
        migrate(&store).unwrap();
        store
            .sqlite()
            .execute("UPDATE service_schema SET version = 99", [])
            .unwrap();
        assert!(migrate(&store).is_err());
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The service's tables as version 1 shipped them (four tables, without version 2's and
    /// 3's tables and columns), with one tenant.
    const VERSION_1_TABLES: &str = "CREATE TABLE service_schema (version INTEGER NOT NULL);
             INSERT INTO service_schema (version) VALUES (1);
             CREATE TABLE tenants (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                 key_hash BLOB NOT NULL, created_at INTEGER NOT NULL,
                 key_rotated_at INTEGER NOT NULL);
             CREATE TABLE integrations (tenant_id INTEGER NOT NULL, id TEXT NOT NULL,
                 grant_type TEXT NOT NULL, source TEXT NOT NULL, config TEXT NOT NULL,
                 client_secret TEXT, created_at INTEGER NOT NULL, PRIMARY KEY (tenant_id, id));
             CREATE TABLE connect_sessions (token_hash BLOB PRIMARY KEY,
                 tenant_id INTEGER NOT NULL, integration TEXT NOT NULL,
                 connection TEXT NOT NULL, scopes TEXT, return_to TEXT,
                 created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, state TEXT UNIQUE,
                 pending TEXT);
             CREATE TABLE service_connections (tenant_id INTEGER NOT NULL, id TEXT NOT NULL,
                 integration TEXT NOT NULL, PRIMARY KEY (tenant_id, id));
             INSERT INTO tenants VALUES (1, 'acme', x'00', 10, 10);";

    #[test]
    fn a_version_1_service_schema_is_upgraded_keeping_its_rows() {
        let (dir, store) = temp_store("schema-1");
        let db = store.sqlite();
        db.execute_batch(&format!(
            "{VERSION_1_TABLES}
                 INSERT INTO service_connections VALUES (1, 'alice', 'github');"
        ))
        .unwrap();
        migrate(&store).unwrap();
        let version: i64 = db
            .query_row("SELECT version FROM service_schema", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, SERVICE_SCHEMA_VERSION);
        let row: (String, Option<String>, Option<i64>) = db
            .query_row(
                "SELECT integration, notified_status, kept_alive_at FROM service_connections
                 WHERE tenant_id = 1 AND id = 'alice'",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        assert_eq!(row, ("github".to_owned(), None, None));
        let tables: i64 = db
            .query_row(
                "SELECT count(*) FROM sqlite_master
                 WHERE type = 'table' AND name IN ('web_sessions', 'webhooks')",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(tables, 2);
        // Version 3's columns, empty for the integrations that were there.
        db.execute(
            "INSERT INTO integrations (tenant_id, id, grant_type, source, config, created_at)
             VALUES (1, 'github', 'authorization-code', 'provider', '{}', 0)",
            [],
        )
        .unwrap();
        let key: (Option<String>, Option<String>) = db
            .query_row(
                "SELECT private_key, key_id FROM integrations WHERE id = 'github'",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(key, (None, None));
        assert_eq!(list(&store).unwrap()[0].name, "acme");
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A store at version 2 (the service before private keys): its key is checked, and it is
    /// re-sealed, before it has version 3's column; then it is upgraded once, keeping its
    /// rows, and a second upgrade changes nothing.
    #[test]
    fn a_version_2_service_schema_is_checked_resealed_and_upgraded() {
        let (dir, clear) = temp_store("schema-2");
        let path = clear.path().to_owned();
        drop(clear);
        let key = |byte: u8| SealingKey::from_hex(&format!("{byte:02x}").repeat(32)).unwrap();
        let mut store = Store::open_sealed(&path, key(1)).unwrap();
        let db = store.sqlite();
        db.execute_batch(VERSION_1_TABLES).unwrap();
        migrate_to_2(db).unwrap();
        let sealed = seal_client_secret(&store, 1, "gh", "s3cret".to_owned());
        store
            .sqlite()
            .execute(
                "INSERT INTO integrations VALUES (1, 'gh', 'authorization-code', 'preset', '{}',
                 ?1, 0)",
                [sealed],
            )
            .unwrap();
        // Checked and re-sealed (`keys rotate` on a version-2 store) without the column.
        assert!(check_key(store.sqlite(), Some(&key(1))).is_ok());
        assert_eq!(store.rotate_key_with(key(2), &[reseal]).unwrap(), 1);
        let version = |store: &Store| -> i64 {
            store
                .sqlite()
                .query_row("SELECT version FROM service_schema", [], |row| row.get(0))
                .unwrap()
        };
        assert_eq!(version(&store), 2);
        migrate(&store).unwrap();
        migrate(&store).unwrap();
        assert_eq!(version(&store), SERVICE_SCHEMA_VERSION);
        let row: (String, Option<String>, Option<String>) = store
            .sqlite()
            .query_row(
                "SELECT client_secret, private_key, key_id FROM integrations WHERE id = 'gh'",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            open_client_secret(&store, 1, "gh", row.0).unwrap(),
            "s3cret"
        );
        assert_eq!((row.1, row.2), (None, None));
        assert_eq!(list(&store).unwrap()[0].name, "acme");
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn service_secrets_are_sealed_checked_at_migrate_and_resealed_with_the_store() {
        let (dir, clear) = temp_store("sealed");
        let path = clear.path().to_owned();
        drop(clear);
        let key = |byte: u8| SealingKey::from_hex(&format!("{byte:02x}").repeat(32)).unwrap();
        let store = Store::open_sealed(&path, key(1)).unwrap();
        migrate(&store).unwrap();
        let (tenant, _) = add(&store, "acme").unwrap();
        let sealed = seal_client_secret(&store, tenant.id, "gh", "s3cret".to_owned());
        assert!(seal::is_sealed(&sealed) && !sealed.contains("s3cret"));
        store
            .sqlite()
            .execute(
                "INSERT INTO integrations
                     (tenant_id, id, grant_type, source, config, client_secret, created_at)
                 VALUES (?1, 'gh', 'authorization-code', 'preset', '{}', ?2, 0)",
                params![tenant.id, sealed],
            )
            .unwrap();
        let read = |store: &Store| -> String {
            store
                .sqlite()
                .query_row("SELECT client_secret FROM integrations", [], |row| {
                    row.get(0)
                })
                .unwrap()
        };
        assert_eq!(
            open_client_secret(&store, tenant.id, "gh", read(&store)).unwrap(),
            "s3cret"
        );
        // Bound to its row.
        assert!(matches!(
            open_client_secret(&store, tenant.id, "other", read(&store)),
            Err(StoreError::Sealed {
                error: SealError::Tampered,
                ..
            })
        ));
        // The private key: sealed, bound to its integration, never in clear.
        let pem = "-----BEGIN PRIVATE KEY-----\nKEYBODY-5e1f\n-----END PRIVATE KEY-----\n";
        let sealed_key = seal_private_key(&store, tenant.id, "gh", pem.to_owned());
        assert!(seal::is_sealed(&sealed_key) && !sealed_key.contains("KEYBODY"));
        store
            .sqlite()
            .execute(
                "UPDATE integrations SET private_key = ?1, key_id = 'k1'",
                [sealed_key],
            )
            .unwrap();
        let read_key = |store: &Store| -> String {
            store
                .sqlite()
                .query_row("SELECT private_key FROM integrations", [], |row| row.get(0))
                .unwrap()
        };
        assert_eq!(
            open_private_key(&store, tenant.id, "gh", read_key(&store)).unwrap(),
            pem
        );
        // Bound to its row and column: not another integration's key, nor its secret.
        assert!(open_private_key(&store, tenant.id, "other", read_key(&store)).is_err());
        assert!(open_client_secret(&store, tenant.id, "gh", read_key(&store)).is_err());
        let token_hash = hash("session token");
        let pending = seal_pending(&store, &token_hash, "{\"code_verifier\":\"v\"}".to_owned());
        assert!(!pending.contains("code_verifier"));
        assert_eq!(
            open_pending(&store, &token_hash, pending).unwrap(),
            "{\"code_verifier\":\"v\"}"
        );
        let webhook_secret = seal_webhook_secret(&store, tenant.id, "whsec_abc".to_owned());
        assert!(seal::is_sealed(&webhook_secret) && !webhook_secret.contains("whsec_abc"));
        store
            .sqlite()
            .execute(
                "INSERT INTO webhooks VALUES (?1, 'https://hooks.example/in', ?2, 0)",
                params![tenant.id, webhook_secret],
            )
            .unwrap();
        let read_webhook = |store: &Store| -> String {
            store
                .sqlite()
                .query_row("SELECT secret FROM webhooks", [], |row| row.get(0))
                .unwrap()
        };
        // Bound to its tenant.
        assert!(open_webhook_secret(&store, tenant.id + 1, read_webhook(&store)).is_err());
        drop(store);

        // Another key, or none: refused before anything is written.
        let other = Store::open_with_key(&path, Some(key(2))).unwrap();
        assert!(matches!(
            migrate(&other),
            Err(StoreError::Sealed {
                error: SealError::WrongKey { .. },
                ..
            })
        ));
        drop(other);
        let none = Store::open(&path).unwrap();
        assert!(matches!(
            migrate(&none),
            Err(StoreError::KeyRequired { key_id }) if key_id == key(1).id()
        ));
        drop(none);

        // Rotated with the store: the new key opens it, the old one no longer does.
        let mut store = Store::open_sealed(&path, key(1)).unwrap();
        assert_eq!(store.rotate_key_with(key(3), &[reseal]).unwrap(), 3);
        assert_eq!(seal::key_id_of(&read(&store)), Some(key(3).id()));
        assert_eq!(
            open_client_secret(&store, tenant.id, "gh", read(&store)).unwrap(),
            "s3cret"
        );
        assert_eq!(seal::key_id_of(&read_key(&store)), Some(key(3).id()));
        assert_eq!(
            open_private_key(&store, tenant.id, "gh", read_key(&store)).unwrap(),
            pem
        );
        assert_eq!(seal::key_id_of(&read_webhook(&store)), Some(key(3).id()));
        assert_eq!(
            open_webhook_secret(&store, tenant.id, read_webhook(&store)).unwrap(),
            "whsec_abc"
        );
        // The key check reads the private keys too: one sealed with another key is named.
        let foreign = key(5).seal(
            pem.as_bytes(),
            &PRIVATE_KEY.context(&format!("{}/gh", tenant.id)),
        );
        store
            .sqlite()
            .execute("UPDATE integrations SET private_key = ?1", [foreign])
            .unwrap();
        assert!(matches!(
            migrate(&store),
            Err(StoreError::Sealed {
                column: "private key",
                error: SealError::WrongKey { .. },
                ..
            })
        ));
        drop(store);
        let old = Store::open_sealed(&path, key(1)).unwrap();
        assert!(migrate(&old).is_err());
        drop(old);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn ids_and_comparisons() {
        assert!(valid_id("a.b_c-1"));
        for bad in ["", "a b", "a/b", "ü", &"x".repeat(101)] {
            assert!(!valid_id(bad), "{bad}");
        }
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_ne!(random_token().unwrap(), random_token().unwrap());
    }
}
