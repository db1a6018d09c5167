//! The connection store: one SQLite file holding each connection's profile, client, request
//! options, token set and state (active, or why and since when it must be connected again).
//!
//! The file holds client secrets and tokens, so every file the store owns must be ours alone.
//! On Unix, before SQLite opens anything, each of them that exists (the database, its `-wal`,
//! `-shm` and `-journal` files, and the `.locks/` and `.unsaved/` directories beside it) is
//! checked, without following a symbolic link: it must belong to the effective user, be a
//! regular file (a real directory for the two directories), have no permission bits for group
//! or others, and (files) have no other hard link. A file that fails is refused with
//! [`StoreError::Unsafe`], which names it and says how to fix it; nothing is read from it or
//! written to it. Missing files are created exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`, mode
//! 0600; directories 0700), never chmod-ed afterwards. SQLite itself creates the `-wal` and
//! `-shm` files of a new store, so after it has opened them they are checked again, before any
//! connection is read or written.
//!
//! What remains out of scope: the store's directory may be shared (for example `/tmp`, with
//! its sticky bit). Another user who can write to it can still delete or rename files there
//! (without the sticky bit, even ours), and so make the store unusable or lose it; the checks
//! make sure we never use a file of theirs, and never put a secret into one. The checks and
//! SQLite's own opening are separate steps. For a store in WAL mode we create `-wal` and
//! `-shm` before SQLite opens them, but SQLite deletes both when the last connection closes,
//! and creates them itself for a new store: a file planted in that instant may be opened by
//! SQLite (and see the schema written while the store is opened, never a connection); the
//! check after opening then refuses the store, and also when the planted file was removed
//! again (no connection deletes them while ours is open, so they must exist). A directory of
//! another user's above the store (a path component) is not checked.
//!
//! **Sealing.** A store opened with a key ([`Store::open_sealed`]) writes each connection's
//! `secret` and `tokens` columns sealed (see [`crate::seal`]: AES-256-GCM, bound to the
//! connection's name and the column, so a value moved to another row does not open), and
//! opens them when it reads. Values written in clear before (by a store without a key) still
//! read, and are sealed when next written; [`Store::seal_all`] seals every row at once,
//! [`Store::rotate_key`] re-seals every row under a new key, and [`Store::unseal_all`]
//! writes them back in clear. Opening checks the key against the key id of every sealed
//! value before anything is read or written: a wrong key, or no key for a store that holds
//! sealed values, is an error and changes nothing. The connection's configuration (its
//! client secret emptied), grant, state and times stay readable.
//!
//! What was overwritten can linger in the file's unused space and in the write-ahead log.
//! A store with a key keeps SQLite's `secure_delete` on (freed cells are zeroed), and the
//! rewrites of every row ([`Store::seal_all`], [`Store::rotate_key`]) then rebuild the file
//! (`VACUUM`) and truncate the log: after them no value in clear, nor one sealed under the
//! old key, is left in the file. A clear store sealed only row by row, as rows are written,
//! may keep remnants of the old values until `seal_all` runs. Not covered: a process that
//! opened the store before it was sealed, without a key, or before a rotation, with the old
//! key, goes on writing as it did (stop the others first); what the file system or the disk
//! keeps of earlier versions of the file.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub mod db;
pub mod postgres;
pub mod upgrade;

pub use db::{Backend, Db};

use crate::sql_params as params;

use crate::seal::{self, SealError, SealingKey};
use crate::types::{ConnectionConfig, TokenSet};

/// The schema version this code writes (SQLite's `PRAGMA user_version`, PostgreSQL's
/// `store_schema` table).
pub const SCHEMA_VERSION: i64 = 5;

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
    // Contract 0.2.0: profiles gained `assertion-audience` (default `token-url`); a client's
    // `auth-method` is optional and reads as absent by itself. Configurations written by
    // 0.1.0 get the default, so they keep decoding.
    (
        3,
        "UPDATE connections
             SET config = json_set(config, '$.profile.assertion_audience', 'TokenUrl')
             WHERE json_type(config, '$.profile.assertion_audience') IS NULL;",
    ),
    // A connection's state: NULL (both) is active, as every connection stored before was;
    // otherwise why it must be connected again (a `Reauthorization` as JSON) and since when
    // (Unix seconds). `save` (connecting again) clears both.
    (
        4,
        "ALTER TABLE connections ADD COLUMN reauthorization TEXT;
         ALTER TABLE connections ADD COLUMN reauthorization_since INTEGER;",
    ),
    // A refresh in flight: set (Unix seconds) before a refresh request is sent, cleared when
    // its answer is handled. Found set by the next refresh, it means the last one ended
    // without knowing whether the server rotated the refresh token (a crash, a timeout).
    (
        5,
        "ALTER TABLE connections ADD COLUMN refresh_started_at INTEGER;",
    ),
];

/// The PostgreSQL store's schema at [`SCHEMA_VERSION`], created in one transaction by the
/// first process to open a new database. Names sort bytewise (`COLLATE "C"`), as in
/// SQLite, so listing pages by name prefix reads the same rows from both.
const POSTGRES_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS connections (
        name                  TEXT COLLATE \"C\" PRIMARY KEY NOT NULL,
        config                TEXT NOT NULL,
        secret                TEXT NOT NULL,
        grant_type            TEXT NOT NULL,
        tokens                TEXT NOT NULL,
        created_at            BIGINT NOT NULL,
        updated_at            BIGINT NOT NULL,
        token_writes          BIGINT NOT NULL DEFAULT 0,
        reauthorization       TEXT,
        reauthorization_since BIGINT,
        refresh_started_at    BIGINT
    );";

/// The environment variable naming the store file.
pub const STORE_ENV: &str = "CONNECTOR_STORE";

/// Why the store could not do what was asked.
#[derive(Debug)]
pub enum StoreError {
    /// The file could not be created, opened or checked.
    Io(PathBuf, std::io::Error),
    /// A file or directory the store owns (the database, its `-wal`, `-shm` or `-journal`
    /// file, or the `.locks/` or `.unsaved/` directory beside it) exists but is not safely
    /// ours: nothing was read from it or written to it.
    Unsafe(PathBuf, UnsafeFile),
    /// The disk (or the store's size limit) is full: nothing was written, and what was
    /// stored before is unchanged.
    Full,
    /// Another process held the store locked for longer than the busy timeout: nothing was
    /// written.
    Busy,
    /// The file is not an SQLite database, or is damaged.
    NotADatabase,
    /// Any other database failure.
    Database(String),
    /// The PostgreSQL server cannot be reached, or the session with it was lost: nothing
    /// that failed was committed; retry.
    Unavailable(String),
    /// The file was written by a newer version of this program.
    NewerSchema(i64),
    /// A stored record does not decode (the named column of the named connection).
    Corrupt(String, &'static str),
    /// No connection of that name.
    NotFound(String),
    /// A sealed value of the named connection (the named column) does not open with the
    /// store's key: another key sealed it ([`SealError::WrongKey`], also found when the
    /// store is opened, before anything is read or written), it was altered or moved from
    /// another row ([`SealError::Tampered`]), or it is not an envelope this program reads.
    Sealed {
        /// The connection.
        name: String,
        /// The column: `secret` or `token set`.
        column: &'static str,
        /// Why it does not open.
        error: SealError,
    },
    /// The store holds sealed values but was opened without a key: nothing was read or
    /// written.
    KeyRequired {
        /// The id of the key that sealed them.
        key_id: String,
    },
    /// The operation seals, and the store was opened without a key.
    NoKey,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(path, error) => write!(f, "store {}: {error}", path.display()),
            Self::Unsafe(path, problem) => write!(
                f,
                "refusing to use {}, which belongs to the store of secrets: {problem}; \
                 nothing was read from it or written to it",
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
            Self::Unavailable(why) => write!(f, "{why}; nothing was changed; retry"),
            Self::NewerSchema(version) => write!(
                f,
                "the store has schema version {version}, newer than this program's {SCHEMA_VERSION}"
            ),
            Self::Corrupt(name, column) => {
                write!(f, "stored connection `{name}` has an unreadable {column}")
            }
            Self::NotFound(name) => write!(f, "no connection named `{name}`"),
            Self::Sealed {
                name,
                error:
                    SealError::WrongKey {
                        given_key_id,
                        stored_key_id,
                    },
                ..
            } => write!(
                f,
                "the store was sealed with key {stored_key_id} (connection `{name}`), but the key \
                 given is {given_key_id}; set {} (or the key file) to the key with id \
                 {stored_key_id}; nothing was changed",
                seal::KEY_ENV
            ),
            Self::Sealed {
                name,
                column,
                error,
            } => write!(f, "stored connection `{name}`'s {column} does not open: {error}"),
            Self::KeyRequired { key_id } => write!(
                f,
                "this store is encrypted (sealed with key {key_id}); set {} to that key (64 hex \
                 characters) or pass its key file with --key-file; nothing was read or changed",
                seal::KEY_ENV
            ),
            Self::NoKey => write!(
                f,
                "sealing the store needs a key: set {} (64 hex characters) or pass a key file with \
                 --key-file",
                seal::KEY_ENV
            ),
        }
    }
}

impl std::error::Error for StoreError {}

/// Why an existing file or directory that holds (or guards) secrets is not safely ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnsafeFile {
    /// It belongs to another user (their uid): they could read what we write into it, or
    /// have put there what we would read.
    NotOwned {
        /// The owner's user id.
        owner: u32,
    },
    /// It is a symbolic link, which could lead anywhere.
    Symlink,
    /// It is not a regular file (a directory, a FIFO, a device...).
    NotAFile,
    /// It is not a directory.
    NotADirectory,
    /// Group or others have permissions on it (the mode, octal).
    Shared {
        /// The permission bits.
        mode: u32,
    },
    /// It has other hard links (the link count), so its contents can be reached by
    /// another name.
    Linked {
        /// The number of links.
        links: u64,
    },
}

impl std::fmt::Display for UnsafeFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotOwned { owner } => write!(
                f,
                "it belongs to user {owner}, not to you; remove it (it is not yours, and may \
                 have been planted to read or inject secrets)"
            ),
            Self::Symlink => f.write_str("it is a symbolic link; remove it"),
            Self::NotAFile => f.write_str("it is not a regular file; remove it"),
            Self::NotADirectory => f.write_str("it is not a directory; remove it"),
            Self::Shared { mode } => write!(
                f,
                "it has mode {mode:o}, open to group or others; make it private (chmod 600 for \
                 a file, chmod 700 for a directory)"
            ),
            Self::Linked { links } => write!(
                f,
                "it has {links} hard links, so its contents can be reached by another name; \
                 remove the other links"
            ),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match error.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Self::Full,
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Self::Busy,
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Self::NotADatabase,
            _ => Self::Database(error.to_string()),
        }
    }
}

impl StoreError {
    /// Whether the same operation may succeed when tried again, unchanged: the database was
    /// busy, locked, or unreachable for a moment.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Busy | Self::Unavailable(_))
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
    /// A private key (PKCS#8 PEM) stored with the connection, sealed with the `secret`
    /// column like a [`SecretSource::Stored`] secret: a service integration's key, which no
    /// file holds. The host signs client assertions with it; it never enters the component.
    StoredPrivateKey {
        /// The key, as PEM text.
        pem: String,
        /// The key id (`kid`) registered with the server, if any.
        key_id: Option<String>,
    },
}

impl SecretSource {
    /// Whether the client authenticates with a private key (`private_key_jwt`), from a
    /// file or stored.
    pub fn is_private_key(&self) -> bool {
        matches!(
            self,
            Self::PrivateKey { .. } | Self::StoredPrivateKey { .. }
        )
    }
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
            Self::StoredPrivateKey { pem: _, key_id } => f
                .debug_struct("StoredPrivateKey")
                .field("pem", &format_args!("[redacted]"))
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
    /// Token Exchange (RFC 8693): renewed with its refresh token when the server issued one,
    /// else by exchanging again when the subject token is another stored connection's
    /// (see [`GrantSettings::TokenExchange`]).
    TokenExchange,
    /// The JWT bearer grant (RFC 7523 §2.1): renewed by signing a new assertion and fetching
    /// again, like client credentials (see [`GrantSettings::JwtBearer`]).
    JwtBearer,
}

impl Grant {
    /// Its name as stored and as `show --json` gives it: `authorization-code`,
    /// `client-credentials`, `device`, `token-exchange` or `jwt-bearer`.
    pub fn name(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization-code",
            Self::ClientCredentials => "client-credentials",
            Self::Device => "device",
            Self::TokenExchange => "token-exchange",
            Self::JwtBearer => "jwt-bearer",
        }
    }

    /// Whether its tokens are renewed by obtaining them again without a user (client
    /// credentials, a JWT bearer assertion) rather than with a refresh token: no refresh
    /// token is at stake, and nothing idles out.
    pub fn fetches_again(self) -> bool {
        matches!(self, Self::ClientCredentials | Self::JwtBearer)
    }
}

