/**
 * Issue 15 item 2: `lab check` derives its checks from the topology it runs on. The lab up on
 * examples/topologies/multi-router.yaml (four nodes, two routers with gateways, a GRE network
 * next to VXLAN ones, two projects with the same subnet, C1's one fg- port shared by both
 * routers' floating IPs, a floating IP of a dvr_no_external node served centrally on NN); then
 * the whole `lab check`: every check passes, and there is one for each scenario the file has.
 * Root only (namespaces, raw sockets, tcpdump); skipped with the reason otherwise. Uses the
 * lab's own `fl-` names and a private state directory; `down` runs also on failure.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { check, down, up } from '../../src/lab/lab';
import { labSkipReason, waitLabFree } from '../helpers/lab-guard';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const FILE = path.join(ROOT, 'examples', 'topologies', 'multi-router.yaml');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-multi-router-'));
const skip = labSkipReason(['tcpdump']);

after(async () => {
  await down(dir);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('multi-router.yaml: lab up names each VM\'s own way out; lab check covers every pair, router, floating IP and the project isolation, and passes', { skip }, async () => {
  await waitLabFree();
  let printed = '';
  const { pings } = await up(FILE, dir, (s) => { printed += s; });
  for (const p of pings) assert.equal(p.received, p.sent, `${p.from} -> ${p.to}: ${p.received}/${p.sent}\n${printed}`);
  assert.match(printed, /BL2 \(10\.0\.1\.20 on C2\) -> upstream 203\.0\.113\.1 SNAT on NN to 203\.0\.113\.20 \(router B\)/);
  assert.match(printed, /VM2 \(10\.0\.2\.20 on C2\) -> upstream 203\.0\.113\.1 SNAT on NN to 203\.0\.113\.10 \(router R\)/);
  assert.match(printed, /VM3 \(10\.0\.1\.30 on C3\) -> upstream 203\.0\.113\.1 as floating IP 203\.0\.113\.51, centrally on NN/);

  const res = await check(dir);
  const text = res.map((r) => `${r.pass ? 'PASS' : 'FAIL'} ${r.name}: ${r.detail}`).join('\n');
  assert.deepEqual(res.filter((r) => !r.pass).map((r) => `${r.name}: ${r.detail}`), [], text);
  const has = (re: RegExp, what: string): void => assert.ok(res.some((r) => re.test(r.name)), `no check for ${what}\n${text}`);
  // Each router's SNAT on its own address, and its qg- port.
  has(/^SNAT VM2 .* by router R on NN: NN's external wire: fa:16:3e:ee:00:10 -> .*203\.0\.113\.10 ->/, 'R\'s SNAT');
  has(/^SNAT BL2 .* by router B on NN: NN's external wire: fa:16:3e:ee:00:20 -> .*203\.0\.113\.20 ->/, 'B\'s SNAT');
  has(/^SNAT VM2 .*: leaves C2 for NN: .*gre key 1002/, 'the GRE key of red-b');
  has(/^qg- of router B: only fa:16:3e:ee:00:20 answers/, 'B\'s qg-');
  // Every floating IP: two routers' on C1 with its one fg- MAC, the dvr_no_external one on NN.
  has(/^floating IP 203\.0\.113\.50 .*: only C1 answers who-has 203\.0\.113\.50, with its fg- MAC fa:16:3e:ee:00:11/, 'VM1\'s floating IP');
  has(/^floating IP 203\.0\.113\.52 .*router B\): only C1 answers who-has 203\.0\.113\.52, with its fg- MAC fa:16:3e:ee:00:11/, 'BL1\'s floating IP');
  has(/^floating IP 203\.0\.113\.51 .*central on NN.*: the request crosses NN -> C3: .* vxlan 1001/, 'VM3\'s central floating IP');
  // Pairs: routed across VXLAN/GRE, switched on one network, and the isolation of red and blue.
  has(/^VM1->VM2: GRE protocol 0x6558, key 1002/, 'a routed pair into GRE');
  has(/^BL1->BL2: inner fa:16:3e:b1:00:10 -> fa:16:3e:b1:00:20, TTL 64/, 'a switched pair');
  has(/^isolation BL2 \(blue-a\) -> VM3 \(red-a, 10\.0\.1\.30\): no reply/, 'blue -> red');
  has(/^isolation BL2 \(blue-a\) -> VM1 \(red-a, 10\.0\.1\.10\): answered by BL1 of BL2's own project/, 'blue -> red where blue has the same address');
  has(/^isolation VM3 \(red-a\) -> BL2 \(blue-a, 10\.0\.1\.20\): nothing of it crosses a tunnel with blue-a's VNI 2001/, 'red -> blue on the wire');
  await down(dir);
});
