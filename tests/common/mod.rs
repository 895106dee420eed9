//! The shared integration-test harness: one throwaway PostgreSQL per test
//! binary, the real proxy started per test on port 0, and connections,
//! psql runs and single values straight to the cluster.
//!
//! The cluster is started from a keeper thread that lives as long as the test
//! process: the server is tied to that thread's life (see `airlock::cluster`),
//! so it goes away with the process even though statics are never dropped.
//!
//! The helpers some tests share live in submodules:
//!
//! - [`http`]: a minimal HTTP/1.1 client for the admin API;
//! - [`rawpg`]: a raw-protocol PostgreSQL client that sends exactly the
//!   bytes a test builds;
//! - [`approval`]: the end-to-end tests of the hold: the reviewer tokens,
//!   proxies with the shipped or a custom policy, five-row tables read
//!   straight from PostgreSQL and the admin API calls a reviewer makes;
//! - [`review`]: the admin API, PostgreSQL store and restart tests: their
//!   own reviewers, databases and stores, error bodies, metrics and
//!   Server-Sent Events;
//! - [`lab`]: the laboratory for bypass attempts (with [`lab::raw`], its
//!   attacker over the raw protocol).
//!
//! Every test binary compiles all of them and uses only some, hence the
//! `allow(dead_code)` here, which covers the submodules too.

#![allow(dead_code)]

pub mod approval;
pub mod http;
pub mod lab;
pub mod rawpg;
pub mod review;

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use airlock::cluster::{ClusterOptions, TempCluster};
use airlock::policy::Policy;
use airlock::{Config, Proxy};

/// A policy with one rule that allows every statement.
pub fn allow_all() -> Policy {
    Policy::from_sources(&[(
        "allow-all.toml",
        "[[rule]]\nname = \"allow-all\"\naction = \"allow\"\n",
    )])
    .expect("allow-all policy")
}

/// Passwords of the roles made for authentication tests.
pub const PASSWORD: &str = "s3cret-pw";

/// What tests need to know of the shared cluster.
pub struct Pg {
    pub addr: String,
    pub port: u16,
    pub psql: std::path::PathBuf,
    pub pgbench: std::path::PathBuf,
}

/// The shared cluster of this test binary, started on first use.
pub fn pg() -> &'static Pg {
    static PG: OnceLock<Pg> = OnceLock::new();
    PG.get_or_init(|| {
        remove_stale_clusters();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("pg-keeper".into())
            .spawn(move || {
                let cluster = TempCluster::start(&options()).expect("start PostgreSQL");
                setup(&cluster);
                tx.send(Pg {
                    addr: cluster.addr(),
                    port: cluster.port(),
                    psql: cluster.tool("psql"),
                    pgbench: cluster.tool("pgbench"),
                })
                .expect("send cluster info");
                loop {
                    std::thread::park();
                }
            })
            .expect("spawn keeper thread");
        rx.recv().expect("cluster started")
    })
}

/// Cluster settings shared by every test binary: password-authenticated
/// roles for each method, trust for the rest.
pub fn options() -> ClusterOptions {
    ClusterOptions {
        max_connections: 1200,
        settings: vec!["password_encryption = 'scram-sha-256'".into()],
        hba: vec![
            "host all md5_user 127.0.0.1/32 md5".into(),
            "host all scram_user 127.0.0.1/32 scram-sha-256".into(),
            "host all password_user 127.0.0.1/32 password".into(),
        ],
    }
}

fn setup(cluster: &TempCluster) {
    cluster
        .psql(
            "postgres",
            &format!(
                "SET password_encryption = 'md5'; CREATE ROLE md5_user LOGIN PASSWORD '{PASSWORD}';
                 SET password_encryption = 'scram-sha-256';
                 CREATE ROLE scram_user LOGIN PASSWORD '{PASSWORD}';
                 CREATE ROLE password_user LOGIN PASSWORD '{PASSWORD}';"
            ),
        )
        .expect("create test roles");
    cluster
        .psql("postgres", "CREATE DATABASE airlock_test")
        .expect("create test database");
}

