//! The gate: the one place every complete client message passes before the
//! session forwards it upstream. It classifies the SQL a message carries,
//! asks the policy, and returns a [`Verdict`].
//!
//! Simple Query: every statement of the string is classified and the message
//! is decided as a whole. Extended protocol: a Parse is classified once and
//! its facts remembered under the statement name; Bind ties a portal to those
//! facts; Execute is decided by its portal's facts, without parsing again.
//! A denial refuses the Parse itself; a statement that needs approval is
//! stopped at Execute.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;

use crate::catalog::{self, Known};
use crate::classify::{cache::classify_cached, Facts, Kind, Risks, StatementFacts};
use crate::metrics::Metrics;
use crate::policy::{Decision, Policy, Requester};
use crate::protocol::backend::Report;
use crate::protocol::frontend as fe;
use crate::protocol::params;
use crate::protocol::sqlstate;

/// What the session does with one client message.
#[derive(Debug)]
pub enum Verdict {
    /// Send it upstream unchanged.
    Forward,
    /// Do not send it; answer the client with this error as PostgreSQL would
    /// (ErrorResponse, then discard until Sync in the extended protocol, then
    /// ReadyForQuery).
    Refuse(Report),
    /// Hold it (and everything after it) until reviewers decide.
    Hold(HoldRequest),
}

/// What a held statement needs reviewed.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    pub sql: String,
    pub params: Vec<Option<String>>,
    pub rule: String,
    pub risks: Vec<String>,
    pub approvers: Vec<String>,
    pub approvals: u32,
    pub timeout: std::time::Duration,
    pub facts: Arc<Facts>,
}

/// A prepared statement as the gate remembers it.
struct Prepared {
    /// Facts from the text alone: the catalog and the policy may have
    /// changed by the time it is bound.
    facts: Arc<Facts>,
    sql: Arc<str>,
    param_types: Vec<u32>,
}

/// A portal: its statement's facts, and for statements that need approval
/// the SQL and bound parameters a reviewer will see.
struct Portal {
    facts: Arc<Facts>,
    sql: Option<Arc<str>>,
    params: Vec<Option<String>>,
}

/// The upstream transaction mode a forwarded message needs, for the
/// read-only backstop (docs/backstop.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Runs the same either way: SET, COMMIT, Sync, Describe ...
    Neutral,
    /// A proven read: run it where PostgreSQL refuses writes.
    ReadOnly,
    /// Allowed, and not a read.
    ReadWrite,
}

/// The mode `facts` need.
fn need_of(facts: &Facts) -> Need {
    if facts.is_read() {
        return Need::ReadOnly;
    }
    let neutral = facts.statements.iter().all(|s| match s.kind {
        Kind::Session => !s
            .risks
            .intersects(Risks::READ_ONLY_CHANGE | Risks::ROLE_CHANGE),
        Kind::Transaction => {
            !matches!(s.command.as_str(), "BEGIN" | "START TRANSACTION") && s.risks.is_empty()
        }
        _ => s.is_read(),
    });
    if neutral {
        Need::Neutral
    } else {
        Need::ReadWrite
    }
}

/// Who the session belongs to, as policies see it.
#[derive(Debug, Clone)]
pub struct Requesting {
    pub user: String,
    pub database: String,
    pub groups: Vec<String>,
}

