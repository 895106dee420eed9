#!/usr/bin/env python3
"""Red-team runner for airlock.

For every attack:
  (a) a fresh database (from a template with dblink, postgres_fdw, tablefunc, xml2, ...)
      gets the attack's planted objects, created DIRECTLY upstream as a superuser;
  (b) positive control: the attack's message sequence is sent directly to PostgreSQL and
      must change the fingerprint (marker row count / victim row count);
  (c) the fingerprint is reset, and the same sequence is sent through airlock;
  (d) PASS (no change), LEAK (changed without approval), BROKEN (positive control failed).

Usage: python3 attacks.py --airlock-bin PATH [--policies DIR] [--only SUBSTR] [--report FILE]
It starts its own PostgreSQL cluster and airlock on free ports and tears them down.
"""
import argparse
import json
import os
import re
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from pgwire import Conn, Msg, Q, P, B, D, E, C, S, H, summarize  # noqa: E402

PGBIN = "/usr/lib/postgresql/15/bin"
PGUSER_OS = "pgrt"
STEP_TIMEOUT = 5.0        # per message exchange
ATTACK_TIMEOUT = 40       # whole attack incl. setup, both runs (hard alarm)
CATALOG_WAIT = 1.5        # let airlock's catalog_poll (1 s) see planted objects


class HardTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise HardTimeout()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# --------------------------------------------------------------------------------------
# attack definitions
# --------------------------------------------------------------------------------------

HIT = "rtlib.hit"      # writes a marker row through dblink (escapes read-only backstop)
LOCAL = "rtlib.local"  # writes a marker row directly (works only without backstop)

ATTACKS = []


def attack(cls, name, proto, block, setup, steps, startup=None, desc="", extra_dbs=None,
           catalog_wait=True, direct_steps=None):
    ATTACKS.append(dict(cls=cls, name=name, proto=proto, block=block, setup=setup,
                        steps=steps, startup=startup, desc=desc, extra_dbs=extra_dbs or {},
                        catalog_wait=catalog_wait, direct_steps=direct_steps))


def plfn(sig, rettype, body_ret, writer=HIT, tag="x", lang_extra="", cond=None):
    """A plpgsql function that writes a marker, then returns body_ret."""
    w = "PERFORM %s('%s');" % (writer, tag)
    if cond:
        w = "IF %s THEN %s END IF;" % (cond, w)
    return ("CREATE FUNCTION %s RETURNS %s LANGUAGE plpgsql %s AS $f$ BEGIN %s RETURN %s; END $f$;"
            % (sig, rettype, lang_extra, w, body_ret))


# ---- class 1: casts -------------------------------------------------------------------

def cast_int_text(writer, tag, how="AS IMPLICIT"):
    return (plfn("public.rt_int_to_text(int4)", "text",
                 "pg_catalog.textin(pg_catalog.int4out($1))", writer, tag, "IMMUTABLE STRICT")
            + "CREATE CAST (int4 AS text) WITH FUNCTION public.rt_int_to_text(int4) %s;" % how)


attack(1, "cast-int4-text-explicit", "simple", False, cast_int_text(HIT, "c1"),
       [("Q", "SELECT 42::text")],
       desc="user function backs a new cast between two built-in types; text shows only ::text")
attack(1, "cast-concat-number", "extended", False, cast_int_text(HIT, "c2", ""),
       [("EXT", "SELECT 'n=' || 42")],
       desc="'||' with a number: textanycat's SQL body does $2::pg_catalog.text -> user cast")
attack(1, "cast-array-elementwise", "simple", True, cast_int_text(LOCAL, "c3"),
       [("Q", "BEGIN"), ("Q", "SELECT ARRAY[1,2]::text[]"), ("Q", "COMMIT")],
       desc="array cast uses the element cast")
attack(1, "cast-explain-constfold", "simple", False, cast_int_text(HIT, "c4"),
       [("Q", "EXPLAIN SELECT 7::text")],
       desc="EXPLAIN (no ANALYZE) folds the IMMUTABLE cast function at plan time")
attack(1, "cast-quote_literal-body", "extended", True, cast_int_text(LOCAL, "c5", ""),
       [("Q", "BEGIN"), ("EXT", "SELECT quote_literal(42)"), ("Q", "COMMIT")],
       desc="quote_literal(anyelement) body casts $1::pg_catalog.text")
attack(1, "cast-enum-to-json-row_to_json", "simple", False,
       "CREATE TYPE public.mood AS ENUM ('ok');"
       + plfn("public.rt_mood_json(public.mood)", "json", "'\"x\"'::json", HIT, "c6", "STABLE")
       + "CREATE CAST (public.mood AS json) WITH FUNCTION public.rt_mood_json(public.mood);"
       + "CREATE TABLE public.moods(m public.mood); INSERT INTO public.moods VALUES ('ok');",
       [("Q", "SELECT row_to_json(t) FROM moods t")],
       desc="row_to_json uses a user type's cast to json")
attack(1, "cast-implicit-in-where", "extended", True, cast_int_text(LOCAL, "c7"),
       [("Q", "BEGIN"), ("EXT", "SELECT count(*) FROM victim WHERE length(id) = 1"), ("Q", "COMMIT")],
       desc="implicit int->text cast picked silently for length(int)")

# ---- class 2: operator classes / families ---------------------------------------------

def json_opclass(writer, tag):
    s = plfn("public.rt_jcmp(json, json)", "int4",
             "pg_catalog.bttextcmp($1::text, $2::text)", writer, tag, "IMMUTABLE STRICT")
    for fn, op, cmp in (("lt", "<", "< 0"), ("le", "<=", "<= 0"), ("eq", "=", "= 0"),
                        ("ge", ">=", ">= 0"), ("gt", ">", "> 0")):
        s += ("CREATE FUNCTION public.rt_j%s(json, json) RETURNS bool LANGUAGE sql IMMUTABLE "
              "AS 'SELECT public.rt_jcmp($1,$2) %s';" % (fn, cmp))
        s += ("CREATE OPERATOR public.%s (leftarg = json, rightarg = json, function = public.rt_j%s);"
              % (op, fn))
    s += ("CREATE OPERATOR CLASS public.rt_json_ops DEFAULT FOR TYPE json USING btree AS "
          "OPERATOR 1 public.<, OPERATOR 2 public.<=, OPERATOR 3 public.=, OPERATOR 4 public.>=, "
          "OPERATOR 5 public.>, FUNCTION 1 public.rt_jcmp(json, json);")
    s += ("CREATE TABLE public.docs(j json); INSERT INTO public.docs VALUES "
          "('{\"a\":1}'),('{\"b\":2}'),('{\"c\":3}');")
    return s


def int4_opclass(writer, tag):
    s = plfn("public.rt_i4cmp(int4, int4)", "int4", "pg_catalog.btint4cmp($1, $2)", writer, tag,
             "IMMUTABLE STRICT", cond="$1 = -42 OR $2 = -42")
    s += ("CREATE OPERATOR CLASS public.rt_int4_ops FOR TYPE int4 USING btree AS "
          "OPERATOR 1 pg_catalog.<, OPERATOR 2 pg_catalog.<=, OPERATOR 3 pg_catalog.=, "
          "OPERATOR 4 pg_catalog.>=, OPERATOR 5 pg_catalog.>, FUNCTION 1 public.rt_i4cmp(int4, int4);")
    return s


attack(2, "opclass-order-by", "simple", False, json_opclass(HIT, "o1"),
       [("Q", "SELECT 1 FROM docs ORDER BY j")],
       desc="default btree opclass for json (none built in) runs user cmp on ORDER BY")
attack(2, "opclass-distinct", "extended", False, json_opclass(HIT, "o2"),
       [("EXT", "SELECT DISTINCT j FROM docs")])
attack(2, "opclass-union", "simple", True, json_opclass(LOCAL, "o3"),
       [("Q", "BEGIN"), ("Q", "SELECT j FROM docs UNION SELECT '{}'::json"), ("Q", "COMMIT")])
attack(2, "opclass-greatest", "extended", True, json_opclass(LOCAL, "o4"),
       [("Q", "BEGIN"), ("EXT", "SELECT greatest(j, '{}'::json)::text FROM docs"), ("Q", "COMMIT")])
attack(2, "opclass-window-order", "simple", False, json_opclass(HIT, "o5"),
       [("Q", "SELECT row_number() OVER (ORDER BY j) FROM docs")])
attack(2, "opclass-array-compare", "extended", False, json_opclass(HIT, "o6"),
       [("EXT", "SELECT ARRAY['{\"a\":1}'::json] < ARRAY['{\"b\":1}'::json]")],
       desc="anyarray < anyarray compares elements with the element type's default opclass")
attack(2, "opclass-join-using", "simple", False, json_opclass(HIT, "o7"),
       [("Q", "SELECT count(*) FROM docs a JOIN docs b USING (j)")],
       desc="USING (j) implies the default opclass's = with no operator in the text")
attack(2, "opclass-ordered-set-agg", "simple", True, json_opclass(LOCAL, "o8"),
       [("Q", "BEGIN"), ("Q", "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY j)::text FROM docs"),
        ("Q", "COMMIT")])
attack(2, "opclass-copy-select", "simple", False, json_opclass(HIT, "o9"),
       [("Q", "COPY (SELECT DISTINCT j FROM docs) TO STDOUT")])
