/**
 * Programs interned by an action digest (src/dpif/program-cache.ts): megaflows whose upcalls
 * return equal action lists share one compiled program, lists that differ anywhere do not, the
 * datapath never depends on the upcaller's array, and the table is bounded and dropped with
 * the caches.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datapath } from '../../src/dpif/datapath';
import { DpAction } from '../../src/dpif/dp-actions';
import { actionsDigest, ProgramCache, sameActions } from '../../src/dpif/program-cache';
import { sameProgram } from '../../src/dpif/compile';
import { UpcallResult, Upcaller, StatsRule } from '../../src/dpif/upcall';
import { PacketBatch } from '../../src/netdev/batch';
import { KEY_WORDS, W_DL_DST_HI, W_DL_DST_LO, W_IN_PORT } from '../../src/packet/flowkey-layout';
import { dumpCache } from '../../src/dpif/dump';
import { MemNetdev, hexBytes, toHex } from './helpers';

class Rule implements StatsRule { nPackets = 0; nBytes = 0; lastUsedMs = 0; }

/**
 * Megaflow per destination MAC; its actions rewrite the source MAC to one of two values (by the
 * destination's low bit) and output to port 2. One array is refilled for every upcall, as the
 * UpcallResult contract allows.
 */
class TwoListUpcaller implements Upcaller {
  private readonly list: DpAction[] = [];
  private readonly mask = new Uint32Array(KEY_WORDS);
  readonly rule = new Rule();
  constructor() {
    this.mask[W_IN_PORT] = 0xffffffff;
    this.mask[W_DL_DST_HI] = 0xffff;
    this.mask[W_DL_DST_LO] = 0xffffffff;
  }
  upcall(keys: Uint32Array, base: number): UpcallResult {
    this.list.length = 0;
    const src = (keys[base + W_DL_DST_LO] & 1) === 0 ? 0x0200000000aa : 0x0200000000bb;
    this.list.push({ kind: 'set_eth', src, dst: -1 }, { kind: 'output', port: 2 });
    return { actions: this.list, mask: this.mask, rules: [this.rule], cacheable: true };
  }
  revalidate(keys: Uint32Array, base: number): UpcallResult { return this.upcall(keys, base); }
}

function frameTo(dstLast: number): Uint8Array {
  return hexBytes(`0200000000${dstLast.toString(16).padStart(2, '0')} 020000000001 0800` +
    '4500 002e 0000 4000 4011 0000 0a000101 0a000102 03e8 07d0 001a 0000' + '00'.repeat(18));
}

test('eight megaflows with two distinct action lists compile two programs; each frame gets its own list', () => {
  const up = new TwoListUpcaller();
  const dp = new Datapath({ upcaller: up, emcInsertInvProb: 1 });
  const out = new MemNetdev('p2');
  dp.addPort(1, new MemNetdev('p1'));
  dp.addPort(2, out);
  for (let round = 0; round < 2; round++) {
    const b = new PacketBatch(8);
    for (let k = 0; k < 8; k++) { const i = b.append(frameTo(0x10 + k)); b.inPort[i] = 1; }
    dp.processBatch(b, 8);
  }
  assert.equal(dp.nUpcalls, 8);
  assert.equal(dp.megaflows.nFlows, 8);
  assert.equal(dp.programs.nCompiled, 2);
  assert.equal(dp.programs.nShared, 6);
  assert.equal(out.sent.length, 16);
  for (let n = 0; n < 16; n++) {
    const dst = 0x10 + (n % 8);
    assert.equal(toHex(out.sent[n].subarray(0, 12)), `0200000000${dst.toString(16)}0200000000${dst % 2 === 0 ? 'aa' : 'bb'}`);
  }
  // dump-flows names each megaflow's own actions.
  const dump = dumpCache(dp);
  for (let k = 0; k < 8; k++) {
    const line = dump.split('\n').find((l) => l.includes(`eth(dst=02:00:00:00:00:${(0x10 + k).toString(16)}`));
    assert.ok(line !== undefined, dump);
    assert.match(line, new RegExp(`set\\(eth\\(src=02:00:00:00:00:${k % 2 === 0 ? 'aa' : 'bb'}\\)\\),2$`));
  }
});

test('equal lists have equal digests whatever their field order; a difference anywhere tells them apart', () => {
  const a: DpAction[] = [{ kind: 'set_eth', src: 0xfa163e000001, dst: -1 }, { kind: 'output', port: 3 }];
  const b: DpAction[] = [{ kind: 'set_eth', dst: -1, src: 0xfa163e000001 } as DpAction, { port: 3, kind: 'output' } as DpAction];
  assert.ok(sameActions(a, b));
  assert.equal(actionsDigest(a), actionsDigest(b));
  // Differences in a 48-bit MAC's high half, in a nested branch, in a typed array, in a bigint.
  assert.ok(!sameActions(a, [{ kind: 'set_eth', src: 0xfa173e000001, dst: -1 }, { kind: 'output', port: 3 }]));
  const branch = (port: number): DpAction[] => [{ kind: 'check_pkt_len', size: 1500, gt: [{ kind: 'output', port }], le: [{ kind: 'output', port: 1 }] }];
  assert.ok(sameActions(branch(2), branch(2)));
  assert.ok(!sameActions(branch(2), branch(4)));
  const ctl = (userdata: number[], cookie: bigint): DpAction[] => [{ kind: 'controller', maxLen: 0, info: {
    bridge: 'br-int', tableId: 0, cookie, reason: 1, tableMiss: false, controllerId: 0,
    userdata: Uint8Array.from(userdata), flow: new Uint32Array(KEY_WORDS) } }];
  assert.ok(sameActions(ctl([1, 2], 5n), ctl([1, 2], 5n)));
  assert.ok(!sameActions(ctl([1, 2], 5n), ctl([1, 3], 5n)));
  assert.ok(!sameActions(ctl([1, 2], 5n), ctl([1, 2], 6n)));
  assert.ok(!sameActions(a, a.slice(0, 1)));
});

test('the table is bounded and dropped with the caches; a program compiled again is the same program', () => {
  const dp = new Datapath({ upcaller: new TwoListUpcaller() });
  dp.addPort(1, new MemNetdev('p1'));
  dp.addPort(2, new MemNetdev('p2'));
  const cache = new ProgramCache({ ports: dp.ports, tunnelHeader: () => null }, 2);
  const list = (port: number): DpAction[] => [{ kind: 'output', port }];
  const p1 = cache.get(list(1));
  assert.equal(cache.get(list(1)), p1);
  cache.get(list(2));
  assert.equal(cache.size, 2);
  cache.get(list(3)); // over the bound: the table starts over
  assert.equal(cache.size, 1);
  const again = cache.get(list(1));
  assert.notEqual(again, p1);
  assert.ok(sameProgram(again, p1));
  assert.equal(cache.nCompiled, 4);
  // The datapath's table goes with its caches (a port change renumbers outputs).
  dp.programs.get(list(2));
  assert.equal(dp.programs.size, 1);
  dp.addPort(3, new MemNetdev('p3'));
  assert.equal(dp.programs.size, 0);
});
