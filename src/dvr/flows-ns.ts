/**
 * North-south flows of one node in br-int: centralized SNAT on the dvr_snat node and floating
 * IPs (dvr-reference.md "SNAT", "Floating IP"; docs/dvr-tables.md has every table and
 * priority). What Neutron does in the snat- and fip- namespaces flowd does in its own br-int
 * tables 45, 48-51 and in a few entries of tables 0 and 40. Called by: dvr/flows-int.ts.
 * Pure function of the plan and its NsPlan (ns-plan.ts).
 *
 * Paths:
 * - SNAT out (SNAT host): a compute node routed the frame to the sg- MAC of its subnet over the
 *   tunnel (br-int t0 p4 in_port=patch-tun,dl_dst=sgMAC), or a local VM hit the default route
 *   (table 40, dec_ttl there); table 45 commits it to conntrack in the router's zone with
 *   nat(src=gateway IP) and sends it out int-br-ex from the qg- MAC to the upstream MAC,
 *   tagged with the external local VLAN (br-ex strips it). The TTL is decremented once, by
 *   the node that routed the frame first (the compute node): one logical router, one hop.
 * - SNAT back (SNAT host): table 50 sends frames for the gateway IP to conntrack with `nat`
 *   (ct(table=51)); table 51 takes established/related ones, now addressed to the inner host,
 *   and routes them back directly from the sg- MAC of the host's subnet (table 41 picks the
 *   destination MAC and the tunnel, whose VNI is the host's network's).
 * - Floating IP (serving node): stateless 1:1 NAT. In: table 50 matches dl_dst = its MAC and
 *   nw_dst = FIP, rewrites nw_dst to the fixed IP and routes (source gwMAC, or the sg- MAC when
 *   served centrally for a dvr_no_external node). Out: table 40 priority 201 matches the
 *   fixed source (above the default route, below connected routes) and rewrites nw_src to the
 *   FIP, source MAC = the node's fg- MAC (one per node per external network), out to the upstream MAC; centrally, table 45 priority 100.
 * - ARP on the external network: qg- IP on the SNAT host only, fg- IP where the fg- port is
 *   in use, each FIP only on its serving node (table 50 priority 500, out the in_port still
 *   tagged, which br-ex strips).
 * - The upstream MAC is the external subnet's `gateway_mac`; without it, table 48 learns it
 *   from any ARP the upstream sends into table 49 (the daemon asks for it, announce.ts).
 */
import { FlowList } from './flow-text';
import { arpResponderActions } from './flows-tun';
import { arrivalOf, networkOf, NodePlan, subnetOf, vmFrameEntry } from './node-plan';
import { NsPlan } from './ns-plan';
import * as T from './tables';

/** Echo reply idiom that keeps the VLAN tag (the frame goes back out the patch port it came in). */
function echoReplyActions(mac: string): string {
  return ['move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]', `mod_dl_src:${mac}`,
    'move:NXM_OF_IP_SRC[]->NXM_NX_REG0[]', 'move:NXM_OF_IP_DST[]->NXM_OF_IP_SRC[]',
    'move:NXM_NX_REG0[]->NXM_OF_IP_DST[]', 'load:0->NXM_OF_ICMP_TYPE[]', 'in_port'].join(',');
}

/** Actions that send a frame whose source MAC is set to the upstream gateway. */
export function toUpstreamActions(ns: NsPlan): string {
  if (ns.upstreamMac !== '') return `mod_dl_dst:${ns.upstreamMac},mod_vlan_vid:${ns.lvExt},output:${ns.intEx}`;
  return `mod_vlan_vid:${ns.lvExt},resubmit(,${T.INT_FLOWD_UPSTREAM})`;
}

/** The action list of br-int table 0 for untagged frames from the external bridge. */
export function externalIngressActions(ns: NsPlan): string {
  const learn = ns.upstreamMac === '' ? `resubmit(,${T.INT_FLOWD_UPSTREAM_LEARN}),` : '';
  return `mod_vlan_vid:${ns.lvExt},${learn}resubmit(,${T.INT_FLOWD_EXT_IN})`;
}

