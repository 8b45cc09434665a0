/**
 * Issue 17 acceptance: examples/topologies/vlan.yaml in the namespace lab (VLAN networks on
 * the physical network physnet1, a VXLAN network, the flat external network), one flowd per
 * node; `lab check` (east-west, physical wire, north-south) must pass every expectation.
 * Root only; skipped with the reason otherwise. Waits for the lab's `fl-` names to be free
 * (test/helpers/lab-guard.ts); run it under the namespace lock (flock /work/ci/ns.lock).
 * `down` runs at the end, also on failure.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { check, down, up } from '../../src/lab/lab';
import { labSkipReason, waitLabFree } from '../helpers/lab-guard';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const VLAN = path.join(ROOT, 'examples', 'topologies', 'vlan.yaml');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-lab-v17-'));
const skip = labSkipReason(['tcpdump']);

after(async () => {
  await down(dir);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('vlan.yaml: pings across VLAN, VXLAN and external networks, and every lab check passes on the wires', { skip }, async () => {
  await waitLabFree();
  const { pings } = await up(VLAN, dir, () => undefined);
  assert.ok(pings.length >= 12, `${pings.length} pings`);
  for (const p of pings) assert.equal(p.received, p.sent, `${p.from} -> ${p.to} (${p.toIp}): ${p.received}/${p.sent}`);
  const res = await check(dir);
  const failed = res.filter((r) => !r.pass).map((r) => `${r.name}: ${r.detail}`);
  assert.deepEqual(failed, []);
  const names = res.map((r) => r.name);
  // The physical-wire expectations of the issue ran (they name physnet1 and the VIDs).
  for (const want of [/^physnet1: every frame carries its network's V1=VID 101, V2=VID 102$/,
    /^physnet1: no frame carries a tag other than these \(never a local VLAN\)$/,
    /^physnet1: no frame has a gateway MAC as source$/,
    /^physnet1: every routed frame has the sending node's DVR MAC as source$/,
    /^V1: local VLANs C1=1 C2=2 NN=1 differ; VID 101 on the wire/,
    /^VM1->VM3: request C1 -> C2 on physnet1 with VID 102 \(V2\), fa:16:3f:00:00:11 -> fa:16:3e:00:12:30, TTL 63$/,
    /^VM2->VM4: request C2 -> C1 over vxlan 1001/,
    /^SNAT VM3 \(10\.0\.12\.30 on C2\) -> 203\.0\.113\.1 by router \S+ on NN: leaves C2 on physnet1 with VID 102, fa:16:3f:00:00:12 -> fa:16:3e:12:00:02, TTL 63$/,
    /^floating IP 203\.0\.113\.50 \(VM1 10\.0\.11\.10 on C1, router \S+\): reaches VM1 /]) {
    assert.ok(names.some((n) => want.test(n)), `a check matching ${want} ran (${names.length} checks)`);
  }
  await down(dir);
});