/// Removes the directories of clusters whose test process is gone.
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(rest) = name.strip_prefix("airlock-pg-") {
            if let Some(pid) = rest.split('-').next() {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
}

/// The real proxy on a loopback port of its own, on its own runtime thread
/// so that it outlives nothing and depends on no test's runtime. Dropping it
/// shuts it down.
pub struct TestProxy {
    pub addr: SocketAddr,
    /// The admin API of this proxy.
    pub admin: SocketAddr,
    pub proxy: Arc<Proxy>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestProxy {
    /// A proxy in front of the shared cluster.
    pub fn start() -> TestProxy {
        Self::with_config(|_| {})
    }

    /// A proxy in front of the shared cluster, with settings changed by `f`.
    pub fn with_config(f: impl FnOnce(&mut Config)) -> TestProxy {
        let mut config = Config::new("127.0.0.1:0".parse().unwrap(), pg().addr.clone());
        f(&mut config);
        Self::with(config)
    }

    /// A proxy with exactly `config` (its listen port is ignored) and a
    /// policy that allows everything: the core protocol tests are about
    /// transparency, not decisions. Statements still pass the classifier.
    pub fn with(config: Config) -> TestProxy {
        Self::with_policy(config, Some(allow_all()))
    }

    /// A proxy with `config` and `policy`; `None` loads what the config
    /// names (the shipped policy without a directory).
    pub fn with_policy(config: Config, policy: Option<Policy>) -> TestProxy {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let addr = listener.local_addr().unwrap();
                let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind admin");
                let admin = admin_listener.local_addr().unwrap();
                let store_url = config.store.clone();
                let grant = config.grant_lifetime;
                let estimates = config.estimates.clone();
                let proxy = match policy {
                    Some(p) => Proxy::with_policy(config, p),
                    None => Proxy::new(config),
                };
                // Each proxy gets a store of its own unless the config
                // names one (the default file name means "not named").
                let url = if store_url == "sqlite://airlock.db" {
                    let path = std::env::temp_dir().join(format!("{}.db", unique("airlock-store")));
                    format!("sqlite://{}", path.display())
                } else {
                    store_url
                };
                let store = airlock::store::Store::open(&url).await.expect("open store");
                let _ = proxy.approvals.set(airlock::approval::Approvals::start(
                    store,
                    airlock::approval::ApprovalSettings {
                        grant_lifetime: grant,
                        estimates,
                        ..Default::default()
                    },
                ));
                let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
                tokio::spawn(airlock::admin::serve(
                    admin_listener,
                    proxy.clone(),
                    async {
                        let _ = admin_stopped.await;
                    },
                ));
                ready_tx.send((addr, admin, proxy.clone())).unwrap();
                proxy
                    .serve(listener, async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .expect("serve");
                let _ = admin_stop.send(());
            });
        });
        let (addr, admin, proxy) = ready_rx.recv().expect("proxy started");
        TestProxy {
            addr,
            admin,
            proxy,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Waits until the proxy's snapshot of `database`'s catalog is the one
    /// `direct` (a direct connection to it) sees now: changes made past
    /// airlock reach the proxy when it next polls.
    pub async fn catalog_caught_up(&self, direct: &tokio_postgres::Client, database: &str) {
        let (want, _) = airlock::catalog::load::fingerprint(direct)
            .await
            .expect("catalog fingerprint");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let status = self.proxy.catalogs.status();
            if status.iter().any(|s| {
                s.database == database
                    && s.state == "current"
                    && s.fingerprint.as_deref() == Some(want.as_str())
            }) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the proxy's catalog of {database} did not catch up with {want}: {status:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// A libpq-style connection string for `user` on `database` via the proxy.
    pub fn conninfo(&self, user: &str, database: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} dbname={database}",
            self.port()
        )
    }

    /// Connects tokio-postgres through the proxy; the connection task runs
    /// on the caller's runtime.
    pub async fn connect(&self, user: &str, database: &str) -> tokio_postgres::Client {
        connect(&self.conninfo(user, database)).await
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects tokio-postgres with a libpq-style connection string.
pub async fn connect(conninfo: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {conninfo}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A connection string straight to the shared cluster.
pub fn direct_conninfo(user: &str, database: &str) -> String {
    format!(
        "host=127.0.0.1 port={} user={user} dbname={database}",
        pg().port
    )
}

/// Runs psql with `args` against `port`, with no psqlrc and ON_ERROR_STOP.
pub fn psql(port: u16, user: &str, database: &str, args: &[&str]) -> Output {
    Command::new(&pg().psql)
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
        .arg("-p")
        .arg(port.to_string())
        .args(["-U", user, "-d", database])
        .args(args)
        .stdin(Stdio::null())
        .env_remove("PGPASSWORD")
        .output()
        .expect("run psql")
}

/// stdout of a successful command, or a panic with its stderr.
pub fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A query's single text value (unaligned, trimmed), straight from `db` on
/// the shared cluster.
pub fn scalar(db: &str, sql: &str) -> String {
    stdout_ok(&psql(pg().port, "postgres", db, &["-Atc", sql]))
        .trim()
        .to_string()
}

/// A reviewer for the admin API.
pub fn reviewer(
    name: &str,
    token: &str,
    groups: &[&str],
    roles: &[&str],
) -> airlock::config::Reviewer {
    airlock::config::Reviewer {
        name: name.into(),
        token: token.into(),
        groups: groups.iter().map(|s| s.to_string()).collect(),
        roles: roles.iter().map(|s| s.to_string()).collect(),
    }
}

/// A table name no other test uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Waits (up to 15 s) until a backend of the shared cluster (backend `pid`,
/// if given) is running exactly `query`: a cancel or a shutdown sent before
/// the statement reached the server would test nothing. Without a pid, give
/// the query a unique text.
pub async fn until_running(pid: Option<i32>, query: &str) {
    let direct = connect(&direct_conninfo("postgres", "postgres")).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let n: i64 = direct
            .query_one(
                "select count(*) from pg_stat_activity
                 where state = 'active' and query = $1 and ($2::int is null or pid = $2)",
                &[&query, &pid],
            )
            .await
            .unwrap()
            .get(0);
        if n > 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{query} never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
