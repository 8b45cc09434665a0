/**
 * flowd's distributed router in br-int: what Neutron's qrouter- namespace does with kernel
 * routing, done in flows (tables 40 and 41, see docs/dvr-tables.md), identical on every node
 * that hosts the router. Called by: dvr/flows-int.ts. Pure function of the plan.
 *
 * A frame from a local VM to its gateway MAC (or an ARP for the gateway IP) is tagged with
 * its network's local VLAN in br-int table 0 and resubmitted to table 40, which:
 * - answers ARP for the gateway IP (the request becomes the reply, out the in_port);
 * - answers ICMP echo to any of the router's interface IPs (addresses swapped through reg0,
 *   icmp_type=0, MACs swapped, out the in_port); other traffic to router IPs is dropped;
 * - punts TTL 0/1 to the ICMP generator (time exceeded), before any rewrite;
 * - routes by longest prefix (priority 200 + 2 * prefix length): dec_ttl, source = gateway MAC
 *   of the egress subnet, VLAN = egress network's, then table 41 (neighbours) sets the
 *   destination MAC from the topology (no ARP on the wire) and delivers locally via table 60
 *   or sends to the network's uplink, br-tun or its physical bridge (which rewrite the source
 *   to this node's DVR MAC in their table 1);
 * - default route (priority 200): to the router's SNAT port of the ingress subnet (on the
 *   SNAT host, over the tunnel), or on the SNAT host itself to table 45 (SNAT, flows-ns.ts);
 *   a VM with a floating IP on this node takes its source route at 201 instead; a
 *   router without external gateway answers "net unreachable" instead (priority 1).
 *
 * ICMP errors need a packet OpenFlow cannot build. They are written as strip_vlan followed by
 * the flowd-specific note `icmpErrorNote()` (see there); in Open vSwitch a note is a no-op, so
 * OVS executes these flows as a drop.
 */
import { macToNumber } from './addr';
import { FlowList } from './flow-text';
import { arpResponderActions } from './flows-tun';
import { networkOf, NodePlan, subnetOf, uplinkOf, vmFrameEntry } from './node-plan';
import * as T from './tables';
import { switchPorts } from './topology';
import { ipv4FromString } from '../packet/ipv4';

export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_NET_UNREACHABLE_CODE = 0;
export const ICMP_FRAG_NEEDED_CODE = 4;
/** First bytes of a flowd note that asks the pipeline to generate an ICMPv4 error ("fd" 01). */
export const FLOWD_NOTE_ICMP4_ERROR = [0x66, 0x64, 0x01];

function hexBytes(bytes: number[]): string {
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join('.');
}

/**
 * The flowd action "generate an ICMPv4 error", spelled as an ovs-ofctl note so that every
 * OpenFlow tool parses it: note:66.64.01.TT.CC.S1.S2.S3.S4.M1.M2.M3.M4.M5.M6 with
 * TT = ICMP type, CC = code, S = source IPv4 of the error (the router interface),
 * M = its source MAC (the gateway MAC). The pipeline, on executing it, builds
 * Ethernet(dst = the packet's current eth_src, src = M, the packet's current VLAN tags),
 * IPv4(src = S, dst = the packet's ip_src, TTL 64, proto 1, DF clear), ICMP(type, code,
 * unused 0, then the packet's IPv4 header and the first 8 bytes of its payload, RFC 792),
 * sends it out the packet's in_port, and stops the original packet (as OVS stops after a
 * controller action that has no continuation). Fields after the note are never reached.
 */
export function icmpErrorNote(type: number, code: number, srcIp: string, srcMac: string, mtu = 0): string {
  const ip = ipv4FromString(srcIp);
  const mac = macToNumber(srcMac);
  const macBytes: number[] = [];
  for (let i = 5; i >= 0; i--) macBytes.push(Math.floor(mac / 2 ** (8 * i)) & 0xff);
  // "Fragmentation needed" (3/4) carries the next-hop MTU in two more bytes (RFC 1191).
  const tail = mtu > 0 ? [mtu >>> 8, mtu & 255] : [];
  return `note:${hexBytes([...FLOWD_NOTE_ICMP4_ERROR, type, code, ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255, ...macBytes, ...tail])}`;
}

/**
 * br-int intercepts: local VM frames for the router get the VLAN and go to table 40 (from
 * table 0, or from table 94 behind the firewall: node-plan.ts vmFrameEntry).
 */
export function routerInterceptFlows(plan: NodePlan, f: FlowList): void {
  const topo = plan.topo;
  for (const lp of plan.localPorts) {
    for (const r of plan.routers) {
      for (const i of r.interfaces) {
        const s = subnetOf(topo, i.subnet);
        if (s.network !== lp.port.network) continue;
        const e = vmFrameEntry(plan, lp);
        f.add(e.table, 11, `${e.match},arp,arp_tpa=${s.gatewayIp}`, `mod_vlan_vid:${lp.lv},resubmit(,${T.INT_FLOWD_ROUTE})`);
        f.add(e.table, 10, `${e.match},dl_dst=${i.mac}`, `mod_vlan_vid:${lp.lv},resubmit(,${T.INT_FLOWD_ROUTE})`);
      }
    }
  }
}

