//! The sessions open now, for `GET /api/v1/sessions`. Touched at session
//! start and end only.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub id: u64,
    pub user: String,
    pub database: String,
    pub application_name: String,
    pub client_addr: String,
    pub backend_pid: u32,
    pub started_at: i64,
}

#[derive(Default)]
pub struct Sessions {
    next: AtomicU64,
    open: Mutex<BTreeMap<u64, SessionInfo>>,
}

/// Removes a session from the list when dropped.
pub struct Registered {
    sessions: Arc<Sessions>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut open = self.sessions.open.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(&self.id);
    }
}

impl Sessions {
    /// Lists a session until the returned guard is dropped.
    pub fn add(self: &Arc<Self>, mut info: SessionInfo) -> Registered {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        info.id = id;
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.insert(id, info);
        Registered {
            sessions: Arc::clone(self),
            id,
        }
    }

    pub fn list(&self) -> Vec<SessionInfo> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.values().cloned().collect()
    }
}