attack(2, "opclass-group-by", "extended", True, json_opclass(LOCAL, "o13"),
       [("Q", "BEGIN"), ("EXT", "SELECT count(*) FROM docs GROUP BY j"), ("Q", "COMMIT")])
attack(2, "opclass-index-scan-nondefault", "simple", False,
       int4_opclass(HIT, "o10")
       + "CREATE TABLE public.big(x int); INSERT INTO public.big SELECT generate_series(1,20000);"
       + "CREATE INDEX big_x ON public.big (x public.rt_int4_ops); ANALYZE public.big;",
       [("Q", "SELECT * FROM big WHERE x = -42")],
       desc="plain equality on int4; the only index uses a user opclass whose support fn 1 runs")
attack(2, "opclass-partition-pruning", "extended", False,
       int4_opclass(HIT, "o11")
       + "CREATE TABLE public.pt (x int) PARTITION BY RANGE (x public.rt_int4_ops);"
       + "CREATE TABLE public.pt1 PARTITION OF public.pt FOR VALUES FROM (MINVALUE) TO (0);"
       + "CREATE TABLE public.pt2 PARTITION OF public.pt FOR VALUES FROM (0) TO (MAXVALUE);",
       [("EXT", "SELECT * FROM pt WHERE x = -42")],
       desc="partition pruning calls the partition key opclass's support function")
attack(2, "opclass-range-subtype", "simple", True,
       int4_opclass(LOCAL, "o12")
       + "CREATE TYPE public.rt_range AS RANGE (subtype = int4, subtype_opclass = public.rt_int4_ops);",
       [("Q", "BEGIN"), ("Q", "SELECT '[-42,5]'::rt_range"), ("Q", "COMMIT")],
       desc="range input compares bounds with the subtype opclass")

# ---- class 3: pg_catalog / information_schema objects, replaced built-ins -------------

attack(3, "replace-pg_catalog.lpad-in-place", "simple", False,
       "CREATE OR REPLACE FUNCTION pg_catalog.lpad(text, int4) RETURNS text LANGUAGE plpgsql "
       "IMMUTABLE STRICT AS $f$ BEGIN PERFORM rtlib.hit('p1'); RETURN $1; END $f$;",
       [("Q", "SELECT lpad('hello', 8)")],
       desc="CREATE OR REPLACE of a (SQL-language) built-in keeps its oid")
attack(3, "new-overload-in-pg_catalog", "extended", False,
       plfn("pg_catalog.length(int4)", "int4", "1", HIT, "p2"),
       [("EXT", "SELECT length(12345)")])
attack(3, "view-in-pg_catalog", "simple", False,
       "SET allow_system_table_mods = on; CREATE VIEW pg_catalog.pg_stat_rt AS SELECT rtlib.hit('p3') AS ok;",
       [("Q", "SELECT * FROM pg_stat_rt")])
attack(3, "domain-in-pg_catalog", "extended", True,
       plfn("pg_catalog.rt_chk(int4)", "bool", "true", LOCAL, "p4")
       + "CREATE DOMAIN pg_catalog.posint AS int4 CHECK (pg_catalog.rt_chk(VALUE));",
       [("Q", "BEGIN"), ("EXT", "SELECT 5::posint"), ("Q", "COMMIT")])
attack(3, "replace-obj_description", "simple", False,
       "CREATE OR REPLACE FUNCTION pg_catalog.obj_description(oid, name) RETURNS text "
       "LANGUAGE plpgsql STABLE STRICT AS $f$ BEGIN PERFORM rtlib.hit('p5'); RETURN NULL; END $f$;",
       [("Q", "SELECT pg_catalog.obj_description(c.oid, 'pg_class') FROM pg_catalog.pg_class c "
              "WHERE c.relname = 'victim'")],
       desc="psql \\d+ style query")
attack(3, "replace-textanycat", "extended", True,
       "CREATE OR REPLACE FUNCTION pg_catalog.textanycat(text, anynonarray) RETURNS text "
       "LANGUAGE plpgsql STABLE STRICT AS $f$ BEGIN PERFORM rtlib.local('p6'); "
       "RETURN pg_catalog.textcat($1, $2::text); END $f$;",
       [("Q", "BEGIN"), ("EXT", "SELECT 'a' || 1"), ("Q", "COMMIT")])
attack(3, "view-in-information_schema", "simple", False,
       "CREATE VIEW information_schema.role_grants_ext AS SELECT rtlib.hit('p7') AS ok;",
       [("Q", "SELECT * FROM information_schema.role_grants_ext")])
attack(3, "replace-information_schema-helper-via-view", "simple", False,
       "CREATE OR REPLACE FUNCTION information_schema._pg_char_max_length(typid oid, typmod int4) RETURNS int4 "
       "LANGUAGE plpgsql STABLE STRICT AS $f$ BEGIN IF $1 = 1043 THEN PERFORM rtlib.hit('p8'); END IF; "
       "RETURN NULL; END $f$; CREATE TABLE public.vt(v varchar(10));",
       [("Q", "SELECT character_maximum_length FROM information_schema.columns WHERE table_name = 'vt'")],
       desc="built-in view information_schema.columns calls the replaced helper by oid")
attack(3, "new-operator-in-pg_catalog", "extended", False,
       plfn("public.rt_textplus(text, int4)", "text", "$1", HIT, "p9")
       + "CREATE OPERATOR pg_catalog.+ (leftarg = text, rightarg = int4, function = public.rt_textplus);",
       [("EXT", "SELECT 'a'::text + 1")])
attack(3, "replace-date_part-in-block", "simple", True,
       "CREATE OR REPLACE FUNCTION pg_catalog.date_part(text, date) RETURNS float8 LANGUAGE plpgsql "
       "STABLE STRICT AS $f$ BEGIN PERFORM rtlib.local('p10'); RETURN 1; END $f$;",
       [("Q", "BEGIN"), ("Q", "SELECT date_part('year', DATE '2020-01-01')"), ("Q", "COMMIT")])

# ---- class 4: parser interpretations ----------------------------------------------------

attack(4, "domain-named-lower", "simple", False,
       "CREATE DOMAIN public.lower AS text CHECK (rtlib.hit('f1'));",
       [("Q", "SELECT lower('ABC')")],
       desc="typename('literal') is always a cast: lower('ABC') casts to domain public.lower")
attack(4, "domain-named-upper-varchar", "extended", False,
       "CREATE DOMAIN public.upper AS text CHECK (rtlib.hit('f2'));"
       "CREATE TABLE public.vtab(v varchar); INSERT INTO public.vtab VALUES ('x');",
       [("EXT", "SELECT upper(v) FROM vtab")],
       desc="no exact upper(varchar): a binary-coercible cast to a type named upper wins")
attack(4, "domain-named-md5-in-block", "simple", True,
       "CREATE DOMAIN public.md5 AS text CHECK (rtlib.local('f3'));",
       [("Q", "BEGIN"), ("Q", "SELECT md5('x')"), ("Q", "COMMIT")])
attack(4, "rls-policy-on-plain-table", "simple", False,
       "CREATE TABLE public.rls_docs(id int); INSERT INTO public.rls_docs VALUES (1);"
       "ALTER TABLE public.rls_docs ENABLE ROW LEVEL SECURITY;"
       "CREATE POLICY p ON public.rls_docs USING (rtlib.hit_sd('f4'));"
       "GRANT SELECT ON public.rls_docs TO alice;",
       [("Q", "SELECT * FROM rls_docs")],
       startup=[("user", "alice"), ("database", "{db}")],
       desc="row-level security policy runs user code on a plain table read (non-superuser)")
attack(4, "operator-overload-concat", "extended", False,
       plfn("public.rt_cat(text, int4)", "text", "'x'", HIT, "f5")
       + "CREATE OPERATOR public.|| (leftarg = text, rightarg = int4, function = public.rt_cat);",
       [("EXT", "SELECT 'a'::text || 5")])
attack(4, "attribute-notation", "simple", False,
       plfn("public.summary(public.victim)", "text", "'s'", HIT, "f6"),
       [("Q", "SELECT v.summary FROM victim v")])
attack(4, "overload-unnest-in-block", "extended", True,
       plfn("public.unnest(int4[])", "SETOF int4", "NEXT 1", LOCAL, "f7"),
       [("Q", "BEGIN"), ("EXT", "SELECT * FROM unnest(ARRAY[1,2])"), ("Q", "COMMIT")])
attack(4, "domain-named-btrim-nested", "simple", False,
       "CREATE DOMAIN public.btrim AS text CHECK (rtlib.hit('f8'));",
       [("Q", "SELECT pg_catalog.upper(btrim(' x '))")])

# ---- class 5: extension membership -----------------------------------------------------

attack(5, "alter-extension-add-function", "simple", False,
       plfn("public.rt_member(text)", "text", "$1", HIT, "e1", "IMMUTABLE")
       + "ALTER EXTENSION pg_trgm ADD FUNCTION public.rt_member(text);",
       [("Q", "SELECT rt_member('x')")])
attack(5, "replace-extension-member-similarity", "extended", False,
       "CREATE OR REPLACE FUNCTION public.similarity(text, text) RETURNS real LANGUAGE plpgsql "
       "IMMUTABLE STRICT AS $f$ BEGIN PERFORM rtlib.hit('e2'); RETURN 0.5; END $f$;",
       [("EXT", "SELECT similarity('abc', 'abd')")])
