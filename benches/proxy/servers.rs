//! The proxies under test, each a separate process: airlock from its
//! release binary (twice: classifying, and with classification off) and
//! PgBouncer from Debian's package, with a scratch directory for their logs
//! and configuration.
//!
//! Both run under `setpriv --pdeathsig=SIGTERM`, so they go away with the
//! benchmark even if it is killed before its guards run; the signal fires
//! when the *thread* that spawned them exits, so start them from the main
//! thread. PgBouncer refuses to run as root, so as root it runs as the
//! `postgres` OS user, like the cluster.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::client;
use crate::pgbench::DATABASE;

/// A scratch directory, removed with everything in it when dropped.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// Creates a fresh directory under the system temp dir, owned by the
    /// `postgres` user when we are root so PgBouncer can write there.
    pub fn new() -> Result<ScratchDir> {
        remove_stale_scratch_dirs();
        let path = std::env::temp_dir().join(format!("airlock-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        if running_as_root() {
            let (uid, gid) = postgres_ids()?;
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                .with_context(|| format!("giving {} to the postgres user", path.display()))?;
        }
        Ok(ScratchDir(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// Removes the scratch directories of benchmark runs that were killed.
fn remove_stale_scratch_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("airlock-bench-") else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A proxy process listening on a loopback port; dropping it stops it
/// (SIGTERM, then SIGKILL after five seconds).
pub struct Server {
    pub name: &'static str,
    pub port: u16,
    child: Child,
    log: PathBuf,
}

impl Server {
    /// The process id, for `/proc`. `setpriv` execs its command, so this is
    /// the proxy's own pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails, with the end of its log, if the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited with {status}; log:\n{}",
                self.name,
                self.log_tail()
            );
        }
        Ok(())
    }

    /// Whether the process's log so far contains `text`.
    pub fn log_contains(&self, text: &str) -> bool {
        std::fs::read_to_string(&self.log).is_ok_and(|log| log.contains(text))
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Waits until a session through the server reaches ReadyForQuery.
    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.check_alive()?;
            match client::connect(self.port, DATABASE, Duration::from_secs(2)) {
                Ok(socket) => {
                    client::terminate(socket);
                    return Ok(());
                }
                Err(e) if Instant::now() > deadline => {
                    bail!("{} not ready after 30 s: {e:#}", self.name)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `airlock serve` from `binary` in front of `upstream`, with its
/// default settings apart from `--classification`, given explicitly so an
/// `AIRLOCK_CLASSIFICATION` in the environment cannot change it. Logs to
/// `scratch/airlock.log`, or `scratch/airlock-off.log` without
/// classification.
pub fn start_airlock(
    binary: &Path,
    upstream: &str,
    classification: bool,
    scratch: &ScratchDir,
) -> Result<Server> {
    let port = airlock::cluster::free_port()?;
    let name = if classification {
        "airlock"
    } else {
        "airlock-off"
    };
    let log = scratch.path().join(format!("{name}.log"));
    let mut command = guarded(None);
    command
        .arg(binary)
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--upstream")
        .arg(upstream)
        .arg("--classification")
        .arg(classification.to_string());
    spawn(name, command, port, log)
}

/// Starts PgBouncer in session mode in front of the server on
/// `upstream_port`, with room for `max_clients` clients, each with its own
/// server connection.
pub fn start_pgbouncer(
    upstream_port: u16,
    max_clients: u32,
    scratch: &ScratchDir,
) -> Result<Server> {
    let port = airlock::cluster::free_port()?;
    let dir = scratch.path();
    let userlist = dir.join("userlist.txt");
    std::fs::write(&userlist, "\"postgres\" \"\"\n").context("writing userlist.txt")?;
    let ini = dir.join("pgbouncer.ini");
    let pool = max_clients + 16;
    std::fs::write(
        &ini,
        format!(
            "[databases]\n\
             * = host=127.0.0.1 port={upstream_port}\n\
             \n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {userlist}\n\
             pool_mode = session\n\
             max_client_conn = {pool}\n\
             default_pool_size = {pool}\n\
             ignore_startup_parameters = extra_float_digits\n\
             logfile =\n\
             pidfile =\n",
            userlist = userlist.display(),
        ),
    )
    .context("writing pgbouncer.ini")?;
    let run_as = running_as_root().then_some("postgres");
    let mut command = guarded(run_as);
    command.arg("pgbouncer").arg(&ini);
    spawn("pgbouncer", command, port, dir.join("pgbouncer.log"))
}

/// `setpriv` with a parent-death signal, and a user switch if `user` is set.
fn guarded(user: Option<&str>) -> Command {
    let mut command = Command::new("setpriv");
    command.arg("--pdeathsig=SIGTERM");
    if let Some(user) = user {
        command
            .arg(format!("--reuid={user}"))
            .arg(format!("--regid={user}"))
            .arg("--clear-groups");
    }
    command.arg("--");
    command
}

fn spawn(name: &'static str, mut command: Command, port: u16, log: PathBuf) -> Result<Server> {
    let file =
        std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let child = command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let mut server = Server {
        name,
        port,
        child,
        log,
    };
    server.wait_ready()?;
    Ok(server)
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn postgres_ids() -> Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == "postgres")
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .context("no 'postgres' OS user (apt-get install postgresql creates it)")
}
