"""What the driver-matrix scripts share: the DSN, and running steps each
under a timeout of its own.

Every step prints one line on stdout, `ok <name>` or `FAIL <name>: <error>`;
before it starts, `... <name>` goes to stderr, so that whoever kills a run
that hangs can tell which step it was in. `finish()` exits 1 if any step
failed (with os._exit: a step that timed out may still hold a thread that
never returns).
"""

import asyncio
import os
import sys
import threading
import traceback
import urllib.parse

DSN = os.environ.get("DRIVER_DSN")
if not DSN:
    print("FAIL setup: DRIVER_DSN is not set (postgresql://user@host:port/db)")
    sys.stdout.flush()
    os._exit(2)

STEP_TIMEOUT = float(os.environ.get("DRIVER_STEP_TIMEOUT", "20"))

_failed = []


def dsn_parts():
    """host, port, user, password, dbname of DSN."""
    u = urllib.parse.urlparse(DSN)
    return {
        "host": u.hostname or "127.0.0.1",
        "port": u.port or 5432,
        "user": urllib.parse.unquote(u.username or "postgres"),
        "password": urllib.parse.unquote(u.password or ""),
        "dbname": u.path.lstrip("/") or "postgres",
    }


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def check_eq(want, got, what):
    if want != got:
        raise AssertionError(f"{what}: want {want!r}, got {got!r}")


def _one_line(e):
    text = f"{type(e).__name__}: {e}".replace("\r", " ").replace("\n", " | ")
    return text[:2000]


def _report(name, error):
    if error is None:
        print(f"ok {name}")
    else:
        _failed.append(name)
        print(f"FAIL {name}: {error}")
    sys.stdout.flush()


def _begin(name):
    print(f"... {name}", file=sys.stderr)
    sys.stderr.flush()


def step(name, fn, timeout=None):
    """Runs fn() in a thread; a step still running after `timeout` fails."""
    timeout = timeout or STEP_TIMEOUT
    _begin(name)
    result = {}

    def run():
        try:
            fn()
            result["error"] = None
        except BaseException as e:  # noqa: BLE001 - every error is the step's
            traceback.print_exc(file=sys.stderr)
            result["error"] = _one_line(e)

    t = threading.Thread(target=run, name=name, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        _report(name, f"timed out after {timeout:g}s")
    else:
        _report(name, result["error"])


def astep(loop, name, coro_fn, timeout=None):
    """Runs the coroutine coro_fn() on `loop` under a timeout."""
    timeout = timeout or STEP_TIMEOUT
    _begin(name)
    try:
        loop.run_until_complete(asyncio.wait_for(coro_fn(), timeout))
        _report(name, None)
    except asyncio.TimeoutError:
        _report(name, f"timed out after {timeout:g}s")
    except BaseException as e:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        _report(name, _one_line(e))


def finish():
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1 if _failed else 0)
