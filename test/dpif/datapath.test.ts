import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datapath } from '../../src/dpif/datapath';
import { PacketBatch } from '../../src/netdev/batch';
import {
  KEY_WORDS, W_IN_PORT, W_NW_DST, W_DL_DST_HI, W_DL_DST_LO, W_TUN_DST, W_TUN_ID_HI, W_TUN_ID_LO, W_TUN_SRC, W_VLAN_DLTYPE,
} from '../../src/packet/flowkey-layout';
import { extractKey, OFFS_WORDS } from '../../src/packet/flowkey';
import { ingressHash, tunnelSrcPort } from '../../src/dpif/flow-hash';
import { ipv4ChecksumOk, ipv4SetChecksum, l4ChecksumOk4, l4SetChecksum4 } from '../../src/packet/checksum';
import { decapVxlan, TunnelDesc } from '../../src/dpif/tunnel-header';
import { DpDrop } from '../../src/dpif/dp-actions';
import { LinearXlate, MemNetdev, TestRule, matchOf, hexBytes, toHex } from './helpers';
import { dumpCache, perfStats } from '../../src/dpif/dump';

/** 64-byte Ethernet/IPv4/UDP frame 02:..:01 -> 02:..:02, 10.0.1.1 -> 10.0.1.<dstLast>, ports 1000 -> 2000. */
function udpFrame(dstLast = 2, srcMacLast = 1): Uint8Array {
  const f = hexBytes(
    '020000000002 0200000000' + srcMacLast.toString(16).padStart(2, '0') + ' 0800' +
    '4500 0032 0000 4000 4011 0000 0a000101 0a0001' + dstLast.toString(16).padStart(2, '0') +
    '03e8 07d0 001e 0000' + '00'.repeat(22));
  ipv4SetChecksum(f, 14);
  l4SetChecksum4(f, 14, 34, 30, 17);
  return f;
}

function batchOf(frames: Uint8Array[], inPort: number): PacketBatch {
  const b = new PacketBatch(256);
  for (const f of frames) { const i = b.append(f); b.inPort[i] = inPort; }
  return b;
}

function setup(opts: { emcInsertInvProb?: number; maxUpcallsPerBatch?: number; nowMs?: () => number } = {}) {
  const xl = new LinearXlate();
  const dp = new Datapath({ upcaller: xl, emcInsertInvProb: opts.emcInsertInvProb ?? 1,
    maxUpcallsPerBatch: opts.maxUpcallsPerBatch, nowMs: opts.nowMs });
  const ports = [new MemNetdev('p1'), new MemNetdev('p2'), new MemNetdev('p3')];
  ports.forEach((p, k) => dp.addPort(k + 1, p));
  return { xl, dp, ports };
}

test('L2 forward: 32 frames of one flow go out port 2 unchanged in one send; 1 upcall, EMC for the rest', () => {
  const { xl, dp, ports } = setup();
  const m = matchOf([[W_IN_PORT, 1, 0xffffffff]]);
  const rule = new TestRule(m.value, m.mask, 10, [{ kind: 'output', port: 2 }]);
  xl.rules.push(rule);
  const f = udpFrame();
  const b = batchOf(Array(32).fill(f), 1);
  assert.equal(dp.processBatch(b, 32), 32);
  assert.equal(ports[1].sent.length, 32);
  assert.equal(ports[1].nSendCalls, 1);
  for (const s of ports[1].sent) assert.equal(toHex(s), toHex(f));
  assert.equal(dp.nUpcalls, 1);
  assert.equal(dp.nMegaflowHits, 31);
  const b2 = batchOf(Array(32).fill(f), 1);
  dp.processBatch(b2, 32);
  assert.equal(dp.nEmcHits, 32);
  assert.equal(rule.nPackets, 64);
  assert.equal(rule.nBytes, 64 * 64);
  assert.equal(dp.megaflows.nPackets[0], 64);
  assert.equal(dp.ports.byNo(1)?.rxPackets, 64);
  assert.equal(dp.ports.byNo(2)?.txPackets, 64);
});

