// Loaded (--require) by every test file's process that scripts/run-tests.js starts. When that
// file is a namespace file (FLOWD_TEST_SERIAL_FILES), it takes the run's lock before any test
// runs and holds it until the process exits, so namespace files run one at a time while unit
// files run beside them. The lock is a directory made atomically (FLOWD_TEST_SERIAL_LOCK) with
// the holder's PID inside; a holder that died (SIGKILL, no exit handler) is detected by its PID
// and its lock taken over. Any other process (the runner, daemons the tests start) does nothing.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const files = (process.env.FLOWD_TEST_SERIAL_FILES ?? '').split('\n').filter((f) => f !== '');
const lock = process.env.FLOWD_TEST_SERIAL_LOCK;
const self = process.argv[1] === undefined ? '' : path.resolve(process.argv[1]);

function alive(pid) {
  try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; }
}

function sleepMs(ms) { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); }

// The runner itself also loads this file, with the first test file as its argv[1]: skip it.
const isRunner = process.execArgv.includes('--test');

if (lock !== undefined && !isRunner && files.includes(self)) {
  const owner = path.join(lock, 'pid');
  for (;;) {
    try {
      fs.mkdirSync(lock);
      fs.writeFileSync(owner, String(process.pid));
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
    }
    let pid = NaN;
    try { pid = Number(fs.readFileSync(owner, 'utf8')); } catch { /* being written or removed */ }
    if (Number.isInteger(pid) && pid > 0 && !alive(pid)) fs.rmSync(lock, { recursive: true, force: true });
    else sleepMs(100);
  }
  process.on('exit', () => {
    try { if (Number(fs.readFileSync(owner, 'utf8')) === process.pid) fs.rmSync(lock, { recursive: true, force: true }); } catch { /* gone */ }
  });
}
