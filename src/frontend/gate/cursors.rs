//! SQL cursors the gate did not see declared.
//!
//! A FETCH or MOVE runs more of its cursor's query. The gate classifies
//! every DECLARE it forwards, so while nothing else ran, every cursor of
//! the session is one a statement the gate decided made. User code can
//! open cursors too (PL/pgSQL `OPEN` on a named refcursor, `EXECUTE
//! 'DECLARE ... WITH HOLD ...'`, which outlives its transaction), under a
//! name the client may then FETCH from, and a name the client DECLAREs
//! afterwards may fail as taken and leave the user's cursor in its place.
//! So once anything that may run user code has been forwarded in the
//! session, no FETCH or MOVE is proven a read.

use std::sync::Arc;

use crate::classify::{Facts, Risks, StatementFacts};

/// Why a FETCH or MOVE is not proven a read.
const UNSEEN: &str =
    "a cursor user code may have opened: something earlier in this session ran code the gate cannot see into";

/// `facts` with every FETCH and MOVE no read.
pub(super) fn unseen(facts: Arc<Facts>) -> Arc<Facts> {
    if !facts.statements.iter().any(StatementFacts::runs_cursor) {
        return facts;
    }
    let mut f = (*facts).clone();
    for s in f.statements.iter_mut().filter(|s| s.runs_cursor()) {
        s.risks.insert(Risks::USER_CODE);
        s.user_code.push(UNSEEN.to_string());
    }
    Arc::new(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::classify;

    #[test]
    fn fetch_and_move_are_no_reads_once_user_code_may_have_run() {
        for sql in [
            "FETCH ALL FROM c",
            "MOVE 5 IN c",
            "SELECT 1; FETCH 1 FROM c",
        ] {
            let f = Arc::new(classify(sql));
            assert!(f.is_read(), "{sql}");
            assert!(!unseen(f).is_read(), "{sql}");
        }
        let f = Arc::new(classify("SELECT 1"));
        assert!(Arc::ptr_eq(&unseen(Arc::clone(&f)), &f));
    }
}
