/**
 * Straight programs (compile.ts runStraight: set_eth, TOS/TTL and VLAN push/pop steps, then one
 * output to a plain or a tunnel port, or one ct step that recirculates in place) run step by step
 * over a run of frames of one flow. What leaves every port is what the slow interpreter
 * (applyDpActions) makes of each frame on its own, in order: for IPv4 frames with and without a
 * VLAN tag, a QinQ frame (its IPv4 header found by a walk; popping its outer tag leaves a key the
 * program cannot follow), a non-IP frame (TTL step skipped) and a frame with no headroom (for the
 * tunnel header: encapsulated by copy, between frames encapsulated in place; for a VLAN tag: the
 * run goes frame by frame and that frame is dropped, as the slow path drops it). A program ending
 * in ct hands every frame to the next pass with the key its rewritten bytes parse to.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datapath, MAX_RECIRC_DEPTH } from '../../src/dpif/datapath';
import { RXD_ACTION0 } from '../../src/dpif/rx-drops';
import { applyDpActions, DpAction, DpCt, DpDrop } from '../../src/dpif/dp-actions';
import { ingressHash } from '../../src/dpif/flow-hash';
import { buildTunnelHeader, encapFill, TunnelDesc } from '../../src/dpif/tunnel-header';
import { PacketBatch } from '../../src/netdev/batch';
import { ipv4SetChecksum } from '../../src/packet/checksum';
import { extractKey, OFFS_WORDS } from '../../src/packet/flowkey';
import { KEY_WORDS, W_CT_MARK, W_CT_STATE, W_CT_ZONE, W_IN_PORT, W_RECIRC_ID } from '../../src/packet/flowkey-layout';
import { UpcallResult } from '../../src/dpif/upcall';
import { LinearXlate, MemNetdev, TestRule, hexBytes, matchOf, toHex } from './helpers';

const DESC: TunnelDesc = { kind: 'vxlan', localIp: 0xc0a8640b, remoteIp: 0xc0a8640c, srcMac: 0x525400000011,
  nextHopMac: 0x525400000012, dstPort: 4789, ttl: 64, tos: 0 };

/** Ethernet (with the given 802.1Q/802.1ad tags) + IPv4/UDP with `pad` payload bytes, checksum filled. */
function ipFrame(k: number, tags: number[], pad: number): Uint8Array {
  const tagHex = tags.map((t, i) => `${i === 0 && tags.length > 1 ? '88a8' : '8100'}${t.toString(16).padStart(4, '0')}`).join('');
  const ipLen = 28 + pad;
  const f = hexBytes(`02000000000${k % 10} 020000000001 ${tagHex} 0800` +
    `45${((k & 3) << 4).toString(16).padStart(2, '0')} ${ipLen.toString(16).padStart(4, '0')} 0000 4000 ${(64 - k).toString(16).padStart(2, '0')}11 0000 0a000101 0a0002${(k + 16).toString(16)}` +
    `03e8 ${(2000 + k).toString(16).padStart(4, '0')} ${(8 + pad).toString(16).padStart(4, '0')} 0000` + '5a'.repeat(pad));
  ipv4SetChecksum(f, 14 + 4 * tags.length);
  return f;
}

const ARP = hexBytes('ffffffffffff 020000000001 0806 0001 0800 0604 0001 020000000001 0a000101 000000000000 0a000102' + '00'.repeat(18));

function frames(): Uint8Array[] {
  return [ipFrame(1, [], 18), ipFrame(2, [], 100), ipFrame(3, [5], 18), ipFrame(4, [], 18), ipFrame(5, [7, 9], 30),
    ARP, ipFrame(6, [], 1000), ipFrame(7, [], 18), ipFrame(8, [], 18)];
}

/**
 * What the slow path sends for each frame, by dp port, in order; frames whose index is in
 * `bare` lie at their slot's first byte (no headroom), as the test lays them.
 */
function slowPath(actions: DpAction[], fs: Uint8Array[], inPort: number, bare: ReadonlySet<number> = new Set()): {
  out: Map<number, string[]>; nForwarded: number;
} {
  const out = new Map<number, string[]>();
  const key = new Uint32Array(KEY_WORDS), offs = new Uint16Array(OFFS_WORDS);
  let nForwarded = 0;
  for (const [k, f] of fs.entries()) {
    const b = new PacketBatch(1);
    b.append(f);
    if (bare.has(k % FRAMES_PER_BATCH)) { b.off[0] = b.slotStart(0); b.buf.set(f, b.off[0]); }
    b.inPort[0] = inPort;
    extractKey(b.buf, b.off[0], b.len[0], inPort, key, 0, offs, 0);
    const hash = ingressHash(key, 0);
    const r = applyDpActions(actions, b, 0, (port, bb, slot) => {
      let bytes = bb.frame(slot).slice();
      if (port === 3) {
        const buf = new Uint8Array(bytes.length + 64);
        buf.set(bytes, 64);
        const o = encapFill(buf, 64, bytes.length, buildTunnelHeader(DESC, bb.tunIdLo[slot]), hash);
        bytes = buf.slice(o);
      }
      out.set(port, [...(out.get(port) ?? []), toHex(bytes)]);
    });
    if (r === DpDrop.None) nForwarded++;
  }
  return { out, nForwarded };
}

