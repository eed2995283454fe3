//! A real pgbouncer in `pool_mode = transaction` in front of the test PostgreSQL server, one
//! per test on a random port: what the pgbouncer tests of the platform and of the whole
//! stack run behind.
//!
//! Needs the `pgbouncer` binary (Debian: `apt-get install -y pgbouncer`, which `.ci/run`
//! does); without it a test fails rather than skips. pgbouncer refuses to run as root, so as
//! root it is started as `postgres` (`-u postgres`), which must be able to read its files.
//! It serves every database of the server (`* = host=… port=…`) and logs in to the server
//! with the password its user list gives each user (none for trust auth).

use std::fmt;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;

use crate::db::{url_credentials, with_login};

/// Why one start of pgbouncer failed ([`PgBouncer::start`] tries again on another port).
#[derive(Debug)]
enum StartFailed {
    /// The process ended before it listened.
    Exited { status: ExitStatus, log: String },
    /// It did not say it listens on its port in time.
    NotListening { port: u16, log: String },
}

impl fmt::Display for StartFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exited { status, log } => {
                write!(f, "pgbouncer exited at startup ({status}); its log:\n{log}")
            }
            Self::NotListening { port, log } => write!(
                f,
                "pgbouncer did not listen on port {port} within 15 s; its log:\n{log}"
            ),
        }
    }
}

/// pgbouncer settings a test chooses.
#[derive(Debug, Clone, Copy)]
pub struct BouncerSettings {
    /// Server connections per user and database: fewer than the clients', so clients share
    /// them.
    pub default_pool_size: u32,
    /// `ignore_startup_parameters`, empty for none.
    pub ignore_startup_parameters: &'static str,
}

impl Default for BouncerSettings {
    fn default() -> Self {
        Self {
            default_pool_size: 2,
            ignore_startup_parameters: "",
        }
    }
}

/// A pgbouncer child process, killed (and its directory removed) on drop.
#[derive(Debug)]
pub struct PgBouncer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

/// Where the `pgbouncer` binary is: on `PATH`, or in `/usr/sbin` (Debian) or
/// `/usr/local/sbin`. Panics, saying how to install it, when it is nowhere.
pub fn pgbouncer_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("pgbouncer"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the pgbouncer binary is missing (not on PATH nor in /usr/sbin): \
                 install it with `apt-get install -y pgbouncer` — these tests need a real \
                 pgbouncer and do not skip"
            )
        })
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_world_readable(path: &Path, contents: &str) {
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// `text` as a double-quoted pgbouncer user-list field.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

impl PgBouncer {
    /// Starts pgbouncer in front of the server of `server_url` for `users` (name, password:
    /// empty for none), and waits until it accepts connections. Tries a few ports: another
    /// process may take the free port before pgbouncer binds it.
    pub async fn start(
        server_url: &str,
        users: &[(&str, &str)],
        settings: &BouncerSettings,
    ) -> Self {
        pgbouncer_binary();
        let mut failures = Vec::new();
        for _ in 0..5 {
            match Self::try_start(server_url, users, settings).await {
                Ok(bouncer) => return bouncer,
                Err(failure) => failures.push(failure),
            }
        }
        let failures: Vec<String> = failures.iter().map(StartFailed::to_string).collect();
        panic!("pgbouncer did not start:\n{}", failures.join("\n"))
    }

    async fn try_start(
        server_url: &str,
        users: &[(&str, &str)],
        settings: &BouncerSettings,
    ) -> Result<Self, StartFailed> {
        let binary = pgbouncer_binary();
        let server = PgConnectOptions::from_str(server_url).unwrap();
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "director-pgbouncer-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir(&dir).unwrap();
        // As root, pgbouncer runs as `postgres` (`-u`), which must read the files and write
        // the log and pid files.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();

        let auth_file = dir.join("userlist.txt");
        let user_list: String = users
            .iter()
            .map(|(user, password)| format!("{} {}\n", quoted(user), quoted(password)))
            .collect();
        write_world_readable(&auth_file, &user_list);
        let config = dir.join("pgbouncer.ini");
        let ignore = match settings.ignore_startup_parameters {
            "" => String::new(),
            list => format!("ignore_startup_parameters = {list}\n"),
        };
        write_world_readable(
            &config,
            &format!(
                "[databases]\n\
                 * = host={host} port={server_port}\n\
                 \n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = trust\n\
                 auth_file = {auth_file}\n\
                 pool_mode = transaction\n\
                 default_pool_size = {pool_size}\n\
                 min_pool_size = 0\n\
                 reserve_pool_size = 0\n\
                 max_client_conn = 200\n\
                 {ignore}\
                 logfile = {log}\n\
                 pidfile = {pid}\n",
                host = server.get_host(),
                server_port = server.get_port(),
                auth_file = auth_file.display(),
                pool_size = settings.default_pool_size,
                log = dir.join("pgbouncer.log").display(),
                pid = dir.join("pgbouncer.pid").display(),
            ),
        );

        let mut command = Command::new(&binary);
        if running_as_root() {
            command.args(["-u", "postgres"]);
        }
        let child = command
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", binary.display()));
        // From here on, dropping `bouncer` kills the child and removes the directory.
        let mut bouncer = Self { child, port, dir };
        bouncer.wait_until_listening().await?;
        Ok(bouncer)
    }

    async fn wait_until_listening(&mut self) -> Result<(), StartFailed> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(StartFailed::Exited {
                    status,
                    log: self.log(),
                });
            }
            // Its log, not a successful connect, says the port is pgbouncer's: a connect
            // could reach another process that took the port.
            let listening = format!("listening on 127.0.0.1:{}", self.port);
            if self.log().contains(&listening)
                && tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                    .await
                    .is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StartFailed::NotListening {
                    port: self.port,
                    log: self.log(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }

    /// `direct_url` (a database on the server behind it) reached through this pgbouncer:
    /// the same user, password and database.
    pub fn url_for(&self, direct_url: &str) -> String {
        let options = PgConnectOptions::from_str(direct_url).unwrap();
        let database = options.get_database().unwrap_or_default();
        let here = format!(
            "postgres://{}@127.0.0.1:{}/{database}?sslmode=disable",
            options.get_username(),
            self.port
        );
        match url_credentials(direct_url) {
            Some((user, Some(password))) => with_login(&here, &user, &password).unwrap(),
            _ => here,
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
