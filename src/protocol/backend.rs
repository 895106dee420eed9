//! Backend (server → client) messages the proxy decodes or produces itself.

use super::{put_cstr, put_message, Malformed, Reader};

pub const AUTHENTICATION: u8 = b'R';
pub const BACKEND_KEY_DATA: u8 = b'K';
pub const BIND_COMPLETE: u8 = b'2';
pub const CLOSE_COMPLETE: u8 = b'3';
pub const COMMAND_COMPLETE: u8 = b'C';
pub const COPY_IN_RESPONSE: u8 = b'G';
pub const COPY_OUT_RESPONSE: u8 = b'H';
pub const COPY_BOTH_RESPONSE: u8 = b'W';
pub const DATA_ROW: u8 = b'D';
pub const EMPTY_QUERY_RESPONSE: u8 = b'I';
pub const ERROR_RESPONSE: u8 = b'E';
pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
pub const NOTICE_RESPONSE: u8 = b'N';
pub const NOTIFICATION_RESPONSE: u8 = b'A';
pub const PARAMETER_STATUS: u8 = b'S';
pub const PARAMETER_DESCRIPTION: u8 = b't';
pub const PARSE_COMPLETE: u8 = b'1';
pub const READY_FOR_QUERY: u8 = b'Z';

/// Authentication request codes (the Int32 after the 'R' header).
pub mod auth {
    pub const OK: i32 = 0;
    pub const CLEARTEXT_PASSWORD: i32 = 3;
    pub const MD5_PASSWORD: i32 = 5;
    pub const GSS: i32 = 7;
    pub const GSS_CONTINUE: i32 = 8;
    pub const SSPI: i32 = 9;
    pub const SASL: i32 = 10;
    pub const SASL_CONTINUE: i32 = 11;
    pub const SASL_FINAL: i32 = 12;

    /// Whether the server waits for a client message after this request.
    pub fn expects_response(code: i32) -> bool {
        matches!(
            code,
            CLEARTEXT_PASSWORD | MD5_PASSWORD | GSS | GSS_CONTINUE | SSPI | SASL | SASL_CONTINUE
        )
    }
}

/// The transaction status carried by ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// 'I': not in a transaction block.
    Idle,
    /// 'T': in a transaction block.
    InTransaction,
    /// 'E': in a failed transaction block; statements are refused until it ends.
    Failed,
}

impl TransactionStatus {
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            b'I' => Some(Self::Idle),
            b'T' => Some(Self::InTransaction),
            b'E' => Some(Self::Failed),
            _ => None,
        }
    }

    pub fn as_byte(self) -> u8 {
        match self {
            Self::Idle => b'I',
            Self::InTransaction => b'T',
            Self::Failed => b'E',
        }
    }
}

impl std::fmt::Display for TransactionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Idle => "idle",
            Self::InTransaction => "in transaction",
            Self::Failed => "in failed transaction",
        })
    }
}

/// Severity of an ErrorResponse or NoticeResponse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Fatal,
    Notice,
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Self::Error => "ERROR",
            Self::Fatal => "FATAL",
            Self::Notice => "NOTICE",
            Self::Warning => "WARNING",
        }
    }
}

/// The fields of an ErrorResponse or NoticeResponse the proxy writes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl Report {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, message)
    }

    pub fn fatal(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Fatal, code, message)
    }

    pub fn notice(message: impl Into<String>) -> Self {
        Self::new(Severity::Notice, "00000", message)
    }

    fn new(severity: Severity, code: &'static str, message: impl Into<String>) -> Self {
        Report {
            severity,
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Appends this report as an ErrorResponse (or NoticeResponse for
    /// notices and warnings).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let tag = match self.severity {
            Severity::Error | Severity::Fatal => ERROR_RESPONSE,
            Severity::Notice | Severity::Warning => NOTICE_RESPONSE,
        };
        put_message(out, tag, |b| {
            for field in [b'S', b'V'] {
                b.push(field);
                put_cstr(b, self.severity.as_str().as_bytes());
            }
            b.push(b'C');
            put_cstr(b, self.code.as_bytes());
            b.push(b'M');
            put_cstr(b, self.message.as_bytes());
            if let Some(d) = &self.detail {
                b.push(b'D');
                put_cstr(b, d.as_bytes());
            }
            if let Some(h) = &self.hint {
                b.push(b'H');
                put_cstr(b, h.as_bytes());
            }
            b.push(0);
        });
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.message.len());
        self.encode(&mut out);
        out
    }
}

/// Appends a ReadyForQuery.
pub fn ready_for_query(out: &mut Vec<u8>, status: TransactionStatus) {
    put_message(out, READY_FOR_QUERY, |b| b.push(status.as_byte()));
}

/// Appends a BackendKeyData.
pub fn backend_key_data(out: &mut Vec<u8>, process_id: u32, secret_key: u32) {
    put_message(out, BACKEND_KEY_DATA, |b| {
        b.extend_from_slice(&process_id.to_be_bytes());
        b.extend_from_slice(&secret_key.to_be_bytes());
    });
}

