//! Nothing is lost when the process dies: the real `airlock` binary holds a
//! statement, is killed with SIGKILL, and started again on the same store
//! and ports; the request is still there, can be approved, and the same role
//! re-running the identical statement runs it once. With a SQLite store file
//! and with a PostgreSQL store.

mod common;

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::http::call;
use common::review::*;
use common::*;

/// A token given to the binary through the environment (`env:VAR`).
const ALICE_ENV: &str = "AIRLOCK_RESTART_TEST_ALICE";

/// One run of the binary.
struct Airlock {
    child: Child,
    log: PathBuf,
}

impl Airlock {
    fn start(dir: &Path, run: u32, store: &str, listen: u16, admin: u16) -> Airlock {
        let log = dir.join(format!("airlock-{run}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_airlock"))
            .args(["serve", "--config"])
            .arg(dir.join("airlock.toml"))
            .args(["--store", store])
            .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
            .env(ALICE_ENV, ALICE)
            .env("AIRLOCK_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut a = Airlock { child, log };
        a.wait_for(listen);
        a.wait_for(admin);
        a
    }

    fn wait_for(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("airlock exited early ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "airlock did not listen on {port}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no shutdown path runs.
    fn kill_9(mut self) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status}");
    }

    fn sigterm(mut self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                assert!(s.success(), "{s}:\n{}", self.log());
                return;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("airlock did not stop on SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Airlock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// psql running `sql` through the proxy on `port`, in the background.
fn psql_client(port: u16, sql: &str) -> Child {
    Command::new(&pg().psql)
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
        .args([
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            "airlock_test",
        ])
        .args(["-c", sql])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits up to `within` for a child to finish.
fn finish(mut child: Child, within: Duration) -> Output {
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "client did not finish within {within:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    child.wait_with_output().unwrap()
}

/// Hold, SIGKILL, restart, approve, re-run: against the store at `store`.
fn survive_kill_9(label: &str, store: &str) {
    let dir = std::env::temp_dir().join(unique(&format!("airlock-restart-{label}")));
    std::fs::create_dir_all(&dir).unwrap();
    let listen = airlock::cluster::free_port().unwrap();
    let admin_port = airlock::cluster::free_port().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{admin_port}").parse().unwrap();
    std::fs::write(
        dir.join("airlock.toml"),
        format!(
            "listen = \"127.0.0.1:{listen}\"\nupstream = \"{}\"\nworkers = 1\n\n\
             [[reviewers]]\nname = \"alice\"\ntoken = \"env:{ALICE_ENV}\"\ngroups = [\"reviewers\"]\n\n\
             [[reviewers]]\nname = \"bob\"\ntoken = \"{BOB}\"\ngroups = [\"reviewers\"]\n",
            pg().addr
        ),
    )
    .unwrap();
    let t = unique(&format!("restart_{label}"));
    table(&t);
    let sql = format!("UPDATE {t} SET v = v + 1 WHERE id = 1");

    let first = Airlock::start(&dir, 1, store, listen, admin_port);
    let client = psql_client(listen, &sql);
    let r = pending(admin, &t);
    let id = r["id"].as_str().unwrap().to_string();
    assert_eq!(r["requester"], "postgres");
    // The hold is on record before the crash.
    wait_audit(admin, &id, "hold");
    first.kill_9();
    let out = finish(client, Duration::from_secs(10));
    assert!(
        !out.status.success(),
        "the client lost its connection: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(value(&t, 1), 0, "nothing ran");

    // Same store, same ports.
    let second = Airlock::start(&dir, 2, store, listen, admin_port);
    let r = request(admin, &id);
    assert_eq!(r["status"], "pending", "{r}");
    assert_eq!(r["sql"], sql.as_str());
    assert_eq!(r["database"], "airlock_test");
    assert_eq!(pending(admin, &t)["id"], id.as_str(), "still listed");
    let trail = audit_of(admin, &id);
    assert!(
        trail.iter().any(|e| e["event"] == "hold"),
        "the audit trail kept the hold: {trail:?}"
    );
    // bob's token comes from the file (alice's, from the environment, is
    // used below).
    let (status, body) = approve(admin, BOB, &id);
    assert_eq!(status, 200, "{body}\n{}", second.log());
    assert_eq!(body["status"], "approved", "nobody holds it now: {body}");
    assert_eq!(value(&t, 1), 0);

    // The same role, the identical statement: runs once.
    let out = finish(psql_client(listen, &sql), Duration::from_secs(15));
    assert!(
        out.status.success(),
        "re-run failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        second.log()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "UPDATE 1");
    assert_eq!(value(&t, 1), 1, "ran");
    let r = wait_status(admin, &id, "executed");
    assert_eq!(r["reviews"][0]["reviewer"], "bob", "{r}");
    wait_audit(admin, &id, "execute");

    // Once: another run is a new request, held.
    let again = psql_client(listen, &sql);
    let deadline = Instant::now() + Duration::from_secs(15);
    let fresh = loop {
        let all = requests_for(admin, &t);
        if let Some(r) = all.iter().find(|r| r["id"] != id.as_str()) {
            break r.clone();
        }
        assert!(Instant::now() < deadline, "the third run was not held");
        std::thread::sleep(Duration::from_millis(30));
    };
    assert_eq!(fresh["status"], "pending", "{fresh}");
    let (status, _) = call(
        admin,
        "POST",
        &format!("/api/v1/requests/{}/reject", fresh["id"].as_str().unwrap()),
        Some(ALICE),
        Some(r#"{"reason": "once is enough"}"#),
    );
    assert_eq!(status, 200);
    let out = finish(again, Duration::from_secs(10));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("once is enough"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(value(&t, 1), 1, "ran exactly once");
    second.sigterm();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_held_request_survives_kill_9_with_a_sqlite_store() {
    let file = std::env::temp_dir().join(format!("{}.db", unique("airlock-restart-store")));
    survive_kill_9("sqlite", &format!("sqlite://{}", file.display()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
}

#[test]
fn a_held_request_survives_kill_9_with_a_postgres_store() {
    survive_kill_9("postgres", &pg_store_url("airlock_restart_store"));
}