const FRAMES_PER_BATCH = frames().length;

const PROGRAMS: [string, DpAction[]][] = [
  ['MACs, TTL, output to a port sent from the input batch', [
    { kind: 'set_eth', src: 0xfa163e0b0001, dst: 0xfa163e000220 },
    { kind: 'set_ipv4', src: -1, dst: -1, tos: -1, tosMask: 0, ttl: 63 },
    { kind: 'output', port: 2 }]],
  ['source MAC, TTL, VXLAN', [
    { kind: 'set_tunnel', tunIdHi: 0, tunIdLo: 1002, src: -1, dst: -1 },
    { kind: 'set_eth', src: 0xfa163f000011, dst: -1 },
    { kind: 'set_ipv4', src: -1, dst: -1, tos: -1, tosMask: 0, ttl: 9 },
    { kind: 'output', port: 3 }]],
  ['TOS, destination MAC, TTL, VXLAN', [
    { kind: 'set_tunnel', tunIdHi: 0, tunIdLo: 77, src: -1, dst: -1 },
    { kind: 'set_ipv4', src: -1, dst: -1, tos: 0x20, tosMask: 0xfc, ttl: -1 },
    { kind: 'set_eth', src: -1, dst: 0x020000000042 },
    { kind: 'set_ipv4', src: -1, dst: -1, tos: -1, tosMask: 0, ttl: 1 },
    { kind: 'output', port: 3 }]],
  ['VLAN popped, MACs, output', [
    { kind: 'pop_vlan' },
    { kind: 'set_eth', src: 0xfa163e0b0001, dst: -1 },
    { kind: 'output', port: 2 }]],
  ['VLAN pushed, TTL, VXLAN (a frame without headroom for the tag: the run goes frame by frame)', [
    { kind: 'set_tunnel', tunIdHi: 0, tunIdLo: 1002, src: -1, dst: -1 },
    { kind: 'push_vlan', tci: 0x2009 },
    { kind: 'set_ipv4', src: -1, dst: -1, tos: -1, tosMask: 0, ttl: 9 },
    { kind: 'output', port: 3 }]],
  ['VLAN popped and pushed, TOS, output', [
    { kind: 'pop_vlan' },
    { kind: 'push_vlan', tci: 0x0003 },
    { kind: 'set_ipv4', src: -1, dst: -1, tos: 0x20, tosMask: 0xfc, ttl: -1 },
    { kind: 'output', port: 2 }]],
];

for (const [name, actions] of PROGRAMS) {
  test(`straight program over a run of frames (${name}): bytes as the slow path, every frame forwarded`, () => {
    const xl = new LinearXlate();
    const m = matchOf([[W_IN_PORT, 1, 0xffffffff]]); // one megaflow for every frame: one run per batch
    xl.rules.push(new TestRule(m.value, m.mask, 10, actions));
    const dp = new Datapath({ upcaller: xl, emcInsertInvProb: 1 });
    const nd = [new MemNetdev('p1'), new MemNetdev('p2', true), new MemNetdev('vx')];
    dp.addPort(1, nd[0]); dp.addPort(2, nd[1]); dp.addPort(3, nd[2], DESC);
    const fs = frames();
    const { out: want, nForwarded } = slowPath(actions, [...fs, ...fs], 1, new Set([7]));
    for (let round = 0; round < 2; round++) { // upcall + megaflow hits, then EMC hits
      const b = new PacketBatch(32);
      for (const f of fs) { const i = b.append(f); b.inPort[i] = 1; }
      // Frame 7 lies at its slot's first byte: no headroom for the outer header.
      b.off[7] = b.slotStart(7);
      b.buf.set(fs[7], b.off[7]);
      dp.processBatch(b, b.count);
    }
    const got = new Map<number, string[]>();
    for (const [k, n] of nd.entries()) if (n.sent.length > 0) got.set(k + 1, n.sent.map(toHex));
    assert.deepEqual(got, want);
    assert.equal(dp.ports.byNo(1)?.rxForwarded, nForwarded);
  });
}

/**
 * An upcaller that caches the first pass's flow (one run per batch) and not the second's, so
 * every recirculated frame comes up with the key the datapath made for it: recorded in `seen`.
 * The second pass outputs to port 2.
 */