/// Per-session decision state.
pub struct Gate {
    who: Requesting,
    policy_rx: watch::Receiver<Arc<Policy>>,
    policy: Arc<Policy>,
    /// Prepared statements, by name ("" is the unnamed one).
    statements: HashMap<Vec<u8>, Prepared>,
    /// Portals, by name.
    portals: HashMap<Vec<u8>, Portal>,
    /// Classification switched off (benchmarks only): everything forwards.
    disabled: bool,
    /// The mode the last forwarded message needs.
    pub need: Need,
    /// The last message changes the read-only default itself.
    pub changes_read_only: bool,
    /// The last message may change the catalog (see `crate::catalog`).
    pub changes_catalog: bool,
    /// What the session knows of its database's catalog.
    known: Known,
    /// The session's transaction may have changed the catalog: reads that
    /// name anything are not proven.
    pub unsettled: bool,
    /// The last message changes how the server reads statement text
    /// (client_encoding, standard_conforming_strings): what follows must
    /// wait until the server has answered it.
    pub changes_lexer: bool,
    /// A message of this extended-protocol batch was refused: the server
    /// discards everything until Sync, so the rest needs no decision.
    discarding: bool,
    /// Names SQL-level PREPARE used in this session: a protocol Parse of
    /// such a name may fail on the server, which keeps the SQL statement.
    sql_prepared: std::collections::HashSet<String>,
    /// A decision the audit trail should record (not reads).
    noted: Option<Noted>,
    metrics: Arc<Metrics>,
    /// Decisions not yet added to `metrics`, by kind and decision.
    counts: [[u32; 3]; 6],
    uncounted: u32,
}

/// A decision for the audit trail.
#[derive(Debug, Clone)]
pub struct Noted {
    pub decision: &'static str,
    pub rule: String,
    pub sql: String,
}

fn kind_index(k: Kind) -> usize {
    match k {
        Kind::Read => 0,
        Kind::Write => 1,
        Kind::Ddl => 2,
        Kind::Transaction => 3,
        Kind::Session => 4,
        Kind::Utility => 5,
    }
}

/// The kind a message counts as: its first statement that is not a read.
fn message_kind(facts: &Facts) -> Kind {
    facts
        .statements
        .iter()
        .map(StatementFacts::effective_kind)
        .find(|k| *k != Kind::Read)
        .unwrap_or(Kind::Read)
}

/// Facts for what cannot be known: a FunctionCall by OID, a portal or
/// statement the proxy did not see prepared.
fn unknown(command: &str, risk: Risks) -> Arc<Facts> {
    let mut f = Facts::unparseable("");
    f.error = None;
    let s: &mut StatementFacts = &mut f.statements[0];
    s.kind = Kind::Write;
    s.command = command.into();
    s.risks = risk;
    Arc::new(f)
}

impl Gate {
    pub fn new(
        who: Requesting,
        policy_rx: watch::Receiver<Arc<Policy>>,
        disabled: bool,
        metrics: Arc<Metrics>,
    ) -> Self {
        let policy = policy_rx.borrow().clone();
        Gate {
            who,
            policy_rx,
            policy,
            statements: HashMap::new(),
            portals: HashMap::new(),
            disabled,
            need: Need::Neutral,
            changes_read_only: false,
            changes_catalog: false,
            known: Known::Unavailable(Arc::from("the catalog has not been read yet")),
            unsettled: false,
            changes_lexer: false,
            discarding: false,
            sql_prepared: Default::default(),
            noted: None,
            metrics,
            counts: [[0; 3]; 6],
            uncounted: 0,
        }
    }

    /// Decides one complete client message. `body` excludes the five header
    /// bytes; `client_encoding` is the session's. COPY data is streamed past
    /// the gate and never reaches here.
    pub fn inspect(
        &mut self,
        tag: u8,
        body: &[u8],
        client_encoding: &str,
        standard_strings: bool,
    ) -> Verdict {
        self.need = Need::Neutral;
        self.changes_read_only = false;
        self.changes_catalog = false;
        self.changes_lexer = false;
        if self.disabled {
            return Verdict::Forward;
        }
        if tag == fe::SYNC {
            self.discarding = false;
            return Verdict::Forward;
        }
        if self.discarding
            && matches!(
                tag,
                fe::PARSE | fe::BIND | fe::EXECUTE | fe::DESCRIBE | fe::CLOSE
            )
        {
            return Verdict::Forward;
        }
        let verdict = self.inspect_message(tag, body, client_encoding, standard_strings);
        if matches!(verdict, Verdict::Refuse(_))
            && matches!(
                tag,
                fe::PARSE | fe::BIND | fe::EXECUTE | fe::DESCRIBE | fe::CLOSE
            )
        {
            self.discarding = true;
        }
        verdict
    }

