/**
 * Tenant isolation (issue 7, "done when"): two tenants with the same subnets and VM addresses
 * on different routers (examples/topologies/two-tenants.yaml) stay apart. Checked on the
 * generated flows of C1 executed by Open vSwitch (test/helpers/ovs-oracle.ts), with the OVS
 * firewall driver (the default) on the VM ports; skipped when Open vSwitch is not installed.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { OvsOracle, ovsUnavailableReason } from '../helpers/ovs-oracle';
import { loadTopology } from '../../src/dvr/topology';
import { DvrNodeConfig, nodeConfig } from '../../src/dvr/node-config';

const TOPO = loadTopology(path.join(__dirname, '../../../examples/topologies/two-tenants.yaml'));
const skip = ovsUnavailableReason() ?? false;
let oracle: OvsOracle | null = null;
let cfg: DvrNodeConfig | null = null;

function c1(): { o: OvsOracle; cfg: DvrNodeConfig; dp: (n: string) => number } {
  if (oracle === null || cfg === null) {
    cfg = nodeConfig(TOPO, 'C1');
    oracle = OvsOracle.start();
    for (const b of cfg.bridges) {
      oracle.addBridge(b.name, b.ports.map((p) => ({
        name: p.name, ofport: p.ofport, type: p.kind === 'patch' ? 'patch' as const : 'dummy' as const,
        peer: p.peer, tag: p.tag === 0 ? undefined : p.tag,
      })));
      oracle.addFlows(b.name, b.flows.map((f) => f.text).join('\n'));
    }
  }
  const o = oracle;
  const dp = (n: string): number => {
    for (const [k, v] of o.dpPorts()) if (v.name === n) return k;
    throw new Error(`no dp port ${n}`);
  };
  return { o, cfg, dp };
}

after(() => {
  if (oracle === null) return;
  try {
    oracle.appctl(['exit']);
    execFileSync('ovs-appctl', ['-t', `${oracle.dir}/ovsdb-server.ctl`, 'exit'], { stdio: 'pipe', timeout: 5000 });
  } catch { /* stop() kills by PID */ }
  oracle.stop();
});

test('each tenant gets its own local VLANs and tunnel types on C1', () => {
  const c = nodeConfig(TOPO, 'C1');
  assert.deepEqual([...c.localVlans], [['red-a', 1], ['blue-a', 2], ['red-b', 3], ['blue-b', 4]]);
  assert.deepEqual(c.bridges[1].ports.map((p) => p.name), ['patch-int', 'vxlan-c0a8640c', 'gre-c0a8640c']);
});

test('red1 -> 10.0.2.20 reaches red2 with VNI 2002; blue1 -> 10.0.2.20 reaches blue2 with GRE key 3002', { skip }, () => {
  const { o, dp } = c1();
  const red = o.trace('br-int', 'in_port=10,dl_src=fa:16:3e:a1:00:10,dl_dst=fa:16:3e:a1:00:01,icmp,nw_src=10.0.1.10,nw_dst=10.0.2.20,nw_ttl=64,icmp_type=8');
  // Each VM port passes the firewall in its own network's zone: red-a is local VLAN 1, blue-a 2.
  assert.deepEqual(red.datapathPasses, ['ct(zone=1),recirc(N)', `ct(commit,zone=1),set(eth(src=fa:16:3f:00:2d:f9,dst=fa:16:3e:a2:00:20)),set(ipv4(ttl=63)),${dp('vxlan-c0a8640c')}`]);
  assert.match(red.raw, /load:0x7d2->NXM_NX_TUN_ID\[\]\s+output:2/);
  const blue = o.trace('br-int', 'in_port=11,dl_src=fa:16:3e:b1:00:10,dl_dst=fa:16:3e:b1:00:01,icmp,nw_src=10.0.1.10,nw_dst=10.0.2.20,nw_ttl=64,icmp_type=8');
  assert.deepEqual(blue.datapathPasses, ['ct(zone=2),recirc(N)', `ct(commit,zone=2),set(eth(src=fa:16:3f:00:2d:f9,dst=fa:16:3e:b2:00:20)),set(ipv4(ttl=63)),${dp('gre-c0a8640c')}`]);
  assert.match(blue.raw, /load:0xbba->NXM_NX_TUN_ID\[\]\s+output:3/);
});

test('a red broadcast never reaches blue1 on the same node and floods only with red VNI 2001', { skip }, () => {
  const { o, dp } = c1();
  const tr = o.trace('br-int', 'in_port=10,dl_src=fa:16:3e:a1:00:10,dl_dst=ff:ff:ff:ff:ff:ff,arp,arp_op=1,arp_spa=10.0.1.10,arp_tpa=10.0.1.77');
  assert.ok(!tr.datapathActions.split(/[,()]/).includes(String(dp('blue1'))), tr.datapathActions);
  assert.ok(tr.datapathActions.split(/[,()]/).includes(String(dp('vxlan-c0a8640c'))), tr.datapathActions);
  assert.match(tr.raw, /load:0x7d1->NXM_NX_TUN_ID\[\]/);
  assert.doesNotMatch(tr.raw, /load:0xbb9->NXM_NX_TUN_ID\[\]/);
});

test('a frame from red1 to blue\'s gateway MAC is not routed by blue', { skip }, () => {
  const { o, dp } = c1();
  const tr = o.trace('br-int', 'in_port=10,dl_src=fa:16:3e:a1:00:10,dl_dst=fa:16:3e:b1:00:01,icmp,nw_src=10.0.1.10,nw_dst=10.0.2.20,nw_ttl=64,icmp_type=8');
  assert.doesNotMatch(tr.raw, /\n40\./, 'never enters the router table');
  assert.ok(!tr.datapathActions.split(/[,()]/).includes(String(dp('blue1'))), tr.datapathActions);
});

test('a router without external gateway answers net unreachable (note) for other destinations', { skip }, () => {
  const { o } = c1();
  const tr = o.trace('br-int', 'in_port=10,dl_src=fa:16:3e:a1:00:10,dl_dst=fa:16:3e:a1:00:01,icmp,nw_src=10.0.1.10,nw_dst=8.8.8.8,nw_ttl=64,icmp_type=8');
  // The egress filter commits the connection; the note outputs nothing.
  assert.deepEqual(tr.datapathPasses, ['ct(zone=1),recirc(N)', 'ct(commit,zone=1)']);
  assert.match(tr.raw, /note:66\.64\.01\.03\.00\.0a\.00\.01\.01\.fa\.16\.3e\.a1\.00\.01/);
});
