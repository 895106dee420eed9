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

use super::named;

/// What kind of name a tentative entry made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Made {
    Statement,
    Portal,
    /// A Close: it makes nothing, but its CloseComplete is counted, so the
    /// gate knows where answers to messages of its own will come.
    Close,
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

    /// Where the answer to a Close and a Parse sent next will come: how
    /// many pipelines end before theirs, and how many CloseComplete and
    /// ParseComplete of that pipeline come before.
    pub fn next_answers(&self) -> (u64, u32, u32) {
        let open = self.open;
        let due = |made| {
            let n = self.entries.iter().rev().take_while(|e| e.segment == open);
            n.filter(|e| e.made == made).count() as u32
        };
        (open - self.oldest, due(Made::Close), due(Made::Statement))
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

/// The server's answers, as the gate follows them.
impl super::Gate {
    /// The server sent ParseComplete.
    #[inline]
    pub fn parse_complete(&mut self) {
        self.tentative.confirmed(Made::Statement);
    }

    /// The server sent BindComplete.
    #[inline]
    pub fn bind_complete(&mut self) {
        self.tentative.confirmed(Made::Portal);
    }

    /// The server sent CloseComplete.
    #[inline]
    pub fn close_complete(&mut self) {
        self.tentative.confirmed(Made::Close);
    }

    /// The server sent ReadyForQuery for a client's sync point: what it
    /// did not confirm of that pipeline it did not make, and the gate
    /// forgets it.
    #[inline]
    pub fn ready_for_query(&mut self) {
        let (statements, portals) = (&mut self.statements, &mut self.portals);
        let (sql_prepared, epoch) = (&mut self.sql_prepared, &mut self.epoch);
        self.tentative.ready_for_query(|made, name, id| match made {
            Made::Statement => {
                if let Some(p) = statements.get(name).filter(|p| p.id == id) {
                    if !name.is_empty() {
                        sql_prepared.forget_protocol(named::server_name(name), &p.sql);
                    }
                    statements.remove(name);
                    *epoch += 1;
                }
            }
            Made::Portal => {
                if portals.get(name).is_some_and(|p| p.id == id) {
                    portals.remove(name);
                }
            }
            Made::Close => {}
        });
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
    fn the_next_answers_count_the_open_pipeline_only() {
        let mut t = Tentative::default();
        t.sent(Made::Statement, b"a", true);
        t.sync_point();
        t.sent(Made::Close, b"a", false);
        t.sent(Made::Statement, b"b", true);
        t.sent(Made::Portal, b"", true);
        t.sent(Made::Statement, b"c", true);
        assert_eq!(t.next_answers(), (1, 1, 2));
        t.confirmed(Made::Statement);
        forgotten(&mut t);
        t.confirmed(Made::Close);
        t.confirmed(Made::Statement);
        assert_eq!(t.next_answers(), (0, 0, 1));
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
