/**
 * A pass whose frames all hit the caches still runs their side effects (FlowPayload.refresh,
 * once per stretch of one flow; datapath.ts refreshHits), and a refresh that changes rules
 * revalidates at once: the frames after it whose megaflow died are resolved again in the same
 * pass, as in the slow path (the rule change applies from the next frame on).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datapath } from '../../src/dpif/datapath';
import { UpcallResult } from '../../src/dpif/upcall';
import { PacketBatch } from '../../src/netdev/batch';
import { W_IN_PORT } from '../../src/packet/flowkey-layout';
import { ipv4SetChecksum } from '../../src/packet/checksum';
import { LinearXlate, MemNetdev, TestRule, matchOf, hexBytes } from './helpers';

/** A translator whose results' refresh moves the flow's output to port 3 on its first call (a learned rule). */
class LearningXlate extends LinearXlate {
  nRefreshes = 0;
  override translate(keys: Uint32Array, base: number): UpcallResult {
    const r = super.translate(keys, base);
    return { ...r, refresh: () => {
      this.nRefreshes++;
      if (this.rules[0].actions[0].kind === 'output' && this.rules[0].actions[0].port === 3) return false;
      this.rules[0].actions = [{ kind: 'output', port: 3 }];
      return true;
    } };
  }
}

function frame(id: number): Uint8Array {
  const f = hexBytes('020000000002 020000000001 0800' +
    `4500 0032 ${id.toString(16).padStart(4, '0')} 4000 4011 0000 0a000101 0a000102` +
    '03e8 07d0 001e 0000' + '00'.repeat(22));
  ipv4SetChecksum(f, 14);
  return f;
}

test('a run of cache hits whose first refresh changes rules: the frames after it go where the new rule sends them', () => {
  const xl = new LearningXlate();
  const m = matchOf([[W_IN_PORT, 1, 0xffffffff]]);
  xl.rules.push(new TestRule(m.value, m.mask, 10, [{ kind: 'output', port: 2 }]));
  const dp = new Datapath({ upcaller: xl, emcInsertInvProb: 1, nowMs: () => 1000 });
  const nd = [1, 2, 3].map((p) => new MemNetdev(`p${p}`));
  nd.forEach((n, k) => dp.addPort(k + 1, n));
  const send = (ids: number[]): void => {
    const b = new PacketBatch(32);
    for (const id of ids) { const i = b.append(frame(id)); b.inPort[i] = 1; }
    dp.processBatch(b, b.count);
  };
  send([1]); // the upcall installs the flow (output 2); no refresh yet
  assert.equal(nd[1].sent.length, 1);
  assert.equal(xl.nRefreshes, 0);
  const upcalls = xl.nUpcalls;
  send([2, 3, 4, 5]); // all hits; the first frame's refresh learns "output 3"
  assert.equal(nd[1].sent.length, 2, 'the frame whose refresh changed the rules went where its flow said');
  assert.equal(nd[2].sent.length, 3, 'the frames after it, resolved again');
  assert.equal(xl.nUpcalls, upcalls + 1);
});
