/**
 * Translation behaviour (src/ofproto/xlate.ts with normal.ts, learn.ts, ofproto.ts): NORMAL
 * learning, aging and access tags; learn in Neutron's br-tun table 10; patch ports between two
 * bridges; dec_ttl drops; the resubmit depth limit; output to the input port; the ARP responder
 * idiom run on real frame bytes by the slow path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bridge, BridgePort } from '../../src/ofproto/bridge';
import { Ofproto, TunnelEnds } from '../../src/ofproto/ofproto';
import { BridgeView } from '../../src/ofproto/bridge-view';
import { xlate, executeSlowPath, MAX_XLATE_DEPTH } from '../../src/ofproto/xlate';
import { keyFromFields } from '../../src/ofproto/trace';
import { DpDrop, formatDpActions } from '../../src/dpif/dp-actions';
import { PacketBatch } from '../../src/netdev/batch';
import { extractKey, OFFS_WORDS } from '../../src/packet/flowkey';
import { KEY_WORDS } from '../../src/packet/flowkey-layout';
import { formatActions } from '../../src/ofproto/action-syntax';
import { formatMatch } from '../../src/ofproto/match-syntax';

function setup(defs: { name: string; ports: BridgePort[]; flows: string; tunnels?: Map<string, TunnelEnds> }[]):
    { o: Ofproto; v: Map<string, BridgeView> } {
  const o = new Ofproto();
  const v = new Map<string, BridgeView>();
  for (const d of defs) {
    const b = new Bridge(d.name, 0, { defaultFlow: false });
    for (const p of d.ports) b.addPort(p);
    if (d.flows.trim() !== '') b.addFlows(d.flows, 0);
    const view = new BridgeView(b, d.tunnels);
    v.set(d.name, view);
    o.addBridge(view);
  }
  return { o, v };
}

function run(o: Ofproto, br: BridgeView, fields: string, nowMs = 0, sideEffects = true): ReturnType<typeof xlate> {
  return xlate({ ofproto: o, bridge: br, key: keyFromFields(fields, br), packetBytes: 60, nowMs, sideEffects });
}

const A = 'fa:16:3e:00:00:0a', B = 'fa:16:3e:00:00:0b';

test('NORMAL: floods within the access VLAN, tags on trunks, then forwards to the learned port', () => {
  const { o, v } = setup([{ name: 'br0', flows: 'priority=0,actions=NORMAL', ports: [
    { name: 'trunk', ofport: 1, kind: 'dummy' }, { name: 'a5', ofport: 2, kind: 'dummy', tag: 5 },
    { name: 'b5', ofport: 3, kind: 'dummy', tag: 5 }, { name: 'c6', ofport: 4, kind: 'dummy', tag: 6 }] }]);
  const br = v.get('br0')!;
  // dp ports follow ofports here: trunk=1, a5=2, b5=3, c6=4.
  let r = run(o, br, `in_port=2,dl_src=${A},dl_dst=${B},ip`);
  assert.equal(formatDpActions(r.actions), 'push_vlan(vid=5,pcp=0),1,pop_vlan,3');
  r = run(o, br, `in_port=3,dl_src=${B},dl_dst=${A},ip`, 1000);
  assert.equal(formatDpActions(r.actions), '2');
  // Back towards B, learned on b5 at t=1s.
  r = run(o, br, `in_port=2,dl_src=${A},dl_dst=${B},ip`, 2000);
  assert.equal(formatDpActions(r.actions), '3');
  // The megaflow holds the MACs and the VLAN, as NORMAL read them.
  assert.equal(r.wc[6], 0xffff); assert.equal(r.wc[7], 0xffffffff);
  assert.equal(r.wc[10] >>> 16, 0xffff);
});

test('NORMAL: reserved multicast (STP, LLDP, CDP) is dropped with its reason and not learned, unless forward_bpdu', () => {
  const { o, v } = setup([{ name: 'br0', flows: 'priority=0,actions=NORMAL', ports: [
    { name: 'p1', ofport: 1, kind: 'dummy' }, { name: 'p2', ofport: 2, kind: 'dummy' }, { name: 'p3', ofport: 3, kind: 'dummy' }] }]);
  const br = v.get('br0')!;
  for (const dst of ['01:80:c2:00:00:00', '01:80:c2:00:00:0e', '01:00:0c:cc:cc:cc', '01:00:0c:cc:cc:c7', '00:e0:2b:00:00:04']) {
    const r = run(o, br, `in_port=1,dl_src=${A},dl_dst=${dst},dl_type=0x88cc`);
    assert.equal(formatDpActions(r.actions), 'drop', dst);
    assert.equal(r.drop, DpDrop.ReservedMulticast, dst);
  }
  assert.equal(br.macs.size, 0, 'a refused frame teaches NORMAL nothing');
  // Just outside the ranges: forwarded (flooded).
  for (const dst of ['01:80:c2:00:00:10', '01:00:0c:cc:cc:c8']) {
    assert.equal(formatDpActions(run(o, br, `in_port=1,dl_src=${A},dl_dst=${dst},dl_type=0x88cc`).actions), '2,3', dst);
  }
  br.bridge.forwardBpdu = true;
  assert.equal(formatDpActions(run(o, br, `in_port=1,dl_src=${A},dl_dst=01:80:c2:00:00:0e,dl_type=0x88cc`).actions), '2,3');
});

test('NORMAL: a tagged frame on an access port is dropped; a trunk frame floods its VLAN untagged to access ports', () => {
  const { o, v } = setup([{ name: 'br0', flows: 'priority=0,actions=NORMAL', ports: [
    { name: 'trunk', ofport: 1, kind: 'dummy' }, { name: 'a5', ofport: 2, kind: 'dummy', tag: 5 },
    { name: 'c6', ofport: 4, kind: 'dummy', tag: 6 }, { name: 'trunk2', ofport: 7, kind: 'dummy' }] }]);
  const br = v.get('br0')!;
  let r = run(o, br, `in_port=2,dl_vlan=5,dl_src=${A},dl_dst=${B},ip`);
  assert.equal(formatDpActions(r.actions), 'drop');
  assert.equal(r.drop, DpDrop.Pipeline);
  r = run(o, br, `in_port=1,dl_vlan=6,dl_src=${A},dl_dst=${B},ip`);
  assert.equal(formatDpActions(r.actions), 'pop_vlan,3,push_vlan(vid=6,pcp=0),4');
});

test('NORMAL: MAC entries age out after 300 s and the frame floods again', () => {
  const { o, v } = setup([{ name: 'br0', flows: 'priority=0,actions=NORMAL', ports: [
    { name: 'p1', ofport: 1, kind: 'dummy' }, { name: 'p2', ofport: 2, kind: 'dummy' }, { name: 'p3', ofport: 3, kind: 'dummy' }] }]);
  const br = v.get('br0')!;
  run(o, br, `in_port=2,dl_src=${B},dl_dst=${A},ip`, 0);
  assert.equal(formatDpActions(run(o, br, `in_port=1,dl_src=${A},dl_dst=${B},ip`, 300_000).actions), '2');
  assert.equal(formatDpActions(run(o, br, `in_port=3,dl_src=fa:16:3e:00:00:0c,dl_dst=${B},ip`, 300_001).actions), '1,2');
  assert.equal(br.macs.expire(300_001), 1); // B aged out; A and C are younger
  // A trace does not learn.
  const { o: o2, v: v2 } = setup([{ name: 'br0', flows: 'priority=0,actions=NORMAL', ports: [
    { name: 'p1', ofport: 1, kind: 'dummy' }, { name: 'p2', ofport: 2, kind: 'dummy' }] }]);
  run(o2, v2.get('br0')!, `in_port=2,dl_src=${B},dl_dst=${A},ip`, 0, false);
  assert.equal(v2.get('br0')!.macs.size, 0);
});

const BRTUN_LEARN = 'learn(table=20,hard_timeout=300,priority=1,cookie=0x8f,NXM_OF_VLAN_TCI[0..11],' +
  'NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],' +
  'output:OXM_OF_IN_PORT[])';

test('learn: Neutron br-tun table 10 learns the remote MAC into table 20, and unicast then goes to that tunnel', () => {
  const tunnels = new Map<string, TunnelEnds>([['vxlan-c0a8640c', { localIp: 0xc0a8640b, remoteIp: 0xc0a8640c }]]);
  const { o, v } = setup([{ name: 'br-tun', tunnels, ports: [
    { name: 'patch-int', ofport: 1, kind: 'dummy' }, { name: 'vxlan-c0a8640c', ofport: 2, kind: 'vxlan' }],
  flows: `
table=0,priority=1,in_port=1,actions=resubmit(,2)
table=0,priority=1,in_port=2,actions=resubmit(,4)
table=0,priority=0,actions=drop
table=2,priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,20)
table=4,priority=1,tun_id=0x3ea,actions=mod_vlan_vid:2,resubmit(,10)
table=10,priority=1,actions=${BRTUN_LEARN},output:1
table=20,priority=0,actions=resubmit(,22)
table=22,priority=0,actions=drop` }]);
  const br = v.get('br-tun')!;
  const vm2 = 'fa:16:3e:00:02:20';
  // Before learning: unicast from br-int to VM2 reaches table 22 and is dropped.
  assert.equal(formatDpActions(run(o, br, `in_port=1,dl_vlan=2,dl_src=${A},dl_dst=${vm2},ip`).actions), 'drop');
  // A frame from C2 over VXLAN: pushed to lv 2, learned, delivered to br-int.
  const r = run(o, br, `in_port=2,tun_id=0x3ea,tun_src=192.168.100.12,tun_dst=192.168.100.11,dl_src=${vm2},dl_dst=${A},ip`, 5000);
  assert.equal(formatDpActions(r.actions), 'push_vlan(vid=2,pcp=0),1');
  assert.equal(r.nLearned, 1);
  const learned = br.bridge.tables[20].rules().filter((x) => x.priority === 1);
  assert.equal(learned.length, 1);
  assert.equal(formatMatch(learned[0].match, 1), 'priority=1,vlan_tci=0x0002/0x0fff,dl_dst=fa:16:3e:00:02:20');
  assert.equal(formatActions(learned[0].actions), 'load:0->NXM_OF_VLAN_TCI[],load:0x3ea->NXM_NX_TUN_ID[],output:2');
  assert.equal(learned[0].hardTimeoutS, 300);
  assert.equal(learned[0].cookie, 0x8fn);
  // The learn read tun_id, dl_src, vlan and in_port: all in the megaflow.
  assert.equal(r.wc[3], 0xffffffff);
  assert.equal(r.wc[9], 0xffffffff);
  // After learning: unicast from br-int pops the VLAN and goes out the tunnel with VNI 1002.
  const u = run(o, br, `in_port=1,dl_vlan=2,dl_src=${A},dl_dst=${vm2},ip`, 6000);
  assert.equal(formatDpActions(u.actions),
    'set(tunnel(tun_id=0x3ea,src=192.168.100.11,dst=192.168.100.12,flags(df|key))),pop_vlan,2');
});

test('patch ports: output continues in the peer bridge at table 0 with in_port = peer port, registers cleared', () => {
  const { o, v } = setup([
    { name: 'br-int', ports: [{ name: 'vm1', ofport: 5, kind: 'dummy' }, { name: 'patch-tun', ofport: 1, kind: 'patch', peerBridge: 'br-tun', peerPort: 'patch-int' }],
      flows: 'priority=1,in_port=5,actions=load:7->NXM_NX_REG3[],mod_vlan_vid:3,output:1,strip_vlan,output:5\n' +
        'priority=1,in_port=1,actions=output:5' },
    { name: 'br-tun', ports: [{ name: 'patch-int', ofport: 1, kind: 'patch', peerBridge: 'br-int', peerPort: 'patch-tun' }, { name: 'uplink', ofport: 9, kind: 'dummy' }],
      flows: 'priority=2,in_port=1,reg3=0,dl_vlan=3,actions=mod_dl_src:fa:16:3f:00:00:11,output:9\npriority=1,actions=drop' },
  ]);
  // dp ports: vm1 -> 1, uplink -> 2 (patch ports have none).
  const r = run(o, v.get('br-int')!, `in_port=5,dl_src=${A},dl_dst=${B},ip`);
  // The last output:5 is the input port: skipped.
  assert.equal(formatDpActions(r.actions), 'set(eth(src=fa:16:3f:00:00:11)),push_vlan(vid=3,pcp=0),2');
  assert.equal(r.rulesHit.length, 2);
  assert.equal(r.rulesHit[1].tableId, 0);
  // Back in br-int the flow is its own again: the final flow has the original dl_src and no tag.
  assert.equal(r.finalKey[9], 0x3e00000a);
  assert.equal(r.finalKey[10] >>> 16, 0);
});

test('output to the input port is dropped unless written as in_port', () => {
  const { o, v } = setup([{ name: 'br0', ports: [{ name: 'p1', ofport: 1, kind: 'dummy' }],
    flows: 'priority=1,arp,actions=output:1\npriority=1,ip,actions=in_port' }]);
  assert.equal(formatDpActions(run(o, v.get('br0')!, 'in_port=1,arp').actions), 'drop');
  assert.equal(formatDpActions(run(o, v.get('br0')!, 'in_port=1,ip').actions), '1');
});

test('dec_ttl at TTL 1 stops the rule and counts ttl_exceeded; outputs before it stay', () => {
  const { o, v } = setup([{ name: 'br0', ports: [{ name: 'p1', ofport: 1, kind: 'dummy' }, { name: 'p2', ofport: 2, kind: 'dummy' }, { name: 'p3', ofport: 3, kind: 'dummy' }],
    flows: 'priority=1,in_port=1,ip,actions=dec_ttl,output:2\npriority=1,in_port=3,ip,actions=output:2,dec_ttl,output:1' }]);
  const br = v.get('br0')!;
  let r = run(o, br, 'in_port=1,ip,nw_ttl=1');
  assert.equal(formatDpActions(r.actions), 'drop');
  assert.equal(r.drop, DpDrop.TtlExceeded);
  assert.equal(r.wc[13] & 0xff00, 0xff00);
  r = run(o, br, 'in_port=1,ip,nw_ttl=64');
  assert.equal(formatDpActions(r.actions), 'set(ipv4(ttl=63)),2');
  r = run(o, br, 'in_port=3,ip,nw_ttl=0');
  assert.equal(formatDpActions(r.actions), '2');
  assert.equal(r.drop, DpDrop.TtlExceeded);
});

test(`resubmit deeper than ${MAX_XLATE_DEPTH} fails the translation and drops`, () => {
  const { o, v } = setup([{ name: 'br0', ports: [{ name: 'p1', ofport: 1, kind: 'dummy' }, { name: 'p2', ofport: 2, kind: 'dummy' }],
    flows: 'table=0,priority=1,actions=output:2,resubmit(,0)' }]);
  const r = run(o, v.get('br0')!, 'in_port=1,ip');
  assert.equal(r.drop, DpDrop.RecursionTooDeep);
  assert.deepEqual(r.actions, [{ kind: 'drop', reason: DpDrop.RecursionTooDeep }]);
  // A chain of 60 tables is fine.
  const flows: string[] = [];
  for (let t = 0; t < 60; t++) flows.push(`table=${t},actions=resubmit(,${t + 1})`);
  flows.push('table=60,actions=output:2');
  const { o: o2, v: v2 } = setup([{ name: 'br0', ports: [{ name: 'p1', ofport: 1, kind: 'dummy' }, { name: 'p2', ofport: 2, kind: 'dummy' }], flows: flows.join('\n') }]);
  assert.equal(formatDpActions(run(o2, v2.get('br0')!, 'in_port=1,ip').actions), '2');
});

test('more than 4096 resubmits in one translation drops with too_many_resubmits (the loop guard)', () => {
  const flows: string[] = [];
  for (let t = 0; t < 7; t++) flows.push(`table=${t},actions=${Array(4).fill(`resubmit(,${t + 1})`).join(',')}`);
  flows.push('table=7,actions=output:2');
  const { o, v } = setup([{ name: 'br0', ports: [{ name: 'p1', ofport: 1, kind: 'dummy' }, { name: 'p2', ofport: 2, kind: 'dummy' }], flows: flows.join('\n') }]);
  const r = run(o, v.get('br0')!, 'in_port=1,ip');
  assert.equal(r.drop, DpDrop.TooManyResubmits);
  assert.equal(formatDpActions(r.actions), 'drop');
});

test('slow path runs the ARP responder idiom on the frame and credits rule counters', () => {
  const { o, v } = setup([{ name: 'br-tun', ports: [{ name: 'patch-int', ofport: 1, kind: 'dummy' }],
    flows: 'table=0,priority=1,arp,arp_op=1,arp_tpa=10.0.2.20,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],' +
      'mod_dl_src:fa:16:3e:00:02:20,load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],' +
      'move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0xfa163e000220->NXM_NX_ARP_SHA[],' +
      'load:0x0a000214->NXM_OF_ARP_SPA[],in_port' }]);
  const br = v.get('br-tun')!;
  const req = Buffer.from('ffffffffffff' + 'fa163e000110' + '0806' + '0001080006040001' + 'fa163e000110' + '0a00010a' +
    '000000000000' + '0a000214', 'hex');
  const batch = new PacketBatch(2);
  const s = batch.append(req);
  const keys = new Uint32Array(KEY_WORDS);
  extractKey(batch.buf, batch.off[s], batch.len[s], 1, keys, 0, new Uint16Array(OFFS_WORDS), 0);
  const outs: string[] = [];
  const { xlate: r, drop } = executeSlowPath(o, br, keys, 0, batch, s, 1234, (p, b, i) => {
    outs.push(`${p}:${Buffer.from(b.frame(i)).toString('hex')}`);
  });
  assert.equal(drop, DpDrop.None);
  assert.deepEqual(outs, ['1:' + 'fa163e000110' + 'fa163e000220' + '0806' + '0001080006040002' + 'fa163e000220' +
    '0a000214' + 'fa163e000110' + '0a00010a']);
  assert.equal(r.rulesHit[0].nPackets, 1);
  assert.equal(r.rulesHit[0].nBytes, 42);
  assert.equal(r.rulesHit[0].lastUsedMs, 1234);
});
