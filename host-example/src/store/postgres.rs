//! The fleet store: the same tables as the SQLite file, in a PostgreSQL database that every
//! replica of the service (and the CLI) shares.
//!
//! Each open store is one session (a store thread's, as with SQLite, so a replica holds at
//! most one session per store thread plus a few for its background work). A session sets
//! bounds on everything it waits for: connecting ([`CONNECT_TIMEOUT`]), any one statement
//! (`statement_timeout`, [`STATEMENT_TIMEOUT`]) and any lock (`lock_timeout`, the same), so a
//! stuck database turns into an error, never a hung request.
//!
//! A lost session (the server restarted, the network dropped it) is replaced at the next
//! statement, with a short backoff. A query that failed because the session was lost is sent
//! again on the new session, a few times; a write is not (it may have been applied): it
//! fails with [`StoreError::Unavailable`], which says to retry. Nor is anything replaced
//! inside a transaction, or while the session holds a connection's refresh lock
//! ([`Pg::pin`]): the lock went with the session, and whoever holds it must find out.
//!
//! The password is taken from the URL or from `PGPASSWORD`; the URL shown in messages and
//! logs ([`redacted`]) never carries it.
//!
//! **TLS** follows the URL's `sslmode`: `disable` (plain), `prefer` (the default: TLS when
//! the server offers it, plain when it does not) or `require` (TLS or no connection). A TLS
//! session always verifies the server: its certificate must chain to the Mozilla roots or to
//! a certificate in the PEM file `$PGSSLROOTCERT` (as libpq names it), and name the URL's
//! host. A certificate that does not verify fails the connection, also with `prefer`
//! (libpq's `prefer` would accept any certificate; an unverified TLS session is a
//! man-in-the-middle's). Client certificates are not supported.

use std::collections::HashMap;
use std::time::Duration;

use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::StoreError;
use super::db::{Param, ToParam};

/// How long connecting to the server may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long any one statement, or a wait for a row lock, may take.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(15);

/// How many times a query is sent again after the session was lost.
const QUERY_RETRIES: u32 = 3;

/// Whether `location` names a PostgreSQL database rather than a file.
pub fn is_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// `url` without its password (`postgres://user@host:port/db`), for messages and logs.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        // Never shown as given: it may hold a password the parser could not find.
        Err(_) => "postgres://(an unparsable URL)".to_owned(),
    }
}

/// A session with the server, replaced when it is lost.
pub struct Pg {
    config: postgres::Config,
    /// The URL without its password.
    shown: String,
    client: Option<Client>,
    /// How sessions are encrypted (when the URL's `sslmode` asks for it).
    tls: MakeRustlsConnect,
    /// Statements prepared on the current session, by their PostgreSQL text.
    statements: HashMap<String, Statement>,
    /// Statements' PostgreSQL text, by their SQLite text.
    rewritten: HashMap<String, String>,
    /// Inside a transaction: a lost session is not replaced.
    pub(super) in_transaction: bool,
    /// Refresh locks this session holds: a lost session is not replaced while any is held.
    pins: u32,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

impl Pg {
    /// A session with the database at `url` (its password, when the URL has none, from
    /// `password`; TLS sessions verified against the Mozilla roots and the PEM
    /// certificates in `roots`), connected now: a wrong URL, password, database or
    /// certificate fails here.
    pub fn connect(
        url: &str,
        password: Option<String>,
        roots: Option<&std::path::Path>,
    ) -> Result<Self, StoreError> {
        let shown = redacted(url);
        let mut config: postgres::Config = url.parse().map_err(|error| {
            StoreError::Database(format!("{shown} is not a PostgreSQL URL: {error}"))
        })?;
        if config.get_password().is_none()
            && let Some(password) = password
        {
            config.password(password);
        }
        let timeout = STATEMENT_TIMEOUT.as_millis();
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("oauth-connector")
            .options(&format!(
                "-c statement_timeout={timeout} -c lock_timeout={timeout} \
                 -c idle_in_transaction_session_timeout={timeout}"
            ));
        let tls = tls(roots)
            .map_err(|why| StoreError::Database(format!("cannot set up TLS for {shown}: {why}")))?;
        let mut pg = Self {
            config,
            shown,
            client: None,
            tls,
            statements: HashMap::new(),
            rewritten: HashMap::new(),
            in_transaction: false,
            pins: 0,
        };
        pg.client()?;
        Ok(pg)
    }

    /// The database's URL, without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The session, connected again if it was lost (unless that is not allowed now).
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            if self.in_transaction || self.pins > 0 {
                return Err(StoreError::Unavailable(format!(
                    "the session with {} was lost {}",
                    self.shown,
                    if self.in_transaction {
                        "inside a transaction, which was not committed"
                    } else {
                        "while it held a connection's refresh lock"
                    }
                )));
            }
            self.statements.clear();
            let client = self
                .config
                .connect(self.tls.clone())
                .map_err(|error| unavailable(&self.shown, &error))?;
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// `sql` (SQLite's `?N` parameters) prepared on the current session.
    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if !self.rewritten.contains_key(sql) {
            self.rewritten.insert(sql.to_owned(), rewrite(sql));
        }
        let text = &self.rewritten[sql];
        if let Some(statement) = self.statements.get(text) {
            return Ok(statement.clone());
        }
        let text = text.clone();
        let statement = self
            .client()?
            .prepare(&text)
            .map_err(|error| self.failed(error))?;
        self.statements.insert(text, statement.clone());
        Ok(statement)
    }