test('set_ipv4 ttl + push_vlan: exact bytes, checksum patched incrementally (RFC 1624)', () => {
  const { xl, dp, ports } = setup();
  const m = matchOf([[W_IN_PORT, 1, 0xffffffff]]);
  xl.rules.push(new TestRule(m.value, m.mask, 10, [
    { kind: 'set_ipv4', src: -1, dst: 0x0a000263, tos: -1, tosMask: 0, ttl: 63 },
    { kind: 'set_l4', proto: 17, src: 4000, dst: -1 },
    { kind: 'set_eth', src: 0xfa163e0b0001, dst: 0xfa163e000220 },
    { kind: 'push_vlan', tci: 5 },
    { kind: 'output', port: 3 }]));
  dp.processBatch(batchOf([udpFrame()], 1), 1);
  const out = ports[2].sent[0];
  assert.equal(out.length, 68);
  assert.equal(toHex(out.subarray(0, 18)), 'fa163e000220fa163e0b0001810000050800');
  assert.equal(out[18 + 8], 63);
  assert.equal(toHex(out.subarray(18 + 16, 18 + 20)), '0a000263');
  assert.equal(toHex(out.subarray(38, 40)), '0fa0');
  assert.ok(ipv4ChecksumOk(out, 18));
  assert.ok(l4ChecksumOk4(out, 18, 38, 30, 17));
});

test('VXLAN output: precomputed header, lengths, IPv4 checksum, source port in 32768..61000, decap round trip', () => {
  const xl = new LinearXlate();
  const dp = new Datapath({ upcaller: xl, emcInsertInvProb: 1 });
  const vx = new MemNetdev('vxlan-c0a8640c');
  const desc: TunnelDesc = { kind: 'vxlan', localIp: 0xc0a8640b, remoteIp: 0xc0a8640c,
    srcMac: 0x525400000011, nextHopMac: 0x525400000012, dstPort: 4789, ttl: 64, tos: 0 };
  dp.addPort(1, new MemNetdev('vm1'));
  dp.addPort(9, vx, desc);
  const m = matchOf([[W_IN_PORT, 1, 0xffffffff]]);
  xl.rules.push(new TestRule(m.value, m.mask, 1, [
    { kind: 'set_tunnel', tunIdHi: 0, tunIdLo: 1002, src: 0, dst: 0 }, { kind: 'output', port: 9 }]));
  const f = udpFrame();
  dp.processBatch(batchOf([f, udpFrame(3)], 1), 2);
  assert.equal(vx.sent.length, 2);
  const o = vx.sent[0];
  assert.equal(o.length, 114);
  assert.equal(toHex(o.subarray(0, 14)), '525400000012' + '525400000011' + '0800');
  assert.equal(toHex(o.subarray(14, 24)), '4500' + '0064' + '0000' + '4000' + '4011');
  assert.equal(toHex(o.subarray(26, 34)), 'c0a8640b' + 'c0a8640c');
  assert.ok(ipv4ChecksumOk(o, 14));
  const sport = (o[34] << 8) | o[35];
  assert.ok(sport >= 32768 && sport < 61000, `sport ${sport}`);
  assert.equal(toHex(o.subarray(36, 42)), '12b5' + '0050' + '0000');
  assert.equal(toHex(o.subarray(42, 50)), '08000000' + '0003ea00');
  assert.equal(toHex(o.subarray(50)), toHex(f));
  // The source port is the inner flow's ingress hash scaled into 32768..61000, so the second
  // flow (another destination address) gets its own port, each as its key hash says.
  for (let i = 0; i < 2; i++) {
    const inner = vx.sent[i].subarray(50);
    const key = new Uint32Array(KEY_WORDS);
    extractKey(inner, 0, inner.length, 1, key, 0, new Uint16Array(OFFS_WORDS), 0);
    assert.equal((vx.sent[i][34] << 8) | vx.sent[i][35], tunnelSrcPort(ingressHash(key, 0)), `frame ${i}`);
  }
  assert.notEqual((vx.sent[1][34] << 8) | vx.sent[1][35], sport);
  const b = batchOf([o], 9);
  assert.equal(decapVxlan(b, 0), 0);
  assert.equal(b.tunIdLo[0], 1002);
  assert.equal(b.tunSrc[0], 0xc0a8640b);
  assert.equal(toHex(b.frame(0)), toHex(f));
});