/// What a connection keeps sealed beside its client's credential (in the `secret` column,
/// sealed with it when the store has a key): the keys the host signs with for this
/// connection alone, how its grant obtains tokens again, and its dynamic registration.
/// Nothing here ever enters the component except through the signer's signatures and the
/// requests the host builds. Its `Debug` names no secret.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConnectionSecrets {
    /// The DPoP key the connection's tokens are bound to (RFC 9449), PKCS#8 PEM: a fresh
    /// P-256 key made at `connect --dpop`, served for `dpop-proof` on every call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_key: Option<String>,
    /// How a token-exchange or JWT bearer connection obtains tokens again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantSettings>,
    /// The client's dynamic registration (RFC 7591), when `connect --resource` registered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<Registration>,
}

impl ConnectionSecrets {
    /// Whether it holds nothing (the row is then written as earlier versions wrote it).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The token-exchange settings, if the connection has them.
    pub fn exchange(&self) -> Option<&ExchangeSettings> {
        match &self.grant {
            Some(GrantSettings::TokenExchange(settings)) => Some(settings),
            _ => None,
        }
    }

    /// The JWT bearer settings, if the connection has them.
    pub fn jwt_bearer(&self) -> Option<&JwtBearerSettings> {
        match &self.grant {
            Some(GrantSettings::JwtBearer(settings)) => Some(settings),
            _ => None,
        }
    }
}

impl std::fmt::Debug for ConnectionSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionSecrets")
            .field("dpop_key", &self.dpop_key.as_ref().map(|_| "[redacted]"))
            .field("grant", &self.grant)
            .field("registration", &self.registration)
            .finish()
    }
}

/// How a grant without a user obtains tokens again.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum GrantSettings {
    /// Token exchange (RFC 8693).
    TokenExchange(ExchangeSettings),
    /// The JWT bearer grant (RFC 7523 §2.1).
    JwtBearer(JwtBearerSettings),
}

/// Where a token to exchange comes from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum TokenSource {
    /// Another stored connection's access token, valid (refreshed first when due) at each
    /// exchange: the exchange is redone unattended when its token expires.
    Connection(String),
    /// An environment variable, read once at `connect`; the token is not kept, so an
    /// expired exchange needs `connect` again.
    Environment(String),
}

/// A token-exchange connection's request (RFC 8693 §2.1), kept to exchange again. The
/// scopes and resources are the connection configuration's.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExchangeSettings {
    /// Where the subject token comes from.
    pub subject: TokenSource,
    /// `subject_token_type`.
    pub subject_token_type: String,
    /// The actor token's environment variable and type, when one was given.
    #[serde(default)]
    pub actor: Option<(String, String)>,
    /// `audience` values.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// `requested_token_type`, if any.
    #[serde(default)]
    pub requested_token_type: Option<String>,
}

/// A JWT bearer connection's assertion key and claims (RFC 7523 §2.1, §3).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JwtBearerSettings {
    /// The assertion key, PKCS#8 (or PKCS#1 RSA) PEM, kept sealed so that expiry fetches
    /// again unattended.
    pub pem: String,
    /// Its `kid`, if any.
    #[serde(default)]
    pub key_id: Option<String>,
    /// `iss` (default: the client id).
    #[serde(default)]
    pub issuer: Option<String>,
    /// `sub` (default: the issuer).
    #[serde(default)]
    pub subject: Option<String>,
    /// `aud` (default: the token URL).
    #[serde(default)]
    pub audience: Option<String>,
    /// Scopes in a `scope` claim instead of the request's `scope` parameter.
    #[serde(default)]
    pub scope_in_claims: bool,
}

impl std::fmt::Debug for JwtBearerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtBearerSettings")
            .field("pem", &format_args!("[redacted]"))
            .field("key_id", &self.key_id)
            .field("issuer", &self.issuer)
            .field("subject", &self.subject)
            .field("audience", &self.audience)
            .field("scope_in_claims", &self.scope_in_claims)
            .finish()
    }
}

/// A client registered dynamically (RFC 7591 §3.2.1, RFC 7592). Its secret, if the server
/// issued one, is the connection's [`SecretSource::Stored`].
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Registration {
    /// The protected resource the client was registered for (RFC 9728 `resource`).
    #[serde(default)]
    pub resource: Option<String>,
    /// `registration_access_token` (RFC 7592): a secret.
    #[serde(default)]
    pub registration_access_token: Option<String>,
    /// `registration_client_uri` (RFC 7592).
    #[serde(default)]
    pub registration_client_uri: Option<String>,
    /// `client_secret_expires_at` (0 or none: never).
    #[serde(default)]
    pub client_secret_expires_at: Option<u64>,
    /// The registration response without its secret members, as JSON text.
    #[serde(default)]
    pub metadata: String,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("resource", &self.resource)
            .field(
                "registration_access_token",
                &self
                    .registration_access_token
                    .as_ref()
                    .map(|_| "[redacted]"),
            )
            .field("registration_client_uri", &self.registration_client_uri)
            .field("client_secret_expires_at", &self.client_secret_expires_at)
            .finish_non_exhaustive()
    }
}

/// The `secret` column's JSON: a bare [`SecretSource`] as every version wrote it, or, for a
/// connection with [`ConnectionSecrets`], both together. A connection with none is written
/// the earlier way, which earlier versions still read.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum SecretColumn {
    /// The credential with the connection's own secrets.
    WithSecrets {
        client: SecretSource,
        secrets: Box<ConnectionSecrets>,
    },
    /// The credential alone.
    Client(SecretSource),
}

/// Why a connection must be connected again before it can be used.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Reauthorization {
    /// The user revoked its tokens at the server with `revoke` (RFC 7009).
    Revoked,
    /// The server answered a refresh with this OAuth error code (RFC 6749 §5.2; for example
    /// `invalid_grant`: the grant was revoked or expired at the server).
    RefreshRefused(String),
    /// A refresh ended without its answer being stored (the process died, or the answer
    /// was lost on the way), and the server then refused the refresh token it had been
    /// sent with this error code: the server had rotated it, and the new one was lost.
    RefreshInterrupted(String),
}

impl Reauthorization {
    /// Its name in the service's API and webhooks: `revoked`, `refresh-refused` or
    /// `refresh-interrupted`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::RefreshRefused(_) => "refresh-refused",
            Self::RefreshInterrupted(_) => "refresh-interrupted",
        }
    }

    /// The server's OAuth error code, when the server refused.
    pub fn error(&self) -> Option<&str> {
        match self {
            Self::Revoked => None,
            Self::RefreshRefused(code) | Self::RefreshInterrupted(code) => Some(code),
        }
    }
}

/// Whether a connection can be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Its tokens are used (and renewed when due).
    Active,
    /// It must be connected again; nothing is sent with its tokens until then.
    NeedsReauthorization {
        /// Why.
        reason: Reauthorization,
        /// Since when (Unix seconds).
        since: u64,
    },
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
    /// What it keeps sealed beside the client's credential (a DPoP key, how its grant
    /// obtains tokens again, its registration).
    pub secrets: ConnectionSecrets,
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
    /// Whether it can be used, or must be connected again.
    pub state: ConnectionState,
    /// When a refresh whose answer was never stored began (Unix seconds): the process
    /// refreshing died, or lost the answer; `None` when no refresh is unaccounted for.
    pub refresh_interrupted_at: Option<u64>,
}

impl std::fmt::Debug for StoredConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredConnection")
            .field("name", &self.name)
            .field("provider", &self.config.profile.id)
            .field("secret", &self.secret)
            .field("secrets", &self.secrets)
            .field("grant", &self.grant)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("token_writes", &self.token_writes)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Re-seals another table's sealed values inside the store's key rewrite (see
/// [`Store::rotate_key_with`]): given the transaction, the key to open with (`None`: values
/// in clear) and the key to seal with (`None`: write in clear); returns how many rows it
/// rewrote.
pub(crate) type Reseal =
    fn(&Db, Option<&SealingKey>, Option<&SealingKey>) -> Result<usize, StoreError>;

/// An open store.
pub struct Store {
    db: Db,
    path: PathBuf,
    canonical: PathBuf,
    /// The key that seals the `secret` and `tokens` columns; `None`: they are written in
    /// clear (and sealed ones are refused).
    key: Option<SealingKey>,
}

/// A connection's refresh lock held in the PostgreSQL store ([`Store::lock_in_database`]),
/// released when dropped.
pub struct DatabaseLock<'a> {
    store: &'a Store,
    key: String,
}

impl Drop for DatabaseLock<'_> {
    fn drop(&mut self) {
        let Db::Postgres(pg) = &self.store.db else {
            return;
        };
        let unlocked = self.store.db.query_one(
            "SELECT pg_advisory_unlock(hashtextextended(?1, 0))",
            params![self.key],
            |row| row.get::<bool>(0),
        );
        pg.borrow_mut().unpin();
        if !matches!(unlocked, Ok(true)) {
            // The session was lost (and the lock with it), or the lock was not held: either
            // way it is not held now; the session is replaced at the next statement.
            tracing::warn!(error = ?unlocked.err().map(|e| e.to_string()), "a connection's refresh lock was already released");
        }
    }
}

/// The advisory lock that serializes creating the PostgreSQL store's schema.
const SCHEMA_LOCK: i64 = 0x6f61_7574_6873_6368; // "oauthsch"

/// Where rescue files of the PostgreSQL store at `shown` (its URL without the password) are
/// kept on this machine: beside the default store path (or in the temporary directory),
/// named after a hash of the URL, so each database has its own.
fn postgres_rescue_base(shown: &str) -> PathBuf {
    let digest = ring::digest::digest(&ring::digest::SHA256, shown.as_bytes());
    let name = format!("postgres-{}.db", seal::hex(&digest.as_ref()[..8]));
    default_path()
        .filter(|path| database_url(path).is_none())
        .and_then(|path| path.parent().map(Path::to_path_buf))
        .unwrap_or_else(std::env::temp_dir)
        .join(name)
}

/// The PostgreSQL URL `path` is, when the store it names is a PostgreSQL database
/// (`postgres://…` or `postgresql://…`) rather than a file.
pub fn database_url(path: &Path) -> Option<&str> {
    path.to_str().filter(|path| postgres::is_url(path))
}

