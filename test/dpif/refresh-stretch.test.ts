/**
 * The upcall stage repeats a cached hit's side effects (UpcallResult.refresh, e.g. NORMAL's MAC
 * learning) once per stretch of consecutive frames of one megaflow, and calls it again after
 * anything ran in between (a miss and its upcall, another flow's frames), in packet order: the
 * order and count of refresh calls, seen by a translator that logs them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datapath } from '../../src/dpif/datapath';
import { UpcallResult } from '../../src/dpif/upcall';
import { PacketBatch } from '../../src/netdev/batch';
import { W_IN_PORT, W_NW_DST } from '../../src/packet/flowkey-layout';
import { LinearXlate, MemNetdev, TestRule, matchOf, udpFrameTo } from './helpers';

/** A translator whose results log their refresh calls by flow name (the last octet of nw_dst). */
class LoggingXlate extends LinearXlate {
  readonly log: string[] = [];
  override translate(keys: Uint32Array, base: number): UpcallResult {
    const r = super.translate(keys, base);
    const name = `.${keys[base + W_NW_DST] & 0xff}`;
    this.log.push(`upcall ${name}`);
    return { ...r, refresh: () => { this.log.push(`refresh ${name}`); return false; } };
  }
}

function setup(): { xl: LoggingXlate; send: (dsts: number[]) => void } {
  const xl = new LoggingXlate();
  for (const [dst, port] of [[2, 2], [3, 3]]) {
    const m = matchOf([[W_IN_PORT, 1, 0xffffffff], [W_NW_DST, 0x0a000100 | dst, 0xffffffff]]);
    xl.rules.push(new TestRule(m.value, m.mask, 10, [{ kind: 'output', port }]));
  }
  const dp = new Datapath({ upcaller: xl, emcInsertInvProb: 1, nowMs: () => 1000 });
  [1, 2, 3].forEach((p) => dp.addPort(p, new MemNetdev(`p${p}`)));
  const send = (dsts: number[]): void => {
    const b = new PacketBatch(64);
    for (const d of dsts) { const i = b.append(udpFrameTo(d)); b.inPort[i] = 1; }
    dp.processBatch(b, b.count);
  };
  return { xl, send };
}

test('refresh: once per stretch of one flow\'s hits, again for each stretch after another flow', () => {
  const { xl, send } = setup();
  send([2, 3]);
  assert.deepEqual(xl.log, ['upcall .2', 'upcall .3']);
  xl.log.length = 0;
  send([2, 2, 2, 2, 2, 3, 2, 2, 2]);
  assert.deepEqual(xl.log, ['refresh .2', 'refresh .3', 'refresh .2']);
  xl.log.length = 0;
  send([2, 3, 2, 3]);
  assert.deepEqual(xl.log, ['refresh .2', 'refresh .3', 'refresh .2', 'refresh .3']);
});

test('refresh: a miss and its upcall between two frames of a flow end the stretch (the upcall may have moved what the refresh learns)', () => {
  const { xl, send } = setup();
  send([2]);
  xl.log.length = 0;
  send([2, 2, 3, 2, 2]); // .3 is a miss here: its upcall runs between the .2 frames
  assert.deepEqual(xl.log, ['refresh .2', 'upcall .3', 'refresh .2']);
});