    fn inspect_message(
        &mut self,
        tag: u8,
        body: &[u8],
        client_encoding: &str,
        standard_strings: bool,
    ) -> Verdict {
        if self.policy_rx.has_changed().unwrap_or(false) {
            self.policy = self.policy_rx.borrow_and_update().clone();
        }
        match tag {
            fe::QUERY => {
                let Ok(sql) = fe::parse_query(body) else {
                    return malformed("Query");
                };
                let (text, facts) = match decode(sql, client_encoding) {
                    Ok(text) => {
                        let facts = self.complete(&self.classify(&text, standard_strings), &[]);
                        (text, facts)
                    }
                    Err(report) => return Verdict::Refuse(report),
                };
                self.forget_if_statements_change(&facts);
                self.note_need(&facts);
                self.changes_catalog = catalog::may_change_catalog(&facts, &self.known);
                self.verdict(&facts, || (text.into_owned(), Vec::new()))
            }
            fe::PARSE => {
                let Ok(p) = fe::parse_parse(body) else {
                    return malformed("Parse");
                };
                let (text, raw) = match decode(p.query, client_encoding) {
                    Ok(text) => {
                        let raw = self.classify(&text, standard_strings);
                        (text, raw)
                    }
                    Err(report) => return Verdict::Refuse(report),
                };
                let facts = self.complete(&raw, &p.param_types);
                self.forget_if_statements_change(&facts);
                let verdict = match self.decide(&facts) {
                    // Denials stop at Parse; statements that need approval
                    // are held when executed.
                    d @ Decision::Deny { .. } => {
                        self.count(message_kind(&facts), 1, Some(text.to_string()), d.rule());
                        answer(&facts, &d)
                    }
                    _ => Verdict::Forward,
                };
                if matches!(verdict, Verdict::Forward) {
                    self.note_need(&facts);
                    let named = !p.statement.is_empty();
                    if named && self.statements.contains_key(p.statement) {
                        // PostgreSQL refuses to redefine a named statement
                        // (42P05) and keeps the old one: so do we.
                        return verdict;
                    }
                    // A name SQL PREPARE may have taken on the server: what
                    // Bind will run there is unknown.
                    let taken = std::str::from_utf8(p.statement)
                        .map(|n| self.sql_prepared.contains(n))
                        .unwrap_or(true);
                    let facts = if named && taken {
                        unknown("EXECUTE", Risks::UNKNOWN_STATEMENT)
                    } else {
                        raw
                    };
                    self.statements.insert(
                        p.statement.to_vec(),
                        Prepared {
                            facts,
                            sql: Arc::from(text.as_ref()),
                            param_types: p.param_types,
                        },
                    );
                }
                verdict
            }
            fe::BIND => {
                let Ok(b) = fe::parse_bind(body) else {
                    return malformed("Bind");
                };
                let portal = match self.statements.get(b.statement) {
                    None => Portal {
                        facts: unknown("EXECUTE", Risks::UNKNOWN_STATEMENT),
                        sql: None,
                        params: Vec::new(),
                    },
                    Some(p) => {
                        // The server analyses the statement again if the
                        // catalog changed since Parse: so does the gate.
                        let facts = self.complete(&p.facts, &p.param_types);
                        // Parameters are decoded only for statements a
                        // reviewer will see.
                        let held = matches!(self.decide(&facts), Decision::RequireApproval { .. });
                        Portal {
                            facts,
                            sql: held.then(|| Arc::clone(&p.sql)),
                            params: if held {
                                bound_params(&b, &p.param_types)
                            } else {
                                Vec::new()
                            },
                        }
                    }
                };
                self.note_need(&portal.facts);
                self.portals.insert(b.portal.to_vec(), portal);
                Verdict::Forward
            }
            fe::EXECUTE => {
                let Ok((portal, _)) = fe::parse_execute(body) else {
                    return malformed("Execute");
                };
                let (facts, sql, params) = match self.portals.get(portal) {
                    Some(p) => (Arc::clone(&p.facts), p.sql.clone(), p.params.clone()),
                    None => (
                        unknown("EXECUTE", Risks::UNKNOWN_STATEMENT),
                        None,
                        Vec::new(),
                    ),
                };
                self.note_need(&facts);
                self.changes_catalog = catalog::may_change_catalog(&facts, &self.known);
                self.verdict(&facts, || {
                    let sql = sql.map_or_else(
                        || "(a statement airlock did not see prepared)".to_string(),
                        |s| s.to_string(),
                    );
                    (sql, params)
                })
            }
            fe::CLOSE => {
                if let Ok((kind, name)) = fe::parse_target(body) {
                    if kind == b'S' {
                        self.statements.remove(name);
                    } else {
                        self.portals.remove(name);
                    }
                }
                Verdict::Forward
            }
            fe::FUNCTION_CALL => {
                let facts = unknown("FUNCTION CALL", Risks::UNKNOWN_FUNCTION);
                // A call by OID cannot be shown to a reviewer: refused.
                match self.decide(&facts) {
                    Decision::Allow { .. } => {
                        self.changes_catalog = true;
                        Verdict::Forward
                    }
                    d => answer(
                        &facts,
                        &Decision::Deny {
                            rule: d.rule().to_string(),
                            message:
                                "function calls by OID cannot be reviewed; call the function in SQL"
                                    .into(),
                        },
                    ),
                }
            }
            _ => Verdict::Forward,
        }
    }