/// The store at `path` as messages and logs show it: a file's path, or a PostgreSQL URL
/// without its password.
pub fn shown(path: &Path) -> String {
    match database_url(path) {
        Some(url) => postgres::redacted(url),
        None => path.display().to_string(),
    }
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
    ///
    /// Before SQLite opens anything, every file the store owns that exists is checked (see
    /// the module's documentation): one that is not safely ours is [`StoreError::Unsafe`],
    /// naming it, and nothing is created, read or written.
    ///
    /// Without a key, a store that holds sealed values is [`StoreError::KeyRequired`] (see
    /// [`Store::open_sealed`]).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, None)
    }

    /// Opens the store at `path` as [`Store::open`] does, sealing with `key`: the `secret`
    /// and `tokens` columns are written sealed and opened when read; values in clear (written
    /// without a key) still read, and are sealed when next written (or by
    /// [`Store::seal_all`]).
    ///
    /// Before anything is read or written, the key id of every sealed value is compared with
    /// `key`'s: one sealed with another key is [`StoreError::Sealed`] with
    /// [`SealError::WrongKey`] (naming both key ids), and the store is left as it was.
    pub fn open_sealed(path: &Path, key: SealingKey) -> Result<Self, StoreError> {
        Self::open_with(path, Some(key))
    }

    /// [`Store::open_sealed`] with `key`, or [`Store::open`] without one: for front ends
    /// whose key is optional (the CLI's `--key-file` and `CONNECTOR_KEY`).
    pub fn open_with_key(path: &Path, key: Option<SealingKey>) -> Result<Self, StoreError> {
        Self::open_with(path, key)
    }

    fn open_with(path: &Path, key: Option<SealingKey>) -> Result<Self, StoreError> {
        if let Some(url) = database_url(path) {
            return Self::open_postgres(url, key);
        }
        let io = |error| StoreError::Io(path.to_owned(), error);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent).map_err(io)?;
        }
        // The store's identity: the path resolved, so that every path to one store finds the
        // same files beside it (SQLite names its own after it too). From here on nothing
        // is followed: the resolved file itself may not be a symbolic link.
        let canonical = canonical_path(path).map_err(io)?;
        for companion in companions(&canonical) {
            check_path(&companion, Kind::File).map_err(refused(&companion))?;
        }
        for dir in [beside(&canonical, LOCKS), beside(&canonical, RESCUE)] {
            check_path(&dir, Kind::Directory).map_err(refused(&dir))?;
        }
        probe_once(&canonical)?;
        let mut db = rusqlite::Connection::open(&canonical)?;
        db.busy_timeout(BUSY_TIMEOUT)?;
        // Processes opening a new store at the same moment contend for the switch to WAL and
        // the first migration, and SQLite answers some of those contentions with an
        // immediate SQLITE_BUSY that its busy handler never sees (deadlock avoidance): retry
        // them, within the same bound.
        let started = std::time::Instant::now();
        let version = loop {
            match prepare(&mut db) {
                Err(StoreError::Busy) if started.elapsed() < BUSY_TIMEOUT => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                prepared => break prepared?,
            }
        };
        // SQLite created (or reopened) its files itself: those that exist must be ours before
        // a secret is read from or written to them. One may be missing: another process that
        // closed the store last deletes `-wal` (and a new one appears at the next write).
        // SQLite creates it with the database file's permissions, checked above, in the
        // store's private directory.
        for companion in companions(&canonical) {
            check_path(&companion, Kind::File).map_err(refused(&companion))?;
        }
        let db = Db::Sqlite(db);
        check_key(&db, key.as_ref())?;
        if key.is_some() {
            // Freed cells (values in clear, or under a retired key) are zeroed; see the
            // module's documentation for what else may linger.
            db.query_one("PRAGMA secure_delete = ON", &[], |row| row.get::<i64>(0))?;
        }
        tracing::debug!(
            path = %path.display(),
            schema = version,
            key = key.as_ref().map(SealingKey::id),
            "store open"
        );
        Ok(Self {
            db,
            path: path.to_owned(),
            canonical,
            key,
        })
    }

    /// Opens the PostgreSQL store at `url` (its password from the URL or `PGPASSWORD`; TLS
    /// as its `sslmode` says, servers verified against the Mozilla roots and
    /// `$PGSSLROOTCERT`, see [`postgres`]),
    /// creating its tables at the current schema when the database has none. The one
    /// process that creates them holds a transaction-scoped advisory lock meanwhile, so
    /// replicas starting together create them once. Rescue files (tokens a refresh could not
    /// store) go to a private directory of this machine's, named after the database (see
    /// [`postgres_rescue_base`]).
    fn open_postgres(url: &str, key: Option<SealingKey>) -> Result<Self, StoreError> {
        let password = std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty());
        let roots = std::env::var_os("PGSSLROOTCERT").filter(|path| !path.is_empty());
        let pg = postgres::Pg::connect(url, password, roots.as_deref().map(Path::new))?;
        let shown = pg.shown().to_owned();
        let db = Db::Postgres(Box::new(std::cell::RefCell::new(pg)));
        let version = db.postgres_schema(
            SCHEMA_LOCK,
            "store_schema",
            SCHEMA_VERSION,
            POSTGRES_SCHEMA,
            "the store's schema",
        )?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema(version));
        }
        check_key(&db, key.as_ref())?;
        tracing::debug!(store = %shown, schema = version, key = key.as_ref().map(SealingKey::id), "store open");
        let canonical = postgres_rescue_base(&shown);
        // The rescue directory's parent, so that tokens a failed commit leaves aside have
        // somewhere to go; best effort (a read-only home only loses that fallback, which the
        // failure itself then reports).
        if let Some(parent) = canonical.parent()
            && let Err(error) = create_private_dir(parent)
        {
            tracing::debug!(dir = %parent.display(), %error, "no directory for rescue files");
        }
        Ok(Self {
            db,
            canonical,
            path: PathBuf::from(shown),
            key,
        })
    }

    /// The key the store seals with, if it was opened with one: for the service's own
    /// tables, which seal their secrets (pending PKCE verifiers) with the same key.
    pub fn sealing_key(&self) -> Option<&SealingKey> {
        self.key.as_ref()
    }

    /// Seals every connection's `secret` and `tokens` that are in clear, in one transaction
    /// (all or nothing); returns how many connections were rewritten. Values already sealed
    /// with the store's key are kept; one sealed with another key fails the whole
    /// ([`SealError::WrongKey`]). [`StoreError::NoKey`] when the store has no key.
    pub fn seal_all(&self) -> Result<usize, StoreError> {
        self.seal_all_with(&[])
    }

    /// [`Store::seal_all`], also rewriting other tables' sealed values in the same
    /// transaction: each of `others` (for example the service's tables) is called with the
    /// transaction, the key to open with and the key to seal with, and returns how many
    /// rows it rewrote.
    pub(crate) fn seal_all_with(&self, others: &[Reseal]) -> Result<usize, StoreError> {
        let key = self.key.as_ref().ok_or(StoreError::NoKey)?;
        self.rewrite_all(Some(key), Some(key), others)
    }

    /// Re-seals every connection's `secret` and `tokens` under `new`, in one transaction (all
    /// or nothing: a value that does not open with the current key fails the whole and
    /// changes nothing); returns how many connections were rewritten. From then on the store
    /// seals with `new`, and the old key no longer opens it. A store without a key is
    /// sealed with `new`. Other processes that have the store open with the old key must be
    /// stopped first: they would go on writing under it.
    pub fn rotate_key(&mut self, new: SealingKey) -> Result<usize, StoreError> {
        self.rotate_key_with(new, &[])
    }

    /// [`Store::rotate_key`], also re-sealing other tables' values in the same transaction
    /// (see [`Store::seal_all_with`]).
    pub(crate) fn rotate_key_with(
        &mut self,
        new: SealingKey,
        others: &[Reseal],
    ) -> Result<usize, StoreError> {
        let rewritten = self.rewrite_all(self.key.as_ref(), Some(&new), others)?;
        tracing::info!(
            from = self.key.as_ref().map(SealingKey::id),
            to = new.id(),
            connections = rewritten,
            "store key rotated"
        );
        self.key = Some(new);
        Ok(rewritten)
    }

    /// Writes every connection's `secret` and `tokens` back in clear, in one transaction
    /// (all or nothing); returns how many connections were rewritten. From then on the store
    /// has no key. For moving away from sealing.
    pub fn unseal_all(&mut self) -> Result<usize, StoreError> {
        let rewritten = self.rewrite_all(self.key.as_ref(), None, &[])?;
        self.key = None;
        Ok(rewritten)
    }

    /// Rewrites every connection's sealed columns opened with `from` (values in clear pass
    /// as they are) and sealed with `to` (or in clear), in one immediate transaction; values
    /// already sealed with `to` are kept. Returns how many connections changed. Then
    /// rebuilds the file (`VACUUM`) and truncates the write-ahead log, which may still hold
    /// the values as they were.
    fn rewrite_all(
        &self,
        from: Option<&SealingKey>,
        to: Option<&SealingKey>,
        others: &[Reseal],
    ) -> Result<usize, StoreError> {
        let sqlite = self.db.backend() == Backend::Sqlite;
        if sqlite {
            self.db
                .query_one("PRAGMA secure_delete = ON", &[], |row| row.get::<i64>(0))?;
        }
        let rewritten = self.db.transaction(|db| {
            let rows = db.query(
                "SELECT name, secret, tokens FROM connections ORDER BY name",
                &[],
                |row| {
                    Ok((
                        row.get::<String>(0)?,
                        row.get::<String>(1)?,
                        row.get::<String>(2)?,
                    ))
                },
            )?;
            let mut rewritten = 0;
            for (name, secret, tokens) in rows {
                let new_secret = reseal(from, to, &name, SECRET, &secret)?;
                let new_tokens = reseal(from, to, &name, TOKENS, &tokens)?;
                if new_secret.is_none() && new_tokens.is_none() {
                    continue;
                }
                db.execute(
                    "UPDATE connections SET secret = ?2, tokens = ?3 WHERE name = ?1",
                    params![
                        name,
                        new_secret.unwrap_or(secret),
                        new_tokens.unwrap_or(tokens)
                    ],
                )?;
                rewritten += 1;
            }
            for reseal in others {
                rewritten += reseal(db, from, to)?;
            }
            Ok::<_, StoreError>(rewritten)
        })?;
        if !sqlite {
            // PostgreSQL's old row versions are its own (VACUUM reclaims them in time).
            return Ok(rewritten);
        }
        // Committed. What the rows held before (in clear, or under the old key) may remain
        // in the file's unused space (`secure_delete` zeroes freed cells, not every byte a
        // b-tree rebalance leaves behind) and in the write-ahead log: rebuild the file, then
        // truncate the log; also when no row changed here, since rows sealed one by one as
        // they were written leave the same behind. (The rebuild's copy is kept in memory, not
        // in a temporary file.) Either failing (another process holds the store) is only
        // logged: the rewrite itself is done, and the next `seal_all` completes it.
        if let Err(error) = self.db.batch("PRAGMA temp_store = MEMORY; VACUUM;") {
            tracing::warn!(%error, "could not rebuild the store after rewriting its secrets");
        }
        if let Err(error) = self
            .db
            .query_opt("PRAGMA wal_checkpoint(TRUNCATE)", &[], |_| Ok(()))
        {
            tracing::warn!(%error, "could not truncate the store's write-ahead log");
        }
        Ok(rewritten)
    }

    /// `value` (JSON) as the `column` of connection `name` is written: sealed with the
    /// store's key, or as it is without one.
    fn seal_value(&self, name: &str, column: SealedColumn, value: String) -> String {
        match &self.key {
            Some(key) => key.seal(value.as_bytes(), &column.context(name)),
            None => value,
        }
    }

    /// The database, for modules that keep their own tables in it (the service's tenants,
    /// integrations and connect sessions).
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// The SQLite connection of a store that is an SQLite file, for tests that write what
    /// the store itself never would.
    #[cfg(test)]
    pub(crate) fn sqlite_for_tests(&self) -> &rusqlite::Connection {
        match &self.db {
            Db::Sqlite(db) => db,
            Db::Postgres(_) => panic!("an SQLite store was expected"),
        }
    }

    /// The file's path, as given to [`Store::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's resolved path (symbolic links, `.` and `..` resolved when it was opened):
    /// the same for every path that reaches this store (a symbolic link to it, or through a
    /// linked directory; hard links are refused), so the refresh locks and rescue files,
    /// which live beside it (`<canonical>.locks/`, `<canonical>.unsaved/`), are shared by
    /// all of them.
    pub fn canonical_path(&self) -> &Path {
        &self.canonical
    }

    /// Stores a new connection, or replaces the one with the same name; either is active
    /// (connecting again clears a [`ConnectionState::NeedsReauthorization`] mark).
    pub fn save(
        &self,
        name: &str,
        config: &ConnectionConfig,
        secret: &SecretSource,
        grant: Grant,
        tokens: &TokenSet,
    ) -> Result<(), StoreError> {
        self.save_with(
            name,
            config,
            secret,
            &ConnectionSecrets::default(),
            grant,
            tokens,
        )
    }

    /// [`Store::save`], with what the connection keeps sealed beside its client's
    /// credential.
    pub fn save_with(
        &self,
        name: &str,
        config: &ConnectionConfig,
        secret: &SecretSource,
        secrets: &ConnectionSecrets,
        grant: Grant,
        tokens: &TokenSet,
    ) -> Result<(), StoreError> {
        let secret_json = if secrets.is_empty() {
            to_json(secret)
        } else {
            to_json(&SecretColumn::WithSecrets {
                client: secret.clone(),
                secrets: Box::new(secrets.clone()),
            })
        };
        let mut config = config.clone();
        config.client.client_secret = None;
        let now = now() as i64;
        self.db.execute(
            "INSERT INTO connections
                 (name, config, secret, grant_type, tokens, created_at, updated_at, token_writes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 1)
             ON CONFLICT(name) DO UPDATE SET config = ?2, secret = ?3, grant_type = ?4, tokens = ?5,
                 updated_at = ?6, token_writes = connections.token_writes + 1,
                 reauthorization = NULL, reauthorization_since = NULL, refresh_started_at = NULL",
            params![
                name,
                to_json(&config),
                self.seal_value(name, SECRET, secret_json),
                to_json(&grant),
                self.seal_value(name, TOKENS, to_json(tokens)),
                now
            ],
        )?;
        Ok(())
    }

    /// Replaces a connection's token set.
    pub fn update_tokens(&self, name: &str, tokens: &TokenSet) -> Result<(), StoreError> {
        let changed = self.db.execute(
            "UPDATE connections SET tokens = ?2, updated_at = ?3, token_writes = token_writes + 1,
                 refresh_started_at = NULL
             WHERE name = ?1",
            params![
                name,
                self.seal_value(name, TOKENS, to_json(tokens)),
                now() as i64
            ],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(name.to_owned()));
        }
        Ok(())
    }

    /// Marks a connection as needing to be connected again, for `reason`, from now on (its
    /// tokens are kept as they are; only `save` clears the mark).
    pub fn mark_needs_reauthorization(
        &self,
        name: &str,
        reason: &Reauthorization,
    ) -> Result<(), StoreError> {
        let changed = self.db.execute(
            "UPDATE connections SET reauthorization = ?2, reauthorization_since = ?3
             WHERE name = ?1",
            params![name, to_json(reason), now() as i64],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(name.to_owned()));
        }
        Ok(())
    }

    /// Records, committed, that a refresh of `name` is about to be sent (see
    /// [`StoredConnection::refresh_interrupted_at`]); storing its tokens
    /// ([`Store::update_tokens`]) or [`Store::refresh_settled`] clears the record.
    pub fn refresh_started(&self, name: &str) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE connections SET refresh_started_at = ?2 WHERE name = ?1",
            params![name, now() as i64],
        )?;
        Ok(())
    }

    /// Clears the record of [`Store::refresh_started`]: the refresh's outcome is known
    /// (the server refused it, or nothing was sent).
    pub fn refresh_settled(&self, name: &str) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE connections SET refresh_started_at = NULL WHERE name = ?1",
            params![name],
        )?;
        Ok(())
    }

    /// Takes connection `name`'s refresh lock in the PostgreSQL store: a session-level
    /// advisory lock, waited for at most `timeout` ([`StoreError::Busy`] past it, with
    /// nothing changed). The server releases it when the session ends, so a process that
    /// dies holding it (killed, or cut off) never blocks the others. Held until the guard is
    /// dropped; meanwhile a lost session is an error, not silently replaced (the lock went
    /// with it). `None` for the SQLite store, whose locks are files beside it.
    pub fn lock_in_database(
        &self,
        name: &str,
        timeout: std::time::Duration,
    ) -> Result<Option<DatabaseLock<'_>>, StoreError> {
        let Db::Postgres(pg) = &self.db else {
            return Ok(None);
        };
        let key = format!("oauth-connector/connection/{name}");
        self.db.batch(&format!(
            "SET lock_timeout = {}",
            timeout.as_millis().clamp(1, i32::MAX as u128)
        ))?;
        let locked = self.db.query_one(
            "SELECT pg_advisory_lock(hashtextextended(?1, 0))",
            params![key],
            |_| Ok(()),
        );
        let reset = self.db.batch("RESET lock_timeout");
        locked?;
        pg.borrow_mut().pin();
        if let Err(error) = reset {
            drop(DatabaseLock { store: self, key });
            return Err(error);
        }
        Ok(Some(DatabaseLock { store: self, key }))
    }

    /// Whether a connection named `name` is stored (its row is not decoded).
    pub fn contains(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .db
            .query_opt(
                "SELECT 1 FROM connections WHERE name = ?1",
                params![name],
                |_| Ok(()),
            )?
            .is_some())
    }

    /// Reads one connection.
    pub fn get(&self, name: &str) -> Result<StoredConnection, StoreError> {
        self.db
            .query_opt(
                "SELECT name, config, secret, grant_type, tokens, created_at, updated_at, token_writes,
                        reauthorization, reauthorization_since, refresh_started_at
                 FROM connections WHERE name = ?1",
                params![name],
                row_to_raw,
            )?
            .ok_or_else(|| StoreError::NotFound(name.to_owned()))?
            .decode(self.key.as_ref())
    }

    /// Every connection, by name.
    pub fn list(&self) -> Result<Vec<StoredConnection>, StoreError> {
        let raws = self.db.query(
            "SELECT name, config, secret, grant_type, tokens, created_at, updated_at, token_writes,
                    reauthorization, reauthorization_since, refresh_started_at
             FROM connections ORDER BY name",
            &[],
            row_to_raw,
        )?;
        raws.into_iter()
            .map(|raw| raw.decode(self.key.as_ref()))
            .collect()
    }

    /// The connections whose names start with `prefix` and sort after `prefix` + `after`
    /// (from the first when `None`), by name, at most `limit`: one page of a listing, read
    /// through the name's index (only the page's rows are decoded and opened).
    pub fn list_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredConnection>, StoreError> {
        // Every name with the prefix sorts before the prefix with its last character
        // incremented; an empty prefix has no upper bound.
        let upper = prefix.chars().last().map(|last| {
            let mut upper = prefix[..prefix.len() - last.len_utf8()].to_owned();
            upper.push(char::from_u32(last as u32 + 1).unwrap_or(char::MAX));
            upper
        });
        let after = after.map(|after| format!("{prefix}{after}"));
        let raws = self.db.query(
            "SELECT name, config, secret, grant_type, tokens, created_at, updated_at, token_writes,
                    reauthorization, reauthorization_since, refresh_started_at
             FROM connections
             WHERE name >= ?1 AND (CAST(?2 AS TEXT) IS NULL OR name > ?2)
                 AND (CAST(?3 AS TEXT) IS NULL OR name < ?3)
             ORDER BY name LIMIT ?4",
            params![
                prefix,
                after,
                upper,
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            row_to_raw,
        )?;
        raws.into_iter()
            .map(|raw| raw.decode(self.key.as_ref()))
            .collect()
    }

    /// Deletes a connection; `NotFound` when there is none.
    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        let changed = self
            .db
            .execute("DELETE FROM connections WHERE name = ?1", params![name])?;
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
    reauthorization: Option<String>,
    reauthorization_since: Option<i64>,
    refresh_started_at: Option<i64>,
}

