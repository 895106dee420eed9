//! The lab's attacker over the raw protocol: a session through the proxy
//! that sends exactly the bytes an attempt builds.

use std::time::Duration;

use super::{Lab, DB};
use crate::common::rawpg::{first_error, tags, terminate, Msg, Wire};

impl Lab {
    /// A raw session through the proxy as the lab's attacker, its search
    /// path on the lab's schema unless `extra` sets `options`; its backend
    /// is the attempt's to watch.
    pub fn raw_attacker(&mut self, extra: &[(&str, &str)]) -> Wire {
        let mut w = Wire::connect(self.proxy.addr);
        let options = format!("-c search_path={}", self.schema);
        let mut params = vec![("user", "postgres"), ("database", DB)];
        if !extra.iter().any(|(k, _)| *k == "options") {
            params.push(("options", &options));
        }
        params.extend_from_slice(extra);
        let msgs = w.startup(&params);
        assert!(first_error(&msgs).is_none(), "startup: {msgs:?}");
        self.extra_pids = vec![w.pid as i32];
        w
    }

    /// Ends a raw attacker and waits until its backend is gone, so that the
    /// next fingerprint does not see it leave.
    pub async fn finish_raw(&mut self, mut w: Wire) {
        let pid = w.pid as i32;
        w.send(&terminate());
        let _ = w.closed_within(Duration::from_secs(10));
        self.extra_pids.clear();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            let n: i64 = self
                .admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                    &[&pid],
                )
                .await
                .unwrap()
                .get(0);
            if n == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("backend {pid} did not go away");
    }
}

/// What a raw exchange came to: the command tags and rows that ran, or the
/// first error.
pub fn outcome(msgs: &[Msg]) -> Result<String, (String, String)> {
    if let Some(e) = first_error(msgs) {
        return Err((
            e.code().unwrap_or_default(),
            e.field(b'M').unwrap_or_default(),
        ));
    }
    Ok(format!("{} {msgs:?}", tags(msgs)))
}