export function routerFlows(plan: NodePlan, f: FlowList): void {
  const topo = plan.topo;
  const isSnatHost = (name: string): boolean => plan.snatRouters.some((r) => r.name === name);
  for (const r of plan.routers) {
    for (const i of r.interfaces) {
      const s = subnetOf(topo, i.subnet);
      const lv = plan.localVlans.get(s.network)!;
      const on = `dl_vlan=${lv},dl_dst=${i.mac}`;
      f.add(T.INT_FLOWD_ROUTE, T.PRIO_ROUTER_ARP, `arp,dl_vlan=${lv},arp_op=1,arp_tpa=${s.gatewayIp}`,
        `${arpResponderActions(i.mac, s.gatewayIp)},strip_vlan,in_port`);
      for (const j of r.interfaces) {
        const sj = subnetOf(topo, j.subnet);
        f.add(T.INT_FLOWD_ROUTE, T.PRIO_ROUTER_ECHO, `icmp,${on},nw_dst=${sj.gatewayIp},icmp_type=8`,
          ['move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]', `mod_dl_src:${i.mac}`,
           'move:NXM_OF_IP_SRC[]->NXM_NX_REG0[]', 'move:NXM_OF_IP_DST[]->NXM_OF_IP_SRC[]',
           'move:NXM_NX_REG0[]->NXM_OF_IP_DST[]', 'load:0->NXM_OF_ICMP_TYPE[]', 'strip_vlan', 'in_port'].join(','));
        f.add(T.INT_FLOWD_ROUTE, T.PRIO_ROUTER_LOCAL_DROP, `ip,${on},nw_dst=${sj.gatewayIp}`, 'drop');
      }
      for (const ttl of [0, 1]) {
        f.add(T.INT_FLOWD_ROUTE, T.PRIO_ROUTER_TTL, `ip,${on},nw_ttl=${ttl}`,
          `strip_vlan,${icmpErrorNote(ICMP_TIME_EXCEEDED, 0, s.gatewayIp, i.mac)}`);
      }
      for (const j of r.interfaces) {
        const sj = subnetOf(topo, j.subnet);
        f.add(T.INT_FLOWD_ROUTE, T.routePriority(sj.cidr.prefixLen), `ip,${on},nw_dst=${sj.cidr.text}`,
          `dec_ttl,mod_dl_src:${j.mac},mod_vlan_vid:${plan.localVlans.get(sj.network)!},resubmit(,${T.INT_FLOWD_NEIGH})`);
      }
      if (r.gateway !== null && isSnatHost(r.name)) {
        f.add(T.INT_FLOWD_ROUTE, T.PRIO_ROUTE_BASE, `ip,${on}`, `dec_ttl,resubmit(,${T.INT_FLOWD_SNAT})`);
      } else if (r.gateway !== null && i.snatMac !== '' && plan.topo.nodes.some((n) => n.agentMode === 'dvr_snat')) {
        f.add(T.INT_FLOWD_ROUTE, T.PRIO_ROUTE_BASE, `ip,${on}`,
          `dec_ttl,mod_dl_src:${i.mac},mod_dl_dst:${i.snatMac},output:${uplinkOf(plan, networkOf(topo, s.network))}`);
      } else {
        f.add(T.INT_FLOWD_ROUTE, T.PRIO_ROUTER_UNREACHABLE, `ip,${on}`,
          `strip_vlan,${icmpErrorNote(ICMP_DEST_UNREACHABLE, ICMP_NET_UNREACHABLE_CODE, s.gatewayIp, i.mac)}`);
      }
    }
  }
  f.add(T.INT_FLOWD_ROUTE, 0, '', 'drop');

  // Table 41: neighbours of every interface, from the topology.
  for (const r of plan.routers) {
    for (const j of r.interfaces) {
      const sj = subnetOf(topo, j.subnet);
      const lv = plan.localVlans.get(sj.network)!;
      const uplink = uplinkOf(plan, networkOf(topo, sj.network));
      for (const p of switchPorts(topo)) {
        if (p.network !== sj.network || p.node === '') continue;
        for (const fip of p.fixedIps) {
          if (fip.subnet !== sj.name) continue;
          const deliver = p.node === plan.node.name ? `resubmit(,${T.INT_TRANSIENT})` : `output:${uplink}`;
          f.add(T.INT_FLOWD_NEIGH, 100, `ip,dl_vlan=${lv},nw_dst=${fip.ip}`, `mod_dl_dst:${p.mac},${deliver}`);
        }
      }
    }
  }
  f.add(T.INT_FLOWD_NEIGH, 0, '', 'drop');
}

