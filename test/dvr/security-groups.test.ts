/**
 * Security groups in the topology (issue 13 items 1, 2 and 4): validation errors name the
 * file, line and field; rules become Neutron's flows (priorities, value/mask port ranges,
 * conjunctions, cookies); a topology change touches only the flows it changes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../../src/errors';
import { parseTopology } from '../../src/dvr/topology';
import { nodeConfig } from '../../src/dvr/node-config';
import { diffNodeConfigs } from '../../src/dvr/diff';
import { portRangeMasks, rulePriorityOffset } from '../../src/dvr/firewall-rules';
import type { SgRule } from '../../src/dvr/topology-sg';

const FILE = path.join(__dirname, '../../../examples/topologies/security-groups.yaml');
const SG = fs.readFileSync(FILE, 'utf8');

function lineOf(text: string, marker: string): number {
  const i = text.indexOf(marker);
  assert.ok(i >= 0, `no "${marker}"`);
  return text.slice(0, i).split('\n').length;
}

function errOf(text: string): ConfigError {
  try {
    parseTopology('sg.yaml', text);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail('expected a ConfigError');
}

// [what, text in security-groups.yaml, replacement, field and message after "sg.yaml:LINE: "]
const CASES: [string, string, string, string][] = [
  ['a port using a group of another project',
    '{ name: WEB1, project: demo,', '{ name: WEB1, project: other,',
    'ports[WEB1].security_groups[0]: security group "web" belongs to project demo, but port WEB1 is in project other'],
  ['port security off on a port with groups',
    'port_security_enabled: false, security_groups: []', 'port_security_enabled: false, security_groups: [web]',
    'ports[OPEN1].port_security_enabled: port security cannot be turned off on a port with security groups (web): give it security_groups: []'],
  ['an unknown group',
    'security_groups: [app], mac: fa:16:3e:00:02:20', 'security_groups: [db], mac: fa:16:3e:00:02:20',
    'ports[APP1].security_groups[0]: unknown security group "db" in project demo'],
  ['an unknown remote group',
    'remote_group: web }', 'remote_group: webs }',
    'security_groups[app].rules[0].remote_group: unknown security group "webs" in project demo'],
  ['an unknown protocol',
    'protocol: tcp, port_range_min: 80', 'protocol: tcpp, port_range_min: 80',
    'security_groups[web].rules[0].protocol: expected tcp, udp, icmp, sctp, any or a number 0..255, got "tcpp"'],
  ['a reversed port range',
    'port_range_min: 80, port_range_max: 80', 'port_range_min: 90, port_range_max: 80',
    'security_groups[web].rules[0].port_range_max: 80 is below port_range_min 90'],
  ['a port range without a protocol that has ports',
    '- { direction: egress, ethertype: IPv4 }', '- { direction: egress, ethertype: IPv4, port_range_min: 1 }',
    'security_groups[web].rules[2].port_range_min: a port range needs protocol tcp, udp, sctp or icmp (protocol is any)'],
  ['a remote prefix with host bits',
    'remote_ip_prefix: 10.0.0.0/16', 'remote_ip_prefix: 10.0.0.1/16',
    'security_groups[web].rules[1].remote_ip_prefix: expected an IPv4 prefix with host bits zero, got "10.0.0.1/16"'],
  ['an unknown direction',
    '- { direction: egress, ethertype: IPv6 }', '- { direction: outbound, ethertype: IPv6 }',
    'security_groups[web].rules[3].direction: expected ingress or egress, got "outbound"'],
  ['a bad allowed address pair',
    'ip_address: 10.0.1.100', 'ip_address: 10.0.1.300',
    'ports[VIP1].allowed_address_pairs[0].ip_address: expected an IPv4 address or prefix with host bits zero, got "10.0.1.300"'],
  ['an unknown firewall driver',
    'firewall_driver: openvswitch\n  - name: C2', 'firewall_driver: iptables\n  - name: C2',
    'nodes[C1].firewall_driver: unknown firewall_driver "iptables" (expected one of openvswitch, noop)'],
];

for (const [what, from, to, msg] of CASES) {
  test(`security-group topology error: ${what}`, () => {
    assert.ok(SG.includes(from), `security-groups.yaml has no "${from}"`);
    const text = SG.replace(from, to);
    const marker = msg.includes('remote_group:') ? 'remote_group: webs' : to.split('\n')[0];
    const line = msg.startsWith('nodes[C1]') ? lineOf(text, 'firewall_driver: iptables')
      : msg.startsWith('ports[OPEN1]') || msg.startsWith('ports[VIP1]') || msg.startsWith('ports[WEB1]') || msg.startsWith('ports[APP1]')
        ? lineOf(text, msg.startsWith('ports[VIP1]') ? '10.0.1.300' : to) : lineOf(text, marker);
    assert.equal(errOf(text).message, `sg.yaml:${line}: ${msg}`);
  });
}

test('a port without groups is in its project\'s default group, made with Neutron\'s default rules', () => {
  const t = parseTopology(FILE, SG);
  const other = t.ports.find((p) => p.name === 'OTHER1')!;
  assert.deepEqual(other.securityGroups, ['default']);
  const g = t.securityGroups.find((x) => x.project === 'other' && x.name === 'default')!;
  assert.deepEqual(g.rules.map((r) => `${r.direction} ${r.ethertype} ${r.remoteGroup || 'any'}`),
    ['egress IPv4 any', 'ingress IPv4 default', 'egress IPv6 any', 'ingress IPv6 default']);
  const vip = t.ports.find((p) => p.name === 'VIP1')!;
  assert.deepEqual(vip.allowedAddressPairs, [{ ipAddress: '10.0.1.100', macAddress: 'fa:16:3e:00:01:40' }]);
  assert.equal(t.ports.find((p) => p.name === 'OPEN1')!.portSecurityEnabled, false);
});

test('port ranges become the fewest value/mask pairs (Neutron port_rule_masking)', () => {
  assert.deepEqual(portRangeMasks(80, 80), ['80']);
  assert.deepEqual(portRangeMasks(96, 127), ['0x0060/0xffe0']);
  assert.deepEqual(portRangeMasks(1000, 1999), ['0x03e8/0xfff8', '0x03f0/0xfff0', '0x0400/0xfe00', '0x0600/0xff00',
    '0x0700/0xff80', '0x0780/0xffc0', '0x07c0/0xfff0']);
  assert.deepEqual(portRangeMasks(0, 65535), ['0x0000/0x0000']);
});

test('rule priorities: 70 + 4 without remote group, +1 ICMP without type, +2 without code, +3 other protocols', () => {
  const r = (o: Partial<SgRule>): SgRule => ({ direction: 'ingress', ethertype: 'IPv4', protocol: null, portRangeMin: null,
    portRangeMax: null, remoteIpPrefix: '', remoteGroup: '', line: 0, ...o });
  assert.equal(rulePriorityOffset(r({})), 4);
  assert.equal(rulePriorityOffset(r({ protocol: 1 })), 5);
  assert.equal(rulePriorityOffset(r({ protocol: 1, portRangeMin: 8 })), 6);
  assert.equal(rulePriorityOffset(r({ protocol: 1, portRangeMin: 8, portRangeMax: 0 })), 7);
  assert.equal(rulePriorityOffset(r({ protocol: 6, portRangeMin: 80, portRangeMax: 80 })), 7);
  assert.equal(rulePriorityOffset(r({ protocol: 6, remoteGroup: 'web' })), 3);
  assert.equal(rulePriorityOffset(r({ remoteGroup: 'default' })), 0);
});

test('C1 br-int: WEB1 (ofport 10, VLAN 1) gets Neutron\'s firewall flows, the tcp/80 rule with its cookie', () => {
  const flows = nodeConfig(parseTopology(FILE, SG), 'C1').bridges[0].flows.map((f) => f.text);
  const has = (s: string): void => assert.ok(flows.includes(s), `missing: ${s}`);
  has('table=60,priority=100,in_port=10,vlan_tci=0x0000/0x1fff actions=set_field:10->reg5,set_field:1->reg6,resubmit(,71)');
  has('table=60,priority=90,dl_vlan=1,dl_dst=fa:16:3e:00:01:10 actions=set_field:10->reg5,set_field:1->reg6,strip_vlan,ct_clear,resubmit(,81)');
  has('table=71,priority=95,arp,reg5=10,in_port=10,dl_src=fa:16:3e:00:01:10,arp_spa=10.0.1.10 actions=resubmit(,94)');
  has('table=71,priority=65,ip,reg5=10,in_port=10,dl_src=fa:16:3e:00:01:10,nw_src=10.0.1.10 actions=ct(table=72,zone=NXM_NX_REG6[0..15])');
  has('cookie=0x4657000000000001,table=71,priority=10,reg5=10,in_port=10 actions=ct_clear,resubmit(,93)');
  has('cookie=0x4657000000000004,table=72,priority=40,ct_state=+est,ip,reg5=10 actions=ct(commit,zone=NXM_NX_REG6[0..15],exec(set_field:0x1->ct_mark))');
  has('cookie=0x4657000000000002,table=82,priority=40,ct_state=-est,reg5=10 actions=resubmit(,93)');
  const rule80 = flows.filter((f) => f.includes('tp_dst=80,reg5=10'));
  assert.equal(rule80.length, 2, 'two flows per rule');
  assert.match(rule80[0], /^cookie=0x5347[0-9a-f]{8},table=82,priority=77,ct_state=\+est-rel-rpl,tcp,tp_dst=80,reg5=10 actions=output:10$/);
  assert.match(rule80[1], /^cookie=0x5347[0-9a-f]{8},table=82,priority=77,ct_state=\+new-est,tcp,tp_dst=80,reg5=10 actions=ct\(commit,zone=NXM_NX_REG6\[0\.\.15\]\),output:10,resubmit\(,92\)$/);
  // The router takes WEB1's frames after its egress filter (table 94), not from table 0.
  has('table=94,priority=10,reg5=10,dl_dst=fa:16:3e:0a:00:01 actions=mod_vlan_vid:1,resubmit(,40)');
  assert.ok(!flows.some((f) => f.startsWith('table=0,') && f.includes('in_port=10,')), 'no table-0 intercept of a filtered port');
  // APP2's tcp/5000 rule from members of web: a conjunction.
  assert.ok(flows.some((f) => /table=82,priority=73,ct_state=\+new-est,ip,reg6=2,nw_src=10\.0\.1\.100 actions=conjunction\(\d+,1\/2\)$/.test(f)));
  assert.ok(flows.some((f) => /table=82,priority=73,ct_state=\+new-est,tcp,tp_dst=5000,reg5=11 actions=conjunction\(\d+,2\/2\)$/.test(f)));
});

test('deleting the tcp/5000 rule deletes only its flows on C1 (conjunction, members, accept); nothing is added', () => {
  const before = nodeConfig(parseTopology(FILE, SG), 'C1');
  const rule = '      - { direction: ingress, ethertype: IPv4, protocol: tcp, port_range_min: 5000, port_range_max: 5000,\n          remote_group: web }\n';
  assert.ok(SG.includes(rule));
  const after = nodeConfig(parseTopology(FILE, SG.replace(rule, '')), 'C1', before);
  const d = diffNodeConfigs(before, after);
  assert.deepEqual(d.map((b) => b.bridge), ['br-int']);
  assert.equal(d[0].addFlows.length + d[0].modifyFlows.length + d[0].addPorts.length + d[0].removePorts.length, 0);
  assert.ok(d[0].deleteFlows.length >= 6);
  for (const f of d[0].deleteFlows) assert.match(f.text, /^table=82,priority=73,/, f.text);
  // The connections it allowed stop: their next packet meets table 82's +est flow, which marks them.
  assert.ok(after.bridges[0].flows.some((f) => f.text === 'cookie=0x4657000000000004,table=82,priority=40,ct_state=+est,ip,reg5=11 actions=ct(commit,zone=NXM_NX_REG6[0..15],exec(set_field:0x1->ct_mark))'));
});

test('adding a member to web adds only its conjunction flows (1/2) on C1', () => {
  const before = nodeConfig(parseTopology(FILE, SG), 'C1');
  const text = SG.replace('{ name: OPEN1, project: demo, port_security_enabled: false, security_groups: [],',
    '{ name: OPEN1, project: demo, security_groups: [web],');
  const after = nodeConfig(parseTopology(FILE, text), 'C1', before);
  const d = diffNodeConfigs(before, after)[0];
  const member = d.addFlows.filter((f) => f.text.includes('nw_src=10.0.1.30 actions=conjunction('));
  assert.equal(member.length, 2);
  // OPEN1 itself becomes filtered: its own flows change, no other port's.
  for (const f of [...d.addFlows, ...d.modifyFlows, ...d.deleteFlows]) {
    if (f.text.includes('nw_src=10.0.1.30 actions=conjunction(')) continue;
    assert.match(f.text, /(reg5=12|in_port=12|dl_dst=fa:16:3e:00:01:30)/, f.text);
  }
});
