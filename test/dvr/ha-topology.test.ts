/**
 * L3 HA in the topology (issue 14 item 1): the HA vocabulary and its errors (file:line:field),
 * VRID allocation per project and its limit of 254, the HA network and ha- ports, and the
 * master-only SNAT part: the same node's flows with and without mastership differ by exactly
 * the SNAT flows, which a topology diff installs or removes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../../src/errors';
import { parseTopology } from '../../src/dvr/topology';
import { haRouters } from '../../src/dvr/ha';
import { nodeConfig } from '../../src/dvr/node-config';
import { diffNodeConfigs } from '../../src/dvr/diff';

const HA = fs.readFileSync(path.join(__dirname, '../../../examples/topologies/ha.yaml'), 'utf8');
const REF = fs.readFileSync(path.join(__dirname, '../../../examples/topologies/reference.yaml'), 'utf8');

function errOf(text: string): string {
  try {
    parseTopology('ha.yaml', text);
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  assert.fail('expected a ConfigError');
}

function edit(from: string, to: string, text = HA): string {
  assert.ok(text.includes(from), `no "${from}"`);
  return text.replace(from, to);
}

test('ha.yaml: router R is HA on NN1 and NN2 with a stable VRID, ha- ports on one HA network', () => {
  const t = parseTopology('ha.yaml', HA);
  assert.equal(t.ha.advertIntMs, 100);
  assert.equal(t.ha.netCidr.text, '169.254.192.0/18');
  assert.equal(t.ha.networkType, 'vxlan');
  const [h] = haRouters(t);
  assert.deepEqual(t.routers[0].ha, { ha: true, l3Agents: ['NN1', 'NN2'], project: 'admin', vrid: 212 });
  assert.equal(h.vip, '169.254.0.212/24');
  assert.equal(h.device, 'ha-d70c14b5');
  assert.deepEqual(h.network, { project: 'admin', name: 'HA network tenant admin', type: 'vxlan', segmentationId: 0xffffff, index: 0 });
  assert.deepEqual(h.ports.map((p) => `${p.node} ${p.ip}/${p.prefixLen} ${p.mac}`),
    ['NN1 169.254.195.81/18 fa:16:3d:00:d4:00', 'NN2 169.254.195.82/18 fa:16:3d:00:d4:01']);
});

test('l3_agents defaults to the first three dvr_snat nodes; the Neutron defaults apply', () => {
  const t = parseTopology('ha.yaml', edit('    l3_agents: [NN1, NN2]\n', '', edit('ha_vrrp_advert_int: 0.1\n', '')));
  assert.deepEqual(t.routers[0].ha.l3Agents, ['NN1', 'NN2']);
  assert.equal(t.ha.advertIntMs, 2000);
});

// [what, from, to, exact message]
const CASES: [string, string, string, string][] = [
  ['an l3 agent that is not dvr_snat', 'l3_agents: [NN1, NN2]', 'l3_agents: [NN1, C1]',
    "ha.yaml:51: routers[R].l3_agents[1]: node C1 is dvr; the centralized part runs on dvr_snat nodes"],
  ['an unknown l3 agent', 'l3_agents: [NN1, NN2]', 'l3_agents: [NN1, NN9]',
    'ha.yaml:51: routers[R].l3_agents[1]: unknown node "NN9"'],
  ['four l3 agents (max_l3_agents_per_router is 3)', 'l3_agents: [NN1, NN2]', 'l3_agents: [NN1, NN2, NN1, NN2]',
    'ha.yaml:51: routers[R].l3_agents: an HA router runs on 2 or 3 l3 agents (max_l3_agents_per_router), got 4'],
  ['one l3 agent', 'l3_agents: [NN1, NN2]', 'l3_agents: [NN1]',
    'ha.yaml:51: routers[R].l3_agents: an HA router runs on 2 or 3 l3 agents (max_l3_agents_per_router), got 1'],
  ['an agent listed twice', 'l3_agents: [NN1, NN2]', 'l3_agents: [NN1, NN1]',
    'ha.yaml:51: routers[R].l3_agents[1]: node NN1 is listed twice'],
  ['l3_agents on a router without ha', '    ha: true\n', '',
    'ha.yaml:50: routers[R].l3_agents: l3_agents is for HA routers (set ha: true)'],
  ['an advert interval finer than VRRPv3 centiseconds', 'ha_vrrp_advert_int: 0.1', 'ha_vrrp_advert_int: 0.125',
    'ha.yaml:37: ha_vrrp_advert_int: expected seconds in 0.01..40.95 in steps of 0.01, got 0.125'],
  ['an unknown HA network type', 'ha_vrrp_advert_int: 0.1', 'ha_vrrp_advert_int: 0.1\nl3_ha_network_type: flat',
    'ha.yaml:38: l3_ha_network_type: expected vxlan or gre, got "flat"'],
  ['a bad HA cidr', 'l3_ha_net_cidr: 169.254.192.0/18', 'l3_ha_net_cidr: 169.254.192.1/18',
    'ha.yaml:36: l3_ha_net_cidr: expected an IPv4 prefix like 169.254.192.0/18 with host bits zero, got "169.254.192.1/18"'],
  ['an HA cidr too small for the VRID', 'l3_ha_net_cidr: 169.254.192.0/18', 'l3_ha_net_cidr: 169.254.192.0/24',
    'ha.yaml:36: l3_ha_net_cidr: 169.254.192.0/24 is too small for the ha- ports (host 850 is needed; a /22 or larger holds every VRID)'],
];

for (const [what, from, to, msg] of CASES) {
  test(`HA topology error: ${what}`, () => assert.equal(errOf(edit(from, to)), msg));
}

test('ha: true with a single dvr_snat node is refused, naming the router', () => {
  assert.equal(errOf(edit('    distributed: true\n', '    distributed: true\n    ha: true\n', REF)),
    'ha.yaml:41: routers[R].ha: an HA router needs 2 or 3 dvr_snat nodes; the topology has 1 (NN)');
});

/** The HA topology with `n` more HA routers (no interfaces) in `project`, gateways on a second external subnet. */
function manyRouters(n: number, project: string): string {
  const extra: string[] = [];
  for (let i = 0; i < n; i++) {
    const hex = (v: number): string => v.toString(16).padStart(2, '0');
    extra.push(`  - { name: X${i}, ha: true, project: ${project}, external_gateway: { network: public, ip: 100.64.${i >> 8}.${(i & 255) + 1}, mac: "fa:16:3e:ff:${hex(i >> 8)}:${hex(i & 255)}" } }`);
  }
  const withSubnet = edit('routers:\n', '  - { name: more-v4, network: public, cidr: 100.64.0.0/16, gateway_ip: 100.64.255.254 }\nrouters:\n');
  return edit('\nfip_agent_gateways:', `\n${extra.join('\n')}\nfip_agent_gateways:`, withSubnet);
}

