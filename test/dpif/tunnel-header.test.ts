import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTunnelHeader, encapFill, TunnelDesc } from '../../src/dpif/tunnel-header';
import { tunnelSrcPort } from '../../src/dpif/flow-hash';
import { ipv4ChecksumOk } from '../../src/packet/checksum';

const VX: TunnelDesc = { kind: 'vxlan', localIp: 0xc0a8640b, remoteIp: 0xc0a8640c, srcMac: 0x525400000011,
  nextHopMac: 0x525400000012, dstPort: 4789, ttl: 64, tos: 0 };

test('GRE header: protocol 47, K bit, TEB 0x6558, key = segmentation id, 42 bytes', () => {
  const h = buildTunnelHeader({ ...VX, kind: 'gre' }, 1002);
  assert.equal(h.bytes.length, 42);
  const b = new Uint8Array(200);
  const o = encapFill(b, 100, 64, h, 0);
  assert.equal(o, 58);
  assert.equal(Buffer.from(b.subarray(o + 14, o + 24)).toString('hex'), '4500' + '005c' + '0000' + '4000' + '402f');
  assert.equal(Buffer.from(b.subarray(o + 34, o + 42)).toString('hex'), '2000' + '6558' + '000003ea');
  assert.ok(ipv4ChecksumOk(b, o + 14));
});

test('encap with 32-bit copies writes the same bytes at every alignment', () => {
  const h = buildTunnelHeader(VX, 0x123456);
  for (let a = 0; a < 4; a++) {
    const x = new Uint8Array(256), y = new Uint8Array(256);
    const ox = encapFill(x, 120 + a, 64, h, 0xdeadbeef);
    const oy = encapFill(y, 120 + a, 64, h, 0xdeadbeef, new Uint32Array(y.buffer));
    assert.equal(ox, oy);
    assert.deepEqual(y, x);
    assert.equal(Buffer.from(y.subarray(oy + 42, oy + 50)).toString('hex'), '08000000' + '12345600');
  }
});

test('tunnel source port is scaled into [32768, 61000)', () => {
  assert.equal(tunnelSrcPort(0), 32768);
  assert.equal(tunnelSrcPort(0xffffffff), 60999);
  assert.equal(tunnelSrcPort(0x80000000), 32768 + 14116);
});
