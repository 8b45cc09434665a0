/**
 * Conntrack sync of SNAT connections, master -> backups (issue 14 item 3): the wire format
 * byte for byte, malformed datagrams refused by reason, and (fast-check) the backup's table
 * equals the master's whatever the network does: reordered and duplicated datagrams need
 * nothing more; lost ones are repaired by one refresh round (which the backup asks for when
 * it sees a hole).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CT_SYNC_DROP_NAMES, CtSyncEntry, ctSyncKey, CtSyncReceiver, CtSyncSender, CtSyncSink, MAX_ENTRIES_PER_DATAGRAM,
} from '../../src/dpif/ct-sync';

function conn(id: number, state: number): CtSyncEntry {
  // 10.0.2.20:(40000+id) -> 203.0.113.1:80, SNATed to 203.0.113.10:(40000+id) in zone 0x1234.
  return {
    zone: 0x1234, proto: 6, tcpState: state, expiresInMs: 432000000, flags: 0,
    origSrc: 0x0a000214, origDst: 0xcb007101, origSport: 40000 + id, origDport: 80,
    replySrc: 0xcb007101, replyDst: 0xcb00710a, replySport: 80, replyDport: 40000 + id,
  };
}

class ModelSink implements CtSyncSink {
  readonly table = new Map<string, CtSyncEntry>();
  upsert(e: CtSyncEntry): void { this.table.set(ctSyncKey(e), e); }
  remove(e: CtSyncEntry): void { this.table.delete(ctSyncKey(e)); }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

test('an update datagram, byte for byte', () => {
  const table = new Map<string, CtSyncEntry>();
  const s = new CtSyncSender(() => [...table.values()], { epoch: 0xdeadbeef });
  s.note(conn(1, 2), false);
  const [d] = s.tick();
  assert.equal(hex(d),
    '4653' + '01' + '01' + 'deadbeef' + '00000001' + '0001' + '0000' +           // header
    '01' + '02' + '1234' + '00000001' + '00000000' + '06' + '000000' + '19bfcc00' + // op, state, zone, version, round, proto, expires
    '0a000214' + 'cb007101' + '9c41' + '0050' +                                     // original tuple
    'cb007101' + 'cb00710a' + '0050' + '9c41');                                     // reply tuple
  assert.deepEqual(s.tick(), []);
});

test('changes are batched: 40 connections take two datagrams; later changes of one connection replace earlier ones', () => {
  const s = new CtSyncSender(() => [], { epoch: 1 });
  for (let i = 0; i < 40; i++) s.note(conn(i, 1), false);
  for (let i = 0; i < 40; i++) s.note(conn(i, 2), false);
  const ds = s.tick();
  assert.deepEqual(ds.map((d) => d.length), [16 + MAX_ENTRIES_PER_DATAGRAM * 44, 16 + 9 * 44]);
  const sink = new ModelSink();
  const r = new CtSyncReceiver(sink);
  for (const d of ds) assert.equal(r.receive(d, 0), null);
  assert.equal(sink.table.size, 40);
  assert.ok([...sink.table.values()].every((e) => e.tcpState === 2));
});

test('bounded: past maxPending the sender drops its changes and sends the whole table instead', () => {
  const table = new Map<string, CtSyncEntry>();
  const s = new CtSyncSender(() => [...table.values()], { epoch: 1, maxPending: 8, refreshPerTick: 100 });
  for (let i = 0; i < 20; i++) { table.set(ctSyncKey(conn(i, 2)), conn(i, 2)); s.note(conn(i, 2), false); }
  assert.equal(s.nOverflows, 2);   // at the 9th and the 18th change
  const sink = new ModelSink();
  const r = new CtSyncReceiver(sink);
  for (const d of s.tick()) r.receive(d, 0);
  assert.deepEqual([...sink.table.keys()].sort(), [...table.keys()].sort());
  assert.equal(r.nRoundsCompleted, 1);
});

test('malformed datagrams are refused and counted by reason; the table is untouched', () => {
  const sink = new ModelSink();
  const r = new CtSyncReceiver(sink);
  const s = new CtSyncSender(() => [], { epoch: 7 });
  s.note(conn(1, 2), false);
  const [good] = s.tick();
  const bad = (f: (b: Uint8Array) => Uint8Array): Uint8Array => f(Uint8Array.from(good));
  r.receive(good.subarray(0, 10), 0);
  r.receive(bad((b) => { b[0] = 0; return b; }), 0);
  r.receive(bad((b) => { b[2] = 9; return b; }), 0);
  r.receive(bad((b) => { b[3] = 9; return b; }), 0);
  r.receive(bad((b) => { b[13] = 200; return b; }), 0);
  r.receive(bad((b) => { b[16] = 7; return b; }), 0);
  r.receive(good.subarray(0, good.length - 1), 0);
  const counts = Object.fromEntries(CT_SYNC_DROP_NAMES.map((n, i) => [n, r.drops[i]]));
  assert.deepEqual(counts, { truncated: 2, bad_magic: 1, bad_version: 1, bad_type: 1, bad_count: 1, bad_op: 1 });
  assert.equal(sink.table.size, 0);
  assert.equal(r.nDatagrams, 0);
});

type Op = { kind: 'set' | 'del'; id: number; state: number; tick: boolean };
const opArb = fc.record({
  kind: fc.constantFrom<'set' | 'del'>('set', 'set', 'del'), id: fc.integer({ min: 0, max: 40 }),
  state: fc.integer({ min: 1, max: 9 }), tick: fc.boolean(),
});

/** Runs `ops` on the master; returns its table and the datagrams it sent, in order. */
function runMaster(ops: Op[], s: CtSyncSender, table: Map<string, CtSyncEntry>): Uint8Array[] {
  const sent: Uint8Array[] = [];
  for (const op of ops) {
    const e = conn(op.id, op.state);
    const k = ctSyncKey(e);
    if (op.kind === 'set') { table.set(k, e); s.note(e, false); }
    else if (table.has(k)) { table.delete(k); s.note(e, true); }
    if (op.tick) sent.push(...s.tick());
  }
  sent.push(...s.tick());
  return sent;
}

