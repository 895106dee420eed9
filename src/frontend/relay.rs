//! The server → client half of a session: a scanner over the upstream byte
//! stream that finds message boundaries without copying, reads the few
//! messages the session must know about, and lets the session splice its own
//! messages in at a boundary.
//!
//! Rows and other large messages are forwarded as they arrive, even before
//! they are complete, so a result set is never buffered whole: the scanner
//! only needs the five-byte header of a message it does not look into.

use std::collections::VecDeque;

use super::buffer::Buffer;
use crate::protocol::backend::{self as be, TransactionStatus};
use crate::protocol::{peek_header, HEADER_LEN};

/// What one scan saw that the session must act on.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Seen {
    /// ReadyForQuery messages, and the status the last one carried.
    pub ready_for_query: u32,
    pub status: Option<TransactionStatus>,
    /// The server entered COPY IN mode (CopyInResponse).
    pub copy_in: bool,
    /// The server sent a FATAL or PANIC error: it is closing the connection.
    pub fatal: bool,
    /// A statement of the proxy's own, whose answer was swallowed, failed.
    pub swallowed_error: bool,
    /// The server reported a client_encoding other than the last one.
    pub encoding_changed: bool,
    /// Rows reported by the last CommandComplete, while capturing.
    pub rows: Option<i64>,
    /// The SQLSTATE of an ErrorResponse, while capturing.
    pub error: Option<String>,
    /// Parameter types from ParameterDescription messages, in order.
    pub param_types: Vec<Vec<u32>>,
    /// The last value reported for the hidden parameter (`on`), which a
    /// statement the client ran (an approved `set_config`) may have changed.
    pub hidden_value: Option<bool>,
}

/// Where the answers to a Close and Parse of the proxy's own (a statement
/// the gate made again, `crate::frontend::gate`) will arrive: after
/// `segments` more ReadyForQuery, and within that pipeline after `closes`
/// CloseComplete and `parses` ParseComplete still due to the client's
/// earlier messages. The client never sent them, so it must not see their
/// answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reparsed {
    pub segments: u64,
    pub closes: u32,
    pub parses: u32,
    /// Our CloseComplete came and was dropped; our ParseComplete is next.
    pub closed: bool,
}

/// A malformed upstream stream.
#[derive(Debug, thiserror::Error)]
#[error("invalid message length {0} from upstream")]
pub struct BadFrame(pub u32);

#[derive(Debug, Default)]
pub struct Relay {
    /// Bytes at the front of the buffer that may be written to the client.
    ready: usize,
    /// Body bytes of the current message not yet received; they are
    /// forwarded as they arrive.
    skip: usize,
    /// Messages of the proxy's own, waiting for the next message boundary.
    inject: Vec<u8>,
    /// Errors of the proxy's own that replace the upstream's error for a
    /// refused statement, by refusal number, oldest first.
    refusals: VecDeque<(u64, Vec<u8>)>,
    /// Answers (up to and including ReadyForQuery) to statements of the
    /// proxy's own that the client must not see, oldest first: the next
    /// `swallow` answer segments are dropped.
    swallow: u32,
    /// Answers to Close and Parse messages of the proxy's own sent inside
    /// the client's pipelines, oldest first.
    reparsed: Vec<Reparsed>,
    /// Read CommandComplete tags for their row counts.
    capture: bool,
    /// Hide ParameterStatus for this setting (the backstop's own).
    hidden_parameter: Option<&'static [u8]>,
    /// The session's client_encoding, from ParameterStatus.
    pub client_encoding: String,
    /// The session's standard_conforming_strings, from ParameterStatus.
    pub standard_strings: bool,
    /// ParseComplete, BindComplete and (the client's) ReadyForQuery tags
    /// of the last scan, in order: the gate keeps only
    /// the statements and portals the server confirms.
    events: Vec<u8>,
}

