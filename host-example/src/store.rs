//! The connection store: one SQLite file holding each connection's profile, client, request
//! options and token set.
//!
//! The file holds client secrets and tokens, so it is created owner-only (0600, in a 0700
//! directory on Unix), and opening a store that others can read is refused. SQLite's journal
//! files take the main file's permissions.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection as Db, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::types::{ConnectionConfig, TokenSet};

/// The schema version this code writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 2;

/// The schema's history: the statements that bring a store from the previous version to
/// each version. A store is migrated in one transaction, so a failed migration leaves it as
/// it was; versions are never edited once released, only appended.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE IF NOT EXISTS connections (
             name        TEXT PRIMARY KEY NOT NULL,
             config      TEXT NOT NULL,
             secret      TEXT NOT NULL,
             grant_type  TEXT NOT NULL,
             tokens      TEXT NOT NULL,
             created_at  INTEGER NOT NULL,
             updated_at  INTEGER NOT NULL
         );",
    ),
    // How many times the tokens were written: shows refresh storms and lost coordination
    // (`show`), and lets tests count refreshes that reached the store.
    (
        2,
        "ALTER TABLE connections ADD COLUMN token_writes INTEGER NOT NULL DEFAULT 0;",
    ),
];

/// The environment variable naming the store file.
pub const STORE_ENV: &str = "CONNECTOR_STORE";

/// Why the store could not do what was asked.
#[derive(Debug)]
pub enum StoreError {
    /// The file could not be created, opened or checked.
    Io(PathBuf, std::io::Error),
    /// The file is readable or writable by others (mode shown in octal).
    Permissions(PathBuf, u32),
    /// The disk (or the store's size limit) is full: nothing was written, and what was
    /// stored before is unchanged.
    Full,
    /// Another process held the store locked for longer than the busy timeout: nothing was
    /// written.
    Busy,
    /// The file is not an SQLite database, or is damaged.
    NotADatabase,
    /// Any other SQLite failure.
    Database(rusqlite::Error),
    /// The file was written by a newer version of this program.
    NewerSchema(i64),
    /// A stored record does not decode (the named column of the named connection).
    Corrupt(String, &'static str),
    /// No connection of that name.
    NotFound(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(path, error) => write!(f, "store {}: {error}", path.display()),
            Self::Permissions(path, mode) => write!(
                f,
                "store {} has mode {mode:o}; it holds secrets and must be readable by its owner only (chmod 600)",
                path.display()
            ),
            Self::Full => f.write_str(
                "the store's disk is full: nothing was written; the stored connections are unchanged",
            ),
            Self::Busy => f.write_str(
                "the store stayed locked by another process past the timeout: nothing was written",
            ),
            Self::NotADatabase => {
                f.write_str("the store file is not an oauth-connector store, or it is damaged")
            }
            Self::Database(error) => write!(f, "store database error: {error}"),
            Self::NewerSchema(version) => write!(
                f,
                "the store has schema version {version}, newer than this program's {SCHEMA_VERSION}"
            ),
            Self::Corrupt(name, column) => {
                write!(f, "stored connection `{name}` has an unreadable {column}")
            }
            Self::NotFound(name) => write!(f, "no connection named `{name}`"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match error.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Self::Full,
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Self::Busy,
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Self::NotADatabase,
            _ => Self::Database(error),
        }
    }
}

/// Where the client's credential comes from: its secret, or the private key its
/// `private_key_jwt` assertions are signed with.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum SecretSource {
    /// A public client: no secret.
    None,
    /// Stored in the (owner-only) store, so refreshes run unattended.
    Stored(String),
    /// Read from this environment variable whenever it is needed.
    Environment(String),
    /// A private key file (PKCS#8 PEM, owner-only) the host signs client assertions with;
    /// only its path is stored, and the key never enters the component.
    PrivateKey {
        /// The key file, as an absolute path.
        path: PathBuf,
        /// The key id (`kid`) registered with the server, if any.
        key_id: Option<String>,
    },
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Stored(_) => f.write_str("Stored([redacted])"),
            Self::Environment(name) => f.debug_tuple("Environment").field(name).finish(),
            Self::PrivateKey { path, key_id } => f
                .debug_struct("PrivateKey")
                .field("path", path)
                .field("key_id", key_id)
                .finish(),
        }
    }
}