/// How long a store operation waits for another process's lock before `Busy`.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Puts the store in WAL mode with `synchronous = FULL` and migrates its schema; returns the
/// schema version. WAL: readers never wait for the writer, which matters
/// when many processes share the store. synchronous=FULL: a committed token set survives
/// power loss, so a rotated refresh token is durable once `update_tokens` returns.
fn prepare(db: &mut rusqlite::Connection) -> Result<i64, StoreError> {
    // The pragma answers with the mode in force (a file system without shared memory keeps
    // `delete`); either works.
    db.query_row("PRAGMA journal_mode = WAL", [], |row| {
        row.get::<_, String>(0)
    })?;
    db.execute_batch("PRAGMA synchronous = FULL")?;
    migrate(db)
}

/// Brings the store's schema to [`SCHEMA_VERSION`] in one immediate transaction, reading the
/// version inside it, so that processes opening a new or older store at the same time
/// migrate it exactly once. Returns the version.
fn migrate(db: &mut rusqlite::Connection) -> Result<i64, StoreError> {
    let transaction = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = transaction.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema(version));
    }
    if version == SCHEMA_VERSION {
        return Ok(version);
    }
    // A new store (version 0) is created, not migrated: not news at `-v`.
    if version == 0 {
        tracing::debug!(to = SCHEMA_VERSION, "creating the store's schema");
    }
    for (target, statements) in MIGRATIONS.iter().filter(|(target, _)| *target > version) {
        if version > 0 {
            tracing::info!(from = version, to = target, "migrating the store's schema");
        }
        transaction.execute_batch(statements)?;
    }
    transaction.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    transaction.commit()?;
    Ok(SCHEMA_VERSION)
}

fn row_to_raw(row: &db::Row<'_>) -> Result<RawRow, StoreError> {
    Ok(RawRow {
        name: row.get(0)?,
        config: row.get(1)?,
        secret: row.get(2)?,
        grant: row.get(3)?,
        tokens: row.get(4)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
        token_writes: row.get(7)?,
        reauthorization: row.get(8)?,
        reauthorization_since: row.get(9)?,
        refresh_started_at: row.get(10)?,
    })
}

impl RawRow {
    /// The connection this row holds, its sealed columns opened with `key`.
    fn decode(self, key: Option<&SealingKey>) -> Result<StoredConnection, StoreError> {
        let secret = open_value(key, &self.name, SECRET, self.secret)?;
        let tokens = open_value(key, &self.name, TOKENS, self.tokens)?;
        let corrupt = |column| StoreError::Corrupt(self.name.clone(), column);
        let state = match self.reauthorization {
            None => ConnectionState::Active,
            Some(reason) => ConnectionState::NeedsReauthorization {
                reason: serde_json::from_str(&reason).map_err(|_| corrupt("state"))?,
                since: self.reauthorization_since.unwrap_or(0).max(0) as u64,
            },
        };
        let (secret, secrets) = match serde_json::from_str(&secret) {
            Ok(SecretColumn::WithSecrets { client, secrets }) => (client, *secrets),
            Ok(SecretColumn::Client(client)) => (client, ConnectionSecrets::default()),
            Err(_) => return Err(corrupt(SECRET.label)),
        };
        Ok(StoredConnection {
            config: upgrade::config_from_json(&self.config)
                .map_err(|_| corrupt("configuration"))?,
            secret,
            secrets,
            grant: serde_json::from_str(&self.grant).map_err(|_| corrupt("grant"))?,
            tokens: serde_json::from_str(&tokens).map_err(|_| corrupt(TOKENS.label))?,
            created_at: self.created_at.max(0) as u64,
            updated_at: self.updated_at.max(0) as u64,
            token_writes: self.token_writes.max(0) as u64,
            state,
            refresh_interrupted_at: self.refresh_started_at.map(|at| at.max(0) as u64),
            name: self.name,
        })
    }
}

/// A column whose values are sealed when the store has a key.
#[derive(Clone, Copy)]
struct SealedColumn {
    /// Its SQL name, also in the sealing context.
    sql: &'static str,
    /// What it holds, as errors name it.
    label: &'static str,
}

/// The client's secret (a [`SecretSource`] as JSON).
const SECRET: SealedColumn = SealedColumn {
    sql: "secret",
    label: "secret",
};

/// The token set (a [`TokenSet`] as JSON).
const TOKENS: SealedColumn = SealedColumn {
    sql: "tokens",
    label: "token set",
};

impl SealedColumn {
    /// What a value is bound to: `connections/<column>/<name>`, so a value copied to another
    /// connection, or the other column, does not open. (The column's name has no `/`, so the
    /// name after it is unambiguous.)
    fn context(self, name: &str) -> Vec<u8> {
        format!("connections/{}/{name}", self.sql).into_bytes()
    }
}

/// `text`, read from `column` of connection `name`, opened with `key` when it is sealed, as
/// it is otherwise (written in clear, before the store had a key).
fn open_value(
    key: Option<&SealingKey>,
    name: &str,
    column: SealedColumn,
    text: String,
) -> Result<String, StoreError> {
    if !seal::is_sealed(&text) {
        return Ok(text);
    }
    let sealed = |error| StoreError::Sealed {
        name: name.to_owned(),
        column: column.label,
        error,
    };
    let Some(key) = key else {
        let key_id = seal::key_id_of(&text).ok_or_else(|| sealed(SealError::Malformed))?;
        return Err(StoreError::KeyRequired {
            key_id: key_id.to_owned(),
        });
    };
    let plaintext = key.open(&text, &column.context(name)).map_err(sealed)?;
    String::from_utf8(plaintext).map_err(|_| StoreError::Corrupt(name.to_owned(), column.label))
}

/// `text`, read from `column` of connection `name`, as it is to be written instead: opened
/// with `from`, then sealed with `to` (or in clear); `None` when it stays as it is (in clear
/// and to stay so, or already sealed with `to`).
fn reseal(
    from: Option<&SealingKey>,
    to: Option<&SealingKey>,
    name: &str,
    column: SealedColumn,
    text: &str,
) -> Result<Option<String>, StoreError> {
    let sealed_with = seal::key_id_of(text);
    match to {
        Some(to) if sealed_with == Some(to.id()) => return Ok(None),
        None if !seal::is_sealed(text) => return Ok(None),
        _ => {}
    }
    let plaintext = open_value(from, name, column, text.to_owned())?;
    Ok(Some(match to {
        Some(to) => to.seal(plaintext.as_bytes(), &column.context(name)),
        None => plaintext,
    }))
}

