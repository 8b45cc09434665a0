/**
 * The hashes' readers get each frame's own hash whatever the EMC's lookup policy does: the
 * VXLAN source port of a flow must not depend on whether the EMC was bypassed, entries
 * inserted while it was bypassed must be found when lookups resume, and a recirculation pass
 * hashes its frames again (conntrack wrote their keys). The flows change slots between batches,
 * so a hash left in a column by an earlier batch is another flow's. (Written for p13b's
 * hashes-made-where-read branch, native-notes/hash-where-read.md, which was not merged; they
 * hold for main's one hash per frame in extract as well, and guard any next attempt.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datapath } from '../../src/dpif/datapath';
import { EMC_ALWAYS, EMC_DEFAULT_POLICY } from '../../src/dpif/emc';
import { PacketBatch } from '../../src/netdev/batch';
import { KEY_WORDS, W_IN_PORT } from '../../src/packet/flowkey-layout';
import { extractKey, OFFS_WORDS } from '../../src/packet/flowkey';
import { ingressHash, tunnelSrcPort } from '../../src/dpif/flow-hash';
import { TunnelDesc } from '../../src/dpif/tunnel-header';
import { Bridge } from '../../src/ofproto/bridge';
import { ipv4SetChecksum } from '../../src/packet/checksum';
import { bridgeWorld, LinearXlate, MemNetdev, sendBatch, TestRule, matchOf, udpFrameTo } from './helpers';

const VX: TunnelDesc = { kind: 'vxlan', localIp: 0xc0a8640b, remoteIp: 0xc0a8640c, srcMac: 0x525400000011,
  nextHopMac: 0x525400000012, dstPort: 4789, ttl: 64, tos: 0 };
const N_FLOWS = 8;

function batchOf(flows: number[]): PacketBatch {
  const b = new PacketBatch(64);
  for (const k of flows) { const i = b.append(udpFrameTo(10 + k)); b.inPort[i] = 1; }
  return b;
}

/** The flows 0..N_FLOWS-1 rotated by `r`: each flow in another slot than in the batch before. */
function rotated(r: number): number[] {
  return Array.from({ length: N_FLOWS }, (_, k) => (k + r) % N_FLOWS);
}

/** A datapath whose one megaflow (in_port) sends every frame to `out`, into a tunnel or not. */
function world(tunnel: boolean): { dp: Datapath; out: MemNetdev } {
  const xl = new LinearXlate();
  const dp = new Datapath({ upcaller: xl, emcInsertInvProb: 1 });
  dp.emc.lookupPolicy = EMC_ALWAYS; // no probes: the tests set emc.bypassing themselves
  const out = new MemNetdev('out');
  dp.addPort(1, new MemNetdev('in'));
  dp.addPort(2, out, tunnel ? VX : null);
  const m = matchOf([[W_IN_PORT, 1, 0xffffffff]]);
  xl.rules.push(new TestRule(m.value, m.mask, 1, tunnel
    ? [{ kind: 'set_tunnel', tunIdHi: 0, tunIdLo: 1002, src: 0, dst: 0 }, { kind: 'output', port: 2 }]
    : [{ kind: 'output', port: 2 }]));
  return { dp, out };
}

/** [flow number (the inner destination address's last byte - 10), VXLAN source port] of each outer frame. */
function sourcePorts(sent: Uint8Array[]): [number, number][] {
  return sent.map((o) => [o[50 + 33] - 10, (o[34] << 8) | o[35]]);
}