/// How a connection was obtained, which decides how it is renewed.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Grant {
    /// Authorization Code (RFC 6749 §4.1): renewed with its refresh token.
    AuthorizationCode,
    /// Client Credentials (RFC 6749 §4.4): renewed by fetching again.
    ClientCredentials,
    /// Device Authorization (RFC 8628): renewed with its refresh token.
    Device,
}

/// One stored connection.
#[derive(Clone)]
pub struct StoredConnection {
    /// Its name, unique in the store.
    pub name: String,
    /// The configuration, with `client.client-secret` emptied (see `secret`).
    pub config: ConnectionConfig,
    /// Where the client secret comes from.
    pub secret: SecretSource,
    /// How the connection was obtained.
    pub grant: Grant,
    /// The current tokens.
    pub tokens: TokenSet,
    /// When the connection was created (Unix seconds).
    pub created_at: u64,
    /// When the tokens were last written (Unix seconds).
    pub updated_at: u64,
    /// How many times the tokens were written (the first save counts).
    pub token_writes: u64,
}

impl std::fmt::Debug for StoredConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredConnection")
            .field("name", &self.name)
            .field("provider", &self.config.profile.id)
            .field("secret", &self.secret)
            .field("grant", &self.grant)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("token_writes", &self.token_writes)
            .finish_non_exhaustive()
    }
}

/// An open store.
pub struct Store {
    db: Db,
    path: PathBuf,
}

/// The default store path: `$CONNECTOR_STORE`, else the platform's data directory
/// (`$XDG_DATA_HOME` or `~/.local/share` on Linux, `~/Library/Application Support` on macOS,
/// `%APPDATA%` on Windows) + `oauth-connector/connections.db`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(STORE_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let base = if cfg!(target_os = "macos") {
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join("Library/Application Support"))
    } else if cfg!(windows) {
        std::env::var_os("APPDATA").map(PathBuf::from)
    } else {
        std::env::var_os("XDG_DATA_HOME")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share"))
            })
    }?;
    Some(base.join("oauth-connector").join("connections.db"))
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

impl Store {
    /// Opens the store at `path`, creating it (owner-only) with the current schema if absent.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let io = |error| StoreError::Io(path.to_owned(), error);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent).map_err(io)?;
        }
        create_private_file(path).map_err(io)?;
        check_private(path)?;
        let mut db = Db::open(path)?;
        db.busy_timeout(std::time::Duration::from_secs(30))?;
        // WAL: readers never wait for the writer, which matters when many processes share
        // the store. synchronous=FULL: a committed token set survives power loss, so a
        // rotated refresh token is durable once `update_tokens` returns.
        let _: String = db.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        db.execute_batch("PRAGMA synchronous = FULL")?;
        let version = migrate(&mut db)?;
        tracing::debug!(path = %path.display(), schema = version, "store open");
        Ok(Self {
            db,
            path: path.to_owned(),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores a new connection, or replaces the one with the same name.
    pub fn save(
        &self,
        name: &str,
        config: &ConnectionConfig,
        secret: &SecretSource,
        grant: Grant,
        tokens: &TokenSet,
    ) -> Result<(), StoreError> {
        let mut config = config.clone();
        config.client.client_secret = None;
        let now = now() as i64;
        self.db.execute(
            "INSERT INTO connections
                 (name, config, secret, grant_type, tokens, created_at, updated_at, token_writes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 1)
             ON CONFLICT(name) DO UPDATE SET config = ?2, secret = ?3, grant_type = ?4, tokens = ?5,
                 updated_at = ?6, token_writes = token_writes + 1",
            params![
                name,
                to_json(&config),
                to_json(secret),
                to_json(&grant),
                to_json(tokens),
                now
            ],
        )?;
        Ok(())
    }

    /// Replaces a connection's token set.
    pub fn update_tokens(&self, name: &str, tokens: &TokenSet) -> Result<(), StoreError> {
        let changed = self.db.execute(
            "UPDATE connections SET tokens = ?2, updated_at = ?3, token_writes = token_writes + 1
             WHERE name = ?1",
            params![name, to_json(tokens), now() as i64],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(name.to_owned()));
        }
        Ok(())
    }

    /// Reads one connection.
    pub fn get(&self, name: &str) -> Result<StoredConnection, StoreError> {
        self.db
            .query_row(
                "SELECT name, config, secret, grant_type, tokens, created_at, updated_at, token_writes
                 FROM connections WHERE name = ?1",
                [name],
                row_to_raw,
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(name.to_owned()))?
            .decode()
    }

    /// Every connection, by name.
    pub fn list(&self) -> Result<Vec<StoredConnection>, StoreError> {
        let mut statement = self.db.prepare(
            "SELECT name, config, secret, grant_type, tokens, created_at, updated_at, token_writes
             FROM connections ORDER BY name",
        )?;
        let raws = statement
            .query_map([], row_to_raw)?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter().map(RawRow::decode).collect()
    }

    /// Deletes a connection; `NotFound` when there is none.
    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        let changed = self
            .db
            .execute("DELETE FROM connections WHERE name = ?1", [name])?;
        if changed == 0 {
            return Err(StoreError::NotFound(name.to_owned()));
        }
        Ok(())
    }
}

