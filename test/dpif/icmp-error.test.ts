import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketBatch } from '../../src/netdev/batch';
import { applyDpActions, DpAction, DpDrop } from '../../src/dpif/dp-actions';

// UDP 10.0.1.10 -> 10.0.2.20 with TTL 1, to the gateway MAC; checksums computed by hand (Python).
const ORIG = 'fa163e0a0001fa163e00011008004500002004d2400001115dde0a00010a0a00021403e807d0000c000061626364';
// ICMP time exceeded from 10.0.1.1 / fa:16:3e:0a:00:01 back to the sender, quoting IP + 8 bytes.
const EXPECTED = 'fa163e000110fa163e0a000108004500003800000000400164bb0a0001010a00010a0b00e93b00000000' +
  '4500002004d2400001115dde0a00010a0a00021403e807d0000c0000';

const ERR: DpAction = { kind: 'icmp_error', type: 11, code: 0, srcIp: 0x0a000101, srcMac: 0xfa163e0a0001, mtu: 0 };

function run(hex: string, actions: DpAction[]): { out: string[]; drop: DpDrop } {
  const b = new PacketBatch(1, 4096);
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

// A 1514-byte DF echo request from the upstream (52:54:00:ff:00:01, 203.0.113.1) to the
// floating IP 203.0.113.50 (fa:16:3e:ee:00:11); checksums by hand (Python).
function bigFrame(df: boolean): string {
  const ip = df ? '4500' + '05dc' + '1111' + '4000' + '4001' + 'abdb' : '4500' + '05dc' + '1111' + '0000' + '4001' + 'ebdb';
  return 'fa163eee0011525400ff00010800' + ip + 'cb007101cb007132' + '0800f7f700070001' + '00'.repeat(1472);
}
const FRAG_NEEDED = '525400ff0001fa163eee00110800450000380000000040010291cb007132cb0071010304f751000005aa' +
  '450005dc111140004001abdbcb007101cb0071320800f7f700070001';
const CHECK: DpAction = {
  kind: 'check_pkt_len', size: 1464,
  gt: [{ kind: 'icmp_error', type: 3, code: 4, srcIp: 0xcb007132, srcMac: 0xfa163eee0011, mtu: 1450 }, { kind: 'output', port: 1 }],
  le: [{ kind: 'output', port: 2 }],
};

test('check_pkt_len: a 1514-byte DF frame over 1464 gets fragmentation needed (MTU 1450) back, byte for byte', () => {
  const r = run(bigFrame(true), [CHECK]);
  assert.equal(r.drop, DpDrop.None);
  assert.deepEqual(r.out, [FRAG_NEEDED]);
});

test('check_pkt_len: without DF the big frame is dropped and counted (too_big_no_df); a small one passes', () => {
  assert.equal(run(bigFrame(false), [CHECK]).drop, DpDrop.TooBigNoDf);
  const small = run(ORIG, [CHECK]);
  assert.equal(small.drop, DpDrop.None);
  assert.deepEqual(small.out, [ORIG]);
});
