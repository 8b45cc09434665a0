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
  assert.deepEqual(send.map((a) => a.why), ['fg- port of router R on C2', 'floating IP 203.0.113.50 of VM2']);
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
  assert.equal(bad(TEXT.replace(/ {6}- \{ node: C1, ip: 203\.0\.113\.11, mac: fa:16:3e:ee:00:11 \}\n/, '')),
    'ref.yaml:54: floating_ips[0].port: router R has no fip_ports entry (fg- port) for node C1 where port VM1 is bound');
  assert.equal(bad(TEXT.replace('floating_ips:\n', 'floating_ips:\n  - { ip: 203.0.113.51, port: VM1 }\n')),
    'ref.yaml:56: floating_ips[1].port: port VM1 already has a floating IP');
  assert.match(bad(TEXT.replace(/ {4}external_gateway: .*\n {4}fip_ports:\n( {6}- .*\n){3}/, '')),
    /floating_ips\[0\]\.port: no router joins a subnet of port VM1 to external network public/);
});