class RecircXlate extends LinearXlate {
  readonly seen: Uint32Array[] = [];
  constructor(readonly first: DpAction[]) { super(); }
  override upcall(keys: Uint32Array, base: number): UpcallResult | null {
    this.nUpcalls++;
    const mask = new Uint32Array(KEY_WORDS).fill(0xffffffff);
    if (keys[base + W_RECIRC_ID] === 0) return { actions: this.first, mask, rules: [], cacheable: true };
    this.seen.push(keys.slice(base, base + KEY_WORDS));
    return { actions: [{ kind: 'output', port: 2 }], mask, rules: [], cacheable: false };
  }
}

const CT1: DpCt = { kind: 'ct', zone: 1, commit: false, recircId: 1 };
const CT_PROGRAMS: [string, DpAction[]][] = [
  ['ct alone', [CT1]],
  ['VLAN popped, source MAC, TTL, ct', [
    { kind: 'pop_vlan' },
    { kind: 'set_eth', src: 0xfa163e0b0001, dst: -1 },
    { kind: 'set_ipv4', src: -1, dst: -1, tos: -1, tosMask: 0, ttl: 9 },
    CT1]],
  ['VLAN pushed (a frame without headroom: the run goes frame by frame), destination MAC, ct', [
    { kind: 'push_vlan', tci: 0x0007 },
    { kind: 'set_eth', src: -1, dst: 0x020000000042 },
    CT1]],
  ['MACs, VLAN popped and pushed, TOS, ct', [
    { kind: 'set_eth', src: 0x020000000009, dst: 0x020000000008 },
    { kind: 'pop_vlan' },
    { kind: 'push_vlan', tci: 0x0003 },
    { kind: 'set_ipv4', src: -1, dst: -1, tos: 0x20, tosMask: 0xfc, ttl: -1 },
    CT1]],
];

for (const [name, actions] of CT_PROGRAMS) {
  test(`straight program ending in ct over a run of frames (${name}): the next pass has each frame's key as its bytes parse, bytes as the slow path`, () => {
    const xl = new RecircXlate(actions);
    const dp = new Datapath({ upcaller: xl, emcInsertInvProb: 1 });
    const nd = [new MemNetdev('p1'), new MemNetdev('p2')];
    dp.addPort(1, nd[0]); dp.addPort(2, nd[1]);
    const fs = frames();
    const bare = actions.some((a) => a.kind === 'push_vlan') ? new Set([7]) : new Set<number>();
    const rewrites = actions.filter((a) => a.kind !== 'ct');
    for (let round = 0; round < 2; round++) {
      const b = new PacketBatch(32);
      for (const f of fs) { const i = b.append(f); b.inPort[i] = 1; }
      for (const k of bare) { b.off[k] = b.slotStart(k); b.buf.set(fs[k], b.off[k]); }
      dp.processBatch(b, b.count);
    }
    // The slow path's bytes after the rewrites (ct without commit or nat leaves them), and their parse.
    const { out, nForwarded } = slowPath([...rewrites, { kind: 'output', port: 2 }], [...fs, ...fs], 1, bare);
    const want = out.get(2) ?? [];
    assert.deepEqual(nd[1].sent.map(toHex), want);
    assert.equal(dp.ports.byNo(1)?.rxForwarded, nForwarded);
    assert.equal(xl.seen.length, want.length);
    const key = new Uint32Array(KEY_WORDS), offs = new Uint16Array(OFFS_WORDS);
    for (const [n, hex] of want.entries()) {
      const f = hexBytes(hex);
      extractKey(f, 0, f.length, 1, key, 0, offs, 0);
      const got = xl.seen[n].slice();
      assert.equal(got[W_RECIRC_ID], 1);
      assert.equal(got[W_CT_ZONE], 1);
      got[W_RECIRC_ID] = 0; got[W_CT_STATE] = 0; got[W_CT_ZONE] = 0; got[W_CT_MARK] = 0;
      assert.deepEqual([...got], [...key], `frame ${n}: ${hex}`);
    }
  });
}

test('a straight ct program that recirculates forever: every frame of the run ends at the depth limit, counted', { timeout: 20000 }, () => {
  const xl = new LinearXlate();
  const m = matchOf([[W_IN_PORT, 1, 0xffffffff]]); // every pass of every frame: ct, recirc(1) again
  xl.rules.push(new TestRule(m.value, m.mask, 10, [CT1]));
  const dp = new Datapath({ upcaller: xl, emcInsertInvProb: 1 });
  dp.addPort(1, new MemNetdev('p1'));
  const fs = frames().filter((f) => f !== ARP);
  const b = new PacketBatch(32);
  for (const f of fs) { const i = b.append(f); b.inPort[i] = 1; }
  assert.equal(dp.processBatch(b, b.count), 0);
  assert.equal(dp.nRecircTooDeep, fs.length);
  assert.equal(dp.conntrack.nPackets, fs.length * MAX_RECIRC_DEPTH);
  assert.equal(dp.ports.byNo(1)?.rxDrops[RXD_ACTION0 + DpDrop.Pipeline], fs.length);
});
