/**
 * A slot's flow is its payload alone (dpif/batch-state.ts FlowPayload: its id and serial name
 * its megaflow; no per-slot flow id or serial column): when a hit's side effect changes rules
 * and the revalidation gives the megaflow a new payload (same program, other rules), the later
 * frames of the same pass that the caches gave the old payload must move to the new one
 * (Datapath.resolve), so each credits the rules of its own translation, as the slow path does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datapath } from '../../src/dpif/datapath';
import { StatsRule, UpcallResult, Upcaller } from '../../src/dpif/upcall';
import { PacketBatch } from '../../src/netdev/batch';
import { KEY_WORDS, W_IN_PORT } from '../../src/packet/flowkey-layout';
import { buildTcp4Frame } from '../../src/packet/tcp';
import { MemNetdev } from './helpers';

const IN_PORT = 1;

function rule(): StatsRule {
  return { nPackets: 0, nBytes: 0, lastUsedMs: 0 };
}

/**
 * Every frame to port 2 under a mask of in_port alone (one megaflow); the rule it credits is
 * `before` until a hit's refresh (armed by the test) changes it to `after`.
 */
class SwitchingUpcaller implements Upcaller {
  readonly before = rule();
  readonly after = rule();
  switched = false;
  armed = false;
  private readonly mask = new Uint32Array(KEY_WORDS);
  constructor() { this.mask[W_IN_PORT] = 0xffffffff; }
  upcall(): UpcallResult {
    return {
      actions: [{ kind: 'output', port: 2 }], mask: this.mask, rules: [this.switched ? this.after : this.before],
      cacheable: true,
      refresh: () => {
        if (!this.armed) return false;
        this.armed = false;
        this.switched = true;
        return true;
      },
    };
  }
  revalidate(): UpcallResult { return this.upcall(); }
}

function batchOf(n: number): PacketBatch {
  const b = new PacketBatch(n);
  for (let k = 0; k < n; k++) {
    const i = b.append(buildTcp4Frame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1000 + k, dport: 2000, flags: 0x10 }));
    b.inPort[i] = IN_PORT;
  }
  return b;
}

test('frames after a hit whose side effect changed its megaflow\'s rules credit the new rules', () => {
  for (const emcInsertInvProb of [1, 0]) { // hits from the EMC, and from the megaflow cache alone
    const up = new SwitchingUpcaller();
    const dp = new Datapath({ upcaller: up, emcInsertInvProb, nowMs: () => 0 });
    dp.addPort(IN_PORT, new MemNetdev('in'));
    const out = new MemNetdev('out');
    dp.addPort(2, out);
    dp.processBatch(batchOf(4), 4); // the megaflow, then three hits
    assert.equal(dp.nUpcalls, 1);
    assert.equal(up.before.nPackets, 4);
    up.armed = true;
    dp.processBatch(batchOf(4), 4); // the first frame's refresh switches the rules
    assert.equal(dp.nUpcalls, 1, `EMC 1/${emcInsertInvProb}: the megaflow stays (same program)`);
    assert.equal(out.sent.length, 8);
    assert.equal(up.before.nPackets, 5, `EMC 1/${emcInsertInvProb}: the frames after the change credited the old rules`);
    assert.equal(up.after.nPackets, 3, `EMC 1/${emcInsertInvProb}`);
  }
});
