//! The PostgreSQL v3 wire protocol, as bytes: framing, the startup packets,
//! and builders/parsers for the few messages the proxy reads or writes itself.
//!
//! Nothing here knows about sessions, policy or storage. The data path forwards
//! server messages as raw frames; this module only names the tags and decodes
//! the handful of messages the session must look at (ReadyForQuery,
//! BackendKeyData, ParameterStatus, ErrorResponse, Authentication) and the
//! frontend messages that carry SQL.
//!
//! We write these few codecs ourselves rather than use `pgwire`'s message
//! types: the proxy never materialises rows or re-encodes server messages, and
//! a borrowed view over the frame bytes keeps the hot path free of allocation.

pub mod backend;
pub mod frontend;
pub mod params;
pub mod sqlstate;
pub mod startup;

/// Every regular message starts with a one-byte tag and a four-byte length
/// that counts itself but not the tag.
pub const HEADER_LEN: usize = 5;

/// Reads the tag and body length of the message at the start of `buf`, if
/// the five header bytes are there. The length returned excludes the header.
/// Returns `Err(len)` with the announced length field when it is below 4,
/// which no valid message has.
#[inline]
pub fn peek_header(buf: &[u8]) -> Option<Result<(u8, usize), u32>> {
    if buf.len() < HEADER_LEN {
        return None;
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if len < 4 {
        return Some(Err(len));
    }
    Some(Ok((buf[0], len as usize - 4)))
}

/// Appends a message with `tag` whose body is written by `body`, patching the
/// length once the body is known.
pub fn put_message(out: &mut Vec<u8>, tag: u8, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.push(tag);
    out.extend_from_slice(&[0, 0, 0, 0]);
    body(out);
    let len = (out.len() - start - 1) as u32;
    out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
}

/// Appends a NUL-terminated string.
pub fn put_cstr(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(s);
    out.push(0);
}

/// A cursor over a message body for the decoders in this module.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

/// A message body that does not decode as its tag promises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {0} message")]
pub struct Malformed(pub &'static str);

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn cstr(&mut self, what: &'static str) -> Result<&'a [u8], Malformed> {
        let nul = memchr::memchr(0, self.buf).ok_or(Malformed(what))?;
        let (s, rest) = self.buf.split_at(nul);
        self.buf = &rest[1..];
        Ok(s)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, Malformed> {
        let (&b, rest) = self.buf.split_first().ok_or(Malformed(what))?;
        self.buf = rest;
        Ok(b)
    }

    pub(crate) fn i16(&mut self, what: &'static str) -> Result<i16, Malformed> {
        let b = self.bytes(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32, Malformed> {
        let b = self.bytes(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        if self.buf.len() < n {
            return Err(Malformed(what));
        }
        let (b, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(b)
    }

    /// The end of the message: PostgreSQL rejects one with bytes left over.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), Malformed> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Malformed(what))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let mut out = Vec::new();
        put_message(&mut out, b'Q', |b| put_cstr(b, b"select 1"));
        assert_eq!(peek_header(&out), Some(Ok((b'Q', 9))));
        assert_eq!(peek_header(&out[..4]), None);
        assert_eq!(peek_header(b"Q\0\0\0\x02"), Some(Err(2)));
    }
}
