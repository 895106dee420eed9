//! Throwaway PostgreSQL clusters, for `airlock demo`, the integration tests
//! and the benchmarks.
//!
//! A cluster lives in a fresh directory under the system temp dir and listens
//! on a free loopback port. `initdb` and `postgres` refuse to run as root, so
//! when we are root they run as the `postgres` OS user through `setpriv`.
//! `setpriv --pdeathsig` also ties the server's life to the thread that
//! started it: if that thread (or the whole process) dies without dropping the
//! cluster, the postmaster gets SIGQUIT and shuts down at once. Callers that
//! start a cluster from a short-lived thread must keep that in mind.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::protocol::{peek_header, startup};

/// How a throwaway cluster is set up.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub max_connections: u32,
    /// Extra `postgresql.conf` lines.
    pub settings: Vec<String>,
    /// `pg_hba.conf` lines placed before the final `trust` lines.
    pub hba: Vec<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            max_connections: 200,
            settings: Vec::new(),
            hba: Vec::new(),
        }
    }
}

/// A running throwaway cluster; dropping it stops the server and removes
/// its files. The superuser is `postgres`, trusted on loopback unless the
/// options' `hba` lines say otherwise.
pub struct TempCluster {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    run_as: Option<(u32, u32)>,
    child: Option<Child>,
}

/// How to stop a server, as `pg_ctl stop -m` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// SIGINT: sessions are told (FATAL 57P01) and closed; clean shutdown.
    Fast,
    /// SIGQUIT: everything exits at once.
    Immediate,
    /// SIGKILL to the postmaster, as if it crashed.
    Kill,
}

impl TempCluster {
    /// Creates and starts a cluster; blocks until it accepts connections.
    pub fn start(options: &ClusterOptions) -> Result<TempCluster> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let bin = find_bin_dir()?;
        let run_as = if running_as_root() {
            Some(postgres_ids()?)
        } else {
            None
        };
        let dir = std::env::temp_dir().join(format!(
            "airlock-pg-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .with_context(|| format!("giving {} to the postgres user", dir.display()))?;
        }
        let mut cluster = TempCluster {
            dir,
            port: free_port()?,
            bin,
            run_as,
            child: None,
        };
        cluster.initdb(options)?;
        // The port was free when chosen; should something have taken it
        // since, start on another.
        let mut tries = 0;
        loop {
            match cluster.start_server() {
                Ok(()) => return Ok(cluster),
                Err(e) if tries < 4 && format!("{e:#}").contains("could not bind") => {
                    tries += 1;
                    cluster.port = free_port()?;
                    let conf = cluster.dir.join("data").join("postgresql.conf");
                    append(&conf, &format!("port = {}\n", cluster.port))?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, as the proxy's `--upstream` wants it.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The directory holding the data directory and the server log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory holding `initdb`, `postgres`, `psql`, `pgbench`.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// A client program (`psql`, `pgbench`) of this installation: from the
    /// server's directory, else from PATH.
    pub fn tool(&self, name: &str) -> PathBuf {
        let p = self.bin.join(name);
        if p.is_file() {
            p
        } else {
            PathBuf::from(name)
        }
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.run_as {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("--pdeathsig=SIGQUIT")
                    .arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn initdb(&self, options: &ClusterOptions) -> Result<()> {
        let data = self.dir.join("data");
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .stdin(Stdio::null())
            .output()
            .context("running initdb")?;
        if !out.status.success() {
            bail!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut conf = format!(
            "\n# throwaway cluster\nlisten_addresses = '127.0.0.1'\nport = {}\n\
             unix_socket_directories = '{}'\nmax_connections = {}\nfsync = off\n\
             synchronous_commit = off\nfull_page_writes = off\nshared_buffers = '128MB'\n",
            self.port,
            self.dir.display(),
            options.max_connections
        );
        for s in &options.settings {
            conf.push_str(s);
            conf.push('\n');
        }
        append(&data.join("postgresql.conf"), &conf)?;
        let mut hba = String::new();
        for l in &options.hba {
            hba.push_str(l);
            hba.push('\n');
        }
        hba.push_str(
            "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n",
        );
        std::fs::write(data.join("pg_hba.conf"), hba).context("writing pg_hba.conf")?;
        Ok(())
    }

    /// Starts the server (again, after [`TempCluster::stop`]) on the same
    /// port and waits until it accepts connections.
    pub fn start_server(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .context("opening server.log")?;
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(self.dir.join("server.log"), Some(uid), Some(gid))?;
        }
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.dir.join("data"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting postgres")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    bail!(
                        "postgres exited with {status}; log:\n{}",
                        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
                    );
                }
            }
            if probe(self.port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("postgres did not accept connections within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server, keeping its files so it can start again.
    pub fn stop(&mut self, mode: StopMode) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let signal = match mode {
            StopMode::Fast => "INT",
            StopMode::Immediate => "QUIT",
            StopMode::Kill => "KILL",
        };
        // The postmaster is setpriv's exec'd image, so the child's pid is the
        // postmaster's.
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status();
        child.wait()?;
        if mode == StopMode::Kill {
            // Orphaned backends notice the postmaster's death on their own;
            // wait until the port is free again.
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// Runs SQL with psql as the superuser on `database`; returns stdout
    /// (unaligned, tuples only).
    pub fn psql(&self, database: &str, sql: &str) -> Result<String> {
        let out = Command::new(self.tool("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", "postgres", "-d", database, "-c", sql])
            .stdin(Stdio::null())
            .output()
            .context("running psql")?;
        if !out.status.success() {
            bail!("psql failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        let _ = self.stop(StopMode::Immediate);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether a server on `port` completes a trust login as `postgres`.
fn probe(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let packet = startup::startup_message(&[("user", "postgres"), ("database", "postgres")]);
    if s.write_all(&packet).is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut at = 0;
        while let Some(Ok((tag, len))) = peek_header(&buf[at..]) {
            if buf.len() - at < 5 + len {
                break;
            }
            match tag {
                b'Z' => {
                    let _ = s.write_all(b"X\0\0\0\x04");
                    return true;
                }
                b'E' => return false,
                _ => at += 5 + len,
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn append(path: &Path, text: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// A loopback port nobody listens on right now. It is taken from below
/// the kernel's ephemeral range where possible, so that the outgoing
/// connections made meanwhile (which draw from that range) cannot take it
/// before whoever asked binds it.
pub fn free_port() -> Result<u16> {
    use std::hash::{BuildHasher, RandomState};
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    // Not the same port twice to one process, which may not have bound
    // the first yet.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    if low > 12000 {
        let seed = RandomState::new();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        for attempt in 0u32..64 {
            let pick = seed.hash_one((std::process::id(), attempt));
            let port = 10000 + (pick % u64::from(low - 11000)) as u16;
            if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
                given.push(port);
                return Ok(port);
            }
        }
    }
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn postgres_ids() -> Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > 3 && f[0] == "postgres" {
            return Ok((f[2].parse()?, f[3].parse()?));
        }
    }
    bail!("running as root needs a 'postgres' OS user for initdb and postgres (apt-get install postgresql creates it)")
}

/// Finds PostgreSQL's server binaries: on PATH, or Debian's versioned
/// directory (newest first).
pub fn find_bin_dir() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("postgres").is_file() {
                return Ok(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "PostgreSQL server binaries (initdb, postgres) not found: apt-get install postgresql"
        ),
    }
}
