//! SQL text as the parser reads it: the bytes of a Query or Parse, in the
//! session's client_encoding, turned into UTF-8 without changing the
//! statement's lexical structure.

use std::borrow::Cow;

use crate::protocol::backend::Report;
use crate::protocol::sqlstate;

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
pub(super) fn decode<'a>(sql: &'a [u8], client_encoding: &str) -> Result<Cow<'a, str>, Report> {
    // The common case first, in one pass over the text.
    if client_encoding.eq_ignore_ascii_case("UTF8") {
        if let Ok(s) = std::str::from_utf8(sql) {
            return Ok(Cow::Borrowed(s));
        }
    }
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
