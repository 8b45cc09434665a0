/**
 * dump-flows text: the exact ovs-ofctl shape (field order, when table/idle/hard items appear,
 * durations), dump lines parse back to the same rule, and Neutron's br-tun/br-int tables from
 * dvr-reference.md load from a flows file and dump back. diff-flows text equals what Debian's
 * ovs-ofctl prints for the same two flows files (skipped without ovs-ofctl).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Bridge } from '../../src/ofproto/bridge';
import { dumpFlows, formatDuration } from '../../src/ofproto/dump';
import { parseFlow } from '../../src/ofproto/flow-syntax';
import { matchesEqual } from '../../src/ofproto/match-syntax';
import { formatActions } from '../../src/ofproto/action-syntax';

test('dump line has the ovs-ofctl dump-flows shape', () => {
  const br = new Bridge('br', 1000, { defaultFlow: false });
  const r = br.addFlow('priority=1,in_port=1,idle_timeout=10,actions=output:2', 1000);
  r.credit(2, 196, 1500);
  assert.deepEqual(dumpFlows(br, 2234), [
    ' cookie=0x0, duration=1.234s, table=0, n_packets=2, n_bytes=196, idle_timeout=10, idle_age=0, priority=1,in_port=1 actions=output:2',
  ]);
});

test('default flow, hard_timeout, cookie and hard_age after a mod', () => {
  const br = new Bridge('br', 0);
  br.addFlow('table=20,cookie=0xab,hard_timeout=300,priority=1,dl_vlan=1,dl_dst=fa:16:3e:00:02:20,actions=strip_vlan,load:0x3ea->NXM_NX_TUN_ID[],output:2', 0);
  br.modFlows('table=20,dl_vlan=1,actions=drop', false, 2000);
  assert.deepEqual(dumpFlows(br, 5000), [
    ' cookie=0x0, duration=5s, table=0, n_packets=0, n_bytes=0, idle_age=5, priority=0 actions=NORMAL',
    ' cookie=0xab, duration=5s, table=20, n_packets=0, n_bytes=0, hard_timeout=300, idle_age=5, hard_age=3, priority=1,dl_vlan=1,dl_dst=fa:16:3e:00:02:20 actions=drop',
  ]);
  assert.deepEqual(dumpFlows(br, 5000, { tableId: 20 }).length, 1);
  assert.deepEqual(dumpFlows(br, 5000, { spec: parseFlow('dl_vlan=1', { command: 'del' }) }).length, 1);
});

test('importance prints when set, before idle_age (ovs-ofctl -O OpenFlow15\'s place), and parses back', () => {
  const br = new Bridge('br', 0, { defaultFlow: false });
  br.addFlow('priority=5,importance=7,idle_timeout=50,hard_timeout=60,ip,actions=drop', 0);
  const [line] = dumpFlows(br, 1000);
  assert.equal(line, ' cookie=0x0, duration=1s, table=0, n_packets=0, n_bytes=0, idle_timeout=50, hard_timeout=60, ' +
    'importance=7, idle_age=1, priority=5,ip actions=drop');
  assert.equal(parseFlow(line).importance, 7);
});

const noOfctl = spawnSync('sh', ['-c', 'command -v ovs-ofctl']).status === 0 ? false : 'ovs-ofctl not found (Debian\'s openvswitch-common)';

test('diff-flows prints what ovs-ofctl diff-flows prints for the same two files', { skip: noOfctl }, () => {
  const before = [
    'priority=5,ip,cookie=0x5,hard_timeout=9,idle_timeout=3,importance=4,actions=drop',
    'priority=0,actions=NORMAL',
    'table=2,actions=drop',
    'actions=drop',
    'table=3,priority=7,arp,importance=1,actions=NORMAL',
    'table=4,priority=1,in_port=2,actions=output:1',
    'table=4,priority=2,tcp,tp_dst=80,cookie=0x10,actions=output:3',
  ];
  const after = [
    'priority=5,ip,cookie=0x5,hard_timeout=9,idle_timeout=3,actions=drop', // importance differs
    'priority=0,actions=NORMAL',                                           // the same
    'table=2,cookie=0x1,actions=drop',                                     // cookie differs
    'tcp,actions=drop',                                                    // only here
    'table=3,priority=7,arp,importance=2,actions=NORMAL',                  // importance differs
    'table=4,priority=1,in_port=2,idle_timeout=30,actions=output:1',       // timeout differs
    'table=4,priority=2,tcp,tp_dst=80,cookie=0x10,actions=output:3',       // the same
  ];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-diff-'));
  try {
    fs.writeFileSync(path.join(dir, 'a'), before.join('\n') + '\n');
    fs.writeFileSync(path.join(dir, 'b'), after.join('\n') + '\n');
    const r = spawnSync('ovs-ofctl', ['diff-flows', path.join(dir, 'a'), path.join(dir, 'b')]);
    assert.equal(r.status, 2, r.stderr.toString());
    const ovs = r.stdout.toString().split('\n').filter((l) => l !== '');
    const br = new Bridge('br', 0, { defaultFlow: false });
    br.addFlows(before.join('\n'), 0);
    const ours = br.diffFlows(after.join('\n'));
    assert.equal(ours.length, 10);
    // ovs-ofctl prints in its classifier's order, flowd in table/priority order: compare as sets.
    assert.deepEqual([...ours].sort(), [...ovs].sort());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('durations print like ofp_print_duration', () => {
  assert.equal(formatDuration(0), '0s');
  assert.equal(formatDuration(5000), '5s');
  assert.equal(formatDuration(1234), '1.234s');
  assert.equal(formatDuration(60050), '60.050s');
});

/** Neutron's br-tun for node C1 (dvr-reference.md): ports patch-int=1, vxlan to C2=2, to NN=3. */
const BR_TUN = `# br-tun of C1 (local VLANs: A=1, B=2)
table=0,priority=1,in_port=1,actions=resubmit(,1)
table=0,priority=1,in_port=2,actions=resubmit(,4)
table=0,priority=1,in_port=3,actions=resubmit(,4)
table=0,priority=0,actions=drop
table=1,priority=2,dl_vlan=1,dl_dst=fa:16:3e:0a:00:01,actions=drop
table=1,priority=1,dl_vlan=1,dl_src=fa:16:3e:0a:00:01,actions=mod_dl_src:fa:16:3f:00:00:11,resubmit(,2)
table=1,priority=0,actions=resubmit(,2)
table=2,priority=1,arp,dl_dst=ff:ff:ff:ff:ff:ff,actions=resubmit(,21)
table=2,priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,20)
table=2,priority=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,22)
table=4,priority=1,tun_id=0x3e9,actions=mod_vlan_vid:1,resubmit(,9)
table=4,priority=1,tun_id=0x3ea,actions=mod_vlan_vid:2,resubmit(,9)
table=4,priority=0,actions=drop
table=9,priority=1,dl_src=fa:16:3f:00:00:12,actions=output:1
table=9,priority=0,actions=resubmit(,10)
table=10,priority=1,actions=learn(table=20,hard_timeout=300,priority=1,cookie=0x8c4c7f2bd6e5f4ee,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[]),output:1
table=20,priority=2,dl_vlan=2,dl_dst=fa:16:3e:00:02:20,actions=strip_vlan,load:0x3ea->NXM_NX_TUN_ID[],output:2
table=20,priority=0,actions=resubmit(,22)
table=21,priority=1,arp,dl_vlan=2,arp_tpa=10.0.2.20,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:fa:16:3e:00:02:20,load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0xfa163e000220->NXM_NX_ARP_SHA[],load:0xa000214->NXM_OF_ARP_SPA[],IN_PORT
table=21,priority=0,actions=resubmit(,22)
table=22,priority=3,arp,dl_vlan=1,arp_tpa=10.0.1.1,actions=drop
table=22,priority=1,dl_vlan=1,actions=strip_vlan,set_tunnel:0x3e9,output:2,output:3
table=22,priority=1,dl_vlan=2,actions=strip_vlan,set_tunnel:0x3ea,output:2,output:3
table=22,priority=0,actions=drop
`;