    /// Runs one statement; how many rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<usize, StoreError> {
        let statement = self.statement(sql)?;
        let values = values(params);
        let changed = self
            .client()?
            .execute(&statement, &refs(&values))
            .map_err(|error| self.failed(error))?;
        Ok(usize::try_from(changed).unwrap_or(usize::MAX))
    }

    /// Runs a query; a session lost before it answered is replaced and the query sent again
    /// (outside transactions and locks), a few times with a short backoff.
    pub fn query(
        &mut self,
        sql: &str,
        params: &[&dyn ToParam],
    ) -> Result<Vec<postgres::Row>, StoreError> {
        let values = values(params);
        let mut attempt = 0;
        loop {
            let answer = self.statement(sql).and_then(|statement| {
                self.client()?
                    .query(&statement, &refs(&values))
                    .map_err(|error| self.failed(error))
            });
            match answer {
                Err(StoreError::Unavailable(_))
                    if attempt < QUERY_RETRIES && !self.in_transaction && self.pins == 0 =>
                {
                    attempt += 1;
                    backoff(attempt);
                }
                answer => return answer,
            }
        }
    }

    /// Runs statements without parameters.
    pub fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.client()?
            .batch_execute(sql)
            .map_err(|error| self.failed(error))
    }

    /// Holds the session: while pinned, a lost session is an error rather than replaced
    /// (see the module's documentation). Paired with [`Pg::unpin`].
    pub fn pin(&mut self) {
        self.pins += 1;
    }

    /// Ends a [`Pg::pin`].
    pub fn unpin(&mut self) {
        self.pins = self.pins.saturating_sub(1);
    }

    /// `error` as the store reports it; a session that is gone is dropped, to be replaced
    /// at the next statement.
    fn failed(&mut self, error: postgres::Error) -> StoreError {
        let lost = error.is_closed()
            || self.client.as_ref().is_some_and(Client::is_closed)
            || error.code().is_some_and(|code| {
                [
                    postgres::error::SqlState::ADMIN_SHUTDOWN,
                    postgres::error::SqlState::CRASH_SHUTDOWN,
                    postgres::error::SqlState::CANNOT_CONNECT_NOW,
                ]
                .contains(code)
            });
        if lost {
            self.client = None;
            return unavailable(&self.shown, &error);
        }
        from_error(&self.shown, &error)
    }
}

/// The TLS settings of every session: rustls (ring), verifying servers against the Mozilla
/// roots and the certificates of the PEM file `roots`.
fn tls(roots: Option<&std::path::Path>) -> Result<MakeRustlsConnect, String> {
    use rustls_pki_types::pem::PemObject as _;
    let mut store = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = roots {
        let shown = path.display();
        let pem = std::fs::read(path).map_err(|error| format!("reading {shown}: {error}"))?;
        let mut added = 0;
        for certificate in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            let certificate =
                certificate.map_err(|error| format!("{shown} is not PEM certificates: {error}"))?;
            store
                .add(certificate)
                .map_err(|error| format!("a certificate in {shown}: {error}"))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("{shown} holds no PEM certificate"));
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| error.to_string())?
    .with_root_certificates(store)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// `error`, which left the session unusable, as [`StoreError::Unavailable`].
fn unavailable(shown: &str, error: &postgres::Error) -> StoreError {
    StoreError::Unavailable(format!(
        "cannot reach the database {shown}: {}",
        describe(error)
    ))
}

/// `error` as the store reports it: a lock or statement that timed out, or a conflict with
/// another transaction, is [`StoreError::Busy`] (retry); anything else is
/// [`StoreError::Database`].
fn from_error(shown: &str, error: &postgres::Error) -> StoreError {
    use postgres::error::SqlState;
    match error.code() {
        Some(code)
            if [
                SqlState::LOCK_NOT_AVAILABLE,
                SqlState::QUERY_CANCELED,
                SqlState::T_R_SERIALIZATION_FAILURE,
                SqlState::T_R_DEADLOCK_DETECTED,
            ]
            .contains(code) =>
        {
            StoreError::Busy
        }
        Some(code) if *code == SqlState::DISK_FULL => StoreError::Full,
        _ if error.as_db_error().is_none() => unavailable(shown, error),
        _ => StoreError::Database(format!("{shown}: {}", describe(error))),
    }
}

/// What went wrong, in one line: the server's message (never its `DETAIL`, which may quote
/// a row's values), or the client's.
fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            use std::error::Error as _;
            match error.source() {
                Some(source) => format!("{error}: {source}"),
                None => error.to_string(),
            }
        }
    }
}

