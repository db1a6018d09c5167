//! A throwaway PostgreSQL cluster for the tests of the PostgreSQL store: `initdb` into a fresh
//! directory under /tmp, the server on a free 127.0.0.1 port, stopped and removed on drop.
//! It needs the server binaries (Debian's `postgresql` package), and Unix. initdb refuses to
//! run as root, so when the tests run as root the cluster's commands run as the `postgres`
//! user (with `setpriv`, util-linux), in a directory that user owns.
#![cfg(unix)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The database, and its user (a superuser), in every cluster.
const NAME: &str = "connector";

/// How long `pg_ctl` may wait for the server to start or stop, in seconds.
const WAIT_SECONDS: &str = "30";

/// How many free ports `start` tries, should another process take one before the server binds.
const PORT_ATTEMPTS: usize = 5;

/// A PostgreSQL server of its own: its data, socket and log in a directory under /tmp. It is
/// stopped (`pg_ctl stop -m immediate`) and its directory removed on drop.
pub struct PgCluster {
    /// The cluster's directory: `data/`, `server.log`, the password file and the Unix socket.
    dir: PathBuf,
    /// The TCP port on 127.0.0.1.
    port: u16,
    /// The password of the `connector` user.
    password: String,
    /// Who runs initdb and the server: `None` for the current user, or the `postgres` user's
    /// uid and gid when the current one is root.
    user: Option<(u32, u32)>,
}

