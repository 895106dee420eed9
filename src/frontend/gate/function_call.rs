//! The FunctionCall message: a call of a function by its OID, with no SQL
//! a reviewer could be shown. Only the calls that read a large object are
//! let through, as reads (libpq's large-object interface, which pg_dump
//! uses to dump them, works this way): `lo_open` for reading, `loread`,
//! `lo_lseek`, `lo_tell` and `lo_close`. Everything else is refused. The
//! OIDs are PostgreSQL's own (fixed in its catalog, the same in every
//! database); whether the function behind an OID is still PostgreSQL's
//! own is the catalog's question, as for every built-in a read names.

use std::sync::Arc;

use super::verdict::{answer, malformed};
use super::{unknown, Gate, Need, Verdict};
use crate::classify::{Facts, Kind, Risks, StatementFacts};
use crate::policy::Decision;
use crate::protocol::frontend as fe;

const LO_OPEN: u32 = 952;
/// `lo_open`'s mode bit for writing (libpq's INV_WRITE).
const INV_WRITE: i32 = 0x0002_0000;

/// The large-object calls that cannot write, by OID.
const READS: &[(u32, &str)] = &[
    (LO_OPEN, "lo_open"),
    (953, "lo_close"),
    (954, "loread"),
    (956, "lo_lseek"),
    (958, "lo_tell"),
    (3170, "lo_lseek64"),
    (3171, "lo_tell64"),
];

/// The name of the large-object read `call` is, if it is one.
fn large_object_read(call: &fe::FunctionCall<'_>) -> Option<&'static str> {
    let &(oid, name) = READS.iter().find(|(oid, _)| *oid == call.function)?;
    if oid == LO_OPEN {
        // lo_open(oid, mode): opened for reading only (a NULL mode calls
        // nothing: the function is strict).
        match call.int4(1)? {
            Some(mode) if mode & INV_WRITE != 0 => return None,
            _ => {}
        }
    }
    Some(name)
}

impl Gate {
    pub(super) fn function_call(&mut self, body: &[u8]) -> Verdict {
        let Ok(call) = fe::parse_function_call(body) else {
            return malformed("FunctionCall");
        };
        if let Some(name) = large_object_read(&call) {
            let mut s = StatementFacts::new(Kind::Read, "FUNCTION CALL");
            s.functions.push(format!("pg_catalog.{name}"));
            let facts = Arc::new(Facts {
                statements: vec![s],
                error: None,
            });
            let d = self.decided(&facts, &[]);
            self.need = Need::ReadOnly;
            return self.verdict(&d, || {
                (format!("(FunctionCall) pg_catalog.{name}(...)"), Vec::new())
            });
        }
        let facts = unknown("FUNCTION CALL", Risks::UNKNOWN_FUNCTION);
        // A call by OID cannot be shown to a reviewer: refused.
        match self.decide(&facts) {
            Decision::Allow { .. } => {
                self.user_code_may_run();
                Verdict::Forward
            }
            d => answer(
                &facts,
                &Decision::Deny {
                    rule: d.rule().to_string(),
                    message: "function calls by OID cannot be reviewed; call the function in SQL"
                        .into(),
                },
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(function: u32, formats: &[i16], args: &[Option<&[u8]>]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&function.to_be_bytes());
        b.extend_from_slice(&(formats.len() as i16).to_be_bytes());
        for f in formats {
            b.extend_from_slice(&f.to_be_bytes());
        }
        b.extend_from_slice(&(args.len() as i16).to_be_bytes());
        for a in args {
            match a {
                Some(v) => {
                    b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    b.extend_from_slice(v);
                }
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        b.extend_from_slice(&1i16.to_be_bytes());
        b
    }

    fn read(body: &[u8]) -> Option<&'static str> {
        large_object_read(&fe::parse_function_call(body).ok()?)
    }

    #[test]
    fn only_reads_of_large_objects_pass() {
        let oid = 16400u32.to_be_bytes();
        let read_mode = 0x0004_0000i32.to_be_bytes();
        let write_mode = (0x0004_0000i32 | INV_WRITE).to_be_bytes();
        assert_eq!(
            read(&call(LO_OPEN, &[1], &[Some(&oid), Some(&read_mode)])),
            Some("lo_open")
        );
        assert_eq!(
            read(&call(LO_OPEN, &[1], &[Some(&oid), Some(&write_mode)])),
            None
        );
        assert_eq!(
            read(&call(LO_OPEN, &[0], &[Some(b"16400"), Some(b"262144")])),
            Some("lo_open")
        );
        assert_eq!(
            read(&call(LO_OPEN, &[0], &[Some(b"16400"), Some(b"393216")])),
            None
        );
        assert_eq!(
            read(&call(
                LO_OPEN,
                &[0, 1],
                &[Some(b"16400"), Some(&write_mode)]
            )),
            None
        );
        assert_eq!(read(&call(LO_OPEN, &[1], &[Some(&oid), Some(b"xy")])), None);
        assert_eq!(
            read(&call(
                954,
                &[1],
                &[Some(&[0, 0, 0, 0]), Some(&[0, 0, 16, 0])]
            )),
            Some("loread")
        );
        // lowrite, lo_creat, lo_unlink, lo_truncate, lo_import ...
        for oid in [955u32, 957, 964, 1004, 764, 3172] {
            assert_eq!(
                read(&call(oid, &[1], &[Some(&[0, 0, 0, 0])])),
                None,
                "{oid}"
            );
        }
        // Bytes after the message's end: the server rejects it, so is it.
        let mut trailing = call(954, &[1], &[Some(&[0, 0, 0, 0]), Some(&[0, 0, 16, 0])]);
        trailing.push(0);
        assert_eq!(read(&trailing), None);
    }
}