    fn note_need(&mut self, facts: &Facts) {
        let risks = facts.risks();
        self.need = need_of(facts);
        self.changes_read_only = risks.contains(Risks::READ_ONLY_CHANGE);
        self.changes_lexer = risks.contains(Risks::LEXER_CHANGE);
    }

    /// What the session knows of the catalog now.
    #[inline]
    pub fn set_catalog(&mut self, known: &Known) {
        if !self.known.same(known) {
            self.known = known.clone();
        }
    }

    /// Facts completed with the catalog, then with the functions this
    /// policy vouches for.
    fn complete(&self, raw: &Arc<Facts>, params: &[u32]) -> Arc<Facts> {
        match catalog::resolve::resolve_changed(raw, &self.known, self.unsettled, params) {
            Some(resolved) => self.policy.trusted(&resolved),
            None => self.policy.trusted(raw),
        }
    }

    /// Facts for SQL text, from the text alone. With
    /// standard_conforming_strings off, backslashes escape quotes inside
    /// ordinary string literals, which the parser (built with it on) would
    /// read differently: such text cannot be classified.
    fn classify(&self, text: &str, standard_strings: bool) -> Arc<Facts> {
        if !standard_strings && text.contains('\\') {
            // Not a syntax error: a statement airlock cannot read the way the
            // server will. Whatever the policy does with unknown statements
            // (the shipped one: hold it for review) applies.
            return unknown("STATEMENT WITH BACKSLASHES", Risks::UNKNOWN_STATEMENT);
        }
        classify_cached(text)
    }

    /// The server's parameter types for a statement (from its
    /// ParameterDescription), for those the Parse left unspecified: bound
    /// values are then decoded by their real type for reviewers.
    pub fn learn_param_types(&mut self, statement: &[u8], types: Vec<u32>) {
        if let Some(p) = self.statements.get_mut(statement) {
            if p.param_types.len() < types.len() {
                p.param_types.resize(types.len(), 0);
            }
            for (have, t) in p.param_types.iter_mut().zip(types) {
                if *have == 0 {
                    *have = t;
                }
            }
        }
    }

    /// Portals do not outlive their transaction.
    pub fn transaction_ended(&mut self) {
        if !self.portals.is_empty() {
            self.portals.clear();
        }
    }