/// Compares `key` with the key id of every sealed value in the store, reading only the
/// envelopes' headers: [`StoreError::KeyRequired`] when there is no key, and
/// [`StoreError::Sealed`] ([`SealError::WrongKey`], naming the first such connection) when
/// another key sealed one. Reads only: run before anything is written.
fn check_key(db: &Db, key: Option<&SealingKey>) -> Result<(), StoreError> {
    let heads = db.query(
        "SELECT name, substr(secret, 1, 32), substr(tokens, 1, 32) FROM connections
         WHERE substr(secret, 1, 7) = 'sealed:' OR substr(tokens, 1, 7) = 'sealed:'
         ORDER BY name",
        &[],
        |row| {
            Ok((
                row.get::<String>(0)?,
                row.get::<String>(1)?,
                row.get::<String>(2)?,
            ))
        },
    )?;
    for (name, secret, tokens) in heads {
        for (column, head) in [(SECRET, secret), (TOKENS, tokens)] {
            if !seal::is_sealed(&head) {
                continue;
            }
            let sealed = |error| StoreError::Sealed {
                name: name.clone(),
                column: column.label,
                error,
            };
            let stored_key_id =
                seal::key_id_of(&head).ok_or_else(|| sealed(SealError::Malformed))?;
            match key {
                None => {
                    return Err(StoreError::KeyRequired {
                        key_id: stored_key_id.to_owned(),
                    });
                }
                Some(key) if key.id() != stored_key_id => {
                    return Err(sealed(SealError::WrongKey {
                        given_key_id: key.id().to_owned(),
                        stored_key_id: stored_key_id.to_owned(),
                    }));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("records of strings and numbers always serialize")
}

/// The suffix of the directory of per-connection lock files beside the store.
pub(crate) const LOCKS: &str = ".locks";
/// The suffix of the directory of rescue files beside the store.
pub(crate) const RESCUE: &str = ".unsaved";

/// Permission bits a file or directory holding secrets may not have (group and others).
pub(crate) const PRIVATE_BITS: u32 = 0o077;

/// `path` with `suffix` appended to its file name: `conn.db-wal`, and the lock and rescue
/// directories `conn.db.locks`, `conn.db.unsaved`.
pub(crate) fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// The files SQLite keeps beside the database: `-wal`, `-shm` (WAL mode), `-journal`.
fn companions(database: &Path) -> [PathBuf; 3] {
    ["-wal", "-shm", "-journal"].map(|suffix| beside(database, suffix))
}

/// `path` resolved (`std::fs::canonicalize`: symbolic links, `.`, `..`); for a store that
/// does not exist yet, its directory resolved and its name kept.
fn canonical_path(path: &Path) -> std::io::Result<PathBuf> {
    match std::fs::canonicalize(path) {
        Ok(canonical) => Ok(canonical),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let name = path.file_name().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name")
            })?;
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            Ok(std::fs::canonicalize(parent.unwrap_or(Path::new(".")))?.join(name))
        }
        Err(error) => Err(error),
    }
}

/// Opens the database file, creating it exclusively (0600) when missing, else checking the
/// opened file; returns whether its header says WAL mode (file format versions 2).
fn open_database_file(path: &Path) -> Result<(std::fs::File, bool), StoreError> {
    use std::io::Read as _;
    let (mut file, _) = open_private_file(path, Create::IfMissing, PRIVATE_BITS)
        .map_err(refused(path))?
        .expect("created when missing");
    let mut header = [0_u8; 20];
    let in_wal_mode = file.read_exact(&mut header).is_ok() && header[18] == 2 && header[19] == 2;
    Ok((file, in_wal_mode))
}

/// The handles this process opened on each store's files before SQLite first opened them
/// (by resolved path), kept open for the life of the process.
///
/// On POSIX systems closing *any* handle to a file releases every lock the process holds on
/// it, the locks of its own SQLite connections included (SQLite works around this for its
/// own handles, not for ours). So the handle-based checks of [`open_database_file`] and the
/// owner-only creation of `-wal` and `-shm` run once per store per process, the first time
/// it is opened, while no SQLite connection of this process has it open (the lock below is
/// held throughout), and their handles are never closed: a second [`Store`] on the same
/// file in one process (a service's worker threads) cannot release the first one's locks.
/// Later opens still check every file by path ([`check_path`]) before and after SQLite
/// opens them. The cost: up to three handles per store per process.
static PROBED: std::sync::Mutex<Vec<(PathBuf, Vec<std::fs::File>)>> =
    std::sync::Mutex::new(Vec::new());

/// What identifies a file on its file system (device and inode on Unix).
fn file_identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        (metadata.dev(), metadata.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        (0, 0)
    }
}

/// Runs the handle-based checks on the store at `canonical` (see [`PROBED`]) unless this
/// process already has.
fn probe_once(canonical: &Path) -> Result<(), StoreError> {
    let mut probed = PROBED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // A file replaced since (removed and created again) is a new store: probed again.
    let current = std::fs::symlink_metadata(canonical)
        .ok()
        .map(|m| file_identity(&m));
    if let Some(index) = probed.iter().position(|(path, _)| path == canonical) {
        let seen = probed[index].1[0]
            .metadata()
            .ok()
            .map(|m| file_identity(&m));
        if current.is_some() && current == seen {
            // Probed before: checked again by path only (a handle opened and closed now
            // would release this process's locks on it).
            return check_path(canonical, Kind::File)
                .map(drop)
                .map_err(refused(canonical));
        }
        probed.swap_remove(index);
    }
    let (file, in_wal_mode) = open_database_file(canonical)?;
    let mut handles = vec![file];
    if in_wal_mode {
        // Ours, created exclusively now, so SQLite has no chance to use someone else's.
        for companion in [beside(canonical, "-wal"), beside(canonical, "-shm")] {
            if let Some((file, _)) = open_private_file(&companion, Create::IfMissing, PRIVATE_BITS)
                .map_err(refused(&companion))?
            {
                handles.push(file);
            }
        }
    }
    probed.push((canonical.to_owned(), handles));
    Ok(())
}

/// What kind of entry a checked path must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A regular file with no other hard link.
    File,
    /// A directory.
    Directory,
}

/// Why a file beside the store could not be used.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// It could not be created, opened or examined.
    Io(std::io::Error),
    /// It exists but is not safely ours.
    Unsafe(UnsafeFile),
}

/// Maps a refusal about `path` to a [`StoreError`].
fn refused(path: &Path) -> impl Fn(Refusal) -> StoreError + '_ {
    move |refusal| match refusal {
        Refusal::Io(error) => StoreError::Io(path.to_owned(), error),
        Refusal::Unsafe(problem) => StoreError::Unsafe(path.to_owned(), problem),
    }
}

/// Whether to create a missing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Create {
    /// Create it, exclusively and owner-only.
    IfMissing,
    /// Only open an existing one.
    Never,
}

/// The effective user id: who the store's files must belong to.
#[cfg(unix)]
#[allow(unsafe_code)] // one libc call without arguments
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Checks what `metadata` (from `lstat`, or `fstat` of an opened file) describes: ours, of
/// the right kind, not a symbolic link, no bit of `forbidden` set in its mode, and (a file)
/// no other hard link.
#[cfg(unix)]
pub(crate) fn check_metadata(
    metadata: &std::fs::Metadata,
    kind: Kind,
    forbidden: u32,
) -> Result<(), UnsafeFile> {
    use std::os::unix::fs::MetadataExt;
    let file_type = metadata.file_type();
    if file_type.is_symlink() {
        return Err(UnsafeFile::Symlink);
    }
    match kind {
        Kind::File if !file_type.is_file() => return Err(UnsafeFile::NotAFile),
        Kind::Directory if !file_type.is_dir() => return Err(UnsafeFile::NotADirectory),
        _ => {}
    }
    if metadata.uid() != effective_uid() {
        return Err(UnsafeFile::NotOwned {
            owner: metadata.uid(),
        });
    }
    if kind == Kind::File && metadata.nlink() != 1 {
        return Err(UnsafeFile::Linked {
            links: metadata.nlink(),
        });
    }
    let mode = metadata.mode() & 0o7777;
    if mode & forbidden != 0 {
        return Err(UnsafeFile::Shared { mode });
    }
    Ok(())
}

/// Elsewhere, file ownership is not checked (Windows files inherit the ACL of the user's
/// profile directory).
#[cfg(not(unix))]
pub(crate) fn check_metadata(
    metadata: &std::fs::Metadata,
    kind: Kind,
    _forbidden: u32,
) -> Result<(), UnsafeFile> {
    match kind {
        _ if metadata.file_type().is_symlink() => Err(UnsafeFile::Symlink),
        Kind::File if !metadata.is_file() => Err(UnsafeFile::NotAFile),
        Kind::Directory if !metadata.is_dir() => Err(UnsafeFile::NotADirectory),
        _ => Ok(()),
    }
}

/// Checks the entry at `path` without following it, as a private `kind` (see
/// [`check_metadata`]); `Ok(false)` when there is none.
pub(crate) fn check_path(path: &Path, kind: Kind) -> Result<bool, Refusal> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) => check_metadata(&metadata, kind, PRIVATE_BITS)
            .map(|()| true)
            .map_err(Refusal::Unsafe),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(Refusal::Io(error)),
    }
}

/// Opens the file at `path` without following a symbolic link. A missing file is created
/// exclusively, owner-only (0600), with `Create::IfMissing` (then `Ok(Some((file, true)))`),
/// else `Ok(None)`. An existing file is opened read-only (and never blocks, should it be a
/// FIFO) and checked through the opened handle, not its path (see [`check_metadata`], with
/// `forbidden` mode bits): `Ok(Some((file, false)))` when it passes.
pub(crate) fn open_private_file(
    path: &Path,
    create: Create,
    forbidden: u32,
) -> Result<Option<(std::fs::File, bool)>, Refusal> {
    // A file removed between the two attempts (SQLite deletes its -wal and -shm when the
    // last connection closes) is created again; a path that keeps changing is an error.
    for _ in 0..3 {
        if create == Create::IfMissing {
            match new_private_file(path) {
                Ok(file) => return Ok(Some((file, true))),
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(error) => return Err(Refusal::Io(error)),
            }
        }
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(
            &mut options,
            libc::O_NOFOLLOW | libc::O_NONBLOCK,
        );
        match options.open(path) {
            Ok(file) => {
                let metadata = file.metadata().map_err(Refusal::Io)?;
                // No link left: removed between the open and this look (SQLite's last
                // connection deleting its -wal), not shared: try the path again.
                #[cfg(unix)]
                if std::os::unix::fs::MetadataExt::nlink(&metadata) == 0 {
                    continue;
                }
                check_metadata(&metadata, Kind::File, forbidden).map_err(Refusal::Unsafe)?;
                return Ok(Some((file, false)));
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                if create == Create::Never {
                    return Ok(None);
                }
            }
            #[cfg(unix)]
            Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
                return Err(Refusal::Unsafe(UnsafeFile::Symlink));
            }
            Err(error) => return Err(Refusal::Io(error)),
        }
    }
    Err(Refusal::Io(std::io::Error::other(
        "the file keeps appearing and disappearing",
    )))
}

/// Creates a new file at `path`, exclusively (it must not exist, not even as a symbolic
/// link), owner-only (0600), for writing.
pub(crate) fn new_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// Creates the directory `dir` (its parent must exist) owner-only (0700), or checks the
/// existing one: ours, a real directory (not a symbolic link), no group or other bits.
pub(crate) fn private_dir(dir: &Path) -> Result<(), Refusal> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            match check_path(dir, Kind::Directory)? {
                true => Ok(()),
                false => Err(Refusal::Io(error)),
            }
        }
        Err(error) => Err(Refusal::Io(error)),
    }
}

