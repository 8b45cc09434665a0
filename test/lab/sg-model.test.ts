/**
 * The lab's security-group model (lab/sg-model.ts), from which lab-check-sg.ts derives its
 * scenarios: what examples/topologies/security-groups.yaml allows and refuses, as Neutron
 * would; the rule-deleting edit of the topology file (lab-check-sg.ts withoutRule); the frames
 * the spoofing checks send.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseTopology, Topology, TopoPort } from '../../src/dvr/topology';
import { allows, egressAllows, ingressOpensRange, isFiltered, memberPrefixes, tcpRulePorts, unusedAddress } from '../../src/lab/sg-model';
import { arpReply, sgChecksApply, udpFrame, withoutRule } from '../../src/lab/lab-check-sg';

const FILE = path.join(__dirname, '../../../examples/topologies/security-groups.yaml');
const TEXT = fs.readFileSync(FILE, 'utf8');
const topo = (text = TEXT): Topology => parseTopology(FILE, text);
const T = topo();
const P = (name: string, t = T): TopoPort => t.ports.find((p) => p.name === name)!;
const TCP = 6, ICMP = 1;

test('filtered ports: port security on and the node runs the openvswitch driver', () => {
  assert.equal(isFiltered(T, P('WEB1')), true);
  assert.equal(isFiltered(T, P('OPEN1')), false, 'port security off');
  const noop = topo(TEXT.replace(/firewall_driver: openvswitch/g, 'firewall_driver: noop'));
  assert.equal(isFiltered(noop, P('WEB1', noop)), false);
  assert.equal(sgChecksApply(noop), false);
  assert.equal(sgChecksApply(T), true);
});

test('web: tcp/80 from anywhere, nothing else by TCP; app: tcp/5000 only from web members', () => {
  assert.equal(allows(T, P('APP1'), P('WEB1'), TCP, 80), true);
  assert.equal(allows(T, P('WEB2'), P('WEB1'), TCP, 5000), false);
  assert.equal(allows(T, P('WEB1'), P('APP1'), TCP, 5000), true, 'WEB1 is a member of web');
  assert.equal(allows(T, P('VIP1'), P('APP1'), TCP, 5000), true);
  assert.equal(allows(T, P('OPEN1'), P('APP1'), TCP, 5000), false, 'OPEN1 is in no group');
  assert.equal(allows(T, P('APP2'), P('APP1'), TCP, 5000), false);
  assert.deepEqual(memberPrefixes(T, 'demo', 'web'), ['10.0.1.10', '10.0.1.11', '10.0.1.40', '10.0.1.100'], 'allowed pairs are members');
  assert.deepEqual(tcpRulePorts(T, P('APP1')), [5000]);
  assert.deepEqual(tcpRulePorts(T, P('WEB1')), [80]);
});

test('ICMP: web from 10.0.0.0/16 and the external subnet; app from nowhere; egress of app limited', () => {
  assert.equal(allows(T, P('APP1'), P('WEB1'), ICMP, 8), true);
  assert.equal(allows(T, P('WEB1'), P('APP1'), ICMP, 8), false);
  assert.equal(egressAllows(T, P('APP1'), { proto: TCP, port: 22, srcIp: '10.0.2.20', dstIp: '10.0.1.10' }), false);
  assert.equal(egressAllows(T, P('APP1'), { proto: TCP, port: 80, srcIp: '10.0.2.20', dstIp: '10.0.1.10' }), true);
  assert.equal(egressAllows(T, P('APP1'), { proto: 17, port: 53, srcIp: '10.0.2.20', dstIp: '10.0.1.10' }), true);
});

test('return traffic: web opens no ephemeral TCP port to APP1, so the checks prove conntrack lets replies in', () => {
  assert.equal(ingressOpensRange(T, P('WEB1'), TCP, '10.0.2.20', 32768, 60999), false);
  assert.equal(ingressOpensRange(T, P('OPEN1'), TCP, '10.0.2.20', 32768, 60999), true, 'unfiltered');
  const wide = topo(TEXT.replace('port_range_min: 80, port_range_max: 80 }', 'port_range_min: 80, port_range_max: 40000 }'));
  assert.equal(ingressOpensRange(wide, P('WEB1', wide), TCP, '10.0.2.20', 32768, 60999), true);
});

test('an unused address: nobody owns it and no allowed pair covers it', () => {
  assert.equal(unusedAddress(T, P('WEB1')), '10.0.1.254');
  const covered = topo(TEXT.replace('ip_address: 10.0.1.100', 'ip_address: 10.0.1.252/30'));
  assert.equal(unusedAddress(covered, P('WEB1', covered)), '10.0.1.251');
});

test('withoutRule deletes exactly the rule on its line; the model then refuses what only it allowed', () => {
  const app = T.securityGroups.find((g) => g.name === 'app')!;
  const rule = app.rules[0];
  const edited = withoutRule(TEXT, app, rule.line);
  const t2 = topo(edited);
  const app2 = t2.securityGroups.find((g) => g.name === 'app')!;
  assert.equal(app2.rules.length, app.rules.length - 1);
  assert.equal(app2.rules.some((r) => r.portRangeMin === 5000), false);
  assert.equal(t2.securityGroups.find((g) => g.name === 'web')!.rules.length, T.securityGroups.find((g) => g.name === 'web')!.rules.length);
  assert.equal(allows(t2, P('WEB1', t2), P('APP1', t2), TCP, 5000), false);
  assert.equal(allows(t2, P('APP1', t2), P('WEB1', t2), TCP, 80), true);
  assert.throws(() => withoutRule(TEXT, app, 1), /not found/);
});

test('the spoofing frames: UDP with a valid IPv4 checksum, an ARP reply of 60 bytes', () => {
  const u = udpFrame('fa:16:3e:00:01:11', 'fa:16:3e:00:01:10', '10.0.1.254', '10.0.1.11', 'mark');
  assert.equal(Buffer.from(u.subarray(0, 14)).toString('hex'), 'fa163e000111fa163e0001100800');
  let s = 0;
  for (let i = 14; i < 34; i += 2) s += (u[i] << 8) | u[i + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  assert.equal(s, 0xffff, 'IPv4 header checksum');
  assert.equal(Buffer.from(u.subarray(26, 34)).toString('hex'), '0a0001fe0a00010b');
  assert.equal(Buffer.from(u.subarray(42)).toString(), 'mark');
  assert.equal(Buffer.from(u.subarray(34, 38)).toString('hex'), '9c410009', 'from 40001 to the discard port by default');
  const d = udpFrame('ff:ff:ff:ff:ff:ff', 'fa:16:3e:00:01:10', '10.0.1.10', '255.255.255.255', 'x', 67, 68);
  assert.equal(Buffer.from(d.subarray(34, 38)).toString('hex'), '00430044', 'a DHCP server reply: 67 -> 68');
  const a = arpReply('fa:16:3e:00:01:11', 'fa:16:3e:00:01:10', '10.0.1.40', 'fa:16:3e:00:01:11', '10.0.1.11');
  assert.equal(a.length, 60);
  assert.equal(Buffer.from(a.subarray(12, 22)).toString('hex'), '08060001080006040002');
  assert.equal(Buffer.from(a.subarray(28, 32)).toString('hex'), '0a000128');
});
