//! The cache key of a statement: its text with literal constants replaced,
//! so that `... WHERE aid = 17` and `... WHERE aid = 42` share one entry.
//!
//! This lexer is deliberately small and conservative. It replaces literals
//! only in statements that begin with SELECT, INSERT, UPDATE, DELETE, WITH,
//! VALUES or TABLE, whose facts depend on a literal's value only where the
//! classifier says so (`StatementFacts::literals_matter`: the cache then
//! keeps no entry), and it
//! gives up (the exact text becomes the key) on anything whose lexing could
//! differ from PostgreSQL's: comments, dollar quotes, escape, Unicode, bit
//! and national strings, backslashes (their meaning depends on
//! `standard_conforming_strings`), non-ASCII text, numbers run into letters.
//! Giving up costs only cache hits, never correctness.

/// Statement-leading keywords after which literal values do not change a
/// statement's facts.
const NORMALIZED: &[&str] = &[
    "select", "insert", "update", "delete", "with", "values", "table",
];

/// Bytes that continue an unquoted ASCII identifier (PostgreSQL's
/// `ident_cont` without the non-ASCII bytes, which make the shape give up).
const IDENTIFIER: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b == b'_' || b == b'$';
        c += 1;
    }
    t
};

/// The normalized shape of `sql`, or `None` when only the exact text may
/// serve as the key.
#[cfg(test)]
pub fn shape(sql: &str) -> Option<String> {
    let mut out = String::new();
    shape_into(sql, &mut out).then_some(out)
}

/// [`shape`] into `out` (cleared first; the data path reuses one buffer):
/// false when only the exact text may serve as the key.
///
/// The shape is the text itself with number and string literals replaced
/// by `?` and `'?'` and every run of whitespace but a single space made
/// one; so the lexer only walks the text, and copies the stretches between
/// replacements whole.
pub fn shape_into(sql: &str, out: &mut String) -> bool {
    out.clear();
    let b = sql.as_bytes();
    // Text before `copied` is in `out` already.
    let mut copied = 0;
    let mut i = 0;
    let mut at_statement_start = true;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => {
                let start = i;
                while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') {
                    i += 1;
                }
                if start == 0 {
                    copied = i;
                } else if !(i - start == 1 && c == b' ') {
                    out.push_str(&sql[copied..start]);
                    out.push(' ');
                    copied = i;
                }
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let start = i;
                while i < b.len() && IDENTIFIER[b[i] as usize] {
                    i += 1;
                }
                if i < b.len() && (b[i] == b'\'' || b[i] == b'&') {
                    // E'', B'', X'', N'', U&'': typed or escaped strings.
                    return false;
                }
                if at_statement_start {
                    let word = &sql[start..i];
                    if !NORMALIZED.iter().any(|k| word.eq_ignore_ascii_case(k)) {
                        return false;
                    }
                    at_statement_start = false;
                }
            }
            b'0'..=b'9' | b'.' if c != b'.' || b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                if at_statement_start {
                    return false;
                }
                let start = i;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                    i += 1;
                }
                if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                    i += 1;
                    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                        i += 1;
                    }
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                if i < b.len() && (b[i].is_ascii_alphabetic() || b[i] == b'_') {
                    return false;
                }
                out.push_str(&sql[copied..start]);
                out.push('?');
                copied = i;
            }
            b'\'' => {
                if at_statement_start {
                    return false;
                }
                let start = i;
                i += 1;
                loop {
                    match b.get(i) {
                        None => return false,
                        Some(b'\\') => return false,
                        Some(b'\'') if b.get(i + 1) == Some(&b'\'') => i += 2,
                        Some(b'\'') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
                // 'a' 'b' on separate lines is one literal in SQL; keep the
                // shapes apart by refusing adjacent strings.
                out.push_str(&sql[copied..start]);
                out.push_str("'?'");
                copied = i;
            }
            b'"' => {
                i += 1;
                loop {
                    match b.get(i) {
                        None => return false,
                        Some(b'"') if b.get(i + 1) == Some(&b'"') => i += 2,
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            b'$' => {
                // $1 parameters only; $tag$ quoting gives up.
                i += 1;
                if !b.get(i).is_some_and(u8::is_ascii_digit) {
                    return false;
                }
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => return false,
            b'/' if b.get(i + 1) == Some(&b'*') => return false,
            b';' => {
                at_statement_start = true;
                i += 1;
            }
            b'(' | b')' | b',' | b'[' | b']' | b':' | b'+' | b'-' | b'*' | b'/' | b'<' | b'>'
            | b'=' | b'~' | b'!' | b'@' | b'#' | b'%' | b'^' | b'&' | b'|' | b'`' | b'?' | b'.' => {
                if at_statement_start {
                    return false;
                }
                i += 1;
            }
            _ => return false,
        }
    }
    out.push_str(&sql[copied..]);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_replaced_in_reads_and_dml() {
        let a = shape("SELECT abalance FROM pgbench_accounts WHERE aid = 17;").unwrap();
        let b = shape("select abalance  FROM pgbench_accounts WHERE aid = 42;").unwrap();
        assert_ne!(a, b, "keywords keep their spelling");
        assert_eq!(
            shape("SELECT abalance FROM pgbench_accounts WHERE aid = 42;").unwrap(),
            a
        );
        assert_eq!(
            shape("UPDATE t SET v = 'x''y' WHERE id = 1.5e3").unwrap(),
            "UPDATE t SET v = '?' WHERE id = ?"
        );
        assert_eq!(
            shape("select $1, t1.c2 from t1").unwrap(),
            "select $1, t1.c2 from t1"
        );
    }

    #[test]
    fn whitespace_runs_become_one_space() {
        assert_eq!(
            shape("  SELECT  a,\n\tb FROM t WHERE x = 'y' AND z=1.5  ").unwrap(),
            "SELECT a, b FROM t WHERE x = '?' AND z=? "
        );
        assert_eq!(shape("SELECT 1;\nSELECT 2").unwrap(), "SELECT ?; SELECT ?");
        assert_eq!(shape("SELECT \"a  b\"").unwrap(), "SELECT \"a  b\"");
        // A buffer that held a longer shape is cleared first.
        let mut buf = String::from("SELECT * FROM something_long WHERE");
        assert!(shape_into("TABLE t", &mut buf));
        assert_eq!(buf, "TABLE t");
        assert!(!shape_into("SELECT $$x$$", &mut buf));
    }

    #[test]
    fn anything_ambiguous_gives_up() {
        for sql in [
            "SELECT E'\\x'",
            "SELECT 'a\\' ; DELETE FROM t; --'",
            "SELECT 1 -- comment",
            "SELECT /* c */ 1",
            "SELECT $$x$$",
            "SELECT U&'\\0041'",
            "SELECT 0x1F",
            "SELECT 'unterminated",
            "SELECT \"unterminated",
            "EXPLAIN (ANALYZE 0) DELETE FROM t",
            "SELECT 1; EXPLAIN (ANALYZE 1) DELETE FROM t",
            "SET search_path = 'x'",
            "SELECT ü FROM t",
            "(SELECT 1)",
        ] {
            assert_eq!(shape(sql), None, "{sql}");
        }
    }

    #[test]
    fn statements_that_differ_beyond_literals_differ() {
        assert_ne!(shape("SELECT 1 FROM a"), shape("SELECT 1 FROM b"));
        assert_ne!(shape("SELECT nextval('s')"), shape("SELECT currval('s')"));
        assert_ne!(shape("SELECT \"a\" FROM t"), shape("SELECT \"b\" FROM t"));
    }
}