/** What `ovs-ofctl dump-flows br-tun` prints for BR_TUN (durations zero, before --sort). */
const BR_TUN_DUMP = [
  ' cookie=0x0, duration=0s, table=0, n_packets=0, n_bytes=0, idle_age=0, priority=1,in_port=1 actions=resubmit(,1)',
  ' cookie=0x0, duration=0s, table=0, n_packets=0, n_bytes=0, idle_age=0, priority=1,in_port=2 actions=resubmit(,4)',
  ' cookie=0x0, duration=0s, table=0, n_packets=0, n_bytes=0, idle_age=0, priority=1,in_port=3 actions=resubmit(,4)',
  ' cookie=0x0, duration=0s, table=0, n_packets=0, n_bytes=0, idle_age=0, priority=0 actions=drop',
  ' cookie=0x0, duration=0s, table=1, n_packets=0, n_bytes=0, idle_age=0, priority=2,dl_vlan=1,dl_dst=fa:16:3e:0a:00:01 actions=drop',
  ' cookie=0x0, duration=0s, table=1, n_packets=0, n_bytes=0, idle_age=0, priority=1,dl_vlan=1,dl_src=fa:16:3e:0a:00:01 actions=mod_dl_src:fa:16:3f:00:00:11,resubmit(,2)',
  ' cookie=0x0, duration=0s, table=1, n_packets=0, n_bytes=0, idle_age=0, priority=0 actions=resubmit(,2)',
  ' cookie=0x0, duration=0s, table=2, n_packets=0, n_bytes=0, idle_age=0, priority=1,arp,dl_dst=ff:ff:ff:ff:ff:ff actions=resubmit(,21)',
  ' cookie=0x0, duration=0s, table=2, n_packets=0, n_bytes=0, idle_age=0, priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00 actions=resubmit(,20)',
  ' cookie=0x0, duration=0s, table=2, n_packets=0, n_bytes=0, idle_age=0, priority=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=resubmit(,22)',
  ' cookie=0x0, duration=0s, table=4, n_packets=0, n_bytes=0, idle_age=0, priority=1,tun_id=0x3e9 actions=mod_vlan_vid:1,resubmit(,9)',
  ' cookie=0x0, duration=0s, table=4, n_packets=0, n_bytes=0, idle_age=0, priority=1,tun_id=0x3ea actions=mod_vlan_vid:2,resubmit(,9)',
  ' cookie=0x0, duration=0s, table=4, n_packets=0, n_bytes=0, idle_age=0, priority=0 actions=drop',
  ' cookie=0x0, duration=0s, table=9, n_packets=0, n_bytes=0, idle_age=0, priority=1,dl_src=fa:16:3f:00:00:12 actions=output:1',
  ' cookie=0x0, duration=0s, table=9, n_packets=0, n_bytes=0, idle_age=0, priority=0 actions=resubmit(,10)',
  ' cookie=0x0, duration=0s, table=10, n_packets=0, n_bytes=0, idle_age=0, priority=1 actions=learn(table=20,hard_timeout=300,priority=1,cookie=0x8c4c7f2bd6e5f4ee,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[]),output:1',
  ' cookie=0x0, duration=0s, table=20, n_packets=0, n_bytes=0, idle_age=0, priority=2,dl_vlan=2,dl_dst=fa:16:3e:00:02:20 actions=strip_vlan,load:0x3ea->NXM_NX_TUN_ID[],output:2',
  ' cookie=0x0, duration=0s, table=20, n_packets=0, n_bytes=0, idle_age=0, priority=0 actions=resubmit(,22)',
  ' cookie=0x0, duration=0s, table=21, n_packets=0, n_bytes=0, idle_age=0, priority=1,arp,dl_vlan=2,arp_tpa=10.0.2.20 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:fa:16:3e:00:02:20,load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0xfa163e000220->NXM_NX_ARP_SHA[],load:0xa000214->NXM_OF_ARP_SPA[],IN_PORT',
  ' cookie=0x0, duration=0s, table=21, n_packets=0, n_bytes=0, idle_age=0, priority=0 actions=resubmit(,22)',
  ' cookie=0x0, duration=0s, table=22, n_packets=0, n_bytes=0, idle_age=0, priority=3,arp,dl_vlan=1,arp_tpa=10.0.1.1 actions=drop',
  ' cookie=0x0, duration=0s, table=22, n_packets=0, n_bytes=0, idle_age=0, priority=1,dl_vlan=1 actions=strip_vlan,set_tunnel:0x3e9,output:2,output:3',
  ' cookie=0x0, duration=0s, table=22, n_packets=0, n_bytes=0, idle_age=0, priority=1,dl_vlan=2 actions=strip_vlan,set_tunnel:0x3ea,output:2,output:3',
  ' cookie=0x0, duration=0s, table=22, n_packets=0, n_bytes=0, idle_age=0, priority=0 actions=drop',
];

