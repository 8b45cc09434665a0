#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with Node's own test runner, two files
// at a time. Its summary lines (tests, pass, fail, skipped, duration) are what CI reads.
// Usage: node scripts/run-tests.js [substring-filter ...]
//
// Namespace files share the host's network stack (namespaces, veths, the lab's fl- names, fixed
// ports inside namespaces): they run one at a time. A file is one when its compiled text names
// network namespaces or the helpers that make them (NAMESPACE_MARKS). Each test file runs in a
// child process that first loads scripts/test-serial.js (passed with --require, which the
// runner hands to its children): a namespace file waits there for the run's lock, so at most
// one runs while the other slot runs the unit files. The list is ordered so that unit files sit
// between namespace files and fill the other slot while one runs.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const NAMESPACE_MARKS = ['netns', 'netlab', 'lab-guard'];

const root = path.join(__dirname, '..', 'dist', 'test');
const filters = process.argv.slice(2);
const files = [];
(function walk(dir) {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.test.js')) files.push(p);
  }
})(root);
const chosen = files.filter((f) => filters.length === 0 || filters.some((s) => f.includes(s))).sort();
if (chosen.length === 0) {
  console.error(`no test files found under ${root} (did the build run?)`);
  process.exit(1);
}
const isNamespaceFile = (f) => { const text = fs.readFileSync(f, 'utf8'); return NAMESPACE_MARKS.some((m) => text.includes(m)); };
const serial = chosen.filter(isNamespaceFile);
const parallel = chosen.filter((f) => !serial.includes(f));
// Interleave: each namespace file followed by its share of the unit files.
const ordered = [];
const share = serial.length === 0 ? parallel.length : Math.ceil(parallel.length / serial.length);
for (let k = 0; k < Math.max(serial.length, 1); k++) {
  if (k < serial.length) ordered.push(serial[k]);
  ordered.push(...parallel.slice(k * share, (k + 1) * share));
}
const lockDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-test-serial-'));
const env = { ...process.env, FLOWD_TEST_SERIAL_FILES: serial.join('\n'), FLOWD_TEST_SERIAL_LOCK: path.join(lockDir, 'lock') };
const concurrency = process.env.FLOWD_TEST_CONCURRENCY ?? '2';
const r = spawnSync(process.execPath,
  ['--require', path.join(__dirname, 'test-serial.js'), '--test', '--test-reporter=spec',
    `--test-concurrency=${concurrency}`, ...ordered],
  { stdio: 'inherit', env });
fs.rmSync(lockDir, { recursive: true, force: true });
process.exit(r.status === null ? 1 : r.status);
