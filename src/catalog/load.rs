//! Reading one database's user-defined code from its catalog: one round
//! trip, one read-only REPEATABLE READ transaction, so every list and the
//! fingerprint describe the same moment.
//!
//! Objects with OIDs from `FirstNormalObjectId` (16384) up are read one by
//! one. Below that initdb made them, but a superuser can replace them in
//! place: [`super::baseline`] compares digests of them with what
//! PostgreSQL ships. The
//! session sets `search_path` to `pg_catalog` alone, so the definitions
//! PostgreSQL deparses (views, CHECK constraints, policies) name every user
//! object with its schema.

use std::collections::HashMap;

use tokio_postgres::{Client, SimpleQueryMessage};

/// A statement of the fingerprint: for the rows that describe user code,
/// and for the catalogs of built-in code a superuser can change in place,
/// their count and a SHA-256 of every row version's position and creating
/// transaction (`ctid`, `xmin`). A sum of the transaction ids would not do:
/// one can be forged (burn transaction ids until a change's id balances the
/// sum, a red-team attack did). A row version's (`ctid`, `xmin`) pair is
/// never reused, so any change to the set is seen. (CREATE OR REPLACE keeps
/// a built-in's OID; `baseline` tells whether it still is what PostgreSQL
/// shipped.) Any CREATE, ALTER, DROP or CREATE OR REPLACE of such an object
/// changes it. Temporary objects are in a second column: the poll leaves
/// them out (another session's are out of every other session's reach),
/// but a session that asks for a new snapshot may have made its own (user
/// code in a write may create a temporary view that shadows a name), so
/// the check before such a reload compares both. VACUUM and ANALYZE, which
/// update `pg_class` in place, change neither (VACUUM FULL of a catalog
/// moves its rows: one reload).
///
/// Every query of the loader is written so that no object a user can make
/// runs in it: no cast to or from text that PostgreSQL does as I/O
/// conversion (a user may create `CAST (int8 AS text)` and `||` with a
/// number would call it), only calls of built-in functions and pinned
/// casts; `concat_ws` prints its arguments with their types' own output
/// functions.
pub const FINGERPRINT: &str = "
WITH temp_ns AS (SELECT oid FROM pg_namespace WHERE nspname ~ '^pg_(toast_)?temp_')
SELECT concat_ws(' ',
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_proc),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_operator),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_class
     WHERE oid >= 16384 AND relnamespace NOT IN (SELECT oid FROM temp_ns)),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_rewrite
     WHERE ev_class NOT IN (SELECT c.oid FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM temp_ns))),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_type
     WHERE typnamespace NOT IN (SELECT oid FROM temp_ns)),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_constraint),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_attrdef),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_index
     WHERE indexprs IS NOT NULL OR indpred IS NOT NULL),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_policy),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_cast),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_trigger WHERE NOT tgisinternal),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', a.ctid, a.xmin), ',' ORDER BY a.ctid), 'UTF8')), 'hex')) FROM pg_attribute a
     WHERE a.attrelid >= 16384 AND a.atttypid >= 16384 AND a.attrelid NOT IN
       (SELECT c.oid FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM temp_ns))),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_namespace),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_inherits),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_depend
     WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_extension),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_amop),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_amproc),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_opclass),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_opfamily),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_aggregate),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_language),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_event_trigger),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_range)),
  concat_ws(' ',
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_class
     WHERE relnamespace IN (SELECT oid FROM temp_ns)),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_rewrite
     WHERE ev_class IN (SELECT c.oid FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM temp_ns))),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_type
     WHERE typnamespace IN (SELECT oid FROM temp_ns)),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', a.ctid, a.xmin), ',' ORDER BY a.ctid), 'UTF8')), 'hex')) FROM pg_attribute a
     WHERE a.atttypid >= 16384 AND a.attrelid IN
       (SELECT c.oid FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM temp_ns))))";

