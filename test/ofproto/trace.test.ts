/**
 * flowctl trace / ofproto/trace output: the exact layout (tables, nested resubmits, patch
 * bridges, warnings, Final flow, Megaflow, Datapath actions), a packet given as hex bytes, and
 * (when Open vSwitch is installed) the tree and Final flow lines compared with
 * `ovs-appctl ofproto/trace` for the same flows, character for character.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Bridge, BridgePort } from '../../src/ofproto/bridge';
import { Ofproto } from '../../src/ofproto/ofproto';
import { BridgeView } from '../../src/ofproto/bridge-view';
import { traceFields } from '../../src/ofproto/trace';
import { OvsOracle, ovsUnavailableReason } from '../helpers/ovs-oracle';

interface Def { name: string; ports: BridgePort[]; flows: string }

function build(defs: Def[]): Ofproto {
  const o = new Ofproto();
  for (const d of defs) {
    const b = new Bridge(d.name, 0, { defaultFlow: false });
    for (const p of d.ports) b.addPort(p);
    b.addFlows(d.flows, 0);
    o.addBridge(new BridgeView(b));
  }
  return o;
}

const TWO_BRIDGES: Def[] = [
  { name: 'br0', ports: [{ name: 'p1', ofport: 1, kind: 'dummy' }, { name: 'p2', ofport: 2, kind: 'dummy' },
    { name: 'p3', ofport: 3, kind: 'dummy' }, { name: 'pi', ofport: 10, kind: 'patch', peerBridge: 'br1', peerPort: 'pt' }],
  flows: `table=0,priority=10,in_port=1,ip,nw_src=10.0.0.0/8,actions=mod_dl_src:00:00:00:00:00:99,dec_ttl,resubmit(,1),output:2
table=1,priority=5,tcp,tp_dst=80,actions=mod_vlan_vid:7,output:3,strip_vlan,output:10
table=1,priority=1,actions=resubmit(,2),note:01,goto_table:3
table=2,priority=1,udp,actions=output:3
table=0,priority=1,actions=drop` },
  { name: 'br1', ports: [{ name: 'q1', ofport: 1, kind: 'dummy' }, { name: 'pt', ofport: 20, kind: 'patch', peerBridge: 'br0', peerPort: 'pi' }],
    flows: 'priority=1,actions=set_field:5->reg0,output:1' },
];

const TCP_PKT = 'in_port=1,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02,tcp,nw_src=10.1.1.1,nw_dst=10.2.2.2,nw_ttl=64,tcp_src=1,tcp_dst=80';

test('trace prints nested resubmits and patch bridges in the ofproto/trace layout', () => {
  const o = build(TWO_BRIDGES);
  assert.equal(traceFields(o, 'br0', TCP_PKT, 0).text, `Flow: tcp,in_port=1,vlan_tci=0x0000,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02,nw_src=10.1.1.1,nw_dst=10.2.2.2,nw_tos=0,nw_ecn=0,nw_ttl=64,nw_frag=no,tp_src=1,tp_dst=80,tcp_flags=0

bridge("br0")
-------------
 0. ip,in_port=1,nw_src=10.0.0.0/8, priority 10
    mod_dl_src:00:00:00:00:00:99
    dec_ttl
    resubmit(,1)
     1. tcp,tp_dst=80, priority 5
            mod_vlan_vid:7
            output:3
            strip_vlan
            output:10

        bridge("br1")
        -------------
         0. priority 1
            load:0x5->NXM_NX_REG0[]
            output:1
    output:2

Final flow: tcp,in_port=1,vlan_tci=0x0000,dl_src=00:00:00:00:00:99,dl_dst=00:00:00:00:00:02,nw_src=10.1.1.1,nw_dst=10.2.2.2,nw_tos=0,nw_ecn=0,nw_ttl=63,nw_frag=no,tp_src=1,tp_dst=80,tcp_flags=0
Megaflow: recirc_id=0,eth,tcp,in_port=1,vlan_tci=0x0000,dl_src=00:00:00:00:00:01,nw_src=10.0.0.0/8,nw_ttl=64,nw_frag=no,tp_dst=80
Datapath actions: set(eth(src=00:00:00:00:00:99)),set(ipv4(ttl=63)),push_vlan(vid=7,pcp=0),3,pop_vlan,4,2
`);
});

test('trace shows the dec_ttl exception, table misses and tail resubmits', () => {
  const o = build(TWO_BRIDGES);
  const t = traceFields(o, 'br0', 'in_port=1,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02,udp,nw_src=10.1.1.1,nw_dst=10.2.2.2,nw_ttl=1', 0).text;
  assert.match(t, /\n    dec_ttl\n     >> IPv4 decrement TTL exception\n\nFinal flow: udp,in_port=1,vlan_tci=0x0000,dl_src=00:00:00:00:00:99,/);
  assert.match(t, /\nDatapath actions: drop\n$/);
  const u = traceFields(o, 'br0', 'in_port=1,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02,icmp,nw_src=10.1.1.1,nw_dst=10.2.2.2,nw_ttl=9', 0).text;
  assert.ok(u.includes(`     1. priority 1
            resubmit(,2)
             2. No match.
                    drop
            note:01.00.00.00.00.00
            resubmit(,3)
         3. No match.
            drop
    output:2
`), u);
});

test('Final flow after set_tunnel on a bridge without a tunnel: tun_id alone and whole, as OVS prints it', () => {
  const o = build([{ name: 'br-tun', ports: [{ name: 'patch-int', ofport: 1, kind: 'dummy' }, { name: 'vx', ofport: 3, kind: 'dummy' }],
    flows: 'table=0,priority=1,in_port=1,actions=strip_vlan,set_tunnel:0x3e9,output:3' }]);
  const t = traceFields(o, 'br-tun', 'in_port=1,dl_vlan=1,dl_src=fa:16:3e:66:13:af,dl_dst=fa:16:3e:9f:55:67,icmp,nw_src=10.0.1.5,nw_dst=10.0.2.5', 0).text;
  assert.match(t, /^Final flow: icmp,tun_id=0x3e9,in_port=1,vlan_tci=0x0000,dl_src=fa:16:3e:66:13:af,/m);
  // Metadata, the other 64-bit field, prints whole too.
  const m = build([{ name: 'br0', ports: [{ name: 'a', ofport: 1, kind: 'dummy' }], flows: 'priority=1,actions=load:0x5->OXM_OF_METADATA[],output:1' }]);
  assert.match(traceFields(m, 'br0', 'in_port=1,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02', 0).text, /^Final flow: metadata=0x5,in_port=1,/m);
});

test('trace takes a packet as hex bytes after in_port', () => {
  const o = build([{ name: 'br0', ports: [{ name: 'p1', ofport: 1, kind: 'dummy' }, { name: 'p2', ofport: 2, kind: 'dummy' }],
    flows: 'priority=1,arp,arp_tpa=10.0.0.2,actions=output:2' }]);
  const arp = 'ffffffffffff 020000000001 0806 0001 0800 06 04 0001 020000000001 0a000001 000000000000 0a000002';
  const t = traceFields(o, 'br0', `in_port=1 ${arp}`, 0).text;
  assert.ok(t.startsWith('Flow: arp,in_port=1,vlan_tci=0x0000,dl_src=02:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,arp_spa=10.0.0.1,arp_tpa=10.0.0.2,arp_op=1,arp_sha=02:00:00:00:00:01,arp_tha=00:00:00:00:00:00\n'), t);
  assert.ok(t.endsWith('Datapath actions: 2\n'), t);
});

const skip = ovsUnavailableReason();
let oracle: OvsOracle | null = null;
after(() => { oracle?.stop(); });

/** The tree: from the first bridge line to the blank line before "Final flow:". */
function tree(text: string): string {
  return text.slice(text.indexOf('bridge('), text.indexOf('\nFinal flow:'));
}
function finalLine(text: string): string {
  return /^Final flow: .*$/m.exec(text)?.[0] ?? '';
}