    fn decide(&self, facts: &Facts) -> Decision {
        let who = Requester {
            user: &self.who.user,
            database: &self.who.database,
            groups: &self.who.groups,
        };
        self.policy.decide(facts, &who)
    }

    /// The decision to record, if the last message's needs recording.
    pub fn take_noted(&mut self) -> Option<Noted> {
        self.noted.take()
    }

    /// Counts a decision, adding to the shared counters in batches, and
    /// notes it for the audit trail when `note_sql` is given.
    fn count(&mut self, kind: Kind, decision: usize, note_sql: Option<String>, rule: &str) {
        self.counts[kind_index(kind)][decision] += 1;
        self.uncounted += 1;
        if self.uncounted >= 256 {
            self.flush_counts();
        }
        self.noted = note_sql.map(|sql| Noted {
            decision: if decision == 0 { "allow" } else { "deny" },
            rule: rule.to_string(),
            sql,
        });
    }

    /// Adds this session's counts to the shared counters.
    pub fn flush_counts(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        for (row, shared) in self.counts.iter_mut().zip(&self.metrics.statements) {
            for (n, c) in row.iter_mut().zip(shared) {
                if *n > 0 {
                    c.fetch_add(*n as u64, Relaxed);
                    *n = 0;
                }
            }
        }
        self.uncounted = 0;
    }

    /// Forward, refuse, or hold (with the SQL and parameters `what` gives).
    /// Allowed statements that are not reads, and every denial, are noted
    /// for the audit trail.
    fn verdict(
        &mut self,
        facts: &Arc<Facts>,
        what: impl FnOnce() -> (String, Vec<Option<String>>),
    ) -> Verdict {
        let kind = message_kind(facts);
        match self.decide(facts) {
            Decision::RequireApproval {
                rule,
                approvers,
                approvals,
                timeout,
            } if facts.error.is_none() => {
                self.count(kind, 2, None, &rule);
                let (sql, params) = what();
                Verdict::Hold(HoldRequest {
                    sql,
                    params,
                    rule,
                    risks: facts.risks().names().map(str::to_string).collect(),
                    approvers,
                    approvals,
                    timeout,
                    facts: Arc::clone(facts),
                })
            }
            d => {
                let allowed = matches!(d, Decision::Allow { .. });
                let note = !allowed || kind != Kind::Read;
                let sql = note.then(|| what().0);
                self.count(kind, usize::from(!allowed), sql, d.rule());
                answer(facts, &d)
            }
        }
    }

    /// SQL-level PREPARE, DEALLOCATE and DISCARD change prepared statements
    /// behind the protocol's back: what was remembered may no longer hold.
    fn forget_if_statements_change(&mut self, facts: &Facts) {
        for s in &facts.statements {
            if let Some(name) = &s.prepared {
                self.sql_prepared.insert(name.clone());
            }
        }
        if facts.statements.iter().any(|s| {
            matches!(s.command.as_str(), "PREPARE" | "DEALLOCATE" | "DISCARD")
                || s.risks.contains(Risks::PREPARE)
        }) {
            self.statements.clear();
            self.portals.clear();
        }
    }
}

/// The bound parameters of a Bind, decoded for a reviewer.
fn bound_params(b: &fe::Bind<'_>, types: &[u32]) -> Vec<Option<String>> {
    b.params
        .iter()
        .enumerate()
        .map(|(i, v)| {
            params::display(
                *v,
                params::format_of(&b.param_formats, i),
                types.get(i).copied().unwrap_or(0),
            )
        })
        .collect()
}

