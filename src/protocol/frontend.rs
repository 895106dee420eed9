//! Frontend (client → server) message tags, and borrowed views of the
//! messages that carry SQL or name statements and portals.

use super::{Malformed, Reader};

pub const BIND: u8 = b'B';
pub const CLOSE: u8 = b'C';
pub const COPY_DATA: u8 = b'd';
pub const COPY_DONE: u8 = b'c';
pub const COPY_FAIL: u8 = b'f';
pub const DESCRIBE: u8 = b'D';
pub const EXECUTE: u8 = b'E';
pub const FLUSH: u8 = b'H';
pub const FUNCTION_CALL: u8 = b'F';
pub const PARSE: u8 = b'P';
/// PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse share it.
pub const PASSWORD_MESSAGE: u8 = b'p';
pub const QUERY: u8 = b'Q';
pub const SYNC: u8 = b'S';
pub const TERMINATE: u8 = b'X';

/// Whether `tag` is a message a client may send after startup.
pub fn is_known_tag(tag: u8) -> bool {
    matches!(
        tag,
        BIND | CLOSE
            | COPY_DATA
            | COPY_DONE
            | COPY_FAIL
            | DESCRIBE
            | EXECUTE
            | FLUSH
            | FUNCTION_CALL
            | PARSE
            | PASSWORD_MESSAGE
            | QUERY
            | SYNC
            | TERMINATE
    )
}

// Every reader ends with `finish`: PostgreSQL refuses a message with bytes
// after its last field (08P01, "invalid message format"), and the gate must
// not act on a message the server will not.

/// A Query message: one or more SQL statements as raw bytes in the session's
/// client_encoding.
pub fn parse_query(body: &[u8]) -> Result<&[u8], Malformed> {
    let mut r = Reader::new(body);
    let sql = r.cstr("Query")?;
    r.finish("Query")?;
    Ok(sql)
}

/// A Parse message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parse<'a> {
    pub statement: &'a [u8],
    pub query: &'a [u8],
    pub param_types: Vec<u32>,
}

pub fn parse_parse(body: &[u8]) -> Result<Parse<'_>, Malformed> {
    const W: &str = "Parse";
    let mut r = Reader::new(body);
    let statement = r.cstr(W)?;
    let query = r.cstr(W)?;
    let n = r.i16(W)?;
    let mut param_types = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n {
        param_types.push(r.i32(W)? as u32);
    }
    r.finish(W)?;
    Ok(Parse {
        statement,
        query,
        param_types,
    })
}

/// A Bind message, with parameter values left as raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind<'a> {
    pub portal: &'a [u8],
    pub statement: &'a [u8],
    pub param_formats: Vec<i16>,
    /// `None` is SQL NULL.
    pub params: Vec<Option<&'a [u8]>>,
    pub result_formats: Vec<i16>,
}

pub fn parse_bind(body: &[u8]) -> Result<Bind<'_>, Malformed> {
    let (mut param_formats, mut params, mut result_formats) = (Vec::new(), Vec::new(), Vec::new());
    let (portal, statement) = walk_bind(
        body,
        |f| param_formats.push(f),
        |p| params.push(p),
        |f| result_formats.push(f),
    )?;
    Ok(Bind {
        portal,
        statement,
        param_formats,
        params,
        result_formats,
    })
}

/// The (portal, statement) names of a Bind, with the rest of the message
/// checked as [`parse_bind`] checks it, but nothing allocated: the data
/// path needs the values only for statements a reviewer will see.
pub fn bind_names(body: &[u8]) -> Result<(&[u8], &[u8]), Malformed> {
    walk_bind(body, |_| {}, |_| {}, |_| {})
}

/// Reads a Bind, handing each parameter format, value (`None` is SQL NULL)
/// and result format to its callback; returns the portal and statement.
fn walk_bind<'a>(
    body: &'a [u8],
    mut param_format: impl FnMut(i16),
    mut param: impl FnMut(Option<&'a [u8]>),
    mut result_format: impl FnMut(i16),
) -> Result<(&'a [u8], &'a [u8]), Malformed> {
    const W: &str = "Bind";
    let mut r = Reader::new(body);
    let portal = r.cstr(W)?;
    let statement = r.cstr(W)?;
    for _ in 0..r.i16(W)? {
        param_format(r.i16(W)?);
    }
    for _ in 0..r.i16(W)? {
        let len = r.i32(W)?;
        param(if len < 0 {
            None
        } else {
            Some(r.bytes(len as usize, W)?)
        });
    }
    for _ in 0..r.i16(W)? {
        result_format(r.i16(W)?);
    }
    r.finish(W)?;
    Ok((portal, statement))
}