test('revalidation removes only the megaflows a rule change affects', () => {
  const { xl, dp, ports } = setup();
  const a = matchOf([[W_IN_PORT, 1, 0xffffffff], [W_NW_DST, 0x0a000102, 0xffffffff]]);
  const b = matchOf([[W_IN_PORT, 1, 0xffffffff], [W_NW_DST, 0x0a000103, 0xffffffff]]);
  xl.rules.push(new TestRule(a.value, a.mask, 10, [{ kind: 'output', port: 2 }]));
  xl.rules.push(new TestRule(b.value, b.mask, 10, [{ kind: 'output', port: 3 }]));
  dp.processBatch(batchOf([udpFrame(2), udpFrame(3)], 1), 2);
  assert.equal(dp.megaflows.nFlows, 2);
  // Change rule b's actions: only the megaflow for .3 may go.
  xl.rules[1].actions = [{ kind: 'output', port: 1 }];
  dp.rulesChanged();
  dp.processBatch(batchOf([udpFrame(2), udpFrame(3)], 1), 2);
  assert.equal(dp.nRevalidatedOut, 1);
  assert.equal(dp.nUpcalls, 3);
  assert.equal(ports[1].sent.length, 2);
  assert.equal(ports[2].sent.length, 1);
  assert.equal(ports[0].sent.length, 1);
});

test('learn mid-batch: packets after the learning upcall see the new rule', () => {
  const { xl, dp, ports } = setup();
  const all = matchOf([[W_IN_PORT, 1, 0xffffffff]]);
  xl.rules.push(new TestRule(all.value, all.mask, 1, [{ kind: 'output', port: 2 }]));
  let learned = false;
  xl.onUpcall = () => {
    if (learned) return;
    learned = true;
    const m = matchOf([[W_IN_PORT, 1, 0xffffffff], [W_DL_DST_LO, 2, 0xffffffff]]);
    xl.rules.push(new TestRule(m.value, m.mask, 5, [{ kind: 'output', port: 3 }]));
    dp.rulesChanged();
  };
  dp.processBatch(batchOf([udpFrame(), udpFrame(), udpFrame()], 1), 3);
  assert.equal(ports[1].sent.length, 1);
  assert.equal(ports[2].sent.length, 2);
});

test('idle megaflows expire after idleTimeoutMs', () => {
  let now = 1000;
  const { xl, dp } = setup({ nowMs: () => now });
  const m = matchOf([[W_IN_PORT, 1, 0xffffffff]]);
  xl.rules.push(new TestRule(m.value, m.mask, 1, [{ kind: 'output', port: 2 }]));
  dp.processBatch(batchOf([udpFrame()], 1), 1);
  assert.equal(dp.megaflows.nFlows, 1);
  now += 5000;
  dp.processBatch(batchOf([], 1), 0);
  assert.equal(dp.megaflows.nFlows, 1);
  now += 10001;
  dp.processBatch(batchOf([], 1), 0);
  assert.equal(dp.megaflows.nFlows, 0);
  assert.equal(dp.nExpired, 1);
});

