/**
 * Issue 13 acceptance: examples/topologies/security-groups.yaml in the namespace lab, and
 * `lab check` (every check: east-west, north-south, DHCP, and lab-check-sg.ts's security-group
 * checks) passes: with the firewall on every node, a filtered VM's DHCP exchange passes and a VM
 * acting as a DHCP server is dropped. The lab reads a copy of the file (the rule-removal check edits the file the
 * lab reads, and restores it). Negative control: the same connection probe, asked to expect a
 * connection the groups refuse, fails. Root only; `down` runs at the end, also on failure.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { up, down, check } from '../../src/lab/lab';
import { connectionCheck } from '../../src/lab/lab-check-sg';
import { allows } from '../../src/lab/sg-model';
import { loadTopology } from '../../src/dvr/topology';
import { labSkipReason, waitLabFree } from '../helpers/lab-guard';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SRC = path.join(ROOT, 'examples', 'topologies', 'security-groups.yaml');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-sg-lab-'));
const topo = path.join(dir, 'security-groups.yaml');

const skip = labSkipReason(['tcpdump', 'ping']);

after(async () => {
  await down(dir);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('security-groups.yaml: lab up, then every lab check passes (security groups proved on the wires)', { skip }, async () => {
  fs.copyFileSync(SRC, topo);
  await waitLabFree();
  const { pings } = await up(topo, dir, () => undefined);
  assert.ok(pings.length > 0);
  for (const p of pings) assert.equal(p.received, p.sent, `${p.from} -> ${p.to}: ${p.received}/${p.sent}`);

  const res = await check(dir);
  const failed = res.filter((r) => !r.pass).map((r) => `${r.name}: ${r.detail}`);
  assert.deepEqual(failed, []);
  const sg = res.filter((r) => r.name.startsWith('SG: ')).map((r) => r.name);
  const has = (re: RegExp, what: string): void => assert.ok(sg.some((n) => re.test(n)), `no check ${what} among:\n${sg.join('\n')}`);
  has(/tcp\/\d+ C\d -> C\d completes/, 'of an allowed connection across nodes');
  has(/tcp\/\d+ on C\d completes/, 'of an allowed connection on one node');
  has(/^SG: return traffic/, 'of return traffic');
  has(/egress rules refuse .* never leave/, 'of an egress-refused SYN');
  has(/ingress rules refuse .* dropped on/, 'of an ingress-refused SYN');
  has(/spoofed source IP/, 'of a spoofed source IP');
  has(/spoofed source MAC/, 'of a spoofed source MAC');
  has(/spoofed ARP reply/, 'of a spoofed ARP reply');
  has(/as if it were a DHCP server \(udp 67 -> 68/, 'of a VM acting as a DHCP server');
  // With the firewall on every node, DHCP client traffic passes: the exchange on the wires.
  const dhcp = res.filter((r) => r.name.startsWith('DHCP: ')).map((r) => r.name);
  assert.ok(dhcp.some((n) => /OFFERs from every agent/.test(n)) && dhcp.some((n) => /keeps one offer/.test(n)), `DHCP checks: ${dhcp.join('\n')}`);
  has(/allowed address pair 10\.0\.1\.100/, 'of the VIP');
  has(/OPEN1 \(port security off\) sends from/, 'of the port without port security');
  has(/deleting app's rule .*tcp\/5000.* stops the stream/, 'of the deleted tcp/5000 rule');
  has(/meanwhile the stream .*:80 goes on/, 'of the web stream going on');
  assert.equal(fs.readFileSync(topo, 'utf8'), fs.readFileSync(SRC, 'utf8'), 'the topology file is restored');

  // Negative control: a connection the groups refuse, checked against the wrong expectation.
  const t = loadTopology(topo);
  const web1 = t.ports.find((p) => p.name === 'WEB1')!;
  const web2 = t.ports.find((p) => p.name === 'WEB2')!;
  assert.equal(allows(t, web2, web1, 6, 5000), false);
  const wrong = await connectionCheck(web2, web1, 5000, true);
  assert.equal(wrong.pass, false, `${wrong.name}: ${wrong.detail}`);
  const right = await connectionCheck(web2, web1, 5000, false);
  assert.equal(right.pass, true, `${right.name}: ${right.detail}`);
  await down(dir);
});