/// What the rows of [`super::baseline::QUERY`] are read from: for every
/// catalog it reads, the count and a SHA-256 of the row versions (`ctid`,
/// `xmin`) of PostgreSQL's own objects (OID below 16384) and of extension
/// members, whose digests it makes, and of every row those digests name
/// or contain (namespaces, access methods, aggregates, operator-family
/// members, domain constraints, the columns and rules of those relations).
/// Objects users make change none of it. While it stays the same, the
/// baseline rows of the last load still hold and are not read again (they
/// take most of a load: 64 of 80 ms on a fresh database).
const BASELINE_KEY: &str = "
WITH member AS (SELECT classid, objid FROM pg_depend
                 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'),
rels AS (SELECT oid FROM pg_class
          WHERE oid < 16384 OR oid IN (SELECT objid FROM member WHERE classid = 'pg_class'::regclass))
SELECT concat_ws(' ',
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_proc WHERE oid < 16384 OR oid IN (SELECT objid FROM member WHERE classid = 'pg_proc'::regclass)),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_operator WHERE oid < 16384 OR oid IN (SELECT objid FROM member WHERE classid = 'pg_operator'::regclass)),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_type WHERE oid < 16384 OR oid IN (SELECT objid FROM member WHERE classid = 'pg_type'::regclass)),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_cast WHERE oid < 16384 OR oid IN (SELECT objid FROM member WHERE classid = 'pg_cast'::regclass)),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_opfamily WHERE oid < 16384 OR oid IN (SELECT objid FROM member WHERE classid = 'pg_opfamily'::regclass)),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_opclass WHERE oid < 16384 OR oid IN (SELECT objid FROM member WHERE classid = 'pg_opclass'::regclass)),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_language WHERE oid < 16384 OR oid IN (SELECT objid FROM member WHERE classid = 'pg_language'::regclass)),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_class WHERE oid < 16384 OR oid IN (SELECT objid FROM member WHERE classid = 'pg_class'::regclass)),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_rewrite WHERE ev_class IN (SELECT oid FROM rels)),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_attribute WHERE attrelid IN (SELECT oid FROM rels)),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_constraint WHERE contypid <> 0),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_amop),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_amproc),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_aggregate),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_namespace),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_am),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_extension),
  (SELECT concat_ws(':', count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(string_agg(concat_ws('.', ctid, xmin), ',' ORDER BY ctid), 'UTF8')), 'hex')) FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'))";