test('misses over the upcall budget wait for the next pass, in order; nothing is lost', () => {
  const { xl, dp, ports } = setup({ maxUpcallsPerBatch: 2 });
  const m = matchOf([[W_IN_PORT, 1, 0xffffffff], [W_NW_DST, 0, 0xffffffff]]);
  xl.rules.push(new TestRule(m.value, matchOf([[W_IN_PORT, 1, 0xffffffff]]).mask, 1, [{ kind: 'output', port: 2 }]));
  xl.rules.push(new TestRule(m.value, m.mask, 0, []));
  // Five frames, four flows: the budget of two lets .2 and .3 through; .4, .5 and the second .2
  // (its megaflow exists by then: a hit, not a miss) ... .4 and .5 wait.
  dp.processBatch(batchOf([udpFrame(2), udpFrame(3), udpFrame(4), udpFrame(5), udpFrame(2)], 1), 5);
  assert.equal(dp.nUpcalls, 2);
  assert.equal(dp.nLostUpcalls, 0);
  assert.equal(dp.nQueuedMisses, 2);
  assert.equal(dp.queuedMisses, 2);
  assert.deepEqual(ports[1].sent.map((f) => f[33]), [2, 3, 2]);
  // The next batch runs the queue first (own budget), then its own frames.
  dp.processBatch(batchOf([udpFrame(6)], 1), 1);
  assert.equal(dp.nUpcalls, 5);
  assert.equal(dp.queuedMisses, 0);
  assert.deepEqual(ports[1].sent.map((f) => f[33]), [2, 3, 2, 4, 5, 6]);
  assert.equal(dp.ports.byNo(1)?.rxPackets, 6, 'queued frames are received once');
  assert.equal(dp.drops().lost_upcall, undefined);
});

test('queued misses of one flow keep their order; runQueuedMisses runs them without a batch', () => {
  const { xl, dp, ports } = setup({ maxUpcallsPerBatch: 1 });
  const m = matchOf([[W_IN_PORT, 1, 0xffffffff], [W_NW_DST, 0, 0xffffffff]]);
  xl.rules.push(new TestRule(m.value, matchOf([[W_IN_PORT, 1, 0xffffffff]]).mask, 1, [{ kind: 'output', port: 2 }]));
  xl.rules.push(new TestRule(m.value, m.mask, 0, []));
  const frames: Uint8Array[] = [];
  for (let k = 0; k < 6; k++) { const f = udpFrame(2 + (k % 3)); f[50] = k; frames.push(f); }
  dp.processBatch(batchOf(frames, 1), 6);
  assert.equal(dp.queuedMisses, 4);
  let rounds = 0;
  while (dp.queuedMisses > 0) { dp.runQueuedMisses(); rounds++; }
  assert.equal(rounds, 2, 'one upcall per pass: .3 in the first, .4 in the second');
  assert.equal(dp.nUpcalls, 3);
  const seq = (d: number) => ports[1].sent.filter((f) => f[33] === d).map((f) => f[50]);
  assert.deepEqual([seq(2), seq(3), seq(4)], [[0, 3], [1, 4], [2, 5]]);
});

test('a miss that finds the queue full is a lost upcall, counted and dropped', () => {
  const xl = new LinearXlate();
  const dp = new Datapath({ upcaller: xl, maxUpcallsPerBatch: 1, maxQueuedMisses: 2 });
  const ports = [new MemNetdev('p1'), new MemNetdev('p2')];
  ports.forEach((p, k) => dp.addPort(k + 1, p));
  const m = matchOf([[W_IN_PORT, 1, 0xffffffff], [W_NW_DST, 0, 0xffffffff]]);
  xl.rules.push(new TestRule(m.value, matchOf([[W_IN_PORT, 1, 0xffffffff]]).mask, 1, [{ kind: 'output', port: 2 }]));
  xl.rules.push(new TestRule(m.value, m.mask, 0, []));
  dp.processBatch(batchOf([udpFrame(2), udpFrame(3), udpFrame(4), udpFrame(5), udpFrame(6)], 1), 5);
  assert.equal(dp.nQueuedMisses, 2);
  assert.equal(dp.nLostUpcalls, 2);
  assert.equal(dp.drops().lost_upcall, 2);
  while (dp.queuedMisses > 0) dp.runQueuedMisses();
  assert.deepEqual(ports[1].sent.map((f) => f[33]), [2, 3, 4]);
});

test('malformed frames are dropped by reason; no-output lists count a pipeline drop', () => {
  const { xl, dp } = setup();
  const m = matchOf([[W_VLAN_DLTYPE, 0x0800, 0xffff]]);
  xl.rules.push(new TestRule(m.value, m.mask, 1, []));
  dp.processBatch(batchOf([hexBytes('0200000000020200'), udpFrame()], 1), 2);
  assert.equal(dp.drops().truncated_eth, 1);
  assert.equal(dp.dropAction[DpDrop.Pipeline], 1);
});