/// Creates `dir` (and its parents) readable by its owner only; an existing one is kept as
/// it is (the store's directory may be shared, see the module's documentation).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Client, ProviderProfile};

    #[cfg(unix)]
    #[test]
    fn the_postgres_refresh_lock_is_bounded_and_dies_with_its_session() {
        use std::time::{Duration, Instant};
        let cluster = crate::test_postgres::PgCluster::start();
        let url = cluster.url();
        let (first, second) = (
            Store::open(Path::new(&url)).unwrap(),
            Store::open(Path::new(&url)).unwrap(),
        );
        assert!(
            !first
                .path()
                .to_str()
                .unwrap()
                .contains(url.split(':').nth(2).unwrap())
        );
        let held = first.lock_in_database("c", Duration::from_secs(1)).unwrap();
        assert!(held.is_some());
        // Another session waits at most its timeout, then gives up: nothing is taken.
        let started = Instant::now();
        assert!(matches!(
            second.lock_in_database("c", Duration::from_millis(200)),
            Err(StoreError::Busy)
        ));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(200) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
        // Another connection's lock is another lock.
        assert!(
            second
                .lock_in_database("d", Duration::from_millis(200))
                .unwrap()
                .is_some()
        );
        // Released: taken at once.
        drop(held);
        let again = second
            .lock_in_database("c", Duration::from_millis(200))
            .unwrap();
        // A session that ends (its process killed, or cut off) releases what it held.
        drop(again);
        let holder = first
            .lock_in_database("c", Duration::from_secs(1))
            .unwrap()
            .unwrap();
        std::mem::forget(holder);
        drop(first);
        let started = Instant::now();
        assert!(
            second
                .lock_in_database("c", Duration::from_secs(5))
                .unwrap()
                .is_some()
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_grants_name_is_its_stored_form() {
        for grant in [
            Grant::AuthorizationCode,
            Grant::ClientCredentials,
            Grant::Device,
        ] {
            assert_eq!(
                serde_json::to_value(grant).unwrap(),
                serde_json::json!(grant.name())
            );
        }
    }

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
            resources: vec![],
            dpop: false,
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
            dpop_key_thumbprint: None,
        }
    }

    #[test]
    fn a_page_holds_one_prefix_only_from_after_its_cursor() {
        let path = temp_path("page");
        let store = Store::open(&path).unwrap();
        // Tenant 1's three, and names that sort right before and after its prefix.
        for name in ["t1:b", "t1:a", "t1:c", "t10:a", "t1;x", "t0:z", "plain"] {
            save_public(&store, name, &tokens(name)).unwrap();
        }
        let names = |after: Option<&str>, limit: usize| -> Vec<String> {
            store
                .list_page("t1:", after, limit)
                .unwrap()
                .into_iter()
                .map(|connection| connection.name)
                .collect()
        };
        assert_eq!(names(None, 10), ["t1:a", "t1:b", "t1:c"]);
        assert_eq!(names(None, 2), ["t1:a", "t1:b"]);
        assert_eq!(names(Some("b"), 2), ["t1:c"]);
        assert_eq!(names(Some("c"), 2), Vec::<String>::new());
        assert_eq!(names(Some(""), usize::MAX), ["t1:a", "t1:b", "t1:c"]);
        let all: Vec<String> = store
            .list_page("", None, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|connection| connection.name)
            .collect();
        assert_eq!(all.len(), 7);
        drop(store);
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }

    /// The store file a [`side_by_side_worker`] writes to.
    const SIDE_BY_SIDE_ENV: &str = "CONNECTOR_TEST_SIDE_BY_SIDE_STORE";

    /// Many stores on one file in one process, opened and closed while they and another
    /// process write (a service's worker threads next to a CLI): opening one must not
    /// release the SQLite locks the process already holds on the file (POSIX drops all of a
    /// process's locks on a file when any handle to it closes; see [`PROBED`]); otherwise the
    /// other process may reset the shared WAL index under this one's connections. Every write
    /// must land.
    #[test]
    fn stores_opened_side_by_side_keep_their_locks() {
        let path = temp_path("side-by-side");
        let first = Store::open(&path).unwrap();
        save_public(&first, "shared", &tokens("at-0")).unwrap();
        let mut worker = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "store::tests::side_by_side_worker"])
            .env(SIDE_BY_SIDE_ENV, &path)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::scope(|scope| {
            for thread in 0..8 {
                let path = &path;
                scope.spawn(move || {
                    for round in 0..40 {
                        let store = Store::open(path).unwrap();
                        let access = format!("at-{thread}-{round}");
                        store.update_tokens("shared", &tokens(&access)).unwrap();
                        let read = store.get("shared").unwrap().tokens.access_token;
                        assert!(read.starts_with("at-"), "read {read:?}");
                    }
                });
            }
            for round in 0..200 {
                first
                    .update_tokens("shared", &tokens(&format!("at-first-{round}")))
                    .unwrap();
                assert_eq!(first.list().unwrap().len(), 1);
            }
        });
        assert!(
            worker.wait().unwrap().success(),
            "the worker process failed"
        );
        assert_eq!(
            first.get("shared").unwrap().token_writes,
            1 + 8 * 40 + 200 + 200
        );
    }

    /// The other process of [`stores_opened_side_by_side_keep_their_locks`]: opens and closes
    /// the store while writing.
    #[test]
    #[ignore = "a worker process started by stores_opened_side_by_side_keep_their_locks"]
    fn side_by_side_worker() {
        let path = PathBuf::from(std::env::var_os(SIDE_BY_SIDE_ENV).unwrap());
        for round in 0..200 {
            let store = Store::open(&path).unwrap();
            store
                .update_tokens("shared", &tokens(&format!("at-worker-{round}")))
                .unwrap();
        }
    }

    // Sealing: distinctive strings, to look for in the file's bytes.
    const CLIENT_SECRET: &str = "client-secret-3f9a1c0b";
    const ACCESS_TOKEN: &str = "access-token-7d2e5b44";
    const REFRESH_TOKEN: &str = "refresh-token-91c4aa07";

    fn sealing_key(byte: u8) -> SealingKey {
        SealingKey::from_hex(&format!("{byte:02x}").repeat(32)).unwrap()
    }

    fn secret_tokens(access: &str) -> TokenSet {
        TokenSet {
            refresh_token: Some(REFRESH_TOKEN.into()),
            ..tokens(access)
        }
    }

    /// Saves a confidential connection `name`: the client secret, and the token set with
    /// `access` and the refresh token.
    fn save_confidential(store: &Store, name: &str, access: &str) {
        store
            .save(
                name,
                &config(),
                &SecretSource::Stored(CLIENT_SECRET.into()),
                Grant::AuthorizationCode,
                &secret_tokens(access),
            )
            .unwrap();
    }

    /// The bytes of the database file and of its write-ahead log, if there is one.
    fn on_disk(path: &Path) -> Vec<u8> {
        let mut bytes = std::fs::read(path).unwrap();
        if let Ok(wal) = std::fs::read(beside(path, "-wal")) {
            bytes.extend(wal);
        }
        bytes
    }

    fn holds(bytes: &[u8], text: &str) -> bool {
        bytes
            .windows(text.len())
            .any(|window| window == text.as_bytes())
    }

    /// The raw text of a column of a connection, as stored.
    fn raw(store: &Store, name: &str, column: &str) -> String {
        store
            .sqlite_for_tests()
            .query_row(
                &format!("SELECT {column} FROM connections WHERE name = ?1"),
                [name],
                |row| row.get(0),
            )
            .unwrap()
    }

    #[test]
    fn a_sealed_store_holds_no_secret_in_clear() {
        // The control: a store without a key holds them in clear, and the search finds them.
        let path = temp_path("clear-control");
        let store = Store::open(&path).unwrap();
        save_confidential(&store, "c", ACCESS_TOKEN);
        drop(store);
        let bytes = on_disk(&path);
        for secret in [CLIENT_SECRET, ACCESS_TOKEN, REFRESH_TOKEN] {
            assert!(holds(&bytes, secret), "{secret}");
        }

        let path = temp_path("sealed");
        let key = sealing_key(1);
        let store = Store::open_sealed(&path, key.clone()).unwrap();
        assert_eq!(store.sealing_key().map(SealingKey::id), Some(key.id()));
        save_confidential(&store, "c", ACCESS_TOKEN);
        save_confidential(&store, "d", ACCESS_TOKEN);
        store.update_tokens("d", &secret_tokens("at2")).unwrap();
        for column in ["secret", "tokens"] {
            assert!(
                raw(&store, "c", column).starts_with(&format!("sealed:v1:{}:", key.id())),
                "{column}"
            );
        }
        let stored = store.get("c").unwrap();
        assert_eq!(stored.secret, SecretSource::Stored(CLIENT_SECRET.into()));
        assert_eq!(stored.tokens, secret_tokens(ACCESS_TOKEN));
        assert_eq!(store.list().unwrap()[1].tokens, secret_tokens("at2"));
        // While open (the writes are in the write-ahead log), and after closing.
        assert!(beside(&path, "-wal").exists());
        let bytes = on_disk(&path);
        for secret in [CLIENT_SECRET, ACCESS_TOKEN, REFRESH_TOKEN] {
            assert!(
                !holds(&bytes, secret),
                "{secret} in clear in the open store"
            );
        }
        drop(store);
        let bytes = on_disk(&path);
        for secret in [CLIENT_SECRET, ACCESS_TOKEN, REFRESH_TOKEN] {
            assert!(
                !holds(&bytes, secret),
                "{secret} in clear in the closed store"
            );
        }
        let store = Store::open_sealed(&path, key).unwrap();
        assert_eq!(store.get("c").unwrap().tokens, secret_tokens(ACCESS_TOKEN));
    }

    /// A private key stored with a connection (a service integration's) is sealed in the
    /// `secret` column like a stored secret, comes back as it was and never prints; the
    /// older variants keep their encodings, so rows written before it was added still load.
    #[test]
    fn a_stored_private_key_is_sealed_like_a_secret() {
        const PEM_BODY: &str = "MC4CAQAwBQYDK2VwBCIEIStoredKeyBody7c1e0a9b3d5f";
        let source = SecretSource::StoredPrivateKey {
            pem: format!("-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\n"),
            key_id: Some("k1".into()),
        };
        assert_eq!(
            format!("{source:?}"),
            r#"StoredPrivateKey { pem: [redacted], key_id: Some("k1") }"#
        );
        assert!(source.is_private_key());
        assert!(!SecretSource::Stored("s".into()).is_private_key());

        let path = temp_path("stored-key");
        let key = sealing_key(1);
        let store = Store::open_sealed(&path, key.clone()).unwrap();
        store
            .save(
                "signed",
                &config(),
                &source,
                Grant::AuthorizationCode,
                &secret_tokens(ACCESS_TOKEN),
            )
            .unwrap();
        assert!(raw(&store, "signed", "secret").starts_with(&format!("sealed:v1:{}:", key.id())));
        assert_eq!(store.get("signed").unwrap().secret, source);
        drop(store);
        let bytes = on_disk(&path);
        for clear in [PEM_BODY, "PRIVATE KEY", "StoredPrivateKey"] {
            assert!(!holds(&bytes, clear), "{clear} in clear in the store");
        }

        // The encodings rows were written with, unchanged.
        assert_eq!(to_json(&SecretSource::None), r#""None""#);
        assert_eq!(
            to_json(&SecretSource::Stored("s".into())),
            r#"{"Stored":"s"}"#
        );
        assert_eq!(
            to_json(&SecretSource::Environment("V".into())),
            r#"{"Environment":"V"}"#
        );
        assert_eq!(
            to_json(&SecretSource::PrivateKey {
                path: "/k.pem".into(),
                key_id: None
            }),
            r#"{"PrivateKey":{"path":"/k.pem","key_id":null}}"#
        );
    }

    #[test]
    fn a_wrong_key_or_none_is_refused_and_changes_nothing() {
        let path = temp_path("wrong-key");
        let right = sealing_key(1);
        let store = Store::open_sealed(&path, right.clone()).unwrap();
        save_confidential(&store, "c", ACCESS_TOKEN);
        drop(store);
        let before = std::fs::read(&path).unwrap();
        let wrong = sealing_key(2);
        match Store::open_sealed(&path, wrong.clone()) {
            Err(StoreError::Sealed {
                name,
                column: "secret",
                error:
                    SealError::WrongKey {
                        given_key_id,
                        stored_key_id,
                    },
            }) => {
                assert_eq!(name, "c");
                assert_eq!(
                    (given_key_id.as_str(), stored_key_id.as_str()),
                    (wrong.id(), right.id())
                );
            }
            Err(error) => panic!("expected the wrong key, got {error}"),
            Ok(_) => panic!("expected the wrong key, the store opened"),
        }
        match Store::open(&path) {
            Err(StoreError::KeyRequired { key_id }) => assert_eq!(key_id, right.id()),
            Err(error) => panic!("expected a key required, got {error}"),
            Ok(_) => panic!("expected a key required, the store opened"),
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "the file was changed"
        );
        let wal = std::fs::read(beside(&path, "-wal"));
        assert!(
            wal.is_err() || wal.unwrap().is_empty(),
            "the log was written"
        );
        let store = Store::open_sealed(&path, right).unwrap();
        assert_eq!(store.get("c").unwrap().tokens, secret_tokens(ACCESS_TOKEN));
    }

    /// A store opened without a key, sealed meanwhile by another: every read of a sealed
    /// value is an error, never garbage.
    #[test]
    fn reading_a_sealed_value_without_a_key_is_an_error() {
        let path = temp_path("no-key-reads");
        let clear = Store::open(&path).unwrap();
        save_confidential(&clear, "a", ACCESS_TOKEN);
        let key = sealing_key(1);
        let sealed = Store::open_sealed(&path, key.clone()).unwrap();
        sealed.update_tokens("a", &secret_tokens("at2")).unwrap();
        let key_required = |result: Result<_, StoreError>| matches!(result, Err(StoreError::KeyRequired { key_id }) if key_id == key.id());
        assert!(key_required(clear.get("a").map(drop)));
        assert!(key_required(clear.list().map(drop)));
        assert!(matches!(clear.seal_all(), Err(StoreError::NoKey)));
        // What reads no sealed column still works.
        assert!(clear.contains("a").unwrap());
    }

    #[test]
    fn a_clear_store_given_a_key_reads_and_is_sealed_on_write() {
        let path = temp_path("clear-then-key");
        let clear = Store::open(&path).unwrap();
        for name in ["a", "b", "c"] {
            save_confidential(&clear, name, ACCESS_TOKEN);
        }
        drop(clear);
        let key = sealing_key(1);
        let store = Store::open_sealed(&path, key.clone()).unwrap();
        assert_eq!(store.get("a").unwrap().tokens, secret_tokens(ACCESS_TOKEN));
        assert_eq!(store.list().unwrap().len(), 3);
        // Written: sealed. A token write seals the tokens; the secret stays in clear until
        // the connection is saved again.
        store.update_tokens("a", &secret_tokens("at2")).unwrap();
        assert!(seal::is_sealed(&raw(&store, "a", "tokens")));
        assert!(!seal::is_sealed(&raw(&store, "a", "secret")));
        save_confidential(&store, "b", "at2");
        assert!(seal::is_sealed(&raw(&store, "b", "secret")));
        assert_eq!(store.get("a").unwrap().tokens, secret_tokens("at2"));
        // The rest, now: `a` (its secret) and `c` (both); `b` is sealed already.
        assert_eq!(store.seal_all().unwrap(), 2);
        assert_eq!(store.seal_all().unwrap(), 0);
        assert_eq!(
            store.get("c").unwrap().secret,
            SecretSource::Stored(CLIENT_SECRET.into())
        );
        // The values written in clear before are gone from the file, not left in free space.
        drop(store);
        let bytes = on_disk(&path);
        for secret in [CLIENT_SECRET, ACCESS_TOKEN, REFRESH_TOKEN] {
            assert!(!holds(&bytes, secret), "{secret} in clear");
        }
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::KeyRequired { .. })
        ));
    }

    #[test]
    fn rotating_the_key_reseals_every_row_at_once() {
        let path = temp_path("rotate");
        let old = sealing_key(1);
        let mut store = Store::open_sealed(&path, old.clone()).unwrap();
        for name in ["a", "b", "c"] {
            save_confidential(&store, name, ACCESS_TOKEN);
        }
        let old_envelope = raw(&store, "b", "tokens");
        let new = sealing_key(2);
        assert_eq!(store.rotate_key(new.clone()).unwrap(), 3);
        assert_eq!(store.sealing_key().map(SealingKey::id), Some(new.id()));
        assert_eq!(seal::key_id_of(&raw(&store, "b", "secret")), Some(new.id()));
        assert_eq!(store.get("b").unwrap().tokens, secret_tokens(ACCESS_TOKEN));
        // Written from now on under the new key.
        store.update_tokens("c", &secret_tokens("at2")).unwrap();
        assert_eq!(seal::key_id_of(&raw(&store, "c", "tokens")), Some(new.id()));
        assert_eq!(store.rotate_key(new.clone()).unwrap(), 0);
        drop(store);
        assert!(
            !holds(&on_disk(&path), &old_envelope),
            "the old envelope is left in the file"
        );
        assert!(matches!(
            Store::open_sealed(&path, old),
            Err(StoreError::Sealed {
                error: SealError::WrongKey { .. },
                ..
            })
        ));
        let store = Store::open_sealed(&path, new).unwrap();
        assert_eq!(store.list().unwrap().len(), 3);
        assert_eq!(store.get("c").unwrap().tokens, secret_tokens("at2"));

        // A clear store is sealed by a rotation.
        let path = temp_path("rotate-clear");
        let mut store = Store::open(&path).unwrap();
        save_confidential(&store, "a", ACCESS_TOKEN);
        assert_eq!(store.rotate_key(sealing_key(3)).unwrap(), 1);
        assert!(seal::is_sealed(&raw(&store, "a", "secret")));
    }

    /// A value that does not open fails the whole rotation: nothing is rewritten, and the
    /// store keeps its key.
    #[test]
    fn a_rotation_is_all_or_nothing() {
        let path = temp_path("rotate-atomic");
        let old = sealing_key(1);
        let mut store = Store::open_sealed(&path, old.clone()).unwrap();
        for name in ["a", "b", "c"] {
            save_confidential(&store, name, ACCESS_TOKEN);
        }
        store
            .sqlite_for_tests()
            .execute(
                "UPDATE connections SET tokens = (SELECT tokens FROM connections WHERE name = 'a')
                 WHERE name = 'c'",
                [],
            )
            .unwrap();
        let before = raw(&store, "a", "tokens");
        assert!(matches!(
            store.rotate_key(sealing_key(2)),
            Err(StoreError::Sealed { name, column: "token set", error: SealError::Tampered }) if name == "c"
        ));
        assert_eq!(raw(&store, "a", "tokens"), before);
        assert_eq!(store.sealing_key().map(SealingKey::id), Some(old.id()));
        drop(store);
        let store = Store::open_sealed(&path, old).unwrap();
        assert_eq!(store.get("a").unwrap().tokens, secret_tokens(ACCESS_TOKEN));
    }

    /// A sealed value copied to another connection, or to the other column, does not open
    /// there: an error naming the connection, not the other connection's secret.
    #[test]
    fn a_value_moved_to_another_row_does_not_open() {
        let path = temp_path("moved");
        let store = Store::open_sealed(&path, sealing_key(1)).unwrap();
        save_confidential(&store, "a", ACCESS_TOKEN);
        save_confidential(&store, "b", "other");
        store
            .sqlite_for_tests()
            .execute(
                "UPDATE connections SET tokens = (SELECT tokens FROM connections WHERE name = 'a')
                 WHERE name = 'b'",
                [],
            )
            .unwrap();
        let tampered = |result: Result<_, StoreError>, expected: &'static str| matches!(result, Err(StoreError::Sealed { name, column, error: SealError::Tampered }) if name == "b" && column == expected);
        assert!(tampered(store.get("b").map(drop), "token set"));
        assert!(tampered(store.list().map(drop), "token set"));
        assert_eq!(store.get("a").unwrap().tokens, secret_tokens(ACCESS_TOKEN));
        store
            .sqlite_for_tests()
            .execute(
                "UPDATE connections SET secret = tokens WHERE name = 'a'",
                [],
            )
            .unwrap();
        assert!(matches!(
            store.get("a"),
            Err(StoreError::Sealed {
                column: "secret",
                error: SealError::Tampered,
                ..
            })
        ));
    }

    #[test]
    fn unsealing_writes_every_row_back_in_clear() {
        let path = temp_path("unseal");
        let mut store = Store::open_sealed(&path, sealing_key(1)).unwrap();
        save_confidential(&store, "a", ACCESS_TOKEN);
        save_confidential(&store, "b", ACCESS_TOKEN);
        assert_eq!(store.unseal_all().unwrap(), 2);
        assert!(store.sealing_key().is_none());
        store.update_tokens("a", &secret_tokens("at2")).unwrap();
        assert!(!seal::is_sealed(&raw(&store, "a", "tokens")));
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.get("a").unwrap().tokens, secret_tokens("at2"));
        assert_eq!(
            store.get("b").unwrap().secret,
            SecretSource::Stored(CLIENT_SECRET.into())
        );
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
            Err(StoreError::Unsafe(p, UnsafeFile::Shared { mode: 0o644 })) if p == path
        ));
    }

    /// Each way a file beside the store can fail the checks, with the store new and
    /// existing: a typed error naming the file, and the file left as it was.
    #[cfg(unix)]
    #[test]
    fn files_beside_the_store_that_are_not_safely_ours_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let path = temp_path("companions");
        drop(Store::open(&path).unwrap());
        let dir = path.parent().unwrap().to_owned();
        let wal = dir.join("store.db-wal");
        let journal = dir.join("store.db-journal");
        let refused = |expected: &Path, problem: UnsafeFile| match Store::open(&path) {
            Err(StoreError::Unsafe(at, found)) => {
                assert_eq!((at, found), (expected.into(), problem))
            }
            Err(error) => panic!(
                "expected {problem:?} for {}, got {error}",
                expected.display()
            ),
            Ok(_) => panic!(
                "expected {problem:?} for {}, the store opened",
                expected.display()
            ),
        };
        // A symbolic link, even to a file of ours.
        std::os::unix::fs::symlink(dir.join("elsewhere"), &wal).unwrap();
        refused(&wal, UnsafeFile::Symlink);
        assert!(!dir.join("elsewhere").exists(), "the link was not followed");
        std::fs::remove_file(&wal).unwrap();
        // Ours, but open to others.
        std::fs::write(&journal, "").unwrap();
        std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o644)).unwrap();
        refused(&journal, UnsafeFile::Shared { mode: 0o644 });
        std::fs::remove_file(&journal).unwrap();
        // Ours, but reachable by another name.
        new_private_file(&wal).unwrap();
        std::fs::hard_link(&wal, dir.join("other-name")).unwrap();
        refused(&wal, UnsafeFile::Linked { links: 2 });
        std::fs::remove_file(&wal).unwrap();
        // Another user's (only root can give a file away; the two-user end-to-end tests
        // cover this for everyone else's runs too).
        if effective_uid() == 0 {
            new_private_file(&wal).unwrap();
            std::os::unix::fs::chown(&wal, Some(65534), Some(65534)).unwrap();
            refused(&wal, UnsafeFile::NotOwned { owner: 65534 });
            assert_eq!(
                std::fs::metadata(&wal).unwrap().len(),
                0,
                "nothing was written"
            );
            std::fs::remove_file(&wal).unwrap();
        }
        // Not a file.
        std::fs::create_dir(&wal).unwrap();
        refused(&wal, UnsafeFile::NotAFile);
        std::fs::remove_dir(&wal).unwrap();
        // The lock and rescue directories: real directories of ours, private.
        let locks = dir.join("store.db.locks");
        std::fs::create_dir(&locks).unwrap();
        std::fs::set_permissions(&locks, std::fs::Permissions::from_mode(0o755)).unwrap();
        refused(&locks, UnsafeFile::Shared { mode: 0o755 });
        std::fs::remove_dir(&locks).unwrap();
        let unsaved = dir.join("store.db.unsaved");
        std::os::unix::fs::symlink(&dir, &unsaved).unwrap();
        refused(&unsaved, UnsafeFile::Symlink);
        std::fs::remove_file(&unsaved).unwrap();
        // The store itself, hard-linked.
        std::fs::hard_link(&path, dir.join("second.db")).unwrap();
        refused(&path, UnsafeFile::Linked { links: 2 });
        std::fs::remove_file(dir.join("second.db")).unwrap();
        drop(Store::open(&path).unwrap());
    }

    /// A symbolic link to the store opens the store it leads to, with its companions beside
    /// the real file; a link to nothing is refused, not created through.
    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_to_the_store_leads_to_the_real_file() {
        let path = temp_path("linked");
        drop(Store::open(&path).unwrap());
        let dir = path.parent().unwrap().to_owned();
        let alias = dir.join("alias.db");
        std::os::unix::fs::symlink(&path, &alias).unwrap();
        let store = Store::open(&alias).unwrap();
        assert_eq!(
            store.canonical_path(),
            std::fs::canonicalize(&path).unwrap()
        );
        assert!(dir.join("store.db-wal").exists());
        assert!(!dir.join("alias.db-wal").exists());
        drop(store);
        let dangling = dir.join("dangling.db");
        std::os::unix::fs::symlink(dir.join("nothing.db"), &dangling).unwrap();
        assert!(matches!(
            Store::open(&dangling),
            Err(StoreError::Unsafe(at, UnsafeFile::Symlink)) if at == dir.canonicalize().unwrap().join("dangling.db")
        ));
        assert!(!dir.join("nothing.db").exists());
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
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99")
            .unwrap();
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::NewerSchema(99))
        ));
    }

    /// Puts connection `name`'s columns as 0.2.0 wrote them (its configuration without the
    /// 0.3.0 members, a bare secret, a token set without `dpop_key_thumbprint`), through the
    /// store's own database (SQLite or PostgreSQL), and checks that it reads with the
    /// 0.3.0 defaults.
    fn assert_0_2_0_row_reads(store: &Store, name: &str) {
        let tokens_0_2_0 = r#"{"access_token":"at-0.2","token_type":"bearer","expires_at":10,"refresh_token":"rt","id_token":null,"scopes":["openid"],"obtained_at":1,"extras":[]}"#;
        store
            .db()
            .execute(
                "UPDATE connections SET config = ?2, secret = ?3, tokens = ?4 WHERE name = ?1",
                params![
                    name,
                    upgrade::tests::CONFIG_0_2_0,
                    r#"{"Environment":"APP_SECRET"}"#,
                    tokens_0_2_0
                ],
            )
            .unwrap();
        let stored = store.get(name).unwrap();
        assert_eq!(stored.config.client.client_id, "app");
        assert!(!stored.config.dpop);
        assert_eq!(stored.config.resources, Vec::<String>::new());
        assert!(!stored.config.profile.requires_pushed_authorization_requests);
        assert_eq!(stored.config.profile.dpop_algorithms, vec![]);
        assert_eq!(
            stored.config.token_requests.token_exchange,
            crate::no_extras()
        );
        assert_eq!(
            stored.secret,
            SecretSource::Environment("APP_SECRET".into())
        );
        assert!(stored.secrets.is_empty());
        assert_eq!(stored.tokens.access_token, "at-0.2");
        assert_eq!(stored.tokens.dpop_key_thumbprint, None);
        assert_eq!(store.list().unwrap().len(), 1);
        // Saved again, it is written in the current shape.
        store
            .save(
                name,
                &stored.config,
                &stored.secret,
                stored.grant,
                &stored.tokens,
            )
            .unwrap();
        let text: String = store
            .db()
            .query_one(
                "SELECT config FROM connections WHERE name = ?1",
                params![name],
                |row| row.get(0),
            )
            .unwrap();
        assert!(serde_json::from_str::<ConnectionConfig>(&text).is_ok());
    }

    #[test]
    fn a_connection_stored_by_0_2_0_reads_in_sqlite() {
        let store = Store::open(&temp_path("v0.2.0")).unwrap();
        save_public(&store, "old", &tokens("at")).unwrap();
        assert_0_2_0_row_reads(&store, "old");
    }

    #[cfg(unix)]
    #[test]
    fn a_connection_stored_by_0_2_0_reads_in_postgres() {
        let cluster = crate::test_postgres::PgCluster::start();
        let store = Store::open(Path::new(&cluster.url())).unwrap();
        save_public(&store, "old", &tokens("at")).unwrap();
        assert_0_2_0_row_reads(&store, "old");
    }

    #[test]
    fn a_connections_own_secrets_are_sealed_with_its_credential() {
        let path = temp_path("connection-secrets");
        let store = Store::open_sealed(&path, sealing_key(7)).unwrap();
        let secrets = ConnectionSecrets {
            dpop_key: Some(crate::signer::generate_dpop_key().unwrap()),
            grant: Some(GrantSettings::TokenExchange(ExchangeSettings {
                subject: TokenSource::Connection("user".into()),
                subject_token_type: "urn:ietf:params:oauth:token-type:access_token".into(),
                actor: None,
                audiences: vec!["https://api.example.test".into()],
                requested_token_type: None,
            })),
            registration: Some(Registration {
                resource: Some("https://r.example/api".into()),
                registration_access_token: Some("rat-secret".into()),
                registration_client_uri: None,
                client_secret_expires_at: Some(0),
                metadata: "{}".into(),
            }),
        };
        let secret = SecretSource::Stored("client-secret".into());
        store
            .save_with(
                "c",
                &config(),
                &secret,
                &secrets,
                Grant::TokenExchange,
                &tokens("at"),
            )
            .unwrap();
        let stored = store.get("c").unwrap();
        assert_eq!((&stored.secret, &stored.secrets), (&secret, &secrets));
        assert_eq!(stored.grant, Grant::TokenExchange);
        let column: String = store
            .sqlite_for_tests()
            .query_row(
                "SELECT secret FROM connections WHERE name = 'c'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert!(seal::is_sealed(&column));
        for secret in ["PRIVATE KEY", "rat-secret", "client-secret"] {
            assert!(!column.contains(secret));
        }
        let debug = format!("{stored:?}");
        for secret in ["PRIVATE KEY", "rat-secret", "client-secret"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        // Without secrets of its own, a connection is written as earlier versions read it.
        let store = Store::open(&temp_path("connection-secrets-clear")).unwrap();
        store
            .save("bare", &config(), &secret, Grant::Device, &tokens("at"))
            .unwrap();
        let column: String = store
            .sqlite_for_tests()
            .query_row(
                "SELECT secret FROM connections WHERE name = 'bare'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(column, r#"{"Stored":"client-secret"}"#);
    }

    #[test]
    fn corrupt_record_names_the_connection() {
        let path = temp_path("corrupt");
        let store = Store::open(&path).unwrap();
        save_public(&store, "c", &tokens("at")).unwrap();
        store
            .sqlite_for_tests()
            .execute("UPDATE connections SET tokens = '{' WHERE name = 'c'", [])
            .unwrap();
        assert!(
            matches!(store.get("c"), Err(StoreError::Corrupt(name, "token set")) if name == "c")
        );
    }

    /// A store as version 1 of this program wrote it, with one connection.
    fn write_version_1_store(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        new_private_file(path).unwrap();
        let db = rusqlite::Connection::open(path).unwrap();
        db.execute_batch(MIGRATIONS[0].1).unwrap();
        db.execute(
            "INSERT INTO connections VALUES ('old', ?1, ?2, '\"authorization-code\"', ?3, 1, 2)",
            rusqlite::params![
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
            .sqlite_for_tests()
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
        assert_eq!(old.state, ConnectionState::Active);
        store.update_tokens("old", &tokens("at-v2")).unwrap();
        let old = Store::open(&path).unwrap().get("old").unwrap();
        assert_eq!((old.tokens, old.token_writes), (tokens("at-v2"), 1));
    }

    /// A connection stored by the 0.1.0 host (contract 0.1.0: no `assertion_audience` in
    /// the profile, no `auth_method` on the client, schema version 2) still loads, with the
    /// defaults.
    #[test]
    fn a_connection_stored_by_contract_0_1_0_still_loads() {
        let path = temp_path("contract-0.1.0");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        new_private_file(&path).unwrap();
        let mut old_config = serde_json::to_value(config()).unwrap();
        let profile = old_config["profile"].as_object_mut().unwrap();
        assert!(profile.remove("assertion_audience").is_some());
        let client = old_config["client"].as_object_mut().unwrap();
        assert!(client.remove("auth_method").is_some());
        {
            let db = rusqlite::Connection::open(&path).unwrap();
            db.execute_batch(MIGRATIONS[0].1).unwrap();
            db.execute_batch(MIGRATIONS[1].1).unwrap();
            db.execute(
                "INSERT INTO connections VALUES ('old', ?1, ?2, '\"authorization-code\"', ?3, 1, 2, 1)",
                rusqlite::params![
                    old_config.to_string(),
                    to_json(&SecretSource::Stored("s".into())),
                    to_json(&tokens("at-v1"))
                ],
            )
            .unwrap();
            db.execute_batch("PRAGMA user_version = 2").unwrap();
        }
        let old = Store::open(&path).unwrap().get("old").unwrap();
        assert_eq!(old.config, config());
        assert_eq!(
            old.config.profile.assertion_audience,
            crate::types::AssertionAudience::TokenUrl
        );
        assert_eq!(old.config.client.auth_method, None);
        assert_eq!(old.tokens, tokens("at-v1"));
        assert_eq!(old.state, ConnectionState::Active);
    }

    #[test]
    fn a_transaction_is_rolled_back_on_error_and_on_panic() {
        let store = Store::open(&temp_path("transaction")).unwrap();
        let insert = |db: &Db, name: &str| {
            db.execute(
                "INSERT INTO connections (name, config, secret, grant_type, tokens, created_at,
                     updated_at)
                 VALUES (?1, '{}', '{}', '\"device\"', '{}', 0, 0)",
                params![name],
            )
        };
        let failed = store.db().transaction(|db| {
            insert(db, "a")?;
            Err::<(), _>(StoreError::Busy)
        });
        assert!(matches!(failed, Err(StoreError::Busy)));
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.db().transaction(|db| {
                insert(db, "b")?;
                panic!("a bug inside a transaction");
                #[allow(unreachable_code)]
                Ok::<(), StoreError>(())
            })
        }));
        assert!(panicked.is_err());
        // Neither row was kept, and the connection is not left inside a transaction.
        store.db().transaction(|db| insert(db, "c")).unwrap();
        let names = store
            .db()
            .query("SELECT name FROM connections ORDER BY name", &[], |row| {
                row.get::<String>(0)
            })
            .unwrap();
        assert_eq!(names, ["c"]);
    }

    #[test]
    fn a_refresh_in_flight_is_recorded_until_its_outcome_is_known() {
        let path = temp_path("in-flight");
        let store = Store::open(&path).unwrap();
        store
            .save(
                "c",
                &config(),
                &SecretSource::None,
                Grant::AuthorizationCode,
                &tokens("at"),
            )
            .unwrap();
        assert_eq!(store.get("c").unwrap().refresh_interrupted_at, None);
        store.refresh_started("c").unwrap();
        let recorded = store.get("c").unwrap().refresh_interrupted_at;
        assert!(
            recorded.is_some_and(|at| at.abs_diff(now()) <= 5),
            "{recorded:?}"
        );
        // Seen by every other opener of the store, at once (committed).
        assert_eq!(
            Store::open(&path)
                .unwrap()
                .get("c")
                .unwrap()
                .refresh_interrupted_at,
            recorded
        );
        // Storing the refreshed tokens settles it, and so does a known outcome.
        store.update_tokens("c", &tokens("at-2")).unwrap();
        assert_eq!(store.get("c").unwrap().refresh_interrupted_at, None);
        store.refresh_started("c").unwrap();
        store.refresh_settled("c").unwrap();
        assert_eq!(store.get("c").unwrap().refresh_interrupted_at, None);
        // Connecting again, too.
        store.refresh_started("c").unwrap();
        store
            .save(
                "c",
                &config(),
                &SecretSource::None,
                Grant::AuthorizationCode,
                &tokens("at-3"),
            )
            .unwrap();
        assert_eq!(store.get("c").unwrap().refresh_interrupted_at, None);
    }

    /// A connection stored at schema version 3 (before connections had a state) loads as
    /// active, and the migrated store takes marks.
    #[test]
    fn a_connection_stored_by_schema_3_loads_as_active() {
        let path = temp_path("schema-3");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        new_private_file(&path).unwrap();
        {
            let db = rusqlite::Connection::open(&path).unwrap();
            for (_, statements) in MIGRATIONS.iter().filter(|(version, _)| *version <= 3) {
                db.execute_batch(statements).unwrap();
            }
            db.execute(
                "INSERT INTO connections VALUES ('old', ?1, ?2, '\"authorization-code\"', ?3, 1, 2, 3)",
                rusqlite::params![
                    to_json(&config()),
                    to_json(&SecretSource::Stored("s".into())),
                    to_json(&tokens("at-v3"))
                ],
            )
            .unwrap();
            db.execute_batch("PRAGMA user_version = 3").unwrap();
        }
        let store = Store::open(&path).unwrap();
        let version: i64 = store
            .sqlite_for_tests()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let old = store.get("old").unwrap();
        assert_eq!(old.state, ConnectionState::Active);
        assert_eq!(old.refresh_interrupted_at, None, "no refresh in flight");
        assert_eq!(
            (old.tokens, old.token_writes, old.created_at, old.updated_at),
            (tokens("at-v3"), 3, 1, 2)
        );
        store
            .mark_needs_reauthorization("old", &Reauthorization::Revoked)
            .unwrap();
        assert!(matches!(
            store.get("old").unwrap().state,
            ConnectionState::NeedsReauthorization {
                reason: Reauthorization::Revoked,
                ..
            }
        ));
    }

    /// A mark records why and since when, survives token writes and reopening, and only
    /// saving the connection again (connecting again) clears it.
    #[test]
    fn a_mark_stays_until_the_connection_is_saved_again() {
        let path = temp_path("mark");
        let store = Store::open(&path).unwrap();
        save_public(&store, "c", &tokens("at1")).unwrap();
        save_public(&store, "other", &tokens("at1")).unwrap();
        assert_eq!(store.get("c").unwrap().state, ConnectionState::Active);

        let before = now();
        let refused = Reauthorization::RefreshRefused("invalid_grant".into());
        store.mark_needs_reauthorization("c", &refused).unwrap();
        let ConnectionState::NeedsReauthorization { reason, since } = store.get("c").unwrap().state
        else {
            panic!("the connection was marked");
        };
        assert_eq!(reason, refused);
        assert!((before..=now()).contains(&since), "{since}");
        assert_eq!(store.get("other").unwrap().state, ConnectionState::Active);

        // Rescued tokens written meanwhile keep the mark; the tokens are kept as they were.
        store.update_tokens("c", &tokens("at2")).unwrap();
        let marked = Store::open(&path).unwrap().get("c").unwrap();
        assert_eq!(marked.tokens, tokens("at2"));
        assert_eq!(
            marked.state,
            ConnectionState::NeedsReauthorization {
                reason: refused,
                since
            }
        );
        let listed = store.list().unwrap();
        assert_eq!(listed[0].state, marked.state);

        store
            .mark_needs_reauthorization("c", &Reauthorization::Revoked)
            .unwrap();
        assert!(matches!(
            store.get("c").unwrap().state,
            ConnectionState::NeedsReauthorization {
                reason: Reauthorization::Revoked,
                ..
            }
        ));
        save_public(&store, "c", &tokens("at3")).unwrap();
        assert_eq!(store.get("c").unwrap().state, ConnectionState::Active);
        assert!(matches!(
            store.mark_needs_reauthorization("missing", &Reauthorization::Revoked),
            Err(StoreError::NotFound(name)) if name == "missing"
        ));
    }

    #[test]
    fn an_unreadable_state_names_the_connection() {
        let path = temp_path("corrupt-state");
        let store = Store::open(&path).unwrap();
        save_public(&store, "c", &tokens("at")).unwrap();
        store
            .sqlite_for_tests()
            .execute(
                "UPDATE connections SET reauthorization = 'nonsense' WHERE name = 'c'",
                [],
            )
            .unwrap();
        assert!(matches!(store.get("c"), Err(StoreError::Corrupt(name, "state")) if name == "c"));
    }

    #[test]
    fn a_failed_migration_leaves_the_store_as_it_was() {
        let path = temp_path("v1-conflict");
        write_version_1_store(&path);
        // A column the migration is about to add: the ALTER fails, the transaction rolls back.
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch("ALTER TABLE connections ADD COLUMN token_writes TEXT")
            .unwrap();
        assert!(matches!(Store::open(&path), Err(StoreError::Database(_))));
        let db = rusqlite::Connection::open(&path).unwrap();
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
            .sqlite_for_tests()
            .query_row("PRAGMA page_count", [], |row| row.get(0))
            .unwrap();
        let _: i64 = store
            .sqlite_for_tests()
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
        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("BEGIN EXCLUSIVE").unwrap();
        store
            .sqlite_for_tests()
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
