/**
 * Physical networks (vlan and flat) of one node, in Neutron's layout (dvr-reference.md,
 * "Physical networks"; docs/physical-networks.md):
 * - each physical bridge (physFlows): table 0 sends frames from br-int (phy-<bridge>) to
 *   DVR_PROCESS_PHYSICAL (1: a frame to a gateway MAC is dropped, a routed frame from one gets
 *   this node's DVR MAC as source), then LOCAL_VLAN_TRANSLATION (2: local VLAN -> the network's
 *   VID, or untagged for flat, then NORMAL; anything else from br-int is dropped); frames from
 *   the wire go to DVR_NOT_LEARN_PHYSICAL (3: another node's DVR MAC goes straight to br-int,
 *   so the bridge never learns it; the rest NORMAL). On the bridge of the external network,
 *   flowd's external MTU check (tables.ts EX_FLOWD_MTU) sits in table 0 too.
 * - br-int (intPhysicalFlows): table 0 takes frames from int-<bridge>: the network's VID (or
 *   untagged) -> its local VLAN, on to table 60 (or flowd's external table 50); a source that
 *   is another node's DVR MAC -> DVR_TO_SRC_MAC_PHYSICAL (2: to a local port, source := the
 *   gateway MAC of the port's subnet, VID -> local VLAN); a destination that is this node's DVR
 *   MAC -> ARP_DVR_MAC_TO_DST_MAC_PHYSICAL (4: destination := gateway MAC, to the router);
 *   anything else from the bridge is dropped.
 * Called by: dvr/node-config.ts (physFlows), dvr/flows-int.ts (intPhysicalFlows). Pure
 * functions of the plan.
 *
 * The local VLAN never leaves the node: only table 2 of the physical bridge lets a frame from
 * br-int out, and it rewrites the tag first.
 */
import { FlowList } from './flow-text';
import { ICMP_DEST_UNREACHABLE, ICMP_FRAG_NEEDED_CODE, icmpErrorNote } from './flows-router';
import { NodePlan, PlanPhysical, subnetOf, wireVlanMatch } from './node-plan';
import { NsPlan } from './ns-plan';
import * as T from './tables';

/** Flows of physical bridge `ph` of the node (see the header); `ns`: the node's north-south plan. */
export function physFlows(plan: NodePlan, ph: PlanPhysical, ns: NsPlan | null): string[] {
  const f = new FlowList();
  const topo = plan.topo;
  const phy = ph.phyOfport;
  const lvOf = (net: string): number => plan.localVlans.get(net)!;
  const onBridge = new Set(ph.networks.map((n) => n.name));

  f.add(T.PHYS_LOCAL_SWITCHING, 2, `in_port=${phy}`, `resubmit(,${T.PHYS_DVR_PROCESS})`);
  f.add(T.PHYS_LOCAL_SWITCHING, 1, '', `resubmit(,${T.PHYS_DVR_NOT_LEARN})`);
  if (plan.external !== null && plan.external.bridge === ph.bridge) exMtuFlows(plan, ns, f);

  // Table 1: routed frames never leave with the gateway MAC (drop to it, rewrite from it).
  for (const r of plan.routers) {
    for (const i of r.interfaces) {
      const net = subnetOf(topo, i.subnet).network;
      if (onBridge.has(net)) f.add(T.PHYS_DVR_PROCESS, 2, `dl_vlan=${lvOf(net)},dl_dst=${i.mac}`, 'drop');
    }
  }
  for (const r of plan.routers) {
    for (const i of r.interfaces) {
      const net = subnetOf(topo, i.subnet).network;
      if (onBridge.has(net)) {
        f.add(T.PHYS_DVR_PROCESS, 1, `dl_vlan=${lvOf(net)},dl_src=${i.mac}`,
          `mod_dl_src:${plan.node.dvrMac},resubmit(,${T.PHYS_LOCAL_VLAN_TRANSLATION})`);
      }
    }
  }
  f.add(T.PHYS_DVR_PROCESS, 0, '', `resubmit(,${T.PHYS_LOCAL_VLAN_TRANSLATION})`);

  // Table 2: local VLAN -> VID (flat: untagged); nothing else from br-int reaches the wire.
  for (const n of ph.networks) {
    f.add(T.PHYS_LOCAL_VLAN_TRANSLATION, 4, `in_port=${phy},dl_vlan=${lvOf(n.name)}`,
      n.type === 'flat' ? 'strip_vlan,NORMAL' : `mod_vlan_vid:${n.segmentationId},NORMAL`);
  }
  f.add(T.PHYS_LOCAL_VLAN_TRANSLATION, 2, `in_port=${phy}`, 'drop');

  // Table 3: frames routed by another node go to br-int without being learned (only where a
  // routed network is carried; see intPhysicalFlows).
  const routed = plan.routers.some((r) => r.interfaces.some((i) => onBridge.has(subnetOf(topo, i.subnet).network)));
  for (const n of topo.nodes) {
    if (routed && n !== plan.node) f.add(T.PHYS_DVR_NOT_LEARN, 2, `dl_src=${n.dvrMac}`, `output:${phy}`);
  }
  f.add(T.PHYS_DVR_NOT_LEARN, 1, '', 'NORMAL');
  return f.texts();
}