struct RawRow {
    name: String,
    config: String,
    secret: String,
    grant: String,
    tokens: String,
    created_at: i64,
    updated_at: i64,
    token_writes: i64,
}

/// Brings the store's schema to [`SCHEMA_VERSION`] in one immediate transaction, reading the
/// version inside it, so that processes opening a new or older store at the same time
/// migrate it exactly once. Returns the version.
fn migrate(db: &mut Db) -> Result<i64, StoreError> {
    let transaction = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = transaction.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema(version));
    }
    if version == SCHEMA_VERSION {
        return Ok(version);
    }
    for (target, statements) in MIGRATIONS.iter().filter(|(target, _)| *target > version) {
        tracing::info!(from = version, to = target, "migrating the store's schema");
        transaction.execute_batch(statements)?;
    }
    transaction.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    transaction.commit()?;
    Ok(SCHEMA_VERSION)
}

fn row_to_raw(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        name: row.get(0)?,
        config: row.get(1)?,
        secret: row.get(2)?,
        grant: row.get(3)?,
        tokens: row.get(4)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
        token_writes: row.get(7)?,
    })
}

impl RawRow {
    fn decode(self) -> Result<StoredConnection, StoreError> {
        let corrupt = |column| StoreError::Corrupt(self.name.clone(), column);
        Ok(StoredConnection {
            config: serde_json::from_str(&self.config).map_err(|_| corrupt("configuration"))?,
            secret: serde_json::from_str(&self.secret).map_err(|_| corrupt("secret"))?,
            grant: serde_json::from_str(&self.grant).map_err(|_| corrupt("grant"))?,
            tokens: serde_json::from_str(&self.tokens).map_err(|_| corrupt("token set"))?,
            created_at: self.created_at.max(0) as u64,
            updated_at: self.updated_at.max(0) as u64,
            token_writes: self.token_writes.max(0) as u64,
            name: self.name,
        })
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("records of strings and numbers always serialize")
}

/// Creates `dir` (and its parents) readable by its owner only; an existing one is kept.
#[cfg(unix)]
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates `dir` (and its parents).
#[cfg(not(unix))]
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// Writes `bytes` to a new or truncated owner-only file at `path` and syncs it.
pub(crate) fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .open(path)
        .map(drop)
}

