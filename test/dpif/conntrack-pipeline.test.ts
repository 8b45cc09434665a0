/**
 * ct() through the whole stack: rules (ovs-ofctl syntax) -> xlate (ct + recirc) -> datapath
 * (conntrack, recirculation with recirc_id and ct_state in the key, megaflows) -> ports.
 * A stateful firewall (only connections opened from p1 get back in) and an SNAT router (p1
 * inside, p2 outside) with literal frames: NATed bytes out, de-NATed bytes back, ICMP
 * frag-needed back to the inside host; a second round is served from the caches.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDpActions } from '../../src/dpif/dp-actions';
import { Bridge } from '../../src/ofproto/bridge';
import { xlate } from '../../src/ofproto/xlate';
import { extractKey, OFFS_WORDS } from '../../src/packet/flowkey';
import { KEY_WORDS } from '../../src/packet/flowkey-layout';
import { bridgeWorld, BridgeWorld as World, sendBatch, toHex } from './helpers';
import { cmdConntrack } from '../../src/control/commands';
import type { Switch } from '../../src/control/switch';
import { dumpCache } from '../../src/dpif/dump';

// Literal frames, as in conntrack-nat.test.ts (checksums computed independently).
const F: Record<string, string> = {
  SYN1: 'fa163e000001020000000005080045000028000140004006f4c20a000005cb0071079c40005000000001000000005002faf0d2530000',
  SYN1_NAT: 'fa163e0000010200000000050800450000280001400040064ea5ac18040acb0071079c40005000000001000000005002faf02c360000',
  SYN2: 'fa163e000001020000000005080045000028000140004006f4c10a000006cb0071079c40005000000007000000005002faf0d24c0000',
  SYN2_NAT: 'fa163e0000010200000000050800450000280001400040064ea5ac18040acb0071070400005000000007000000005002faf0c4700000',
  SYNACK2: 'fa163e0000010200000000050800450000280009400040064e9dcb007107ac18040a0050040000000064000000085012faf0c3fb0000',
  SYNACK2_DENAT: 'fa163e000001020000000005080045000028000940004006f4b9cb0071070a00000600509c4000000064000000085012faf0d1d70000',
  FRAGNEED: 'fa163e000001020000000005080045000038004d000040018e54cb007101ac18040a0304f32c00000578450000280001400003068ba5ac18040acb0071070400005000000007',
  FRAGNEED_DENAT: 'fa163e000001020000000005080045000038004d000040013471cb0071010a00000603045aec000005784500002800014000030631c20a000006cb0071079c40005000000007',
};
const hexOf = (name: string): Uint8Array => Uint8Array.from(Buffer.from(F[name], 'hex'));

function world(flows: string): World {
  const br = new Bridge('br0', 0, { defaultFlow: false });
  br.addPort({ name: 'p1', ofport: 1, kind: 'afpacket' });
  br.addPort({ name: 'p2', ofport: 2, kind: 'afpacket' });
  br.addFlows(flows, 0);
  return bridgeWorld(br);
}


function tcp(src: number, dst: number, sp: number, dp: number, flags: number): Uint8Array {
  const f = new Uint8Array(54);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0, 0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6]);
  new DataView(f.buffer).setUint32(26, src); new DataView(f.buffer).setUint32(30, dst);
  f[34] = sp >> 8; f[35] = sp & 0xff; f[36] = dp >> 8; f[37] = dp & 0xff; f[46] = 0x50; f[47] = flags;
  return f;
}

const FIREWALL = `
table=0,priority=10,ip,ct_state=-trk,actions=ct(table=1,zone=5)
table=0,priority=0,actions=drop
table=1,priority=10,ct_state=+trk+new,in_port=1,ip,actions=ct(commit,zone=5),output:2
table=1,priority=10,ct_state=+trk+est,in_port=1,ip,actions=output:2
table=1,priority=10,ct_state=+trk+est,in_port=2,ip,actions=output:1
table=1,priority=0,actions=drop
`;

test('stateful firewall: connections opened from p1 pass both ways, a new one from p2 is dropped', () => {
  const w = world(FIREWALL);
  const A = 0x0a000001, B = 0x0a000002;
  const syn = tcp(A, B, 1000, 80, 2), synack = tcp(B, A, 80, 1000, 0x12), ack = tcp(A, B, 1000, 80, 0x10);
  let o = sendBatch(w, 'p1', [syn]);
  assert.deepEqual(o.p2, [toHex(syn)]);
  o = sendBatch(w, 'p2', [synack]);
  assert.deepEqual(o.p1, [toHex(synack)]);
  o = sendBatch(w, 'p1', [ack]);
  assert.deepEqual(o.p2, [toHex(ack)]);
  // An unsolicited SYN from the outside: +new from p2, no rule lets it through.
  o = sendBatch(w, 'p2', [tcp(B, A, 2000, 22, 2)]);
  assert.deepEqual(o, { p1: [], p2: [] });
  assert.equal(w.dp.conntrack.nLive, 1);
  assert.match(w.dp.conntrack.list(5, 1000)[0], /^tcp,orig=\(src=10\.0\.0\.1,dst=10\.0\.0\.2,sport=1000,dport=80\),.*zone=5,.*state=ESTABLISHED/);
  // The same exchange again is served by the caches: no new upcall.
  const before = w.dp.nUpcalls;
  o = sendBatch(w, 'p1', [ack, ack]);
  assert.deepEqual(o.p2, [toHex(ack), toHex(ack)]);
  o = sendBatch(w, 'p2', [synack]);
  assert.deepEqual(o.p1, [toHex(synack)]);
  assert.equal(w.dp.nUpcalls, before);
  // Megaflows after recirculation match recirc_id and ct_state.
  const dump = dumpCache(w.dp);
  assert.match(dump, /recirc_id\(0x1\)/);
  assert.match(dump, /ct_state\(/);
});

test('xlate: ct(table=1,zone=5) is ct(zone=5),recirc(0x1); ct(commit,...,nat(src=...)) keeps going', () => {
  const w = world(`${FIREWALL}\ntable=2,ip,actions=ct(commit,zone=7,exec(set_field:0x5/0xff->ct_mark),nat(src=172.24.4.10:1024-2047)),output:2`);
  const k = new Uint32Array(KEY_WORDS);
  const f = tcp(0x0a000001, 0x0a000002, 1000, 80, 2);
  extractKey(f, 0, f.length, 1, k, 0, new Uint16Array(OFFS_WORDS), 0);
  const r = xlate({ ofproto: w.ofp, bridge: w.ofp.bridges.get('br0')!, key: k, packetBytes: f.length, nowMs: 0, sideEffects: false });
  assert.equal(formatDpActions(r.actions), 'ct(zone=5),recirc(0x1)');
  const r2 = xlate({ ofproto: w.ofp, bridge: w.ofp.bridges.get('br0')!, key: k, packetBytes: f.length, nowMs: 0, sideEffects: false, tableId: 2 });
  assert.equal(formatDpActions(r2.actions), `ct(commit,zone=7,mark=0x5/0xff,nat(src=172.24.4.10:1024-2047)),${w.dpNo.get('p2')}`);
});

const SNAT_ROUTER = `
table=0,priority=10,ip,actions=ct(table=1,zone=7,nat)
table=1,priority=10,ct_state=+trk+new,in_port=1,ip,actions=ct(commit,zone=7,nat(src=172.24.4.10)),output:2
table=1,priority=10,ct_state=+trk+est,in_port=1,ip,actions=output:2
table=1,priority=10,ct_state=+trk+est,in_port=2,ip,actions=output:1
table=1,priority=10,ct_state=+trk+rel,in_port=2,ip,actions=output:1
table=1,priority=0,actions=drop
`;

test('SNAT router: NATed bytes out of p2, de-NATed reply and ICMP frag-needed back on p1', () => {
  const w = world(SNAT_ROUTER);
  let o = sendBatch(w, 'p1', [hexOf('SYN1'), hexOf('SYN2')]);
  assert.deepEqual(o.p2, [F.SYN1_NAT, F.SYN2_NAT]);
  o = sendBatch(w, 'p2', [hexOf('SYNACK2')]);
  assert.deepEqual(o.p1, [F.SYNACK2_DENAT]);
  o = sendBatch(w, 'p2', [hexOf('FRAGNEED')]);
  assert.deepEqual(o.p1, [F.FRAGNEED_DENAT]);
  // Again, from the caches.
  const before = w.dp.nUpcalls;
  o = sendBatch(w, 'p2', [hexOf('SYNACK2')]);
  assert.deepEqual(o.p1, [F.SYNACK2_DENAT]);
  assert.equal(w.dp.nUpcalls, before);
  assert.deepEqual(w.dp.conntrack.list(7, 1000).map((l) => l.replace(/,timeout=\d+/, '')), [
    'tcp,orig=(src=10.0.0.5,dst=203.0.113.7,sport=40000,dport=80),reply=(src=203.0.113.7,dst=172.24.4.10,sport=80,dport=40000),zone=7,protoinfo=(state=SYN_SENT)',
    'tcp,orig=(src=10.0.0.6,dst=203.0.113.7,sport=40000,dport=80),reply=(src=203.0.113.7,dst=172.24.4.10,sport=80,dport=1024),zone=7,protoinfo=(state=SYN_RECV)',
  ]);
});

test('conntrack full: the datapath drops new connections, established ones keep flowing', () => {
  const br = FIREWALL;
  const w = world(br);
  const ct = w.dp.conntrack;
  const A = 0x0a000001, B = 0x0a000002;
  sendBatch(w, 'p1', [tcp(A, B, 1, 80, 2)]);
  sendBatch(w, 'p2', [tcp(B, A, 80, 1, 0x12)]);
  for (let round = 0; round < 40; round++) {
    const fl: Uint8Array[] = [];
    for (let i = 0; i < 32; i++) fl.push(tcp(A, B, 2000 + round * 32 + i, 80, 2));
    sendBatch(w, 'p1', fl);
  }
  assert.equal(ct.nLive, 1024);
  assert.ok(ct.stats().drop_table_full >= 1280 - 1023);
  assert.ok(w.dp.nCtDrops >= 1280 - 1023);
  const o = sendBatch(w, 'p2', [tcp(B, A, 80, 1, 0x10)]);
  assert.equal(o.p1.length, 1);
});

test('flowctl conntrack: list by zone, stats, limits (get and set), flush, bad action', () => {
  const w = world(SNAT_ROUTER);
  sendBatch(w, 'p1', [hexOf('SYN1')]);
  const sw = { datapath: w.dp, opts: { nowMs: () => 1000 } } as unknown as Switch;
  assert.equal(cmdConntrack(sw, { action: 'list', zone: 7 }),
    'tcp,orig=(src=10.0.0.5,dst=203.0.113.7,sport=40000,dport=80),reply=(src=203.0.113.7,dst=172.24.4.10,sport=80,dport=40000),zone=7,timeout=120,protoinfo=(state=SYN_SENT)');
  assert.equal(cmdConntrack(sw, { action: 'list', zone: 8 }), '');
  assert.equal((cmdConntrack(sw, { action: 'stats', format: 'json' }) as Record<string, number>).connections, 1);
  assert.equal(cmdConntrack(sw, { action: 'limits', zone: 7, limit: 100 }), 'global limit=1024,count=1\ndefault limit=0\nzone=7,limit=100,count=1');
  assert.deepEqual(cmdConntrack(sw, { action: 'flush', zone: 7, format: 'json' }), { flushed: 1 });
  assert.throws(() => cmdConntrack(sw, { action: 'frob' }), /unknown action/);
  assert.throws(() => cmdConntrack(sw, { action: 'list', zone: 70000 }), /zone/);
});
