#!/usr/bin/env node
/**
 * Splits one switch process's perf samples by what their call chain is doing, for
 * scripts/bench-io.sh PERF=... (it pipes `perf script --pid PID -F time,ip,sym,dso` of its
 * `perf record -a -g` into this). Usage: perf script ... | node perf-split.js
 * A sample goes to the first category whose test matches any frame of its chain, in the order
 * of CATEGORIES (so a copy inside sendmmsg counts as sendmmsg); inside sendmmsg and recv the
 * leaf is split further. Prints shares of the process's samples and, per second of the
 * recording, the samples and how many of them were V8 compiling (JIT warm-up).
 * Shares are of samples: on this guest perf samples on a timer (cpu-clock), and time with
 * interrupts off is credited to `pvm_irq_enable` where they come back on.
 */
'use strict';

/** [name, test over the chain's symbols joined by spaces]; first match wins. */
const CATEGORIES = [
  ['V8 compiling', /v8::internal::compiler|OptimizingCompile|Compiler::|CompileLazy/],
  ['V8 GC', /Scavenger|MarkCompact|v8::internal::Heap::/],
  ['sendmmsg', /sendmmsg|sendmsg/],
  ['recvmsg / recvmmsg', /recvmmsg|recvmsg/],
  ['epoll', /epoll/],
  ['addon recv (ring walk, frame copies)', /js_recv/],
  ['addon send (user side)', /js_send/],
  ['JS (JIT code)', /^JS:/],
  ['V8 builtins', /^Builtins_/],
];
/** Inside sendmmsg / recv: where the leaf is. */
const SEND_PARTS = [
  ['receiving namespace in softirq (veth delivers in the sender)', /process_backlog|__netif_receive_skb/],
  ['copy from user', /^_copy_from_iter|^copy_from_user|^_copy_from_user/, true],
  ['skb allocation', /alloc_skb|sock_alloc_send_pskb/],
  ['dev_queue_xmit / veth', /dev_queue_xmit|veth_xmit|packet_xmit/],
];
const RECV_PARTS = [['copy to user', /^_copy_to_iter/, true], ['usercopy checks', /^__check_object_size|^__virt_addr_valid/, true]];

function parse(text) {
  const samples = [];
  let cur = null;
  for (const line of text.split('\n')) {
    if (line.trim() === '') { if (cur) samples.push(cur); cur = null; continue; }
    if (!/^\s/.test(line)) { if (cur) samples.push(cur); cur = { t: parseFloat(line), syms: [] }; continue; }
    const m = /^\s*[0-9a-f]+\s+(.*?)\s+\(.*\)$/.exec(line);
    if (m && cur) cur.syms.push(m[1]);
  }
  if (cur) samples.push(cur);
  return samples;
}

function classify(syms) {
  for (const [name, re] of CATEGORIES) {
    if (re.source.startsWith('^') ? re.test(syms[0] || '') : re.test(syms.join(' '))) return name;
  }
  return 'other: ' + (syms[0] || '?');
}

function part(syms, parts) {
  for (const [name, re, leafOnly] of parts) {
    if (leafOnly ? re.test(syms[0] || '') : syms.some((s) => re.test(s))) return name;
  }
  return 'rest (syscall, protocol, interrupt enable)';
}

const pct = (n, total) => (100 * n / total).toFixed(1).padStart(5) + ' %';

let input = '';
process.stdin.on('data', (d) => { input += d; }).on('end', () => {
  const samples = parse(input);
  const total = samples.length;
  if (total === 0) { console.log('# perf-split: no samples'); return; }
  const cats = new Map();
  const sub = new Map();
  const perSec = new Map();
  const t0 = samples[0].t;
  for (const s of samples) {
    const c = classify(s.syms);
    cats.set(c, (cats.get(c) || 0) + 1);
    const parts = c === 'sendmmsg' ? SEND_PARTS : c === 'recvmsg / recvmmsg' ? RECV_PARTS : null;
    if (parts) { const k = c + ': ' + part(s.syms, parts); sub.set(k, (sub.get(k) || 0) + 1); }
    const sec = Math.floor(s.t - t0);
    const row = perSec.get(sec) || [0, 0];
    row[0]++;
    if (c === 'V8 compiling') row[1]++;
    perSec.set(sec, row);
  }
  const irq = samples.filter((s) => s.syms[0] === 'pvm_irq_enable').length;
  console.log(`# ${total} samples of the switch process; pvm_irq_enable (leaf) ${pct(irq, total).trim()}`);
  const rows = [...cats.entries()].sort((a, b) => b[1] - a[1]);
  for (const [c, n] of rows.slice(0, 14)) console.log(`${pct(n, total)}  ${c}`);
  for (const [k, n] of [...sub.entries()].sort((a, b) => b[1] - a[1])) console.log(`${pct(n, total)}    ${k}`);
  console.log('# per second (samples, of them V8 compiling): ' +
    [...perSec.entries()].map(([k, [n, c]]) => `${k}: ${n}/${c}`).join('  '));
});
