//! Keeping the live policy current: reload on SIGHUP and when a file in the
//! policy directory changes. A policy that fails to load leaves the old one
//! in force; every error is logged with its file and line. Sessions see the
//! new policy through a `watch` channel, pushed, never read from a global.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tracing::{error, info};

use super::Policy;

/// How often the directory is checked for changes.
const POLL: Duration = Duration::from_secs(1);

/// A fingerprint of the directory: every rule file's name, size and mtime.
fn stamp(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .map(|e| {
            let m = e.metadata().ok();
            (
                e.path(),
                m.as_ref().map_or(0, |m| m.len()),
                m.and_then(|m| m.modified().ok()),
            )
        })
        .collect();
    v.sort();
    v
}

/// Loads `dir` again and publishes it if it is valid. Returns whether it
/// was.
pub fn reload(dir: &Path, tx: &watch::Sender<Arc<Policy>>) -> bool {
    match Policy::load(dir) {
        Ok(p) => {
            info!(dir = %dir.display(), rules = p.rules.len(), "policy loaded");
            tx.send_replace(Arc::new(p));
            true
        }
        Err(errors) => {
            for e in &errors {
                error!(file = %e.file, line = e.line, error = %e.message, "policy not reloaded; the previous policy stays in force");
            }
            false
        }
    }
}

/// Watches `dir` for as long as the task runs (the proxy aborts it when it
/// stops): reloads on SIGHUP and when a rule file changes.
pub async fn watch_dir(dir: PathBuf, tx: watch::Sender<Arc<Policy>>) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            error!(error = %e, "cannot watch SIGHUP; policy reloads on file change only");
            None
        }
    };
    let mut last = stamp(&dir);
    loop {
        let hup_recv = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = hup_recv => {
                info!("SIGHUP: reloading policy");
                last = stamp(&dir);
                reload(&dir, &tx);
            }
            _ = tokio::time::sleep(POLL) => {
                let now = stamp(&dir);
                if now != last {
                    last = now;
                    reload(&dir, &tx);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_file_keeps_the_old_policy() {
        let dir = std::env::temp_dir().join(format!("airlock-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("a.toml"),
            "[[rule]]\nname = \"r1\"\naction = \"allow\"\n",
        )
        .unwrap();
        let (tx, rx) = watch::channel(Arc::new(Policy::default()));
        assert!(reload(&dir, &tx));
        assert_eq!(rx.borrow().rules[0].name, "r1");
        std::fs::write(
            dir.join("a.toml"),
            "[[rule]]\nname = \"r2\"\naction = \"allwo\"\n",
        )
        .unwrap();
        assert!(!reload(&dir, &tx));
        assert_eq!(rx.borrow().rules[0].name, "r1");
        std::fs::write(
            dir.join("a.toml"),
            "[[rule]]\nname = \"r3\"\naction = \"deny\"\n",
        )
        .unwrap();
        assert!(reload(&dir, &tx));
        assert_eq!(rx.borrow().rules[0].name, "r3");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