/**
 * br-int's flows for frames from the physical bridges (see the header). `extActions`: the
 * table-0 actions for the external network's frames when the node has north-south duties
 * (flows-ns.ts externalIngressActions), else ''.
 */
export function intPhysicalFlows(plan: NodePlan, f: FlowList, extActions: string): void {
  const topo = plan.topo;
  const routed = new Set<string>();
  for (const r of plan.routers) for (const i of r.interfaces) routed.add(subnetOf(topo, i.subnet).network);
  let dvr = false;
  for (const ph of plan.physicals) {
    const p = ph.intOfport;
    // The DVR entries only on a bridge that carries a routed network (br-ex with only the
    // external network never sees another node's DVR MAC).
    if (ph.networks.some((n) => routed.has(n.name))) {
      dvr = true;
      f.add(T.INT_LOCAL_SWITCHING, 5, `in_port=${p},dl_dst=${plan.node.dvrMac}`, `resubmit(,${T.INT_ARP_DVR_MAC_TO_DST_MAC_PHYSICAL})`);
      for (const n of topo.nodes) {
        if (n !== plan.node) f.add(T.INT_LOCAL_SWITCHING, 4, `in_port=${p},dl_src=${n.dvrMac}`, `resubmit(,${T.INT_DVR_TO_SRC_MAC_PHYSICAL})`);
      }
    }
    for (const n of ph.networks) {
      const ext = extActions !== '' && plan.external !== null && plan.external.network === n;
      f.add(T.INT_LOCAL_SWITCHING, 3, `in_port=${p},${wireVlanMatch(n)}`,
        ext ? extActions : `mod_vlan_vid:${plan.localVlans.get(n.name)!},resubmit(,${T.INT_TRANSIENT})`);
    }
    f.add(T.INT_LOCAL_SWITCHING, 2, `in_port=${p}`, 'drop');
  }
  if (!dvr) return;

  // Table 2: a frame routed on another node gets the gateway MAC of the VM's subnet as source.
  for (const lp of plan.localPorts) {
    const net = plan.networks.find((n) => n.name === lp.port.network)!;
    if (!plan.physicals.some((ph) => ph.networks.includes(net))) continue;
    for (const fip of lp.port.fixedIps) {
      for (const r of plan.routers) {
        const i = r.interfaces.find((x) => x.subnet === fip.subnet);
        if (i === undefined) continue;
        f.add(T.INT_DVR_TO_SRC_MAC_PHYSICAL, 20, `${wireVlanMatch(net)},dl_dst=${lp.port.mac}`,
          `mod_dl_src:${i.mac},mod_vlan_vid:${lp.lv},resubmit(,${T.INT_TRANSIENT})`);
      }
    }
  }
  f.add(T.INT_DVR_TO_SRC_MAC_PHYSICAL, 1, '', 'drop');

  // Table 4: a frame sent to this node's DVR MAC goes to the router as if sent to the gateway.
  for (const r of plan.routers) {
    for (const i of r.interfaces) {
      const net = plan.networks.find((n) => n.name === subnetOf(topo, i.subnet).network)!;
      if (!plan.physicals.some((ph) => ph.networks.includes(net))) continue;
      f.add(T.INT_ARP_DVR_MAC_TO_DST_MAC_PHYSICAL, 5, `${wireVlanMatch(net)},dl_dst=${plan.node.dvrMac}`,
        `mod_dl_dst:${i.mac},mod_vlan_vid:${plan.localVlans.get(net.name)!},resubmit(,${T.INT_FLOWD_ROUTE})`);
    }
  }
}

/**
 * The external MTU check (tables.ts EX_FLOWD_MTU): addresses this node serves on the external
 * network that lead into a tenant network, with the smallest MTU behind them.
 */
function exMtuFlows(plan: NodePlan, ns: NsPlan | null, f: FlowList): void {
  const ext = plan.external!;
  const dev = ext.device === '' ? undefined : plan.ofports.get(ext.bridge)!.get(ext.device);
  if (ns === null || dev === undefined) return;
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
  if (served.length > 0) f.add(T.EX_FLOWD_MTU, 0, '', `resubmit(,${T.PHYS_DVR_NOT_LEARN})`);
}
