/**
 * Frames of one flow in a run through ct() recirculation: a frame whose key equals the frame's
 * before it keeps that through the recirculation pass only when conntrack answered the same for
 * both (dpif/stages.ts sameKey, Conntrack.again). These cases give two frames with equal keys
 * different answers, so a pass that carried "equal" over without looking would send the second
 * frame where the first went: ICMP echoes of two ids (the id is not in the key) of which one
 * connection is established; a connection flushed between two batches at the same clock.
 * (TCP and UDP frames with equal keys give conntrack equal input: the parse drops a frame
 * whose L4 header its IPv4 total length cuts, so conntrack never sees one.) And a run through
 * SNAT: each frame rewritten from its own bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bridge } from '../../src/ofproto/bridge';
import { ipv4SetChecksum, l4ChecksumOk4, l4SetChecksum4 } from '../../src/packet/checksum';
import { bridgeWorld, BridgeWorld as World, sendBatch, toHex } from './helpers';

function world(flows: string): World {
  const br = new Bridge('br0', 0, { defaultFlow: false });
  for (let p = 1; p <= 4; p++) br.addPort({ name: `p${p}`, ofport: p, kind: 'afpacket' });
  br.addFlows(flows, 0);
  return bridgeWorld(br);
}


const A = 0x0a000005, B = 0xcb007107, NAT = 0xac18040a;

/** Ethernet + IPv4 + `l4` (its checksum filled), 20-byte IPv4 header with IP id `ipId`. */
function ipFrame(src: number, dst: number, proto: number, l4: Uint8Array, ipId = 1): Uint8Array {
  const f = new Uint8Array(34 + l4.length);
  const v = new DataView(f.buffer);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0, 0x45, 0]);
  v.setUint16(16, 20 + l4.length); v.setUint16(18, ipId); f[22] = 64; f[23] = proto;
  v.setUint32(26, src); v.setUint32(30, dst);
  f.set(l4, 34);
  ipv4SetChecksum(f, 14);
  l4SetChecksum4(f, 14, 34, l4.length, proto);
  return f;
}

function echo(src: number, dst: number, type: number, id: number, seq: number): Uint8Array {
  return ipFrame(src, dst, 1, Uint8Array.from([type, 0, 0, 0, id >> 8, id & 0xff, seq >> 8, seq & 0xff]), seq);
}

function tcp(src: number, dst: number, sp: number, dp: number, flags: number, ipId: number): Uint8Array {
  const l4 = new Uint8Array(20);
  l4.set([sp >> 8, sp & 0xff, dp >> 8, dp & 0xff]);
  l4[12] = 0x50; l4[13] = flags; l4[14] = 0xfa; l4[15] = 0xf0;
  return ipFrame(src, dst, 6, l4, ipId);
}

/**
 * A stateful firewall: established traffic from p1 leaves on p2, new traffic from p1 is
 * committed and leaves on p3, invalid on p4; replies from p2 go back to p1.
 */
const FIREWALL = `
table=0,priority=10,ip,ct_state=-trk,actions=ct(table=1,zone=5)
table=1,priority=10,ct_state=+trk+est,in_port=1,ip,actions=output:2
table=1,priority=10,ct_state=+trk+new,in_port=1,ip,actions=ct(commit,zone=5),output:3
table=1,priority=10,ct_state=+trk+est,in_port=2,ip,actions=output:1
table=1,priority=10,ct_state=+trk+inv,ip,actions=output:4
table=1,priority=0,actions=drop
`;

/** An SNAT router (p1 inside, p2 outside); new connections leave on p2, established on p3. */
const SNAT = `
table=0,priority=10,ip,actions=ct(table=1,zone=7,nat)
table=1,priority=10,ct_state=+trk+new,in_port=1,ip,actions=ct(commit,zone=7,nat(src=172.24.4.10)),output:2
table=1,priority=10,ct_state=+trk+est,in_port=1,ip,actions=output:3
table=1,priority=10,ct_state=+trk+est,in_port=2,ip,actions=output:1
table=1,priority=0,actions=drop
`;

