/**
 * Conntrack parses a frame from the L3 offset the datapath's extract recorded (ct-parse.ts
 * ctL3FromKey) instead of walking its L2 headers again; both must see every frame the same
 * way. A property test over random frames (VLAN/QinQ tags, LLC/SNAP, IPv4 with options,
 * fragments, short and long L4 headers, ICMP errors quoting a packet) compares the two parses
 * field by field for every frame extract passes on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CT_L3_NOT_IPV4, CtPacket, ctL3FromKey, ctParse, ctParseKeyed } from '../../src/dpif/ct-parse';
import { extractKey, OFFS_WORDS } from '../../src/packet/flowkey';
import { KEY_WORDS } from '../../src/packet/flowkey-layout';
import { isDrop } from '../../src/packet/stop';

const HEAD = 6; // the frame starts at this offset in its buffer, as in a batch slot

function ipv4(proto: number, frag: number, ihl: number, l4: number[], tail: number[]): number[] {
  const hl = ihl * 4;
  const total = hl + l4.length;
  const h = [0x40 | ihl, 0, total >>> 8, total & 0xff, 0, 1, frag >>> 8, frag & 0xff, 64, proto, 0, 0,
    10, 0, 0, 1, 10, 0, 0, 2];
  while (h.length < hl) h.push(1); // options (NOPs)
  return [...h, ...l4, ...tail];
}

const l4Bytes = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 0, maxLength: 48 });
const icmpError = fc.record({ type: fc.constantFrom(3, 11, 0, 8, 13), inner: l4Bytes, innerProto: fc.constantFrom(1, 6, 17) })
  .map(({ type, inner, innerProto }) => [type, 0, 0, 0, 0, 0, 0, 0, ...ipv4(innerProto, 0, 5, inner, [])]);

/** TCP headers extract accepts (data offset 5, any flags) and UDP headers with a fitting length. */
const goodL4 = fc.record({ tcp: fc.boolean(), flags: fc.integer({ min: 0, max: 0xfff }), pay: l4Bytes })
  .map(({ tcp, flags, pay }) => tcp
    ? [0, 80, 1, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50 | (flags >>> 8), flags & 0xff, 0xff, 0xff, 0, 0, 0, 0, ...pay]
    : [0, 53, 0, 53, (8 + pay.length) >>> 8, (8 + pay.length) & 0xff, 0, 0, ...pay]);

const frameArb = fc.record({
  tags: fc.array(fc.constantFrom(0x8100, 0x88a8), { maxLength: 2 }),
  kind: fc.constantFrom('ipv4', 'ipv4', 'ipv4', 'snap', 'arp', 'llc'),
  proto: fc.constantFrom(1, 6, 17, 47, 132),
  frag: fc.constantFrom(0, 0, 0x4000, 0x2000, 0x0010, 0x2010),
  ihl: fc.constantFrom(5, 5, 6),
  l4: fc.oneof(l4Bytes, icmpError, goodL4),
  tail: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 6 }),
}).map(({ tags, kind, proto, frag, ihl, l4, tail }) => {
  const f = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
  for (const t of tags) f.push(t >>> 8, t & 0xff, 0, 5);
  const ip = ipv4(proto, frag, ihl, l4, tail);
  if (kind === 'ipv4') f.push(0x08, 0x00, ...ip);
  else if (kind === 'snap') { const len = 8 + ip.length; f.push(len >>> 8, len & 0xff, 0xaa, 0xaa, 3, 0, 0, 0, 0x08, 0x00, ...ip); }
  else if (kind === 'arp') f.push(0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1, ...new Array(20).fill(7));
  else f.push(0, 20, ...new Array(20).fill(0x42));
  return Uint8Array.from(f);
});

test('property: ctParse from the extracted L3 offset equals ctParse walking the frame', () => {
  const keys = new Uint32Array(KEY_WORDS);
  const offs = new Uint16Array(OFFS_WORDS);
  const walked = new CtPacket(), known = new CtPacket(), keyed = new CtPacket();
  let nKnown = 0, nNotIpv4 = 0, nKeyed = 0;
  fc.assert(fc.property(frameArb, (frame) => {
    const buf = new Uint8Array(HEAD + frame.length);
    buf.set(frame, HEAD);
    if (isDrop(extractKey(buf, HEAD, frame.length, 1, keys, 0, offs, 0))) return;
    const l3 = ctL3FromKey(keys, 0, offs, 0);
    if (l3 >= 0) nKnown++;
    if (l3 === CT_L3_NOT_IPV4) nNotIpv4++;
    const r1 = ctParse(buf, HEAD, frame.length, walked);
    const r2 = ctParse(buf, HEAD, frame.length, known, l3);
    assert.equal(r2, r1);
    if (r1 === 0) assert.deepEqual({ ...known }, { ...walked });
    // The tuple, fragment bits and TCP flags from the key: the same packet, or a refusal.
    if (ctParseKeyed(buf, HEAD, frame.length, keys, 0, l3, keyed)) {
      nKeyed++;
      assert.equal(r1, 0);
      const plain = (q: CtPacket) => [q.l3, q.l4, q.l4Len, q.proto, q.src, q.dst, q.sport, q.dport, q.tcpFlags, q.isError];
      assert.deepEqual(plain(keyed), plain(walked));
    }
  }), { numRuns: 3000, seed: 12 });
  assert.ok(nKeyed > 20, `keyed parses: ${nKeyed}`);
  // The offsets are used for many frames (most others drop in extract), and "not IPv4" is answered without a walk too.
  assert.ok(nKnown > 300, `offsets used for ${nKnown} frames (not-IPv4: ${nNotIpv4})`);
  assert.ok(nNotIpv4 > 50, `not-IPv4 answered from the key for ${nNotIpv4} frames`);
});