/** The network: a permutation of `ds`, with each datagram sent 1 + dup[i] times and dropped where lost[i]. */
function network(ds: Uint8Array[], order: number[], dup: number[], lost: boolean[]): Uint8Array[] {
  const out: { at: number; d: Uint8Array }[] = [];
  ds.forEach((d, i) => {
    if (lost[i % lost.length] === true) return;
    for (let k = 0; k <= (dup[i % dup.length] ?? 0); k++) out.push({ at: order[(i * 7 + k) % order.length] ?? 0, d });
  });
  return out.sort((a, b) => a.at - b.at).map((x) => x.d);
}

function sameTable(sink: ModelSink, table: Map<string, CtSyncEntry>): void {
  assert.deepEqual(new Map([...sink.table].sort()), new Map([...table].sort()));
}

test('fast-check: reordered and duplicated datagrams leave the backup equal to the master', () => {
  fc.assert(fc.property(
    fc.array(opArb, { maxLength: 150 }), fc.array(fc.nat(1000), { minLength: 1, maxLength: 60 }),
    fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 20 }),
    (ops, order, dup) => {
      const table = new Map<string, CtSyncEntry>();
      const s = new CtSyncSender(() => [...table.values()], { epoch: 42 });
      const sink = new ModelSink();
      const r = new CtSyncReceiver(sink);
      for (const d of network(runMaster(ops, s, table), order, dup, [false])) r.receive(d, 0);
      sameTable(sink, table);
    }), { numRuns: 300 });
});

test('fast-check: after loss, the backup asks for a resync and one refresh round makes it equal', () => {
  fc.assert(fc.property(
    fc.array(opArb, { maxLength: 150 }), fc.array(fc.nat(1000), { minLength: 1, maxLength: 60 }),
    fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 20 }),
    fc.array(fc.boolean(), { minLength: 1, maxLength: 20 }), fc.integer({ min: 1, max: 50 }),
    (ops, order, dup, lost, perTick) => {
      const table = new Map<string, CtSyncEntry>();
      const s = new CtSyncSender(() => [...table.values()], { epoch: 42, refreshPerTick: perTick });
      const sink = new ModelSink();
      const r = new CtSyncReceiver(sink);
      const lossy = network(runMaster(ops, s, table), order, dup, lost);
      let asked = false;
      for (const d of lossy) if (r.receive(d, 0) !== null) asked = true;
      const lostSome = lossy.length === 0 ? false : r.nMissing > 0;
      if (lostSome) assert.ok(asked, 'a hole in the sequence asks for a resync');
      // The master starts a round (asked, or its periodic one); the round's datagrams arrive
      // reordered and duplicated, mixed with late copies of the lossy phase.
      s.startRound();
      const round: Uint8Array[] = [];
      while (s.refreshing) round.push(...s.tick());
      for (const d of network([...round, ...lossy.slice(0, 5)], order, dup, [false])) r.receive(d, 0);
      sameTable(sink, table);
    }), { numRuns: 300 });
});

test('a restarted master (new epoch) is resynced and wins over what the old one said', () => {
  const table = new Map<string, CtSyncEntry>();
  const sink = new ModelSink();
  const r = new CtSyncReceiver(sink);
  const a = new CtSyncSender(() => [...table.values()], { epoch: 1 });
  for (let i = 0; i < 5; i++) { table.set(ctSyncKey(conn(i, 2)), conn(i, 2)); a.note(conn(i, 2), false); }
  for (const d of a.tick()) r.receive(d, 0);
  table.delete(ctSyncKey(conn(0, 2)));
  const b = new CtSyncSender(() => [...table.values()], { epoch: 2 });
  b.note(conn(1, 5), false);
  table.set(ctSyncKey(conn(1, 5)), conn(1, 5));
  const [d] = b.tick();
  const ask = r.receive(d, 0);
  assert.notEqual(ask, null);
  assert.equal(b.receive(ask!), true);
  while (b.refreshing) for (const x of b.tick()) r.receive(x, 0);
  sameTable(sink, table);
});