attack(5, "alter-extension-add-view", "simple", True,
       "CREATE VIEW public.rt_ext_view AS SELECT rtlib.local('e3') AS ok;"
       "ALTER EXTENSION hstore ADD VIEW public.rt_ext_view;",
       [("Q", "BEGIN"), ("Q", "SELECT * FROM rt_ext_view"), ("Q", "COMMIT")])
attack(5, "replace-extension-member-show_trgm", "extended", True,
       "CREATE OR REPLACE FUNCTION public.show_trgm(text) RETURNS text[] LANGUAGE plpgsql "
       "IMMUTABLE STRICT AS $f$ BEGIN PERFORM rtlib.local('e4'); RETURN ARRAY['x']; END $f$;",
       [("Q", "BEGIN"), ("EXT", "SELECT show_trgm('abc')"), ("Q", "COMMIT")])
attack(5, "alter-extension-add-cast", "simple", False,
       cast_int_text(HIT, "e5") + "ALTER EXTENSION citext ADD CAST (int4 AS text);"
       + "ALTER EXTENSION citext ADD FUNCTION public.rt_int_to_text(int4);",
       [("Q", "SELECT 42::text")])
attack(5, "extension-overload-normal_rand", "extended", False,
       plfn("public.normal_rand(int4)", "SETOF float8", "NEXT 1", HIT, "e6")
       + "ALTER EXTENSION tablefunc ADD FUNCTION public.normal_rand(int4);",
       [("EXT", "SELECT * FROM normal_rand(3)")])

# ---- class 6: functions that run SQL given as text -------------------------------------

INS = "$i$INSERT INTO public.marker(tag) VALUES ('%s')$i$"
DBX = "public.dblink_exec($c${conn}$c$, " + INS + ")"

attack(6, "crosstab-dblink_exec", "simple", False, "",
       [("Q", "SELECT * FROM crosstab($q$SELECT 'r'::text, 'c'::text, " + (DBX % "s1")
         + "::text$q$) AS ct(r text, c1 text)")])
attack(6, "connectby-relname-injection", "extended", False,
       "CREATE TABLE public.tree(id text, parent text); INSERT INTO public.tree VALUES ('1', NULL), ('2', '1');",
       [("EXT", "SELECT * FROM connectby($r$public.tree, LATERAL (SELECT " + (DBX % "s2")
         + ") z$r$, 'id', 'parent', '1', 0) AS t(k text, p text, lvl int)")])
attack(6, "xpath_table-criteria-injection", "simple", True,
       "CREATE TABLE public.xdocs(id int, doc text); INSERT INTO public.xdocs VALUES (1, '<a>1</a>');",
       [("Q", "BEGIN"),
        ("Q", "SELECT * FROM xpath_table('id', 'doc', 'public.xdocs', '/a', $w$" + (DBX % "s3")
         + " IS NOT NULL$w$) AS t(id int, v text)"),
        ("Q", "COMMIT")])
attack(6, "query_to_xml-builtin", "simple", False, "",
       [("Q", "SELECT query_to_xml($q$SELECT " + (DBX % "s4") + "$q$, true, false, '')")])
attack(6, "ts_stat-builtin", "extended", False, "",
       [("EXT", "SELECT * FROM ts_stat($q$SELECT to_tsvector(" + (DBX % "s5") + ")$q$)")])
attack(6, "table_to_xml-names-a-view", "simple", True,
       "CREATE VIEW public.rt_hidden AS SELECT rtlib.local('s6') AS ok;",
       [("Q", "BEGIN"), ("Q", "SELECT table_to_xml('rt_hidden', true, false, '')"), ("Q", "COMMIT")],
       desc="STABLE built-in runs SELECT * FROM a relation named in a string")
attack(6, "dblink-select-form", "extended", False, "",
       [("EXT", "SELECT * FROM dblink($c${conn}$c$, $i$INSERT INTO public.marker(tag) VALUES ('s7') "
         "RETURNING 1$i$) AS t(x int)")])
attack(6, "ts_rewrite-query-text", "simple", False, "",
       [("Q", "SELECT ts_rewrite('a'::tsquery, $q$SELECT 'a'::tsquery, 'b'::tsquery FROM "
         + (DBX % "s8") + " d$q$)")])
FDW_SETUP = ("CREATE SERVER rt_loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS "
             "(host '127.0.0.1', port '{port}', dbname '{db}');"
             "CREATE USER MAPPING FOR postgres SERVER rt_loop OPTIONS (user 'postgres');")
attack(6, "postgres_fdw-inheritance-child", "extended", False,
       FDW_SETUP
       + "CREATE VIEW public.rt_remote_v AS SELECT 1::int AS id WHERE rtlib.local('s9');"
       + "CREATE TABLE public.accounts(id int); INSERT INTO public.accounts VALUES (1);"
       + "CREATE FOREIGN TABLE public.accounts_remote () INHERITS (public.accounts) SERVER rt_loop "
         "OPTIONS (schema_name 'public', table_name 'rt_remote_v');",
       [("EXT", "SELECT * FROM accounts")],
       desc="plain table with a postgres_fdw child: remote session (not read-only) runs the view")

# ---- class 7: search_path steering function bodies -------------------------------------

attack(7, "dollar-user-shadows-xpath_list-body", "simple", False,
       "CREATE SCHEMA postgres;"
       + plfn("postgres.xpath_list(text, text, text)", "text", "'x'", HIT, "sp1"),
       [("Q", "SELECT xpath_list('<a>1</a>', '/a')")],
       desc="xml2's SQL body calls unqualified xpath_list($1,$2,','); \"$user\" precedes public")
attack(7, "dollar-user-shadows-earth()", "extended", False,
       "CREATE SCHEMA postgres;"
       + plfn("postgres.earth()", "float8", "6378168", HIT, "sp2", "IMMUTABLE"),
       [("EXT", "SELECT sec_to_gc(1.0)")],
       desc="earthdistance bodies call unqualified earth()")
attack(7, "set-path-pgcatalog-first-xpath_nodeset", "simple", True,
       "CREATE SCHEMA evil;"
       + plfn("evil.xpath_nodeset(text, text, text, text)", "text", "'x'", LOCAL, "sp3"),
       [("Q", "SET search_path = pg_catalog, evil, public"), ("Q", "BEGIN"),
        ("Q", "SELECT xpath_nodeset('<a>1</a>', '/a')"), ("Q", "COMMIT")],
       desc="path with pg_catalog first is allowed; evil precedes public where xml2 lives")
attack(7, "set-path-better-type-match", "extended", False,
       "CREATE SCHEMA evil; CREATE TABLE public.vtab(v varchar); INSERT INTO public.vtab VALUES ('x');"
       + plfn("evil.lower(varchar)", "text", "'x'", HIT, "sp4"),
       [("Q", "SET search_path = pg_catalog, evil"), ("EXT", "SELECT lower(v) FROM public.vtab")],
       desc="exact-type overload beats pg_catalog.lower(text) even with pg_catalog first")
attack(7, "alter-database-set-search_path", "simple", False,
       "CREATE SCHEMA evil;" + plfn("evil.initcap(text)", "text", "'x'", HIT, "sp5")
       + "ALTER DATABASE {db} SET search_path = evil, pg_catalog, public;",
       [("Q", "SELECT initcap('x')")],
       desc="session's path comes from a planted per-database setting (not reported by ParameterStatus)")
attack(7, "alter-role-in-db-set-search_path", "extended", True,
       "CREATE SCHEMA evil;" + plfn("evil.initcap(text)", "text", "'x'", LOCAL, "sp6")
       + "ALTER ROLE postgres IN DATABASE {db} SET search_path = evil, pg_catalog, public;",
       [("Q", "BEGIN"), ("EXT", "SELECT initcap('x')"), ("Q", "COMMIT")])
attack(7, "dollar-user-domain-shadows-earth-type", "simple", False,
       "CREATE SCHEMA postgres; CREATE DOMAIN postgres.earth AS public.cube CHECK (rtlib.hit('sp7'));",
       [("Q", "SELECT ll_to_earth(10, 20)")],
       desc="ll_to_earth body casts ::earth; type lookup finds \"$user\".earth first")
attack(7, "pipelined-set-then-read", "extended", False,
       "CREATE SCHEMA evil; CREATE TABLE public.vtab(v varchar); INSERT INTO public.vtab VALUES ('x');"
       + plfn("evil.lower(varchar)", "text", "'x'", HIT, "sp8"),
       [("RAW", [("P", "", "SET search_path TO pg_catalog, evil"), ("B", "", ""), ("E", ""),
                 ("P", "", "SELECT lower(v) FROM public.vtab"), ("B", "", ""), ("E", ""), ("S",)], 1)])
attack(7, "pg_temp-view-shadows-table", "simple", False,
       "CREATE TABLE public.vtab(v varchar); INSERT INTO public.vtab VALUES ('x');",
       [("Q", "CREATE TEMP VIEW vtab AS SELECT rtlib.hit('sp9')::text AS v"), ("Q", "SELECT * FROM vtab")],
       desc="pg_temp is searched first for relations; the temp view itself is DDL")

