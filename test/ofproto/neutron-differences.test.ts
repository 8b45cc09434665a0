/**
 * Issue 22: each difference from Open vSwitch found with Neutron's own flows has a test here
 * (conjunctions have test/ofproto/conjunction.test.ts): quoted port names, IPv6 neighbour
 * discovery fields and the flow label, ct(commit) without an output, ct fields after ct(),
 * traces following recirculation (--ct-next), and the Final flow printed as OVS prints it.
 * Expected texts are what OVS 3.1 printed for the same flows and packets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bridge } from '../../src/ofproto/bridge';
import { Ofproto } from '../../src/ofproto/ofproto';
import { BridgeView } from '../../src/ofproto/bridge-view';
import { traceFields, parseCtState, formatFlowKey, keyFromFields } from '../../src/ofproto/trace';
import { formatDpActions } from '../../src/dpif/dp-actions';
import { dumpFlows } from '../../src/ofproto/dump';
import { parseFlow } from '../../src/ofproto/flow-syntax';
import { extractKey, OFFS_WORDS } from '../../src/packet/flowkey';
import { KEY_WORDS, W_ND_TARGET, W_IPV6_LABEL, W_ARP_SHA_HI, W_ARP_SHA_LO, W_ARP_THA_LO } from '../../src/packet/flowkey-layout';

const PORTS = ['p1', 'p2', 'tap-x1', 'int-br-provider'];

function setup(flows: string): { of: Ofproto; br: Bridge } {
  const br = new Bridge('br0', 0, { defaultFlow: false });
  PORTS.forEach((name, i) => br.addPort({ name, ofport: i + 1, kind: 'dummy' }));
  br.addFlows(flows, 0);
  const of = new Ofproto();
  of.addBridge(new BridgeView(br));
  return { of, br };
}

const strip = (l: string): string => l.replace(/^.*idle_age=\d+, /, '');

// ---- 1. quoted port names ----------------------------------------------------------------------

test('quoted port names load in matches and actions, and --names prints them as OVS', () => {
  const { br } = setup([
    'priority=5,in_port="int-br-provider",actions=output:"tap-x1"',
    'priority=4,in_port=p1,actions="tap-x1",resubmit("p2",1)',
  ].join('\n'));
  const named = dumpFlows(br, 0, {}, br.portName).map(strip);
  assert.deepEqual(named, [
    'priority=5,in_port="int-br-provider" actions=output:"tap-x1"',
    'priority=4,in_port=p1 actions=output:"tap-x1",resubmit(p2,1)',
  ]);
  assert.deepEqual(dumpFlows(br, 0).map(strip), [
    'priority=5,in_port=4 actions=output:3',
    'priority=4,in_port=1 actions=output:3,resubmit(2,1)',
  ]);
});

test('quoted port names: an unknown or unterminated name is a clear error', () => {
  const resolvePort = (n: string): number | undefined => (n === 'a-b' ? 7 : undefined);
  assert.equal(parseFlow('in_port="a-b",actions=drop', { resolvePort }).match.value[0], 7);
  assert.throws(() => parseFlow('in_port="nope",actions=drop', { resolvePort }), /unknown port "nope"/);
  assert.throws(() => parseFlow('in_port="a-b,actions=drop', { resolvePort }), /unterminated quoted string/);
});

// ---- 2. IPv6 neighbour discovery fields and the flow label -------------------------------------

test('nd_target, nd_sll, nd_tll and ipv6_label match and print as OVS', () => {
  const { br } = setup([
    'priority=9,icmp6,icmp_type=136,nd_target=fe80::11,actions=output:1',
    'priority=8,icmp6,icmp_type=135,nd_sll=fa:16:3e:00:00:01,actions=output:2',
    'priority=7,icmp6,icmp_type=136,nd_tll=fa:16:3e:00:00:02,actions=output:2',
    'priority=6,ipv6,ipv6_label=0x12345,actions=output:3',
    'priority=5,ipv6,nd_target=fe80::1,actions=output:4',
  ].join('\n'));
  assert.deepEqual(dumpFlows(br, 0).map(strip), [
    'priority=9,icmp6,icmp_type=136,nd_target=fe80::11 actions=output:1',
    'priority=8,icmp6,icmp_type=135,nd_sll=fa:16:3e:00:00:01 actions=output:2',
    'priority=7,icmp6,icmp_type=136,nd_tll=fa:16:3e:00:00:02 actions=output:2',
    'priority=6,ipv6,ipv6_label=0x12345 actions=output:3',
    // Without an ND icmp_type the target is dropped, as ovs-ofctl drops it.
    'priority=5,ipv6 actions=output:4',
  ]);
});

test('a neighbour advertisement frame fills nd_target and nd_tll; the label comes from the header', () => {
  const hex = '333333000001fa163e00000286dd'
    + '6001234500203aff' + 'fe800000000000000000000000000011' + 'ff020000000000000000000000000001'
    + '8800000060000000' + 'fe800000000000000000000000000011' + '0201fa163e000002';
  const bytes = Uint8Array.from(Buffer.from(hex, 'hex'));
  const key = new Uint32Array(KEY_WORDS);
  extractKey(bytes, 0, bytes.length, 1, key, 0, new Uint16Array(OFFS_WORDS), 0);
  assert.deepEqual([...key.subarray(W_ND_TARGET, W_ND_TARGET + 4)], [0xfe800000, 0, 0, 0x11]);
  assert.equal(key[W_IPV6_LABEL], 0x12345);
  assert.equal(key[W_ARP_THA_LO], 0x3e000002);
  assert.equal(key[W_ARP_SHA_HI] + key[W_ARP_SHA_LO], 0);
  // An option of length 0 makes the message malformed: OVS keeps no ND field then.
  const bad = Uint8Array.from(Buffer.from(hex.slice(0, -16) + '0200fa163e000002', 'hex'));
  extractKey(bad, 0, bad.length, 1, key, 0, new Uint16Array(OFFS_WORDS), 0);
  assert.deepEqual([...key.subarray(W_ND_TARGET, W_ND_TARGET + 4)], [0, 0, 0, 0]);
});

test('trace packets take nd_target, and the Flow line shows the ND fields and label as OVS', () => {
  const { of } = setup('priority=9,icmp6,icmp_type=136,nd_target=fe80::11,actions=output:2');
  const t = traceFields(of, 'br0', 'in_port=1,icmp6,ipv6_src=fe80::11,icmpv6_type=136,nd_target=fe80::11,nd_tll=fa:16:3e:00:00:02', 0);
  assert.match(t.text, /^Flow: icmp6,in_port=1,vlan_tci=0x0000,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,ipv6_src=fe80::11,ipv6_dst=::,ipv6_label=0x00000,nw_tos=0,nw_ecn=0,nw_ttl=0,nw_frag=no,icmp_type=136,icmp_code=0,nd_target=fe80::11,nd_sll=00:00:00:00:00:00,nd_tll=fa:16:3e:00:00:02$/m);
  assert.match(formatDpActions(t.result.actions), /^\d+$/);
});

// ---- 4. ct(commit) without an output; ct fields after ct() ---------------------------------------

test('ct(commit,exec(mark)) without an output keeps its datapath action, as OVS', () => {
  const { of } = setup('priority=10,ip,in_port=1,actions=ct(commit,zone=2,exec(load:0x1->NXM_NX_CT_MARK[]))');
  const t = traceFields(of, 'br0', 'in_port=1,tcp', 0);
  assert.match(t.text, /^Datapath actions: ct\(commit,zone=2,mark=0x1\/0xffffffff\)$/m);
});

test('after ct() the packet is untracked for later actions, as OVS', () => {
  const { of } = setup([
    'table=0,priority=10,ip,actions=ct(zone=3),resubmit(,1)',
    'table=1,priority=20,ct_state=+trk,ip,actions=output:2',
    'table=1,priority=10,ip,actions=output:3',
  ].join('\n'));
  const t = traceFields(of, 'br0', 'in_port=1,tcp,ct_state=0x21,ct_zone=9', 0);
  assert.match(t.text, /Sets the packet to an untracked state, and clears all the conntrack fields\./);
  assert.match(t.text, /^ 1\. ip, priority 10$/m);
});

// ---- 5. traces follow recirculation ------------------------------------------------------------

const RECIRC = [
  'table=0,priority=20,ip,in_port=2,actions=ct(table=5,zone=3,nat),mod_dl_dst:00:00:00:00:00:09,output:3',
  'table=5,priority=10,ct_state=+trk+est,ip,actions=output:4',
  'table=5,priority=5,ct_state=+trk+new,ip,actions=ct(commit,zone=3),output:1',
].join('\n');

test('trace follows ct(table=N) into the next pass with the --ct-next state', () => {
  const { of } = setup(RECIRC);
  const t = traceFields(of, 'br0', 'in_port=2,tcp', 0, { ctNext: [parseCtState('trk,est')] });
  assert.match(t.text, /^recirc\(0x[0-9a-f]+\) - resume conntrack with ct_state=est\|trk$/m);
  assert.match(t.text, /^Flow: recirc_id=0x[0-9a-f]+,ct_state=est\|trk,ct_zone=3,eth,tcp,in_port=2,/m);
  assert.match(t.text, /^ {4}thaw\n {8}Resuming from table 5\n 5\. ct_state=\+est\+trk,ip, priority 10$/m);
  assert.equal(t.passes.length, 1);
  assert.equal(formatDpActions(t.passes[0].actions).split(',').length, 1);
});

test('trace without --ct-next resumes with OVS default trk|new and says so', () => {
  const { of } = setup(RECIRC);
  const t = traceFields(of, 'br0', 'in_port=2,tcp', 0);
  assert.match(t.text, /resume conntrack with default ct_state=new\|trk \(use --ct-next to customize\)/);
  assert.match(t.text, /^Final flow: recirc_id=0x[0-9a-f]+,eth,tcp,in_port=2,/m);
  assert.match(t.text, /^Datapath actions: ct\(commit,zone=3\),\d+$/m);
});

// ---- 6. Final flow printing: tunnel, RARP ------------------------------------------------------

test('Flow/Final flow print a tunnel as OVS (tunnel block, no tun_id) and RARP with its arp_* fields', () => {
  const { br } = setup('priority=1,actions=drop');
  const key = keyFromFields('in_port=4,tun_id=0x34,tun_src=1.1.1.1,tun_dst=2.2.2.2,rarp,arp_op=3,arp_spa=1.2.3.4', new BridgeView(br));
  assert.equal(formatFlowKey(key), 'rarp,tun_src=1.1.1.1,tun_dst=2.2.2.2,tun_ipv6_src=::,tun_ipv6_dst=::,tun_gbp_id=0,'
    + 'tun_gbp_flags=0,tun_tos=0,tun_ttl=0,tun_erspan_ver=0,gtpu_flags=0,gtpu_msgtype=0,tun_flags=0,in_port=4,'
    + 'vlan_tci=0x0000,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,arp_spa=1.2.3.4,arp_tpa=0.0.0.0,arp_op=3,'
    + 'arp_sha=00:00:00:00:00:00,arp_tha=00:00:00:00:00:00');
});
