/**
 * br-int flows of one node: Neutron's tables 0, 1, 3 and 60 (dvr-reference.md, "br-int
 * tables"), the entries from the physical bridges and tables 2 and 4 (flows-physical.ts), and
 * flowd's router tables (flows-router.ts). Called by: dvr/node-config.ts. Pure function of the plan.
 *
 * VM ports are access ports tagged with their network's local VLAN (`tag`), as in Neutron:
 * frames between local VMs and to/from br-tun go through NORMAL (table 60, priority 1). With
 * firewall_driver openvswitch, the firewall's tables 60-94 (firewall-flows.ts) come first.
 */
import { firewallFlows } from './firewall-flows';
import { FlowList } from './flow-text';
import { externalIngressActions, nsFlows, nsInterceptFlows } from './flows-ns';
import { intPhysicalFlows } from './flows-physical';
import { routerFlows, routerInterceptFlows } from './flows-router';
import { nsPlan } from './ns-plan';
import { BR_INT, NodePlan, PATCH_TUN, subnetOf } from './node-plan';
import * as T from './tables';
import { isTunnelNetwork } from './topology';

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
  // From the physical bridges; with north-south duties, external frames pass flowd's table 50 first.
  intPhysicalFlows(plan, f, ns !== null ? externalIngressActions(ns) : '');
  routerInterceptFlows(plan, f);
  if (ns !== null) nsInterceptFlows(plan, ns, f);
  f.add(T.INT_LOCAL_SWITCHING, 0, '', `resubmit(,${T.INT_TRANSIENT})`);

  // Table 1: a frame routed on another node gets the gateway MAC of the VM's subnet as source.
  const tunnelNet = (name: string): boolean => plan.networks.some((n) => n.name === name && isTunnelNetwork(n));
  for (const lp of plan.localPorts) {
    if (!tunnelNet(lp.port.network)) continue;
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
      if (!tunnelNet(s.network)) continue;
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