attack(7, "set-path-earth-gc_to_sec-block", "simple", True,
       "CREATE SCHEMA evil;" + plfn("evil.earth()", "float8", "6378168", LOCAL, "sp10", "IMMUTABLE"),
       [("Q", "SET search_path = pg_catalog, evil, public"), ("Q", "BEGIN"),
        ("Q", "SELECT gc_to_sec(1.0)"), ("Q", "COMMIT")],
       desc="allowed path (pg_catalog first); evil.earth() precedes public.earth() in the body")
attack(7, "alter-database-path-earth_distance", "extended", False,
       "CREATE SCHEMA evil;" + plfn("evil.earth()", "float8", "6378168", HIT, "sp11", "IMMUTABLE")
       + "ALTER DATABASE {db} SET search_path = pg_catalog, evil, public;",
       [("EXT", "SELECT earth_distance(ll_to_earth(0, 0), ll_to_earth(1, 1))")],
       desc="session path planted with ALTER DATABASE; no SET through airlock")
attack(7, "dollar-user-latitude-in-block", "extended", True,
       "CREATE SCHEMA postgres;" + plfn("postgres.earth()", "float8", "6378168", LOCAL, "sp12", "IMMUTABLE"),
       [("Q", "BEGIN"), ("EXT", "SELECT latitude(ll_to_earth(10, 20))"), ("Q", "COMMIT")])

# ---- class 8: client encodings ----------------------------------------------------------

def enc_setup(real_name, decoy_name, writer, tag):
    s = 'CREATE VIEW public."%s" AS SELECT %s(\'%s\')::int AS ok;' % (real_name, writer, tag)
    if decoy_name != real_name:
        s += 'CREATE TABLE public."%s"(ok int); INSERT INTO public."%s" VALUES (1);' % (
            decoy_name, decoy_name)
    return s


CYR = "отчёт"
attack(8, "win1251-startup-encoding", "simple", False,
       enc_setup(CYR, CYR.encode("cp1251").decode("latin-1"), HIT, "en1"),
       [("Q", 'SELECT * FROM "%s"' % CYR, "cp1251")],
       startup=[("user", "postgres"), ("database", "{db}"), ("client_encoding", "WIN1251")],
       desc="decoy table under the Latin-1 reading of the bytes, view over user code under the real name")
attack(8, "koi8r-set-then-extended", "extended", False,
       enc_setup(CYR, CYR.encode("koi8_r").decode("latin-1"), HIT, "en2"),
       [("Q", "SET client_encoding = 'KOI8R'"), ("EXT", 'SELECT * FROM "%s"' % CYR, (), "koi8_r")])
JP = "テスト"
attack(8, "euc_jp-pipelined-set", "extended", False,
       enc_setup(JP, JP.encode("euc_jp").decode("latin-1"), HIT, "en3"),
       [("RAW", [("P", "", "SET client_encoding TO 'EUC_JP'"), ("B", "", ""), ("E", ""),
                 ("P", "", 'SELECT * FROM "%s"' % JP), ("B", "", ""), ("E", ""), ("S",)], 1, "euc_jp")],
       desc="SET pipelined just before the Parse it affects")
attack(8, "euc_jp-set-separately-block", "simple", True,
       enc_setup(JP, JP.encode("euc_jp").decode("latin-1"), LOCAL, "en9"),
       [("Q", "SET client_encoding TO 'EUC_JP'"), ("Q", "BEGIN"),
        ("Q", 'SELECT * FROM "%s"' % JP, "euc_jp"), ("Q", "COMMIT")])
attack(8, "latin1-0x80-vs-windows1252", "simple", False,
       enc_setup("\u0080abc", "\u20acabc", HIT, "en4"),
       [("Q", b'SELECT * FROM "\x80abc"', None)],
       startup=[("user", "postgres"), ("database", "{db}"), ("client_encoding", "LATIN1")],
       desc="PostgreSQL LATIN1 maps 0x80 to U+0080, windows-1252 to the euro sign; decoy table named with euro")
attack(8, "iso_8859_5-in-block", "simple", True,
       enc_setup(CYR, CYR.encode("iso8859_5").decode("latin-1"), LOCAL, "en5"),
       [("Q", "SET client_encoding = 'ISO_8859_5'"), ("Q", "BEGIN"),
        ("Q", 'SELECT * FROM "%s"' % CYR, "iso8859_5"), ("Q", "COMMIT")])
attack(8, "sjis-backslash-trail-byte", "simple", False,
       "CREATE VIEW public.rt_sjis_v AS SELECT rtlib.hit('en6') AS ok;",
       [("Q", b"SELECT E'\x83\x5c' AS a, (SELECT ok FROM public.rt_sjis_v) AS b --'", None)],
       startup=[("user", "postgres"), ("database", "{db}"), ("client_encoding", "SJIS")],
       desc="0x83 0x5C is one SJIS char; read byte-wise, 0x5C escapes the quote and hides the subquery")
attack(8, "big5-backslash-trail-extended-block", "extended", True,
       "CREATE VIEW public.rt_big5_v AS SELECT rtlib.local('en7') AS ok;",
       [("Q", "SET client_encoding = 'BIG5'"), ("Q", "BEGIN"),
        ("EXT", b"SELECT E'\xb3\x5c' AS a, (SELECT ok FROM public.rt_big5_v) AS b --'", (), None),
        ("Q", "COMMIT")])
attack(8, "win1251-unquoted-identifier", "extended", False,
       enc_setup(CYR, CYR.encode("cp1251").decode("latin-1"), HIT, "en8"),
       [("EXT", "SELECT * FROM %s" % CYR, (), "cp1251")],
       startup=[("user", "postgres"), ("database", "{db}"), ("client_encoding", "WIN1251")])

# ---- class 9: the backstop / transaction blocks / catalog window -----------------------

SWAP_SETUP = "CREATE VIEW public.rt_swap_v AS SELECT 1 AS ok;"


def swap_sql(writer, tag):
    return ("CREATE OR REPLACE VIEW public.rt_swap_v AS SELECT CASE WHEN %s('%s') THEN 1 END AS ok"
            % (writer, tag))


attack(9, "catalog-window-swap-view", "simple", False, SWAP_SETUP,
       [("Q", "SELECT * FROM rt_swap_v"), ("DIRECT", swap_sql(HIT, "b1")), ("Q", "SELECT * FROM rt_swap_v")],
       desc="harmless view replaced past airlock just before the read (inside catalog_poll)")
attack(9, "catalog-window-swap-view-block", "extended", True, SWAP_SETUP,
       [("EXT", "SELECT * FROM rt_swap_v"), ("DIRECT", swap_sql(LOCAL, "b2")), ("Q", "BEGIN"),
        ("EXT", "SELECT * FROM rt_swap_v"), ("Q", "COMMIT")])
attack(9, "cached-decision-after-swap", "simple", True, SWAP_SETUP,
       [("Q", "SELECT * FROM rt_swap_v"), ("Q", "SELECT * FROM rt_swap_v"),
        ("DIRECT", swap_sql(LOCAL, "b3")), ("SLEEP", 2.5), ("Q", "BEGIN"),
        ("Q", "SELECT * FROM rt_swap_v"), ("Q", "COMMIT")],
       desc="decision cached for the text, view replaced, wait past catalog_poll")
attack(9, "one-message-begin-read-commit", "simple", True, cast_int_text(LOCAL, "b4"),
       [("Q", "BEGIN; SELECT 42::text; COMMIT")])
attack(9, "postgres_fdw-foreign-partition", "extended", False,
       FDW_SETUP
       + "CREATE VIEW public.rt_remote_v AS SELECT 1::int AS id WHERE rtlib.local('b5');"
       + "CREATE TABLE public.parted(id int) PARTITION BY LIST (id);"
       + "CREATE TABLE public.parted_2 PARTITION OF public.parted FOR VALUES IN (2);"
       + "CREATE FOREIGN TABLE public.parted_1 PARTITION OF public.parted FOR VALUES IN (1) "
         "SERVER rt_loop OPTIONS (schema_name 'public', table_name 'rt_remote_v');",
       [("EXT", "SELECT * FROM parted")])
attack(9, "foreign-table-direct", "simple", False,
       FDW_SETUP
       + "CREATE VIEW public.rt_remote_v AS SELECT 1::int AS id WHERE rtlib.local('b6');"
       + "CREATE FOREIGN TABLE public.ft (id int) SERVER rt_loop OPTIONS (schema_name 'public', table_name 'rt_remote_v');",
       [("Q", "SELECT * FROM ft")])
attack(9, "new-connection-stale-snapshot", "simple", False, SWAP_SETUP,
       [("Q", "SELECT * FROM rt_swap_v"), ("DIRECT", swap_sql(HIT, "b7")), ("NEWCONN",),
        ("Q", "SELECT * FROM rt_swap_v")],
       desc="second connection right after a replace past airlock")
attack(9, "domain-check-in-block", "extended", True,
       plfn("public.rt_chk2(int4)", "bool", "true", LOCAL, "b8")
       + "CREATE DOMAIN public.posint2 AS int4 CHECK (public.rt_chk2(VALUE));",
       [("Q", "BEGIN"), ("EXT", "SELECT 5::posint2"), ("Q", "COMMIT")])

attack(9, "backstop-simple-local-write", "simple", False, cast_int_text(LOCAL, "b9"),
       [("Q", "SELECT 42::text")],
       desc="a hidden local write outside a block: does the read-only backstop stop it?")
attack(9, "backstop-extended-local-write", "extended", False, cast_int_text(LOCAL, "b10"),
       [("EXT", "SELECT 42::text")])