const BR_INT = `table=0,priority=65535,dl_vlan=4095,actions=drop
table=0,priority=2,in_port=patch-tun,dl_src=fa:16:3f:00:00:12,actions=resubmit(,1)
table=0,priority=5,in_port=patch-tun,dl_dst=fa:16:3f:00:00:11,actions=resubmit(,3)
table=0,priority=0,actions=resubmit(,60)
table=1,priority=20,dl_vlan=1,dl_dst=fa:16:3e:00:01:10,actions=mod_dl_src:fa:16:3e:0a:00:01,resubmit(,60)
table=1,priority=1,actions=drop
table=60,priority=20,dl_vlan=1,dl_dst=fa:16:3e:00:01:10,actions=strip_vlan,output:vm1
table=60,priority=1,actions=NORMAL
`;

test('Neutron br-tun tables load from a flows file and dump back as OVS prints them', () => {
  const br = new Bridge('br-tun', 0, { defaultFlow: false });
  br.addFlows(BR_TUN, 0, 'br-tun.flows');
  assert.deepEqual(dumpFlows(br, 0), BR_TUN_DUMP);
});

test('Neutron br-int with port names dumps with numbers, and with names when asked', () => {
  const br = new Bridge('br-int', 0, { defaultFlow: false });
  br.addPort({ name: 'patch-tun', ofport: 1, kind: 'patch', peerBridge: 'br-tun', peerPort: 'patch-int' });
  br.addPort({ name: 'vm1', ofport: 2, kind: 'tap', tag: 1 });
  br.addFlows(BR_INT, 0, 'br-int.flows');
  const lines = dumpFlows(br, 0);
  assert.equal(lines[0], ' cookie=0x0, duration=0s, table=0, n_packets=0, n_bytes=0, idle_age=0, priority=65535,dl_vlan=4095 actions=drop');
  assert.equal(lines[1], ' cookie=0x0, duration=0s, table=0, n_packets=0, n_bytes=0, idle_age=0, priority=5,in_port=1,dl_dst=fa:16:3f:00:00:11 actions=resubmit(,3)');
  assert.equal(lines[6], ' cookie=0x0, duration=0s, table=60, n_packets=0, n_bytes=0, idle_age=0, priority=20,dl_vlan=1,dl_dst=fa:16:3e:00:01:10 actions=strip_vlan,output:2');
  const named = dumpFlows(br, 0, {}, br.portName);
  assert.equal(named[6], ' cookie=0x0, duration=0s, table=60, n_packets=0, n_bytes=0, idle_age=0, priority=20,dl_vlan=1,dl_dst=fa:16:3e:00:01:10 actions=strip_vlan,output:vm1');
});

