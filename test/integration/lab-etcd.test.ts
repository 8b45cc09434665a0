/**
 * `lab up --store etcd --etcd-members 3` (lab/lab-etcd.ts): the reference topology pushed to a
 * three-member etcd in the lab's namespaces, every node's flowd reading it; a VM port added,
 * moved from C1 to C2 and removed through etcd shows on the lab's wires on every node (reachable
 * from VMs on both nodes, then not; how long it took is printed, not asserted: CI machines
 * differ in speed and load); one etcd member lost changes nothing;
 * `flowctl agents` lists the three nodes alive.
 * Root only; skipped with the reason otherwise (and when etcd is not installed). Uses the lab's
 * `fl-` names (waits until no other lab test holds them) and a private state directory; `down`
 * runs at the end, also on failure.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { up, down, plumbPort } from '../../src/lab/lab';
import { readState, saveState, vmNs } from '../../src/lab/lab-state';
import { ping } from '../../src/lab/ping';
import { loadTopology, parseTopology } from '../../src/dvr/topology';
import { labSkipReason, waitLabFree } from '../helpers/lab-guard';
import { etcdSkipReason } from '../helpers/etcd';
import { waitFor } from '../helpers/wait';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const FLOWCTL = path.join(ROOT, 'dist', 'src', 'cli', 'flowctl.js');
const REF = path.join(ROOT, 'examples', 'topologies', 'reference.yaml');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-lab-etcd-'));
const skip = labSkipReason(['tcpdump']) || etcdSkipReason();

after(async () => {
  await down(dir);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs etcdctl in the first member's namespace against the lab's cluster. */
function etcdctl(eps: string, ...args: string[]): string {
  const r = spawnSync('ip', ['netns', 'exec', 'fl-etcd1', 'etcdctl', '--endpoints', eps, ...args], { encoding: 'utf8', timeout: 30000 });
  if (r.status !== 0) throw new Error(`etcdctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const once = (ns: string, ip: string): boolean => spawnSync('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', '0.3', ip]).status === 0;

test('lab from a three-member etcd: a port added, moved and removed through etcd on every node; one member lost', {
  skip, timeout: 900000,
}, async () => {
  await waitLabFree();
  const { pings, state } = await up(REF, dir, () => undefined, { store: 'etcd', etcdMembers: 3 });
  for (const p of pings) assert.equal(p.received, p.sent, `${p.from} -> ${p.to}: ${p.received}/${p.sent}`);
  assert.equal(state.etcd?.length, 3);
  const eps = (state.etcd ?? []).map((m) => `${m.ip}:2379`).join(',');
  const url = state.etcdUrl as string;

  // The agents of the three nodes are listed alive.
  const agents = spawnSync('ip', ['netns', 'exec', 'fl-etcd1', process.execPath, FLOWCTL, 'agents', '--etcd', url], { encoding: 'utf8' }).stdout;
  for (const n of ['C1', 'C2', 'NN']) assert.match(agents, new RegExp(`^${n} +yes `, 'm'), agents);

  // VM3 on C1 in network B: its namespace and link first (as Nova plugs a VM before Neutron binds it).
  // Its address is set by hand (addressing: static): network B has DHCP, and a port there
  // defaults to DHCP addressing, for which plumbPort sets no address (a lease would).
  const vm3 = (node: string): string => `{ name: VM3, mac: "fa:16:3e:00:02:30", network: B, fixed_ips: [10.0.2.30], "binding:host_id": ${node}, device: vm3-host, addressing: static }`;
  const withVm3 = parseTopology('vm3.yaml', fs.readFileSync(REF, 'utf8').replace(/^floating_ips:/m,
    `  - ${vm3('C1')}\nfloating_ips:`));
  const st = readState(dir)!;
  plumbPort(withVm3, withVm3.ports.find((p) => p.name === 'VM3')!, st);
  saveState(st);
  etcdctl(eps, 'put', '/flowd/topology/ports/VM3', vm3('C1'));
  const addMs = await waitFor('VM1 -> VM3 (same node) and VM2 -> VM3 (from C2)',
    () => once(vmNs('VM1'), '10.0.2.30') && once(vmNs('VM2'), '10.0.2.30'));

  // Moved to C2, as a live migration goes: the VM's link comes up on C2 first (its host end
  // moves from C1's namespace to C2's), then the binding follows in etcd. Until C1 and C2
  // apply it, frames for VM3 go to C1, where its link no longer is.
  for (const args of [['-n', 'fl-c1', 'link', 'set', 'vm3-host', 'netns', 'fl-c2'], ['-n', 'fl-c2', 'link', 'set', 'vm3-host', 'up']]) {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    assert.equal(r.status, 0, `ip ${args.join(' ')}: ${r.stderr}`);
  }
  etcdctl(eps, 'put', '/flowd/topology/ports/VM3', vm3('C2'));
  const moveMs = await waitFor('VM3 moved to C2: VM2 -> VM3 (same node) and VM1 -> VM3 (from C1)',
    () => once(vmNs('VM2'), '10.0.2.30') && once(vmNs('VM1'), '10.0.2.30'));

  // One member lost: nothing changes for the nodes.
  const m1 = state.etcd![1];
  process.kill(m1.pid, 'SIGKILL');
  // Removed through etcd (the two members left have the quorum): gone on every node. When the
  // killed member led the cluster, the two left elect a leader first, and a write meanwhile
  // fails ("request timed out, possibly due to previous leader failure"): it is retried for 60 s.
  const left = eps.split(',').filter((e) => !e.startsWith(m1.ip)).join(',');
  for (let t0 = Date.now(); ;) {
    try {
      etcdctl(left, '--command-timeout', '10s', 'del', '/flowd/topology/ports/VM3');
      break;
    } catch (e) {
      if (Date.now() - t0 > 60000) {
        const status = spawnSync('ip', ['netns', 'exec', 'fl-etcd1', 'etcdctl', '--endpoints', eps, 'endpoint', 'status', '-w', 'table'], { encoding: 'utf8' });
        throw new Error(`${(e as Error).message}\n${status.stdout}${status.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const delMs = await waitFor('VM3 unreachable from VM1 and VM2', () => !once(vmNs('VM1'), '10.0.2.30') && !once(vmNs('VM2'), '10.0.2.30'));
  assert.equal(ping(vmNs('VM1'), '10.0.2.20', 3).received, 3, 'VM1 -> VM2 unaffected by the lost member');
  console.log(`lab from etcd: port added -> reachable from both nodes in ${addMs} ms; moved C1 -> C2 -> reachable in ${moveMs} ms; ` +
    `removed -> gone in ${delMs} ms (one of three members killed)`);
  for (const d of st.daemons) {
    const log = fs.readFileSync(d.log, 'utf8');
    assert.doesNotMatch(log, /"topology_rejected"/, `${d.node}: ${log.slice(-500)}`);
  }
  assert.ok(loadTopology(REF).ports.length === 2);
  await down(dir);
});
