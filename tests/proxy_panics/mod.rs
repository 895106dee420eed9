//! Catches panics on threads that are not test threads (the proxy's own
//! runtime and session threads), so that a panic the proxy swallows in a
//! task still fails the test that checks.

#![allow(dead_code)]

use std::sync::{Mutex, Once};
use std::thread::ThreadId;

static TEST_THREADS: Mutex<Vec<ThreadId>> = Mutex::new(Vec::new());
static OTHERS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Installs the hook (once) and marks the calling thread as a test's.
pub fn watch() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let me = std::thread::current();
            let test = TEST_THREADS
                .lock()
                .map(|t| t.contains(&me.id()))
                .unwrap_or(true);
            if !test {
                if let Ok(mut o) = OTHERS.lock() {
                    o.push(format!("thread {:?}: {info}", me.name()));
                }
            }
            previous(info);
        }));
    });
    TEST_THREADS
        .lock()
        .unwrap()
        .push(std::thread::current().id());
}

/// Panics if any thread but a test's has panicked.
pub fn assert_none() {
    let o = OTHERS.lock().unwrap();
    assert!(o.is_empty(), "the proxy panicked: {o:#?}");
}