impl PgCluster {
    /// A fresh cluster, running, with the database `connector` created: `initdb`, then
    /// `pg_ctl start` on a free port; returns once the server accepts connections.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// [`PgCluster::start`], with TLS on: the server's certificate (for `127.0.0.1`) is
    /// signed by a test CA of its own, whose certificate is [`PgCluster::ca_file`].
    #[allow(
        dead_code,
        reason = "the library's TLS test uses it, the end-to-end tests do not"
    )]
    pub fn start_with_tls() -> Self {
        Self::start_with(true)
    }

    /// The test CA's certificate (PEM) of a cluster started with TLS.
    #[allow(
        dead_code,
        reason = "the library's TLS test uses it, the end-to-end tests do not"
    )]
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn start_with(tls: bool) -> Self {
        let user = server_user();
        let dir = fresh_dir();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown the cluster dir");
        }
        // From here on, a panic drops the cluster: whatever was started is stopped, and the
        // directory removed.
        let mut cluster = Self {
            dir,
            port: 0,
            password: random_hex(16),
            user,
        };
        cluster.init();
        if tls {
            cluster.certificates();
        }
        cluster.start_on_a_free_port();
        let created = cluster
            .tool("createdb")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &cluster.port.to_string(),
                "-U",
                NAME,
                NAME,
            ])
            .env("PGPASSWORD", &cluster.password)
            .output()
            .expect("run createdb");
        cluster.check(&created, "createdb");
        cluster
    }

    /// `postgres://connector:PASSWORD@127.0.0.1:PORT/connector`.
    pub fn url(&self) -> String {
        format!(
            "postgres://{NAME}:{}@127.0.0.1:{}/{NAME}",
            self.password, self.port
        )
    }

    /// The server's TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (`pg_ctl stop -m fast`: open sessions are ended); returns once it has
    /// stopped. The data stays, for `start_again`.
    pub fn stop(&self) {
        let output = self
            .pg_ctl(&["stop", "-m", "fast"])
            .output()
            .expect("run pg_ctl stop");
        self.check(&output, "pg_ctl stop -m fast");
    }

    /// Starts the stopped server again, on the same port and data; returns once it accepts
    /// connections.
    pub fn start_again(&self) {
        let output = self.pg_start().output().expect("run pg_ctl start");
        self.check(&output, "pg_ctl start (again)");
    }

    /// The answer of `sql` (one statement) in the `connector` database, as `psql -XAt`
    /// prints it: rows on lines, columns separated by `|`.
    pub fn psql(&self, sql: &str) -> String {
        let output = self
            .tool("psql")
            .args([self.url().as_str(), "-XAtc", sql])
            .output()
            .expect("run psql");
        self.check(&output, "psql");
        String::from_utf8(output.stdout).expect("psql prints UTF-8")
    }

    /// `initdb`: the `connector` superuser with its password (SCRAM), UTF-8, and the settings
    /// of a test server appended to `postgresql.conf` (all but the port).
    fn init(&self) {
        let pwfile = self.dir.join("pwfile");
        std::fs::write(&pwfile, format!("{}\n", self.password)).unwrap();
        if let Some((uid, gid)) = self.user {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).unwrap();
        }
        let output = self
            .as_server_user("initdb")
            .args([
                "-D",
                "data",
                "-U",
                NAME,
                "--auth=scram-sha-256",
                "--pwfile=pwfile",
            ])
            .args(["-E", "UTF8", "--locale=C", "--no-sync"])
            .output()
            .expect("run initdb");
        self.check(&output, "initdb");
        let _ = std::fs::remove_file(&pwfile);
        // The socket directory is the cluster's own (Unix socket paths are limited to about
        // 107 bytes, hence the short directory name under /tmp). No fsync: nothing here has
        // to survive a crash of the machine.
        self.append_conf(&format!(
            "listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\n\
             max_connections = 200\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n",
            self.dir.display()
        ));
    }

    /// A test CA and a server certificate for `127.0.0.1` it signs (P-256, two days), made
    /// with `openssl`; TLS turned on with them.
    fn certificates(&self) {
        let ext = self.dir.join("server.ext");
        std::fs::write(&ext, "subjectAltName = IP:127.0.0.1\n").unwrap();
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let steps: [(&str, Vec<&str>); 3] = [
            (
                "make the test CA",
                [
                    &["req", "-x509", "-subj", "/CN=oauth-connector test CA"][..],
                    &key,
                    &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
                ]
                .concat(),
            ),
            (
                "make the server's key",
                [
                    &["req", "-subj", "/CN=127.0.0.1"][..],
                    &key,
                    &["-keyout", "data/server.key", "-out", "server.csr"],
                ]
                .concat(),
            ),
            (
                "sign the server's certificate",
                vec![
                    "x509",
                    "-req",
                    "-in",
                    "server.csr",
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    "data/server.crt",
                    "-days",
                    "2",
                    "-extfile",
                    "server.ext",
                ],
            ),
        ];
        for (what, args) in steps {
            let output = Command::new("openssl")
                .args(&args)
                .current_dir(&self.dir)
                .output()
                .unwrap_or_else(|error| panic!("run openssl ({what}): {error}"));
            self.check(&output, what);
        }
        // The server refuses a key file others can read, or that is not its own.
        let key = self.dir.join("data/server.key");
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        if let Some((uid, gid)) = self.user {
            for file in ["data/server.key", "data/server.crt"] {
                std::os::unix::fs::chown(self.dir.join(file), Some(uid), Some(gid)).unwrap();
            }
        }
        self.append_conf("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
    }

    /// Picks a free port and starts the server on it; another port if the server could not
    /// bind this one (another process took it meanwhile).
    fn start_on_a_free_port(&mut self) {
        for attempt in 1..=PORT_ATTEMPTS {
            self.port = free_port();
            self.append_conf(&format!("port = {}\n", self.port));
            let log_before = self.log().len();
            let output = self.pg_start().output().expect("run pg_ctl start");
            let port_taken = self.log()[log_before..].contains("Address already in use");
            if output.status.success() || !port_taken || attempt == PORT_ATTEMPTS {
                self.check(&output, "pg_ctl start");
                return;
            }
        }
    }

    /// `pg_ctl start`, waiting until the server accepts connections; its output goes to
    /// `server.log`.
    fn pg_start(&self) -> Command {
        self.pg_ctl(&["start", "-l", "server.log"])
    }

    /// `pg_ctl -D data -w -t 30 ARGS`, as the server's user.
    fn pg_ctl(&self, args: &[&str]) -> Command {
        let mut command = self.as_server_user("pg_ctl");
        command
            .args(["-D", "data", "-w", "-t", WAIT_SECONDS])
            .args(args);
        command
    }

    /// Appends `settings` to `data/postgresql.conf` (for a setting given twice, the last wins).
    fn append_conf(&self, settings: &str) {
        std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("data/postgresql.conf"))
            .and_then(|mut conf| conf.write_all(settings.as_bytes()))
            .expect("append to postgresql.conf");
    }

    /// The server's tool `name`, run as the server's user, in the cluster's directory.
    fn as_server_user(&self, name: &str) -> Command {
        let mut command = match self.user {
            Some((uid, gid)) => {
                let mut command = Command::new("setpriv");
                command
                    .args([
                        &format!("--reuid={uid}"),
                        &format!("--regid={gid}"),
                        "--init-groups",
                    ])
                    .arg(bin_dir().join(name));
                command
            }
            None => Command::new(bin_dir().join(name)),
        };
        command.current_dir(&self.dir).env_remove("PGDATA");
        command
    }

    /// The server's client tool `name` (for example `createdb`), run as the current user.
    fn tool(&self, name: &str) -> Command {
        let mut command = Command::new(bin_dir().join(name));
        command.current_dir(&self.dir);
        command
    }

    /// Panics, with the command's output and the end of the server's log, unless `output`
    /// says that `what` succeeded.
    fn check(&self, output: &Output, what: &str) {
        if output.status.success() {
            return;
        }
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        panic!(
            "{what} failed ({}) for the PostgreSQL cluster in {}:\n{}{}\n--- end of server.log:\n{tail}",
            output.status,
            self.dir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }

    /// The server's log so far (empty if there is none yet).
    fn log(&self) -> String {
        std::fs::read(self.dir.join("server.log"))
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.dir.join("data/postmaster.pid").exists() {
            let _ = self.pg_ctl(&["stop", "-m", "immediate"]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory of the PostgreSQL server binaries: the newest `/usr/lib/postgresql/*/bin`
/// (Debian's layout), else `pg_config --bindir`, else the one on `PATH` that has `initdb`.
fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let has_initdb = |dir: &Path| dir.join("initdb").is_file();
        let newest_debian = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version: u32 = entry.file_name().to_str()?.parse().ok()?;
                Some((version, entry.path().join("bin")))
            })
            .filter(|(_, dir)| has_initdb(dir))
            .max()
            .map(|(_, dir)| dir);
        let pg_config = || {
            let output = Command::new("pg_config").arg("--bindir").output().ok()?;
            let dir = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
            (output.status.success() && has_initdb(&dir)).then_some(dir)
        };
        let on_path =
            || std::env::split_paths(&std::env::var_os("PATH")?).find(|dir| has_initdb(dir));
        newest_debian.or_else(pg_config).or_else(on_path).expect(
            "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin, \
             `pg_config --bindir` or PATH: install Debian's `postgresql` package \
             (apt-get install postgresql)",
        )
    })
}

