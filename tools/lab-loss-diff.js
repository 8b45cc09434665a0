#!/usr/bin/env node
// The counters that moved in one tools/lab-loss.sh run: RUNDIR/{before,after} snapshots ->
// every numeric leaf (flowctl JSON, `ip -s -s -j link`, `tc -s -j qdisc`), nstat line and
// softnet_stat column whose name looks like a loss, printed with its delta, after iperf3's
// throughput and retransmits (RUNDIR/iperf3.json).
//   node tools/lab-loss-diff.js RUNDIR [LABEL] [--all]
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const LOSSY = /drop|err|trunc|retrans|ofo|prune|collaps|full|overlimit|requeue|lost|loss|fail|backlog|squeez|timeout|rcvq|bad|abort|reneg|spurious|dsack|overrun|miss|noport|no_port|too_big|sack/i;

function flatten(v, pre, out) {
  if (typeof v === 'number') out.set(pre, v);
  else if (Array.isArray(v)) v.forEach((x, i) => flatten(x, `${pre}[${keyOf(x, i)}]`, out));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) flatten(x, pre ? `${pre}.${k}` : k, out);
}
function keyOf(x, i) {
  if (x && typeof x === 'object') return x.ifname ?? x.port ?? x.device ?? (x.kind ? `${x.kind}:${x.handle ?? ''}:${x.dev ?? ''}` : i);
  return i;
}

function read(dir) {
  const out = new Map();
  for (const f of fs.readdirSync(dir)) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    if (f.endsWith('.json')) {
      try { flatten(JSON.parse(text), f.replace(/\.json$/, ''), out); } catch { /* an absent bridge */ }
    } else if (f.endsWith('.nstat')) {
      for (const line of text.split('\n')) {
        const m = /^(\S+)\s+(\d+)/.exec(line);
        if (m) out.set(`${f.replace(/\.nstat$/, '')}.${m[1]}`, Number(m[2]));
      }
    } else if (f === 'softnet_stat') {
      text.trim().split('\n').forEach((line, cpu) => {
        const c = line.trim().split(/\s+/).map((h) => parseInt(h, 16));
        out.set(`softnet.cpu${cpu}.dropped`, c[1]);
        out.set(`softnet.cpu${cpu}.time_squeeze`, c[2]);
      });
    }
  }
  return out;
}

const dir = process.argv[2];
const label = process.argv[3] ?? path.basename(dir);
const all = process.argv.includes('--all');
const a = read(path.join(dir, 'before'));
const b = read(path.join(dir, 'after'));
let head = `run ${label}:`;
try {
  const j = JSON.parse(fs.readFileSync(path.join(dir, 'iperf3.json'), 'utf8'));
  head += ` ${(j.end.sum_received.bits_per_second / 1e9).toFixed(2)} Gbit/s, retransmits ${j.end.sum_sent.retransmits}`;
} catch { head += ' iperf3 failed'; }
console.log(head);
for (const [k, v] of b) {
  const d = v - (a.get(k) ?? 0);
  if (d !== 0 && (all || LOSSY.test(k))) console.log(`  ${k} +${d}`);
}
