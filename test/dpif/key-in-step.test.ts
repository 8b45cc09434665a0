/**
 * A compiled program keeps the frame's key in step with its rewrites (compile.ts runProgram,
 * frame-headers.ts keyPopVlan/keyPushVlan/keySetEth/keySetIpv4): whenever it hands a ct step
 * the frame "in place" with its key (CT_FORK_IN_PLACE, not _REPARSE), that key and the header
 * offsets equal what extractKey records for the rewritten frame, word for word. Frames of every
 * shape the rewrites meet: untagged, one tag, two tags (QinQ), IPv4 TCP/UDP/ICMP, a later
 * fragment, ARP, IPv6, LLC; lists of VLAN pushes/pops, MAC, IPv4 and port rewrites.
 * The same lists without a ct step (where the program skips the key's MAC and IPv4 words) leave
 * the frame byte for byte as the slow path (applyDpActions) does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  compileActions, CT_FORK_IN_PLACE, CT_FORK_IN_PLACE_REPARSE, CT_GO_ON, CT_QUEUED, ExecCtx, runProgram,
} from '../../src/dpif/compile';
import { applyDpActions, DpAction, DpCt } from '../../src/dpif/dp-actions';
import { PortTable } from '../../src/dpif/ports';
import { PacketBatch } from '../../src/netdev/batch';
import { extractKey, OFFS_WORDS } from '../../src/packet/flowkey';
import { KEY_WORDS } from '../../src/packet/flowkey-layout';
import { isDrop } from '../../src/packet/stop';
import { ipv4SetChecksum, l4SetChecksum4 } from '../../src/packet/checksum';

interface Shape { tags: number; l3: 'tcp' | 'udp' | 'icmp' | 'frag' | 'arp' | 'ipv6' | 'llc' }

function frameOf(s: Shape): Uint8Array {
  const tagBytes: number[] = [];
  for (let t = 0; t < s.tags; t++) tagBytes.push(t === 0 && s.tags === 2 ? 0x88 : 0x81, t === 0 && s.tags === 2 ? 0xa8 : 0x00, 0x20, 3 + t);
  const eth = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, ...tagBytes];
  let body: number[];
  if (s.l3 === 'arp') {
    body = [0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2];
  } else if (s.l3 === 'ipv6') {
    body = [0x86, 0xdd, 0x60, 0, 0, 0, 0, 8, 17, 64, ...new Array(15).fill(0), 1, ...new Array(15).fill(0), 2, 0, 53, 0, 53, 0, 8, 0, 0];
  } else if (s.l3 === 'llc') {
    body = [0, 8, 0x42, 0x42, 3, 0, 0, 0, 0, 0];
  } else {
    const proto = s.l3 === 'tcp' ? 6 : s.l3 === 'icmp' ? 1 : 17;
    const l4 = s.l3 === 'tcp' ? [0, 80, 1, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]
      : s.l3 === 'icmp' ? [8, 0, 0, 0, 0, 7, 0, 1] : [0, 53, 0, 53, 0, 8, 0, 0];
    const frag = s.l3 === 'frag' ? [0x20, 0x10] : [0, 0];
    body = [0x08, 0x00, 0x45, 0x10, 0, 20 + l4.length, 0, 1, ...frag, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, ...l4];
  }
  const f = Uint8Array.from([...eth, ...body]);
  const l3 = eth.length + 2;
  if (s.l3 !== 'arp' && s.l3 !== 'ipv6' && s.l3 !== 'llc') {
    ipv4SetChecksum(f, l3);
    if (s.l3 === 'tcp' || s.l3 === 'udp') l4SetChecksum4(f, l3, l3 + 20, f.length - l3 - 20, s.l3 === 'tcp' ? 6 : 17);
  }
  return f;
}

const shapeArb: fc.Arbitrary<Shape> = fc.record({
  tags: fc.constantFrom(0, 1, 2),
  l3: fc.constantFrom('tcp' as const, 'udp' as const, 'icmp' as const, 'frag' as const, 'arp' as const, 'ipv6' as const, 'llc' as const),
});

const actArb: fc.Arbitrary<DpAction> = fc.oneof(
  fc.constant<DpAction>({ kind: 'pop_vlan' }),
  fc.integer({ min: 0, max: 0xffff }).map((tci): DpAction => ({ kind: 'push_vlan', tci })),
  fc.tuple(fc.boolean(), fc.boolean()).map(([s, d]): DpAction => ({ kind: 'set_eth', src: s ? 0x0200000000aa : -1, dst: d ? 0x0a00000000bb : -1 })),
  fc.record({ src: fc.constantFrom(-1, 0x0a090909), dst: fc.constantFrom(-1, 0xc0a80001), tos: fc.constantFrom(-1, 0x28),
    ttl: fc.constantFrom(-1, 63) }).map((r): DpAction => ({ kind: 'set_ipv4', ...r, tosMask: 0xfc })),
  fc.constantFrom(6, 17).map((proto): DpAction => ({ kind: 'set_l4', proto, src: -1, dst: 99 })),
);

const CT: DpCt = { kind: 'ct', zone: 1, commit: false, recircId: 5, nat: null };

test('property: a ct step handed the frame in place with its key gets the key and offsets extractKey gives the rewritten frame', () => {
  const ports = new PortTable(4);
  const env = { ports, tunnelHeader: () => null };
  const keys = new Uint32Array(KEY_WORDS);
  const offs = new Uint16Array(OFFS_WORDS);
  const want = new Uint32Array(KEY_WORDS);
  const wantOffs = new Uint16Array(OFFS_WORDS);
  let nInPlace = 0, nReparse = 0, nPopKept = 0;
  fc.assert(fc.property(shapeArb, fc.array(actArb, { minLength: 1, maxLength: 4 }), (shape, acts) => {
    const b = new PacketBatch(1);
    b.append(frameOf(shape));
    b.inPort[0] = 1;
    if (isDrop(extractKey(b.buf, b.off[0], b.len[0], 1, keys, 0, offs, 0))) return;
    const prog = compileActions([...acts, CT], env);
    let fork = -1;
    const ctx: ExecCtx = {
      ct(_a, _b, _slot, _depth, _l3, f): number { fork = f; return CT_QUEUED; },
      slow(): number { return CT_GO_ON; },
    };
    runProgram(prog, b, 0, 0, 0, { keys, offs }, ports, ctx);
    if (fork === -1) return; // NoHeadroom cannot happen here; a drop ends before the ct step
    if (fork === CT_FORK_IN_PLACE_REPARSE) { nReparse++; return; }
    assert.equal(fork, CT_FORK_IN_PLACE);
    nInPlace++;
    if (acts.some((a) => a.kind === 'pop_vlan') && shape.tags > 0) nPopKept++;
    extractKey(b.buf, b.off[0], b.len[0], 1, want, 0, wantOffs, 0);
    assert.deepEqual(Array.from(keys), Array.from(want), `key of ${JSON.stringify(shape)} after ${JSON.stringify(acts)}`);
    assert.deepEqual(Array.from(offs), Array.from(wantOffs), `offsets of ${JSON.stringify(shape)} after ${JSON.stringify(acts)}`);
  }), { numRuns: 3000 });
  // Both outcomes occurred, and kept keys after a pop were among the compared ones.
  assert.ok(nInPlace > 500 && nReparse > 100 && nPopKept > 100, JSON.stringify({ nInPlace, nReparse, nPopKept }));
});

test('property: compiled rewrites without a ct step leave the frame as applyDpActions does, byte for byte', () => {
  const ports = new PortTable(4);
  const env = { ports, tunnelHeader: () => null };
  const keys = new Uint32Array(KEY_WORDS);
  const offs = new Uint16Array(OFFS_WORDS);
  const ctx: ExecCtx = { ct(): number { return CT_GO_ON; }, slow(): number { return CT_GO_ON; } };
  let nChanged = 0;
  fc.assert(fc.property(shapeArb, fc.array(actArb, { minLength: 1, maxLength: 4 }), (shape, acts) => {
    const fast = new PacketBatch(1), slow = new PacketBatch(1);
    fast.append(frameOf(shape));
    slow.append(frameOf(shape));
    if (isDrop(extractKey(fast.buf, fast.off[0], fast.len[0], 1, keys, 0, offs, 0))) return;
    runProgram(compileActions(acts, env), fast, 0, 0, 0, { keys, offs }, ports, ctx);
    applyDpActions(acts, slow, 0, () => undefined);
    const got = Array.from(fast.frame(0)), want = Array.from(slow.frame(0));
    assert.deepEqual(got, want, `${JSON.stringify(shape)} after ${JSON.stringify(acts)}`);
    if (want.some((x, k) => x !== frameOf(shape)[k])) nChanged++;
  }), { numRuns: 3000 });
  assert.ok(nChanged > 1000, `frames rewritten: ${nChanged}`); // the lists did rewrite frames
});