/// `None` when the current user may run the server; the `postgres` user's uid and gid when
/// the current user is root (initdb and the server refuse to run as root).
fn server_user() -> Option<(u32, u32)> {
    let id = |args: &[&str]| -> Option<u32> {
        let output = Command::new("id").args(args).output().ok()?;
        if !output.status.success() {
            return None;
        }
        String::from_utf8(output.stdout).ok()?.trim().parse().ok()
    };
    if id(&["-u"]).expect("run `id -u`") != 0 {
        return None;
    }
    let uid = id(&["-u", "postgres"]);
    let gid = id(&["-g", "postgres"]);
    Some(uid.zip(gid).expect(
        "running as root, and initdb refuses to: the cluster runs as the `postgres` user, \
         which does not exist (Debian's `postgresql` package creates it)",
    ))
}

/// A new, empty directory `/tmp/oc-pg-PID-N` (short: the Unix socket is made in it).
fn fresh_dir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = PathBuf::from(format!(
        "/tmp/oc-pg-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&path); // left over by an earlier process with this pid
    std::fs::create_dir(&path).expect("create the cluster dir");
    path
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// `bytes` random bytes from /dev/urandom, in hex.
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Whether a PostgreSQL server answers on 127.0.0.1:`port`: it answers an SSLRequest with one
/// byte, `N` (no TLS here) or `S`.
fn answers_as_postgres(port: u16) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    // Length 8, then the SSLRequest code 80877103 (PostgreSQL protocol, "SSLRequest").
    stream.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])?;
    let mut answer = [0];
    stream.read_exact(&mut answer)?;
    Ok(matches!(&answer, b"N" | b"S"))
}

#[test]
fn a_throwaway_cluster_starts_stops_and_starts_again() {
    let started = Instant::now();
    let cluster = PgCluster::start();
    eprintln!("cluster started in {:?}", started.elapsed());
    let port = cluster.port();
    assert!(answers_as_postgres(port).unwrap());
    // The URL is right: its user, password and database.
    let url = cluster.url();
    assert!(
        url.ends_with(&format!("@127.0.0.1:{port}/connector")),
        "{url}"
    );
    let psql = |url: &str| {
        cluster
            .tool("psql")
            .args([
                url,
                "-XAtc",
                "select current_user || ' ' || current_database()",
            ])
            .output()
            .unwrap()
    };
    let output = psql(&url);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "connector connector\n"
    );
    // SCRAM is enforced: a wrong password is refused.
    let wrong = url.replace(&cluster.password, "not-the-password");
    assert!(!psql(&wrong).status.success());

    cluster.stop();
    let refused = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

    cluster.start_again();
    assert!(answers_as_postgres(port).unwrap());
    assert!(psql(&url).status.success());

    let dir = cluster.dir.clone();
    drop(cluster);
    assert!(!dir.exists());
}
