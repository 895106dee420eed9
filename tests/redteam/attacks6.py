#!/usr/bin/env python3
"""Red-team round 6 against airlock: code that a TYPE runs with no function name in the text.

Written without sight of airlock's source (src/, docs/), from PRODUCT.md and the round-5
harness only.  Starts its own PostgreSQL 15 cluster (as the postgres user) and, for every
attack, a fresh airlock in front of it (policy: policies3/, the permissive one), and runs:
  (1) the positive control: the same client sequence DIRECT against PostgreSQL (with the
      attack's `late` planting applied first); if no marker row appears the attack is BROKEN;
  (2) fresh airlock, reset and re-plant, wait; for attacks with `late` SQL: wait 1 s (airlock
      has loaded the catalog), apply the late change directly upstream, wait again (past the
      poll);
  (3) the sequence THROUGH airlock.
LEAK = a marker row appeared through airlock.  The sink is public.mark(tag), a SECURITY
DEFINER function inserting into public.marker through dblink_exec (gets past read-only
transactions).  Attacks flagged window=True change the catalog directly a moment before the
read (inside the catalog-poll window) and count as window-only leaks.

Usage: attacks6.py [--airlock-bin PATH] [--shard I/N] [--skip NAME]... [NAME]...
       VERBOSE=1 prints every step; KEEP=1 keeps the cluster directory.
"""
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pgwire as w  # noqa: E402

