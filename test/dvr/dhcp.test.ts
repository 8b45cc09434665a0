/**
 * DHCP in the topology (issue 18 item 1) and dnsmasq's files (item 2): DHCP ports per agent
 * per served network with deterministic MAC and the first free pool addresses, the fields'
 * validation (file:line:field), and the exact hosts/opts/command line for a network.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../../src/errors';
import { parseTopology, Topology } from '../../src/dvr/topology';
import { defaultPools } from '../../src/dvr/dhcp-topology';
import { dhcpServices, dnsmasqArgs, dnsmasqHosts, dnsmasqOpts } from '../../src/dvr/dhcp';
import { parseCidr } from '../../src/dvr/addr';
import { formatIpv4 } from '../../src/packet/addr-text';

const REF = fs.readFileSync(path.join(__dirname, '../../../examples/topologies/reference.yaml'), 'utf8');

function edit(from: string, to: string, text = REF): string {
  assert.ok(text.includes(from), `no "${from}"`);
  return text.replace(from, to);
}

function errOf(text: string): string {
  try {
    parseTopology('ref.yaml', text);
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  assert.fail('expected a ConfigError');
}

const portsText = (t: Topology): string[] =>
  t.dhcpPorts.map((p) => `${p.name} ${p.node}/${p.device} ${p.mac} ${p.fixedIps.map((f) => `${f.subnet}=${f.ip}`).join(' ')}`);

test('reference: one DHCP port per agent (C2, NN in file order) per tenant network, first free pool addresses', () => {
  const t = parseTopology('ref.yaml', REF);
  assert.equal(t.dhcpAgentsPerNetwork, 2);
  assert.deepEqual(portsText(t), [
    'dhcp-C2-A C2/dhcp-A fa:16:3e:00:2b:8a A-v4=10.0.1.3',
    'dhcp-NN-A NN/dhcp-A fa:16:3e:00:ea:3b A-v4=10.0.1.4',
    'dhcp-C2-B C2/dhcp-B fa:16:3e:00:29:f7 B-v4=10.0.2.3',
    'dhcp-NN-B NN/dhcp-B fa:16:3e:00:eb:ce B-v4=10.0.2.4',
  ], '.1 is the gateway, .2 the SNAT port; public has enable_dhcp: false');
  assert.deepEqual(t.ports.map((p) => `${p.name}:${p.addressing}`), ['VM1:dhcp', 'VM2:dhcp']);
});

test('defaults: enable_dhcp true, the dvr_snat node is the only agent, one agent per network', () => {
  const t = parseTopology('ref.yaml', edit('dhcp_agent: true', 'dhcp_agent: false', edit('dhcp_agents_per_network: 2', '')));
  assert.deepEqual(t.dhcpPorts.map((p) => `${p.name}=${p.fixedIps[0].ip}`), ['dhcp-NN-A=10.0.1.3', 'dhcp-NN-B=10.0.2.3']);
  // The same file always gives the same MACs and the VMs do not move them.
  const t2 = parseTopology('ref.yaml', edit('fixed_ips: [10.0.1.10]', 'fixed_ips: [10.0.1.11]', edit('dhcp_agent: true', 'dhcp_agent: false', edit('dhcp_agents_per_network: 2', ''))));
  assert.deepEqual(t2.dhcpPorts.map((p) => p.mac), t.dhcpPorts.map((p) => p.mac));
});

test('allocation_pools: DHCP ports take the first addresses of the first pool; static ports keep their addressing', () => {
  const t = parseTopology('ref.yaml', edit('{ name: A-v4, network: A, cidr: 10.0.1.0/24, gateway_ip: 10.0.1.1 }',
    '{ name: A-v4, network: A, cidr: 10.0.1.0/24, gateway_ip: 10.0.1.1, allocation_pools: [ { start: 10.0.1.100, end: 10.0.1.100 }, { start: 10.0.1.50, end: 10.0.1.60 } ] }',
    edit('binding:host_id: C1, device: vm1-host', 'binding:host_id: C1, device: vm1-host, addressing: static')));
  assert.deepEqual(t.dhcpPorts.filter((p) => p.network === 'A').map((p) => p.fixedIps[0].ip), ['10.0.1.100', '10.0.1.50']);
  assert.equal(t.ports[0].addressing, 'static');
});

test('a given DHCP port (device_owner network:dhcp) is used as it is and is not a VM port', () => {
  const t = parseTopology('ref.yaml', edit('floating_ips:', '  - { name: dA, device_owner: "network:dhcp", mac: fa:16:3e:aa:00:01, network: A,\n' +
    '      fixed_ips: [10.0.1.250], binding:host_id: NN, device: tapdhcp-a }\nfloating_ips:'));
  assert.deepEqual(t.ports.map((p) => p.name), ['VM1', 'VM2']);
  assert.deepEqual(portsText(t).slice(0, 2), [
    'dA NN/tapdhcp-a fa:16:3e:aa:00:01 A-v4=10.0.1.250',
    'dhcp-C2-A C2/dhcp-A fa:16:3e:00:2b:8a A-v4=10.0.1.3',
  ], 'NN serves A first (its port was given), C2 takes the first free address');
});

test('default pools: the subnet minus network, broadcast and gateway', () => {
  const show = (c: string, gw: string): string[] => defaultPools(parseCidr(c)!, gw).map((r) => `${formatIpv4(r.start)}-${formatIpv4(r.end)}`);
  assert.deepEqual(show('10.0.1.0/24', '10.0.1.1'), ['10.0.1.2-10.0.1.254']);
  assert.deepEqual(show('10.0.1.0/24', '10.0.1.254'), ['10.0.1.1-10.0.1.253']);
  assert.deepEqual(show('10.0.1.0/24', '10.0.1.100'), ['10.0.1.1-10.0.1.99', '10.0.1.101-10.0.1.254']);
});

const A_LINE = '{ name: A-v4, network: A, cidr: 10.0.1.0/24, gateway_ip: 10.0.1.1 }';
const withA = (extra: string): string => edit(A_LINE, A_LINE.replace(' }', `, ${extra} }`));

// [what, text, exact message]
const CASES: [string, string, string][] = [
  ['a VM on the address of a DHCP port', edit('fixed_ips: [10.0.1.10]', 'fixed_ips: [10.0.1.3]'),
    'ref.yaml:50: ports[VM1].fixed_ips[0]: 10.0.1.3 is the address of the DHCP port of network A on node C2 (the first free address of the pool of A-v4); pick another'],
  ['more agents per network than agents', edit('dhcp_agents_per_network: 2', 'dhcp_agents_per_network: 3'),
    'ref.yaml:57: dhcp_agents_per_network: 3 agents per network, but 2 node(s) run a DHCP agent'],
  ['a pool holding the gateway', withA('allocation_pools: [ { start: 10.0.1.1, end: 10.0.1.9 } ]'),
    'ref.yaml:34: subnets[A-v4].allocation_pools[0]: the pool 10.0.1.1-10.0.1.9 holds the gateway 10.0.1.1'],
  ['a pool outside the subnet', withA('allocation_pools: [ { start: 10.0.1.5, end: 10.0.2.9 } ]'),
    'ref.yaml:34: subnets[A-v4].allocation_pools[0].end: 10.0.2.9 is outside 10.0.1.0/24'],
  ['a pool that ends before it starts', withA('allocation_pools: [ { start: 10.0.1.9, end: 10.0.1.5 } ]'),
    'ref.yaml:34: subnets[A-v4].allocation_pools[0].end: 10.0.1.5 is before the start 10.0.1.9'],
  ['overlapping pools', withA('allocation_pools: [ { start: 10.0.1.5, end: 10.0.1.9 }, { start: 10.0.1.9, end: 10.0.1.20 } ]'),
    'ref.yaml:34: subnets[A-v4].allocation_pools[1]: the pool overlaps 10.0.1.5-10.0.1.9'],
  ['a bad DNS server', withA('dns_nameservers: [192.0.2.300]'),
    'ref.yaml:34: subnets[A-v4].dns_nameservers[0]: expected an IPv4 address, got "192.0.2.300"'],
  ['a host route next hop off the subnet', withA('host_routes: [ { destination: 10.9.0.0/16, nexthop: 10.0.2.254 } ]'),
    'ref.yaml:34: subnets[A-v4].host_routes[0].nexthop: 10.0.2.254 is outside 10.0.1.0/24'],
  ['a host route with host bits', withA('host_routes: [ { destination: 10.9.0.1/16, nexthop: 10.0.1.254 } ]'),
    'ref.yaml:34: subnets[A-v4].host_routes[0].destination: expected an IPv4 prefix like 10.9.0.0/16 with host bits zero, got "10.9.0.1/16"'],
  ['enable_dhcp not a boolean', withA('enable_dhcp: yes-please'),
    'ref.yaml:34: subnets[A-v4].enable_dhcp: expected true or false'],
  ['an unknown addressing', edit('device: vm1-host }', 'device: vm1-host, addressing: bootp }'),
    'ref.yaml:51: ports[VM1].addressing: unknown addressing "bootp" (expected one of dhcp, static)'],
  ['addressing dhcp on a network nobody serves', withA('enable_dhcp: false').replace('device: vm1-host }', 'device: vm1-host, addressing: dhcp }'),
    'ref.yaml:50: ports[VM1].addressing: network A has no subnet with enable_dhcp'],
  ['a given DHCP port on a node without agent', edit('floating_ips:', '  - { name: dA, device_owner: "network:dhcp", mac: fa:16:3e:aa:00:01, network: A,\n' +
    '      fixed_ips: [10.0.1.250], binding:host_id: C1, device: tapdhcp-a }\nfloating_ips:'),
    'ref.yaml:54: ports[dA].binding:host_id: node C1 runs no DHCP agent (dhcp_agent: false)'],
  ['dhcp_agent not a boolean', edit('dhcp_agent: true ', 'dhcp_agent: 1 '),
    'ref.yaml:16: nodes[C2].dhcp_agent: expected true or false'],
];

for (const [what, text, msg] of CASES) {
  test(`DHCP topology error: ${what}`, () => assert.equal(errOf(text), msg));
}

test('dnsmasq files of network A on NN: hosts of the VM ports, gateway, DNS, host routes; MTU and static range on the command line', () => {
  const t = parseTopology('ref.yaml', withA('dns_nameservers: [192.0.2.53, 192.0.2.54], host_routes: [ { destination: 10.9.0.0/16, nexthop: 10.0.1.254 } ]')
    .replace('floating_ips:', '  - { name: VM3, mac: fa:16:3e:00:01:30, network: A, fixed_ips: [10.0.1.30] }\nfloating_ips:'));
  const svcs = dhcpServices(t, 'NN');
  assert.deepEqual(svcs.map((s) => `${s.network} ${s.port.device} ${s.mtuBytes}`), ['A dhcp-A 1450', 'B dhcp-B 1450']);
  assert.equal(dnsmasqHosts(t, svcs[0]),
    'fa:16:3e:00:01:10,host-10-0-1-10.openstacklocal,10.0.1.10\n' +
    'fa:16:3e:00:01:30,host-10-0-1-30.openstacklocal,10.0.1.30\n', 'every VM port of A, bound or not; no DHCP port');
  assert.equal(dnsmasqOpts(svcs[0]),
    'tag:subnet-A-v4,option:dns-server,192.0.2.53,192.0.2.54\n' +
    'tag:subnet-A-v4,option:classless-static-route,10.9.0.0/16,10.0.1.254,0.0.0.0/0,10.0.1.1\n' +
    'tag:subnet-A-v4,249,10.9.0.0/16,10.0.1.254,0.0.0.0/0,10.0.1.1\n' +
    'tag:subnet-A-v4,option:router,10.0.1.1\n');
  assert.equal(dnsmasqOpts(svcs[1]), 'tag:subnet-B-v4,option:router,10.0.2.1\n');
  const args = dnsmasqArgs(svcs[0], 'ns-dhcp', { pid: '/d/pid', hosts: '/d/host', opts: '/d/opts', leases: '/d/leases' });
  assert.ok(args.includes('--dhcp-range=set:subnet-A-v4,10.0.1.0,static,255.255.255.0,86400s'));
  assert.ok(args.includes('--dhcp-option-force=option:mtu,1450'));
  assert.ok(args.includes('--dhcp-hostsfile=/d/host') && args.includes('--dhcp-optsfile=/d/opts') && args.includes('--interface=ns-dhcp'));
  assert.deepEqual(dhcpServices(t, 'C1'), [], 'C1 runs no agent');
});

test('GRE networks advertise MTU 1458', () => {
  const gre = fs.readFileSync(path.join(__dirname, '../../../examples/topologies/reference-gre.yaml'), 'utf8');
  const t = parseTopology('gre.yaml', gre);
  const svc = dhcpServices(t, 'NN')[0];
  assert.ok(dnsmasqArgs(svc, 'x', { pid: 'p', hosts: 'h', opts: 'o', leases: 'l' }).includes('--dhcp-option-force=option:mtu,1458'));
});