/// The verdict for a decision that is not a hold: forward, or the error a
/// client gets instead of a result. Text the
/// parser rejects and the policy denies gets the parser's own syntax error.
fn answer(facts: &Facts, d: &Decision) -> Verdict {
    let report = match d {
        Decision::Allow { .. } => return Verdict::Forward,
        Decision::Deny { rule, .. } if facts.error.is_some() => Report::error(
            sqlstate::SYNTAX_ERROR,
            facts.error.clone().unwrap_or_default(),
        )
        .with_detail(format!(
            "Refused by airlock policy rule \"{rule}\": the statement does not parse."
        )),
        Decision::Deny { rule, message } => {
            Report::error(sqlstate::INSUFFICIENT_PRIVILEGE, message.clone())
                .with_detail(format!("Denied by airlock policy rule \"{rule}\"."))
        }
        Decision::RequireApproval {
            rule,
            approvers,
            approvals,
            ..
        } => Report::error(
            sqlstate::INSUFFICIENT_PRIVILEGE,
            format!("this statement requires approval by airlock policy rule \"{rule}\""),
        )
        .with_detail(format!(
            "{approvals} approval(s) from {} needed; the statement was not run.",
            approvers.join(", ")
        )),
    };
    Verdict::Refuse(report)
}

fn malformed(what: &str) -> Verdict {
    Verdict::Refuse(Report::error(
        sqlstate::PROTOCOL_VIOLATION,
        format!("malformed {what} message"),
    ))
}

/// The SQL text, in UTF-8, for the parser, from the session's
/// client_encoding. Text that cannot be decoded is refused: what cannot be
/// read cannot be proven harmless.
///
/// Encodings whose non-ASCII bytes are all >= 0x80 (the single-byte
/// encodings, the EUC family, SQL_ASCII, MULE_INTERNAL) are mapped byte for
/// byte: the lexical structure PostgreSQL sees is exactly preserved, even
/// where a character's spelling is not. Encodings whose multibyte characters
/// can contain ASCII bytes (SJIS, BIG5, GBK, UHC, GB18030) are decoded for
/// real, as the server converts them before it parses.
fn decode<'a>(sql: &'a [u8], client_encoding: &str) -> Result<Cow<'a, str>, Report> {
    if sql.is_ascii() {
        if let Ok(s) = std::str::from_utf8(sql) {
            return Ok(Cow::Borrowed(s));
        }
    }
    let enc = client_encoding.to_ascii_uppercase();
    let refuse = || {
        Report::error(
            sqlstate::CHARACTER_NOT_IN_REPERTOIRE,
            format!("airlock cannot read this statement in client_encoding {client_encoding}"),
        )
        .with_hint("Use client_encoding UTF8 through airlock.")
    };
    let real = match enc.as_str() {
        "UTF8" | "UNICODE" => {
            return std::str::from_utf8(sql)
                .map(Cow::Borrowed)
                .map_err(|_| refuse())
        }
        "SJIS" | "SHIFT_JIS_2004" | "WIN932" => Some(encoding_rs::SHIFT_JIS),
        "BIG5" | "WIN950" => Some(encoding_rs::BIG5),
        "GBK" | "WIN936" => Some(encoding_rs::GBK),
        "GB18030" => Some(encoding_rs::GB18030),
        "UHC" | "WIN949" => Some(encoding_rs::EUC_KR),
        "JOHAB" => return Err(refuse()),
        _ => None,
    };
    match real {
        Some(encoding) => {
            let (text, had_errors) = encoding.decode_without_bom_handling(sql);
            if had_errors {
                Err(refuse())
            } else {
                Ok(text)
            }
        }
        None => Ok(Cow::Owned(sql.iter().map(|&b| b as char).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_keep_the_statement_structure() {
        assert_eq!(decode(b"select 1", "LATIN1").unwrap(), "select 1");
        assert_eq!(
            decode(b"select 'caf\xe9'", "LATIN1").unwrap(),
            "select 'caf\u{e9}'"
        );
        assert!(decode(b"select '\xff'", "UTF8").is_err());
        // SJIS: 0x95 0x5c is one character whose second byte is a backslash.
        let sjis = b"select '\x95\x5c'";
        assert_eq!(decode(sjis, "SJIS").unwrap(), "select '\u{8868}'");
        assert!(decode(b"select '\x95\x5c'", "JOHAB").is_err());
    }
}
