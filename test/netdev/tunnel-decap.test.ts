import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketBatch } from '../../src/netdev/batch';
import { Decap, decapTunnel } from '../../src/netdev/tunnel-decap';

// Outer frame built by hand: 52:54:00:00:00:11 -> :12, 192.168.100.11 -> .12, UDP 4789,
// VXLAN VNI 1002 (0x0003ea), inner 14-byte Ethernet header + 4 bytes payload.
const INNER = 'fa163e000220' + 'fa163f000011' + '0800' + 'deadbeef';
function vxlanFrame(opts: { flags?: string; rsv?: string; ipCsum?: string; udpCsum?: string; ihl?: string } = {}): string {
  const udpLen = 8 + 8 + INNER.length / 2;           // 34
  const ipLen = 20 + udpLen;                          // 54
  return '525400000012' + '525400000011' + '0800' +
    (opts.ihl ?? '45') + '00' + ipLen.toString(16).padStart(4, '0') + '0000' + '4000' + '40' + '11' +
    (opts.ipCsum ?? 'f14e') + 'c0a8640b' + 'c0a8640c' +
    'c350' + '12b5' + udpLen.toString(16).padStart(4, '0') + (opts.udpCsum ?? '0000') +
    (opts.flags ?? '08') + (opts.rsv ?? '000000') + '0003ea' + '00' + INNER;
}
const LOCAL = 0xc0a8640c;

function run(hex: string): { r: Decap; b: PacketBatch; kind: number } {
  const b = new PacketBatch(1);
  b.append(Buffer.from(hex, 'hex'));
  const k = new Uint8Array(1);
  const r = decapTunnel(b, 0, LOCAL, 4789, k);
  return { r, b, kind: k[0] };
}

test('VXLAN to local_ip:4789 is stripped to the inner frame with tun_id = VNI', () => {
  const { r, b, kind } = run(vxlanFrame());
  assert.equal(r, Decap.Ok);
  assert.equal(kind, 1);
  assert.equal(Buffer.from(b.frame(0)).toString('hex'), INNER);
  assert.equal(b.tunIdLo[0], 1002);
  assert.equal(b.tunSrc[0], 0xc0a8640b);
  assert.equal(b.tunDst[0], LOCAL);
});

test('VXLAN validation drops as OVS does, each with its reason', () => {
  assert.equal(run(vxlanFrame({ flags: '0c' })).r, Decap.BadVxlanFlags);
  assert.equal(run(vxlanFrame({ flags: '00' })).r, Decap.BadVxlanFlags);
  assert.equal(run(vxlanFrame({ rsv: '000100' })).r, Decap.VxlanReservedBits);
  assert.equal(run(vxlanFrame({ ipCsum: 'f14f' })).r, Decap.BadOuterIpChecksum);
  assert.equal(run(vxlanFrame({ udpCsum: '1234' })).r, Decap.BadUdpChecksum);
  assert.equal(run(vxlanFrame().slice(0, 2 * 60)).r, Decap.Truncated);
});

test('frames that are not tunnel traffic for this node are left alone', () => {
  assert.equal(run(vxlanFrame().replace('c0a8640c' + 'c350', 'c0a8640d' + 'c350')).r, Decap.NotTunnel);
  assert.equal(run(vxlanFrame().replace('12b5', '12b6')).r, Decap.NotTunnel);
  const arp = 'ffffffffffff' + '525400000011' + '0806' + '0001080006040001' + '525400000011c0a8640b' + '000000000000c0a8640c';
  assert.equal(run(arp).r, Decap.NotTunnel);
});

test('GRE with key and TEB protocol decaps to tun_id = key', () => {
  const ipLen = 20 + 8 + INNER.length / 2;
  const hex = '525400000012' + '525400000011' + '0800' +
    '4500' + ipLen.toString(16).padStart(4, '0') + '0000' + '4000' + '40' + '2f' + 'f138' + 'c0a8640b' + 'c0a8640c' +
    '2000' + '6558' + '000003ea' + INNER;
  const { r, b, kind } = run(hex);
  assert.equal(r, Decap.Ok);
  assert.equal(kind, 2);
  assert.equal(b.tunIdLo[0], 1002);
  assert.equal(Buffer.from(b.frame(0)).toString('hex'), INNER);
  assert.equal(run(hex.replace('20006558', '20000800')).r, Decap.GreNotTeb);
  assert.equal(run(hex.replace('20006558', '20016558')).r, Decap.BadGreHeader);
});