AIRLOCK = "/work/main/target/debug/airlock"
POLICIES = os.path.join(HERE, "policies3")
PGBIN = "/usr/lib/postgresql/15/bin"
HOLD_TIMEOUT = 1.5
POLL_WAIT = float(os.environ.get("RT6_POLL_WAIT", "2.0"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Env:
    def __init__(self):
        self.base = "/tmp/rt6run.%d" % os.getpid()
        self.pgport = free_port()
        self.alport = free_port()
        self.adport = free_port()
        self.airlock = None

    def start(self):
        os.makedirs(self.base)
        shutil.chown(self.base, "postgres")
        data = self.base + "/data"
        subprocess.run(["runuser", "-u", "postgres", "--", PGBIN + "/initdb", "-D", data, "-A", "trust",
                        "-U", "postgres", "--no-sync"], check=True, stdout=subprocess.DEVNULL)
        with open(data + "/postgresql.conf", "a") as f:
            f.write("\nport=%d\nlisten_addresses='127.0.0.1'\nunix_socket_directories='%s'\n"
                    "max_prepared_transactions=10\nfsync=off\nautovacuum=off\n" % (self.pgport, self.base))
        subprocess.run(["runuser", "-u", "postgres", "--", PGBIN + "/pg_ctl", "-D", data, "-l",
                        self.base + "/pg.log", "-w", "start"], check=True, stdout=subprocess.DEVNULL)
        c = self.direct()
        c.exec_ok("""
create extension dblink;
create table public.marker(v text, at timestamptz default clock_timestamp());
grant all on public.marker to public;
create function public.mark(t text) returns int language plpgsql security definer as $f$
begin
  perform public.dblink_exec('host=127.0.0.1 port=%d dbname=postgres user=postgres',
                             'insert into public.marker(v) values(' || quote_literal(t) || ')');
  return 1;
end $f$;
grant execute on function public.mark(text) to public;
""" % self.pgport)
        c.close()

    def start_airlock(self):
        self.stop_airlock()
        self.airlock_log = open(self.base + "/airlock.log", "a")
        store = "%s/airlock.db" % self.base
        for sfx in ("", "-wal", "-shm"):
            try:
                os.unlink(store + sfx)
            except FileNotFoundError:
                pass
        self.airlock = subprocess.Popen(
            [AIRLOCK, "serve", "--listen", "127.0.0.1:%d" % self.alport,
             "--upstream", "127.0.0.1:%d" % self.pgport,
             "--admin-listen", "127.0.0.1:%d" % self.adport,
             "--policies", POLICIES, "--store", "sqlite://" + store],
            stdout=self.airlock_log, stderr=subprocess.STDOUT, cwd=self.base)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.alport), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)

    def stop_airlock(self):
        if self.airlock:
            self.airlock.terminate()
            try:
                self.airlock.wait(10)
            except subprocess.TimeoutExpired:
                self.airlock.kill()
                self.airlock.wait()
            self.airlock = None

    def stop(self):
        self.stop_airlock()
        subprocess.run(["runuser", "-u", "postgres", "--", PGBIN + "/pg_ctl", "-D", self.base + "/data",
                        "-m", "immediate", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not os.environ.get("KEEP"):
            shutil.rmtree(self.base, ignore_errors=True)

    def direct(self, user="postgres", **kw):
        p = {"user": user, "database": "postgres"}
        p.update(kw)
        return w.Conn("127.0.0.1", self.pgport, p, timeout=30)

    def markers(self, tag):
        c = self.direct()
        try:
            return int(c.scalar("select count(*) from public.marker where v like %s" % q(tag + "%")))
        finally:
            c.close()

    def clear_marker(self):
        c = self.direct()
        c.exec_ok("delete from public.marker")
        c.close()


def q(s):
    return "'" + s.replace("'", "''") + "'"


def is_hold(m):
    if isinstance(m, str):
        return m in ("TIMEOUT", "CLOSED")
    if m.t in (b"E", b"N"):
        txt = (m.fields.get("M") or "") + (m.fields.get("D") or "")
        return "airlock" in txt.lower()
    return False


class Ctx:
    """Runs one sequence against the direct port or the airlock port."""

    def __init__(self, env, port, via, S, T):
        self.env, self.port, self.via, self.S, self.T = env, port, via, S, T
        self.conns = {}
        self.log = []
        self.held = []
        self.notes = []

    @property
    def direct(self):
        return self.via == "direct"

    def conn(self, name="a", user="postgres", **params):
        if name not in self.conns:
            p = {"user": user, "database": "postgres"}
            p.update(params)
            self.conns[name] = w.Conn("127.0.0.1", self.port, p, timeout=10)
        return self.conns[name]

    def _record(self, what, res):
        hs = [m for m in res if is_hold(m)]
        if hs:
            self.held.append((what, hs[0]))
        self.log.append("%s -> %s" % (what[:100].replace("\n", " "), w.summarize(res)[:220]))
        return res

    def s(self, sql):
        return sql.replace("$S", self.S).replace("$T", self.T)

    def q(self, sql, c="a", timeout=HOLD_TIMEOUT, **params):
        sql = self.s(sql)
        cn = self.conn(c, **params)
        return self._record("[%s] Q %s" % (c, sql), cn.query(sql, timeout=timeout))

    def raw(self, what, data, c="a", n=1, timeout=HOLD_TIMEOUT, **params):
        cn = self.conn(c, **params)
        cn.send(data)
        return self._record("[%s] %s" % (c, what), cn.until_ready(n, timeout))

    def send(self, data, c="a"):
        self.conn(c).send(data)

    def wait(self, what, c="a", n=1, timeout=HOLD_TIMEOUT):
        return self._record("[%s] %s" % (c, what), self.conns[c].until_ready(n, timeout))

    def su(self, sql):
        c = self.env.direct()
        try:
            c.exec_ok(self.s(sql))
        finally:
            c.close()

    def scalar(self, sql):
        c = self.env.direct()
        try:
            return c.scalar(self.s(sql))
        finally:
            c.close()

    def emulate_recreate(self, name, text, c="a"):
        """Direct control only: what airlock documents it sends before a Bind of a named
        statement after user code may have run (Close + Parse of the client's text)."""
        if self.direct:
            self.raw("(emulated airlock re-create of %r)" % name, w.C("S", name) + w.P(name, text) + w.S(), c=c)

    def close(self):
        for cn in self.conns.values():
            cn.close()
        self.conns = {}




class Attack:
    def __init__(self, name, setup, seq, teardown, desc, group, late, window):
        self.name, self.setup, self.seq, self.teardown, self.desc, self.group = \
            name, setup, seq, teardown, desc, group
        self.late, self.window = late, window


ATTACKS = []


def attack(name, setup="", teardown="", group="", late="", window=False):
    def deco(fn):
        ATTACKS.append(Attack(name, setup, fn, teardown, (fn.__doc__ or "").strip(), group, late, window))
        return fn
    return deco


def schema(name):
    return "a6_" + name


def run_sql(env, sql, S, T):
    if not sql:
        return
    c = env.direct()
    try:
        c.exec_ok(sql.replace("$S", S).replace("$T", T).replace("$PORT", str(env.pgport)))
    finally:
        c.close()


def reset(env, a):
    S, T = schema(a.name), a.name
    run_sql(env, a.teardown, S, T)
    run_sql(env, "drop schema if exists %s cascade" % S, S, T)
    run_sql(env, "create schema %s; grant usage, create on schema %s to public" % (S, S), S, T)
    run_sql(env, a.setup, S, T)
    env.clear_marker()


def run_seq(env, a, port, via):
    ctx = Ctx(env, port, via, schema(a.name), a.name)
    try:
        a.seq(ctx)
    except Exception as e:  # noqa
        ctx.log.append("EXC %r" % e)
    finally:
        ctx.close()
    time.sleep(0.4)
    return ctx, env.markers(a.name)


def run_one(env, a):
    reset(env, a)
    if a.late:
        run_sql(env, a.late, schema(a.name), a.name)
        env.clear_marker()
    dctx, ctl = run_seq(env, a, env.pgport, "direct")
    if ctl == 0:
        return "BROKEN", dctx, None
    env.start_airlock()
    reset(env, a)
    time.sleep(POLL_WAIT)
    if a.late:
        run_sql(env, a.late, schema(a.name), a.name)
        env.clear_marker()
        time.sleep(POLL_WAIT)
    actx, got = run_seq(env, a, env.alport, "airlock")
    if got and not actx.held:
        verdict = "LEAK"
    elif got:
        verdict = "LEAK?(marker+hold)"
    else:
        verdict = "BLOCKED"
    return verdict, dctx, actx


def ext(stmt="", params=(), portal="", rf=()):
    return w.B(portal, stmt, params, result_formats=rf) + w.E(portal) + w.S()


def Bbin(portal, stmt, params):
    """Bind with all parameters in binary format (params: list of bytes)."""
    body = w.cstr(portal) + w.cstr(stmt) + struct.pack("!HH", 1, 1) + struct.pack("!H", len(params))
    for p in params:
        body += struct.pack("!i", len(p)) + p
    body += struct.pack("!H", 0)
    return w.msg(b"B", body)


MARKF = "perform public.mark('$T');"

# A base type bt (I/O: built-in int4 C functions under LANGUAGE internal wrappers) ----------
BT_CORE = r"""
create type $S.bt;
create function $S.btin(cstring) returns $S.bt language internal immutable strict as 'int4in';
create function $S.btout($S.bt) returns cstring language internal immutable strict as 'int4out';
create function $S.btrecv(internal) returns $S.bt language internal immutable strict as 'int4recv';
create function $S.btsend0($S.bt) returns bytea language internal immutable strict as 'int4send';
create type $S.bt (input = $S.btin, output = $S.btout, receive = $S.btrecv, send = $S.btsend0,
                   internallength = 4, passedbyvalue, alignment = int4);
"""
# plpgsql typsend (bt -> bytea)
SND = r"""
create function $S.snd(x $S.bt) returns bytea language plpgsql immutable strict as $b$
begin perform public.mark('$T'); return '\x00000005'::bytea; end $b$;
"""
# plpgsql typmod_in (cstring[] -> int4)
TMI = r"""
create function $S.tmi(cstring[]) returns int language plpgsql immutable strict as $b$
begin perform public.mark('$T'); return 5; end $b$;
"""
BT_SEND = BT_CORE + SND + r"""
alter type $S.bt set (send = $S.snd);
create table $S.tb(x $S.bt);
insert into $S.tb values ('5');
"""
BT_TYPMOD = BT_CORE + TMI + "alter type $S.bt set (typmod_in = $S.tmi);\n"

# A range type whose canonical function is plpgsql (set through pg_range: CREATE TYPE cannot
# take a plpgsql canonical because the function must exist before the type)
CANON_FN = r"""
create type $S.myr as range (subtype = int4);
create function $S.canon(r $S.myr) returns $S.myr language plpgsql immutable strict as $b$
begin perform public.mark('$T'); return r; end $b$;
"""
CANON_SET = "update pg_range set rngcanonical = '$S.canon'::regproc where rngtypid = '$S.myr'::regtype;\n"
CANON = CANON_FN + CANON_SET

# A domain whose CHECK calls mark(); and types built on it
DOM = r"""
create domain $S.d as int4 check (public.mark('$T') = 1);
"""
DOM_COMP = DOM + "create type $S.comp as (a $S.d);\n"


def B_parse_only(ctx, text, types=()):
    """Extended protocol: Parse (+ Describe statement) + Sync, never Bind."""
    return ctx.raw("Parse+Describe only: " + text, w.P("", ctx.s(text), types) + w.D("S", "") + w.S())


# =============================================================================================
# 1. typmod_in reached without a `t(n)` cast in the text
# =============================================================================================

@attack("typmod_regtype_literal", setup=BT_TYPMOD, group="typmod_in")
def a_t1(ctx):
    """`select '$S.bt(3)'::regtype`: regtypein parses the string as a type name and computes the
    typmod, calling the plpgsql typmod_in.  The type reference is inside a string literal."""
    ctx.q("select '$S.bt(3)'::regtype")


@attack("typmod_to_regtype", setup=BT_TYPMOD, group="typmod_in")
def a_t2(ctx):
    """`select to_regtype('$S.bt(3)')` (built-in, no side effects) runs typmod_in at execution."""
    ctx.q("select to_regtype('$S.bt(3)')")


@attack("typmod_to_regtype_concat", setup=BT_TYPMOD, group="typmod_in")
def a_t3(ctx):
    """The type name assembled at run time: to_regtype(concat('$S', '.b', 't(3)'))."""
    ctx.q("select to_regtype(concat('$S', '.b', 't(3)'))")


@attack("typmod_regtype_parse_only", setup=BT_TYPMOD, group="typmod_in")
def a_t4(ctx):
    """Extended protocol, Parse + Describe + Sync only (no Bind): the unknown literal is coerced to
    regtype during parse analysis, so typmod_in runs at Parse."""
    B_parse_only(ctx, "select '$S.bt(3)'::regtype")


@attack("typmod_regtype_param", setup=BT_TYPMOD, group="typmod_in")
def a_t5(ctx):
    """Parse `select $1::regtype`, Bind parameter '$S.bt(3)' (the type is only in a parameter)."""
    ctx.raw("P/B/E $1::regtype", w.P("", "select $1::text::regtype") + ext("", [ctx.s("$S.bt(3)")]))


@attack("typmod_unicode_ident", setup=BT_TYPMOD, group="typmod_in")
def a_t6(ctx):
    """Type name written as a Unicode-escaped identifier: null::$S.U&"\\0062t"(3)."""
    ctx.q('select null::$S.U&"\\0062\\0074"(3)')


@attack("typmod_user_schema_search_path", setup=r"""
create schema if not exists postgres;
create type postgres.bt;
create function postgres.btin(cstring) returns postgres.bt language internal immutable strict as 'int4in';
create function postgres.btout(postgres.bt) returns cstring language internal immutable strict as 'int4out';
create function postgres.tmi(cstring[]) returns int language plpgsql immutable strict as $b$
begin perform public.mark('$T'); return 5; end $b$;
create type postgres.bt (input = postgres.btin, output = postgres.btout, internallength = 4,
                         passedbyvalue, alignment = int4, typmod_in = postgres.tmi);
""", teardown="drop schema if exists postgres cascade", group="typmod_in")
def a_t7(ctx):
    """The type lives in schema "postgres" (found through the default search_path "$user",
    public): `select null::bt(3)` with an unqualified name."""
    ctx.q("select null::bt(3)")


@attack("typmod_pg_catalog_type", setup=r"""
set allow_system_table_mods = on;
create type pg_catalog.rt6bt;
create function pg_catalog.rt6btin(cstring) returns pg_catalog.rt6bt language internal immutable strict as 'int4in';
create function pg_catalog.rt6btout(pg_catalog.rt6bt) returns cstring language internal immutable strict as 'int4out';
create function pg_catalog.rt6tmi(cstring[]) returns int language plpgsql immutable strict as $b$
begin perform public.mark('$T'); return 5; end $b$;
create type pg_catalog.rt6bt (input = pg_catalog.rt6btin, output = pg_catalog.rt6btout, internallength = 4,
                              passedbyvalue, alignment = int4, typmod_in = pg_catalog.rt6tmi);
""", teardown="set allow_system_table_mods = on; drop type if exists pg_catalog.rt6bt cascade; "
              "drop function if exists pg_catalog.rt6tmi(cstring[])", group="typmod_in")
def a_t8(ctx):
    """A user type created in pg_catalog (allow_system_table_mods at planting), typmod_in plpgsql:
    `select null::rt6bt(3)`."""
    ctx.q("select null::rt6bt(3)")


@attack("typmod_builtin_bit_pgtype_update", setup=TMI + r"""
update pg_type set typmodin = '$S.tmi'::regproc where oid = 'bit'::regtype;
""", teardown="update pg_type set typmodin = 'bittypmodin'::regproc where oid = 'bit'::regtype", group="typmod_in")
def a_t9(ctx):
    """Built-in type bit with typmodin switched to a plpgsql function by UPDATE pg_type:
    `select B'101'::bit(3)` names only built-ins."""
    ctx.q("select B'101'::bit(3)")


@attack("typmod_builtin_timetz_replaced_in_place", setup=r"""
create or replace function pg_catalog.timetztypmodin(cstring[]) returns int4 language plpgsql immutable strict as $b$
begin perform public.mark('$T'); return 3; end $b$;
""", teardown="create or replace function pg_catalog.timetztypmodin(cstring[]) returns int4 language internal "
              "immutable strict parallel safe as 'timetztypmodin'", group="typmod_in")
def a_t10(ctx):
    """pg_catalog.timetztypmodin replaced in place (CREATE OR REPLACE, same OID) by plpgsql:
    `select null::time(2) with time zone`.
    EXPECTED BROKEN (kept as the record): fmgr looks built-in function OIDs up in its compiled-in
    table (fmgr_isbuiltin) before pg_proc, so replacing a pg_catalog C function in place does not
    change what runs; the direct control writes no marker."""
    ctx.q("select null::time(2) with time zone")


@attack("typmod_jsonb_to_record_coldef", setup=BT_TYPMOD, group="typmod_in")
def a_t11(ctx):
    """The typmod is in a column definition list of a built-in record function:
    select * from jsonb_to_record('{"x":1}') as r(x $S.bt(3))."""
    ctx.q("select * from jsonb_to_record('{\"x\":1}') as r(x $S.bt(3))")


@attack("typmod_alter_type_late", setup=BT_CORE + TMI, late="alter type $S.bt set (typmod_in = $S.tmi)",
        group="typmod_in")
def a_t12(ctx):
    """bt planted with no typmod_in; after airlock loaded the catalog, ALTER TYPE bt SET
    (TYPMOD_IN = plpgsql) directly; wait past the poll; `select null::$S.bt(3)`."""
    ctx.q("select null::$S.bt(3)")


@attack("typmod_pgtype_update_late", setup=BT_CORE + TMI,
        late="update pg_type set typmodin = '$S.tmi'::regproc where oid = '$S.bt'::regtype", group="typmod_in")
def a_t13(ctx):
    """As typmod_alter_type_late but the change is a raw UPDATE pg_type (no DDL, no event)."""
    ctx.q("select null::$S.bt(3)")


# =============================================================================================
# 2. typsend: binary result formats
# =============================================================================================

@attack("send_binary_result_literal", setup=BT_SEND, group="typsend")
def a_s1(ctx):
    """P/B/E `select '5'::$S.bt` with result format binary: the plpgsql send runs per row."""
    ctx.raw("P/B(binary)/E", w.P("", ctx.s("select '5'::$S.bt as x")) + ext("", rf=(1,)))


@attack("send_binary_result_table", setup=BT_SEND, group="typsend")
def a_s2(ctx):
    """P/B/E `select x from $S.tb` (a plain table column of bt), result format binary."""
    ctx.raw("P/B(binary)/E", w.P("", ctx.s("select x from $S.tb")) + ext("", rf=(1,)))


@attack("send_binary_result_view", setup=BT_SEND + "create view $S.vv as select x as y from $S.tb;\n",
        group="typsend")
def a_s3(ctx):
    """The type reached only through a view: select * from $S.vv, result format binary."""
    ctx.raw("P/B(binary)/E", w.P("", ctx.s("select * from $S.vv")) + ext("", rf=(1,)))


@attack("send_binary_whole_row", setup=BT_SEND, group="typsend")
def a_s4(ctx):
    """Whole-row reference `select t from $S.tb t` in binary: record_send calls the column's send."""
    ctx.raw("P/B(binary)/E", w.P("", ctx.s("select t from $S.tb t")) + ext("", rf=(1,)))


@attack("send_binary_array_agg", setup=BT_SEND, group="typsend")
def a_s5(ctx):
    """`select array_agg(x) from $S.tb` in binary: array_send calls the element's send."""
    ctx.raw("P/B(binary)/E", w.P("", ctx.s("select array_agg(x) from $S.tb")) + ext("", rf=(1,)))


@attack("send_binary_cursor_simple", setup=BT_SEND, group="typsend")
def a_s6(ctx):
    """Simple protocol only: BEGIN; DECLARE c BINARY CURSOR FOR SELECT x FROM tb; FETCH c; COMMIT."""
    ctx.q("begin")
    ctx.q("declare c binary cursor for select x from $S.tb")
    ctx.q("fetch c")
    ctx.q("commit")


@attack("send_copy_binary", setup=BT_SEND, group="typsend")
def a_s7(ctx):
    """COPY $S.tb TO STDOUT (FORMAT binary): CopyTo calls the column's send."""
    ctx.q("copy $S.tb to stdout (format binary)")


@attack("send_copy_query_binary", setup=BT_SEND, group="typsend")
def a_s8(ctx):
    """COPY (SELECT x FROM tb) TO STDOUT WITH (FORMAT binary)."""
    ctx.q("copy (select x from $S.tb) to stdout with (format binary)")


@attack("send_domain_over_type", setup=BT_SEND + "create domain $S.dbt as $S.bt;\n"
        "create table $S.tdb(y $S.dbt); insert into $S.tdb values ('5');\n", group="typsend")
def a_s9(ctx):
    """A domain over bt (the domain's send is the base type's): select y from tdb, binary."""
    ctx.raw("P/B(binary)/E", w.P("", ctx.s("select y from $S.tdb")) + ext("", rf=(1,)))


@attack("send_builtin_macaddr8_pgtype_update", setup=r"""
create function $S.m8snd(x macaddr8) returns bytea language plpgsql immutable strict as $b$
begin perform public.mark('$T'); return macaddr8_send(x); end $b$;
update pg_type set typsend = '$S.m8snd'::regproc where oid = 'macaddr8'::regtype;
""", teardown="update pg_type set typsend = 'macaddr8_send'::regproc where oid = 'macaddr8'::regtype",
        group="typsend")
def a_s10(ctx):
    """Built-in macaddr8 whose typsend was switched to plpgsql by UPDATE pg_type:
    select '08:00:2b:01:02:03:04:05'::macaddr8, result format binary."""
    ctx.raw("P/B(binary)/E", w.P("", "select '08:00:2b:01:02:03:04:05'::macaddr8 as m") + ext("", rf=(1,)))


@attack("send_builtin_macaddr8_replaced_in_place", setup=r"""
create or replace function pg_catalog.macaddr8_send(x macaddr8) returns bytea language plpgsql immutable strict as $b$
begin perform public.mark('$T'); return decode(replace(x::text, ':', ''), 'hex'); end $b$;
""", teardown="create or replace function pg_catalog.macaddr8_send(macaddr8) returns bytea language internal "
              "immutable strict parallel safe as 'macaddr8_send'", group="typsend")
def a_s11(ctx):
    """pg_catalog.macaddr8_send replaced in place by plpgsql (same OID, pg_type untouched):
    binary result of a macaddr8 literal.
    EXPECTED BROKEN (kept as the record): as typmod_builtin_timetz_replaced_in_place, built-in
    OIDs resolve through fmgr's compiled-in table, so the plpgsql body never runs."""
    ctx.raw("P/B(binary)/E", w.P("", "select '08:00:2b:01:02:03:04:05'::macaddr8 as m") + ext("", rf=(1,)))


@attack("send_alter_type_late", setup=BT_CORE + SND + "create table $S.tb(x $S.bt); insert into $S.tb values ('5');\n",
        late="alter type $S.bt set (send = $S.snd)", group="typsend")
def a_s12(ctx):
    """bt planted with the built-in int4send; after airlock loaded the catalog, ALTER TYPE bt
    SET (SEND = plpgsql) directly; wait past the poll; select x from tb in binary."""
    ctx.raw("P/B(binary)/E", w.P("", ctx.s("select x from $S.tb")) + ext("", rf=(1,)))


@attack("send_pgtype_update_late", setup=BT_CORE + SND + "create table $S.tb(x $S.bt); insert into $S.tb values ('5');\n",
        late="update pg_type set typsend = '$S.snd'::regproc where oid = '$S.bt'::regtype", group="typsend")
def a_s13(ctx):
    """As send_alter_type_late with a raw UPDATE pg_type."""
    ctx.raw("P/B(binary)/E", w.P("", ctx.s("select x from $S.tb")) + ext("", rf=(1,)))


@attack("send_replaced_in_place_late", setup=BT_SEND,
        late=r"""create or replace function $S.snd(x $S.bt) returns bytea language plpgsql immutable strict as $b$
begin perform public.mark('$T'); return '\x00000006'::bytea; end $b$""", group="typsend")
def a_s14(ctx):
    """Variant: (send is plpgsql from the start) -- the send body is replaced in place after load."""
    ctx.raw("P/B(binary)/E", w.P("", ctx.s("select x from $S.tb")) + ext("", rf=(1,)))


@attack("send_alter_type_window", setup=BT_CORE + SND + "create table $S.tb(x $S.bt); insert into $S.tb values ('5');\n",
        window=True, group="typsend")
def a_s15(ctx):
    """WINDOW: Parse select x from tb; ALTER TYPE bt SET (SEND = plpgsql) directly; at once Bind
    (binary)/Execute."""
    ctx.raw("Parse", w.P("s1", ctx.s("select x from $S.tb")) + w.S())
    ctx.su("alter type $S.bt set (send = $S.snd)")
    ctx.raw("Bind s1 binary", ext("s1", rf=(1,)))


# =============================================================================================
# 3. range canonical
# =============================================================================================

@attack("canon_range_literal", setup=CANON, group="canonical")
def a_c1(ctx):
    """`select '[1,5]'::$S.myr`: range_in calls the plpgsql canonical."""
    ctx.q("select '[1,5]'::$S.myr")


@attack("canon_range_parse_only", setup=CANON, group="canonical")
def a_c2(ctx):
    """Parse + Describe + Sync of `select '[1,5]'::myr` (no Bind): range_in runs in parse analysis."""
    B_parse_only(ctx, "select '[1,5]'::$S.myr")


@attack("canon_constructor", setup=CANON, group="canonical")
def a_c3(ctx):
    """The range's built-in constructor function $S.myr(1, 5) (range_constructor2)."""
    ctx.q("select $S.myr(1, 5)")


@attack("canon_multirange_literal", setup=CANON, group="canonical")
def a_c4(ctx):
    """The multirange literal '{[1,5]}'::$S.myr_multirange (multirange_in -> range_in)."""
    ctx.q("select '{[1,5]}'::$S.myr_multirange")


@attack("canon_table_operator", setup=CANON_FN + "create table $S.rt(r $S.myr); insert into $S.rt values ('[1,5]');\n"
        + CANON_SET, group="canonical")
def a_c5(ctx):
    """A table column of the range; `select r * r from rt` (built-in range_intersect builds a
    new range -> canonical)."""
    ctx.q("select r * r from $S.rt")


@attack("canon_set_late", setup=CANON_FN, late=CANON_SET, group="canonical")
def a_c6(ctx):
    """Range planted without canonical; after load, UPDATE pg_range SET rngcanonical = plpgsql
    directly; wait past the poll; select '[1,5]'::myr."""
    ctx.q("select '[1,5]'::$S.myr")


@attack("canon_json_populate", setup=CANON + "create type $S.rc as (r $S.myr);\n", group="canonical")
def a_c7(ctx):
    """json_populate_record(null::rc, '{"r":"[1,5]"}'): the range input is reached by catalog
    lookup of the composite's column type."""
    ctx.q("select * from json_populate_record(null::$S.rc, '{\"r\":\"[1,5]\"}')")


# =============================================================================================
# 4. domains over/inside other types, and types given only by OID
# =============================================================================================

@attack("dom_json_populate_record", setup=DOM_COMP, group="domains")
def a_d1(ctx):
    """json_populate_record(null::comp, '{"a":1}'): comp's column is a domain whose CHECK calls
    mark(); the domain is reached only through the composite's catalog row."""
    ctx.q("select * from json_populate_record(null::$S.comp, '{\"a\":1}')")


@attack("dom_jsonb_populate_recordset_table_rowtype", setup=DOM + "create table $S.tdom(a $S.d);\n", group="domains")
def a_d2(ctx):
    """jsonb_populate_recordset with a TABLE's row type (a table with a domain column)."""
    ctx.q("select * from jsonb_populate_recordset(null::$S.tdom, '[{\"a\":1}]')")


@attack("dom_record_literal_parse_only", setup=DOM_COMP, group="domains")
def a_d3(ctx):
    """Parse + Describe + Sync of `select '(1)'::comp`: record_in -> domain_in at parse analysis."""
    B_parse_only(ctx, "select '(1)'::$S.comp")


@attack("dom_range_over_domain_parse_only", setup=DOM + "create type $S.rd as range (subtype = $S.d);\n",
        group="domains")
def a_d4(ctx):
    """A range over the domain; Parse only `select '[1,2]'::rd`: range_in calls the subtype input
    (domain_in, CHECK) during parse analysis."""
    B_parse_only(ctx, "select '[1,2]'::$S.rd")


@attack("dom_array_literal_parse_only", setup=DOM, group="domains")
def a_d5(ctx):
    """Parse only `select '{1}'::$S.d[]` (array_in -> domain_in at parse)."""
    B_parse_only(ctx, "select '{1}'::$S.d[]")


@attack("dom_param_oid_text", setup=DOM, group="domains")
def a_d6(ctx):
    """Parse `select $1` with the parameter type given only by OID (the domain's), Bind '1':
    the text names no type; domain_in runs at Bind."""
    oid = int(ctx.scalar("select '$S.d'::regtype::oid"))
    ctx.raw("P(types=[d])/B/E", w.P("", "select $1 as a", [oid]) + ext("", ["1"]))


@attack("dom_param_oid_binary", setup=DOM, group="domains")
def a_d7(ctx):
    """As dom_param_oid_text with a binary parameter (domain_recv -> CHECK)."""
    oid = int(ctx.scalar("select '$S.d'::regtype::oid"))
    ctx.raw("P(types=[d])/B(bin)/E", w.P("", "select $1 as a", [oid]) + Bbin("", "", [struct.pack("!i", 1)])
            + w.E() + w.S())


@attack("dom_param_oid_comp", setup=DOM_COMP, group="domains")
def a_d8(ctx):
    """Parameter type = the composite's OID, text '(1)' (record_in -> domain_in)."""
    oid = int(ctx.scalar("select '$S.comp'::regtype::oid"))
    ctx.raw("P(types=[comp])/B/E", w.P("", "select $1 as a", [oid]) + ext("", ["(1)"]))


@attack("dom_param_oid_canon_range", setup=CANON, group="domains")
def a_d9(ctx):
    """Parameter type = the canonical-range's OID, text '[1,5]' (range_in -> plpgsql canonical)."""
    oid = int(ctx.scalar("select '$S.myr'::regtype::oid"))
    ctx.raw("P(types=[myr])/B/E", w.P("", "select $1 as a", [oid]) + ext("", ["[1,5]"]))


@attack("dom_param_oid_typmod", setup=BT_TYPMOD, group="domains")
def a_d10(ctx):
    """Parse `select $1::regtype` with the parameter typed regtype by OID, Bind '$S.bt(3)'."""
    ctx.raw("P(types=[regtype])/B/E", w.P("", "select $1 as a", [2206]) + ext("", [ctx.s("$S.bt(3)")]))


@attack("dom_check_added_late", setup="create domain $S.d as int4;\ncreate type $S.comp as (a $S.d);\n",
        late="alter domain $S.d add constraint c check (public.mark('$T') = 1)", group="domains")
def a_d11(ctx):
    """Domain planted without a constraint; after load ALTER DOMAIN ADD CONSTRAINT (CHECK calls
    mark) directly; wait past the poll; json_populate_record(null::comp, '{"a":1}')."""
    ctx.q("select * from json_populate_record(null::$S.comp, '{\"a\":1}')")


@attack("subdiff_set_late", setup=r"""
create function $S.sd(a int4, b int4) returns float8 language plpgsql immutable as $b$
begin perform public.mark('$T'); return a - b; end $b$;
create type $S.myr as range (subtype = int4);
create table $S.rt(id serial, r $S.myr);
insert into $S.rt(r) select $S.myr(g, g + 3) from generate_series(1, 1000) g;
analyze $S.rt;
""", late="update pg_range set rngsubdiff = '$S.sd'::regproc where rngtypid = '$S.myr'::regtype",
        group="domains")
def a_d12(ctx):
    """Range planted with no subtype_diff (and analyzed); after load UPDATE pg_range SET
    rngsubdiff = plpgsql; wait past the poll; `select count(*) from rt where r && '[5,10]'`
    (rangesel calls subtype_diff)."""
    ctx.q("select count(*) from $S.rt where r && '[5,10]'")


@attack("dom_explain_values", setup=DOM_COMP, group="domains")
def a_d13(ctx):
    """EXPLAIN (no ANALYZE) select '(1)'::comp -- parse analysis of the literal runs record_in."""
    ctx.q("explain select '(1)'::$S.comp")


# =============================================================================================
# 5. follow-ups on the open classes: input functions reached through containers / type names
#    inside strings
# =============================================================================================

@attack("dom_record_literal_simple", setup=DOM_COMP, group="containers")
def a_f1(ctx):
    """Simple query `select '(1)'::comp` (record_in -> domain_in -> CHECK)."""
    ctx.q("select '(1)'::$S.comp")


@attack("dom_array_literal_simple", setup=DOM, group="containers")
def a_f2(ctx):
    """Simple query `select '{1}'::$S.d[]`."""
    ctx.q("select '{1}'::$S.d[]")


@attack("dom_range_over_domain_simple", setup=DOM + "create type $S.rd as range (subtype = $S.d);\n", group="containers")
def a_f3(ctx):
    """Simple query `select '[1,2]'::rd` (range over the domain)."""
    ctx.q("select '[1,2]'::$S.rd")


@attack("dom_table_rowtype_parse_only", setup=DOM + "create table $S.tdom(a $S.d);\n", group="containers")
def a_f4(ctx):
    """Parse only `select '(1)'::tdom` -- a TABLE's row type with a domain column."""
    B_parse_only(ctx, "select '(1)'::$S.tdom")


@attack("dom_comp_array_parse_only", setup=DOM_COMP, group="containers")
def a_f5(ctx):
    """Parse only `select '{"(1)"}'::comp[]` (array_in -> record_in -> domain_in)."""
    B_parse_only(ctx, "select '{\"(1)\"}'::$S.comp[]")


@attack("dom_multirange_over_domain_parse_only", setup=DOM + "create type $S.rd as range (subtype = $S.d);\n",
        group="containers")
def a_f6(ctx):
    """Parse only `select '{[1,2]}'::rd_multirange` (multirange_in -> range_in -> domain_in)."""
    B_parse_only(ctx, "select '{[1,2]}'::$S.rd_multirange")


@attack("dom_record_literal_in_block_full", setup=DOM_COMP, group="containers")
def a_f7(ctx):
    """BEGIN; Parse/Bind/Execute `select '(1)'::comp`; COMMIT (full execution, extended)."""
    ctx.q("begin")
    ctx.raw("P/B/E", w.P("", ctx.s("select '(1)'::$S.comp")) + ext(""))
    ctx.q("commit")


@attack("dom_nested_comp_parse_only", setup=DOM_COMP + "create type $S.outer as (c $S.comp);\n", group="containers")
def a_f8(ctx):
    """Parse only: a composite whose column is the composite with the domain column,
    `select '("(1)")'::outer`."""
    B_parse_only(ctx, "select '(\"(1)\")'::$S.outer")


@attack("canon_via_record_parse_only", setup=CANON + "create type $S.rc as (r $S.myr);\n", group="containers")
def a_f9(ctx):
    """Parse only `select '("[1,5]")'::rc` (record_in -> range_in -> plpgsql canonical)."""
    B_parse_only(ctx, "select '(\"[1,5]\")'::$S.rc")


@attack("canon_via_array_parse_only", setup=CANON, group="containers")
def a_f10(ctx):
    """Parse only `select '{"[1,5]"}'::myr[]` (array_in -> range_in -> canonical)."""
    B_parse_only(ctx, "select '{\"[1,5]\"}'::$S.myr[]")


@attack("typmod_regtype_user_schema", setup=r"""
create schema if not exists postgres;
create type postgres.bt;
create function postgres.btin(cstring) returns postgres.bt language internal immutable strict as 'int4in';
create function postgres.btout(postgres.bt) returns cstring language internal immutable strict as 'int4out';
create function postgres.tmi(cstring[]) returns int language plpgsql immutable strict as $b$
begin perform public.mark('$T'); return 5; end $b$;
create type postgres.bt (input = postgres.btin, output = postgres.btout, internallength = 4,
                         passedbyvalue, alignment = int4, typmod_in = postgres.tmi);
""", teardown="drop schema if exists postgres cascade", group="containers")
def a_f11(ctx):
    """Unqualified `select 'bt(3)'::regtype`, bt found through "$user" on the search_path."""
    ctx.q("select 'bt(3)'::regtype")


@attack("typmod_regtype_builtin_bit", setup=TMI + r"""
update pg_type set typmodin = '$S.tmi'::regproc where oid = 'bit'::regtype;
""", teardown="update pg_type set typmodin = 'bittypmodin'::regproc where oid = 'bit'::regtype", group="containers")
def a_f12(ctx):
    """Built-in bit with typmodin switched by UPDATE pg_type; `select 'bit(3)'::regtype` names
    only built-ins."""
    ctx.q("select 'bit(3)'::regtype")


@attack("typmod_regtype_array_literal", setup=BT_TYPMOD, group="containers")
def a_f13(ctx):
    """`select '{"$S.bt(3)"}'::regtype[]` (array_in -> regtypein -> typmod_in)."""
    ctx.q("select '{\"$S.bt(3)\"}'::regtype[]")


@attack("typmod_regtype_in_where_readonly", setup=BT_TYPMOD, group="containers")
def a_f14(ctx):
    """`select count(*) from pg_type where oid = '$S.bt(3)'::regtype` (a catalog read)."""
    ctx.q("select count(*) from pg_type where oid = '$S.bt(3)'::regtype")


@attack("typmod_regtype_table_column", setup=BT_TYPMOD + "create table $S.names(n text); insert into $S.names values ('$S.bt(3)');\n",
        group="containers")
def a_f15(ctx):
    """Type names stored in a table: `select to_regtype(n) from $S.names`."""
    ctx.q("select to_regtype(n) from $S.names")


@attack("typmod_regtype_late", setup=BT_CORE + TMI, late="alter type $S.bt set (typmod_in = $S.tmi)",
        group="containers")
def a_f16(ctx):
    """typmod_in set by ALTER TYPE after load; `select '$S.bt(3)'::regtype`."""
    ctx.q("select '$S.bt(3)'::regtype")


# ---------------------------------------------------------------------------------------------

def main():
    global AIRLOCK
    args, only, skip, shard = sys.argv[1:], [], set(), None
    while args:
        a = args.pop(0)
        if a == "--airlock-bin":
            AIRLOCK = os.path.abspath(args.pop(0))
        elif a == "--shard":
            shard = tuple(int(x) for x in args.pop(0).split("/"))
        elif a == "--skip":
            skip.add(args.pop(0))
        else:
            only.append(a)
    selected = [a for a in ATTACKS if (not only or a.name in only) and a.name not in skip]
    if shard:
        selected = selected[shard[0]::shard[1]]
    env = Env()
    env.start()
    results = []
    t_all = time.time()
    try:
        for a in selected:
            t0 = time.time()
            dctx = actx = None
            try:
                verdict, dctx, actx = run_one(env, a)
            except Exception:
                verdict = "BROKEN"
                print(traceback.format_exc())
            results.append((a, verdict))
            held = actx.held if actx else []
            hold_txt = ("held at: %s" % held[0][0][:60]) if held else "no hold"
            print("%-44s %-8s%s (%s; %.1fs)" % (a.name, verdict, " [window]" if a.window else "",
                                               hold_txt, time.time() - t0), flush=True)
            for n in (actx.notes if actx else []):
                print("   note:", n)
            if (os.environ.get("VERBOSE") or verdict != "BLOCKED") and dctx:
                print("   direct:", *dctx.log, sep="\n      ")
                print("   airlock:", *(actx.log if actx else []), sep="\n      ")
            try:
                run_sql(env, a.teardown, schema(a.name), a.name)
            except Exception:
                pass
    finally:
        env.stop()
    n = len(results)
    leaks = sum(1 for _, v in results if v.startswith("LEAK"))
    wleaks = sum(1 for a, v in results if v.startswith("LEAK") and a.window)
    broken = sum(1 for _, v in results if v == "BROKEN")
    blocked = sum(1 for _, v in results if v == "BLOCKED")
    print("leaked: " + (", ".join(a.name for a, v in results if v.startswith("LEAK")) or "none"))
    print("broken: " + (", ".join(a.name for a, v in results if v == "BROKEN") or "none"))
    print("total time: %.0fs" % (time.time() - t_all))
    print("attacks: %d, leaks: %d, blocked: %d, broken: %d  (window-only leaks: %d)"
          % (n, leaks, blocked, broken, wleaks))


if __name__ == "__main__":
    main()