test('two ICMP echoes with equal keys, one of an established connection: each goes where its own ct_state sends it', () => {
  const w = world(FIREWALL);
  // Open id 7: request out (committed, p3), reply back (established).
  assert.equal(sendBatch(w, 'p1', [echo(A, B, 8, 7, 1)]).p3.length, 1);
  assert.equal(sendBatch(w, 'p2', [echo(B, A, 0, 7, 1)]).p1.length, 1);
  // id 7 (established) then id 9 (new): equal keys, different connections.
  const est = echo(A, B, 8, 7, 2), neu = echo(A, B, 8, 9, 2), est2 = echo(A, B, 8, 7, 3);
  const out = sendBatch(w, 'p1', [est, neu, est2]);
  assert.deepEqual(out.p2, [toHex(est), toHex(est2)]);
  assert.deepEqual(out.p3, [toHex(neu)]);
  // The same again with the new one first: the established one must not follow it.
  const neu2 = echo(A, B, 8, 11, 4), est3 = echo(A, B, 8, 7, 4);
  const out2 = sendBatch(w, 'p1', [neu2, est3]);
  assert.deepEqual(out2.p3, [toHex(neu2)]);
  assert.deepEqual(out2.p2, [toHex(est3)]);
});

test('a run of one TCP flow through SNAT: every frame NATed on its own bytes, checksums right, counted once each', () => {
  const w = world(SNAT);
  assert.equal(sendBatch(w, 'p1', [tcp(A, B, 40000, 80, 0x02, 1)]).p2.length, 1);
  assert.equal(sendBatch(w, 'p2', [tcp(B, NAT, 80, 40000, 0x12, 1)]).p1.length, 1);
  // A first run installs the flows in the caches: the next one finds them as runs of one key.
  assert.equal(sendBatch(w, 'p1', [tcp(A, B, 40000, 80, 0x10, 2)]).p3.length, 1);
  assert.equal(sendBatch(w, 'p2', [tcp(B, NAT, 80, 40000, 0x10, 2)]).p1.length, 1);
  const packets0 = w.dp.conntrack.nPackets;
  // Equal keys, different bytes (IP id, hence checksums): each frame's sums are patched from its own.
  const run = [2, 3, 4, 5].map((id) => tcp(A, B, 40000, 80, 0x10, id));
  const out = sendBatch(w, 'p1', run);
  assert.equal(out.p3.length, 4);
  for (let k = 0; k < 4; k++) {
    const f = Uint8Array.from(Buffer.from(out.p3[k], 'hex'));
    const want = tcp(NAT, B, 40000, 80, 0x10, k + 2);
    assert.equal(out.p3[k], toHex(want), `frame ${k}`);
    assert.ok(l4ChecksumOk4(f, 14, 34, 20, 6));
  }
  assert.equal(w.dp.conntrack.nPackets - packets0, 4);
  // Replies in a run, de-NATed.
  const back = sendBatch(w, 'p2', [2, 3, 4].map((id) => tcp(B, NAT, 80, 40000, 0x10, id)));
  assert.deepEqual(back.p1, [2, 3, 4].map((id) => toHex(tcp(B, A, 80, 40000, 0x10, id))));
});

test('a connection flushed between two batches at the same clock: the second run is new, not established', () => {
  const w = world(FIREWALL);
  sendBatch(w, 'p1', [tcp(A, B, 40000, 80, 0x02, 1)]);
  sendBatch(w, 'p2', [tcp(B, A, 80, 40000, 0x12, 1)]);
  const run = (id: number) => [0, 1, 2].map((k) => tcp(A, B, 40000, 80, 0x10, id + k));
  assert.equal(sendBatch(w, 'p1', run(10)).p2.length, 3);
  w.dp.conntrack.flush();
  const out = sendBatch(w, 'p1', run(20));
  assert.equal(out.p2.length, 0);
  assert.equal(out.p3.length, 3); // picked up mid-stream (tcp loose), committed anew
});