/// Waits before attempt `attempt` (from 1): 50 ms, 200 ms, 800 ms...
pub fn backoff(attempt: u32) {
    std::thread::sleep(Duration::from_millis(
        50 << (2 * attempt.saturating_sub(1).min(4)),
    ));
}

/// `sql` with SQLite's numbered parameters (`?1`) as PostgreSQL's (`$1`); text in quotes is
/// left as it is.
fn rewrite(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c == '?' && !quoted && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// The parameters' values, owned for the call.
fn values<'a>(params: &'a [&'a dyn ToParam]) -> Vec<Param<'a>> {
    params.iter().map(|param| param.param()).collect()
}

/// The values as the client takes them.
fn refs<'a>(values: &'a [Param<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    values
        .iter()
        .map(|value| value as &(dyn ToSql + Sync))
        .collect()
}

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            Self::Null => Ok(IsNull::Yes),
            Self::Int(value) => match *ty {
                Type::INT8 => value.to_sql(ty, out),
                Type::INT4 => i32::try_from(value)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(value)?.to_sql(ty, out),
                Type::BOOL => (value != 0).to_sql(ty, out),
                _ => Err(format!("an integer given for a parameter of type {ty}").into()),
            },
            Self::Text(text) => text.to_sql(ty, out),
            Self::Bytes(bytes) => bytes.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Column `index` of `row` as an integer (of any integer type, or a boolean).
pub fn int(row: &postgres::Row, index: usize) -> Result<Option<i64>, StoreError> {
    let ty = row
        .columns()
        .get(index)
        .map(|column| column.type_().clone())
        .ok_or_else(|| StoreError::Database(format!("no column {index}")))?;
    let wrong = |_| StoreError::Database(format!("column {index} ({ty}) is not an integer"));
    Ok(match ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(index).map_err(wrong)?,
        Type::INT4 => row
            .try_get::<_, Option<i32>>(index)
            .map_err(wrong)?
            .map(i64::from),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(index)
            .map_err(wrong)?
            .map(i64::from),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(index)
            .map_err(wrong)?
            .map(i64::from),
        _ => {
            return Err(StoreError::Database(format!(
                "column {index} ({ty}) is not an integer"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_renumbered_outside_quotes() {
        assert_eq!(
            rewrite("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND d = ?12 OR e = ?"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND d = $12 OR e = ?"
        );
    }

    /// Whether the session's connection is encrypted (`pg_stat_ssl`).
    #[cfg(unix)]
    fn encrypted(pg: &mut Pg) -> bool {
        let rows = pg
            .query(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .unwrap();
        rows[0].get::<_, bool>(0)
    }

    #[cfg(unix)]
    #[test]
    fn tls_is_used_as_sslmode_says_and_the_server_is_always_verified() {
        let cluster = crate::test_postgres::PgCluster::start_with_tls();
        let ca = cluster.ca_file();
        let url = cluster.url();
        for (mode, tls) in [
            ("", true),
            ("?sslmode=prefer", true),
            ("?sslmode=require", true),
            ("?sslmode=disable", false),
        ] {
            let mut pg = Pg::connect(&format!("{url}{mode}"), None, Some(&ca)).unwrap();
            assert_eq!(encrypted(&mut pg), tls, "{mode}");
        }
        // A certificate that does not chain to a trusted root: no connection, even when TLS
        // was only preferred.
        for mode in ["", "?sslmode=require"] {
            let error = Pg::connect(&format!("{url}{mode}"), None, None).unwrap_err();
            let message = error.to_string();
            assert!(matches!(error, StoreError::Unavailable(_)), "{message}");
            assert!(message.contains("certificate"), "{message}");
            assert!(
                message.contains("postgres://connector:***@127.0.0.1:"),
                "{message}"
            );
        }
        // Not a certificate file: a clear error naming it.
        let not_pem = cluster.ca_file().with_file_name("not.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let error = Pg::connect(&url, None, Some(&not_pem))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("holds no PEM certificate") && error.contains("not.pem"),
            "{error}"
        );

        // A server without TLS: `prefer` goes plain, `require` refuses.
        let plain = crate::test_postgres::PgCluster::start();
        let mut pg = Pg::connect(&plain.url(), None, Some(&ca)).unwrap();
        assert!(!encrypted(&mut pg));
        let error = Pg::connect(&format!("{}?sslmode=require", plain.url()), None, Some(&ca))
            .unwrap_err()
            .to_string();
        assert!(error.contains("TLS") || error.contains("SSL"), "{error}");
    }

    #[test]
    fn the_password_never_shows() {
        assert_eq!(
            redacted("postgres://app:s3cret@db.internal:5432/connector"),
            "postgres://app:***@db.internal:5432/connector"
        );
        assert_eq!(
            redacted("postgresql://app@127.0.0.1/connector"),
            "postgresql://app@127.0.0.1/connector"
        );
        assert!(!redacted("postgres://app:s3cret@[bad").contains("s3cret"));
    }
}
