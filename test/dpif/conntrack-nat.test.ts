/**
 * Conntrack NAT on literal frames: SNAT with port and ICMP id allocation, reply de-NAT, DNAT,
 * and ICMP errors (frag-needed, time-exceeded, host-unreachable) translated back to the inside
 * host. Expected frames were built independently (full RFC 1071 checksums computed from
 * scratch, not patched), so equal bytes also prove the incremental checksum updates.
 *
 * Addresses: inside 10.0.0.5 and 10.0.0.6, router gateway (SNAT) 172.24.4.10, server
 * 203.0.113.7, upstream router 203.0.113.1; DNAT floating 172.24.4.20:8080 -> 10.0.0.5:80.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Conntrack, CtNatRange, CS_DST_NAT, CS_ESTABLISHED, CS_NEW, CS_RELATED, CS_REPLY_DIR, CS_SRC_NAT,
  CS_TRACKED,
} from '../../src/dpif/conntrack';

const F: Record<string, string> = {
  SYN1: 'fa163e000001020000000005080045000028000140004006f4c20a000005cb0071079c40005000000001000000005002faf0d2530000',
  SYN1_NAT: 'fa163e0000010200000000050800450000280001400040064ea5ac18040acb0071079c40005000000001000000005002faf02c360000',
  SYN2: 'fa163e000001020000000005080045000028000140004006f4c10a000006cb0071079c40005000000007000000005002faf0d24c0000',
  SYN2_NAT: 'fa163e0000010200000000050800450000280001400040064ea5ac18040acb0071070400005000000007000000005002faf0c4700000',
  SYNACK2: 'fa163e0000010200000000050800450000280009400040064e9dcb007107ac18040a0050040000000064000000085012faf0c3fb0000',
  SYNACK2_DENAT: 'fa163e000001020000000005080045000028000940004006f4b9cb0071070a00000600509c4000000064000000085012faf0d1d70000',
  UDP1: 'fa163e00000102000000000508004500002100014000401106920a000005c633640114e90035000d66947175657279',
  UDP1_NAT: 'fa163e0000010200000000050800450000210001400040116074ac18040ac633640114e90035000dc0767175657279',
  UDP0: 'fa163e00000102000000000508004500001d00014000401106960a000005c633640114ea00350009000071',
  UDP0_NAT: 'fa163e00000102000000000508004500001d0001400040116078ac18040ac633640114ea00350009000071',
  PING1: 'fa163e00000102000000000508004500002000014000400120c80a00000508080808080018ec0042000170696e67',
  PING1_NAT: 'fa163e0000010200000000050800450000200001400040017aaaac18040a08080808080018ec0042000170696e67',
  PING2: 'fa163e00000102000000000508004500002000014000400120c70a00000608080808080018ec0042000170696e67',
  PING2_NAT: 'fa163e0000010200000000050800450000200001400040017aaaac18040a080808080800192e0000000170696e67',
  PONG2: 'fa163e0000010200000000050800450000200001400040017aaa08080808ac18040a0000212e0000000170696e67',
  PONG2_DENAT: 'fa163e00000102000000000508004500002000014000400120c7080808080a000006000020ec0042000170696e67',
  FRAGNEED: 'fa163e000001020000000005080045000038004d000040018e54cb007101ac18040a0304f32c00000578450000280001400003068ba5ac18040acb0071070400005000000007',
  FRAGNEED_DENAT: 'fa163e000001020000000005080045000038004d000040013471cb0071010a00000603045aec000005784500002800014000030631c20a000006cb0071079c40005000000007',
  TTLX: 'fa163e000001020000000005080045000038004e000040018e53cb007101ac18040a0b001f5e00000000450000210001400001119f74ac18040ac633640114e90035000dc076',
  TTLX_DENAT: 'fa163e000001020000000005080045000038004e000040013471cb0071010a0000050b007940000000004500002100014000011145920a000005c633640114e90035000d6694',
  UNREACH: 'fa163e000001020000000005080045000038004f000040018e52cb007101ac18040a0301dbcf0000000045000020000140000501b5aaac18040a080808080800192e00000001',
  UNREACH_DENAT: 'fa163e000001020000000005080045000038004f00004001346fcb0071010a0000060301dbcf00000000450000200001400005015bc70a00000608080808080018ec00420001',
  DSYN: 'fa163e0000010200000000050800450000280001400040066066c6336409ac180414c3501f9000000005000000005002faf0f7a20000',
  DSYN_NAT: 'fa163e000001020000000005080045000028000140004006068ec63364090a000005c350005000000005000000005002faf0bd0a0000',
  DSYNACK: 'fa163e000001020000000005080045000028000140004006068e0a000005c63364090050c35000000009000000065012faf0bcf00000',
  DSYNACK_NAT: 'fa163e0000010200000000050800450000280001400040066066ac180414c63364091f90c35000000009000000065012faf0f7880000',
};

function fr(name: string): Uint8Array { return Uint8Array.from(Buffer.from(F[name], 'hex')); }
function ipn(s: string): number { return s.split('.').reduce((a, x) => a * 256 + Number(x), 0); }

const SNAT: CtNatRange = { kind: 'src', ipMin: ipn('172.24.4.10'), ipMax: ipn('172.24.4.10'), portMin: 0, portMax: 0 };
const NAT: CtNatRange = { kind: 'none', ipMin: 0, ipMax: 0, portMin: 0, portMax: 0 };
const ZONE = 7;

/** Runs ct(zone=7[,commit],nat...) on a copy of frame `name`; returns [ct_state, frame]. */
function run(ct: Conntrack, name: string, commit: boolean, nat: CtNatRange | null, nowMs = 1000): [number, Uint8Array] {
  const b = fr(name);
  const st = ct.execute(b, 0, b.length, ZONE, commit, nat, 0, 0, nowMs);
  return [st, b];
}

