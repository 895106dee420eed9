//! Which of the gate's statements and portals the server really made.
//!
//! The gate records a Parse's statement and a Bind's portal as it forwards
//! them, so that the rest of a pipeline is decided by them. Within one
//! pipeline (up to its Sync) that is the server's view too: the server
//! runs the messages in order, and after the first one that fails it skips
//! every message until Sync. Across a Sync it is not: a Parse the server
//! refused (a name already taken, 42P05; an error earlier in the
//! pipeline; a message airlock refused in its place) made nothing, and the
//! name still means what it meant before, which the gate may not know.
//!
//! So every statement and portal the gate records stays tentative until the
//! server's ParseComplete or BindComplete for it arrives, and at the
//! pipeline's ReadyForQuery every one still unconfirmed is forgotten:
//! forgotten names are unknown, and what binds or executes an unknown name
//! is no read. Removals (Close, DEALLOCATE, DISCARD) need no confirmation:
//! the gate forgets at once, and a name it forgot is unknown whether the
//! server forgot it or not.
//!
//! Confirmations are matched by order within a pipeline: the k-th
//! ParseComplete after a sync point answers the k-th Parse sent after it.

use std::collections::VecDeque;

/// What kind of name a tentative entry made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Made {
    Statement,
    Portal,
}

#[derive(Debug)]
struct Entry {
    /// The pipeline (counted in sync points) the message was sent in.
    segment: u64,
    made: Made,
    name: Box<[u8]>,
    /// The gate's record it made, or `None` for a Parse that changed
    /// nothing in the gate (the same text again).
    id: Option<u64>,
}

/// Tentative statements and portals, oldest first.
#[derive(Debug, Default)]
pub(super) struct Tentative {
    entries: VecDeque<Entry>,
    /// The pipeline new messages go to.
    open: u64,
    /// The pipeline the next ReadyForQuery ends.
    oldest: u64,
    next_id: u64,
}

impl Tentative {
    /// A Parse (`Made::Statement`) or Bind (`Made::Portal`) goes upstream;
    /// `recorded` says whether the gate recorded a statement or portal
    /// for it. Returns the record's id.
    #[inline]
    pub fn sent(&mut self, made: Made, name: &[u8], recorded: bool) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.entries.push_back(Entry {
            segment: self.open,
            made,
            name: name.into(),
            id: recorded.then_some(id),
        });
        id
    }

    /// A Sync, Query or FunctionCall went upstream: a ReadyForQuery will
    /// end the pipeline.
    #[inline]
    pub fn sync_point(&mut self) {
        self.open += 1;
    }

    /// The last `n` sync points were Syncs the server ignores (sent while
    /// it was in COPY IN mode): they end no pipeline.
    pub fn ignored_syncs(&mut self, n: u64) {
        let n = n.min(self.open - self.oldest);
        self.open -= n;
        for e in self.entries.iter_mut() {
            e.segment = e.segment.min(self.open);
        }
    }

    /// ParseComplete (`Made::Statement`) or BindComplete arrived: the
    /// oldest unconfirmed message of that kind in the oldest pipeline
    /// made its name.
    #[inline]
    pub fn confirmed(&mut self, made: Made) {
        let oldest = self.oldest;
        if let Some(i) = self
            .entries
            .iter()
            .take_while(|e| e.segment == oldest)
            .position(|e| e.made == made)
        {
            self.entries.remove(i);
        }
    }

    /// ReadyForQuery ended the oldest pipeline: its unconfirmed records,
    /// each as (kind, name, id), for the gate to forget.
    #[inline]
    pub fn ready_for_query(&mut self, mut forget: impl FnMut(Made, &[u8], u64)) {
        let oldest = self.oldest;
        while self.entries.front().is_some_and(|e| e.segment == oldest) {
            if let Some(e) = self.entries.pop_front() {
                if let Some(id) = e.id {
                    forget(e.made, &e.name, id);
                }
            }
        }
        if self.oldest < self.open {
            self.oldest += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forgotten(t: &mut Tentative) -> Vec<(Made, Vec<u8>, u64)> {
        let mut out = Vec::new();
        t.ready_for_query(|m, n, id| out.push((m, n.to_vec(), id)));
        out
    }

    #[test]
    fn confirmed_records_stay_and_the_rest_are_forgotten() {
        let mut t = Tentative::default();
        let a = t.sent(Made::Statement, b"a", true);
        let _p = t.sent(Made::Portal, b"", true);
        let b = t.sent(Made::Statement, b"b", true);
        t.sync_point();
        // Parse a succeeded, the Bind failed, Parse b was skipped.
        t.confirmed(Made::Statement);
        let f = forgotten(&mut t);
        assert_eq!(f.len(), 2);
        assert_eq!(f[1], (Made::Statement, b"b".to_vec(), b));
        assert!(f.iter().all(|(_, _, id)| *id != a));
    }

    #[test]
    fn a_confirmation_never_reaches_back_into_an_earlier_pipeline() {
        let mut t = Tentative::default();
        t.sent(Made::Statement, b"w", true);
        t.sync_point();
        t.sent(Made::Statement, b"r", true);
        t.sync_point();
        // The first pipeline's Parse failed: its ReadyForQuery comes first.
        assert_eq!(forgotten(&mut t).len(), 1);
        t.confirmed(Made::Statement);
        assert!(forgotten(&mut t).is_empty(), "r was confirmed");
    }

    #[test]
    fn a_confirmation_for_a_later_pipeline_confirms_nothing_earlier() {
        let mut t = Tentative::default();
        t.sent(Made::Statement, b"x", true);
        t.sync_point();
        // A ParseComplete can only be the oldest pipeline's; one arriving
        // confirms x, never something sent later.
        t.sent(Made::Statement, b"y", true);
        t.sync_point();
        t.confirmed(Made::Statement);
        assert!(forgotten(&mut t).is_empty());
        assert_eq!(forgotten(&mut t).len(), 1);
    }

    #[test]
    fn syncs_in_copy_mode_end_no_pipeline() {
        let mut t = Tentative::default();
        t.sync_point();
        t.sync_point();
        t.sent(Made::Statement, b"z", true);
        t.ignored_syncs(2);
        t.sync_point();
        assert_eq!(forgotten(&mut t).len(), 1);
    }
}