/// A FunctionCall message: a call of the function with this OID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCall<'a> {
    pub function: u32,
    pub arg_formats: Vec<i16>,
    /// `None` is SQL NULL.
    pub args: Vec<Option<&'a [u8]>>,
    pub result_format: i16,
}

impl FunctionCall<'_> {
    /// Argument `i` as a 4-byte integer, in its format (0 text, 1 binary);
    /// `Some(None)` for NULL, `None` if it does not read as one.
    pub fn int4(&self, i: usize) -> Option<Option<i32>> {
        let format = match self.arg_formats[..] {
            [] => 0,
            [f] => f,
            ref all => *all.get(i)?,
        };
        let Some(v) = *self.args.get(i)? else {
            return Some(None);
        };
        match format {
            0 => std::str::from_utf8(v).ok()?.trim().parse().ok().map(Some),
            1 => Some(Some(i32::from_be_bytes(v.try_into().ok()?))),
            _ => None,
        }
    }
}

pub fn parse_function_call(body: &[u8]) -> Result<FunctionCall<'_>, Malformed> {
    const W: &str = "FunctionCall";
    let mut r = Reader::new(body);
    let function = r.i32(W)? as u32;
    let mut arg_formats = Vec::new();
    for _ in 0..r.i16(W)? {
        arg_formats.push(r.i16(W)?);
    }
    let mut args = Vec::new();
    for _ in 0..r.i16(W)? {
        let len = r.i32(W)?;
        args.push(if len < 0 {
            None
        } else {
            Some(r.bytes(len as usize, W)?)
        });
    }
    let result_format = r.i16(W)?;
    r.finish(W)?;
    if arg_formats.len() > 1 && arg_formats.len() != args.len() {
        return Err(Malformed(W));
    }
    Ok(FunctionCall {
        function,
        arg_formats,
        args,
        result_format,
    })
}

/// An Execute message: (portal, row limit; 0 means all rows).
pub fn parse_execute(body: &[u8]) -> Result<(&[u8], i32), Malformed> {
    let mut r = Reader::new(body);
    let portal = r.cstr("Execute")?;
    let max_rows = r.i32("Execute")?;
    r.finish("Execute")?;
    Ok((portal, max_rows))
}

/// A Describe or Close message: ('S' statement or 'P' portal, name).
pub fn parse_target(body: &[u8]) -> Result<(u8, &[u8]), Malformed> {
    let mut r = Reader::new(body);
    let kind = r.u8("Describe/Close")?;
    if kind != b'S' && kind != b'P' {
        return Err(Malformed("Describe/Close"));
    }
    let name = r.cstr("Describe/Close")?;
    r.finish("Describe/Close")?;
    Ok((kind, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{put_cstr, put_message};

    #[test]
    fn parse_and_bind() {
        let mut m = Vec::new();
        put_message(&mut m, PARSE, |b| {
            put_cstr(b, b"s1");
            put_cstr(b, b"select $1");
            b.extend_from_slice(&1i16.to_be_bytes());
            b.extend_from_slice(&23i32.to_be_bytes());
        });
        let p = parse_parse(&m[5..]).unwrap();
        assert_eq!(p.statement, b"s1");
        assert_eq!(p.query, b"select $1");
        assert_eq!(p.param_types, vec![23]);

        let mut m = Vec::new();
        put_message(&mut m, BIND, |b| {
            put_cstr(b, b"");
            put_cstr(b, b"s1");
            b.extend_from_slice(&0i16.to_be_bytes());
            b.extend_from_slice(&2i16.to_be_bytes());
            b.extend_from_slice(&1i32.to_be_bytes());
            b.push(b'7');
            b.extend_from_slice(&(-1i32).to_be_bytes());
            b.extend_from_slice(&0i16.to_be_bytes());
        });
        let bind = parse_bind(&m[5..]).unwrap();
        assert_eq!(bind.statement, b"s1");
        assert_eq!(bind.params, vec![Some(&b"7"[..]), None]);
        assert_eq!(bind_names(&m[5..]).unwrap(), (&b""[..], &b"s1"[..]));
        // Truncated anywhere, both readers refuse it.
        for cut in 5..m.len() {
            assert!(parse_bind(&m[5..cut]).is_err(), "{cut}");
            assert!(bind_names(&m[5..cut]).is_err(), "{cut}");
        }
    }

    #[test]
    fn truncated_messages_are_malformed() {
        assert!(parse_query(b"select 1").is_err());
        assert!(parse_execute(b"p\0\0").is_err());
        assert!(parse_target(b"X\0").is_err());
        assert!(parse_bind(b"\0s\0\0\x01").is_err());
        assert!(bind_names(b"\0s\0\0\x01").is_err());
    }
}