function vridsOf(text: string, project: string): number[] {
  return parseTopology('ha.yaml', text).routers.filter((r) => r.ha.ha && r.ha.project === project).map((r) => r.ha.vrid);
}

test('VRIDs: 254 HA routers per project get distinct ids in 1..254; the 255th is refused by name', () => {
  const ids = vridsOf(manyRouters(253, 'admin'), 'admin');
  assert.equal(ids.length, 254);
  assert.equal(new Set(ids).size, 254);
  assert.ok(ids.every((v) => v >= 1 && v <= 254));
  const text = manyRouters(254, 'admin');
  const line = text.split('\n').findIndex((l) => l.includes('{ name: X253,')) + 1;
  assert.equal(errOf(text),
    `ha.yaml:${line}: routers[X253].ha: project admin has no free VRRP id for router X253 (ids 1..254 are all taken by its other HA routers)`);
  // Another project has its own 254 ids (and its own HA network).
  assert.equal(vridsOf(manyRouters(254, 'other'), 'other').length, 254);
  assert.equal(haRouters(parseTopology('ha.yaml', manyRouters(1, 'other')))[1].network.segmentationId, 0xfffffe);
});

test('a router keeps its VRID when HA routers are added before and after it', () => {
  const before = parseTopology('ha.yaml', HA).routers[0].ha.vrid;
  const more = edit('routers:\n', 'routers:\n  - { name: Y, ha: true, external_gateway: { network: public, ip: 203.0.113.99, mac: "fa:16:3e:ff:ff:01" } }\n', manyRouters(5, 'admin'));
  assert.equal(parseTopology('ha.yaml', more).routers.find((r) => r.name === 'R')!.ha.vrid, before);
});

