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
 * The pure pieces of lab-bench (iperf3 JSON, medians, flowd stats text, the kernel baseline's
 * per-node router MACs and networks) are checked first, without root.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_TOPOLOGY, up, down } from '../../src/lab/lab';
import { readState, vmNs } from '../../src/lab/lab-state';
import { iperfTcp, waitNoNamespaces, median, parseIperfJson, parsePerfStats } from '../../src/lab/lab-bench';
import { kernelRouterMac, nodeNetworks } from '../../src/lab/lab-kernel';
import { loadTopology } from '../../src/dvr/topology';
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

test('lab-bench reads iperf3 JSON (receiver goodput, sender retransmits, error text)', () => {
  const ok = parseIperfJson('{"end":{"sum_sent":{"retransmits":3,"bits_per_second":2e9},"sum_received":{"bits_per_second":1.5e9}}}');
  assert.deepEqual(ok, { bps: 1.5e9, retransmits: 3, error: '' });
  assert.equal(parseIperfJson('{"error":"unable to connect to server: Connection refused"}').error,
    'unable to connect to server: Connection refused');
  assert.match(parseIperfJson('iperf3: error').error, /no JSON/);
});

test('median of an even count is the mean of the middle two; of none, NaN', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

test('lab-bench takes frames, batches and busy time from flowd\'s stats text', () => {
  const text = '  Rx packets:            1000  (250.5 ns/pkt)\n  Rx batches:              40  (25.00 pkts/batch)\n';
  assert.deepEqual(parsePerfStats(text), { rxPackets: 1000, rxBatches: 40, busyNs: 250500 });
  assert.deepEqual(parsePerfStats('nothing'), { rxPackets: 0, rxBatches: 0, busyNs: 0 });
});

test('kernel baseline: per-node router MACs differ from the gateway MAC and between nodes; C1/C2 carry A and B, NN nothing', () => {
  assert.equal(kernelRouterMac('fa:16:3e:0a:00:01', 0), 'fa:16:3e:0a:11:01');
  assert.equal(kernelRouterMac('fa:16:3e:0b:00:01', 1), 'fa:16:3e:0b:12:01');
  const t = loadTopology(DEFAULT_TOPOLOGY);
  const byNode = t.nodes.map((n) => [n.name, nodeNetworks(t, n)]);
  assert.deepEqual(byNode.map(([n, c]) => [n, (c as { networks: string[] }).networks.sort(), (c as { router: string }).router]),
    [['C1', ['A', 'B'], 'R'], ['C2', ['A', 'B'], 'R'], ['NN', [], '']]);
});