test('SNAT keeps the source port when free, else takes the first free port of 1024-65535', () => {
  const ct = new Conntrack({ capacity: 64 });
  let [st, b] = run(ct, 'SYN1', true, SNAT);
  assert.equal(st, CS_TRACKED | CS_NEW | CS_SRC_NAT);
  assert.deepEqual(b, fr('SYN1_NAT'));
  [st, b] = run(ct, 'SYN2', true, SNAT);
  assert.equal(st, CS_TRACKED | CS_NEW | CS_SRC_NAT);
  assert.deepEqual(b, fr('SYN2_NAT'));
  assert.deepEqual(ct.list(-1, 1000), [
    'tcp,orig=(src=10.0.0.5,dst=203.0.113.7,sport=40000,dport=80),reply=(src=203.0.113.7,dst=172.24.4.10,sport=80,dport=40000),zone=7,timeout=120,protoinfo=(state=SYN_SENT)',
    'tcp,orig=(src=10.0.0.6,dst=203.0.113.7,sport=40000,dport=80),reply=(src=203.0.113.7,dst=172.24.4.10,sport=80,dport=1024),zone=7,timeout=120,protoinfo=(state=SYN_SENT)',
  ]);
});

test('the reply is de-NATed to the inside host and port (ct(nat) in the reply direction)', () => {
  const ct = new Conntrack({ capacity: 64 });
  run(ct, 'SYN1', true, SNAT);
  run(ct, 'SYN2', true, SNAT);
  const [st, b] = run(ct, 'SYNACK2', false, NAT);
  assert.equal(st, CS_TRACKED | CS_ESTABLISHED | CS_REPLY_DIR | CS_DST_NAT);
  assert.deepEqual(b, fr('SYNACK2_DENAT'));
});

test('without a nat clause a NATed connection is tracked but the frame is left alone', () => {
  const ct = new Conntrack({ capacity: 64 });
  run(ct, 'SYN1', true, SNAT);
  const [st, b] = run(ct, 'SYN1', false, null);
  assert.equal(st, CS_TRACKED | CS_NEW);
  assert.deepEqual(b, fr('SYN1'));
});

test('UDP SNAT patches the UDP checksum; a UDP checksum of 0 stays 0', () => {
  const ct = new Conntrack({ capacity: 64 });
  let [st, b] = run(ct, 'UDP1', true, SNAT);
  assert.equal(st, CS_TRACKED | CS_NEW | CS_SRC_NAT);
  assert.deepEqual(b, fr('UDP1_NAT'));
  [st, b] = run(ct, 'UDP0', true, SNAT);
  assert.deepEqual(b, fr('UDP0_NAT'));
});

