/**
 * The megaflow property (issue 4 "Done when"): for random rule sets (priorities with ties,
 * masks, overlapping matches, resubmit, goto_table, set_field/move rewrites, vlan push/pop,
 * dec_ttl) and random packets, every packet that agrees with the translated one on the
 * returned mask gets the same datapath actions from the slow path. The bits outside the mask
 * are randomised over the words a frame determines; pipeline state (regs, metadata) stays 0
 * as it is at datapath ingress.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { xlate } from '../../src/ofproto/xlate';
import { keyFromFields } from '../../src/ofproto/trace';
import { formatDpActions } from '../../src/dpif/dp-actions';
import {
  KEY_WORDS, PACKET_WORDS, W_IN_PORT, W_DL_DST_HI, W_DL_SRC_HI, W_ARP_SHA_HI, W_ARP_THA_HI, W_TCP_FLAGS,
} from '../../src/packet/flowkey-layout';
import { arbFlowSet, arbPacket, bridgeOfFlows } from '../helpers/random-flows';

/** Bits a frame can set in each packet word (MAC high words hold 16 bits, tcp_flags 12). */
const VALID = new Uint32Array(PACKET_WORDS).fill(0xffffffff);
for (const w of [W_DL_DST_HI, W_DL_SRC_HI, W_ARP_SHA_HI, W_ARP_THA_HI, W_IN_PORT]) VALID[w] = 0xffff;
VALID[W_TCP_FLAGS] = 0xfff;

test('property: every packet inside the megaflow mask gets the same datapath actions', () => {
  fc.assert(fc.property(
    arbFlowSet({ distinctPriorities: false, maxFlows: 14 }),
    fc.array(arbPacket, { minLength: 1, maxLength: 6 }),
    fc.array(fc.array(fc.integer(), { minLength: PACKET_WORDS, maxLength: PACKET_WORDS }), { minLength: 3, maxLength: 3 }),
    (flows, packets, noises) => {
      const { o, br } = bridgeOfFlows(flows);
      const keys = packets.map((p) => keyFromFields(p, br));
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i];
        const r = xlate({ ofproto: o, bridge: br, key, packetBytes: 60, nowMs: 0, sideEffects: false });
        const want = formatDpActions(r.actions);
        const others = [...noises.map((n) => Uint32Array.from(n)), ...keys.filter((_, j) => j !== i)];
        for (const other of others) {
          const k2 = new Uint32Array(KEY_WORDS);
          for (let w = 0; w < PACKET_WORDS; w++) k2[w] = ((key[w] & r.wc[w]) | (other[w] & ~r.wc[w] & VALID[w])) >>> 0;
          assert.equal(r.wc[W_IN_PORT], 0xffffffff);
          const r2 = xlate({ ofproto: o, bridge: br, key: k2, packetBytes: 60, nowMs: 0, sideEffects: false });
          assert.equal(formatDpActions(r2.actions), want, `flows:\n${flows.join('\n')}\npacket: ${packets[i]}`);
          assert.equal(r2.drop, r.drop);
        }
      }
    }), { numRuns: 600 });
});