/// Decodes a BackendKeyData body into (process id, secret key). Protocol 3.2
/// allows longer keys; those are reported as `None` and passed through.
pub fn parse_backend_key_data(body: &[u8]) -> Option<(u32, u32)> {
    if body.len() != 8 {
        return None;
    }
    Some((
        u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
        u32::from_be_bytes([body[4], body[5], body[6], body[7]]),
    ))
}

/// Appends a ParameterStatus.
pub fn parameter_status(out: &mut Vec<u8>, name: &str, value: &str) {
    put_message(out, PARAMETER_STATUS, |b| {
        put_cstr(b, name.as_bytes());
        put_cstr(b, value.as_bytes());
    });
}

/// Decodes a ParameterStatus body into (name, value).
pub fn parse_parameter_status(body: &[u8]) -> Result<(&[u8], &[u8]), Malformed> {
    let mut r = Reader::new(body);
    let name = r.cstr("ParameterStatus")?;
    let value = r.cstr("ParameterStatus")?;
    Ok((name, value))
}

/// Decodes a ParameterDescription body into its parameter type OIDs.
pub fn parse_parameter_description(body: &[u8]) -> Result<Vec<u32>, Malformed> {
    let mut r = Reader::new(body);
    let n = r.i16("ParameterDescription")?;
    (0..n.max(0))
        .map(|_| r.i32("ParameterDescription").map(|t| t as u32))
        .collect()
}

/// One field of an ErrorResponse or NoticeResponse, by its type byte.
pub fn error_field(body: &[u8], field: u8) -> Option<&[u8]> {
    let mut r = Reader::new(body);
    loop {
        let t = r.u8("ErrorResponse").ok()?;
        if t == 0 {
            return None;
        }
        let v = r.cstr("ErrorResponse").ok()?;
        if t == field {
            return Some(v);
        }
    }
}

/// The Authentication request code of an 'R' body.
pub fn auth_code(body: &[u8]) -> Result<i32, Malformed> {
    Reader::new(body).i32("Authentication")
}

/// Rewrites an AuthenticationSASL body without mechanisms the proxy cannot
/// carry: channel binding (`-PLUS`) binds to the TLS connection the server
/// sees, which is the proxy's and not the client's.
pub fn filter_sasl_mechanisms(body: &[u8]) -> Result<Vec<u8>, Malformed> {
    let mut r = Reader::new(body);
    let code = r.i32("AuthenticationSASL")?;
    let mut out = Vec::with_capacity(body.len() + 5);
    put_message(&mut out, AUTHENTICATION, |b| {
        b.extend_from_slice(&code.to_be_bytes());
        while let Ok(m) = r.cstr("AuthenticationSASL") {
            if m.is_empty() {
                break;
            }
            if !m.ends_with(b"-PLUS") {
                put_cstr(b, m);
            }
        }
        b.push(0);
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::peek_header;

    #[test]
    fn error_response_fields() {
        let bytes = Report::error("42501", "denied").with_hint("ask").to_bytes();
        let (tag, len) = peek_header(&bytes).unwrap().unwrap();
        assert_eq!(tag, ERROR_RESPONSE);
        let body = &bytes[5..5 + len];
        assert_eq!(error_field(body, b'C'), Some(&b"42501"[..]));
        assert_eq!(error_field(body, b'M'), Some(&b"denied"[..]));
        assert_eq!(error_field(body, b'H'), Some(&b"ask"[..]));
        assert_eq!(error_field(body, b'S'), Some(&b"ERROR"[..]));
        assert_eq!(error_field(body, b'D'), None);
    }

    #[test]
    fn notices_use_notice_response() {
        assert_eq!(Report::notice("held").to_bytes()[0], NOTICE_RESPONSE);
    }

    #[test]
    fn ready_for_query_and_key_data() {
        let mut out = Vec::new();
        ready_for_query(&mut out, TransactionStatus::Failed);
        assert_eq!(out, b"Z\0\0\0\x05E");
        out.clear();
        backend_key_data(&mut out, 42, 7);
        assert_eq!(parse_backend_key_data(&out[5..]), Some((42, 7)));
    }

    #[test]
    fn sasl_plus_is_removed() {
        let mut body = 10i32.to_be_bytes().to_vec();
        body.extend_from_slice(b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0");
        let out = filter_sasl_mechanisms(&body).unwrap();
        let mut want = vec![b'R', 0, 0, 0, 23];
        want.extend_from_slice(&10i32.to_be_bytes());
        want.extend_from_slice(b"SCRAM-SHA-256\0\0");
        assert_eq!(out, want);
    }

    #[test]
    fn parameter_status() {
        assert_eq!(
            parse_parameter_status(b"client_encoding\0UTF8\0"),
            Ok((&b"client_encoding"[..], &b"UTF8"[..]))
        );
        assert!(parse_parameter_status(b"client_encoding").is_err());
    }
}
