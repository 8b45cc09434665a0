/**
 * The steps of compiled programs (dpif/compile.ts) where they take shortcuts the slow path does
 * not: the TTL rewrite as one 32-bit load and store with its checksum patch folded in place
 * (setTtl), and runStraight's `stale` marks, written by the first VLAN step of a run for every
 * frame of it (slots are reused: a mark left by an earlier run must not reach this run's ct step);
 * pop_vlan,push_vlan compiled as one retag step (bytes as the pair's, the key in step even for QinQ).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compileActions, CT_FORK_IN_PLACE, CT_GO_ON, CT_QUEUED, ExecCtx, OP_RETAG_VLAN, RunCtx, runProgram, runStraight,
} from '../../src/dpif/compile';
import { applyDpActions, DpAction, DpCt, DpDrop } from '../../src/dpif/dp-actions';
import { PortTable } from '../../src/dpif/ports';
import { PacketBatch } from '../../src/netdev/batch';
import { extractKey, OFFS_WORDS } from '../../src/packet/flowkey';
import { KEY_WORDS } from '../../src/packet/flowkey-layout';
import { isDrop } from '../../src/packet/stop';
import { hexBytes } from './helpers';

/** Ethernet + IPv4/UDP, TTL `ttl`, protocol `proto`, header checksum field `csum` (any value, not checked). */
function ipFrame(ttl: number, proto: number, csum: number): Uint8Array {
  const f = hexBytes('020000000002 020000000001 0800 4500 001c 0000 4000 4011 0000 0a000101 0a000102 03e8 07d0 0008 0000');
  f[22] = ttl; f[23] = proto; f[24] = csum >>> 8; f[25] = csum & 0xff;
  return f;
}

test('TTL rewrite in one 32-bit load and store: every old and new TTL, checksum fields of every kind (0, 0xffff, carries), bytes as applyDpActions', () => {
  const ports = new PortTable(4);
  const env = { ports, tunnelHeader: () => null };
  const ctx: ExecCtx = { ct(): number { return CT_GO_ON; }, slow(): number { return CT_GO_ON; } };
  const keys = new Uint32Array(KEY_WORDS), offs = new Uint16Array(OFFS_WORDS);
  const progs = Array.from({ length: 256 }, (_, ttl) => {
    const acts = [{ kind: 'set_ipv4' as const, src: -1, dst: -1, tos: -1, tosMask: 0, ttl }];
    return { acts, prog: compileActions(acts, env) };
  });
  const fast = new PacketBatch(1), slow = new PacketBatch(1);
  let n = 0;
  for (const csum of [0x0000, 0xffff, 0x0001, 0xfffe, 0x8000, 0x7fff, 0x1234, 0xedcb]) {
    for (let old = 0; old < 256; old += 3) {
      for (const proto of [6, 17, 0xff]) {
        const f = ipFrame(old, proto, csum);
        for (let ttl = 0; ttl < 256; ttl++) {
          fast.count = 0; slow.count = 0;
          fast.append(f); slow.append(f);
          extractKey(fast.buf, fast.off[0], fast.len[0], 1, keys, 0, offs, 0);
          runProgram(progs[ttl].prog, fast, 0, 0, 0, { keys, offs }, ports, ctx);
          applyDpActions(progs[ttl].acts, slow, 0, () => undefined);
          const got = fast.frame(0), want = slow.frame(0);
          if (got[22] !== want[22] || got[24] !== want[24] || got[25] !== want[25] || got[23] !== want[23]) {
            assert.deepEqual(Array.from(got), Array.from(want), `TTL ${old} -> ${ttl}, protocol ${proto}, checksum ${csum.toString(16)}`);
          }
          n++;
        }
      }
    }
  }
  assert.ok(n > 100000);
});

