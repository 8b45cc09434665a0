/**
 * The stats stage's time stamps (stages.ts stats): after every batch, each rule a frame of it
 * hit has lastUsedMs = that batch's clock reading, and each megaflow it ran has usedMs = the
 * same, whether the clock moved on, stood still or went back (a fake clock, as the datapath's
 * injectable nowMs); rules and megaflows no frame hit keep theirs. The stage writes a rule's
 * stamp only when it differs, which must not show here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datapath } from '../../src/dpif/datapath';
import { PacketBatch } from '../../src/netdev/batch';
import { W_IN_PORT, W_NW_DST } from '../../src/packet/flowkey-layout';
import { LinearXlate, MemNetdev, TestRule, matchOf, udpFrameTo } from './helpers';

test('stats: rules and megaflows hit by a batch carry its clock reading, forward, same and back; others keep theirs', () => {
  let now = 5000;
  const xl = new LinearXlate();
  const rules: TestRule[] = [];
  for (const [dst, port] of [[2, 2], [3, 3]]) {
    const m = matchOf([[W_IN_PORT, 1, 0xffffffff], [W_NW_DST, 0x0a000100 | dst, 0xffffffff]]);
    const r = new TestRule(m.value, m.mask, 10, [{ kind: 'output', port }]);
    rules.push(r);
    xl.rules.push(r);
  }
  const dp = new Datapath({ upcaller: xl, emcInsertInvProb: 1, nowMs: () => now });
  [1, 2, 3].forEach((p) => dp.addPort(p, new MemNetdev(`p${p}`)));
  const send = (dsts: number[]): void => {
    const b = new PacketBatch(64);
    for (const d of dsts) { const i = b.append(udpFrameTo(d)); b.inPort[i] = 1; }
    dp.processBatch(b, b.count);
  };
  const mfUsed = (): number[] => dp.megaflows.liveIds().map((id) => dp.megaflows.usedMs[id]);
  const seen: string[] = [];
  const look = (): void => { seen.push(`${rules[0].lastUsedMs} ${rules[1].lastUsedMs} | ${mfUsed().join(' ')}`); };

  send([2, 3]); look(); // the upcalls install both flows
  send([2, 2]); look(); // same millisecond
  now = 5007;
  send([2, 2, 2]); look(); // the clock moved on: .2's rule and megaflow only
  send([3]); look();
  now = 5003; // the clock went back (a fake clock may)
  send([2]); look();
  now = 5003;
  send([2, 3, 2]); look();
  assert.deepEqual(seen, [
    '5000 5000 | 5000 5000',
    '5000 5000 | 5000 5000',
    '5007 5000 | 5007 5000',
    '5007 5007 | 5007 5007',
    '5003 5007 | 5003 5007',
    '5003 5003 | 5003 5003',
  ]);
  assert.equal(rules[0].nPackets, 1 + 2 + 3 + 1 + 2);
  assert.equal(rules[1].nPackets, 1 + 1 + 1);
});
