//! The classifier against corpora of statements with expected facts.
//! Each line of `corpus.txt` and `corpus_clients.txt` is `expectation | sql`:
//! the expected kind (`read` also means "is a read"), `!read` for "anything
//! but a read", then risk flags that must be present.

use super::*;

/// How a corpus writes characters a line cannot hold.
#[derive(Clone, Copy)]
enum Escapes {
    /// `\n` is a newline; every other backslash is itself (`corpus.txt`).
    Newlines,
    /// `\n` is a newline and `\\` one backslash (`corpus_clients.txt`,
    /// whose captured SQL contains backslashes).
    NewlinesAndBackslashes,
}

fn unescape(sql: &str, escapes: Escapes) -> String {
    match escapes {
        Escapes::Newlines => sql.replace("\\n", "\n"),
        Escapes::NewlinesAndBackslashes => {
            let mut out = String::with_capacity(sql.len());
            let mut chars = sql.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('\\') => out.push('\\'),
                    Some(other) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => out.push('\\'),
                }
            }
            out
        }
    }
}

fn check(line_no: usize, line: &str, escapes: Escapes) -> Result<(), String> {
    let (expect, sql) = line
        .split_once(" | ")
        .ok_or_else(|| format!("line {line_no}: no ' | '"))?;
    let sql = unescape(sql, escapes);
    let facts = classify(&sql);
    let mut words = expect.split_whitespace();
    let kind = words.next().ok_or("empty expectation")?;
    let first = facts.statements.first();
    match kind {
        "!read" => {
            if facts.is_read() {
                return Err(format!(
                    "line {line_no}: classified as a read: {sql}\n{facts:?}"
                ));
            }
        }
        "read" => {
            if !facts.is_read() {
                return Err(format!("line {line_no}: not a read: {sql}\n{facts:?}"));
            }
        }
        k => {
            let want = Kind::parse(k).ok_or_else(|| format!("line {line_no}: bad kind {k}"))?;
            if facts.is_read() {
                return Err(format!("line {line_no}: a {k} classified as a read: {sql}"));
            }
            if first.map(|s| s.effective_kind()) != Some(want) {
                return Err(format!(
                    "line {line_no}: kind {:?}, want {k}: {sql}",
                    first.map(|s| s.effective_kind())
                ));
            }
        }
    }
    let risks = facts.risks();
    for w in words {
        if let Some(table) = w.strip_prefix("w:") {
            if !facts
                .statements
                .iter()
                .any(|s| s.tables_written.iter().any(|t| t == table))
            {
                return Err(format!("line {line_no}: {table} not written: {facts:?}"));
            }
            continue;
        }
        if let Some(table) = w.strip_prefix("r:") {
            if !facts
                .statements
                .iter()
                .any(|s| s.tables_read.iter().any(|t| t == table))
            {
                return Err(format!("line {line_no}: {table} not read: {facts:?}"));
            }
            continue;
        }
        if let Some(f) = w.strip_prefix("f:") {
            if !facts
                .statements
                .iter()
                .any(|s| s.functions.iter().any(|t| t == f))
            {
                return Err(format!("line {line_no}: {f} not called: {facts:?}"));
            }
            continue;
        }
        let r = Risks::from_name(w).ok_or_else(|| format!("line {line_no}: unknown flag {w}"))?;
        if !risks.contains(r) {
            return Err(format!(
                "line {line_no}: flag {w} missing for {sql}: {:?}",
                risks.names().collect::<Vec<_>>()
            ));
        }
    }
    Ok(())
}

/// Checks every line of a corpus; returns how many statements it holds.
fn run_corpus(name: &str, corpus: &str, escapes: Escapes) -> usize {
    let mut failures = Vec::new();
    let mut n = 0;
    for (i, line) in corpus.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        n += 1;
        if let Err(e) = check(i + 1, line, escapes) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} in {name} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    n
}

#[test]
fn corpus() {
    let n = run_corpus("corpus.txt", include_str!("corpus.txt"), Escapes::Newlines);
    assert!(n >= 150, "the corpus has {n} statements; keep at least 150");
}

/// What psql, pgjdbc, DBeaver and pg_dump really send: their reads must be
/// reads, and what they send that is not a read must be what it is.
#[test]
fn client_corpus() {
    let n = run_corpus(
        "corpus_clients.txt",
        include_str!("corpus_clients.txt"),
        Escapes::NewlinesAndBackslashes,
    );
    assert!(
        n >= 100,
        "the client corpus has {n} statements; keep at least 100"
    );
}

#[test]
fn client_corpus_escapes() {
    let e = Escapes::NewlinesAndBackslashes;
    assert_eq!(unescape("a\\nb", e), "a\nb");
    assert_eq!(unescape("E'\\\\n'", e), "E'\\n'");
    assert_eq!(unescape("E'\\\\\\\\'", e), "E'\\\\'");
    assert_eq!(unescape("'\\x'", e), "'\\x'");
    assert_eq!(unescape("x\\", e), "x\\");
    assert_eq!(unescape("E'\\\\x27'", Escapes::Newlines), "E'\\\\x27'");
}

#[test]
fn unparseable_is_not_a_read() {
    let f = classify("SELEC 1");
    assert!(!f.is_read());
    assert!(f.error.is_some());
    assert!(f.risks().contains(Risks::UNPARSEABLE));
}

#[test]
fn multi_statement_messages_are_judged_whole() {
    let f = classify("SELECT 1; COMMIT; DELETE FROM t WHERE id = 1");
    assert_eq!(f.statements.len(), 3);
    assert!(!f.is_read());
    assert!(f.risks().contains(Risks::MULTI_STATEMENT));
    assert!(classify("SELECT 1; SELECT 2").is_read());
}

#[test]
fn empty_query_is_a_read() {
    assert!(classify("").is_read());
    assert!(classify(" ; ").is_read());
}
