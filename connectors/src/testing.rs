//! Test support: a throwaway, real PostgreSQL server.
//!
//! Tests of the PostgreSQL connector (here and in the crates above) run
//! against the real thing rather than a mock: [`PgServer::start`] creates a
//! cluster in a temporary directory with `initdb`, starts it on a free
//! loopback port with `pg_ctl`, and stops and deletes it when dropped.

use crate::postgres::error_chain;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// How long `pg_ctl` waits for the server to accept connections.
const START_TIMEOUT_SECS: &str = "60";

const NOT_FOUND: &str =
    "PostgreSQL server binaries not found: install Debian's postgresql package (apt-get install -y postgresql)";

/// A PostgreSQL server of its own: data directory and Unix socket in a
/// temporary directory, TCP on 127.0.0.1, trust authentication for the
/// superuser `liutong`, `fsync` off. Dropping it stops the server
/// (`pg_ctl stop -m immediate`) and removes the directory.
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// initdb and postgres refuse to run as root; then they run as the
    /// `postgres` user through `runuser`.
    as_postgres: bool,
}

impl PgServer {
    /// Creates and starts a server, or says why it cannot.
    pub fn start() -> Result<PgServer, String> {
        let bin = find_binaries().ok_or_else(|| NOT_FOUND.to_string())?;
        let as_postgres = id(&["-u"])? == 0;
        let dir = tempfile::Builder::new()
            .prefix("liutong-pg-")
            .tempdir()
            .map_err(|e| format!("creating a temporary directory: {e}"))?;
        if as_postgres {
            let uid = id(&["-u", "postgres"])?;
            let gid = id(&["-g", "postgres"])?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| format!("handing {} to the postgres user: {e}", dir.path().display()))?;
        }
        // Bind port 0 to have the kernel pick a free port, then release it
        // for the server (a small race with other processes, acceptable in tests).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let server = PgServer {
            dir,
            bin,
            port,
            as_postgres,
        };
        let data = server.data_dir();
        server.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "--auth=trust".as_ref(),
                "-U".as_ref(),
                "liutong".as_ref(),
                "--no-sync".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
            ],
        )?;
        // Settings go into the configuration file rather than through
        // `pg_ctl -o`, which would need the socket path shell-quoted.
        let socket_dir = server.dir.path().display().to_string().replace('\'', "''");
        let settings = format!(
            "\n# liutong test server\nlisten_addresses = '127.0.0.1'\nport = {port}\n\
             unix_socket_directories = '{socket_dir}'\nfsync = off\nsynchronous_commit = off\n\
             full_page_writes = off\n"
        );
        append(&data.join("postgresql.conf"), &settings)?;
        let log = server.dir.path().join("server.log");
        if let Err(e) = server.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                START_TIMEOUT_SECS.as_ref(),
                "start".as_ref(),
            ],
        ) {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!("{e}\nserver log:\n{}", tail.join("\n")));
        }
        Ok(server)
    }

    /// A connection string for the superuser `liutong` and database `postgres`.
    pub fn url(&self) -> String {
        format!("postgres://liutong@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs `sql` (any number of statements) on a connection of its own.
    pub async fn execute(&self, sql: &str) -> Result<(), String> {
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("connecting to the test server: {}", error_chain(&e)))?;
        let connection = tokio::spawn(connection);
        let result = client.batch_execute(sql).await.map_err(|e| error_chain(&e));
        drop(client);
        let _ = connection.await;
        result
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one of the server's programs (as `postgres` when we are root).
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        command
            .current_dir(self.dir.path())
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        command
    }

    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
        let output = self
            .command(program)
            .args(args)
            .output()
            .map_err(|e| format!("running {program}: {e}"))?;
        check(program, &output)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data_dir();
        // Best effort: a server that never started has nothing to stop.
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn check(program: &str, output: &Output) -> Result<(), String> {
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{program} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// `id ARGS` as a number (uid or gid).
fn id(args: &[&str]) -> Result<u32, String> {
    let output = Command::new("id")
        .args(args)
        .output()
        .map_err(|e| format!("running id: {e}"))?;
    check("id", &output)?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .parse()
        .map_err(|_| format!("id {} printed {:?}", args.join(" "), text.trim()))
}

fn append(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: where `initdb`
/// on PATH really lives, else the newest `/usr/lib/postgresql/*/bin`.
fn find_binaries() -> Option<PathBuf> {
    let complete = |dir: &Path| ["initdb", "pg_ctl", "postgres"].iter().all(|p| dir.join(p).is_file());
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).find_map(|dir| {
            let real = std::fs::canonicalize(dir.join("initdb")).ok()?;
            let dir = real.parent()?.to_path_buf();
            complete(&dir).then_some(dir)
        })
    });
    if on_path.is_some() {
        return on_path;
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|n| n.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            let bin = entry.path().join("bin");
            complete(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}
