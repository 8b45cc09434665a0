/**
 * The slow-path executor of datapath actions (src/dpif/dp-actions.ts), with exact bytes:
 * VLAN push/pop through the headroom, MAC/IPv4/port/ARP rewrites with checksums patched
 * incrementally (checked against a full recomputation), outputs seeing the frame as it was.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketBatch } from '../../src/netdev/batch';
import { applyDpActions, DpDrop, DP_DROP_NAMES, formatDpActions, type DpAction } from '../../src/dpif/dp-actions';
import { checksum } from '../../src/packet/checksum';

function hex(s: string): Uint8Array {
  const t = s.replace(/\s+/g, '');
  return Uint8Array.from(t.match(/../g)!.map((x) => parseInt(x, 16)));
}
function toHex(b: Uint8Array): string { return Buffer.from(b).toString('hex'); }

// Ethernet 02:00:00:00:00:02 <- 02:00:00:00:00:01, IPv4 10.0.0.1 -> 10.0.0.2 TTL 64 UDP 1000 -> 53
// (valid IP and UDP checksums), 4 bytes payload.
const ETH = '020000000002 020000000001 0800';
function udpFrame(): Uint8Array {
  const ip = hex('4500 0020 0001 0000 4011 0000 0a000001 0a000002');
  const udp = hex('03e8 0035 000c 0000 deadbeef');
  const f = new Uint8Array(14 + 32);
  f.set(hex(ETH)); f.set(ip, 14); f.set(udp, 34);
  const ipc = checksum(f, 14, 20); f[24] = ipc >> 8; f[25] = ipc & 0xff;
  // UDP checksum over pseudo-header + segment.
  const ph = new Uint8Array(12 + 12);
  ph.set(f.subarray(26, 34)); ph[9] = 17; ph[11] = 12; ph.set(f.subarray(34, 46), 12);
  const uc = checksum(ph, 0, ph.length); f[40] = uc >> 8; f[41] = uc & 0xff;
  return f;
}
function ipOk(f: Uint8Array, ipOff: number): boolean { return checksum(f, ipOff, 20) === 0; }
function udpOk(f: Uint8Array, ipOff: number): boolean {
  const l4 = ipOff + 20, l4Len = (f[l4 + 4] << 8) | f[l4 + 5];
  const ph = new Uint8Array(12 + l4Len);
  ph.set(f.subarray(ipOff + 12, ipOff + 20)); ph[9] = 17; ph[10] = l4Len >> 8; ph[11] = l4Len & 0xff;
  ph.set(f.subarray(l4, l4 + l4Len), 12);
  return checksum(ph, 0, ph.length) === 0;
}
function run(frame: Uint8Array, acts: DpAction[]): { outs: [number, string][]; drop: DpDrop; b: PacketBatch } {
  const b = new PacketBatch(4);
  const s = b.append(frame);
  const outs: [number, string][] = [];
  const drop = applyDpActions(acts, b, s, (p, bb, ss) => { outs.push([p, toHex(bb.frame(ss))]); });
  return { outs, drop, b };
}

test('push_vlan inserts 8100 + TCI after the MACs using headroom; pop_vlan restores the frame', () => {
  const f = udpFrame();
  const { outs } = run(f, [{ kind: 'push_vlan', tci: 0x1000 | 100 }, { kind: 'output', port: 2 },
    { kind: 'pop_vlan' }, { kind: 'output', port: 3 }]);
  assert.equal(outs[0][0], 2);
  assert.equal(outs[0][1], '020000000002' + '020000000001' + '81000064' + toHex(f.subarray(12)));
  assert.deepEqual(outs[1], [3, toHex(f)]);
});

test('output then rewrite: the first output carries the frame as it was', () => {
  const f = udpFrame();
  const { outs } = run(f, [{ kind: 'output', port: 1 },
    { kind: 'set_eth', src: 0x0a0b0c0d0e0f, dst: -1 }, { kind: 'output', port: 2 }]);
  assert.equal(outs[0][1], toHex(f));
  assert.equal(outs[1][1].slice(0, 24), '0200000000020a0b0c0d0e0f');
});

test('set_ipv4 src/ttl and set_l4 dst patch IP and UDP checksums incrementally', () => {
  const f = udpFrame();
  const { outs } = run(f, [
    { kind: 'set_ipv4', src: 0xc0a80101, dst: -1, tos: -1, tosMask: 0, ttl: 63 },
    { kind: 'set_l4', proto: 17, src: -1, dst: 5353 }, { kind: 'output', port: 9 }]);
  const o = hex(outs[0][1]);
  assert.equal(toHex(o.subarray(22, 23)), '3f');
  assert.equal(toHex(o.subarray(26, 30)), 'c0a80101');
  assert.equal(toHex(o.subarray(36, 38)), '14e9');
  assert.ok(ipOk(o, 14));
  assert.ok(udpOk(o, 14));
});

test('set_ipv4 on a VLAN-tagged frame finds the IP header after the tag', () => {
  const f = udpFrame();
  const { outs } = run(f, [{ kind: 'push_vlan', tci: 5 },
    { kind: 'set_ipv4', src: -1, dst: 0x0a000063, tos: 0xb8, tosMask: 0xfc, ttl: -1 }, { kind: 'output', port: 1 }]);
  const o = hex(outs[0][1]);
  assert.equal(toHex(o.subarray(18 + 16, 18 + 20)), '0a000063');
  assert.equal(o[19], 0xb8);
  assert.ok(ipOk(o, 18));
  assert.ok(udpOk(o, 18));
});

test('set_arp turns a request into a reply in place', () => {
  const req = hex('ffffffffffff 020000000001 0806 0001 0800 06 04 0001 020000000001 0a000001 000000000000 0a000002');
  const { outs } = run(req, [{ kind: 'set_arp', op: 2, sha: 0x020000000099, spa: 0x0a000002, tha: 0x020000000001, tpa: 0x0a000001 },
    { kind: 'output', port: 4 }]);
  assert.equal(outs[0][1].slice(28), '0001080006040002' + '020000000099' + '0a000002' + '020000000001' + '0a000001');
});

test('drop reasons: explicit reason returned, no output means Pipeline, output means None', () => {
  assert.equal(run(udpFrame(), [{ kind: 'drop', reason: DpDrop.TtlExceeded }]).drop, DpDrop.TtlExceeded);
  assert.equal(run(udpFrame(), []).drop, DpDrop.Pipeline);
  assert.equal(run(udpFrame(), [{ kind: 'output', port: 1 }]).drop, DpDrop.None);
});

test('push_vlan without headroom drops with no_headroom and leaves the frame alone', () => {
  const b = new PacketBatch(1);
  const f = udpFrame();
  b.resetSlot(0);
  b.count = 1;
  b.off[0] = b.slotStart(0) + 2; // only 2 bytes of headroom
  b.buf.set(f, b.off[0]);
  b.len[0] = f.length;
  const outs: number[] = [];
  const drop = applyDpActions([{ kind: 'push_vlan', tci: 5 }, { kind: 'output', port: 1 }], b, 0, (p) => { outs.push(p); });
  assert.equal(drop, DpDrop.NoHeadroom);
  assert.equal(DP_DROP_NAMES[drop], 'no_headroom');
  assert.deepEqual(outs, []);
  assert.equal(toHex(b.frame(0)), toHex(f));
});

test('TCP port rewrite patches the TCP checksum; a later fragment is left alone', () => {
  const ip = hex('4500 0028 0001 0000 4006 0000 0a000001 0a000002');
  const tcp = hex('04d2 0050 00000001 00000000 5002 ffff 0000 0000');
  const f = new Uint8Array(14 + 40);
  f.set(hex(ETH)); f.set(ip, 14); f.set(tcp, 34);
  const ipc = checksum(f, 14, 20); f[24] = ipc >> 8; f[25] = ipc & 0xff;
  const ph = new Uint8Array(12 + 20);
  ph.set(f.subarray(26, 34)); ph[9] = 6; ph[11] = 20; ph.set(f.subarray(34, 54), 12);
  const tc = checksum(ph, 0, ph.length); f[50] = tc >> 8; f[51] = tc & 0xff;
  const { outs } = run(f, [{ kind: 'set_l4', proto: 6, src: 40000, dst: 443 }, { kind: 'output', port: 1 }]);
  const o = hex(outs[0][1]);
  assert.equal(toHex(o.subarray(34, 38)), '9c4001bb');
  const ph2 = new Uint8Array(12 + 20);
  ph2.set(o.subarray(26, 34)); ph2[9] = 6; ph2[11] = 20; ph2.set(o.subarray(34, 54), 12);
  assert.equal(checksum(ph2, 0, ph2.length), 0);
  // Fragment offset 8: no L4 header here, the bytes stay as they are.
  const frag = f.slice(); frag[20] = 0x00; frag[21] = 0x01;
  const ipc2 = (() => { frag[24] = 0; frag[25] = 0; return checksum(frag, 14, 20); })(); frag[24] = ipc2 >> 8; frag[25] = ipc2 & 0xff;
  const r2 = run(frag, [{ kind: 'set_l4', proto: 6, src: 40000, dst: 443 }, { kind: 'output', port: 1 }]);
  assert.equal(r2.outs[0][1], toHex(frag));
});

test('set_tunnel fills the slot tunnel metadata', () => {
  const { b } = run(udpFrame(), [{ kind: 'set_tunnel', tunIdHi: 0, tunIdLo: 1002, src: 0xc0a8640b, dst: 0xc0a8640c }]);
  assert.equal(b.tunIdLo[0], 1002);
  assert.equal(b.tunDst[0], 0xc0a8640c);
});

test('formatDpActions prints the ovs-appctl dialect', () => {
  assert.equal(formatDpActions([]), 'drop');
  assert.equal(formatDpActions([{ kind: 'set_eth', src: 0xfa163f000011, dst: -1 }, { kind: 'pop_vlan' },
    { kind: 'push_vlan', tci: 0x1000 | 3 }, { kind: 'output', port: 2 }]),
  'set(eth(src=fa:16:3f:00:00:11)),pop_vlan,push_vlan(vid=3,pcp=0),2');
});