test('dumpCache prints megaflows as dpctl/dump-flows does; perfStats has the pmd-perf-show lines', () => {
  let now = 5000;
  const { xl, dp } = setup({ nowMs: () => now });
  const m = matchOf([[W_IN_PORT, 1, 0xffffffff], [W_VLAN_DLTYPE, 0x0800, 0xffff], [W_NW_DST, 0x0a000100, 0xffffff00]]);
  xl.rules.push(new TestRule(m.value, m.mask, 1, [{ kind: 'output', port: 2 }]));
  dp.processBatch(batchOf([udpFrame(), udpFrame()], 1), 2);
  now += 500;
  const text = dumpCache(dp);
  assert.match(text, /^megaflows: 1\nrecirc_id\(0\),in_port\(1\),eth_type\(0x0800\),ipv4\(dst=10\.0\.1\.0\/255\.255\.255\.0\), packets:2, bytes:128, used:0\.500s, actions:2\n/);
  assert.match(text, /exact entries: 1 \(of 8192 slots\)\nrecirc_id\(0\),in_port\(1\),eth\(src=02:00:00:00:00:01,dst=02:00:00:00:00:02\),eth_type\(0x0800\),ipv4\(src=10\.0\.1\.1,dst=10\.0\.1\.2,proto=17,tos=0x0,ttl=64,frag=no\),udp\(src=1000,dst=2000\), megaflow:0, actions:2/);
  const perf = perfStats(dp);
  for (const l of ['Rx packets:', '- EMC hits:', '- Megaflow hits:', '- Upcalls:', '- Lost upcalls:', 'Avg ns/packet:', 'pkts/batch', 'Megaflows:', 'Exact entries:'])
    assert.ok(perf.includes(l), l);
});

test('runs of one flow share an EMC answer only when the whole key is equal (hash-equal keys stay apart)', () => {
  const { xl, dp, ports } = setup();
  // dl_dst 02:00:00:00:00:02 -> port 2; 06:00:00:00:00:02 -> port 3. The frames differ only in
  // dl_dst's top 16 bits, which the ingress hash does not cover: equal hashes, different flows.
  const a = udpFrame(), b = udpFrame();
  b[0] = 0x06;
  const ma = matchOf([[W_DL_DST_HI, 0x0200, 0xffff], [W_DL_DST_LO, 0x00000002, 0xffffffff]]);
  const mb = matchOf([[W_DL_DST_HI, 0x0600, 0xffff], [W_DL_DST_LO, 0x00000002, 0xffffffff]]);
  const ra = new TestRule(ma.value, ma.mask, 10, [{ kind: 'output', port: 2 }]);
  const rb = new TestRule(mb.value, mb.mask, 10, [{ kind: 'output', port: 3 }]);
  xl.rules.push(ra, rb);
  const keys = new Uint32Array(2 * KEY_WORDS), offs = new Uint16Array(2 * OFFS_WORDS);
  extractKey(a, 0, a.length, 1, keys, 0, offs, 0);
  extractKey(b, 0, b.length, 1, keys, KEY_WORDS, offs, OFFS_WORDS);
  assert.equal(ingressHash(keys, 0), ingressHash(keys, KEY_WORDS), 'the two keys hash alike');
  const order = [a, a, b, b, a, b, a, a];
  dp.processBatch(batchOf(order, 1), order.length); // installs both flows (and their EMC entries)
  const before = dp.nEmcHits;
  dp.processBatch(batchOf(order, 1), order.length); // all hits: runs and switches between flows
  assert.equal(dp.nEmcHits - before, order.length);
  assert.equal(ports[1].sent.length, 2 * 5);
  assert.equal(ports[2].sent.length, 2 * 3);
  for (const s of ports[1].sent) assert.equal(toHex(s), toHex(a));
  for (const s of ports[2].sent) assert.equal(toHex(s), toHex(b));
  assert.equal(ra.nPackets, 10);
  assert.equal(rb.nPackets, 6);
});

