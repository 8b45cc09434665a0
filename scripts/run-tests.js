#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with Node's own test runner.
// Its summary lines (tests, pass, fail, skipped, duration) are what CI reads.
// Usage: node scripts/run-tests.js [substring-filter ...]
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

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
// Namespace tests share the host's network stack; one file at a time keeps them apart.
const r = spawnSync(process.execPath,
  ['--test', '--test-reporter=spec', '--test-concurrency=1', ...chosen],
  { stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
