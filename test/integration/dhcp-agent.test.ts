/**
 * The DHCP agent on a node (issue 18 step 2): flowd makes the qdhcp- namespace, plugs it into
 * br-int and runs dnsmasq in it; a VM behind the same br-int gets address, gateway and MTU by
 * DHCP (busybox udhcpc), with the subnet's DNS servers (option 6) and host routes (option 121,
 * plus the default route through the gateway) on the wire; a VM on a GRE network gets MTU 1458;
 * a port added to the topology file gets its lease with dnsmasq reloaded (same PID, SIGHUP),
 * not restarted; an unknown MAC gets no lease.
 * Root, ip netns, dnsmasq and busybox; skipped with the reason otherwise. Prefix d18-.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FlowdDaemon, Lab, labSkipReason, sleepMs } from '../helpers/netlab';
import { obtainLease, writeClientScript } from '../../src/lab/dhcp-client';
import { trySh } from '../../src/lab/shell';

const skip = labSkipReason(['dnsmasq', 'busybox']);
const lab = new Lab('d18-');
const QDHCP = 'd18-n1-qdhcp-A';
const QDHCP_G = 'd18-n1-qdhcp-G';
let daemon: FlowdDaemon;
let nsNode = '';
let topoFile = '';
let script = '';

const TOPO = `
nodes:
  - { name: N1, agent_mode: dvr_snat, local_ip: 192.0.2.1 }
networks:
  - { name: A, network_type: vxlan, segmentation_id: 1001 }
  - { name: G, network_type: gre, segmentation_id: 1002 }
subnets:
  - { name: A-v4, network: A, cidr: 10.18.1.0/24, gateway_ip: 10.18.1.1, dns_nameservers: [192.0.2.53, 192.0.2.54],
      host_routes: [ { destination: 10.99.0.0/16, nexthop: 10.18.1.254 } ] }
  - { name: G-v4, network: G, cidr: 10.18.2.0/24, gateway_ip: 10.18.2.1 }
ports:
  - { name: VM1, mac: "fa:16:3e:18:00:10", network: A, fixed_ips: [10.18.1.10], binding:host_id: N1, device: d18-v1h }
  - { name: VM3, mac: "fa:16:3e:18:00:30", network: G, fixed_ips: [10.18.2.30], binding:host_id: N1, device: d18-v3h }
`;

const pidFile = (): string => path.join(lab.dir, 'dhcp', 'A', 'pid');
const dnsmasqPid = (): number => Number(fs.readFileSync(pidFile(), 'utf8').trim());

async function waitFor(what: string, ok: () => boolean, timeoutMs = 10000): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > timeoutMs) assert.fail(`${what} within ${timeoutMs} ms\n${daemon?.log() ?? ''}`);
    await sleepMs(100);
  }
}

before(async () => {
  if (skip) return;
  nsNode = lab.addNs('n1');
  const vm1 = lab.addNs('vm1');
  lab.veth('v1', vm1, 'v1h', nsNode, { macA: 'fa:16:3e:18:00:10' });
  const vm3 = lab.addNs('vm3');
  lab.veth('v3', vm3, 'v3h', nsNode, { macA: 'fa:16:3e:18:00:30' });
  topoFile = lab.file('topo.yaml', TOPO);
  script = writeClientScript(lab.dir);
  daemon = await lab.startFlowd(nsNode, 'n1',
    `node: N1\ntopology: ${topoFile}\ndhcp: { namespace_prefix: d18-n1-, state_dir: ${path.join(lab.dir, 'dhcp')} }\n`);
  await waitFor('dnsmasq writes its pid file', () => fs.existsSync(pidFile()) && fs.readFileSync(pidFile(), 'utf8').trim() !== '');
});

after(async () => {
  await lab.cleanup();
  // The daemon removes its qdhcp namespace on SIGTERM; this is for a daemon that died.
  trySh('ip', 'netns', 'del', QDHCP);
  trySh('ip', 'netns', 'del', QDHCP_G);
});

test('flowd plugs a qdhcp namespace into br-int: the DHCP port with its MAC, first free address and the MTU', { skip }, () => {
  const show = lab.exec(QDHCP, 'ip', '-o', '-4', 'addr', 'show', 'dev', 'tapdhcp');
  assert.match(show, /inet 10\.18\.1\.2\/24/, 'the first free address of the pool (.1 is the gateway)');
  const link = lab.exec(QDHCP, 'ip', '-o', 'link', 'show', 'dev', 'tapdhcp');
  assert.match(link, /mtu 1450/);
  assert.equal(lab.exec(QDHCP, 'sysctl', '-n', 'net.ipv4.neigh.tapdhcp.ucast_solicit').trim(), '0', 'no unicast probes of the clients dnsmasq answered');
  const ports = daemon.flowctl('dump-ports', 'br-int');
  assert.equal(ports.status, 0, ports.stderr);
  assert.match(ports.stdout, /dhcp-A/);
});

test('a VM gets address, gateway and MTU by DHCP through flowd\'s br-int; the server is the DHCP port', { skip }, () => {
  const lease = obtainLease(lab.name('vm1'), lab.name('v1'), script, path.join(lab.dir, 'vm1.lease'));
  assert.ok(lease, `no lease\n${daemon.log()}`);
  assert.deepEqual({ ip: lease.ip, subnet: lease.subnet, router: lease.router, mtu: lease.mtu, server: lease.serverId },
    { ip: '10.18.1.10', subnet: '255.255.255.0', router: '10.18.1.1', mtu: 1450, server: '10.18.1.2' });
  assert.equal(lease.leaseS, 86400);
  assert.match(lab.exec(lab.name('vm1'), 'ip', '-o', 'link', 'show', 'dev', lab.name('v1')), /mtu 1450/);
  assert.match(lab.exec(lab.name('vm1'), 'ip', 'route', 'show', 'default'), /default via 10\.18\.1\.1/);
});

test('the lease carries the subnet\'s DNS servers (option 6) and host routes (option 121, with the default route), and the VM routes by them', { skip }, () => {
  const lease = obtainLease(lab.name('vm1'), lab.name('v1'), script, path.join(lab.dir, 'vm1-opts.lease'));
  assert.ok(lease, `no lease\n${daemon.log()}`);
  assert.deepEqual(lease.dns, ['192.0.2.53', '192.0.2.54']);
  assert.deepEqual(lease.staticRoutes, ['10.99.0.0/16 via 10.18.1.254', '0.0.0.0/0 via 10.18.1.1']);
  const routes = lab.exec(lab.name('vm1'), 'ip', '-4', 'route', 'show');
  assert.match(routes, /10\.99\.0\.0\/16 via 10\.18\.1\.254/);
  assert.match(routes, /default via 10\.18\.1\.1/);
});

test('a VM on a GRE network gets MTU 1458 (option 26) from its network\'s own dnsmasq', { skip }, async () => {
  await waitFor('the GRE network\'s dnsmasq', () => fs.existsSync(path.join(lab.dir, 'dhcp', 'G', 'pid')));
  const lease = obtainLease(lab.name('vm3'), lab.name('v3'), script, path.join(lab.dir, 'vm3.lease'));
  assert.ok(lease, `no lease\n${daemon.log()}`);
  assert.deepEqual({ ip: lease.ip, router: lease.router, mtu: lease.mtu, server: lease.serverId, dns: lease.dns, routes: lease.staticRoutes },
    { ip: '10.18.2.30', router: '10.18.2.1', mtu: 1458, server: '10.18.2.2', dns: [], routes: [] });
  assert.match(lab.exec(lab.name('vm3'), 'ip', '-o', 'link', 'show', 'dev', lab.name('v3')), /mtu 1458/);
});

test('the DHCP port stays quiet after answering: no ARP probe of the client (over the 5 s delay_first_probe_time)', { skip }, async () => {
  const cap = path.join(lab.dir, 'quiet.pcap');
  const c = lab.spawnIn(nsNode, 'tcpdump', ['-i', lab.name('v1h'), '-U', '-n', '-w', cap, 'arp']);
  await sleepMs(500);
  const lease = obtainLease(lab.name('vm1'), lab.name('v1'), script, path.join(lab.dir, 'vm1b.lease'));
  assert.equal(lease?.ip, '10.18.1.10');
  await sleepMs(7000);
  await lab.stopChild(c, 'SIGINT');
  const arps = lab.run(nsNode, 'tcpdump', '-r', cap, '-n').stdout.split('\n').filter((l) => l.includes('10.18.1.2'));
  assert.deepEqual(arps, []);
});

test('a port added to the topology file gets its lease; dnsmasq is reloaded (SIGHUP), not restarted', { skip }, async () => {
  const pid = dnsmasqPid();
  const vm2 = lab.addNs('vm2');
  lab.veth('v2', vm2, 'v2h', nsNode, { macA: 'fa:16:3e:18:00:20' });
  fs.writeFileSync(topoFile, `${TOPO}  - { name: VM2, mac: "fa:16:3e:18:00:20", network: A, fixed_ips: [10.18.1.20], binding:host_id: N1, device: d18-v2h }\n`);
  await waitFor('the daemon reloads dnsmasq', () => daemon.log().includes('dhcp_reloaded'));
  const hosts = fs.readFileSync(path.join(lab.dir, 'dhcp', 'A', 'host'), 'utf8');
  assert.equal(hosts, 'fa:16:3e:18:00:10,host-10-18-1-10.openstacklocal,10.18.1.10\nfa:16:3e:18:00:20,host-10-18-1-20.openstacklocal,10.18.1.20\n');
  const lease = obtainLease(vm2, lab.name('v2'), script, path.join(lab.dir, 'vm2.lease'));
  assert.equal(lease?.ip, '10.18.1.20', daemon.log());
  assert.equal(dnsmasqPid(), pid, 'the same dnsmasq');
});

test('an unknown MAC gets no lease (static mode)', { skip }, () => {
  const vm2 = lab.name('vm2');
  lab.exec(vm2, 'ip', 'link', 'set', lab.name('v2'), 'address', 'fa:16:3e:18:99:99');
  const lease = obtainLease(vm2, lab.name('v2'), script, path.join(lab.dir, 'unknown.lease'), 2);
  assert.equal(lease, null);
});

test('SIGTERM removes the qdhcp namespaces and stops dnsmasq', { skip }, async () => {
  const pid = dnsmasqPid();
  await daemon.stop();
  assert.equal(trySh('ip', 'netns', 'pids', QDHCP), false, 'namespace gone');
  assert.equal(trySh('ip', 'netns', 'pids', QDHCP_G), false, 'namespace gone');
  assert.equal(fs.existsSync(`/proc/${pid}`), false, 'dnsmasq gone');
});