test('every dump line parses back to the same rule (match, priority, table, cookie, actions, stats)', () => {
  const br = new Bridge('br-tun', 0, { defaultFlow: false });
  const rules = br.addFlows(BR_TUN + 'table=7,cookie=0xff,idle_timeout=30,hard_timeout=60,priority=9,tcp,nw_dst=10.0.0.0/8,tp_dst=80,actions=ct(commit,zone=5,nat(src=203.0.113.10)),output:2\n', 0, 'br-tun.flows');
  rules[0].credit(7, 700, 1000);
  const lines = dumpFlows(br, 3500);
  const back = br.allRules();
  assert.equal(lines.length, back.length);
  for (let i = 0; i < lines.length; i++) {
    const f = parseFlow(lines[i]);
    const r = back[i];
    assert.ok(matchesEqual(f.match, r.match), lines[i]);
    assert.equal(f.priority, r.priority);
    assert.equal(f.tableId, r.tableId);
    assert.equal(f.cookie, r.cookie);
    assert.equal(f.idleTimeoutS, r.idleTimeoutS);
    assert.equal(f.hardTimeoutS, r.hardTimeoutS);
    assert.equal(formatActions(f.actions), formatActions(r.actions));
    assert.ok(f.stats);
    assert.equal(f.stats.durationMs, 3500);
    assert.equal(f.stats.nPackets, r.nPackets);
    assert.equal(f.stats.nBytes, r.nBytes);
  }
  // A dump re-loaded with replace-flows changes nothing.
  const ch = br.replaceFlows(lines.map((l) => parseFlow(l)), 4000);
  assert.equal(ch.added.length + ch.removed.length, 0);
});