test('runs of an output-only flow between copied frames to the same port keep wire order and counters', () => {
  const xl = new LinearXlate();
  const dp = new Datapath({ upcaller: xl, emcInsertInvProb: 1 });
  const p1 = new MemNetdev('p1', true), p2 = new MemNetdev('p2', true);
  dp.addPort(1, p1); dp.addPort(2, p2);
  // A (to 10.0.1.2) goes out as it is: its slots gather (PortTable.emitLastRun). B (to
  // 10.0.1.3) is rewritten first, so it is copied into p2's batch, and A's frames after it too.
  const ma = matchOf([[W_NW_DST, 0x0a000102, 0xffffffff]]), mb = matchOf([[W_NW_DST, 0x0a000103, 0xffffffff]]);
  const ra = new TestRule(ma.value, ma.mask, 10, [{ kind: 'output', port: 2 }]);
  const rb = new TestRule(mb.value, mb.mask, 10, [{ kind: 'set_eth', src: 0x02000000000a, dst: 0x020000000002 }, { kind: 'output', port: 2 }]);
  xl.rules.push(ra, rb);
  const a = udpFrame(2), b = udpFrame(3);
  const order = [a, a, a, b, a, a, b, b, a, a, a];
  const names = order.map((f) => (f === a ? 'A' : 'B')).join('');
  for (let round = 1; round <= 2; round++) { // the first round upcalls, the second hits the EMC
    p2.sent.length = 0;
    assert.equal(dp.processBatch(batchOf(order, 1), order.length), order.length);
    assert.equal(p2.sent.map((s) => (s[33] === 2 ? 'A' : 'B')).join(''), names, `round ${round}: wire order`);
    for (const s of p2.sent) if (s[33] === 3) assert.equal(s[11], 0x0a, 'B rewritten');
    for (const s of p2.sent) if (s[33] === 2) assert.equal(toHex(s), toHex(a), 'A as it came');
    assert.equal(ra.nPackets, 8 * round);
    assert.equal(ra.nBytes, 8 * 64 * round);
    assert.equal(rb.nPackets, 3 * round);
    assert.equal(dp.ports.byNo(2)?.txPackets, 11 * round);
    assert.equal(dp.ports.byNo(1)?.rxForwarded, 11 * round);
  }
  // A batch of A only: one run, sent as the input batch itself.
  const all = [a, a, a, a];
  p2.sent.length = 0;
  const calls = p2.nSendCalls, inputSends = dp.ports.nInputSends;
  dp.processBatch(batchOf(all, 1), all.length);
  assert.equal(p2.nSendCalls - calls, 1, 'one send');
  assert.equal(dp.ports.nInputSends - inputSends, 1, 'the input batch itself');
  for (const s of p2.sent) assert.equal(toHex(s), toHex(a));
  assert.equal(dp.ports.byNo(2)?.txPackets, 26);
  assert.equal(dp.ports.byNo(1)?.rxForwarded, 26);
  assert.equal(ra.nPackets, 20);
});

test('stats: busy time never exceeds the wall time of light traffic, also after a slow first batch (flowctl stats us/it, ns/packet)', () => {
  const { xl, dp } = setup();
  const m = matchOf([[W_IN_PORT, 1, 0xffffffff]]);
  xl.rules.push(new TestRule(m.value, m.mask, 10, [{ kind: 'output', port: 2 }]));
  // The one upcall stands for a cold one (a lab's first packets): 5 ms of work.
  const translate = xl.translate.bind(xl);
  xl.translate = (keys, base) => {
    const end = performance.now() + 5;
    while (performance.now() < end) { /* work */ }
    return translate(keys, base);
  };
  const batches = Array.from({ length: 64 }, () => batchOf([udpFrame()], 1));
  const t0 = performance.now();
  for (const b of batches) dp.processBatch(b, 1);
  const wallMs = performance.now() - t0;
  assert.equal(dp.nUpcalls, 1);
  assert.ok(dp.busyMs >= 5 && dp.busyMs <= wallMs, `busy ${dp.busyMs.toFixed(3)} ms, wall ${wallMs.toFixed(3)} ms`);
  const perPkt = /Avg ns\/packet: +([\d.]+)/.exec(perfStats(dp));
  assert.ok(perPkt !== null && Number(perPkt[1]) <= (wallMs * 1e6) / 64, `stats say ${perPkt?.[1]} ns/packet, the wall ${(wallMs * 1e6) / 64}`);
});

