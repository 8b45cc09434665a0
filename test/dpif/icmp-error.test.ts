import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketBatch } from '../../src/netdev/batch';
import { applyDpActions, DpAction, DpDrop } from '../../src/dpif/dp-actions';

// UDP 10.0.1.10 -> 10.0.2.20 with TTL 1, to the gateway MAC; checksums computed by hand (Python).
const ORIG = 'fa163e0a0001fa163e00011008004500002004d2400001115dde0a00010a0a00021403e807d0000c000061626364';
// ICMP time exceeded from 10.0.1.1 / fa:16:3e:0a:00:01 back to the sender, quoting IP + 8 bytes.
const EXPECTED = 'fa163e000110fa163e0a000108004500003800000000400164bb0a0001010a00010a0b00e93b00000000' +
  '4500002004d2400001115dde0a00010a0a00021403e807d0000c0000';

const ERR: DpAction = { kind: 'icmp_error', type: 11, code: 0, srcIp: 0x0a000101, srcMac: 0xfa163e0a0001 };

function run(hex: string, actions: DpAction[]): { out: string[]; drop: DpDrop } {
  const b = new PacketBatch(1);
  b.append(Buffer.from(hex, 'hex'));
  const out: string[] = [];
  const drop = applyDpActions(actions, b, 0, (_p, batch, slot) => { out.push(Buffer.from(batch.frame(slot)).toString('hex')); });
  return { out, drop };
}

test('icmp_error turns a TTL-expired frame into ICMP time exceeded, byte for byte', () => {
  const r = run(ORIG, [ERR, { kind: 'output', port: 1 }]);
  assert.equal(r.drop, DpDrop.None);
  assert.deepEqual(r.out, [EXPECTED]);
});

test('no ICMP error about an ICMP error, a later fragment, or a broadcast source', () => {
  // The frame above as an ICMP time exceeded itself (proto 1, type 11).
  const icmpErr = EXPECTED;
  assert.equal(run(icmpErr, [ERR, { kind: 'output', port: 1 }]).drop, DpDrop.IcmpErrorSuppressed);
  const later = ORIG.replace('04d24000', '04d22001');
  assert.equal(run(later, [ERR, { kind: 'output', port: 1 }]).drop, DpDrop.IcmpErrorSuppressed);
  const bcast = ORIG.replace('0a00010a0a000214', 'ffffffff0a000214');
  assert.equal(run(bcast, [ERR, { kind: 'output', port: 1 }]).drop, DpDrop.IcmpErrorSuppressed);
});