/** Table 0 and 40 entries: sg- ports on the SNAT host, floating-IP source routes. */
export function nsInterceptFlows(plan: NodePlan, ns: NsPlan, f: FlowList): void {
  const topo = plan.topo;
  for (const nr of ns.routers) {
    if (!nr.snatHere) continue;
    for (const i of nr.router.interfaces) {
      if (i.snatMac === '') continue;
      const s = subnetOf(topo, i.subnet);
      const lv = plan.localVlans.get(s.network)!;
      // From other nodes: over br-tun with the local VLAN, or from a physical bridge with the
      // network's VID (then above that bridge's DVR-MAC entry at 4, as the frame carries one).
      const net = networkOf(topo, s.network);
      const arrival = arrivalOf(plan, net);
      const phys = arrival.toLocal !== '';
      // ARP for the sg- IP from other nodes (only when their l2pop responder did not answer).
      f.add(T.INT_LOCAL_SWITCHING, phys ? 7 : 6, `in_port=${arrival.inPort},arp,${arrival.vlanMatch},arp_op=1,arp_tpa=${i.snatIp}`,
        `${arrival.toLocal}${arpResponderActions(i.snatMac, i.snatIp)},in_port`);
      // Frames a compute node routed to the sg- port: SNAT.
      f.add(T.INT_LOCAL_SWITCHING, phys ? 6 : 4, `in_port=${arrival.inPort},${arrival.vlanMatch},dl_dst=${i.snatMac}`, `${arrival.toLocal}resubmit(,${T.INT_FLOWD_SNAT})`);
      // Local VMs asking for the sg- IP: answered by the router tables like the gateway.
      for (const lp of plan.localPorts) {
        if (lp.port.network !== s.network) continue;
        const e = vmFrameEntry(plan, lp);
        f.add(e.table, 11, `${e.match},arp,arp_tpa=${i.snatIp}`, `mod_vlan_vid:${lp.lv},resubmit(,${T.INT_FLOWD_ROUTE})`);
      }
      f.add(T.INT_FLOWD_ROUTE, T.PRIO_ROUTER_ARP, `arp,dl_vlan=${lv},arp_op=1,arp_tpa=${i.snatIp}`,
        `${arpResponderActions(i.snatMac, i.snatIp)},strip_vlan,in_port`);
    }
  }
  for (const fip of ns.fips) {
    if (fip.central) continue;
    const fg = ns.fg!;
    const lv = plan.localVlans.get(fip.subnet.network)!;
    f.add(T.INT_FLOWD_ROUTE, T.PRIO_ROUTE_FIP, `ip,dl_vlan=${lv},dl_dst=${fip.iface.mac},nw_src=${fip.fixedIp}`,
      `dec_ttl,mod_nw_src:${fip.ip},mod_dl_src:${fg.mac},${toUpstreamActions(ns)}`);
  }
}

