//! SQL text as the parser reads it: the bytes of a Query or Parse, in the
//! session's client_encoding, turned into UTF-8 without changing the
//! statement's lexical structure.

use std::borrow::Cow;

use super::encodings::SINGLE_BYTE;
use crate::protocol::backend::Report;
use crate::protocol::sqlstate;

/// The SQL text, in UTF-8, for the parser, from the session's
/// client_encoding, and whether it is spelled exactly as the server will
/// read it. Text that cannot be decoded is refused: what cannot be read
/// cannot be proven harmless.
///
/// UTF-8 and the single-byte encodings are decoded exactly, the latter by
/// the server's own tables (`encodings`, which are not the WHATWG ones:
/// PostgreSQL's LATIN1 is ISO 8859-1, not windows-1252). Other encodings
/// keep the statement's lexical structure but not the spelling of what is
/// not ASCII: those whose non-ASCII bytes are all >= 0x80 (the EUC family,
/// MULE_INTERNAL, SQL_ASCII) are mapped byte for byte; those whose
/// multibyte characters can contain ASCII bytes (SJIS, BIG5, GBK, UHC,
/// GB18030) are decoded for real so a trail byte 0x5C is no backslash. A
/// name airlock cannot spell cannot be looked up: see [`spelled`].
pub(super) fn decode<'a>(
    sql: &'a [u8],
    client_encoding: &str,
) -> Result<(Cow<'a, str>, bool), Report> {
    // The common case first, in one pass over the text.
    if client_encoding.eq_ignore_ascii_case("UTF8") {
        if let Ok(s) = std::str::from_utf8(sql) {
            return Ok((Cow::Borrowed(s), true));
        }
    }
    if sql.is_ascii() {
        if let Ok(s) = std::str::from_utf8(sql) {
            return Ok((Cow::Borrowed(s), true));
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
    if let Some((_, table)) = SINGLE_BYTE.iter().find(|(name, _)| *name == enc) {
        let mut text = String::with_capacity(sql.len() + sql.len() / 2);
        for &b in sql {
            if b < 0x80 {
                text.push(b as char);
            } else {
                match char::from_u32(u32::from(table[usize::from(b - 0x80)])) {
                    Some(c) if c != '\0' => text.push(c),
                    // The server refuses it too (22P05).
                    _ => return Err(refuse()),
                }
            }
        }
        return Ok((Cow::Owned(text), true));
    }
    let real = match enc.as_str() {
        "UTF8" | "UNICODE" => {
            return std::str::from_utf8(sql)
                .map(|s| (Cow::Borrowed(s), true))
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
                Ok((text, false))
            }
        }
        None => Ok((Cow::Owned(sql.iter().map(|&b| b as char).collect()), false)),
    }
}

/// Whether every name in `text` is spelled as the server will spell it:
/// with an inexact decoding (`exact` false), no token but a string
/// constant or a comment may have non-ASCII characters; under a server
/// encoding other than UTF-8, no unquoted identifier may (the server folds
/// their non-ASCII letters to lower case too, the parser here does not).
/// Text that does not scan is left to the parser.
pub(super) fn spelled(text: &str, exact: bool, server_utf8: bool) -> bool {
    use pg_query::protobuf::Token;
    // Exact spelling under a UTF-8 server, the data path's case, costs no
    // pass over the text.
    if (exact && server_utf8) || text.is_ascii() {
        return true;
    }
    let Ok(scan) = pg_query::scan(text) else {
        return true;
    };
    scan.tokens.iter().all(|t| {
        let Some(src) = text.get(t.start as usize..t.end as usize) else {
            return false;
        };
        if src.is_ascii() {
            return true;
        }
        let literal = [
            Token::Sconst,
            Token::Usconst,
            Token::SqlComment,
            Token::CComment,
        ]
        .iter()
        .any(|k| *k as i32 == t.token);
        if !exact {
            return literal;
        }
        // Exact spelling, single-byte server: only quoted names keep case.
        literal || src.starts_with('"') || src.starts_with("U&\"") || src.starts_with("u&\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_keep_the_statement_structure() {
        assert_eq!(decode(b"select 1", "LATIN1").unwrap().0, "select 1");
        assert_eq!(
            decode(b"select 'caf\xe9'", "LATIN1").unwrap().0,
            "select 'caf\u{e9}'"
        );
        assert!(decode(b"select '\xff'", "UTF8").is_err());
        // SJIS: 0x95 0x5c is one character whose second byte is a backslash.
        let sjis = b"select '\x95\x5c'";
        assert_eq!(decode(sjis, "SJIS").unwrap().0, "select '\u{8868}'");
        assert!(decode(b"select '\x95\x5c'", "JOHAB").is_err());
    }

    #[test]
    fn single_byte_encodings_are_spelled_as_the_server_spells_them() {
        // PostgreSQL's LATIN1 is ISO 8859-1: 0x80 is U+0080, not the euro.
        assert_eq!(
            decode(b"select 'x\x80'", "LATIN1").unwrap().0,
            "select 'x\u{80}'"
        );
        // "отчёт" in WIN1251 and KOI8R.
        let (t, exact) = decode(b"select * from \"\xee\xf2\xf7\xb8\xf2\"", "WIN1251").unwrap();
        assert_eq!((t.as_ref(), exact), ("select * from \"отчёт\"", true));
        let (t, _) = decode(b"select * from \xcf\xd4\xde\xa3\xd4", "KOI8R").unwrap();
        assert_eq!(t, "select * from отчёт");
        // WIN1251 has no character at 0x98.
        assert!(decode(b"select '\x98'", "WIN1251").is_err());
    }

    #[test]
    fn names_airlock_cannot_spell_are_not_spelled() {
        let (t, exact) = decode(b"select * from \xa4\xa2", "EUC_JP").unwrap();
        assert!(!exact);
        assert!(!spelled(&t, exact, true));
        let (t, exact) = decode(b"select '\xa4\xa2' from t -- \xa4\xa2", "EUC_JP").unwrap();
        assert!(spelled(&t, exact, true), "only in a literal and a comment");
        // A single-byte server folds unquoted non-ASCII letters.
        assert!(spelled("select * from \"Öl\"", true, false));
        assert!(!spelled("select * from Öl", true, false));
        assert!(spelled("select * from Öl", true, true));
    }
}