test('ICMP echo SNAT keeps the id when free, else rewrites it; the reply gets the old id back', () => {
  const ct = new Conntrack({ capacity: 64 });
  let [st, b] = run(ct, 'PING1', true, SNAT);
  assert.equal(st, CS_TRACKED | CS_NEW | CS_SRC_NAT);
  assert.deepEqual(b, fr('PING1_NAT'));
  [st, b] = run(ct, 'PING2', true, SNAT);
  assert.deepEqual(b, fr('PING2_NAT'));
  [st, b] = run(ct, 'PONG2', false, NAT);
  assert.equal(st, CS_TRACKED | CS_ESTABLISHED | CS_REPLY_DIR | CS_DST_NAT);
  assert.deepEqual(b, fr('PONG2_DENAT'));
  assert.deepEqual(ct.list(-1, 1000), [
    'icmp,orig=(src=10.0.0.5,dst=8.8.8.8,id=66,type=8,code=0),reply=(src=8.8.8.8,dst=172.24.4.10,id=66,type=0,code=0),zone=7,timeout=30',
    'icmp,orig=(src=10.0.0.6,dst=8.8.8.8,id=66,type=8,code=0),reply=(src=8.8.8.8,dst=172.24.4.10,id=0,type=0,code=0),zone=7,timeout=30',
  ]);
});

test('ICMP frag-needed about a NATed TCP segment goes back to the inside host, quote de-NATed', () => {
  const ct = new Conntrack({ capacity: 64 });
  run(ct, 'SYN1', true, SNAT);
  run(ct, 'SYN2', true, SNAT);
  const [st, b] = run(ct, 'FRAGNEED', false, NAT);
  assert.equal(st, CS_TRACKED | CS_RELATED | CS_REPLY_DIR | CS_DST_NAT);
  assert.deepEqual(b, fr('FRAGNEED_DENAT'));
});

test('ICMP time-exceeded about NATed UDP: outer destination, quoted source, port and UDP checksum', () => {
  const ct = new Conntrack({ capacity: 64 });
  run(ct, 'UDP1', true, SNAT);
  const [st, b] = run(ct, 'TTLX', false, NAT);
  assert.equal(st, CS_TRACKED | CS_RELATED | CS_REPLY_DIR | CS_DST_NAT);
  assert.deepEqual(b, fr('TTLX_DENAT'));
});

test('ICMP host-unreachable about a NATed echo request: the quoted id is restored', () => {
  const ct = new Conntrack({ capacity: 64 });
  run(ct, 'PING1', true, SNAT);
  run(ct, 'PING2', true, SNAT);
  const [st, b] = run(ct, 'UNREACH', false, NAT);
  assert.equal(st, CS_TRACKED | CS_RELATED | CS_REPLY_DIR | CS_DST_NAT);
  assert.deepEqual(b, fr('UNREACH_DENAT'));
});

test('an ICMP error about no known connection is +inv and left alone', () => {
  const ct = new Conntrack({ capacity: 64 });
  const [st, b] = run(ct, 'FRAGNEED', false, NAT);
  assert.equal(st, CS_TRACKED | 0x10);
  assert.deepEqual(b, fr('FRAGNEED'));
  assert.equal(ct.stats().invalid_related_not_found, 1);
});

test('DNAT to a fixed IP and port; the reply source goes back to the floating address', () => {
  const ct = new Conntrack({ capacity: 64 });
  const dnat: CtNatRange = { kind: 'dst', ipMin: ipn('10.0.0.5'), ipMax: ipn('10.0.0.5'), portMin: 80, portMax: 80 };
  let [st, b] = run(ct, 'DSYN', true, dnat);
  assert.equal(st, CS_TRACKED | CS_NEW | CS_DST_NAT);
  assert.deepEqual(b, fr('DSYN_NAT'));
  [st, b] = run(ct, 'DSYNACK', false, NAT);
  assert.equal(st, CS_TRACKED | CS_ESTABLISHED | CS_REPLY_DIR | CS_SRC_NAT);
  assert.deepEqual(b, fr('DSYNACK_NAT'));
});

test('SNAT with a port range outside the source port allocates from the range start', () => {
  const ct = new Conntrack({ capacity: 64 });
  const r: CtNatRange = { ...SNAT, portMin: 1024, portMax: 1025 };
  const [, b1] = run(ct, 'SYN1', true, r);
  assert.equal((b1[34] << 8) | b1[35], 1024);
  const [, b2] = run(ct, 'SYN2', true, r);
  assert.equal((b2[34] << 8) | b2[35], 1025);
  const b3 = fr('SYN1');
  b3[29] = 7; // 10.0.0.7: a third host, and the range is exhausted
  assert.equal(ct.execute(b3, 0, b3.length, ZONE, true, r, 0, 0, 1000), -1);
  assert.equal(ct.stats().drop_nat_exhausted, 1);
});