test('runStraight: the first VLAN step marks every frame of the run (a pop that finds no tag clears an old mark); the ct step gets each frame\'s own mark', () => {
  const ports = new PortTable(4);
  const env = { ports, tunnelHeader: () => null };
  const ct: DpCt = { kind: 'ct', zone: 1, commit: false, recircId: 7 };
  const prog = compileActions([{ kind: 'pop_vlan' }, ct], env);
  assert.ok(prog.straight);
  // QinQ (its popped key cannot be kept: marked), untagged (nothing popped: its key stands), one tag (kept).
  const shapes = [
    hexBytes('020000000002 020000000001 88a8 0005 8100 0007 0800 4500 0014 0000 4000 4011 0000 0a000101 0a000102'),
    hexBytes('020000000002 020000000001 0800 4500 0014 0000 4000 4011 0000 0a000101 0a000102'),
    hexBytes('020000000002 020000000001 8100 0005 0800 4500 0014 0000 4000 4011 0000 0a000101 0a000102'),
  ];
  const batch = new PacketBatch(4);
  const st = { keys: new Uint32Array(4 * KEY_WORDS), offs: new Uint16Array(4 * OFFS_WORDS), depthMax: 0,
    stale: new Uint8Array(4), runLen: new Uint16Array(4), nRuns: 0 };
  for (const [k, f] of shapes.entries()) {
    const i = batch.append(f);
    extractKey(batch.buf, batch.off[i], batch.len[i], 1, st.keys, i * KEY_WORDS, st.offs, i * OFFS_WORDS);
    st.stale[k] = 1; // left by an earlier run in these slots
  }
  let marks: number[] = [];
  const ctx: RunCtx = {
    ct(): number { return CT_GO_ON; },
    slow(): number { return CT_GO_ON; },
    recircInPlace(): boolean { return true; },
    recircRun(_a, _b, live, from, to, stale): void {
      marks = [];
      for (let q = from; q < to; q++) marks.push(stale === null ? 0 : stale[live[q]]);
    },
  };
  assert.equal(runStraight(prog, batch, Uint16Array.of(0, 1, 2), 0, 3, new Uint32Array(4), st, ports, ctx), true);
  assert.deepEqual(marks, [1, 0, 0]);
});

test('pop_vlan,push_vlan compile to one retag step: bytes and verdict as the two actions on every frame shape; a frame handed on in place has the key extractKey gives it, QinQ included', () => {
  const ports = new PortTable(4);
  const env = { ports, tunnelHeader: () => null };
  const ct: DpCt = { kind: 'ct', zone: 1, commit: false, recircId: 7 };
  const ip = '0800 4500 0014 0000 4000 4011 0000 0a000101 0a000102';
  const shapes: [string, Uint8Array, boolean][] = [ // name, frame, laid at its slot's first byte (no headroom)
    ['802.1Q tag', hexBytes(`020000000002 020000000001 8100 2005 ${ip}`), false],
    ['802.1ad tag', hexBytes(`020000000002 020000000001 88a8 0005 ${ip}`), false],
    ['QinQ', hexBytes(`020000000002 020000000001 88a8 0005 8100 0007 ${ip}`), false],
    ['tagged, no headroom', hexBytes(`020000000002 020000000001 8100 0005 ${ip}`), true],
    ['untagged', hexBytes(`020000000002 020000000001 ${ip}`), false],
    ['untagged, no headroom', hexBytes(`020000000002 020000000001 ${ip}`), true],
    ['16 bytes with a TPID', hexBytes('020000000002 020000000001 8100 0005'), false],
  ];
  const pair: DpAction[] = [{ kind: 'pop_vlan' }, { kind: 'push_vlan', tci: 0x3009 }];
  for (const withCt of [false, true]) {
    const acts = withCt ? [...pair, ct] : pair;
    const prog = compileActions(acts, env);
    assert.equal(prog.code[0], OP_RETAG_VLAN);
    assert.equal(prog.nInsns, withCt ? 2 : 1);
    for (const [name, f, bare] of shapes) {
      const fast = new PacketBatch(1), slow = new PacketBatch(1);
      for (const b of [fast, slow]) {
        b.append(f);
        if (bare) { b.off[0] = b.slotStart(0); b.buf.set(f, b.off[0]); }
      }
      const keys = new Uint32Array(KEY_WORDS), offs = new Uint16Array(OFFS_WORDS);
      // A frame extract drops (the 16-byte one) never reaches a program: its bytes alone are compared.
      const parsed = !isDrop(extractKey(fast.buf, fast.off[0], fast.len[0], 1, keys, 0, offs, 0));
      let fork = -1;
      const ctx: ExecCtx = {
        ct(_a, _b, _slot, _depth, _l3, fk): number { fork = fk; return CT_QUEUED; },
        slow(): number { return CT_GO_ON; },
      };
      const r = runProgram(prog, fast, 0, 0, 0, { keys, offs }, ports, ctx);
      const want = applyDpActions(pair, slow, 0, () => undefined);
      if (want === DpDrop.NoHeadroom) { assert.equal(r, DpDrop.NoHeadroom, name); continue; }
      assert.deepEqual(Array.from(fast.frame(0)), Array.from(slow.frame(0)), name);
      if (!withCt || !parsed) continue;
      assert.equal(fork, CT_FORK_IN_PLACE, name);
      const wantKeys = new Uint32Array(KEY_WORDS), wantOffs = new Uint16Array(OFFS_WORDS);
      extractKey(fast.buf, fast.off[0], fast.len[0], 1, wantKeys, 0, wantOffs, 0);
      assert.deepEqual(Array.from(keys), Array.from(wantKeys), `key of ${name}`);
      assert.deepEqual(Array.from(offs), Array.from(wantOffs), `offsets of ${name}`);
    }
  }
});
