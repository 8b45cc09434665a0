/**
 * flowd with its topology in a real etcd (three members on loopback, started by the test):
 * a port added, moved to another node and back, and removed through etcd shows on the wire
 * (ping between two namespaces through the daemon; how long it took is printed, not asserted:
 * CI machines differ in speed and load); a bad value is refused with
 * its reason in the log and forwarding goes on; the daemon's etcd member stopped while the
 * cluster takes a change: forwarding is unaffected, the log says so, and after the restart the
 * change made meanwhile is applied; `flowctl agents` lists the daemon alive.
 *
 *   et-a: et-v1g 10.0.1.10 ── et-v1 ┐
 *                                   ├ flowd C1 (root namespace; etcd on 127.0.0.1 is reachable)
 *   et-b: et-v2g 10.0.1.20 ── et-v2 ┘   underlay et-ul 10.254.0.1 ── et-ulp (et-u)
 *
 * Root, `ip netns`, ping, etcd; skipped with the reason otherwise. Prefix et-.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Lab, labSkipReason, sh, FLOWCTL_JS, FLOWD_JS } from '../helpers/netlab';
import { EtcdCluster, etcdSkipReason } from '../helpers/etcd';
import { EtcdClient, parseEtcdUrl } from '../../src/control/etcd-client';
import { request } from '../../src/control/client';
import { trySh } from '../../src/lab/shell';
import { waitFor } from '../helpers/wait';

const skip = labSkipReason(['ping']) || etcdSkipReason();
const lab = new Lab('et-');
const etcd = new EtcdCluster(24381, 3);
const rootLinks = ['et-v1', 'et-v2', 'et-ul'];
let daemon: ChildProcess | null = null;
let nsA = '';

const TOPOLOGY = `
nodes:
  - { name: C1, agent_mode: dvr, local_ip: 10.254.0.1, underlay: { device: et-ul } }
  - { name: C2, agent_mode: dvr, local_ip: 10.254.0.2 }
networks:
  - { name: A, network_type: vxlan, segmentation_id: 1001 }
subnets:
  - { name: A-v4, network: A, cidr: 10.0.1.0/24, gateway_ip: 10.0.1.1 }
ports:
  - { name: VM1, mac: "02:e7:00:00:00:01", network: A, fixed_ips: [10.0.1.10], binding:host_id: C1, device: et-v1 }
`;
const vm2 = (node: string, mac = '02:e7:00:00:00:02'): string =>
  `{ name: VM2, mac: "${mac}", network: A, fixed_ips: [10.0.1.20], binding:host_id: ${node}, device: et-v2 }`;

before(async () => {
  if (skip) return;
  for (const l of rootLinks) trySh('ip', 'link', 'del', l);
  nsA = lab.addNs('a');
  const nsB = lab.addNs('b');
  const nsU = lab.addNs('u');
  for (const [host, guest, ns, mac, ip] of [['et-v1', 'et-v1g', nsA, '02:e7:00:00:00:01', '10.0.1.10/24'],
    ['et-v2', 'et-v2g', nsB, '02:e7:00:00:00:02', '10.0.1.20/24'], ['et-ul', 'et-ulp', nsU, '', '']]) {
    sh('ip', 'link', 'add', host, 'type', 'veth', 'peer', 'name', guest, 'netns', ns);
    sh('ip', 'link', 'set', host, 'up');
    if (mac !== '') lab.exec(ns, 'ip', 'link', 'set', guest, 'address', mac);
    if (ip !== '') lab.exec(ns, 'ip', 'addr', 'add', ip, 'dev', guest);
    lab.exec(ns, 'ip', 'link', 'set', guest, 'up');
  }
  sh('ip', 'addr', 'add', '10.254.0.1/24', 'dev', 'et-ul');
  await etcd.start();
});

after(async () => {
  if (daemon !== null && daemon.pid !== undefined && daemon.exitCode === null && daemon.signalCode === null) {
    const gone = new Promise<void>((r) => daemon?.once('exit', () => r()));
    try { process.kill(daemon.pid, 'SIGTERM'); } catch { /* gone */ }
    const t = setTimeout(() => { try { if (daemon?.pid !== undefined) process.kill(daemon.pid, 'SIGKILL'); } catch { /* gone */ } }, 3000);
    await gone;
    clearTimeout(t);
  }
  await etcd.cleanup();
  for (const l of rootLinks) trySh('ip', 'link', 'del', l);
  await lab.cleanup();
});

function flowctl(...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [FLOWCTL_JS, ...args], { encoding: 'utf8', timeout: 30000 });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/**
 * One ping of 10.0.1.20 from et-a, `waitS` to answer. A short wait serves polls for "answers
 * now" (a late reply only costs a poll); a check that it does NOT answer comes after the
 * daemon shows the change, so a slow machine cannot make it pass early.
 */
