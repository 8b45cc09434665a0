/**
 * Issue 7: iperf3 TCP between VMs on different nodes over VXLAN through the flowd lab.
 * The reference topology comes up (one flowd per node), a 2 s iperf3 run VM1 -> VM2 (routed on
 * C1, VNI 1002 to C2) completes without error and moves data, every daemon is still running,
 * and the lab goes down again. The figures against kernel forwarding are lab-bench's job
 * (docs/lab-bench.md); this only shows the path carries TCP.
 *
 * Root, `ip netns`, the native addon and iperf3; skipped with the reason otherwise. Uses the
 * lab's `fl-` names with a private state dir; waits (bounded) while another test holds `fl-`
 * namespaces rather than touching them; `down` runs in `after`, also on failure.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { up, down, readState, vmNs } from '../../src/cli/lab';
import { iperfTcp, waitNoNamespaces, DEFAULT_TOPOLOGY } from '../../src/cli/lab-bench';
import { nativeAvailable } from '../../src/native/io';

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (namespaces, AF_PACKET)';
  if (!nativeAvailable()) return 'native addon not built (scripts/build-native.sh)';
  if (spawnSync('which', ['iperf3']).status !== 0) return 'iperf3 not installed';
  if (spawnSync('ip', ['netns', 'list']).status !== 0) return 'ip netns does not work here';
  return false;
}
const skip = skipReason();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-lab-iperf-'));

after(async () => {
  await down(dir);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('iperf3 TCP VM1 -> VM2 across the flowd lab (routed on C1, VXLAN to C2) moves data without error', { skip, timeout: 180000 }, async () => {
  await waitNoNamespaces('fl-', 120000, () => undefined);
  const { pings } = await up(DEFAULT_TOPOLOGY, dir, () => undefined);
  for (const p of pings) assert.equal(p.received, p.sent, `${p.from} -> ${p.to}: ${p.received}/${p.sent}`);
  const r = await iperfTcp(vmNs('VM1'), vmNs('VM2'), '10.0.2.20', 2, false);
  console.log(`flowd lab iperf3 TCP VM1 -> VM2: ${(r.bps / 1e9).toFixed(3)} Gbit/s, ${r.retransmits} retransmits`);
  assert.equal(r.error, '');
  assert.ok(r.bps > 0, 'throughput > 0');
  const st = readState(dir)!;
  for (const d of st.daemons) {
    const pid = Number(fs.readFileSync(d.pidFile, 'utf8').trim());
    assert.doesNotThrow(() => process.kill(pid, 0), `flowd of ${d.node} still running`);
  }
  await down(dir);
  assert.equal(readState(dir), null, 'lab down removed its state');
});
