/**
 * br-tun flows of one node, in Neutron's tables and priorities (dvr-reference.md, "br-tun
 * tables"), written in the ovs-ofctl dialect of Neutron's ofctl driver (resubmit(,N),
 * mod_vlan_vid, strip_vlan, load:...->NXM_NX_TUN_ID[]), so dump-flows reads like Neutron's.
 * Called by: dvr/node-config.ts. Pure function of the plan.
 *
 * Remote ports (l2 population, tables 20 and 21) are the VM and DHCP ports bound to other nodes and
 * the SNAT (sg-) ports of the routers, which live on the SNAT host, on every tunnel network
 * this node needs. The flood list of table 22 is every other node that needs the network.
 */
import { hex, macToNumber } from './addr';
import { FlowList } from './flow-text';
import { NodePlan, PATCH_INT, remoteNodesOf, snatHost, subnetOf } from './node-plan';
import * as T from './tables';
import { isTunnelNetwork, switchPorts, TopoNetwork, TopoNode } from './topology';
import { ipv4FromString } from '../packet/ipv4';

export interface RemotePort { name: string; mac: string; ips: string[]; network: TopoNetwork; node: TopoNode }

/** Ports this node reaches through a tunnel: see the header. */
export function remotePorts(plan: NodePlan): RemotePort[] {
  const topo = plan.topo;
  const out: RemotePort[] = [];
  const needed = new Map(plan.networks.filter(isTunnelNetwork).map((n) => [n.name, n]));
  for (const p of switchPorts(topo)) {
    const net = needed.get(p.network);
    if (net === undefined || p.node === '' || p.node === plan.node.name) continue;
    out.push({ name: p.name, mac: p.mac, ips: p.fixedIps.map((f) => f.ip), network: net, node: topo.nodes.find((n) => n.name === p.node)! });
  }
  const snat = snatHost(topo);
  if (snat !== null && snat !== plan.node) {
    for (const r of topo.routers) {
      // An HA router's sg- MACs move with its master: haSnatFlows sends to every l3 agent.
      if (r.gateway === null || r.ha.ha) continue;
      for (const i of r.interfaces) {
        const net = needed.get(subnetOf(topo, i.subnet).network);
        if (net === undefined || i.snatMac === '') continue;
        out.push({ name: `sg-${r.name}-${i.subnet}`, mac: i.snatMac, ips: [i.snatIp], network: net, node: snat });
      }
    }
  }
  return out;
}

/** The ARP responder idiom of Neutron's table 21: the request becomes a reply from `mac`/`ip`. */
export function arpResponderActions(mac: string, ip: string): string {
  return [
    'move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]',
    `mod_dl_src:${mac}`,
    'load:0x2->NXM_OF_ARP_OP[]',
    'move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[]',
    'move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[]',
    `load:${hex(macToNumber(mac))}->NXM_NX_ARP_SHA[]`,
    `load:${hex(ipv4FromString(ip))}->NXM_OF_ARP_SPA[]`,
  ].join(',');
}

/**
 * sg- ports of HA routers (dvr/ha.ts): their MAC lives on whichever l3 agent is master, so a
 * frame to it goes to every l3 agent of the router (table 20 priority 2, above learned
 * entries); only the master's br-int takes it, the others drop it. A failover then needs no
 * relearning, no announcement and no central server. The sg- IPs are answered by the ARP
 * responder (the MAC does not move).
 */
function haSnatFlows(plan: NodePlan, f: FlowList, lv: (net: string) => number): void {
  const topo = plan.topo;
  for (const r of topo.routers) {
    if (!r.ha.ha || r.gateway === null) continue;
    for (const i of r.interfaces) {
      const net = plan.networks.find((n) => n.name === subnetOf(topo, i.subnet).network);
      if (net === undefined || !isTunnelNetwork(net) || i.snatMac === '') continue;
      const outs = plan.tunnels.filter((t) => t.type === net.type && t.remote.name !== plan.node.name && r.ha.l3Agents.includes(t.remote.name))
        .map((t) => `output:${t.ofport}`);
      if (outs.length === 0) continue;
      f.add(T.TUN_UCAST_TO_TUN, 2, `dl_vlan=${lv(net.name)},dl_dst=${i.snatMac}`,
        `strip_vlan,load:${hex(net.segmentationId)}->NXM_NX_TUN_ID[],${outs.join(',')}`);
      f.add(T.TUN_ARP_RESPONDER, 1, `arp,dl_vlan=${lv(net.name)},arp_tpa=${i.snatIp}`, `${arpResponderActions(i.snatMac, i.snatIp)},in_port`);
    }
  }
}

