/**
 * Pass numbers start again at 1 after MAX_PASS_NO (dpif/datapath.ts): the stamps of earlier
 * passes are cleared first, so a port or flow stamped in pass 1 of the first round is not taken
 * for one already touched in pass 1 of the next (its output would stay unsent and its counts
 * uncredited).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datapath, MAX_PASS_NO } from '../../src/dpif/datapath';
import { PacketBatch } from '../../src/netdev/batch';
import { W_IN_PORT } from '../../src/packet/flowkey-layout';
import { LinearXlate, MemNetdev, TestRule, matchOf, udpFrameTo } from './helpers';

test('pass numbers wrap after MAX_PASS_NO: a port and a flow stamped in pass 1 still send and count in the next pass 1', () => {
  const xl = new LinearXlate();
  const m = matchOf([[W_IN_PORT, 0xffffffff, 1]]);
  const rule = new TestRule(m.value, m.mask, 10, [{ kind: 'output', port: 2 }]);
  xl.rules.push(rule);
  const dp = new Datapath({ upcaller: xl, emcInsertInvProb: 1 });
  const p1 = new MemNetdev('p1'), p2 = new MemNetdev('p2');
  dp.addPort(1, p1);
  dp.addPort(2, p2);
  const send = (): void => {
    const b = new PacketBatch(4);
    b.inPort[b.append(udpFrameTo(2))] = 1;
    dp.processBatch(b, 1);
  };
  send(); // pass 1: port 2 and the flow are stamped 1
  const passNo = dp as unknown as { batchNo: number };
  assert.equal(passNo.batchNo, 1);
  passNo.batchNo = MAX_PASS_NO; // the next pass is pass 1 again
  send();
  assert.equal(passNo.batchNo, 1);
  send();
  assert.equal(p2.sent.length, 3, 'every frame sent, the one of the second pass 1 included');
  assert.equal(rule.nPackets, 3, 'every frame credited to its rule');
  assert.equal(dp.ports.byNo(2)?.txPackets, 3);
});