test('trace tree and Final flow match ovs-appctl ofproto/trace character for character', { skip: skip ?? false }, () => {
  const orc = OvsOracle.start();
  oracle = orc;
  const o = build(TWO_BRIDGES);
  for (const d of TWO_BRIDGES) {
    orc.addBridge(d.name, d.ports.map((p) => ({ name: p.name, ofport: p.ofport, type: p.kind === 'patch' ? 'patch' as const : 'dummy' as const, peer: p.peerPort })));
    orc.addFlows(d.name, d.flows);
  }
  const packets = [TCP_PKT,
    'in_port=1,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02,udp,nw_src=10.1.1.1,nw_dst=10.2.2.2,nw_ttl=1',
    'in_port=1,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02,udp,nw_src=10.1.1.1,nw_dst=10.2.2.2,nw_ttl=5,udp_dst=53',
    'in_port=1,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02,icmp,nw_src=10.1.1.1,nw_dst=10.2.2.2,nw_ttl=9',
    'in_port=2,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02,arp,arp_op=1'];
  for (const p of packets) {
    const ovs = orc.trace('br0', p).raw;
    const ours = traceFields(o, 'br0', p, 0).text;
    assert.equal(tree(ours), tree(ovs), `packet ${p}`);
    assert.equal(finalLine(ours), finalLine(ovs), `packet ${p}`);
  }
});
