/**
 * A Translator (ofproto/xlate.ts), the reusable translator ofproto/upcall.ts runs every upcall
 * through, answers each flow of a sequence exactly as a fresh xlate() does: nothing of one
 * translation (outputs, drop reason, committed tunnel, halted branch, wildcards) leaks into the
 * next. Random rule sets and packet sequences (test/helpers/random-flows.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Translator, xlate } from '../../src/ofproto/xlate';
import { keyFromFields } from '../../src/ofproto/trace';
import { formatDpActions } from '../../src/dpif/dp-actions';
import { arbFlowSet, arbPacket, bridgeOfFlows } from '../helpers/random-flows';

test('property: one Translator gives every flow of a sequence what a fresh xlate() gives it', () => {
  fc.assert(fc.property(
    arbFlowSet({ distinctPriorities: false, maxFlows: 14 }),
    fc.array(arbPacket, { minLength: 2, maxLength: 8 }),
    (flows, packets) => {
      const { o, br } = bridgeOfFlows(flows);
      const t = new Translator();
      for (const p of packets) {
        const key = keyFromFields(p, br);
        const input = { ofproto: o, bridge: br, key, packetBytes: 60, nowMs: 0, sideEffects: false };
        const want = xlate(input);
        const got = t.translate(input);
        const ctx = `flows:\n${flows.join('\n')}\npacket: ${p}`;
        assert.equal(formatDpActions(got.actions), formatDpActions(want.actions), ctx);
        assert.deepEqual(Array.from(got.wc), Array.from(want.wc), ctx);
        assert.deepEqual(Array.from(got.finalKey), Array.from(want.finalKey), ctx);
        assert.equal(got.drop, want.drop, ctx);
        assert.deepEqual(got.rulesHit, want.rulesHit, ctx);
      }
    }), { numRuns: 300 });
});

test('a result\'s lists stay valid after the next translation; wc is the translator\'s own array', () => {
  const { o, br } = bridgeOfFlows([
    'table=0,priority=10,in_port=1,actions=output:2',
    'table=0,priority=10,in_port=2,ip,actions=dec_ttl,output:3,output:4',
  ]);
  const t = new Translator();
  const first = t.translate({ ofproto: o, bridge: br, key: keyFromFields('in_port=1,ip', br), packetBytes: 60, nowMs: 0, sideEffects: false });
  const firstActions = formatDpActions(first.actions);
  const firstRules = first.rulesHit.slice();
  const second = t.translate({ ofproto: o, bridge: br, key: keyFromFields('in_port=2,ip,nw_ttl=9', br), packetBytes: 60, nowMs: 0, sideEffects: false });
  assert.equal(firstActions, '2');
  assert.equal(formatDpActions(first.actions), '2');
  assert.deepEqual(first.rulesHit, firstRules);
  assert.equal(formatDpActions(second.actions), 'set(ipv4(ttl=8)),3,4');
  assert.equal(second.wc, first.wc);
});
