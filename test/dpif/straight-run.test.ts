/**
 * Straight programs (compile.ts runStraight: set_eth and TOS/TTL steps, then one output to a
 * plain or a tunnel port) run step by step over a run of frames of one flow. What leaves every
 * port is what the slow interpreter (applyDpActions) makes of each frame on its own, in order:
 * for IPv4 frames with and without a VLAN tag, a QinQ frame (its IPv4 header found by a walk),
 * a non-IP frame (TTL step skipped) and a frame with no headroom for the tunnel header (encapsulated
 * by copy, between frames encapsulated in place).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datapath } from '../../src/dpif/datapath';
import { applyDpActions, DpAction } from '../../src/dpif/dp-actions';
import { ingressHash } from '../../src/dpif/flow-hash';
import { buildTunnelHeader, encapFill, TunnelDesc } from '../../src/dpif/tunnel-header';
import { PacketBatch } from '../../src/netdev/batch';
import { ipv4SetChecksum } from '../../src/packet/checksum';
import { extractKey, OFFS_WORDS } from '../../src/packet/flowkey';
import { KEY_WORDS, W_IN_PORT } from '../../src/packet/flowkey-layout';
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

/** What the slow path sends for each frame, by dp port, in order. */
function slowPath(actions: DpAction[], fs: Uint8Array[], inPort: number): Map<number, string[]> {
  const out = new Map<number, string[]>();
  const key = new Uint32Array(KEY_WORDS), offs = new Uint16Array(OFFS_WORDS);
  for (const f of fs) {
    const b = new PacketBatch(1);
    b.append(f);
    b.inPort[0] = inPort;
    extractKey(b.buf, b.off[0], b.len[0], inPort, key, 0, offs, 0);
    const hash = ingressHash(key, 0);
    applyDpActions(actions, b, 0, (port, bb, slot) => {
      let bytes = bb.frame(slot).slice();
      if (port === 3) {
        const buf = new Uint8Array(bytes.length + 64);
        buf.set(bytes, 64);
        const o = encapFill(buf, 64, bytes.length, buildTunnelHeader(DESC, bb.tunIdLo[slot]), hash);
        bytes = buf.slice(o);
      }
      out.set(port, [...(out.get(port) ?? []), toHex(bytes)]);
    });
  }
  return out;
}

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
    const want = slowPath(actions, [...fs, ...fs], 1);
    for (let round = 0; round < 2; round++) { // upcall + megaflow hits, then EMC hits
      const b = new PacketBatch(32);
      for (const f of fs) { const i = b.append(f); b.inPort[i] = 1; }
      // Frame 7 lies at its slot's first byte: no headroom for the outer header.
      b.off[7] = b.slotStart(7);
      b.buf.set(fs[7], b.off[7]);
      assert.equal(dp.processBatch(b, b.count), fs.length);
    }
    const got = new Map<number, string[]>();
    for (const [k, n] of nd.entries()) if (n.sent.length > 0) got.set(k + 1, n.sent.map(toHex));
    assert.deepEqual(got, want);
    assert.equal(dp.ports.byNo(1)?.rxForwarded, 2 * fs.length);
  });
}
