/**
 * PortTable's gathered slots (dpif/ports.ts emitLast, emitLastRun): a port is sent the input
 * batch itself only when the slots it gathered in a pass are 0, 1, 2, ... (DpPort
 * gatherOutOfOrder, kept as slots are noted); any other list is copied, in the order noted.
 * The mark starts clean in every pass, whatever the pass before it gathered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PortTable } from '../../src/dpif/ports';
import { PacketBatch } from '../../src/netdev/batch';
import { MemNetdev } from './helpers';

/** A batch of `n` one-byte-tagged frames: frame i's first byte is i. */
function batchOf(n: number): PacketBatch {
  const b = new PacketBatch(32);
  for (let i = 0; i < n; i++) { const f = new Uint8Array(60); f[0] = i; b.append(f); }
  return b;
}

/**
 * One pass: `notes` (per entry: a slot, or a list of slots for one emitLastRun) to port 1,
 * then the flush. Returns the frames port 1 got (their tags) and whether they were the input
 * batch itself.
 */
function pass(ports: PortTable, dev: MemNetdev, b: PacketBatch, notes: (number | number[])[]): { tags: number[]; input: boolean } {
  ports.batchNo++;
  ports.setInput(b);
  const hashes = new Uint32Array(32);
  for (const n of notes) {
    if (typeof n === 'number') ports.emitLast(0, b, n, 0);
    else ports.emitLastRun(0, b, Uint16Array.from(n), 0, n.length, hashes);
  }
  dev.sent.length = 0;
  const inputSends = ports.nInputSends;
  ports.flushTouched();
  return { tags: dev.sent.map((f) => f[0]), input: ports.nInputSends > inputSends };
}

test('gathered slots 0, 1, 2, ... go as the input batch; any other list is copied in the order noted', () => {
  const ports = new PortTable(32);
  const dev = new MemNetdev('p1', true);
  ports.add(1, dev, null);
  const b = batchOf(6);
  const cases: [(number | number[])[], number[], boolean][] = [
    [[0, 1, 2], [0, 1, 2], true],
    [[[0, 1, 2, 3]], [0, 1, 2, 3], true],
    [[0, [1, 2], 3], [0, 1, 2, 3], true],
    [[0, 1], [0, 1], true], // a prefix: the rest of the batch went elsewhere
    [[1, 2], [1, 2], false],
    [[0, 2], [0, 2], false],
    [[[0, 2, 1]], [0, 2, 1], false],
    [[[0, 1], 3], [0, 1, 3], false],
    [[[1, 0]], [1, 0], false],
    [[0, [1, 2], 4, 5], [0, 1, 2, 4, 5], false],
  ];
  for (const [notes, tags, input] of cases) {
    // Each case after an out-of-order pass: the mark must not carry over.
    pass(ports, dev, b, [[2, 1]]);
    const r = pass(ports, dev, b, notes);
    assert.deepEqual(r.tags, tags, JSON.stringify(notes));
    assert.equal(r.input, input, `${JSON.stringify(notes)}: input batch`);
  }
});