/// The queries of a full load, in the order [`Raw::from_results`] reads
/// them, after the fingerprint.
const QUERIES: &[&str] = &[
    // Functions: who may call them with one argument (attribute notation),
    // and whether an extension installed them.
    // The body is read where it resolves names by the caller's search_path
    // (a string body in SQL or PL/pgSQL without a SET search_path of its
    // own), and for internal functions (the C function it names).
    "SELECT p.oid, n.nspname, p.proname, p.provolatile, p.pronargs, p.pronargdefaults,
            coalesce((SELECT x.extname FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid
                       WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                         AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'), ''),
            l.lanname,
            CASE WHEN l.lanname = 'internal'
                   OR (l.lanname IN ('sql', 'plpgsql') AND p.prosqlbody IS NULL
                       AND NOT coalesce(array_to_string(p.proconfig, ' ') ~* 'search_path=', false))
                 THEN p.prosrc ELSE '' END
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       JOIN pg_language l ON l.oid = p.prolang
      WHERE p.oid >= 16384
         OR (l.lanname IN ('sql', 'plpgsql') AND p.prosqlbody IS NULL
             AND NOT coalesce(array_to_string(p.proconfig, ' ') ~* 'search_path=', false))",
    // Operators and the function behind each.
    "SELECT n.nspname, o.oprname, o.oprcode::oid, coalesce(fn.nspname, ''), coalesce(f.proname, '')
       FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
       LEFT JOIN pg_proc f ON f.oid = o.oprcode
       LEFT JOIN pg_namespace fn ON fn.oid = f.pronamespace
      WHERE o.oid >= 16384",
    // Views and their definitions.
    "SELECT n.nspname, c.relname, pg_get_viewdef(c.oid)
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'v' AND c.oid >= 16384",
    // Foreign tables, and the partitioned or inheritance parents that scan
    // them.
    "WITH RECURSIVE up(oid) AS (
         SELECT oid FROM pg_class WHERE relkind = 'f'
         UNION SELECT i.inhparent FROM pg_inherits i JOIN up ON i.inhrelid = up.oid)
     SELECT n.nspname, c.relname FROM up JOIN pg_class c ON c.oid = up.oid
       JOIN pg_namespace n ON n.oid = c.relnamespace",
    // Row-level security policies that filter reads.
    "SELECT n.nspname, c.relname,
            quote_ident(n.nspname) || '.' || quote_ident(c.relname),
            pg_get_expr(p.polqual, p.polrelid)
       FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE p.polcmd IN ('r', '*') AND p.polqual IS NOT NULL",
    // Domains' CHECK constraints.
    "SELECT t.oid, pg_get_expr(k.conbin, 0)
       FROM pg_type t JOIN pg_constraint k ON k.contypid = t.oid
      WHERE t.typtype = 'd' AND t.oid >= 16384 AND k.contype = 'c'",
    // User types and what each contains: an array its element, a domain its
    // base, a range its subtype, a multirange its range, a composite (and
    // the row type of each table) its relation.
    "SELECT t.oid, n.nspname, t.typname, coalesce(rn.nspname, ''), coalesce(rc.relname, ''),
            t.typelem, t.typbasetype, coalesce(r.rngsubtype, 0), coalesce(m.rngtypid, 0),
            coalesce((SELECT x.extname FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid
                       WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                         AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'), '')
       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
       LEFT JOIN pg_class rc ON rc.oid = t.typrelid
       LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
       LEFT JOIN pg_range r ON r.rngtypid = t.oid
       LEFT JOIN pg_range m ON m.rngmultitypid = t.oid
      WHERE t.oid >= 16384",
    // The functions a user type calls with no name in the text, which may
    // be PL code (or a user's C): its input, typmod_in, subscript handler
    // and a range's canonical function run while PostgreSQL parses a
    // statement (a literal of the type, `t(n)`, `x[1]`); output, send,
    // receive, typmod_out, analyze and a range's subtype_diff (range
    // selectivity, GiST penalty and picksplit) when it plans or runs one.
    "SELECT t.oid, f.oid, fn.nspname, f.proname, c.at_parse
       FROM pg_type t
       LEFT JOIN pg_range r ON r.rngtypid = t.oid
       CROSS JOIN LATERAL (VALUES (t.typinput::oid, true), (t.typmodin::oid, true),
                                  (t.typsubscript::oid, true), (r.rngcanonical::oid, true),
                                  (t.typoutput::oid, false), (t.typreceive::oid, false),
                                  (t.typsend::oid, false), (t.typmodout::oid, false),
                                  (t.typanalyze::oid, false), (r.rngsubdiff::oid, false))
            AS c(function, at_parse)
       JOIN pg_proc f ON f.oid = c.function
       JOIN pg_namespace fn ON fn.oid = f.pronamespace
      WHERE t.oid >= 16384",
    // Columns of user types: the row type contains the column's type.
    "SELECT c.reltype, a.atttypid
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      WHERE a.atttypid >= 16384 AND a.attnum > 0 AND NOT a.attisdropped AND c.reltype <> 0",
    // Casts users created that call a function.
    "SELECT k.castsource, k.casttarget, k.castfunc, fn.nspname, f.proname,
            coalesce((SELECT x.extname FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid
                       WHERE d.classid = 'pg_cast'::regclass AND d.objid = k.oid
                         AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'), '')
       FROM pg_cast k JOIN pg_proc f ON f.oid = k.castfunc
       JOIN pg_namespace fn ON fn.oid = f.pronamespace
      WHERE k.oid >= 16384",
    // Operator-class members users added (comparison, hashing, sort support
    // and the operators of an index, a partition key, ORDER BY or DISTINCT):
    // the function each calls, the types it is for, and the extension of
    // the row or its family.
    "WITH ext AS (
       SELECT d.classid, d.objid, x.extname FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid
        WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e')
     SELECT p.amproclefttype, p.amprocrighttype, f.oid, fn.nspname, f.proname,
            coalesce((SELECT extname FROM ext WHERE classid = 'pg_amproc'::regclass AND objid = p.oid),
                     (SELECT extname FROM ext WHERE classid = 'pg_opfamily'::regclass AND objid = p.amprocfamily), ''),
            am.amname || ' ' || fam.opfname
       FROM pg_amproc p JOIN pg_proc f ON f.oid = p.amproc
       JOIN pg_namespace fn ON fn.oid = f.pronamespace
       JOIN pg_opfamily fam ON fam.oid = p.amprocfamily JOIN pg_am am ON am.oid = fam.opfmethod
      WHERE p.oid >= 16384
     UNION ALL
     SELECT o.amoplefttype, o.amoprighttype, f.oid, fn.nspname, f.proname,
            coalesce((SELECT extname FROM ext WHERE classid = 'pg_amop'::regclass AND objid = o.oid),
                     (SELECT extname FROM ext WHERE classid = 'pg_opfamily'::regclass AND objid = o.amopfamily), ''),
            am.amname || ' ' || fam.opfname
       FROM pg_amop o JOIN pg_operator op ON op.oid = o.amopopr
       JOIN pg_proc f ON f.oid = op.oprcode JOIN pg_namespace fn ON fn.oid = f.pronamespace
       JOIN pg_opfamily fam ON fam.oid = o.amopfamily JOIN pg_am am ON am.oid = fam.opfmethod
      WHERE o.oid >= 16384",
    // Relations with triggers of their own: writing them may run any code.
    "SELECT DISTINCT n.nspname, c.relname
       FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE NOT g.tgisinternal",
    // What a write to a relation evaluates besides its text (see
    // `super::writes`): column defaults and generated columns, CHECK
    // constraints (NOT VALID ones too: UPDATE checks them), index
    // expressions and predicates, and the row-level security expressions
    // of writes.
    "SELECT n.nspname, c.relname, w.what, w.expr FROM (
         SELECT d.adrelid AS rel, 'the expression of column ' || quote_ident(a.attname) AS what,
                pg_get_expr(d.adbin, d.adrelid) AS expr
           FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
         UNION ALL
         SELECT k.conrelid, 'constraint ' || quote_ident(k.conname), pg_get_expr(k.conbin, k.conrelid)
           FROM pg_constraint k WHERE k.contype = 'c' AND k.conrelid <> 0
         UNION ALL
         SELECT i.indrelid, 'index ' || quote_ident(x.relname), pg_get_expr(i.indexprs, i.indrelid)
           FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid WHERE i.indexprs IS NOT NULL
         UNION ALL
         SELECT i.indrelid, 'the predicate of index ' || quote_ident(x.relname), pg_get_expr(i.indpred, i.indrelid)
           FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid WHERE i.indpred IS NOT NULL
         UNION ALL
         SELECT p.polrelid, 'row-level security policy ' || quote_ident(p.polname), pg_get_expr(p.polwithcheck, p.polrelid)
           FROM pg_policy p WHERE p.polwithcheck IS NOT NULL
         UNION ALL
         SELECT p.polrelid, 'row-level security policy ' || quote_ident(p.polname), pg_get_expr(p.polqual, p.polrelid)
           FROM pg_policy p WHERE p.polcmd NOT IN ('r', '*') AND p.polqual IS NOT NULL
       ) w JOIN pg_class c ON c.oid = w.rel JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE w.expr IS NOT NULL",
    // Rules other than a view's own: a write to the relation runs them.
    "SELECT n.nspname, c.relname, r.rulename
       FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE r.rulename <> '_RETURN'",
    // Partitions and inheritance children: a write to the parent writes
    // them.
    "SELECT pn.nspname, p.relname, cn.nspname, c.relname
       FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
       JOIN pg_namespace pn ON pn.oid = p.relnamespace
       JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace",
    // Foreign keys whose action writes the referencing table when the
    // referenced one is updated or deleted from (CASCADE, SET NULL, SET
    // DEFAULT).
    "SELECT DISTINCT fn.nspname, f.relname, cn.nspname, c.relname
       FROM pg_constraint k JOIN pg_class f ON f.oid = k.confrelid
       JOIN pg_namespace fn ON fn.oid = f.relnamespace
       JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
      WHERE k.contype = 'f' AND (k.confupdtype IN ('c', 'n', 'd') OR k.confdeltype IN ('c', 'n', 'd'))",
];

/// A function users or extensions created.
#[derive(Debug, Clone)]
pub struct Function {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// `i`, `s` or `v`.
    pub volatility: char,
    pub nargs: i64,
    pub nargdefaults: i64,
    /// The extension it is a member of, if any.
    pub extension: Option<String>,
    pub language: String,
    /// The body, where it resolves names by the caller's search_path (or
    /// names the C function of an internal one); empty otherwise.
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct Operator {
    pub schema: String,
    pub name: String,
    pub function: u32,
    pub function_schema: String,
    pub function_name: String,
}

#[derive(Debug, Clone)]
pub struct Named {
    pub schema: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct View {
    pub schema: String,
    pub name: String,
    pub definition: String,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub schema: String,
    pub table: String,
    /// The table's name, quoted for SQL.
    pub quoted: String,
    pub using: String,
}

#[derive(Debug, Clone)]
pub struct Type {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// The relation whose row type this is.
    pub relation: Option<Named>,
    /// Types a value of this type contains or is checked as.
    pub contains: Vec<u32>,
    pub extension: Option<String>,
    /// Functions the type calls with no name in the text (its input and
    /// output functions, typmod_in, a range's subtype_diff and canonical).
    pub calls: Vec<TypeCall>,
}

/// A function a type calls with no name in the text.
#[derive(Debug, Clone)]
pub struct TypeCall {
    pub function: u32,
    pub schema: String,
    pub name: String,
    /// PostgreSQL calls it while it parses a statement (parse analysis of
    /// the Parse message, before any Bind), not only when it plans or runs
    /// one.
    pub at_parse: bool,
}

#[derive(Debug, Clone)]
pub struct Cast {
    pub source: u32,
    pub target: u32,
    pub function: u32,
    pub function_schema: String,
    pub function_name: String,
    pub extension: Option<String>,
}

/// An operator-class member (support function or operator) users added.
#[derive(Debug, Clone)]
pub struct ClassMember {
    pub left: u32,
    pub right: u32,
    pub function: u32,
    pub function_schema: String,
    pub function_name: String,
    pub extension: Option<String>,
    /// `btree integer_ops`, for reviewers.
    pub family: String,
}

/// An expression a write to a relation evaluates.
#[derive(Debug, Clone)]
pub struct WriteExpression {
    pub relation: Named,
    /// `constraint positive`, for reviewers.
    pub what: String,
    /// PostgreSQL's deparse, with `pg_catalog` alone on the search path.
    pub expression: String,
}

/// Everything a load read, before any of it is judged.
#[derive(Debug, Clone, Default)]
pub struct Raw {
    pub fingerprint: String,
    /// Of temporary objects (see [`FINGERPRINT`]).
    pub temporary_fingerprint: String,
    pub functions: Vec<Function>,
    pub operators: Vec<Operator>,
    pub views: Vec<View>,
    pub foreign: Vec<Named>,
    pub policies: Vec<Policy>,
    /// Domain OID and one CHECK expression.
    pub checks: Vec<(u32, String)>,
    pub types: Vec<Type>,
    pub casts: Vec<Cast>,
    pub class_members: Vec<ClassMember>,
    pub triggers: Vec<Named>,
    /// Expressions a write to a relation evaluates.
    pub write_expressions: Vec<WriteExpression>,
    /// Rules on relations (a view's own excepted): the relation, the rule.
    pub rules: Vec<(Named, String)>,
    /// (parent, child) for every partition and inheritance child.
    pub inherits: Vec<(Named, Named)>,
    /// (referenced, referencing) for foreign keys whose actions write.
    pub cascades: Vec<(Named, Named)>,
    /// The server's major version.
    pub major: u32,
    /// Some event trigger is enabled (or it could not be read): any DDL
    /// may run user code.
    pub event_triggers: bool,
    pub server_encoding: String,
    /// The rows of `baseline.sql`: (kind, name, version, digest).
    pub baseline: Vec<[String; 4]>,
    /// What they were read from ([`BASELINE_KEY`]).
    pub baseline_key: String,
}

/// Sets that precede every load and fingerprint: deparsed names carry
/// their schema, and a catalog query never waits long.
const PREAMBLE: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SET LOCAL search_path = pg_catalog;
SET LOCAL statement_timeout = '30s';
SET LOCAL lock_timeout = '5s';";

/// Reads the fingerprint alone: of shared objects, and of temporary ones.
pub async fn fingerprint(client: &Client) -> Result<(String, String), tokio_postgres::Error> {
    let sql = format!("{PREAMBLE}\n{FINGERPRINT};\nCOMMIT");
    let results = run(client, &sql).await?;
    let row = results.get(4).and_then(|rows| rows.first());
    Ok(row.map_or_else(Default::default, |r| (text(r, 0), text(r, 1))))
}

/// The baseline rows of a load and what they were read from
/// ([`BASELINE_KEY`]).
#[derive(Debug, Clone, Default)]
pub struct BaselineRows {
    pub key: String,
    pub rows: Vec<[String; 4]>,
}

/// Reads everything, in one REPEATABLE READ transaction and two round
/// trips: the fingerprints and the baseline's key first, then the rest;
/// the baseline rows only when their key is not `cached`'s.
pub async fn load(client: &Client, cached: Option<&BaselineRows>) -> Result<Raw, String> {
    let first = format!("{PREAMBLE}\n{FINGERPRINT};\n{BASELINE_KEY};");
    let head = match run(client, &first).await {
        Ok(r) => r,
        Err(e) => {
            let _ = client.simple_query("ROLLBACK").await;
            return Err(e.to_string());
        }
    };
    // BEGIN and three SETs, then the fingerprints and the baseline's key.
    let mut head = head.into_iter().skip(4);
    let fingerprint = head.next().unwrap_or_default();
    let key = head
        .next()
        .unwrap_or_default()
        .first()
        .map(|r| text(r, 0))
        .unwrap_or_default();
    let reuse = cached.filter(|c| !key.is_empty() && c.key == key);
    let mut sql = String::new();
    for q in QUERIES {
        sql.push_str(q);
        sql.push_str(";\n");
    }
    sql.push_str(
        "SELECT current_setting('server_version_num'), current_setting('server_encoding'),
                (SELECT count(*) FROM pg_event_trigger WHERE evtenabled <> 'D');\n",
    );
    if reuse.is_none() {
        sql.push_str(super::baseline::QUERY);
        sql.push_str(";\n");
    }
    sql.push_str("COMMIT");
    let results = match run(client, &sql).await {
        Ok(r) => r,
        Err(e) => {
            let _ = client.simple_query("ROLLBACK").await;
            return Err(e.to_string());
        }
    };
    let mut sets = results.into_iter();
    let mut next = || sets.next().unwrap_or_default();
    let mut raw = Raw {
        fingerprint: fingerprint.first().map(|r| text(r, 0)).unwrap_or_default(),
        temporary_fingerprint: fingerprint.first().map(|r| text(r, 1)).unwrap_or_default(),
        ..Raw::default()
    };
    for r in next() {
        raw.functions.push(Function {
            oid: num(&r, 0) as u32,
            schema: text(&r, 1),
            name: text(&r, 2),
            volatility: text(&r, 3).chars().next().unwrap_or('v'),
            nargs: num(&r, 4),
            nargdefaults: num(&r, 5),
            extension: some(text(&r, 6)),
            language: text(&r, 7),
            body: text(&r, 8),
        });
    }
    for r in next() {
        raw.operators.push(Operator {
            schema: text(&r, 0),
            name: text(&r, 1),
            function: num(&r, 2) as u32,
            function_schema: text(&r, 3),
            function_name: text(&r, 4),
        });
    }
    for r in next() {
        raw.views.push(View {
            schema: text(&r, 0),
            name: text(&r, 1),
            definition: text(&r, 2),
        });
    }
    for r in next() {
        raw.foreign.push(Named {
            schema: text(&r, 0),
            name: text(&r, 1),
        });
    }
    for r in next() {
        raw.policies.push(Policy {
            schema: text(&r, 0),
            table: text(&r, 1),
            quoted: text(&r, 2),
            using: text(&r, 3),
        });
    }
    for r in next() {
        raw.checks.push((num(&r, 0) as u32, text(&r, 1)));
    }
    for r in next() {
        let relation = Some(text(&r, 4))
            .filter(|n| !n.is_empty())
            .map(|name| Named {
                schema: text(&r, 3),
                name,
            });
        raw.types.push(Type {
            oid: num(&r, 0) as u32,
            schema: text(&r, 1),
            name: text(&r, 2),
            relation,
            contains: (5..9)
                .map(|i| num(&r, i) as u32)
                .filter(|o| *o != 0)
                .collect(),
            extension: some(text(&r, 9)),
            calls: Vec::new(),
        });
    }
    let by_oid: HashMap<u32, usize> = raw
        .types
        .iter()
        .enumerate()
        .map(|(i, t)| (t.oid, i))
        .collect();
    for r in next() {
        if let Some(&i) = by_oid.get(&(num(&r, 0) as u32)) {
            raw.types[i].calls.push(TypeCall {
                function: num(&r, 1) as u32,
                schema: text(&r, 2),
                name: text(&r, 3),
                at_parse: text(&r, 4) == "t",
            });
        }
    }
    let columns = next();
    for r in next() {
        raw.casts.push(Cast {
            source: num(&r, 0) as u32,
            target: num(&r, 1) as u32,
            function: num(&r, 2) as u32,
            function_schema: text(&r, 3),
            function_name: text(&r, 4),
            extension: some(text(&r, 5)),
        });
    }
    for r in next() {
        raw.class_members.push(ClassMember {
            left: num(&r, 0) as u32,
            right: num(&r, 1) as u32,
            function: num(&r, 2) as u32,
            function_schema: text(&r, 3),
            function_name: text(&r, 4),
            extension: some(text(&r, 5)),
            family: text(&r, 6),
        });
    }
    for r in next() {
        raw.triggers.push(Named {
            schema: text(&r, 0),
            name: text(&r, 1),
        });
    }
    for r in next() {
        raw.write_expressions.push(WriteExpression {
            relation: named(&r, 0),
            what: text(&r, 2),
            expression: text(&r, 3),
        });
    }
    for r in next() {
        raw.rules.push((named(&r, 0), text(&r, 2)));
    }
    for r in next() {
        raw.inherits.push((named(&r, 0), named(&r, 2)));
    }
    for r in next() {
        raw.cascades.push((named(&r, 0), named(&r, 2)));
    }
    let settings = next();
    raw.major = settings.first().map_or(0, |r| num(r, 0) as u32 / 10_000);
    raw.server_encoding = settings.first().map(|r| text(r, 1)).unwrap_or_default();
    raw.event_triggers = settings.first().is_none_or(|r| num(r, 2) != 0);
    match reuse {
        Some(c) => raw.baseline.clone_from(&c.rows),
        None => {
            for r in next() {
                raw.baseline
                    .push([text(&r, 0), text(&r, 1), text(&r, 2), text(&r, 3)]);
            }
        }
    }
    raw.baseline_key = key;
    // Row types contain their columns' types.
    let by_oid: std::collections::HashMap<u32, usize> = raw
        .types
        .iter()
        .enumerate()
        .map(|(i, t)| (t.oid, i))
        .collect();
    for r in columns {
        let (row, column) = (num(&r, 0) as u32, num(&r, 1) as u32);
        if let Some(&i) = by_oid.get(&row) {
            raw.types[i].contains.push(column);
        }
    }
    Ok(raw)
}

type Rows = Vec<Vec<Option<String>>>;

/// Runs a multi-statement simple query; the rows of each statement.
async fn run(client: &Client, sql: &str) -> Result<Vec<Rows>, tokio_postgres::Error> {
    let mut results = Vec::new();
    let mut rows: Rows = Vec::new();
    for m in client.simple_query(sql).await? {
        match m {
            SimpleQueryMessage::Row(r) => {
                rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            SimpleQueryMessage::CommandComplete(_) => results.push(std::mem::take(&mut rows)),
            _ => {}
        }
    }
    Ok(results)
}

/// The relation named by columns `i` (schema) and `i + 1` (name).
fn named(r: &[Option<String>], i: usize) -> Named {
    Named {
        schema: text(r, i),
        name: text(r, i + 1),
    }
}

fn some(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
}

fn text(r: &[Option<String>], i: usize) -> String {
    r.get(i).cloned().flatten().unwrap_or_default()
}

fn num(r: &[Option<String>], i: usize) -> i64 {
    r.get(i)
        .and_then(|v| v.as_deref())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
