/**
 * North-south flows of the reference topology, literal text (issue 8 items 2 and 3): SNAT on
 * NN (tables 0, 45, 50, 51), the floating IP on C1 (table 40 p201, table 50), central floating
 * IPs of dvr_no_external VMs, the learned upstream MAC, conntrack zones, announcements and
 * the topology rules for floating IPs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseTopology } from '../../src/dvr/topology';
import { DvrNodeConfig, nodeConfig } from '../../src/dvr/node-config';
import { routerZones } from '../../src/dvr/ns-plan';
import { announcementFrame, announcementsToSend } from '../../src/dvr/announce';
import { ConfigError } from '../../src/errors';
import { fipPortsPerRouter } from '../helpers/topology-gen';

const TEXT = fs.readFileSync(path.join(__dirname, '../../../examples/topologies/reference.yaml'), 'utf8');
const REF = parseTopology('ref.yaml', TEXT);
const Z = routerZones(REF).get('R')!;

function flowsOf(c: DvrNodeConfig, table: number): string[] {
  return c.bridges.find((b) => b.name === 'br-int')!.flows.map((f) => f.text).filter((t) => t.startsWith(`table=${table},`));
}
const responder = (mac: string, ip: string): string => {
  const ipHex = ip.split('.').reduce((a, x) => a * 256 + Number(x), 0).toString(16);
  return `move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:${mac},load:0x2->NXM_OF_ARP_OP[],` +
    'move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],' +
    `load:0x${mac.replace(/:/g, '').replace(/^0+/, '')}->NXM_NX_ARP_SHA[],load:0x${ipHex}->NXM_OF_ARP_SPA[]`;
};

test('router R gets conntrack zone 42165 (FNV-1a of the name into 4096..61439)', () => {
  assert.equal(Z, 42165);
});

test('NN table 0: sg- ARP answered from the tunnel, frames to sg- MACs go to SNAT, the external side to table 50', () => {
  const t0 = flowsOf(nodeConfig(REF, 'NN'), 0);
  assert.ok(t0.includes(`table=0,priority=6,in_port=1,arp,dl_vlan=2,arp_op=1,arp_tpa=10.0.2.2 actions=${responder('fa:16:3e:0b:00:02', '10.0.2.2')},in_port`));
  assert.ok(t0.includes('table=0,priority=4,in_port=1,dl_vlan=2,dl_dst=fa:16:3e:0b:00:02 actions=resubmit(,45)'));
  assert.ok(t0.includes('table=0,priority=4,in_port=1,dl_vlan=1,dl_dst=fa:16:3e:0a:00:02 actions=resubmit(,45)'));
  assert.ok(t0.includes('table=0,priority=3,in_port=2,vlan_tci=0x0000/0x1fff actions=mod_vlan_vid:3,resubmit(,50)'));
});

test('NN tables 45, 50, 51: commit with nat(src=203.0.113.10) in zone 42165, qg- ARP and echo, de-NAT back from the sg- MAC', () => {
  const nn = nodeConfig(REF, 'NN');
  const out = `mod_dl_src:fa:16:3e:ee:00:10,mod_dl_dst:52:54:00:ff:00:01,mod_vlan_vid:3,output:2`;
  assert.deepEqual(flowsOf(nn, 45), [
    `table=45,priority=10,ip,dl_vlan=1 actions=ct(commit,zone=${Z},nat(src=203.0.113.10)),${out}`,
    `table=45,priority=10,ip,dl_vlan=2 actions=ct(commit,zone=${Z},nat(src=203.0.113.10)),${out}`,
    'table=45,priority=0 actions=drop',
  ]);
  const t50 = flowsOf(nn, 50);
  assert.deepEqual(t50.map((t) => t.split(' actions=')[0]), [
    'table=50,priority=500,arp,dl_vlan=3,arp_op=1,arp_tpa=203.0.113.10',
    'table=50,priority=450,icmp,dl_vlan=3,dl_dst=fa:16:3e:ee:00:10,nw_dst=203.0.113.10,icmp_type=8',
    'table=50,priority=400,ip,dl_vlan=3,dl_dst=fa:16:3e:ee:00:10,nw_dst=203.0.113.10',
    'table=50,priority=0',
  ]);
  assert.equal(t50[0], `table=50,priority=500,arp,dl_vlan=3,arp_op=1,arp_tpa=203.0.113.10 actions=${responder('fa:16:3e:ee:00:10', '203.0.113.10')},in_port`);
  assert.equal(t50[2], `table=50,priority=400,ip,dl_vlan=3,dl_dst=fa:16:3e:ee:00:10,nw_dst=203.0.113.10 actions=ct(table=51,zone=${Z},nat)`);
  assert.equal(t50[3], 'table=50,priority=0 actions=resubmit(,60)');
  assert.deepEqual(flowsOf(nn, 51), [
    `table=51,priority=100,ct_state=+est+trk,ct_zone=${Z},ip,dl_vlan=3,nw_dst=10.0.1.0/24 actions=dec_ttl,mod_dl_src:fa:16:3e:0a:00:02,mod_vlan_vid:1,resubmit(,41)`,
    `table=51,priority=100,ct_state=+rel+trk,ct_zone=${Z},ip,dl_vlan=3,nw_dst=10.0.1.0/24 actions=dec_ttl,mod_dl_src:fa:16:3e:0a:00:02,mod_vlan_vid:1,resubmit(,41)`,
    `table=51,priority=100,ct_state=+est+trk,ct_zone=${Z},ip,dl_vlan=3,nw_dst=10.0.2.0/24 actions=dec_ttl,mod_dl_src:fa:16:3e:0b:00:02,mod_vlan_vid:2,resubmit(,41)`,
    `table=51,priority=100,ct_state=+rel+trk,ct_zone=${Z},ip,dl_vlan=3,nw_dst=10.0.2.0/24 actions=dec_ttl,mod_dl_src:fa:16:3e:0b:00:02,mod_vlan_vid:2,resubmit(,41)`,
    'table=51,priority=0 actions=drop',
  ]);
});

test('C1 floating IP 203.0.113.50: source route at 201 out the fg- MAC, ARP and DNAT in table 50; no SNAT tables', () => {
  const c1 = nodeConfig(REF, 'C1');
  assert.ok(flowsOf(c1, 40).includes('table=40,priority=201,ip,dl_vlan=1,dl_dst=fa:16:3e:0a:00:01,nw_src=10.0.1.10 actions=' +
    'dec_ttl,mod_nw_src:203.0.113.50,mod_dl_src:fa:16:3e:ee:00:11,mod_dl_dst:52:54:00:ff:00:01,mod_vlan_vid:3,output:2'));
  const t50 = flowsOf(c1, 50);
  assert.ok(t50.includes(`table=50,priority=500,arp,dl_vlan=3,arp_op=1,arp_tpa=203.0.113.50 actions=${responder('fa:16:3e:ee:00:11', '203.0.113.50')},in_port`));
  assert.ok(t50.includes('table=50,priority=400,ip,dl_vlan=3,dl_dst=fa:16:3e:ee:00:11,nw_dst=203.0.113.50 actions=' +
    'dec_ttl,mod_nw_dst:10.0.1.10,mod_dl_src:fa:16:3e:0a:00:01,mod_vlan_vid:1,resubmit(,41)'));
  assert.ok(!t50.some((t) => t.includes('203.0.113.10')), 'C1 never answers for the qg- IP');
  assert.deepEqual(flowsOf(c1, 45), []);
  assert.deepEqual(flowsOf(c1, 51), []);
  assert.deepEqual(flowsOf(nodeConfig(REF, 'NN'), 50).filter((t) => t.includes('203.0.113.50')), [], 'NN never answers for the floating IP');
});

test('dvr_no_external: VM2\'s floating IP is served by NN with the qg- MAC (table 45 p100 stateless, table 50 DNAT from the sg- MAC)', () => {
  const t = parseTopology('c.yaml', TEXT.replace(/(name: C2\n\s+agent_mode:) dvr/, '$1 dvr_no_external')
    .replace(/floating_ips:\n/, 'floating_ips:\n  - { ip: 203.0.113.60, port: VM2 }\n'));
  const nn = nodeConfig(t, 'NN');
  assert.equal(flowsOf(nn, 45)[0], 'table=45,priority=100,ip,dl_vlan=2,nw_src=10.0.2.20 actions=' +
    'mod_nw_src:203.0.113.60,mod_dl_src:fa:16:3e:ee:00:10,mod_dl_dst:52:54:00:ff:00:01,mod_vlan_vid:3,output:2');
  assert.ok(flowsOf(nn, 50).includes('table=50,priority=400,ip,dl_vlan=3,dl_dst=fa:16:3e:ee:00:10,nw_dst=203.0.113.60 actions=' +
    'dec_ttl,mod_nw_dst:10.0.2.20,mod_dl_src:fa:16:3e:0b:00:02,mod_vlan_vid:2,resubmit(,41)'));
  assert.deepEqual(nodeConfig(t, 'C2').bridges.map((b) => b.name), ['br-int', 'br-tun']);
});

test('without gateway_mac the upstream MAC is learned from its ARP (tables 48, 49) and asked for by an announcement', () => {
  const t = parseTopology('l.yaml', TEXT.replace(/\n\s+gateway_mac: "52:54:00:ff:00:01",/, ''));
  const nn = nodeConfig(t, 'NN');
  assert.ok(flowsOf(nn, 0).includes('table=0,priority=3,in_port=2,vlan_tci=0x0000/0x1fff actions=mod_vlan_vid:3,resubmit(,48),resubmit(,50)'));
  assert.deepEqual(flowsOf(nn, 48), ['table=48,priority=1,arp,dl_vlan=3,arp_spa=203.0.113.1 actions=learn(table=49,priority=1,' +
    'NXM_OF_VLAN_TCI[0..11],load:NXM_NX_ARP_SHA[]->NXM_OF_ETH_DST[],output:NXM_OF_IN_PORT[])']);
  assert.deepEqual(flowsOf(nn, 49), ['table=49,priority=0 actions=drop']);
  assert.equal(flowsOf(nn, 45)[0], `table=45,priority=10,ip,dl_vlan=1 actions=ct(commit,zone=${Z},nat(src=203.0.113.10)),mod_dl_src:fa:16:3e:ee:00:10,mod_vlan_vid:3,resubmit(,49)`);
  assert.deepEqual(nn.announcements.map((a) => `${a.kind} ${a.senderIp} ${a.senderMac} -> ${a.targetIp} on ${a.bridge}/${a.device}`), [
    'garp 203.0.113.10 fa:16:3e:ee:00:10 -> 203.0.113.10 on br-ex/ext1',
    'request 203.0.113.10 fa:16:3e:ee:00:10 -> 203.0.113.1 on br-ex/ext1',
  ]);
});

test('announcements: a floating IP moved C1 -> C2 makes C2 announce it; the GARP frame is RFC 5227 bytes', () => {
  const moved = parseTopology('m.yaml', TEXT.replace('{ ip: 203.0.113.50, port: VM1 }', '{ ip: 203.0.113.50, port: VM2 }'));
  const c2old = nodeConfig(REF, 'C2');
  const c2new = nodeConfig(moved, 'C2', c2old);
  const send = announcementsToSend(c2old.announcements, c2new.announcements);
  assert.deepEqual(send.map((a) => a.why), ['fg- port of C2 on public', 'floating IP 203.0.113.50 of VM2']);
  assert.deepEqual(announcementsToSend(c2new.announcements, nodeConfig(moved, 'C2', c2new).announcements), [], 'nothing new: nothing sent');
  const f = announcementFrame(send[1]);
  assert.equal(f.length, 60);
  assert.deepEqual(Buffer.from(f.subarray(0, 42)).toString('hex'),
    'ffffffffffff' + 'fa163eee0012' + '0806' + '0001' + '0800' + '06' + '04' + '0001' +
    'fa163eee0012' + 'cb007132' + '000000000000' + 'cb007132');
});

test('topology rules: floating IP without a joining router, without an fg- port on the node, twice on a port', () => {
  const bad = (t: string): string => {
    try { parseTopology('ref.yaml', t); return 'no error'; } catch (e) { return (e as ConfigError).message; }
  };
  assert.equal(bad(TEXT.replace(/ {2}- \{ node: C1, network: public, ip: 203\.0\.113\.11, mac: fa:16:3e:ee:00:11 \}\n/, '')),
    'ref.yaml:54: floating_ips[0].port: node C1, where port VM1 is bound, has no fg- port on public: ' +
    'add { node: C1, network: public, ip: ..., mac: ... } to fip_agent_gateways');
  assert.equal(bad(TEXT.replace('floating_ips:\n', 'floating_ips:\n  - { ip: 203.0.113.51, port: VM1 }\n')),
    'ref.yaml:56: floating_ips[1].port: port VM1 already has a floating IP');
  assert.match(bad(TEXT.replace(/ {4}external_gateway: .*\n/, '')),
    /floating_ips\[0\]\.port: no router joins a subnet of port VM1 to external network public/);
});

/** reference.yaml with its fg- ports written the old way: per router (`routers[R].fip_ports`). */
const PER_ROUTER = fipPortsPerRouter(TEXT);