/// The statement text the session sends upstream in place of a refused
/// message. It is a syntax error, so the server fails exactly where the
/// refused message stood (discarding until Sync, failing a transaction
/// block) without executing anything, and the error names the marker.
pub fn refusal_marker(id: u64) -> String {
    format!("{REFUSAL_PREFIX}{id}")
}

const REFUSAL_PREFIX: &str = "airlock_refused_";

/// The row count at the end of a CommandComplete tag (`UPDATE 3`,
/// `INSERT 0 1`), if it has one.
fn command_rows(body: &[u8]) -> Option<i64> {
    let tag = body.split(|&b| b == 0).next()?;
    let last = tag.rsplit(|&b| b == b' ').next()?;
    std::str::from_utf8(last).ok()?.parse().ok()
}

/// The refusal number named by an upstream error's message, if any.
fn refusal_id(message: &[u8]) -> Option<u64> {
    let prefix = REFUSAL_PREFIX.as_bytes();
    let at = message.windows(prefix.len()).position(|w| w == prefix)?;
    let digits = &message[at + prefix.len()..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

impl Relay {
    pub fn new(client_encoding: String, standard_strings: bool) -> Self {
        Relay {
            client_encoding,
            standard_strings,
            ..Default::default()
        }
    }

    /// Bytes at the front of `buf` that may go to the client now.
    #[inline]
    pub fn ready(&self) -> usize {
        self.ready
    }

    /// Records that `n` ready bytes were written to the client (the caller
    /// consumes them from the buffer).
    #[inline]
    pub fn written(&mut self, n: usize) {
        self.ready -= n;
    }

    /// Whether the stream stands between two messages, so nothing partial
    /// has been forwarded.
    #[inline]
    pub fn at_boundary(&self, buf: &Buffer) -> bool {
        self.skip == 0 && buf.len() == self.ready
    }

    /// Queues messages of the proxy's own; they are spliced into the stream
    /// at the next message boundary by [`Relay::scan`].
    pub fn inject(&mut self, bytes: &[u8]) {
        self.inject.extend_from_slice(bytes);
    }

    /// Arranges for the upstream error caused by refusal `id`'s marker to be
    /// replaced by `report` (an encoded ErrorResponse).
    pub fn expect_refusal(&mut self, id: u64, report: Vec<u8>) {
        self.refusals.push_back((id, report));
    }

    /// What the last scan saw of the messages the gate follows, in order
    /// (see the `events` field).
    #[inline]
    pub fn events(&self) -> &[u8] {
        &self.events
    }

    /// Reports row counts from CommandComplete while `on` (an approved
    /// statement is running).
    pub fn capture_rows(&mut self, on: bool) {
        self.capture = on;
    }

    /// Never shows the client ParameterStatus for `name`: the read-only
    /// backstop changes it behind the client's back.
    pub fn hide_parameter(&mut self, name: &'static str) {
        self.hidden_parameter = Some(name.as_bytes());
    }

    /// Arranges for the answers to a Close and Parse of the proxy's own to
    /// be dropped (see [`Reparsed`]).
    pub fn expect_reparsed(&mut self, at: Reparsed) {
        self.reparsed.push(at);
    }

    /// Whether the CloseComplete (`tag`), ParseComplete or ReadyForQuery
    /// just seen answers a message of the proxy's own, which the client
    /// must not see; counts it for the ones still to come.
    fn answers_reparse(&mut self, tag: u8) -> bool {
        let mut ours = false;
        match tag {
            be::READY_FOR_QUERY => {
                // A pipeline ended: answers the server skipped after an
                // error will not come.
                self.reparsed.retain(|r| r.segments > 0);
                for r in &mut self.reparsed {
                    r.segments -= 1;
                }
            }
            be::CLOSE_COMPLETE => {
                for r in self
                    .reparsed
                    .iter_mut()
                    .filter(|r| r.segments == 0 && !r.closed)
                {
                    match r.closes {
                        0 if !ours => {
                            r.closed = true;
                            ours = true;
                        }
                        _ => r.closes = r.closes.saturating_sub(1),
                    }
                }
            }
            be::PARSE_COMPLETE => {
                let mut done = None;
                for (i, r) in self.reparsed.iter_mut().enumerate() {
                    if r.segments > 0 {
                        continue;
                    }
                    if r.parses == 0 && r.closed && !ours {
                        ours = true;
                        done = Some(i);
                    } else {
                        r.parses = r.parses.saturating_sub(1);
                    }
                }
                if let Some(i) = done {
                    self.reparsed.remove(i);
                }
            }
            _ => {}
        }
        ours
    }

    /// Drops the answer to the next sync point (a Query of the proxy's own
    /// sent while the server was otherwise idle): every message up to and
    /// including its ReadyForQuery, except asynchronous notifications.
    pub fn swallow_next(&mut self) {
        self.swallow += 1;
    }

    /// Walks the newly received bytes of `buf`, marking whole and partial
    /// uninteresting messages ready and reading ReadyForQuery,
    /// ParameterStatus, CopyInResponse and ErrorResponse once complete.
    pub fn scan(&mut self, buf: &mut Buffer) -> Result<Seen, BadFrame> {
        let mut seen = Seen::default();
        self.events.clear();
        loop {
            if self.skip > 0 {
                let n = self.skip.min(buf.len() - self.ready);
                self.ready += n;
                self.skip -= n;
                if self.skip > 0 {
                    break;
                }
            }
            if !self.inject.is_empty() {
                buf.insert(self.ready, &self.inject);
                self.ready += self.inject.len();
                self.inject.clear();
            }
            let rest = &buf.bytes()[self.ready..];
            let (tag, len) = match peek_header(rest) {
                None => break,
                Some(Err(len)) => return Err(BadFrame(len)),
                Some(Ok(h)) => h,
            };
            if self.swallow > 0 && tag != be::NOTIFICATION_RESPONSE {
                if rest.len() < HEADER_LEN + len {
                    buf.reserve(HEADER_LEN + len - rest.len());
                    break;
                }
                let body = &rest[HEADER_LEN..HEADER_LEN + len];
                match tag {
                    be::READY_FOR_QUERY => {
                        self.observe(tag, body, &mut seen);
                        self.swallow -= 1;
                    }
                    be::ERROR_RESPONSE => {
                        self.observe(tag, body, &mut seen);
                        seen.swallowed_error = true;
                    }
                    _ => {}
                }
                buf.remove(self.ready, HEADER_LEN + len);
                continue;
            }
            let inspect = self.capture && tag == be::COMMAND_COMPLETE;
            match tag {
                _ if inspect => {
                    if rest.len() < HEADER_LEN + len {
                        buf.reserve(HEADER_LEN + len - rest.len());
                        break;
                    }
                    let body = &rest[HEADER_LEN..HEADER_LEN + len];
                    seen.rows = command_rows(body);
                    self.ready += HEADER_LEN + len;
                }
                be::READY_FOR_QUERY
                | be::PARAMETER_DESCRIPTION
                | be::PARAMETER_STATUS
                | be::COPY_IN_RESPONSE
                | be::ERROR_RESPONSE => {
                    if rest.len() < HEADER_LEN + len {
                        buf.reserve(HEADER_LEN + len - rest.len());
                        break;
                    }
                    let body = &rest[HEADER_LEN..HEADER_LEN + len];
                    if tag == be::PARAMETER_STATUS && self.hidden_parameter.is_some() {
                        if let Ok((name, value)) = be::parse_parameter_status(body) {
                            if Some(name) == self.hidden_parameter {
                                seen.hidden_value = Some(value == b"on");
                                buf.remove(self.ready, HEADER_LEN + len);
                                continue;
                            }
                        }
                    }
                    if tag == be::ERROR_RESPONSE && !self.refusals.is_empty() {
                        if let Some(report) = self.take_refusal(body) {
                            buf.remove(self.ready, HEADER_LEN + len);
                            buf.insert(self.ready, &report);
                            self.ready += report.len();
                            continue;
                        }
                    }
                    self.observe(tag, body, &mut seen);
                    if tag == be::READY_FOR_QUERY {
                        self.events.push(tag);
                        if !self.reparsed.is_empty() {
                            self.answers_reparse(tag);
                        }
                    }
                    self.ready += HEADER_LEN + len;
                }
                _ => {
                    if matches!(
                        tag,
                        be::PARSE_COMPLETE | be::BIND_COMPLETE | be::CLOSE_COMPLETE
                    ) {
                        self.events.push(tag);
                        // The gate counts it either way; the client sees
                        // only the answers to its own messages.
                        if !self.reparsed.is_empty() && len == 0 && self.answers_reparse(tag) {
                            buf.remove(self.ready, HEADER_LEN);
                            continue;
                        }
                    }
                    self.ready += HEADER_LEN;
                    self.skip = len;
                }
            }
        }
        Ok(seen)
    }

    /// The replacement for an upstream error that names a refusal marker.
    /// Refusals older than it were discarded by the server after an earlier
    /// error, so they are dropped too.
    fn take_refusal(&mut self, body: &[u8]) -> Option<Vec<u8>> {
        if be::error_field(body, b'C')? != b"42601" {
            return None;
        }
        let id = refusal_id(be::error_field(body, b'M')?)?;
        while let Some((first, report)) = self.refusals.pop_front() {
            if first == id {
                return Some(report);
            }
            if first > id {
                self.refusals.push_front((first, report));
                break;
            }
        }
        None
    }

    fn observe(&mut self, tag: u8, body: &[u8], seen: &mut Seen) {
        match tag {
            be::READY_FOR_QUERY => {
                seen.ready_for_query += 1;
                seen.status = body.first().and_then(|&b| TransactionStatus::from_byte(b));
            }
            be::PARAMETER_STATUS => match be::parse_parameter_status(body) {
                Ok((b"client_encoding", v)) if self.client_encoding.as_bytes() != v => {
                    self.client_encoding = String::from_utf8_lossy(v).into_owned();
                    seen.encoding_changed = true;
                }
                Ok((b"standard_conforming_strings", v)) => self.standard_strings = v == b"on",
                _ => {}
            },
            be::COPY_IN_RESPONSE => seen.copy_in = true,
            be::PARAMETER_DESCRIPTION => {
                seen.param_types
                    .push(be::parse_parameter_description(body).unwrap_or_default());
            }
            be::ERROR_RESPONSE => {
                if self.capture {
                    seen.error = be::error_field(body, b'C')
                        .map(|c| String::from_utf8_lossy(c).into_owned());
                }
                if matches!(
                    be::error_field(body, b'V').or_else(|| be::error_field(body, b'S')),
                    Some(b"FATAL" | b"PANIC")
                ) {
                    seen.fatal = true;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::backend::{ready_for_query, Report};
    use crate::protocol::put_message;

    fn data_row(n: usize) -> Vec<u8> {
        let mut m = Vec::new();
        put_message(&mut m, be::DATA_ROW, |b| {
            b.extend(std::iter::repeat_n(7u8, n))
        });
        m
    }

    #[test]
    fn partial_rows_are_forwarded_as_they_arrive() {
        let row = data_row(100);
        let mut buf = Buffer::with_capacity(64);
        let mut relay = Relay::default();
        buf.extend(&row[..3]);
        relay.scan(&mut buf).unwrap();
        assert_eq!(relay.ready(), 0, "an incomplete header is held");
        buf.extend(&row[3..50]);
        relay.scan(&mut buf).unwrap();
        assert_eq!(
            relay.ready(),
            50,
            "body bytes go out before the row is complete"
        );
        buf.extend(&row[50..]);
        let mut z = Vec::new();
        ready_for_query(&mut z, TransactionStatus::InTransaction);
        buf.extend(&z[..4]);
        let seen = relay.scan(&mut buf).unwrap();
        assert_eq!(relay.ready(), row.len());
        assert_eq!(seen.ready_for_query, 0);
        buf.extend(&z[4..]);
        let seen = relay.scan(&mut buf).unwrap();
        assert_eq!(seen.ready_for_query, 1);
        assert_eq!(seen.status, Some(TransactionStatus::InTransaction));
        assert!(relay.at_boundary(&buf));
    }

    fn empty(tag: u8) -> Vec<u8> {
        let mut m = Vec::new();
        put_message(&mut m, tag, |_| {});
        m
    }

    #[test]
    fn answers_to_a_reparse_are_dropped_and_no_others() {
        let (close, parse, bind) = (
            empty(be::CLOSE_COMPLETE),
            empty(be::PARSE_COMPLETE),
            empty(be::BIND_COMPLETE),
        );
        let mut rfq = Vec::new();
        ready_for_query(&mut rfq, TransactionStatus::Idle);
        let mut relay = Relay::default();
        // One pipeline still to end before ours; in ours, the client's
        // Close and Parse come first.
        relay.expect_reparsed(Reparsed {
            segments: 1,
            closes: 1,
            parses: 1,
            closed: false,
        });
        let client: Vec<u8> = [
            &parse[..],
            &rfq,
            &close,
            &parse,
            &close,
            &parse,
            &bind,
            &rfq,
        ]
        .concat();
        let mut buf = Buffer::with_capacity(64);
        buf.extend(&client);
        relay.scan(&mut buf).unwrap();
        let want: Vec<u8> = [&parse[..], &rfq, &close, &parse, &bind, &rfq].concat();
        assert_eq!(buf.bytes(), &want[..]);
        assert_eq!(relay.ready(), want.len());
        assert!(relay.reparsed.is_empty());
        // The gate still hears of every answer.
        assert_eq!(relay.events().len(), 8);
    }

    #[test]
    fn a_reparse_the_server_skipped_after_an_error_drops_nothing_later() {
        let (close, parse) = (empty(be::CLOSE_COMPLETE), empty(be::PARSE_COMPLETE));
        let mut rfq = Vec::new();
        ready_for_query(&mut rfq, TransactionStatus::Idle);
        let mut relay = Relay::default();
        relay.expect_reparsed(Reparsed {
            segments: 0,
            closes: 0,
            parses: 0,
            closed: false,
        });
        // An error earlier in the pipeline: nothing of ours is answered,
        // and the next pipeline's answers are the client's.
        let mut err = Vec::new();
        Report::error("42601", "x").encode(&mut err);
        let stream: Vec<u8> = [&err[..], &rfq, &close, &parse, &rfq].concat();
        let mut buf = Buffer::with_capacity(64);
        buf.extend(&stream);
        relay.scan(&mut buf).unwrap();
        assert_eq!(buf.bytes(), &stream[..]);
    }

    #[test]
    fn injection_waits_for_a_boundary() {
        let row = data_row(10);
        let mut buf = Buffer::with_capacity(64);
        let mut relay = Relay::default();
        buf.extend(&row[..8]);
        relay.scan(&mut buf).unwrap();
        relay.inject(b"XYZ");
        relay.scan(&mut buf).unwrap();
        assert_eq!(buf.bytes(), &row[..8], "not spliced into a partial row");
        buf.extend(&row[8..]);
        relay.scan(&mut buf).unwrap();
        let mut want = row.clone();
        want.extend_from_slice(b"XYZ");
        assert_eq!(buf.bytes(), &want[..]);
        assert_eq!(relay.ready(), want.len());
    }

    #[test]
    fn fatal_errors_and_encoding_are_seen() {
        let mut buf = Buffer::with_capacity(64);
        let mut relay = Relay::default();
        put_message(&mut Vec::new(), b'S', |_| {});
        let mut m = Vec::new();
        put_message(&mut m, be::PARAMETER_STATUS, |b| {
            b.extend_from_slice(b"client_encoding\0LATIN1\0")
        });
        Report::fatal("57P01", "bye").encode(&mut m);
        buf.extend(&m);
        let seen = relay.scan(&mut buf).unwrap();
        assert!(seen.fatal);
        assert_eq!(relay.client_encoding, "LATIN1");
        assert!(seen.encoding_changed);
        let mut again = Vec::new();
        put_message(&mut again, be::PARAMETER_STATUS, |b| {
            b.extend_from_slice(b"client_encoding\0LATIN1\0")
        });
        buf.extend(&again);
        assert!(
            !relay.scan(&mut buf).unwrap().encoding_changed,
            "the same again"
        );
    }

    #[test]
    fn refusal_errors_are_replaced() {
        let mut buf = Buffer::with_capacity(64);
        let mut relay = Relay::default();
        let ours = Report::error("42501", "denied by policy").to_bytes();
        relay.expect_refusal(3, Report::error("42501", "stale").to_bytes());
        relay.expect_refusal(4, ours.clone());
        let msg = format!("syntax error at or near \"{}\"", refusal_marker(4));
        let mut theirs = Report::error("42601", msg).to_bytes();
        let other = Report::error("22012", "division by zero").to_bytes();
        theirs.extend_from_slice(&other);
        buf.extend(&theirs);
        relay.scan(&mut buf).unwrap();
        let mut want = ours;
        want.extend_from_slice(&other);
        assert_eq!(buf.bytes(), &want[..]);
        assert_eq!(relay.ready(), want.len());
        assert!(relay.refusals.is_empty());
        assert_eq!(refusal_id(b"at or near \"airlock_refused_12\""), Some(12));
    }

    #[test]
    fn swallowed_answers_do_not_reach_the_client() {
        let mut buf = Buffer::with_capacity(64);
        let mut relay = Relay::default();
        relay.swallow_next();
        let mut m = Vec::new();
        put_message(&mut m, be::COMMAND_COMPLETE, |b| {
            b.extend_from_slice(b"SET\0")
        });
        put_message(&mut m, be::PARAMETER_STATUS, |b| {
            b.extend_from_slice(b"default_transaction_read_only\0off\0")
        });
        let mut notification = Vec::new();
        put_message(&mut notification, be::NOTIFICATION_RESPONSE, |b| {
            b.extend_from_slice(b"\0\0\0\x07chan\0\0")
        });
        m.extend_from_slice(&notification);
        ready_for_query(&mut m, TransactionStatus::Idle);
        let mut theirs = Vec::new();
        put_message(&mut theirs, be::COMMAND_COMPLETE, |b| {
            b.extend_from_slice(b"INSERT 0 1\0")
        });
        ready_for_query(&mut theirs, TransactionStatus::Idle);
        m.extend_from_slice(&theirs);
        buf.extend(&m[..7]);
        relay.scan(&mut buf).unwrap();
        assert_eq!(relay.ready(), 0);
        buf.extend(&m[7..]);
        let seen = relay.scan(&mut buf).unwrap();
        assert_eq!(
            seen.ready_for_query, 2,
            "both count for the sync accounting"
        );
        let mut want = notification;
        want.extend_from_slice(&theirs);
        assert_eq!(buf.bytes(), &want[..]);
        assert_eq!(relay.ready(), want.len());
    }

    #[test]
    fn bad_length_is_an_error() {
        let mut buf = Buffer::with_capacity(64);
        buf.extend(b"D\0\0\0\x01");
        assert!(Relay::default().scan(&mut buf).is_err());
    }
}
