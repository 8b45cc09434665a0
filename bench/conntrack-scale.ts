/**
 * Conntrack at a million connections (`npm run bench:ct`): set-up rate, lookup rate, memory per
 * entry, and the largest pause of incremental expiry (sweep with the datapath's per-batch budget
 * while the whole table times out at once). Figures are printed: timing depends on the machine.
 * It exits non-zero if a connection is not created or a sweep removes more than its budget.
 * (Was test/dpif/conntrack-scale.test.ts; measurements belong in bench/.)
 */
import os from 'node:os';
import assert from 'node:assert/strict';
import { Conntrack, CS_NEW, CS_TRACKED } from '../src/dpif/conntrack';

const N = Number(process.env.CT_CONNECTIONS ?? 1_000_000);
const BUDGET = 256; // what the datapath sweeps per batch (dpif/datapath.ts CT_SWEEP_PER_BATCH)

function main(): void {
  const ct = new Conntrack({ capacity: N });
  const f = new Uint8Array(42);
  f[12] = 0x08; f[14] = 0x45; f[17] = 28; f[22] = 64; f[23] = 17;
  f[26] = 10; f[30] = 192; f[31] = 0; f[32] = 2; f[33] = 1; // 10.x.x.x -> 192.0.2.1
  f[36] = 0; f[37] = 53; f[38] = 0; f[39] = 8;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    f[27] = (i >>> 16) & 0xff; f[28] = (i >>> 8) & 0xff; f[29] = i & 0xff;
    f[34] = (i >>> 8) & 0xff; f[35] = i & 0xff;
    if (ct.execute(f, 0, 42, 1, true, null, 0, 0, i / 1000) !== (CS_TRACKED | CS_NEW)) assert.fail(`connection ${i}`);
  }
  const setupMs = performance.now() - t0;
  assert.equal(ct.nLive, N);
  // Lookups of existing connections (reply direction).
  const r = new Uint8Array(f);
  r[26] = 192; r[27] = 0; r[28] = 2; r[29] = 1; r[30] = 10;
  r[36] = 0; r[37] = 53;
  const t1 = performance.now();
  for (let i = 0; i < N; i++) {
    r[31] = (i >>> 16) & 0xff; r[32] = (i >>> 8) & 0xff; r[33] = i & 0xff;
    r[38] = (i >>> 8) & 0xff; r[39] = i & 0xff;
    ct.execute(r, 0, 42, 1, false, null, 0, 0, 2000);
  }
  const lookupMs = performance.now() - t1;
  // Everything times out at once (120 s after the replies); sweep as the datapath does.
  let maxPauseMs = 0, calls = 0, removed = 0;
  const pauses: number[] = [];
  const now = 2000 + 120_001;
  let firstMs = 0;
  for (;;) {
    const s = performance.now();
    const n = ct.sweep(now, BUDGET);
    const d = performance.now() - s;
    if (d > maxPauseMs) maxPauseMs = d;
    pauses.push(d);
    if (calls === 0) firstMs = d;
    calls++;
    assert.ok(n <= BUDGET);
    removed += n;
    if (n === 0) break;
  }
  assert.equal(removed, N);
  assert.equal(ct.nLive, 0);
  pauses.sort((x, y) => x - y);
  const p99 = pauses[Math.floor(pauses.length * 0.99)];
  const msg = `conntrack ${N}: setup ${Math.round(N / (setupMs / 1000))} conn/s, ` +
    `lookup ${Math.round(N / (lookupMs / 1000))} pkt/s, ${ct.bytesPerEntry.toFixed(1)} bytes/entry, ` +
    `expiry ${calls} sweeps of <= ${BUDGET}, largest pause ${maxPauseMs.toFixed(3)} ms (p99 ${p99.toFixed(3)} ms, mean ${(pauses.reduce((a, x) => a + x, 0) / calls).toFixed(3)} ms, first ${firstMs.toFixed(3)} ms; load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cpus)`;
  console.log(msg);
}

main();
