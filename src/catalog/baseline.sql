-- What PostgreSQL and its extensions installed, as digests that a fresh
-- initdb of the same major version reproduces on any machine (names, never
-- OIDs: initdb's collation import shifts the OIDs of information_schema
-- and plpgsql from machine to machine). Rows: ('core', component, '',
-- digest) for the objects initdb made (OID below 16384, not an extension's
-- member), ('extension', name, version, digest) for each installed
-- extension's members, with its schema written as @extschema@. Run with
-- search_path = pg_catalog. src/catalog/baseline.rs compares them with the
-- recorded baseline; scripts/record-baseline.sh records one.
--
-- Nothing in it may reach an object a user can make: no casts to text but
-- pinned ones (regtype and regprocedure values are printed by concat_ws
-- with their output functions; format_type where text is needed), and only
-- built-in functions and operators.
WITH member AS (
  SELECT d.classid, d.objid, d.refobjid AS ext FROM pg_depend d
   WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
),
proc_row AS (
  SELECT p.oid, concat_ws('|', n.nspname, p.proname, oidvectortypes(p.proargtypes),
           p.prorettype::regtype, (SELECT string_agg(format_type(a.t, NULL), ',' ORDER BY a.n)
              FROM unnest(p.proallargtypes) WITH ORDINALITY a(t, n)), p.proargmodes,
           l.lanname, p.prosrc, p.probin, p.provolatile, p.proisstrict, p.prosecdef,
           p.proleakproof, p.proconfig, p.prokind, p.proretset,
           CASE WHEN p.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(p.oid) END,
           a.aggtransfn::regprocedure, a.aggfinalfn::regprocedure, a.aggcombinefn::regprocedure,
           a.aggserialfn::regprocedure, a.aggdeserialfn::regprocedure,
           a.aggmtransfn::regprocedure, a.aggminvtransfn::regprocedure,
           a.aggmfinalfn::regprocedure, a.aggsortop::regoperator) AS r
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    JOIN pg_language l ON l.oid = p.prolang
    LEFT JOIN pg_aggregate a ON a.aggfnoid = p.oid
),
oper_row AS (
  SELECT o.oid, concat_ws('|', n.nspname, o.oprname, o.oprleft::regtype, o.oprright::regtype,
           o.oprresult::regtype, o.oprcode::regprocedure, o.oprrest::regprocedure,
           o.oprjoin::regprocedure, o.oprcom::regoperator, o.oprnegate::regoperator,
           o.oprcanmerge, o.oprcanhash) AS r
    FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
),
type_row AS (
  SELECT t.oid, concat_ws('|', n.nspname, t.typname, t.typtype, t.typinput::regprocedure,
           t.typoutput::regprocedure, t.typreceive::regprocedure, t.typsend::regprocedure,
           t.typmodin::regprocedure, t.typmodout::regprocedure, t.typanalyze::regprocedure,
           t.typsubscript::regprocedure, t.typbasetype::regtype, t.typelem::regtype,
           t.typnotnull, t.typdefault,
           (SELECT string_agg(k.conname || ' ' || pg_get_constraintdef(k.oid), ';' ORDER BY k.conname)
              FROM pg_constraint k WHERE k.contypid = t.oid)) AS r
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
),
cast_row AS (
  SELECT c.oid, concat_ws('|', c.castsource::regtype, c.casttarget::regtype,
           c.castfunc::regprocedure, c.castcontext, c.castmethod) AS r
    FROM pg_cast c
),
family_row AS (
  SELECT f.oid, concat_ws('|', am.amname, n.nspname, f.opfname,
           (SELECT string_agg(concat_ws(' ', o.amoplefttype::regtype, o.amoprighttype::regtype,
                     o.amopstrategy, o.amoppurpose, o.amopopr::regoperator, o.amopsortfamily),
                     ';' ORDER BY format_type(o.amoplefttype, NULL), format_type(o.amoprighttype, NULL), o.amopstrategy)
              FROM pg_amop o WHERE o.amopfamily = f.oid),
           (SELECT string_agg(concat_ws(' ', p.amproclefttype::regtype, p.amprocrighttype::regtype,
                     p.amprocnum, p.amproc::regprocedure),
                     ';' ORDER BY format_type(p.amproclefttype, NULL), format_type(p.amprocrighttype, NULL), p.amprocnum)
              FROM pg_amproc p WHERE p.amprocfamily = f.oid)) AS r
    FROM pg_opfamily f JOIN pg_am am ON am.oid = f.opfmethod
    JOIN pg_namespace n ON n.oid = f.opfnamespace
),
class_row AS (
  SELECT c.oid, concat_ws('|', am.amname, n.nspname, c.opcname, f.opfname, c.opcintype::regtype,
           c.opcdefault, c.opckeytype::regtype) AS r
    FROM pg_opclass c JOIN pg_am am ON am.oid = c.opcmethod
    JOIN pg_namespace n ON n.oid = c.opcnamespace JOIN pg_opfamily f ON f.oid = c.opcfamily
),
rel_row AS (
  SELECT c.oid, concat_ws('|', n.nspname, c.relname, c.relkind,
           CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
           (SELECT string_agg(r.rulename || ' ' || pg_get_ruledef(r.oid), ';' ORDER BY r.rulename)
              FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename <> '_RETURN')) AS r
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p')
),
lang_row AS (
  SELECT l.oid, concat_ws('|', l.lanname, l.lanispl, l.lanpltrusted, l.lanplcallfoid::regprocedure,
           l.laninline::regprocedure, l.lanvalidator::regprocedure) AS r
    FROM pg_language l
),
every_row AS (
  SELECT 'pg_proc'::regclass AS classid, 'proc' AS component, oid, r FROM proc_row
  UNION ALL SELECT 'pg_operator'::regclass, 'operator', oid, r FROM oper_row
  UNION ALL SELECT 'pg_type'::regclass, 'type', oid, r FROM type_row
  UNION ALL SELECT 'pg_cast'::regclass, 'cast', oid, r FROM cast_row
  UNION ALL SELECT 'pg_opfamily'::regclass, 'opfamily', oid, r FROM family_row
  UNION ALL SELECT 'pg_opclass'::regclass, 'opclass', oid, r FROM class_row
  UNION ALL SELECT 'pg_class'::regclass, 'relation', oid, r FROM rel_row
  UNION ALL SELECT 'pg_language'::regclass, 'language', oid, r FROM lang_row
)
SELECT 'core', e.component, '', md5(string_agg(e.r, E'\n' ORDER BY e.r))
  FROM every_row e
 WHERE e.oid < 16384
   AND NOT EXISTS (SELECT 1 FROM member m WHERE m.classid = e.classid AND m.objid = e.oid)
 GROUP BY e.component
UNION ALL
SELECT 'core', 'constraint', '', md5(coalesce(string_agg(
         format_type(k.contypid, NULL) || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid), E'\n'
         ORDER BY format_type(k.contypid, NULL), k.conname), ''))
  FROM pg_constraint k WHERE k.contypid BETWEEN 1 AND 16383
UNION ALL
SELECT 'extension', x.extname, x.extversion,
       md5(coalesce(string_agg(e.n, E'\n' ORDER BY e.n), ''))
  FROM pg_extension x JOIN pg_namespace s ON s.oid = x.extnamespace
  LEFT JOIN member m ON m.ext = x.oid
  LEFT JOIN LATERAL (
    SELECT replace(replace(r.component || '|' || r.r, '|' || s.nspname || '|', '|@extschema@|'),
                   quote_ident(s.nspname) || '.', '@extschema@.') AS n
      FROM every_row r WHERE r.classid = m.classid AND r.oid = m.objid) e ON true
 GROUP BY x.extname, x.extversion