attack(9, "backstop-pipeline-two-executes", "extended", False, cast_int_text(LOCAL, "b11"),
       [("RAW", [("P", "", "SELECT 1"), ("B", "", ""), ("E", ""),
                 ("P", "", "SELECT 42::text"), ("B", "", ""), ("E", ""), ("S",)], 1)])
attack(9, "backstop-multistatement-implicit-block", "simple", False, cast_int_text(LOCAL, "b12"),
       [("Q", "SELECT 1; SELECT 42::text")])
attack(9, "backstop-savepoint-in-block", "simple", True, cast_int_text(LOCAL, "b13"),
       [("Q", "START TRANSACTION ISOLATION LEVEL REPEATABLE READ"), ("Q", "SAVEPOINT a"),
        ("Q", "SELECT 42::text"), ("Q", "RELEASE SAVEPOINT a"), ("Q", "COMMIT")])
attack(9, "backstop-commit-and-chain", "simple", True, cast_int_text(LOCAL, "b14"),
       [("Q", "BEGIN"), ("Q", "COMMIT AND CHAIN"), ("Q", "SELECT 42::text"), ("Q", "COMMIT")])

# ---- class 10: session model drift at wire level (no planted objects) -----------------

DEL = "DELETE FROM public.victim WHERE true"
L63 = "s" * 63
attack(10, "namedatalen-parse-collision", "extended", True, "",
       [("RAW", [("P", L63 + "W", DEL), ("S",)], 1),
        ("RAW", [("P", L63 + "R", "SELECT 1"), ("S",)], 1),
        ("Q", "BEGIN"),
        ("RAW", [("B", "", L63 + "R"), ("E", ""), ("S",)], 1),
        ("Q", "COMMIT")],
       desc="server knows both names as the same 63-byte name")
attack(10, "namedatalen-close-then-reparse", "extended", True, "",
       [("Q", "BEGIN"),
        ("RAW", [("P", L63 + "R", "SELECT 1"), ("C", "S", L63 + "X"), ("P", L63 + "W", DEL),
                 ("B", "", L63 + "R"), ("E", ""), ("S",)], 1),
        ("Q", "COMMIT")])
attack(10, "namedatalen-portal", "extended", True, "",
       [("Q", "BEGIN"),
        ("RAW", [("P", "sr", "SELECT 1"), ("P", "sw", DEL),
                 ("B", "p" * 63 + "R", "sr"), ("C", "P", "p" * 63 + "X"), ("B", "p" * 63 + "W", "sw"),
                 ("E", "p" * 63 + "R"), ("S",)], 1),
        ("Q", "COMMIT")])
attack(10, "close-with-trailing-bytes", "extended", True, "",
       [("RAW", [("P", "s1", DEL), ("S",)], 1),
        ("RAW", [("C", "S", "s1", b"junk"), ("S",)], 1),
        ("RAW", [("P", "s1", "SELECT 1"), ("S",)], 1),
        ("Q", "BEGIN"), ("RAW", [("B", "", "s1"), ("E", ""), ("S",)], 1), ("Q", "COMMIT")])
attack(10, "parse-with-trailing-bytes", "extended", True, "",
       [("RAW", [("P", "s2", DEL), ("S",)], 1),
        ("RAW", [("P", "s2", "SELECT 1", b"\x00\x00junk"), ("S",)], 1),
        ("Q", "BEGIN"), ("RAW", [("B", "", "s2"), ("E", ""), ("S",)], 1), ("Q", "COMMIT")])
attack(10, "pipeline-error-discard", "extended", True, "",
       [("RAW", [("P", "s3", DEL), ("S",)], 1),
        ("RAW", [("P", "e", "SELECT 1/0"), ("B", "", "e"), ("E", ""), ("C", "S", "s3"),
                 ("P", "s3", "SELECT 1"), ("S",)], 1),
        ("Q", "BEGIN"), ("RAW", [("B", "", "s3"), ("E", ""), ("S",)], 1), ("Q", "COMMIT")],
       desc="server discards Close+Parse after the error; airlock may not")
attack(10, "deallocate-in-aborted-block", "simple+extended", True, "",
       [("RAW", [("P", "s4", DEL), ("S",)], 1),
        ("Q", "BEGIN"), ("Q", "SELECT 1/0"), ("Q", "DEALLOCATE s4"), ("Q", "ROLLBACK"),
        ("RAW", [("P", "s4", "SELECT 1"), ("S",)], 1),
        ("Q", "BEGIN"), ("RAW", [("B", "", "s4"), ("E", ""), ("S",)], 1), ("Q", "COMMIT")])
attack(10, "deallocate-after-error-same-query", "simple+extended", True, "",
       [("RAW", [("P", "s5", DEL), ("S",)], 1),
        ("Q", "SELECT 1/0; DEALLOCATE s5"),
        ("RAW", [("P", "s5", "SELECT 1"), ("S",)], 1),
        ("Q", "BEGIN"), ("RAW", [("B", "", "s5"), ("E", ""), ("S",)], 1), ("Q", "COMMIT")])
attack(10, "deallocate-refused-by-airlock", "simple+extended", True, "",
       [("RAW", [("P", "s6", DEL), ("S",)], 1),
        ("Q", "DEALLOCATE s6; SET ROLE postgres"),
        ("RAW", [("P", "s6", "SELECT 1"), ("S",)], 1),
        ("Q", "BEGIN"), ("RAW", [("B", "", "s6"), ("E", ""), ("S",)], 1), ("Q", "COMMIT")],
       direct_steps=[("RAW", [("P", "s6", DEL), ("S",)], 1),
                     ("RAW", [("P", "s6", "SELECT 1"), ("S",)], 1),
                     ("Q", "BEGIN"), ("RAW", [("B", "", "s6"), ("E", ""), ("S",)], 1), ("Q", "COMMIT")],
       desc="airlock denies the whole message (SET ROLE) so the server never deallocates; positive "
            "control omits the refused message (the server would never see it)")
attack(10, "deallocate-all-in-aborted-block", "simple+extended", True, "",
       [("RAW", [("P", "s7", DEL), ("S",)], 1),
        ("Q", "BEGIN"), ("Q", "SELECT 1/0"), ("Q", "DEALLOCATE ALL"), ("Q", "ROLLBACK"),
        ("RAW", [("P", "s7", "SELECT 1"), ("S",)], 1),
        ("Q", "BEGIN"), ("RAW", [("B", "", "s7"), ("E", ""), ("S",)], 1), ("Q", "COMMIT")])
attack(10, "reparse-existing-name", "extended", True, "",
       [("RAW", [("P", "s8", DEL), ("S",)], 1),
        ("RAW", [("P", "s8", "SELECT 1"), ("S",)], 1),
        ("Q", "BEGIN"), ("RAW", [("B", "", "s8"), ("E", ""), ("S",)], 1), ("Q", "COMMIT")],
       desc="root cause probe: the server refuses the second Parse (42P05) and keeps the DELETE")
attack(10, "reparse-in-same-pipeline", "extended", True, "",
       [("RAW", [("P", "s9", DEL), ("P", "s9", "SELECT 1"), ("S",)], 1),
        ("Q", "BEGIN"), ("RAW", [("B", "", "s9"), ("E", ""), ("S",)], 1), ("Q", "COMMIT")],
       desc="both Parses in one pipeline before Sync; server keeps the first")
attack(10, "discard-all-refused-by-airlock", "simple+extended", True, "",
       [("RAW", [("P", "s10", DEL), ("S",)], 1),
        ("Q", "DISCARD ALL"),
        ("RAW", [("P", "s10", "SELECT 1"), ("S",)], 1),
        ("Q", "BEGIN"), ("RAW", [("B", "", "s10"), ("E", ""), ("S",)], 1), ("Q", "COMMIT")],
       direct_steps=[("RAW", [("P", "s10", DEL), ("S",)], 1),
                     ("RAW", [("P", "s10", "SELECT 1"), ("S",)], 1),
                     ("Q", "BEGIN"), ("RAW", [("B", "", "s10"), ("E", ""), ("S",)], 1), ("Q", "COMMIT")],
       desc="DISCARD ALL is denied by the shipped policy, so the server never discards; positive "
            "control omits it")
SCS_T = "SELECT 'A\\''; " + DEL + "; -- '"
SCS_EXT = ("SELECT 'A\\'', public.dblink_exec($c${conn}$c$, $i$" + DEL + "$i$) -- '")
attack(10, "scs-off-multistatement", "simple", True, "",
       [("Q", "SET standard_conforming_strings = off"), ("Q", "BEGIN"), ("Q", SCS_T), ("Q", "COMMIT")],
       desc="scs=on: one string literal; scs=off: \\' escapes and DELETE becomes a statement")
attack(10, "scs-off-cached-decision", "simple", True, "",
       [("Q", SCS_T), ("Q", "SET standard_conforming_strings = off"), ("Q", "BEGIN"), ("Q", SCS_T),
        ("Q", "COMMIT")])
attack(10, "scs-off-extended-dblink", "extended", False, "",
       [("Q", "SET standard_conforming_strings = off"), ("EXT", SCS_EXT)])
attack(10, "scs-off-set-local-in-block", "simple", True, "",
       [("Q", "BEGIN"), ("Q", "SET LOCAL standard_conforming_strings TO off"), ("Q", SCS_T),
        ("Q", "COMMIT")])
