#!/usr/bin/env node
/**
 * Splits one process's samples of a `perf record -a -g` file by what the process was doing,
 * from each sample's call chain (native-notes/tunnel-gso.md, "2026-12-05, 20:30-22:00, p16").
 * Flat per-symbol shares mislead on this paravirtualized guest: time with interrupts off is
 * credited to `pvm_irq_enable` wherever interrupts come back on, so the chain, not the leaf,
 * says which system call or softirq the time belongs to.
 *
 *   node tools/perf-split.js perf.data PID [PID...]
 *
 * Categories (first match wins, in this order): sendmmsg (split into the copy into the new
 * skb, its allocation, the receiving TCP of a VM in softirq, the underlay's bridge / AF_PACKET
 * tap / tc in softirq, the device transmit, other softirq, the rest of the call), recv (the
 * copy, the rest), epoll, tunnelEmit, coalesce, V8 compiling, GC, page faults, other softirq,
 * the addon's other code (a js_* frame), JS and everything else.
 */
'use strict';
const { execFileSync } = require('node:child_process');

function category(syms) {
  const has = (s) => syms.includes(s);
  const any = (pred) => syms.some(pred);
  if (has('__sendmmsg')) {
    if (has('tcp_v4_rcv') || has('tcp_v6_rcv')) return 'send: a VM\'s TCP receive in softirq';
    if (has('br_handle_frame') || has('tpacket_rcv') || has('packet_rcv') || any((s) => s.includes('tcf_classify'))) {
      return 'send: underlay bridge, peer tap, tc';
    }
    if (has('skb_copy_datagram_from_iter')) return 'send: copy into the skb';
    if (has('sock_alloc_send_pskb')) return 'send: skb allocation';
    if (has('handle_softirqs') || has('net_rx_action')) return 'send: other softirq';
    if (has('__dev_queue_xmit')) return 'send: device transmit';
    return 'send: syscall, packet_snd, rest';
  }
  if (has('__recvmmsg') || has('__libc_recvmsg')) {
    return has('skb_copy_datagram_iter') ? 'recv: copy out of the skb' : 'recv: rest';
  }
  if (has('epoll_pwait')) return 'epoll (sleep, wakeup)';
  if (has('fio_tunnel_emit')) return 'tunnelEmit (segment copy + sums)';
  if (has('js_coalesce')) return 'coalesce (payload copy, checks)';
  if (any((s) => s.includes('Compile') || s.includes('compiler::'))) return 'V8 compiling';
  if (any((s) => s.includes('Scaveng') || s.includes('MarkCompact'))) return 'GC';
  if (has('exc_page_fault')) return 'page faults';
  if (has('handle_softirqs')) return 'softirq at interrupt exit';
  if (any((s) => s.startsWith('js_'))) return 'addon, rest';
  return 'JS, V8, node';
}

function main(argv) {
  if (argv.length < 2) {
    process.stderr.write('usage: perf-split.js PERF_DATA PID [PID...]\n');
    process.exitCode = 2;
    return;
  }
  const [data, ...pids] = argv;
  const text = execFileSync('perf', ['script', '-i', data, '-F', 'pid,ip,sym', '--no-inline'],
    { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] });
  const counts = new Map(pids.map((p) => [p, new Map()]));
  const totals = new Map(pids.map((p) => [p, 0]));
  for (const block of text.split('\n\n')) {
    const lines = block.trim().split('\n');
    const pid = lines[0].trim();
    const c = counts.get(pid);
    if (c === undefined) continue;
    const syms = lines.slice(1).map((l) => l.trim().split(/\s+/)[1] ?? '');
    const k = category(syms);
    c.set(k, (c.get(k) ?? 0) + 1);
    totals.set(pid, totals.get(pid) + 1);
  }
  for (const p of pids) {
    const t = totals.get(p);
    process.stdout.write(`pid ${p}: ${t} samples\n`);
    const rows = [...counts.get(p)].sort((a, b) => b[1] - a[1]);
    for (const [k, n] of rows) process.stdout.write(`  ${(100 * n / t).toFixed(1).padStart(5)} %  ${k}\n`);
  }
}

main(process.argv.slice(2));
