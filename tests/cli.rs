//! The `airlock` binary itself: flags, the TOML file, AIRLOCK_* variables,
//! config errors, the admin endpoints and shutdown on SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

fn airlock() -> Command {
    Command::new(env!("CARGO_BIN_EXE_airlock"))
}

/// Waits until `port` accepts TCP connections.
fn wait_for_port(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(e) = child.stderr.as_mut() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("airlock exited early ({status}): {err}");
        }
        assert!(
            Instant::now() < deadline,
            "airlock did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("airlock did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_from_toml_file_env_and_flags_then_sigterm() {
    let pg = pg();
    let dir = std::env::temp_dir().join(unique("airlock-cli"));
    std::fs::create_dir_all(&dir).unwrap();
    let listen = airlock::cluster::free_port().unwrap();
    let admin = airlock::cluster::free_port().unwrap();
    // The file names a wrong upstream and listen port; the variable and the
    // flag must win over it.
    let file = dir.join("airlock.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:1\"\nupstream = \"127.0.0.1:1\"\nadmin_listen = \"127.0.0.1:{admin}\"\nlog_format = \"json\"\n"
        ),
    )
    .unwrap();
    let mut child = airlock()
        .args(["serve", "--config"])
        .arg(&file)
        .args(["--listen", &format!("127.0.0.1:{listen}")])
        .env("AIRLOCK_UPSTREAM", &pg.addr)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_port(listen, &mut child);
    wait_for_port(admin, &mut child);

    let out = psql(listen, "postgres", "airlock_test", &["-Atc", "select 6*7"]);
    assert_eq!(stdout_ok(&out).trim(), "42");

    let (status, body) = http_get(admin, "/healthz");
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_get(admin, "/readyz");
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_get(admin, "/metrics");
    assert_eq!(status, 200);
    // Two connections: wait_for_port's probe and psql's session.
    assert!(
        body.contains("airlock_sessions_total 2\n"),
        "metrics count the connections:\n{body}"
    );

    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    // Logs are JSON lines, as the file asked.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let lines: Vec<String> = stderr.lines().map_while(Result::ok).collect();
    assert!(!lines.is_empty());
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v.get("level").is_some(), "{l}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_config_error_is_reported_with_a_distinct_exit_code() {
    let out = airlock()
        .args(["serve", "--upstream", "no-port", "--startup-timeout=-3"])
        .env_remove("AIRLOCK_UPSTREAM")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("upstream \"no-port\" is not HOST:PORT"),
        "{err}"
    );
    assert!(err.contains("startup_timeout"), "{err}");

    let dir = std::env::temp_dir().join(unique("airlock-cli-bad"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "upstreem = \"x:1\"\n").unwrap();
    let out = airlock()
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("upstreem"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn readyz_reports_an_unreachable_upstream() {
    let listen = airlock::cluster::free_port().unwrap();
    let admin = airlock::cluster::free_port().unwrap();
    let dead = airlock::cluster::free_port().unwrap();
    let mut child = airlock()
        .args(["serve", "--listen", &format!("127.0.0.1:{listen}")])
        .args(["--upstream", &format!("127.0.0.1:{dead}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(admin, &mut child);
    let (status, body) = http_get(admin, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("could not connect"), "{body}");
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(10)).success());
}

/// Policy reload without restart: on file change and on SIGHUP; a broken
/// file keeps the old policy in force and is logged with file and line.
#[test]
fn policies_reload_on_change_and_sighup_and_survive_broken_files() {
    let pg = pg();
    let dir = std::env::temp_dir().join(unique("airlock-policies"));
    std::fs::create_dir_all(&dir).unwrap();
    let deny_all =
        "[[rule]]\nname = \"deny-all\"\naction = \"deny\"\nmessage = \"closed for maintenance\"\n";
    let allow_all = "[[rule]]\nname = \"allow-all\"\naction = \"allow\"\n";
    std::fs::write(dir.join("p.toml"), deny_all).unwrap();
    let listen = airlock::cluster::free_port().unwrap();
    let mut child = airlock()
        .args(["serve", "--listen", &format!("127.0.0.1:{listen}")])
        .args(["--upstream", &pg.addr, "--policies"])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_port(listen, &mut child);
    // The log, read as it is written.
    let log = Arc::new(Mutex::new(String::new()));
    let reader = std::thread::spawn({
        let log = Arc::clone(&log);
        let mut stderr = child.stderr.take().unwrap();
        move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                log.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    let run = || psql(listen, "postgres", "airlock_test", &["-Atc", "select 6*7"]);
    let out = run();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("closed for maintenance"));

    // A file change is picked up without a restart.
    std::fs::write(dir.join("p.toml"), allow_all).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !run().status.success() {
        assert!(Instant::now() < deadline, "policy change not picked up");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A broken file: the old policy (allow-all) stays in force.
    std::fs::write(
        dir.join("p.toml"),
        "[[rule]]\nname = \"x\"\nactoin = \"deny\"\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !log.lock().unwrap().contains("previous policy stays") {
        assert!(Instant::now() < deadline, "the broken file was not noticed");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(stdout_ok(&run()).trim(), "42");

    // Fixed while the poller sleeps, then SIGHUP: reloaded at once.
    std::fs::write(dir.join("p.toml"), deny_all).unwrap();
    let ok = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while run().status.success() {
        assert!(Instant::now() < deadline, "SIGHUP reload not picked up");
        std::thread::sleep(Duration::from_millis(100));
    }

    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(10)).success());
    reader.join().unwrap();
    let log = log.lock().unwrap();
    assert!(
        log.contains("p.toml") && log.contains("line=3") && log.contains("previous policy stays"),
        "the broken file is logged with file and line:\n{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_broken_policy_directory_refuses_to_start() {
    let dir = std::env::temp_dir().join(unique("airlock-bad-policies"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.toml"),
        "[[rule]]\nname = \"a\"\naction = \"maybe\"\n",
    )
    .unwrap();
    let out = airlock()
        .args(["serve", "--upstream", "127.0.0.1:1", "--policies"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a.toml") && err.contains("maybe"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
