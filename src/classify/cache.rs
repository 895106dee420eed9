//! A bounded cache of facts, per session thread, so repeated statements are
//! not parsed again. Sessions stay on one thread for life, so a thread-local
//! cache needs no lock and is shared by every session of its thread.
//!
//! Keys are statement shapes (see [`super::shape`]) or, where no shape can be
//! taken safely, the exact text. Memory is bounded in bytes: keys longer than
//! [`MAX_KEY`] are not cached at all (huge IN lists), and once the cache
//! holds [`BUDGET`] bytes the oldest entries go first.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::{classify, shape, Facts};

/// Longest statement text worth caching.
pub const MAX_KEY: usize = 8 * 1024;
/// Bytes of keys and facts one thread's cache may hold.
pub const BUDGET: usize = 8 * 1024 * 1024;

/// Keys are statement text, which clients choose: the hasher is seeded
/// (foldhash), so colliding keys cannot be prepared in advance.
#[derive(Default)]
struct Cache {
    map: HashMap<Box<str>, Arc<Facts>, foldhash::fast::RandomState>,
    order: VecDeque<Box<str>>,
    bytes: usize,
    /// The shape being looked up, reused from statement to statement.
    shape: String,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// Approximate heap size of one entry.
fn cost(key: &str, facts: &Facts) -> usize {
    let stmt: usize = facts
        .statements
        .iter()
        .map(|s| {
            64 + s.command.len()
                + s.tables_read.iter().map(|t| t.len() + 24).sum::<usize>()
                + s.tables_written.iter().map(|t| t.len() + 24).sum::<usize>()
                + [
                    &s.functions,
                    &s.operators,
                    &s.types,
                    &s.attributes,
                    &s.user_code,
                ]
                .iter()
                .flat_map(|v| v.iter())
                .map(|t| t.len() + 24)
                .sum::<usize>()
        })
        .sum();
    2 * key.len() + stmt + 96
}

/// The facts of `sql`, from the cache or by parsing (and then cached).
pub fn classify_cached(sql: &str) -> Arc<Facts> {
    if sql.len() > MAX_KEY {
        return Arc::new(classify(sql));
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let c = &mut *c;
        let key: &str = if shape::shape_into(sql, &mut c.shape) {
            &c.shape
        } else {
            sql
        };
        if let Some(hit) = c.map.get(key) {
            return Arc::clone(hit);
        }
        let facts = Arc::new(classify(sql));
        // Facts that depend on literal values are never shared by shape;
        // such statements are rare (settings made on connect), so they are
        // simply not cached.
        if facts.literals_matter() {
            return facts;
        }
        let size = cost(key, &facts);
        while c.bytes + size > BUDGET {
            let Some(old) = c.order.pop_front() else {
                break;
            };
            if let Some(f) = c.map.remove(&old) {
                c.bytes -= cost(&old, &f);
            }
        }
        let key: Box<str> = key.into();
        if c.map.insert(key.clone(), Arc::clone(&facts)).is_none() {
            c.order.push_back(key);
            c.bytes += size;
        }
        facts
    })
}

/// Entries and bytes in this thread's cache (for tests and metrics).
pub fn stats() -> (usize, usize) {
    CACHE.with(|c| {
        let c = c.borrow();
        (c.map.len(), c.bytes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_that_depend_on_literals_are_not_shared_by_shape() {
        let jit = classify_cached("SELECT set_config('jit', 'off', false)");
        assert!(jit.is_read() || jit.statements[0].reads_and_sets());
        let role = classify_cached("SELECT set_config('role', 'off', false)");
        assert!(role.risks().contains(crate::classify::Risks::ROLE_CHANGE));
        let again = classify_cached("SELECT set_config('jit', 'off', false)");
        assert!(!again.risks().contains(crate::classify::Risks::ROLE_CHANGE));
        let path = classify_cached("SELECT set_config('search_path', 'public, pg_catalog', 'on')");
        assert!(path.risks().contains(crate::classify::Risks::SEARCH_PATH));
        let path = classify_cached("SELECT set_config('search_path', 'pg_catalog, public', 'on')");
        assert!(!path.risks().contains(crate::classify::Risks::SEARCH_PATH));
    }

    #[test]
    fn same_shape_hits_and_facts_match() {
        let a = classify_cached("SELECT * FROM cache_t WHERE id = 1");
        let (n, _) = stats();
        let b = classify_cached("SELECT * FROM cache_t WHERE id = 2");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(stats().0, n);
        assert!(a.is_read());
    }

    #[test]
    fn huge_statements_are_not_cached() {
        let list: Vec<String> = (0..5000).map(|i| i.to_string()).collect();
        let sql = format!("SELECT * FROM t WHERE id IN ({})", list.join(","));
        let before = stats().0;
        let f = classify_cached(&sql);
        assert!(f.is_read());
        assert_eq!(stats().0, before);
    }
}
