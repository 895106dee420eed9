// What the driver-matrix scripts share: the DSN, and steps each under a
// timeout of its own. Every step prints one line on stdout, `ok <name>` or
// `FAIL <name>: <error>`; before it starts, `... <name>` goes to stderr, so
// that whoever kills a run that hangs can tell which step it was in.
// `finish()` exits 1 if any step failed (process.exit: a step that timed out
// may leave a socket open that would keep the process alive).

'use strict';

const DSN = process.env.DRIVER_DSN;
if (!DSN) {
  console.log('FAIL setup: DRIVER_DSN is not set (postgresql://user@host:port/db)');
  process.exit(2);
}
const STEP_TIMEOUT = Number(process.env.DRIVER_STEP_TIMEOUT || '20') * 1000;

const failed = [];

function oneLine(e) {
  const text = e && e.stack ? String(e.message || e) : String(e);
  const extra = e && e.detail ? ` (detail: ${e.detail})` : '';
  return (text + extra).replace(/\r?\n/g, ' | ').slice(0, 2000);
}

async function step(name, fn, timeout = STEP_TIMEOUT) {
  process.stderr.write(`... ${name}\n`);
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeout / 1000}s`)), timeout);
  });
  try {
    await Promise.race([fn(), expired]);
    console.log(`ok ${name}`);
  } catch (e) {
    if (e && e.stack) process.stderr.write(`${e.stack}\n`);
    failed.push(name);
    console.log(`FAIL ${name}: ${oneLine(e)}`);
  } finally {
    clearTimeout(timer);
  }
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

function checkEq(want, got, what) {
  const w = JSON.stringify(want);
  const g = JSON.stringify(got);
  if (w !== g) throw new Error(`${what}: want ${w}, got ${g}`);
}

/// Closes `thing` with `how`, giving up after a few seconds (closing a
/// connection whose statement hangs can hang too).
async function closing(how) {
  let timer;
  await Promise.race([
    Promise.resolve().then(how).catch(() => {}),
    new Promise((resolve) => { timer = setTimeout(resolve, 3000); }),
  ]);
  clearTimeout(timer);
}

function finish() {
  process.stdout.write('', () => process.exit(failed.length ? 1 : 0));
}

module.exports = { DSN, step, check, checkEq, closing, finish };