test('VXLAN source ports are the flow hash\'s with the EMC looked up, bypassed, and looked up again', () => {
  const { dp, out } = world(true);
  const want = new Map<number, number>(); // the port each flow's key hash gives
  for (let k = 0; k < N_FLOWS; k++) {
    const f = udpFrameTo(10 + k), key = new Uint32Array(KEY_WORDS);
    extractKey(f, 0, f.length, 1, key, 0, new Uint16Array(OFFS_WORDS), 0);
    want.set(k, tunnelSrcPort(ingressHash(key, 0)));
  }
  assert.equal(new Set(want.values()).size, N_FLOWS, 'the test flows have distinct source ports');
  const modes = [false, false, true, true, true, false, true, false]; // bypassing, per batch
  for (let r = 0; r < modes.length; r++) {
    dp.emc.bypassing = modes[r];
    out.sent.length = 0;
    dp.processBatch(batchOf(rotated(r)), N_FLOWS);
    assert.equal(out.sent.length, N_FLOWS);
    for (const [flow, port] of sourcePorts(out.sent)) {
      assert.equal(port, want.get(flow), `batch ${r} (EMC ${modes[r] ? 'bypassed' : 'looked up'}): flow ${flow}`);
    }
  }
});

test('EMC entries inserted while the EMC is bypassed are hit when lookups resume', () => {
  const { dp } = world(false);
  // Every frame of a bypassed run offers its flow (by default only the run's last fillFrames do).
  dp.emc.lookupPolicy = { ...EMC_DEFAULT_POLICY, fillFrames: EMC_DEFAULT_POLICY.runFrames };
  dp.emc.bypassing = true;
  dp.processBatch(batchOf(rotated(0)), N_FLOWS); // upcall, install, insert (every offer: 1/1)
  dp.processBatch(batchOf(rotated(3)), N_FLOWS); // megaflow hits, inserted again
  assert.equal(dp.nEmcHits, 0, 'no lookup while bypassed');
  dp.emc.bypassing = false;
  dp.processBatch(batchOf(rotated(5)), N_FLOWS);
  assert.equal(dp.nEmcHits, N_FLOWS, 'every frame hits the entry its flow got while bypassed');
});

/** Ethernet + IPv4 + UDP `sp` -> `dp` from `src` to `dst`, 64 bytes. */
function udp(src: number, dst: number, sp: number, dp: number): Uint8Array {
  const f = new Uint8Array(64);
  const v = new DataView(f.buffer);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0, 0x45, 0]);
  v.setUint16(16, 50); f[22] = 64; f[23] = 17;
  v.setUint32(26, src); v.setUint32(30, dst);
  v.setUint16(34, sp); v.setUint16(36, dp); v.setUint16(38, 30);
  ipv4SetChecksum(f, 14);
  return f;
}

test('a recirculation pass hashes its frames again: both passes of established flows hit the EMC', () => {
  const br = new Bridge('br0', 0, { defaultFlow: false });
  for (let p = 1; p <= 3; p++) br.addPort({ name: `p${p}`, ofport: p, kind: 'afpacket' });
  br.addFlows(`
table=0,priority=10,ip,ct_state=-trk,actions=ct(table=1,zone=5)
table=1,priority=10,ct_state=+trk+new,in_port=1,ip,actions=ct(commit,zone=5),output:3
table=1,priority=10,ct_state=+trk+est,in_port=1,ip,actions=output:2
table=1,priority=10,ct_state=+trk+est,in_port=2,ip,actions=output:1
`, 0);
  const w = bridgeWorld(br);
  w.dp.emc.lookupPolicy = EMC_ALWAYS;
  const A = 0x0a000005, B = 0x0a000006;
  const out = (r: number) => Array.from({ length: N_FLOWS }, (_, k) => udp(A, B, 1000 + (k + r) % N_FLOWS, 53));
  sendBatch(w, 'p1', out(0)); // new, committed
  sendBatch(w, 'p2', Array.from({ length: N_FLOWS }, (_, k) => udp(B, A, 53, 1000 + k))); // replies: established
  assert.equal(sendBatch(w, 'p1', out(3)).p2.length, N_FLOWS); // established: megaflows and EMC entries of both passes
  const hits = w.dp.nEmcHits;
  assert.equal(sendBatch(w, 'p1', out(5)).p2.length, N_FLOWS);
  assert.equal(w.dp.nEmcHits - hits, 2 * N_FLOWS, 'every frame hits the EMC in its first pass and in its recirculation');
});
