/**
 * examples/topologies/ha.yaml in `h14` namespaces for the HA integration tests
 * (test/integration/ha-daemons.test.ts, ha-ct-sync.test.ts): an underlay bridge, an external
 * bridge with the upstream host 203.0.113.1, VMs on C2, and a flowd per node (C2, NN1, NN2)
 * with its DHCP agent and keepalived under h14- names. Not a test itself.
 *
 * Ownership: everything is made through the caller's Lab (cleanup() removes it);
 * cleanupHaNamespaces() removes what the daemons made themselves (the routers' keepalived
 * namespaces and the DHCP agents' qdhcp namespaces), also after a SIGKILLed daemon.
 */
import assert from 'node:assert/strict';
import { FlowdDaemon, Lab, sh, sleepMs } from './netlab';
import { namespacesWithPrefix } from '../../src/lab/shell';

/** A VM on C2: its namespace, the host end of its veth, MAC and address on network B. */
export interface HaVm {
  readonly ns: string;
  readonly host: string;
  readonly mac: string;
  readonly ip: string;
}

export interface HaNodes {
  /** The upstream host's namespace (203.0.113.1 on eth0). */
  readonly up: string;
  /** C2, NN1, NN2 in this order. */
  readonly daemons: FlowdDaemon[];
  /** NN1, NN2. */
  readonly nn: FlowdDaemon[];
}

const NODES: readonly [string, string, string][] = [
  ['C2', '192.168.100.12', '52:54:00:00:00:12'], ['NN1', '192.168.100.13', '52:54:00:00:00:13'], ['NN2', '192.168.100.14', '52:54:00:00:00:14'],
];

/** Namespaces, wires and daemons of C2, NN1 and NN2 for the topology file `topo`, with `vms` on C2. */
export async function startHaNodes(lab: Lab, topo: string, vms: readonly HaVm[]): Promise<HaNodes> {
  const ul = lab.addNs('-ul');
  const ex = lab.addNs('-ex');
  for (const ns of [ul, ex]) {
    lab.exec(ns, 'ip', 'link', 'add', 'br0', 'type', 'bridge');
    lab.exec(ns, 'ip', 'link', 'set', 'br0', 'up');
  }
  const up = lab.addNs('-up');
  sh('ip', 'link', 'add', 'eth0', 'netns', up, 'address', '52:54:00:ff:00:01', 'type', 'veth', 'peer', 'name', 'h14xup', 'netns', ex);
  lab.exec(ex, 'ip', 'link', 'set', 'h14xup', 'master', 'br0');
  lab.exec(ex, 'ip', 'link', 'set', 'h14xup', 'up');
  lab.exec(up, 'ip', 'addr', 'add', '203.0.113.1/24', 'dev', 'eth0');
  lab.exec(up, 'ip', 'link', 'set', 'eth0', 'up');
  const daemons: FlowdDaemon[] = [];
  for (const [node, ip, mac] of NODES) {
    const ns = lab.addNs(`-${node.toLowerCase()}`);
    const peer = `h14u${node.toLowerCase()}`;
    sh('ip', 'link', 'add', 'eth1', 'netns', ns, 'address', mac, 'type', 'veth', 'peer', 'name', peer, 'netns', ul);
    lab.exec(ul, 'ip', 'link', 'set', peer, 'master', 'br0');
    lab.exec(ul, 'ip', 'link', 'set', peer, 'up');
    lab.exec(ns, 'ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth1');
    lab.exec(ns, 'ip', 'link', 'set', 'eth1', 'up');
    if (node === 'C2') {
      for (const vm of vms) {
        sh('ip', 'link', 'add', vm.host, 'netns', ns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', vm.ns, 'address', vm.mac);
        lab.exec(ns, 'ip', 'link', 'set', vm.host, 'up');
        lab.exec(vm.ns, 'ip', 'link', 'set', 'eth0', 'mtu', '1450');
        lab.exec(vm.ns, 'ip', 'addr', 'add', `${vm.ip}/24`, 'dev', 'eth0');
        lab.exec(vm.ns, 'ip', 'link', 'set', 'eth0', 'up');
        lab.exec(vm.ns, 'ip', 'route', 'add', 'default', 'via', '10.0.2.1');
      }
    } else {
      const xp = `h14x${node.toLowerCase()}`;
      sh('ip', 'link', 'add', 'ext1', 'netns', ns, 'type', 'veth', 'peer', 'name', xp, 'netns', ex);
      lab.exec(ex, 'ip', 'link', 'set', xp, 'master', 'br0');
      lab.exec(ex, 'ip', 'link', 'set', xp, 'up');
      lab.exec(ns, 'ip', 'link', 'set', 'ext1', 'up');
    }
    daemons.push(await lab.startFlowd(ns, node, `node: ${node}\ntopology: ${topo}\ndhcp: { namespace_prefix: h14-${node.toLowerCase()}-, state_dir: ${lab.dir}/dhcp-${node} }\n`,
      20000, ['--ha-ns-prefix', 'h14-']));
  }
  return { up, daemons, nn: daemons.slice(1) };
}

/** Router R's VRRP state on daemon `d` (its one HA router). */
export async function haState(d: FlowdDaemon): Promise<string> {
  const r = await d.request('ha', { action: 'status', format: 'json' });
  assert.ok(Array.isArray(r) && r.length === 1, JSON.stringify(r));
  const x = r[0] as { router: string; state: string };
  assert.equal(x.router, 'R');
  return x.state;
}

/**
 * Waits (up to 15 s) for one of `nn` to be master, then for SNAT to carry a ping from `vm`'s
 * namespace to the upstream; returns the master's index in `nn`.
 */
export async function waitMasterAndSnat(lab: Lab, nn: readonly FlowdDaemon[], vm: string): Promise<number> {
  const t0 = Date.now();
  let m = -1;
  while (m < 0) {
    for (let i = 0; i < nn.length; i++) if ((await haState(nn[i])) === 'master') m = i;
    if (m < 0 && Date.now() - t0 > 15000) assert.fail('no master');
    await sleepMs(50);
  }
  await sleepMs(1000);
  // -w: wait for every reply (a busy machine may send the last one later than -W's 2 x RTT), at most the deadline.
  const warm = lab.run(vm, 'ping', '-c', '3', '-i', '0.2', '-w', '30', '203.0.113.1');
  assert.match(warm.stdout, / 0% packet loss/, `SNAT before the failover:\n${warm.stdout}\n${nn[m].log()}`);
  return m;
}

/** Removes what the daemons made under h14- themselves (keepalived and qdhcp namespaces). */
export function cleanupHaNamespaces(): void {
  const del = (ns: string): void => {
    try { sh('ip', 'netns', 'del', ns); } catch { /* gone */ }
  };
  for (const ns of ['h14-NN1-R', 'h14-NN2-R']) del(ns);
  // DHCP agents' namespaces (h14-<node>-qdhcp-<net>), also those of a SIGKILLed daemon.
  for (const ns of namespacesWithPrefix('h14-')) if (ns.includes('-qdhcp-')) del(ns);
}
