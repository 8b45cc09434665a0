/**
 * br-int flows of one node: Neutron's tables 0, 1, 3 and 60 (dvr-reference.md, "br-int
 * tables"), the external-network entry from int-br-ex as Neutron's physical-bridge wiring has
 * it, and flowd's router tables (flows-router.ts). Also br-ex's flows, which are Neutron's for
 * a flat physical network. Called by: dvr/node-config.ts. Pure functions of the plan.
 *
 * VM ports are access ports tagged with their network's local VLAN (`tag`), as in Neutron:
 * frames between local VMs and to/from br-tun go through NORMAL (table 60, priority 1). With
 * firewall_driver openvswitch, the firewall's tables 60-94 (firewall-flows.ts) come first.
 */
import { firewallFlows } from './firewall-flows';
import { FlowList } from './flow-text';
import { externalIngressActions, nsFlows, nsInterceptFlows } from './flows-ns';
import { ICMP_DEST_UNREACHABLE, ICMP_FRAG_NEEDED_CODE, icmpErrorNote, routerFlows, routerInterceptFlows } from './flows-router';
import { nsPlan } from './ns-plan';
import { BR_INT, intPatchName, NodePlan, PATCH_TUN, phyPatchName, subnetOf } from './node-plan';
import * as T from './tables';

export function intFlows(plan: NodePlan): string[] {
  const f = new FlowList();
  const topo = plan.topo;
  const ports = plan.ofports.get(BR_INT)!;
  const patchTun = ports.get(PATCH_TUN)!;

  // Table 0.
  f.add(T.INT_LOCAL_SWITCHING, 65535, 'dl_vlan=4095', 'drop');
  f.add(T.INT_LOCAL_SWITCHING, 5, `in_port=${patchTun},dl_dst=${plan.node.dvrMac}`, `resubmit(,${T.INT_ARP_DVR_MAC_TO_DST_MAC})`);
  for (const n of topo.nodes) {
    if (n === plan.node) continue;
    f.add(T.INT_LOCAL_SWITCHING, 2, `in_port=${patchTun},dl_src=${n.dvrMac}`, `resubmit(,${T.INT_DVR_TO_SRC_MAC})`);
  }
  const ns = nsPlan(plan);
  if (plan.external !== null) {
    const intEx = ports.get(intPatchName(plan.external.bridge))!;
    // With north-south duties, external frames pass flowd's external table 50 first.
    f.add(T.INT_LOCAL_SWITCHING, 3, `in_port=${intEx},vlan_tci=0x0000/0x1fff`,
      ns !== null ? externalIngressActions(ns) : `mod_vlan_vid:${plan.external.lv},resubmit(,${T.INT_TRANSIENT})`);
    f.add(T.INT_LOCAL_SWITCHING, 2, `in_port=${intEx}`, 'drop');
  }
  routerInterceptFlows(plan, f);
  if (ns !== null) nsInterceptFlows(plan, ns, f);
  f.add(T.INT_LOCAL_SWITCHING, 0, '', `resubmit(,${T.INT_TRANSIENT})`);

  // Table 1: a frame routed on another node gets the gateway MAC of the VM's subnet as source.
  for (const lp of plan.localPorts) {
    for (const fip of lp.port.fixedIps) {
      for (const r of plan.routers) {
        const i = r.interfaces.find((x) => x.subnet === fip.subnet);
        if (i === undefined) continue;
        f.add(T.INT_DVR_TO_SRC_MAC, 20, `dl_vlan=${lp.lv},dl_dst=${lp.port.mac}`, `mod_dl_src:${i.mac},resubmit(,${T.INT_TRANSIENT})`);
      }
    }
  }
  f.add(T.INT_DVR_TO_SRC_MAC, 1, '', 'drop');

  // Table 3: a frame sent to this node's DVR MAC goes to the router as if sent to the gateway.
  for (const r of plan.routers) {
    for (const i of r.interfaces) {
      const s = subnetOf(topo, i.subnet);
      f.add(T.INT_ARP_DVR_MAC_TO_DST_MAC, 5, `dl_vlan=${plan.localVlans.get(s.network)!},dl_dst=${plan.node.dvrMac}`,
        `mod_dl_dst:${i.mac},resubmit(,${T.INT_FLOWD_ROUTE})`);
    }
  }

  routerFlows(plan, f);
  if (ns !== null) nsFlows(plan, ns, f);

  // Tables 60-94 of the firewall (its priority 90/100 flows in table 60 come before the rest).
  if (plan.firewall) firewallFlows(plan, f);

  // Table 60: direct delivery to local ports, else NORMAL.
  for (const lp of plan.localPorts) {
    f.add(T.INT_TRANSIENT, 20, `dl_vlan=${lp.lv},dl_dst=${lp.port.mac}`, `strip_vlan,output:${lp.ofport}`);
  }
  f.add(T.INT_TRANSIENT, 1, '', 'NORMAL');
  return f.texts();
}

/** br-ex: Neutron's flows for a flat physical network behind phy-br-ex. */
export function exFlows(plan: NodePlan): string[] {
  const f = new FlowList();
  const ext = plan.external!;
  const phy = plan.ofports.get(ext.bridge)!.get(phyPatchName(ext.bridge))!;
  f.add(0, 4, `in_port=${phy},dl_vlan=${ext.lv}`, 'strip_vlan,NORMAL');
  f.add(0, 2, `in_port=${phy}`, 'drop');
  f.add(0, 0, '', 'NORMAL');
  // The external MTU check (tables.ts EX_FLOWD_MTU): addresses this node serves that lead
  // into a tenant network, with the smallest MTU behind them.
  const ns = nsPlan(plan);
  const dev = ext.device === '' ? undefined : plan.ofports.get(ext.bridge)!.get(ext.device);
  if (ns !== null && dev !== undefined) {
    const topo = plan.topo;
    const mtuOf = (network: string): number => topo.networks.find((n) => n.name === network)?.mtuBytes ?? 1500;
    const served: { ip: string; mac: string; mtu: number }[] = [];
    for (const fip of ns.fips) served.push({ ip: fip.ip, mac: fip.mac, mtu: mtuOf(fip.port.network) });
    for (const r of ns.routers) {
      if (!r.snatHere || r.router.gateway === null) continue;
      const mtus = r.router.interfaces.map((i) => mtuOf(topo.subnets.find((s) => s.name === i.subnet)?.network ?? ''));
      served.push({ ip: r.router.gateway.ip, mac: r.router.gateway.mac, mtu: Math.min(...mtus) });
    }
    for (const a of served) {
      f.add(0, T.PRIO_EX_MTU, `ip,in_port=${dev},nw_dst=${a.ip}`, `check_pkt_larger(${a.mtu + 14})->NXM_NX_REG0[0],resubmit(,${T.EX_FLOWD_MTU})`);
      f.add(T.EX_FLOWD_MTU, 1, `reg0=0x1/0x1,ip,nw_dst=${a.ip}`, icmpErrorNote(ICMP_DEST_UNREACHABLE, ICMP_FRAG_NEEDED_CODE, a.ip, a.mac, a.mtu));
    }
    if (served.length > 0) f.add(T.EX_FLOWD_MTU, 0, '', 'NORMAL');
  }
  return f.texts();
}