test('fg- ports per router (the old shape) convert to one per node, each entry named by a deprecation with the fix', () => {
  assert.match(PER_ROUTER, /^ {4}fip_ports:\n {6}- \{ node: C1, ip: 203\.0\.113\.11/m);
  const old = parseTopology('ref.yaml', PER_ROUTER);
  assert.deepEqual(old.fipGateways, REF.fipGateways);
  assert.deepEqual(old.deprecations, [46, 47, 48].map((line, i) => {
    const g = REF.fipGateways[i];
    return `ref.yaml:${line}: routers[R].fip_ports[${i}]: deprecated: fg- ports are per node per external network, shared by the node's routers ` +
      `(Neutron's floating IP agent gateway port); write { node: ${g.node}, network: public, ip: ${g.ip}, mac: ${g.mac} } under the top-level fip_agent_gateways instead`;
  }));
  assert.deepEqual(REF.deprecations, []);
  // The same flows either way.
  for (const n of ['C1', 'C2', 'NN']) {
    assert.deepEqual(nodeConfig(old, n).bridges.map((b) => b.flows.map((f) => f.text)), nodeConfig(REF, n).bridges.map((b) => b.flows.map((f) => f.text)));
  }
});

/** reference.yaml with a second router R2 (subnet C-v4 on network C, VM3 on C1 with a floating IP). */
function twoRouters(r2FipPorts: string): string {
  return TEXT
    .replace('subnets:\n', 'subnets:\n  - { name: C-v4, network: C, cidr: 10.0.3.0/24, gateway_ip: 10.0.3.1 }\n')
    .replace('networks:\n', 'networks:\n  - { name: C, network_type: vxlan, segmentation_id: 1003 }\n')
    .replace('fip_agent_gateways:', '  - name: R2\n    interfaces: [{ subnet: C-v4, mac: fa:16:3e:0c:00:01 }]\n' +
      `    external_gateway: { network: public, ip: 203.0.113.20, mac: fa:16:3e:ee:00:20 }\n${r2FipPorts}fip_agent_gateways:`)
    .replace('floating_ips:\n', '  - { name: VM3, mac: fa:16:3e:00:03:30, network: C, fixed_ips: [10.0.3.30], binding:host_id: C1, device: vm3-host }\n' +
      'floating_ips:\n  - { ip: 203.0.113.51, port: VM3 }\n');
}

test('two routers with floating IPs on one node share its one fg- port (one ARP answer, one GARP, both FIPs leave from its MAC)', () => {
  const c1 = nodeConfig(parseTopology('two.yaml', twoRouters('')), 'C1');
  const fg = 'fa:16:3e:ee:00:11';
  assert.deepEqual(flowsOf(c1, 50).filter((f) => f.includes('arp_tpa=203.0.113.11')).length, 1);
  assert.deepEqual(flowsOf(c1, 50).filter((f) => f.includes('nw_dst=203.0.113.11,icmp_type=8')).length, 1);
  const out = flowsOf(c1, 40).filter((f) => f.includes('mod_nw_src:203.0.113.5'));
  assert.deepEqual(out.map((f) => /mod_nw_src:([\d.]+),mod_dl_src:([0-9a-f:]+)/.exec(f)!.slice(1).join(' ')).sort(),
    [`203.0.113.50 ${fg}`, `203.0.113.51 ${fg}`]);
  assert.deepEqual(c1.announcements.map((a) => a.why), ['fg- port of C1 on public', 'floating IP 203.0.113.51 of VM3', 'floating IP 203.0.113.50 of VM1']);
});

test('the old per-router shape: a second router naming another fg- port for the same node and network is refused with the fix', () => {
  const bad = (t: string): string => {
    try { parseTopology('two.yaml', t); return 'no error'; } catch (e) { return (e as ConfigError).message; }
  };
  const text = twoRouters('    fip_ports: [{ node: C1, ip: 203.0.113.21, mac: fa:16:3e:ee:00:21 }]\n');
  const lineOf = (x: string): number => text.split('\n').findIndex((l) => l.includes(x)) + 1;
  assert.equal(bad(text), `two.yaml:${lineOf('203.0.113.21')}: routers[R2].fip_ports[0]: node C1 already has its fg- port on public ` +
    `(203.0.113.11 fa:16:3e:ee:00:11, line ${lineOf('{ node: C1, network: public')}): ` +
    'one per node per external network, shared by its routers; delete this entry (deprecated: fg- ports are per node per external network, ' +
    "shared by the node's routers (Neutron's floating IP agent gateway port); write { node: C1, network: public, ip: 203.0.113.21, mac: fa:16:3e:ee:00:21 } " +
    'under the top-level fip_agent_gateways instead)');
  // The same address as the node's port: read, with the deprecation.
  const same = parseTopology('two.yaml', twoRouters('    fip_ports: [{ node: C1, ip: 203.0.113.11, mac: fa:16:3e:ee:00:11 }]\n'));
  assert.equal(same.fipGateways.length, 3);
  assert.equal(same.deprecations.length, 1);
  // Two fg- ports for one node and network in fip_agent_gateways.
  assert.match(bad(TEXT.replace('  - { node: C2, network: public', '  - { node: C1, network: public')),
    /^two\.yaml:47: fip_agent_gateways\[1\]\.node: node C1 already has its fg- port on public \(line 46\): one per node per external network$/);
});