test('only the master has the SNAT part; a change of master is a flow diff on br-int only', () => {
  const t = parseTopology('ha.yaml', HA);
  const backup = nodeConfig(t, 'NN2');
  const master = nodeConfig(t, 'NN2', backup, new Set(['R']));
  const d = diffNodeConfigs(backup, master);
  assert.deepEqual(d.map((b) => `${b.bridge} +${b.addFlows.length} ~${b.modifyFlows.length} -${b.deleteFlows.length} ports ${b.addPorts.length + b.removePorts.length + b.modifyPorts.length}`),
    ['br-int +17 ~2 -0 ports 0', 'br-ex +3 ~0 -0 ports 0']);
  const texts = d[0].addFlows.map((f) => f.text).join('\n');
  assert.match(texts, /arp_tpa=10\.0\.2\.2/);           // answers ARP for sg-B
  assert.match(texts, /nat\(src=203\.0\.113\.10\)/);   // SNAT to the qg- address
  assert.deepEqual(master.announcements.map((a) => a.why), ['qg- port of router R']);
  assert.deepEqual(backup.announcements, []);
  // Both carry the HA network: the ha- port on br-int, its VNI on br-tun, before any failover.
  for (const c of [backup, master]) {
    assert.ok(c.bridges[0].ports.some((p) => p.name === 'ha-d70c14b5'));
    assert.ok(c.bridges[1].flows.some((f) => /tun_id=0xffffff/.test(f.text)));
  }
  // Compute nodes send frames for an HA router's sg- MAC to every l3 agent (only the master takes them).
  const c2 = nodeConfig(t, 'C2');
  const tun = c2.bridges[1];
  const port = (n: string): number => tun.ports.find((p) => p.name === n)!.ofport;
  assert.deepEqual(tun.flows.map((f) => f.text).filter((x) => x.includes('fa:16:3e:0b:00:02') && x.includes('table=20')),
    [`table=20,priority=2,dl_vlan=1,dl_dst=fa:16:3e:0b:00:02 actions=strip_vlan,load:0x3ea->NXM_NX_TUN_ID[],output:${port('vxlan-c0a8640d')},output:${port('vxlan-c0a8640e')}`]);
});

test('a floating IP of a port on a dvr_no_external node follows the HA master: its flows, ARP answer and GARP are on the master only', () => {
  const t = parseTopology('ha.yaml', edit('  - name: C1\n    agent_mode: dvr\n', '  - name: C1\n    agent_mode: dvr_no_external\n'));
  const fipFlows = (c: ReturnType<typeof nodeConfig>): string[] =>
    c.bridges[0].flows.map((f) => f.text).filter((x) => x.includes('203.0.113.50'));
  for (const [node, masters] of [['NN1', ['R']], ['NN2', []], ['NN1', []], ['NN2', ['R']]] as const) {
    const c = nodeConfig(t, node, undefined, new Set(masters));
    const flows = fipFlows(c);
    if (masters.length === 0) {
      assert.deepEqual(flows, [], `${node} backup`);
      assert.ok(!c.announcements.some((a) => a.why.includes('203.0.113.50')));
      continue;
    }
    // Out: table 45 rewrites the fixed source to the FIP; in: ARP for the FIP from the qg- MAC, DNAT.
    assert.ok(flows.some((x) => /table=45,priority=100,.*nw_src=10\.0\.1\.10 actions=mod_nw_src:203\.0\.113\.50/.test(x)), flows.join('\n'));
    assert.ok(flows.some((x) => /table=50,priority=500,arp,.*arp_tpa=203\.0\.113\.50/.test(x)), flows.join('\n'));
    assert.ok(c.announcements.some((a) => a.why === 'floating IP 203.0.113.50 of VM1 (central)'), JSON.stringify(c.announcements));
  }
  // C1 (dvr_no_external) serves nothing on the external network.
  assert.deepEqual(fipFlows(nodeConfig(t, 'C1')).filter((x) => x.includes('table=50')), []);
});