/** Tables 45, 48, 49, 50, 51. */
export function nsFlows(plan: NodePlan, ns: NsPlan, f: FlowList): void {
  const topo = plan.topo;
  const lvE = ns.lvExt;

  // Table 45: SNAT out (central floating IPs first, then the router's gateway IP).
  for (const fip of ns.fips) {
    if (!fip.central) continue;
    const lv = plan.localVlans.get(fip.subnet.network)!;
    f.add(T.INT_FLOWD_SNAT, 100, `ip,dl_vlan=${lv},nw_src=${fip.fixedIp}`,
      `mod_nw_src:${fip.ip},mod_dl_src:${fip.mac},${toUpstreamActions(ns)}`);
  }
  for (const nr of ns.routers) {
    if (!nr.snatHere) continue;
    const gw = nr.router.gateway!;
    for (const i of nr.router.interfaces) {
      const lv = plan.localVlans.get(subnetOf(topo, i.subnet).network)!;
      f.add(T.INT_FLOWD_SNAT, 10, `ip,dl_vlan=${lv}`,
        `ct(commit,zone=${nr.zone},nat(src=${gw.ip})),mod_dl_src:${gw.mac},${toUpstreamActions(ns)}`);
    }
  }
  if (ns.routers.some((r) => r.snatHere)) f.add(T.INT_FLOWD_SNAT, 0, '', 'drop');

  // Tables 48/49: the upstream MAC learned from its ARP, when the topology does not give it.
  if (ns.upstreamMac === '' && ns.upstreamIp !== '') {
    f.add(T.INT_FLOWD_UPSTREAM_LEARN, 1, `arp,dl_vlan=${lvE},arp_spa=${ns.upstreamIp}`,
      `learn(table=${T.INT_FLOWD_UPSTREAM},priority=1,NXM_OF_VLAN_TCI[0..11],` +
      'load:NXM_NX_ARP_SHA[]->NXM_OF_ETH_DST[],output:NXM_OF_IN_PORT[])');
    f.add(T.INT_FLOWD_UPSTREAM, 0, '', 'drop');
  }

  // Table 50: external ingress.
  for (const nr of ns.routers) {
    const gw = nr.router.gateway!;
    if (nr.snatHere) {
      f.add(T.INT_FLOWD_EXT_IN, 500, `arp,dl_vlan=${lvE},arp_op=1,arp_tpa=${gw.ip}`, `${arpResponderActions(gw.mac, gw.ip)},in_port`);
    }
  }
  if (ns.fg !== null) f.add(T.INT_FLOWD_EXT_IN, 500, `arp,dl_vlan=${lvE},arp_op=1,arp_tpa=${ns.fg.ip}`, `${arpResponderActions(ns.fg.mac, ns.fg.ip)},in_port`);
  for (const fip of ns.fips) {
    f.add(T.INT_FLOWD_EXT_IN, 500, `arp,dl_vlan=${lvE},arp_op=1,arp_tpa=${fip.ip}`, `${arpResponderActions(fip.mac, fip.ip)},in_port`);
  }
  for (const nr of ns.routers) {
    const gw = nr.router.gateway!;
    if (nr.snatHere) {
      f.add(T.INT_FLOWD_EXT_IN, 450, `icmp,dl_vlan=${lvE},dl_dst=${gw.mac},nw_dst=${gw.ip},icmp_type=8`, echoReplyActions(gw.mac));
    }
  }
  if (ns.fg !== null) f.add(T.INT_FLOWD_EXT_IN, 450, `icmp,dl_vlan=${lvE},dl_dst=${ns.fg.mac},nw_dst=${ns.fg.ip},icmp_type=8`, echoReplyActions(ns.fg.mac));
  for (const nr of ns.routers) {
    if (!nr.snatHere) continue;
    const gw = nr.router.gateway!;
    f.add(T.INT_FLOWD_EXT_IN, 400, `ip,dl_vlan=${lvE},dl_dst=${gw.mac},nw_dst=${gw.ip}`, `ct(table=${T.INT_FLOWD_SNAT_REPLY},zone=${nr.zone},nat)`);
  }
  for (const fip of ns.fips) {
    const lv = plan.localVlans.get(fip.subnet.network)!;
    const src = fip.central && fip.iface.snatMac !== '' ? fip.iface.snatMac : fip.iface.mac;
    f.add(T.INT_FLOWD_EXT_IN, 400, `ip,dl_vlan=${lvE},dl_dst=${fip.mac},nw_dst=${fip.ip}`,
      `dec_ttl,mod_nw_dst:${fip.fixedIp},mod_dl_src:${src},mod_vlan_vid:${lv},resubmit(,${T.INT_FLOWD_NEIGH})`);
  }
  f.add(T.INT_FLOWD_EXT_IN, 0, '', `resubmit(,${T.INT_TRANSIENT})`);

  // Table 51: de-NATed replies back to the inner host, from the sg- MAC of its subnet.
  let any51 = false;
  for (const nr of ns.routers) {
    if (!nr.snatHere) continue;
    for (const i of nr.router.interfaces) {
      const s = subnetOf(topo, i.subnet);
      const lv = plan.localVlans.get(s.network)!;
      const src = i.snatMac !== '' ? i.snatMac : i.mac;
      for (const st of ['+est+trk', '+rel+trk']) {
        f.add(T.INT_FLOWD_SNAT_REPLY, 100, `ct_state=${st},ct_zone=${nr.zone},ip,dl_vlan=${lvE},nw_dst=${s.cidr.text}`,
          `dec_ttl,mod_dl_src:${src},mod_vlan_vid:${lv},resubmit(,${T.INT_FLOWD_NEIGH})`);
      }
      any51 = true;
    }
  }
  if (any51) f.add(T.INT_FLOWD_SNAT_REPLY, 0, '', 'drop');
}
