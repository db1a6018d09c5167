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
pub const SCHEMA_VERSION: i64 = 1;

/// The environment variable naming the store file.
pub const STORE_ENV: &str = "CONNECTOR_STORE";

/// Why the store could not do what was asked.
#[derive(Debug)]
pub enum StoreError {
    /// The file could not be created, opened or checked.
    Io(PathBuf, std::io::Error),
    /// The file is readable or writable by others (mode shown in octal).
    Permissions(PathBuf, u32),
    /// SQLite failed (corrupt file, not a database, disk full, locked).
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
        Self::Database(error)
    }
}

/// Where the client secret comes from.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum SecretSource {
    /// A public client: no secret.
    None,
    /// Stored in the (owner-only) store, so refreshes run unattended.
    Stored(String),
    /// Read from this environment variable whenever it is needed.
    Environment(String),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Stored(_) => f.write_str("Stored([redacted])"),
            Self::Environment(name) => f.debug_tuple("Environment").field(name).finish(),
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
        let db = Db::open(path)?;
        db.busy_timeout(std::time::Duration::from_secs(30))?;
        // WAL: readers never wait for the writer, which matters when many processes share
        // the store. synchronous=FULL: a committed token set survives power loss, so a
        // rotated refresh token is durable once `update_tokens` returns.
        let _: String = db.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        db.execute_batch("PRAGMA synchronous = FULL")?;
        let store = Self {
            db,
            path: path.to_owned(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let version: i64 = self
            .db
            .query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema(version));
        }
        if version < 1 {
            self.db.execute_batch(
                "BEGIN IMMEDIATE;
                 CREATE TABLE IF NOT EXISTS connections (
                     name        TEXT PRIMARY KEY NOT NULL,
                     config      TEXT NOT NULL,
                     secret      TEXT NOT NULL,
                     grant_type  TEXT NOT NULL,
                     tokens      TEXT NOT NULL,
                     created_at  INTEGER NOT NULL,
                     updated_at  INTEGER NOT NULL
                 );
                 PRAGMA user_version = 1;
                 COMMIT;",
            )?;
        }
        Ok(())
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
            "INSERT INTO connections (name, config, secret, grant_type, tokens, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT(name) DO UPDATE SET config = ?2, secret = ?3, grant_type = ?4, tokens = ?5,
                 updated_at = ?6",
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
            "UPDATE connections SET tokens = ?2, updated_at = ?3 WHERE name = ?1",
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
                "SELECT name, config, secret, grant_type, tokens, created_at, updated_at
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
            "SELECT name, config, secret, grant_type, tokens, created_at, updated_at
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
            },
            redirect_uri: None,
            scopes: vec!["a".into()],
            authorize_params: vec![],
            token_requests: crate::no_token_extras(),
            variables: vec![],
            offline_access: false,
        }
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
        assert!(matches!(Store::open(&path), Err(StoreError::Database(_))));

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
        store
            .save(
                "c",
                &config(),
                &SecretSource::None,
                Grant::ClientCredentials,
                &tokens("at"),
            )
            .unwrap();
        store
            .db
            .execute("UPDATE connections SET tokens = '{' WHERE name = 'c'", [])
            .unwrap();
        assert!(
            matches!(store.get("c"), Err(StoreError::Corrupt(name, "token set")) if name == "c")
        );
    }
}