test('frames with equal bytes from other tunnels or ports in one batch go where their own key says (the parse\'s equal-neighbour mark)', () => {
  // Rules on each tunnel word and on in_port: a run of byte-identical frames whose in_port or
  // tunnel metadata changes mid-run must not take the flow of the frame before it (extract
  // marks a frame equal to its neighbour only when those words are equal too).
  const { xl, dp, ports } = setup();
  const fields: [number, number][] = [[W_TUN_ID_HI, 7], [W_TUN_ID_LO, 1001], [W_TUN_SRC, 0xc0a8640c], [W_TUN_DST, 0xc0a8640b]];
  for (const [w, v] of fields) {
    const m = matchOf([[w, v, 0xffffffff]]);
    xl.rules.push(new TestRule(m.value, m.mask, 20, [{ kind: 'output', port: 3 }]));
  }
  const m2 = matchOf([[W_IN_PORT, 2, 0xffffffff]]);
  xl.rules.push(new TestRule(m2.value, m2.mask, 10, [{ kind: 'output', port: 3 }]));
  const mDef = matchOf([[W_IN_PORT, 1, 0xffffffff]]);
  xl.rules.push(new TestRule(mDef.value, mDef.mask, 5, [{ kind: 'output', port: 2 }]));
  const f = udpFrame();
  // Per frame: which column differs from the plain frame (-1: none, 4: in_port 2).
  const plan = [-1, -1, 0, -1, 1, -1, 2, -1, 3, -1, 4, -1, -1];
  for (let round = 0; round < 3; round++) { // the first round misses; later ones run from the caches
    const b = batchOf(plan.map(() => f), 1);
    plan.forEach((c, i) => {
      if (c === 0) b.tunIdHi[i] = 7;
      if (c === 1) b.tunIdLo[i] = 1001;
      if (c === 2) b.tunSrc[i] = 0xc0a8640c;
      if (c === 3) b.tunDst[i] = 0xc0a8640b;
      if (c === 4) b.inPort[i] = 2;
    });
    ports[1].sent.length = 0; ports[2].sent.length = 0;
    dp.processBatch(b, b.count);
    assert.equal(ports[2].sent.length, 5, `round ${round}: the five frames with another tunnel or port`);
    assert.equal(ports[1].sent.length, plan.length - 5, `round ${round}: the plain frames`);
  }
  assert.ok(dp.nEmcHits > 0, 'later rounds hit the EMC');
});

test('a run of one output-only flow from several ports: each frame forwarded is credited to its own port', () => {
  const xl = new LinearXlate();
  const dp = new Datapath({ upcaller: xl, emcInsertInvProb: 1 });
  dp.addPort(1, new MemNetdev('p1', true)); dp.addPort(2, new MemNetdev('p2', true)); dp.addPort(3, new MemNetdev('p3', true));
  // The megaflow does not match in_port: frames from ports 1 and 3 share one flow and one run.
  const m = matchOf([[W_NW_DST, 0x0a000102, 0xffffffff]]);
  xl.rules.push(new TestRule(m.value, m.mask, 10, [{ kind: 'output', port: 2 }]));
  const inPorts = [1, 1, 3, 3, 3, 1, 3, 1, 1];
  for (let round = 1; round <= 2; round++) {
    const b = batchOf(inPorts.map(() => udpFrame(2)), 1);
    inPorts.forEach((p, i) => { b.inPort[i] = p; });
    assert.equal(dp.processBatch(b, inPorts.length), inPorts.length);
    assert.equal(dp.ports.byNo(1)?.rxForwarded, 5 * round, `round ${round}: port 1`);
    assert.equal(dp.ports.byNo(3)?.rxForwarded, 4 * round, `round ${round}: port 3`);
    assert.equal(dp.ports.byNo(2)?.txPackets, 9 * round);
  }
});