function pingOnce(waitS = 0.2): boolean {
  return lab.run(nsA, 'ping', '-c', '1', '-W', String(waitS), '10.0.1.20').status === 0;
}

test('ports added, moved and removed through etcd; bad values refused; etcd member down and back', { skip, timeout: 120000 }, async () => {
  const all = etcd.url('et-int');
  const member0 = `etcd://127.0.0.1:${etcd.clientPort(0)}/et-int`;
  const topoFile = lab.file('topo.yaml', TOPOLOGY);
  const push = flowctl('topology', 'push', topoFile, '--etcd', all);
  assert.equal(push.status, 0, push.stderr);
  assert.match(push.stdout, /5 put, 0 deleted, 0 unchanged/);

  // The daemon talks to member 0 only, so stopping that member cuts it off from etcd.
  const socket = path.join(lab.dir, 'c1.sock');
  const logFile = path.join(lab.dir, 'c1.log');
  const fd = fs.openSync(logFile, 'w');
  daemon = spawn(process.execPath, [FLOWD_JS, '--node', 'C1', '--topology', member0, '--socket', socket], { stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  const log = (): string => fs.readFileSync(logFile, 'utf8');
  const logTail = (): string => log().slice(-2000);
  await waitFor('the daemon\'s socket', () => fs.existsSync(socket), { detail: logTail });
  await request(socket, 'show', {}, 5000);
  const kv = new EtcdClient(parseEtcdUrl(all).endpoints);
  const key = '/et-int/topology/ports/VM2';
  const dump = (br: string): string => flowctl('--socket', socket, 'dump-flows', br).stdout;

  // Added: VM2 on this node -> the ping answers.
  await kv.put(key, vm2('C1'));
  const addMs = await waitFor('VM2 added: 10.0.1.20 answers', pingOnce, { detail: logTail });
  // Moved to C2: its traffic now leaves through a VXLAN port to 10.254.0.2, the local ping stops.
  await kv.put(key, vm2('C2'));
  const moveMs = await waitFor('VM2 moved away: a VXLAN port to 10.254.0.2, et-v2 and its flow gone', () => {
    const shown = flowctl('--socket', socket, 'show').stdout;
    return /vxlan-0afe0002\): vxlan/.test(shown) && !/et-v2/.test(shown) && !/dl_dst=02:e7:00:00:00:02/.test(dump('br-int'));
  }, { detail: logTail });
  assert.ok(!pingOnce(1), '10.0.1.20 no longer answers here');
  // Back to C1.
  await kv.put(key, vm2('C1'));
  const backMs = await waitFor('VM2 moved back: 10.0.1.20 answers', pingOnce, { detail: logTail });
  assert.match(dump('br-int'), /dl_dst=02:e7:00:00:00:02 actions=strip_vlan,output:/);
  console.log(`etcd change -> on the wire: add ${addMs} ms, move away ${moveMs} ms, move back ${backMs} ms`);

  // A bad MAC: refused with the key, field and reason; VM2 keeps working on the last good topology.
  await kv.put(key, vm2('C1', '02:e7:00:00:00'));
  await waitFor('the rejection logged', () => /"topology_rejected"/.test(log()), { detail: logTail });
  assert.match(log(), /"topology_rejected".*et-int\/topology\/ports\/VM2:1: ports\[VM2\]\.mac: /);
  assert.ok(pingOnce(2), 'still forwarding on the last good topology');
  await kv.put(key, vm2('C1'));

  // Agents.
  await waitFor('C1 listed alive by flowctl agents', () => /^C1 +yes +dvr +10\.254\.0\.1/m.test(flowctl('agents', '--etcd', all).stdout));

  // Member 0 stopped: forwarding goes on (a ping every 20 ms), the cluster takes a removal meanwhile.
  await waitFor('10.0.1.20 answering before member 0 stops', pingOnce, { detail: logTail });
  // -w: ping ends when all 50 are answered (or after 60 s); with -W a reply later than 2 x the
  // largest round trip after the last request would count as lost on a busy machine.
  const pinger = lab.runAsync(nsA, 'ping', ['-c', '50', '-i', '0.02', '-w', '60', '10.0.1.20'], 90000);
  await etcd.stopMember(0);
  await kv.deleteKey(key);
  const res = await pinger;
  assert.match(res.stdout, / 50 received/, 'no loss while etcd is away and VM2 was removed there meanwhile');
  await waitFor('etcd_unreachable logged', () => /"etcd_unreachable"/.test(log()), { detail: logTail });
  // Back: the removal made meanwhile is applied, the ping stops.
  etcd.startMember(0);
  await etcd.waitReady(20000, 0);
  await waitFor('the removal applied after the reconnect: etcd_reconnected logged, VM2\'s flow gone',
    () => /"etcd_reconnected"/.test(log()) && !/dl_dst=02:e7:00:00:00:02/.test(dump('br-int')), { detail: logTail });
  assert.ok(!pingOnce(1), '10.0.1.20 no longer answers');
});