attack(10, "scs-off-pipelined-extended", "extended", True, "",
       [("Q", "BEGIN"),
        ("RAW", [("P", "", "SET standard_conforming_strings = off"), ("B", "", ""), ("E", ""),
                 ("P", "", SCS_EXT), ("B", "", ""), ("E", ""), ("S",)], 1),
        ("Q", "COMMIT")])

# ---- class 11: startup parameters ------------------------------------------------------

DUP_REAL = "CREATE VIEW public.rt_dup_v AS SELECT rtlib.hit('d1') AS ok;"
DUP_DECOY = "CREATE TABLE public.rt_dup_v(ok int); INSERT INTO public.rt_dup_v VALUES (1);"
attack(11, "duplicate-database", "simple", False, DUP_REAL,
       [("Q", "SELECT * FROM rt_dup_v")],
       startup=[("user", "postgres"), ("database", "{db}_decoy"), ("database", "{db}")],
       extra_dbs={"decoy": DUP_DECOY})
attack(11, "duplicate-database-extended-block", "extended", True,
       "CREATE VIEW public.rt_dup_v AS SELECT rtlib.local('d2') AS ok;",
       [("Q", "BEGIN"), ("EXT", "SELECT * FROM rt_dup_v"), ("Q", "COMMIT")],
       startup=[("user", "postgres"), ("database", "{db}_decoy"), ("database", "{db}")],
       extra_dbs={"decoy": DUP_DECOY})
attack(11, "duplicate-user", "extended", False,
       "CREATE SCHEMA postgres AUTHORIZATION postgres; CREATE SCHEMA alice AUTHORIZATION alice;"
       "CREATE VIEW postgres.rt_user_v AS SELECT rtlib.hit('d3') AS ok;"
       "CREATE TABLE alice.rt_user_v(ok int); INSERT INTO alice.rt_user_v VALUES (1);"
       "GRANT SELECT ON alice.rt_user_v TO alice;",
       [("EXT", "SELECT * FROM rt_user_v")],
       startup=[("user", "alice"), ("database", "{db}"), ("user", "postgres")],
       desc="\"$user\" differs between the first and the last user")
attack(11, "duplicate-options-search_path", "simple", False,
       "CREATE SCHEMA evil;" + plfn("evil.initcap(text)", "text", "'x'", HIT, "d4"),
       [("Q", "SELECT initcap('x')")],
       startup=[("user", "postgres"), ("database", "{db}"), ("options", "-c search_path=public"),
                ("options", "-c search_path=evil,pg_catalog,public")])
attack(11, "duplicate-guc-search_path", "extended", True,
       "CREATE SCHEMA evil;" + plfn("evil.initcap(text)", "text", "'x'", LOCAL, "d5"),
       [("Q", "BEGIN"), ("EXT", "SELECT initcap('x')"), ("Q", "COMMIT")],
       startup=[("user", "postgres"), ("database", "{db}"), ("search_path", "public"),
                ("search_path", "evil, pg_catalog, public")])
attack(11, "duplicate-standard_conforming_strings", "simple", True, "",
       [("Q", "BEGIN"), ("Q", SCS_T), ("Q", "COMMIT")],
       startup=[("user", "postgres"), ("database", "{db}"), ("standard_conforming_strings", "on"),
                ("standard_conforming_strings", "off")])
attack(11, "duplicate-client_encoding", "simple", False,
       enc_setup(CYR, CYR.encode("cp1251").decode("latin-1"), HIT, "d7"),
       [("Q", 'SELECT * FROM "%s"' % CYR, "cp1251")],
       startup=[("user", "postgres"), ("database", "{db}"), ("client_encoding", "UTF8"),
                ("client_encoding", "WIN1251")])
attack(11, "options-long-form-search_path", "simple", False,
       "CREATE SCHEMA evil;" + plfn("evil.initcap(text)", "text", "'x'", HIT, "d8"),
       [("Q", "SELECT initcap('x')")],
       startup=[("user", "postgres"), ("database", "{db}"),
                ("options", "--search_path=evil,pg_catalog,public")],
       desc="options in --name=value form (not -c)")
attack(11, "options-scs-off-escaped-space", "simple", True, "",
       [("Q", "BEGIN"), ("Q", SCS_T), ("Q", "COMMIT")],
       startup=[("user", "postgres"), ("database", "{db}"),
                ("options", "-c application_name=x\\ y -cstandard_conforming_strings=off")],
       desc="options with -cname=value (no space) and backslash-escaped space")
attack(11, "duplicate-options-database-default", "simple", False, DUP_REAL.replace("d1", "d10"),
       [("Q", "SELECT * FROM rt_dup_v")],
       startup=[("user", "postgres"), ("database", "{db}_decoy"), ("options", "-c search_path=public"),
                ("database", "{db}")],
       extra_dbs={"decoy": DUP_DECOY},
       desc="duplicate database separated by another parameter")


# --------------------------------------------------------------------------------------
# infrastructure
# --------------------------------------------------------------------------------------

TEMPLATE_SQL = r"""
CREATE EXTENSION dblink; CREATE EXTENSION postgres_fdw; CREATE EXTENSION tablefunc;
CREATE EXTENSION xml2; CREATE EXTENSION pg_trgm; CREATE EXTENSION hstore; CREATE EXTENSION cube;
CREATE EXTENSION earthdistance; CREATE EXTENSION citext;
CREATE SCHEMA rtlib; GRANT USAGE ON SCHEMA rtlib TO PUBLIC;
CREATE TABLE public.marker(id serial primary key, tag text, at timestamptz default clock_timestamp());
CREATE TABLE public.victim(id int);
INSERT INTO public.victim SELECT generate_series(1,5);
GRANT SELECT ON public.victim TO PUBLIC;
CREATE FUNCTION rtlib.conn() RETURNS text LANGUAGE sql STABLE AS
 $$ SELECT pg_catalog.format('host=127.0.0.1 port=%s dbname=%s user=postgres',
    pg_catalog.current_setting('port'), pg_catalog.current_database()) $$;
CREATE FUNCTION rtlib.hit(tag text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM public.dblink_exec(rtlib.conn(), pg_catalog.format('INSERT INTO public.marker(tag) VALUES (%L)', tag));
  RETURN true;
END $$;
CREATE FUNCTION rtlib.hit_sd(tag text) RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER AS $$
BEGIN
  PERFORM public.dblink_exec(rtlib.conn(), pg_catalog.format('INSERT INTO public.marker(tag) VALUES (%L)', tag));
  RETURN true;
END $$;
CREATE FUNCTION rtlib.local(tag text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  INSERT INTO public.marker(tag) VALUES (tag);
  RETURN true;
END $$;
"""

FINGERPRINT = "SELECT (SELECT pg_catalog.count(*) FROM public.marker), (SELECT pg_catalog.count(*) FROM public.victim)"
RESET = ("TRUNCATE public.marker; DELETE FROM public.victim; "
         "INSERT INTO public.victim SELECT i FROM pg_catalog.generate_series(1,5) i")


