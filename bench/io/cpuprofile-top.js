#!/usr/bin/env node
/**
 * Prints the functions with the most self time in a V8 .cpuprofile (node --cpu-prof), for
 * scripts/bench-io.sh PROFILE=1. Usage: node cpuprofile-top.js FILE.cpuprofile [N]
 * Self time per node = its samples x the mean sampling interval; nodes are summed by
 * function name + file:line, and (program)/(idle)/(garbage collector) are kept as they are.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const file = process.argv[2];
const topN = Number(process.argv[3] || 25);
const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
const selfSamples = new Map();
for (const id of prof.samples) selfSamples.set(id, (selfSamples.get(id) || 0) + 1);
const totalUs = prof.endTime - prof.startTime;
const usPerSample = totalUs / Math.max(1, prof.samples.length);
const byFn = new Map();
for (const n of prof.nodes) {
  const s = selfSamples.get(n.id) || 0;
  if (s === 0) continue;
  const cf = n.callFrame;
  const where = cf.url ? `${path.basename(cf.url)}:${cf.lineNumber + 1}` : '';
  const key = `${cf.functionName || '(anonymous)'} ${where}`.trim();
  byFn.set(key, (byFn.get(key) || 0) + s);
}
const rows = [...byFn.entries()].sort((a, b) => b[1] - a[1]).slice(0, topN);
const total = prof.samples.length;
console.log(`# ${total} samples over ${(totalUs / 1e6).toFixed(1)} s (${usPerSample.toFixed(0)} us each)`);
for (const [k, s] of rows) console.log(`${(100 * s / total).toFixed(1).padStart(5)}%  ${k}`);
