//! Session threads: each runs a single-threaded tokio runtime that owns the
//! sessions handed to it for their whole life. Sessions never move between
//! threads, so a message's journey through the proxy involves no
//! cross-thread wake-up and no lock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

pub struct Workers {
    handles: Vec<Handle>,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    next: AtomicUsize,
}

impl Workers {
    /// Starts `n` session threads; with `n <= 1` there are none and
    /// sessions run on the caller's runtime.
    pub fn start(n: usize) -> std::io::Result<Workers> {
        let mut w = Workers {
            handles: Vec::new(),
            stops: Vec::new(),
            threads: Vec::new(),
            next: AtomicUsize::new(0),
        };
        if n <= 1 {
            return Ok(w);
        }
        for i in 0..n {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            w.handles.push(rt.handle().clone());
            w.stops.push(stop_tx);
            w.threads.push(
                std::thread::Builder::new()
                    .name(format!("airlock-worker-{i}"))
                    .spawn(move || {
                        rt.block_on(async {
                            let _ = stop_rx.await;
                        })
                    })?,
            );
        }
        Ok(w)
    }

    /// The runtime for the next session, round robin; `None` for the
    /// caller's own.
    pub fn next(&self) -> Option<&Handle> {
        if self.handles.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        Some(&self.handles[i])
    }

    /// Stops the threads once their sessions are gone.
    pub fn stop(self) {
        for s in self.stops {
            let _ = s.send(());
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}