class Env:
    def __init__(self, airlock_bin, policies, keep=False):
        self.airlock_bin = airlock_bin
        self.policies = policies
        self.keep = keep
        self.tmp = tempfile.mkdtemp(prefix="rt-airlock-")
        os.chmod(self.tmp, 0o777)
        self.pgdata = os.path.join(self.tmp, "pgdata")
        self.pgport = free_port()
        self.alport = free_port()
        self.adport = free_port()
        self.airlock = None

    def _ensure_os_user(self):
        # Runners start side by side (the CI tests run several at once): one
        # creates the user while the others wait, so none runs `su` against
        # a user useradd is still writing.
        import fcntl
        with open("/tmp/rt-airlock-useradd.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                pwd.getpwnam(PGUSER_OS)
            except KeyError:
                subprocess.run(["useradd", "-m", PGUSER_OS], check=True)

    def _as_pg(self, args, **kw):
        if os.geteuid() == 0:
            return subprocess.run(["su", PGUSER_OS, "-c", " ".join(_shq(a) for a in args)], **kw)
        return subprocess.run(args, **kw)

    def start(self):
        if os.geteuid() == 0:
            self._ensure_os_user()
            shutil.chown(self.tmp, PGUSER_OS)
        r = self._as_pg([PGBIN + "/initdb", "-D", self.pgdata, "-A", "trust", "-U", "postgres", "-E",
                         "UTF8", "--locale=C"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise RuntimeError("initdb failed (%d):\n%s" % (r.returncode, r.stdout))
        opts = ("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off "
                "-c max_prepared_transactions=0" % (self.pgport, self.tmp))
        self._as_pg([PGBIN + "/pg_ctl", "-D", self.pgdata, "-o", opts, "-l",
                     os.path.join(self.tmp, "pg.log"), "-w", "start"], check=True,
                    stdout=subprocess.DEVNULL)
        c = self.direct("postgres")
        c.exec_ok("CREATE ROLE alice LOGIN")
        c.exec_ok("CREATE DATABASE rt_tmpl")
        c.close()
        c = self.direct("rt_tmpl")
        c.exec_ok(TEMPLATE_SQL)
        c.close()
        # airlock
        pol = os.path.join(self.tmp, "policies")
        shutil.copytree(self.policies, pol)
        # The shipped policy with short holds, so a held attack ends soon.
        for name in os.listdir(pol):
            path = os.path.join(pol, name)
            with open(path) as f:
                text = f.read()
            text = re.sub(r'^timeout = "[^"]*"', 'timeout = "2s"', text, flags=re.M)
            with open(path, "w") as f:
                f.write(text)
        cfg = os.path.join(self.tmp, "airlock.toml")
        with open(cfg, "w") as f:
            f.write('listen = "127.0.0.1:%d"\nupstream = "127.0.0.1:%d"\nadmin_listen = "127.0.0.1:%d"\n'
                    'policies = "%s"\nstore = "sqlite://%s"\n'
                    % (self.alport, self.pgport, self.adport, pol, os.path.join(self.tmp, "airlock.db")))
        self.airlock_log = open(os.path.join(self.tmp, "airlock.log"), "w")
        self.airlock = subprocess.Popen([self.airlock_bin, "serve", "--config", cfg],
                                        stdout=self.airlock_log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                s = socket.create_connection(("127.0.0.1", self.alport), timeout=0.5)
                s.close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("airlock did not start; see %s" % self.airlock_log.name)

    def direct(self, db, params=None):
        return Conn("127.0.0.1", self.pgport, params or [("user", "postgres"), ("database", db)],
                    timeout=STEP_TIMEOUT)

    def stop(self):
        if self.airlock:
            self.airlock.terminate()
            try:
                self.airlock.wait(5)
            except subprocess.TimeoutExpired:
                self.airlock.kill()
        self._as_pg([PGBIN + "/pg_ctl", "-D", self.pgdata, "-m", "immediate", "stop"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _shq(s):
    return "'" + s.replace("'", "'\\''") + "'"


def fmt(s, ctx):
    if isinstance(s, bytes):
        return s
    return (s.replace("{conn}", ctx["conn"]).replace("{db}", ctx["db"])
            .replace("{port}", str(ctx["port"])))


def build_raw(msgs, ctx, enc):
    out = b""
    for m in msgs:
        k = m[0]
        if k == "P":
            tr = m[3] if len(m) > 3 else b""
            out += P(m[1], fmt(m[2], ctx), enc=enc or "utf-8", trailing=tr)
        elif k == "B":
            out += B(m[1], m[2])
        elif k == "E":
            out += E(m[1])
        elif k == "D":
            out += D(m[1], m[2])
        elif k == "C":
            tr = m[3] if len(m) > 3 else b""
            out += C(m[1], m[2], trailing=tr)
        elif k == "S":
            out += S()
        elif k == "H":
            out += H()
    return out


def enc_of(x):
    return x if x else "utf-8"


def run_steps(env, a, ctx, port, steps=None):
    """Run an attack's steps against port (PostgreSQL or airlock). Returns transcript lines."""
    params = [(k, fmt(v, ctx)) for k, v in (a["startup"] or [("user", "postgres"), ("database", "{db}")])]
    lines = []
    conn = None

    def connect():
        try:
            return Conn("127.0.0.1", port, params, timeout=STEP_TIMEOUT)
        except Exception as e:  # noqa: BLE001
            lines.append("connect: %s" % e)
            return None

    conn = connect()
    if conn is None:
        return lines
    try:
        for st in (steps or a["steps"]):
            k = st[0]
            if k == "Q":
                enc = st[2] if len(st) > 2 else None
                sql = fmt(st[1], ctx)
                data = sql if isinstance(sql, bytes) else sql.encode(enc_of(enc))
                conn.send(b"Q" + (len(data) + 5).to_bytes(4, "big") + data + b"\x00")
                res = conn.until_ready(1, STEP_TIMEOUT)
                lines.append("Q %s -> %s" % (_short(sql), summarize(res)))
            elif k == "EXT":
                enc = st[3] if len(st) > 3 else None
                sql = fmt(st[1], ctx)
                conn.send(build_raw([("P", "", sql), ("B", "", ""), ("D", "P", ""), ("E", ""), ("S",)],
                                    ctx, enc_of(enc)))
                res = conn.until_ready(1, STEP_TIMEOUT)
                lines.append("EXT %s -> %s" % (_short(sql), summarize(res)))
            elif k == "RAW":
                enc = st[3] if len(st) > 3 else None
                conn.send(build_raw(st[1], ctx, enc_of(enc)))
                res = conn.until_ready(st[2], STEP_TIMEOUT)
                lines.append("RAW %s -> %s" % (_short_msgs(st[1]), summarize(res)))
            elif k == "DIRECT":
                d = env.direct(ctx["db"])
                d.exec_ok(fmt(st[1], ctx))
                d.close()
                lines.append("DIRECT(upstream) %s" % _short(st[1]))
            elif k == "SLEEP":
                time.sleep(st[1])
            elif k == "NEWCONN":
                conn.close()
                conn = connect()
                if conn is None:
                    return lines
                lines.append("new connection")
            if conn is not None and any(x == "CLOSED" for x in (res if k in ("Q", "EXT", "RAW") else [])):
                lines.append("connection closed")
                break
    finally:
        if conn is not None:
            conn.close()
    return lines


def _short(s, n=160):
    if isinstance(s, bytes):
        s = repr(s)
    s = " ".join(s.split())
    return s if len(s) <= n else s[:n] + "..."


def _short_msgs(msgs):
    out = []
    for m in msgs:
        if m[0] == "P":
            out.append("P(%s,%s%s)" % (_nm(m[1]), _short(m[2], 60), ",+trail" if len(m) > 3 else ""))
        elif m[0] == "B":
            out.append("B(%s,%s)" % (_nm(m[1]), _nm(m[2])))
        elif m[0] == "E":
            out.append("E(%s)" % _nm(m[1]))
        elif m[0] == "C":
            out.append("C(%s,%s%s)" % (m[1], _nm(m[2]), ",+trail" if len(m) > 3 else ""))
        else:
            out.append(m[0])
    return " ".join(out)


def _nm(n):
    if len(n) > 20:
        return "'%s'*%d+'%s'" % (n[0], len(n) - 1, n[-1]) if len(set(n[:-1])) == 1 else n[:10] + "..."
    return repr(n)


def fingerprint(env, db):
    c = env.direct(db)
    try:
        res = c.query(FINGERPRINT)
        for m in res:
            if isinstance(m, Msg) and m.t == b"D":
                return tuple(m.datarow())
        raise RuntimeError("fingerprint failed: %s" % summarize(res))
    finally:
        c.close()


def reset(env, db):
    c = env.direct(db)
    try:
        c.exec_ok(RESET)
    finally:
        c.close()


def run_attack(env, idx, a):
    db = "rt_%03d" % idx
    ctx = {"db": db, "port": env.pgport,
           "conn": "host=127.0.0.1 port=%d dbname=%s user=postgres" % (env.pgport, db)}
    rec = dict(a)
    rec["db"] = db
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(ATTACK_TIMEOUT)
    try:
        c = env.direct("postgres")
        c.exec_ok("DROP DATABASE IF EXISTS %s; " % db)
        c.exec_ok("CREATE DATABASE %s TEMPLATE rt_tmpl" % db)
        for suffix, sql in a["extra_dbs"].items():
            c.exec_ok("DROP DATABASE IF EXISTS %s_%s" % (db, suffix))
            c.exec_ok("CREATE DATABASE %s_%s TEMPLATE rt_tmpl" % (db, suffix))
        c.close()
        for suffix, sql in a["extra_dbs"].items():
            d = env.direct(db + "_" + suffix)
            d.exec_ok(fmt(sql, ctx))
            d.close()
        if a["setup"]:
            d = env.direct(db)
            d.exec_ok(fmt(a["setup"], ctx))
            d.close()
        reset(env, db)
        fp0 = fingerprint(env, db)
        rec["direct"] = run_steps(env, a, ctx, env.pgport, a.get("direct_steps"))
        time.sleep(0.2)
        fp1 = fingerprint(env, db)
        rec["fp_direct"] = (fp0, fp1)
        if fp1 == fp0:
            rec["result"] = "BROKEN"
            return rec
        reset(env, db)
        fp2 = fingerprint(env, db)
        if a["catalog_wait"]:
            time.sleep(CATALOG_WAIT)
        # control: does merely connecting through airlock (its own catalog reads) change anything?
        idle = run_steps(env, a, ctx, env.alport, [("Q", "SELECT 1")])
        time.sleep(0.3)
        fp2b = fingerprint(env, db)
        if fp2b != fp2:
            rec["idle_change"] = "connecting through airlock alone changed %s -> %s (%s)" % (fp2, fp2b, idle)
            fp2 = fp2b
        signal.alarm(ATTACK_TIMEOUT)
        t0 = time.time()
        rec["airlock"] = run_steps(env, a, ctx, env.alport)
        rec["airlock_secs"] = round(time.time() - t0, 2)
        time.sleep(0.3)
        fp3 = fingerprint(env, db)
        rec["fp_airlock"] = (fp2, fp3)
        rec["result"] = "LEAK" if fp3 != fp2 else "PASS"
    except HardTimeout:
        rec["result"] = rec.get("result") or "BROKEN"
        rec.setdefault("airlock", []).append("HARD TIMEOUT")
        # a hard timeout in the airlock phase with no change is still "blocked"
        if "fp_direct" in rec and rec["fp_direct"][0] != rec["fp_direct"][1]:
            try:
                signal.alarm(10)
                fp3 = fingerprint(env, db)
                rec["result"] = "LEAK" if fp3 != fp2 else "PASS"
            except Exception:  # noqa: BLE001
                rec["result"] = "BROKEN"
    except Exception as e:  # noqa: BLE001
        rec["result"] = "BROKEN"
        rec["error"] = str(e)[:600]
    finally:
        signal.alarm(0)
    return rec


def sanity(env):
    """Step 1: a plain SELECT passes, a plain INSERT is held and never reaches the database."""
    out = []
    c = env.direct("postgres")
    c.exec_ok("DROP DATABASE IF EXISTS rt_sanity")
    c.exec_ok("CREATE DATABASE rt_sanity TEMPLATE rt_tmpl")
    c.close()
    time.sleep(0.5)
    a = Conn("127.0.0.1", env.alport, [("user", "postgres"), ("database", "rt_sanity")], timeout=STEP_TIMEOUT)
    r1 = a.query("SELECT count(*) FROM victim", timeout=STEP_TIMEOUT)
    t0 = time.time()
    r2 = a.query("INSERT INTO victim VALUES (99)", timeout=STEP_TIMEOUT)
    dt = time.time() - t0
    a.close()
    fp = fingerprint(env, "rt_sanity")
    out.append("SELECT count(*) FROM victim -> %s" % summarize(r1))
    out.append("INSERT INTO victim VALUES (99) -> %s (%.1f s)" % (summarize(r2), dt))
    out.append("victim rows afterwards (direct): %s (5 = INSERT did not reach the database)" % fp[1])
    ok = any(isinstance(m, Msg) and m.t == b"D" for m in r1) and fp[1] == "5"
    return ok, out


def write_report(recs, path, airlock_bin, sanity_lines=()):
    n = len(recs)
    leaks = [r for r in recs if r["result"] == "LEAK"]
    blocked = [r for r in recs if r["result"] == "PASS"]
    broken = [r for r in recs if r["result"] == "BROKEN"]
    out = []
    out.append("# airlock red-team report\n")
    out.append("Binary: `%s`  \nRun: %s  \n" % (airlock_bin, time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())))
    out.append("\n**attacks: %d, leaks: %d, blocked: %d, broken: %d**\n" % (n, len(leaks), len(blocked), len(broken)))
    out.append("\nPASS = blocked (database unchanged through airlock); LEAK = changed through airlock "
               "without approval; BROKEN = positive control (direct to PostgreSQL) did not change the "
               "database. Every attack's planted objects were created directly upstream as superuser; "
               "the client connected to airlock as `postgres` (superuser) unless the startup column says otherwise.\n")
    if sanity_lines:
        out.append("\n## Sanity (step 1)\n\n```\n%s\n```\n" % "\n".join(sanity_lines))
    out.append("\n| # | class | attack | protocol | in block | result | airlock said |\n|---|---|---|---|---|---|---|\n")
    for i, r in enumerate(recs, 1):
        said = "; ".join(r.get("airlock", []))[-160:] if r["result"] != "BROKEN" else (r.get("error") or "")[:160]
        said = said.replace("|", "\\|").replace("\n", " ")
        out.append("| %d | %d | %s | %s | %s | **%s** | %s |\n" % (
            i, r["cls"], r["name"], r["proto"], "yes" if r["block"] else "no", r["result"], said))
    out.append("\n## Per class\n\n| class | attacks | leaks | blocked | broken |\n|---|---|---|---|---|\n")
    for cl in sorted({r["cls"] for r in recs}):
        rs = [r for r in recs if r["cls"] == cl]
        out.append("| %d %s | %d | %d | %d | %d |\n" % (cl, CLASS_NAMES.get(cl, ""), len(rs),
                   sum(r["result"] == "LEAK" for r in rs), sum(r["result"] == "PASS" for r in rs),
                   sum(r["result"] == "BROKEN" for r in rs)))
    out.append("\n## LEAKs, one line each\n\n")
    for r in leaks:
        out.append("- **%s** (class %d): %s\n" % (r["name"], r["cls"], one_liner(r)))
    out.append("\n## Details of every LEAK\n")
    if not leaks:
        out.append("\nNone.\n")
    for r in leaks:
        out.append(_detail(r))
    if broken:
        out.append("\n## BROKEN attacks\n")
        for r in broken:
            out.append(_detail(r))
    out.append("\n## Details of blocked attacks\n")
    for r in blocked:
        out.append(_detail(r))
    with open(path, "w") as f:
        f.write("".join(out))


CLASS_NAMES = {1: "casts", 2: "opclasses/opfamilies", 3: "pg_catalog objects / replaced built-ins",
               4: "parser interpretations", 5: "extension membership", 6: "SQL given as text",
               7: "search_path steering bodies", 8: "client encodings", 9: "backstop / blocks / catalog window",
               10: "session-model drift (wire)", 11: "startup parameters"}


def _step_text(st):
    k = st[0]
    if k in ("Q", "EXT"):
        return "%s %s" % ("Query" if k == "Q" else "Parse/Bind/Execute/Sync", _short(st[1], 220))
    if k == "RAW":
        return "[" + _short_msgs(st[1]) + "]"
    if k == "DIRECT":
        return "(upstream, past airlock) " + _short(st[1], 200)
    if k == "SLEEP":
        return "sleep %ss" % st[1]
    if k == "NEWCONN":
        return "(new connection)"
    return repr(st)


def one_liner(r):
    s = ""
    if r["setup"]:
        s += "plant `%s`; " % _short(r["setup"], 260).replace("`", "'")
    if r.get("startup"):
        s += "startup %s; " % (r["startup"],)
    s += "send " + " ; ".join("`%s`" % _step_text(st).replace("`", "'") for st in r["steps"])
    return s


def _detail(r):
    s = "\n### [%s] class %d: %s (%s, %s)\n\n" % (r["result"], r["cls"], r["name"], r["proto"],
                                                   "in BEGIN block" if r["block"] else "no block")
    if r.get("desc"):
        s += "%s\n\n" % r["desc"]
    if r.get("startup"):
        s += "Startup packet parameters (in order): `%s`\n\n" % (r["startup"],)
    if r["setup"]:
        s += "Planted directly upstream (superuser, in the target database):\n\n```sql\n%s\n```\n\n" % (
            r["setup"].replace(";", ";\n").strip())
    if r.get("extra_dbs"):
        s += "Extra databases: %s\n\n" % ({k: v for k, v in r["extra_dbs"].items()},)
    s += "Client sequence:\n\n```\n"
    for st in r["steps"]:
        s += "%r\n" % (st,)
    s += "```\n\n"
    if r.get("fp_direct"):
        s += "Direct to PostgreSQL (marker rows, victim rows): %s -> %s  \n" % r["fp_direct"]
    if r.get("fp_airlock"):
        s += "Through airlock: %s -> %s (%.2f s)  \n" % (r["fp_airlock"][0], r["fp_airlock"][1],
                                                         r.get("airlock_secs", 0))
    if r.get("error"):
        s += "Error: `%s`  \n" % r["error"].replace("\n", " ")
    if r.get("idle_change"):
        s += "Note: %s  \n" % r["idle_change"]
    s += "\nTranscript direct:\n\n```\n%s\n```\n" % "\n".join(r.get("direct", []))
    if r.get("airlock"):
        s += "\nTranscript through airlock:\n\n```\n%s\n```\n" % "\n".join(r["airlock"])
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--airlock-bin", default=os.path.join(HERE, "bin", "airlock-58115bf"))
    ap.add_argument("--policies", default=os.path.join(HERE, "..", "..", "policies"))
    ap.add_argument("--only", action="append", help="run attacks whose name contains this (repeatable)")
    ap.add_argument("--class", dest="classes", type=int, action="append")
    ap.add_argument("--report", default=os.path.join(HERE, "REPORT.md"))
    ap.add_argument("--json", default=os.path.join(HERE, "run", "results.json"))
    ap.add_argument("--keep", action="store_true", help="keep the temp cluster directory")
    args = ap.parse_args()

    sel = [a for a in ATTACKS
           if (not args.only or any(o in a["name"] for o in args.only))
           and (not args.classes or a["cls"] in args.classes)]
    env = Env(os.path.abspath(args.airlock_bin), args.policies, keep=args.keep)
    recs = []
    sanity_lines = []
    try:
        env.start()
        print("postgres :%d  airlock :%d  tmp %s" % (env.pgport, env.alport, env.tmp), flush=True)
        ok, sanity_lines = sanity(env)
        print("sanity %s:\n  %s" % ("ok" if ok else "FAILED", "\n  ".join(sanity_lines)), flush=True)
        for i, a in enumerate(sel, 1):
            idx = ATTACKS.index(a) + 1
            r = run_attack(env, idx, a)
            recs.append(r)
            print("%-6s class %-2d %-45s %s" % (r["result"], a["cls"], a["name"],
                                                (r.get("error") or "")[:120]), flush=True)
    finally:
        env.stop()
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(recs, f, indent=1, default=str)
    write_report(recs, args.report, args.airlock_bin, sanity_lines)
    n = len(recs)
    L = sum(r["result"] == "LEAK" for r in recs)
    Bk = sum(r["result"] == "PASS" for r in recs)
    K = sum(r["result"] == "BROKEN" for r in recs)
    print("attacks: %d, leaks: %d, blocked: %d, broken: %d" % (n, L, Bk, K))


if __name__ == "__main__":
    main()