export function tunFlows(plan: NodePlan): string[] {
  const f = new FlowList();
  const topo = plan.topo;
  const patchInt = plan.ofports.get('br-tun')!.get(PATCH_INT)!;
  const tunnelOf = (type: string, node: TopoNode): number =>
    plan.tunnels.find((t) => t.type === type && t.remote === node)!.ofport;
  const lv = (net: string): number => plan.localVlans.get(net)!;
  /** Only tunnel networks reach br-tun; vlan and flat networks leave through their physical bridge. */
  const tunnelNet = (net: string): boolean => plan.networks.some((n) => n.name === net && isTunnelNetwork(n));

  // Table 0: from br-int to DVR processing, from a tunnel to its type's ingress table.
  f.add(T.TUN_PATCH_LV_TO_TUN, 1, `in_port=${patchInt}`, `resubmit(,${T.TUN_DVR_PROCESS})`);
  for (const t of plan.tunnels) {
    f.add(T.TUN_PATCH_LV_TO_TUN, 1, `in_port=${t.ofport}`, `resubmit(,${t.type === 'vxlan' ? T.TUN_VXLAN_TO_LV : T.TUN_GRE_TO_LV})`);
  }
  f.add(T.TUN_PATCH_LV_TO_TUN, 0, '', 'drop');

  // Table 1: routed frames never leave with the gateway MAC (drop to it, rewrite from it).
  for (const r of plan.routers) {
    for (const i of r.interfaces) {
      const net = subnetOf(topo, i.subnet).network;
      if (!tunnelNet(net)) continue;
      f.add(T.TUN_DVR_PROCESS, 2, `dl_vlan=${lv(net)},dl_dst=${i.mac}`, 'drop');
    }
  }
  for (const r of plan.routers) {
    for (const i of r.interfaces) {
      const net = subnetOf(topo, i.subnet).network;
      if (!tunnelNet(net)) continue;
      f.add(T.TUN_DVR_PROCESS, 1, `dl_vlan=${lv(net)},dl_src=${i.mac}`, `mod_dl_src:${plan.node.dvrMac},resubmit(,${T.TUN_PATCH_LV_TO_TUN_2})`);
    }
  }
  f.add(T.TUN_DVR_PROCESS, 0, '', `resubmit(,${T.TUN_PATCH_LV_TO_TUN_2})`);

  // Table 2: ARP broadcast to the responder, unicast to l2pop/learned, the rest floods.
  f.add(T.TUN_PATCH_LV_TO_TUN_2, 1, 'arp,dl_dst=ff:ff:ff:ff:ff:ff', `resubmit(,${T.TUN_ARP_RESPONDER})`);
  f.add(T.TUN_PATCH_LV_TO_TUN_2, 0, 'dl_dst=00:00:00:00:00:00/01:00:00:00:00:00', `resubmit(,${T.TUN_UCAST_TO_TUN})`);
  f.add(T.TUN_PATCH_LV_TO_TUN_2, 0, 'dl_dst=01:00:00:00:00:00/01:00:00:00:00:00', `resubmit(,${T.TUN_FLOOD_TO_TUN})`);

  // Tables 3 (GRE) and 4 (VXLAN): VNI/key -> local VLAN.
  for (const n of plan.networks) {
    if (!isTunnelNetwork(n)) continue;
    f.add(n.type === 'vxlan' ? T.TUN_VXLAN_TO_LV : T.TUN_GRE_TO_LV, 1, `tun_id=${hex(n.segmentationId)}`,
      `mod_vlan_vid:${lv(n.name)},resubmit(,${T.TUN_DVR_NOT_LEARN})`);
  }
  f.add(T.TUN_GRE_TO_LV, 0, '', 'drop');
  f.add(T.TUN_VXLAN_TO_LV, 0, '', 'drop');

  // Table 9: frames routed by another node (source = its DVR MAC) are not learned.
  for (const n of topo.nodes) {
    if (n === plan.node) continue;
    f.add(T.TUN_DVR_NOT_LEARN, 1, `dl_src=${n.dvrMac}`, `output:${patchInt}`);
  }
  f.add(T.TUN_DVR_NOT_LEARN, 0, '', `resubmit(,${T.TUN_LEARN_FROM_TUN})`);

  // Table 10: learn the way back into table 20, then deliver.
  f.add(T.TUN_LEARN_FROM_TUN, 1, '',
    `learn(table=${T.TUN_UCAST_TO_TUN},hard_timeout=${T.LEARN_HARD_TIMEOUT_S},priority=1,NXM_OF_VLAN_TCI[0..11],` +
    'NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],' +
    `output:OXM_OF_IN_PORT[]),output:${patchInt}`);

  // Tables 20 and 21: l2 population.
  const remotes = remotePorts(plan);
  for (const p of remotes) {
    f.add(T.TUN_UCAST_TO_TUN, 2, `dl_vlan=${lv(p.network.name)},dl_dst=${p.mac}`,
      `strip_vlan,load:${hex(p.network.segmentationId)}->NXM_NX_TUN_ID[],output:${tunnelOf(p.network.type, p.node)}`);
  }
  haSnatFlows(plan, f, lv);
  f.add(T.TUN_UCAST_TO_TUN, 0, '', `resubmit(,${T.TUN_FLOOD_TO_TUN})`);
  for (const p of remotes) {
    for (const ip of p.ips) {
      f.add(T.TUN_ARP_RESPONDER, 1, `arp,dl_vlan=${lv(p.network.name)},arp_tpa=${ip}`, `${arpResponderActions(p.mac, ip)},in_port`);
    }
  }
  f.add(T.TUN_ARP_RESPONDER, 0, '', `resubmit(,${T.TUN_FLOOD_TO_TUN})`);

  // Table 22: gateway ARP never crosses a tunnel; flood to every node with the network.
  for (const r of plan.routers) {
    for (const i of r.interfaces) {
      const s = subnetOf(topo, i.subnet);
      if (!tunnelNet(s.network)) continue;
      f.add(T.TUN_FLOOD_TO_TUN, 3, `arp,dl_vlan=${lv(s.network)},arp_tpa=${s.gatewayIp}`, 'drop');
    }
  }
  for (const n of plan.networks) {
    if (!isTunnelNetwork(n)) continue;
    const outs = remoteNodesOf(plan, n.name).map((x) => `output:${tunnelOf(n.type, x)}`);
    if (outs.length === 0) continue;
    f.add(T.TUN_FLOOD_TO_TUN, 1, `dl_vlan=${lv(n.name)}`, `strip_vlan,load:${hex(n.segmentationId)}->NXM_NX_TUN_ID[],${outs.join(',')}`);
  }
  f.add(T.TUN_FLOOD_TO_TUN, 0, '', 'drop');
  return f.texts();
}
