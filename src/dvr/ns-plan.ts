/**
 * North-south duties of one node: what it does on the external network for the routers it
 * hosts. Read by the north-south flow generator (flows-ns.ts) and the announcements
 * (announce.ts); a pure function of the node plan. Control plane only.
 *
 * Who serves what (Neutron's split, dvr-reference.md "SNAT" and "Floating IP"):
 * - SNAT of a router with an external gateway runs on its SNAT host (the first dvr_snat node):
 *   the qg- port (gateway IP and MAC) answers ARP there and nowhere else.
 * - A floating IP of a port bound to a `dvr` or `dvr_snat` node is served by that node, with
 *   the node's fg- port on the external network (Neutron's floating IP agent gateway port,
 *   one per node per external network, shared by all its routers): its MAC answers ARP for
 *   the floating IP and is the floating IP's source on the external wire.
 * - A floating IP of a port bound to a `dvr_no_external` node is served centrally by the
 *   router's SNAT host, answering with the qg- MAC (Neutron's centralized floating IPs); for
 *   an HA router (dvr/ha.ts) by whichever l3 agent is VRRP master now, so it moves with the
 *   router's SNAT part on a failover (the node's `snatRouters`, the same test as SNAT).
 * - A floating IP of an unbound port is served nowhere.
 *
 * Conntrack zone per router (SNAT only; floating IPs are stateless 1:1 rewrites): drawn like
 * the DVR MACs, FNV-1a-32 of the router name into 4096..61439 (zones 1..4094 stay free for
 * per-network zones such as Neutron's OVS firewall uses), a collision takes the next value,
 * routers in file order; the same file always gives the same zones and inserting a router
 * does not move the others' (unless names collide).
 */
import { cidrContains } from './addr';
import { intPatchName, NodePlan, snatHost, subnetOf } from './node-plan';
import { fnv1a32 } from './addr';
import { FipGateway, RouterInterface, TopoPort, TopoRouter, TopoSubnet, Topology } from './topology';
import { ipv4FromString } from '../packet/ipv4';

export const CT_ZONE_BASE = 0x1000;
export const CT_ZONE_SPAN = 0xe000;

/** A floating IP this node serves. */
export interface NsFip {
  ip: string;
  fixedIp: string;
  port: TopoPort;
  router: TopoRouter;
  /** The router interface on the port's subnet. */
  iface: RouterInterface;
  subnet: TopoSubnet;
  /** Served by the SNAT host for a dvr_no_external node (answers with the qg- MAC). */
  central: boolean;
  /** The MAC that answers ARP for the floating IP and is its source on the external wire. */
  mac: string;
}

/** A router's presence on the external network of this node. */
export interface NsRouter {
  router: TopoRouter;
  zone: number;
  /** SNAT (qg- port) runs here. */
  snatHere: boolean;
}

export interface NsPlan {
  /** Local VLAN of the external network. */
  lvExt: number;
  /** br-int's patch port to the physical bridge. */
  intEx: number;
  /** The upstream gateway (external subnet's gateway_ip) and its MAC ('' = learn it by ARP). */
  upstreamIp: string;
  upstreamMac: string;
  routers: NsRouter[];
  fips: NsFip[];
  /** This node's fg- port on the external network, when it serves a floating IP locally. */
  fg: FipGateway | null;
}


/** Conntrack zone of every router of the topology (see the header). */
export function routerZones(topo: Topology): Map<string, number> {
  const out = new Map<string, number>();
  const used = new Set<number>();
  for (const r of topo.routers) {
    let v = fnv1a32(r.name) % CT_ZONE_SPAN;
    while (used.has(CT_ZONE_BASE + v)) v = (v + 1) % CT_ZONE_SPAN;
    used.add(CT_ZONE_BASE + v);
    out.set(r.name, CT_ZONE_BASE + v);
  }
  return out;
}

/** The router, interface and fixed IP behind a floating IP (validated by parseTopology). */
export function fipBinding(topo: Topology, fipIp: string, portName: string):
    { router: TopoRouter; iface: RouterInterface; subnet: TopoSubnet; port: TopoPort; fixedIp: string } | null {
  const port = topo.ports.find((p) => p.name === portName);
  if (port === undefined) return null;
  const u = ipv4FromString(fipIp);
  for (const r of topo.routers) {
    if (r.gateway === null) continue;
    const ext = topo.subnets.find((s) => s.network === r.gateway!.network && cidrContains(s.cidr, u));
    if (ext === undefined) continue;
    for (const f of port.fixedIps) {
      const iface = r.interfaces.find((i) => i.subnet === f.subnet);
      if (iface !== undefined) return { router: r, iface, subnet: subnetOf(topo, f.subnet), port, fixedIp: f.ip };
    }
  }
  return null;
}

/**
 * The node that serves a floating IP (see the header), or null: unbound, or central behind an
 * HA router (then the router's VRRP master serves it, a run-time fact: ask the nodes).
 */
export function fipServer(topo: Topology, fipIp: string, portName: string): string | null {
  const b = fipBinding(topo, fipIp, portName);
  if (b === null || b.port.node === '') return null;
  const node = topo.nodes.find((n) => n.name === b.port.node)!;
  if (node.agentMode !== 'dvr_no_external') return node.name;
  if (b.router.ha.ha) return null;
  return snatHost(topo)?.name ?? null;
}

/** Whether the floating IP's port is on a dvr_no_external node (served centrally). */
function fipIsCentral(topo: Topology, port: TopoPort): boolean {
  return topo.nodes.find((n) => n.name === port.node)?.agentMode === 'dvr_no_external';
}

/** This node's north-south duties, or null when it has none (no router:external bridge). */
export function nsPlan(plan: NodePlan): NsPlan | null {
  const ext = plan.external;
  if (ext === null || !ext.network.external) return null;
  const topo = plan.topo;
  const me = plan.node.name;
  const zones = routerZones(topo);
  const upstream = topo.subnets.find((s) => s.network === ext.network.name);
  const fips: NsFip[] = [];
  const fgHere = topo.fipGateways.find((g) => g.node === me && g.network === ext.network.name) ?? null;
  for (const f of topo.floatingIps) {
    const b = fipBinding(topo, f.ip, f.port);
    if (b === null || b.port.node === '') continue;
    const central = fipIsCentral(topo, b.port);
    // Central: where the router's SNAT part runs now (its SNAT host, or its HA master).
    if (central ? !plan.snatRouters.includes(b.router) : b.port.node !== me) continue;
    if (b.router.gateway!.network !== ext.network.name) continue;
    fips.push({
      ip: f.ip, fixedIp: b.fixedIp, port: b.port, router: b.router, iface: b.iface, subnet: b.subnet, central,
      mac: central ? b.router.gateway!.mac : fgHere!.mac,
    });
  }
  const routers: NsRouter[] = [];
  for (const r of plan.routers) {
    if (r.gateway === null || r.gateway.network !== ext.network.name) continue;
    const snatHere = plan.snatRouters.includes(r);
    if (!snatHere) continue;
    routers.push({ router: r, zone: zones.get(r.name)!, snatHere });
  }
  return {
    lvExt: ext.lv,
    intEx: plan.ofports.get('br-int')!.get(intPatchName(ext.bridge))!,
    upstreamIp: upstream?.gatewayIp ?? '',
    upstreamMac: upstream?.gatewayMac ?? '',
    routers, fips,
    fg: fips.some((f) => !f.central) ? fgHere : null,
  };
}