/// Refuses a store file that group or others can access.
#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|error| StoreError::Io(path.to_owned(), error))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(StoreError::Permissions(path.to_owned(), mode));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Client, ProviderProfile};

    fn temp_path(label: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("connector-store-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("nested").join("store.db")
    }

    fn config() -> ConnectionConfig {
        ConnectionConfig {
            profile: ProviderProfile {
                authorize_url: Some("https://a.example/auth".into()),
                ..crate::profile_with_defaults("p", "https://a.example/token")
            },
            client: Client {
                client_id: "id".into(),
                client_secret: Some("must-not-be-stored-here".into()),
                auth_method: None,
            },
            redirect_uri: None,
            scopes: vec!["a".into()],
            authorize_params: vec![],
            token_requests: crate::no_token_extras(),
            variables: vec![],
            offline_access: false,
        }
    }

    /// Saves a public device-grant connection `name` with `tokens`.
    fn save_public(store: &Store, name: &str, tokens: &TokenSet) -> Result<(), StoreError> {
        store.save(name, &config(), &SecretSource::None, Grant::Device, tokens)
    }

    fn tokens(access: &str) -> TokenSet {
        TokenSet {
            access_token: access.into(),
            token_type: "bearer".into(),
            expires_at: Some(10),
            refresh_token: Some("rt".into()),
            id_token: None,
            scopes: vec!["a".into()],
            obtained_at: 5,
            extras: vec![],
        }
    }

    #[test]
    fn round_trip_update_and_remove() {
        let path = temp_path("roundtrip");
        let store = Store::open(&path).unwrap();
        store
            .save(
                "c",
                &config(),
                &SecretSource::Stored("s".into()),
                Grant::AuthorizationCode,
                &tokens("at1"),
            )
            .unwrap();
        let stored = store.get("c").unwrap();
        assert_eq!(stored.config.client.client_secret, None);
        assert_eq!(stored.config.scopes, ["a"]);
        assert_eq!(stored.secret, SecretSource::Stored("s".into()));
        assert_eq!(stored.grant, Grant::AuthorizationCode);
        assert_eq!(stored.tokens, tokens("at1"));
        store.update_tokens("c", &tokens("at2")).unwrap();
        assert_eq!(
            Store::open(&path).unwrap().get("c").unwrap().tokens,
            tokens("at2")
        );
        assert_eq!(store.list().unwrap().len(), 1);
        store.remove("c").unwrap();
        assert!(matches!(store.get("c"), Err(StoreError::NotFound(_))));
        assert!(matches!(store.remove("c"), Err(StoreError::NotFound(_))));
        assert!(matches!(
            store.update_tokens("c", &tokens("x")),
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(
            format!("{:?}", SecretSource::Stored("s".into())),
            "Stored([redacted])"
        );
    }

    #[cfg(unix)]
    #[test]
    fn owner_only_and_refuses_a_readable_store() {
        use std::os::unix::fs::PermissionsExt;
        let path = temp_path("perms");
        drop(Store::open(&path).unwrap());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::Permissions(_, 0o644))
        ));
    }

    #[test]
    fn foreign_file_and_newer_schema_are_clear_errors() {
        let path = temp_path("foreign");
        drop(Store::open(&path).unwrap());
        std::fs::write(
            &path,
            b"this is not a database, just some text that is long enough",
        )
        .unwrap();
        assert!(matches!(Store::open(&path), Err(StoreError::NotADatabase)));

        let path = temp_path("newer");
        drop(Store::open(&path).unwrap());
        Db::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99")
            .unwrap();
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::NewerSchema(99))
        ));
    }

    #[test]
    fn corrupt_record_names_the_connection() {
        let path = temp_path("corrupt");
        let store = Store::open(&path).unwrap();
        save_public(&store, "c", &tokens("at")).unwrap();
        store
            .db
            .execute("UPDATE connections SET tokens = '{' WHERE name = 'c'", [])
            .unwrap();
        assert!(
            matches!(store.get("c"), Err(StoreError::Corrupt(name, "token set")) if name == "c")
        );
    }

    /// A store as version 1 of this program wrote it, with one connection.
    fn write_version_1_store(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        create_private_file(path).unwrap();
        let db = Db::open(path).unwrap();
        db.execute_batch(MIGRATIONS[0].1).unwrap();
        db.execute(
            "INSERT INTO connections VALUES ('old', ?1, ?2, '\"authorization-code\"', ?3, 1, 2)",
            params![
                to_json(&config()),
                to_json(&SecretSource::Stored("s".into())),
                to_json(&tokens("at-v1"))
            ],
        )
        .unwrap();
        db.execute_batch("PRAGMA user_version = 1").unwrap();
    }

    #[test]
    fn an_older_schema_is_migrated_without_loss() {
        let path = temp_path("v1");
        write_version_1_store(&path);
        let store = Store::open(&path).unwrap();
        let version: i64 = store
            .db
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let old = store.get("old").unwrap();
        assert_eq!(old.tokens, tokens("at-v1"));
        assert_eq!(old.secret, SecretSource::Stored("s".into()));
        assert_eq!(
            (old.created_at, old.updated_at, old.token_writes),
            (1, 2, 0)
        );
        store.update_tokens("old", &tokens("at-v2")).unwrap();
        let old = Store::open(&path).unwrap().get("old").unwrap();
        assert_eq!((old.tokens, old.token_writes), (tokens("at-v2"), 1));
    }

    #[test]
    fn a_failed_migration_leaves_the_store_as_it_was() {
        let path = temp_path("v1-conflict");
        write_version_1_store(&path);
        // A column the migration is about to add: the ALTER fails, the transaction rolls back.
        Db::open(&path)
            .unwrap()
            .execute_batch("ALTER TABLE connections ADD COLUMN token_writes TEXT")
            .unwrap();
        assert!(matches!(Store::open(&path), Err(StoreError::Database(_))));
        let db = Db::open(&path).unwrap();
        let version: i64 = db
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, 1);
        let tokens_json: String = db
            .query_row(
                "SELECT tokens FROM connections WHERE name = 'old'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(tokens_json, to_json(&tokens("at-v1")));
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        const WRITERS: usize = 8;
        const UPDATES: usize = 25;
        let path = temp_path("writers");
        let barrier = std::sync::Barrier::new(WRITERS);
        std::thread::scope(|scope| {
            for writer in 0..WRITERS {
                let (path, barrier) = (&path, &barrier);
                scope.spawn(move || {
                    // Each opens the (new) store itself, as separate processes would.
                    barrier.wait();
                    let store = Store::open(path).unwrap();
                    let own = format!("own-{writer}");
                    save_public(&store, &own, &tokens("0")).unwrap();
                    save_public(&store, "shared", &tokens("0")).unwrap();
                    for update in 1..=UPDATES {
                        let access = format!("{writer}-{update}");
                        store.update_tokens(&own, &tokens(&access)).unwrap();
                        store.update_tokens("shared", &tokens(&access)).unwrap();
                    }
                });
            }
        });
        let store = Store::open(&path).unwrap();
        let all = store.list().unwrap();
        assert_eq!(all.len(), WRITERS + 1);
        for writer in 0..WRITERS {
            let own = store.get(&format!("own-{writer}")).unwrap();
            assert_eq!(own.tokens, tokens(&format!("{writer}-{UPDATES}")));
            assert_eq!(own.token_writes, 1 + UPDATES as u64);
        }
        let shared = store.get("shared").unwrap();
        assert_eq!(shared.token_writes, (WRITERS * (1 + UPDATES)) as u64);
    }

    #[test]
    fn a_full_disk_is_a_typed_error_and_keeps_what_was_stored() {
        let path = temp_path("full");
        let store = Store::open(&path).unwrap();
        save_public(&store, "kept", &tokens("at")).unwrap();
        // Simulate a full disk: the database may not grow past its current size.
        let pages: i64 = store
            .db
            .query_row("PRAGMA page_count", [], |row| row.get(0))
            .unwrap();
        let _: i64 = store
            .db
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |row| {
                row.get(0)
            })
            .unwrap();
        let mut big = tokens("at-new");
        big.extras = (0..64)
            .map(|n| crate::types::KeyValue {
                name: format!("extra-{n}"),
                value: "x".repeat(4096),
            })
            .collect();
        assert!(matches!(
            store.update_tokens("kept", &big),
            Err(StoreError::Full)
        ));
        assert!(matches!(
            save_public(&store, "new", &big),
            Err(StoreError::Full)
        ));
        let kept = store.get("kept").unwrap();
        assert_eq!((kept.tokens, kept.token_writes), (tokens("at"), 1));
        assert!(matches!(store.get("new"), Err(StoreError::NotFound(_))));
        drop(store);
        assert_eq!(
            Store::open(&path).unwrap().get("kept").unwrap().tokens,
            tokens("at")
        );
    }

    #[test]
    fn a_store_locked_past_the_timeout_is_a_typed_error() {
        let path = temp_path("busy");
        let store = Store::open(&path).unwrap();
        save_public(&store, "c", &tokens("at")).unwrap();
        let other = Db::open(&path).unwrap();
        other.execute_batch("BEGIN EXCLUSIVE").unwrap();
        store
            .db
            .busy_timeout(std::time::Duration::from_millis(100))
            .unwrap();
        assert!(matches!(
            store.update_tokens("c", &tokens("at2")),
            Err(StoreError::Busy)
        ));
        other.execute_batch("ROLLBACK").unwrap();
        store.update_tokens("c", &tokens("at2")).unwrap();
        assert_eq!(store.get("c").unwrap().tokens, tokens("at2"));
    }
}
