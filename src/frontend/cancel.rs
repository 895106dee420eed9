//! Routing of CancelRequests. Each client sees the upstream's real process id
//! (drivers compare it with `pg_backend_pid()`, and NotificationResponse
//! carries it) but a secret key the proxy chose; a CancelRequest is matched
//! on both and handed to its session, which withdraws a held statement
//! itself (nothing runs upstream) or re-sends the cancel upstream with the
//! real key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::backend::UpstreamAddr;

/// Where a cancel for one session must go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelTarget {
    pub upstream: UpstreamAddr,
    pub process_id: u32,
    pub secret_key: u32,
}

/// The keys of every live session. A std mutex is right here: it is taken
/// only at session start and end and on a cancel, never across an await.
#[derive(Default)]
pub struct CancelRegistry {
    keys: Mutex<HashMap<(u32, u32), Entry>>,
}

/// A live session's cancel keys and the way to tell it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub target: CancelTarget,
    pub session: tokio::sync::mpsc::UnboundedSender<()>,
}

impl CancelRegistry {
    /// Registers a session's upstream keys and returns the secret key to hand
    /// the client, with a guard that unregisters it when dropped.
    pub fn register(
        self: &Arc<Self>,
        target: CancelTarget,
        session: tokio::sync::mpsc::UnboundedSender<()>,
    ) -> (u32, CancelGuard) {
        let key_pid = target.process_id;
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let secret = loop {
            let s: u32 = rand::random();
            if !keys.contains_key(&(key_pid, s)) {
                break s;
            }
        };
        keys.insert((key_pid, secret), Entry { target, session });
        (
            secret,
            CancelGuard {
                registry: Arc::clone(self),
                key: (key_pid, secret),
            },
        )
    }

    /// The session for the keys a client presented, if they are live.
    pub fn lookup(&self, process_id: u32, secret_key: u32) -> Option<Entry> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.get(&(process_id, secret_key)).cloned()
    }
}

/// Unregisters a session's keys when the session ends.
pub struct CancelGuard {
    registry: Arc<CancelRegistry>,
    key: (u32, u32),
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        let mut keys = self.registry.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_lookup_and_drop() {
        let reg = Arc::new(CancelRegistry::default());
        let target = CancelTarget {
            upstream: UpstreamAddr::Tcp("127.0.0.1:5432".parse().unwrap()),
            process_id: 99,
            secret_key: 1234,
        };
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let (secret, guard) = reg.register(target.clone(), tx);
        assert_eq!(reg.lookup(99, secret).map(|e| e.target), Some(target));
        assert!(reg.lookup(99, secret.wrapping_add(1)).is_none());
        drop(guard);
        assert!(reg.lookup(99, secret).is_none());
    }
}
