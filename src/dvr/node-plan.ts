/**
 * What one node of a topology holds: the routers it hosts, the networks it needs and their
 * local VLANs, its VM ports, its tunnel ports and every OpenFlow port number. The flow
 * generators (flows-tun.ts, flows-int.ts, flows-router.ts, flows-physical.ts, flows-ns.ts) read only this plan.
 * Called by: dvr/node-config.ts.
 *
 * Rules (also in docs/dvr-tables.md):
 * - A distributed router is hosted on a node when a port bound to the node sits on a network
 *   of one of the router's interfaces, or when the node is the router's SNAT host (the first
 *   dvr_snat node in file order) and the router has an external gateway.
 * - "Ports" here are VM ports in file order, then DHCP ports (topology.ts switchPorts): a DHCP
 *   port sits on br-int like a VM port and is DVR-serviced as in Neutron.
 * - An HA router
 *   (`ha: true`) is hosted on each of its l3_agents instead, and serves SNAT only where this
 *   node's keepalived is master for it (`haMasters`, dvr/ha.ts).
 * - A node needs, in this order: the network of each port bound to it (ports in file order);
 *   then, for each hosted router (file order), the network of each interface (interface
 *   order); then the external network when it hosts a router's gateway (SNAT host) or a
 *   floating IP of a port bound to it. Local VLANs are given in that order, each the lowest
 *   free id in 1..4094; a network that keeps being needed keeps its VLAN across topology
 *   changes (the previous assignment is an input), a network no longer needed frees its VLAN.
 *   The reference comes out as C1 A=1 B=2 (VM1 on A first), C2 B=1 A=2 (VM2 on B first),
 *   NN A=1 B=2 (no VM; interface order), and the external network next on C1 and NN.
 * - A physical bridge (bridge_mappings: br-ex, br-vlan, ...) exists for each physical network
 *   that carries a network the node needs (vlan or flat: a port on it, a hosted router's
 *   interface on it, or the external network), in bridge_mappings order (`physicals`).
 *   `external` is the one that carries the router:external network, when needed.
 * - A tunnel port goes to each other node that needs a tunnel network this node needs, one per
 *   tunnel type, named `vxlan-<8 hex of remote IPv4>` / `gre-<...>`, in node file order,
 *   vxlan before gre.
 * - OpenFlow port numbers, lowest free from a base, kept across changes like local VLANs:
 *   br-int patch-tun 1, int-<bridge> of the physical bridges from 2 (bridge_mappings order),
 *   VM then DHCP ports from 10 in port order; br-tun patch-int 1, tunnel ports from 2; each
 *   physical bridge phy-<bridge> 1, its physical interface 2.
 */
import { ConfigError } from '../errors';
import { ipv4Hex8 } from './addr';
import { INT_ACCEPTED_EGRESS_NORMAL, INT_LOCAL_SWITCHING, REG_PORT } from './tables';
import { isSnatCandidate, servesSnat, withHaNetworks } from './ha';
import { isTunnelNetwork, switchPorts, TopoNetwork, TopoNode, TopoPort, TopoRouter, TopoSubnet, Topology, TunnelType } from './topology';

export const BR_INT = 'br-int';
export const BR_TUN = 'br-tun';
export const PATCH_TUN = 'patch-tun';
export const PATCH_INT = 'patch-int';
export const VM_OFPORT_BASE = 10;
export const TUNNEL_OFPORT_BASE = 2;
export const MAX_LOCAL_VLAN = 4094;
/** br-int's patch ports to physical bridges take 2..9 (VM ports start at 10). */
export const PHYS_PATCH_OFPORT_BASE = 2;
export const PHYS_PATCH_OFPORT_MAX = VM_OFPORT_BASE - 1;

/** Neutron's names for the patch pair between br-int and a physical bridge. */
export function intPatchName(bridge: string): string {
  return `int-${bridge}`.slice(0, 15);
}
export function phyPatchName(bridge: string): string {
  return `phy-${bridge}`.slice(0, 15);
}

export function tunnelPortName(type: TunnelType, remoteIp: string): string {
  return `${type}-${ipv4Hex8(remoteIp)}`;
}

/** What a previous plan of the same node fixed: kept so a change does not renumber. */
export interface PlanMemory {
  /** network name -> local VLAN. */
  localVlans: Map<string, number>;
  /** bridge -> port name -> ofport. */
  ofports: Map<string, Map<string, number>>;
}

export interface PlanTunnel { name: string; type: TunnelType; remote: TopoNode; ofport: number }
export interface PlanPort { port: TopoPort; ofport: number; lv: number }
export interface PlanExternal { network: TopoNetwork; bridge: string; device: string; lv: number }
/** A physical bridge of this node and the networks it carries that the node needs. */
export interface PlanPhysical {
  physnet: string;
  bridge: string;
  /** The device plugged into the bridge (physical_interfaces), '' when none. */
  device: string;
  /** vlan and flat networks on this physical network that the node needs, in local-VLAN order. */
  networks: TopoNetwork[];
  /** br-int's int-<bridge> and the bridge's phy-<bridge>. */
  intOfport: number;
  phyOfport: number;
}

export interface NodePlan {
  topo: Topology;
  node: TopoNode;
  routers: TopoRouter[];
  /** Routers whose SNAT this node hosts. */
  snatRouters: TopoRouter[];
  /** Needed networks in local-VLAN order. */
  networks: TopoNetwork[];
  localVlans: Map<string, number>;
  localPorts: PlanPort[];
  tunnels: PlanTunnel[];
  external: PlanExternal | null;
  /** Every physical bridge the node needs (the external one among them), bridge_mappings order. */
  physicals: PlanPhysical[];
  /** bridge -> port name -> ofport, for every port of every bridge. */
  ofports: Map<string, Map<string, number>>;
  /** The node's firewall_driver is openvswitch: VM ports pass br-int tables 60-94 (firewall-flows.ts). */
  firewall: boolean;
}

/**
 * Where the router takes a local VM's frames from: table 0 on `in_port` without a firewall;
 * with one, table 94 (accepted egress) on reg5 = the port, so every frame a VM sends to the
 * router has passed its egress filter first, as Neutron's frames to a qr- port do.
 */
export function vmFrameEntry(plan: NodePlan, lp: PlanPort): { table: number; match: string } {
  return plan.firewall
    ? { table: INT_ACCEPTED_EGRESS_NORMAL, match: `reg${REG_PORT}=${lp.ofport}` }
    : { table: INT_LOCAL_SWITCHING, match: `in_port=${lp.ofport}` };
}

export function snatHost(topo: Topology): TopoNode | null {
  return topo.nodes.find((n) => n.agentMode === 'dvr_snat') ?? null;
}

export function subnetOf(topo: Topology, name: string): TopoSubnet {
  return topo.subnets.find((s) => s.name === name)!;
}

export function networkOf(topo: Topology, name: string): TopoNetwork {
  return topo.networks.find((n) => n.name === name)!;
}

/**
 * What every node of one topology needs, computed once per topology object in one pass over
 * its ports, routers and floating IPs (a Topology is not changed once built: dvr/topology.ts
 * and withHaNetworks make new objects). Planning one node reads every other node's needs (its
 * tunnels, table 22's flood lists); asking per node and per network would be quadratic in the
 * topology's size.
 */
interface NeedsIndex {
  /** node name -> routers it hosts, file order. */
  hosted: Map<string, TopoRouter[]>;
  /** node name -> the external network it needs and why, or none. */
  external: Map<string, { net: TopoNetwork; why: string }>;
  /** node name -> the networks it needs, local-VLAN order. */
  order: Map<string, string[]>;
  /** network name -> the nodes that need it, file order. */
  nodesOf: Map<string, TopoNode[]>;
}

const needsCache = new WeakMap<Topology, NeedsIndex>();

function needsIndex(topo: Topology): NeedsIndex {
  const cached = needsCache.get(topo);
  if (cached !== undefined) return cached;
  const netOfSubnet = new Map(topo.subnets.map((s) => [s.name, s.network]));
  const netByName = new Map(topo.networks.map((n) => [n.name, n]));
  const portByName = new Map(topo.ports.map((p) => [p.name, p]));
  const snat = snatHost(topo);
  /** node -> networks of its ports, port order. */
  const portNets = new Map<string, string[]>();
  for (const p of switchPorts(topo)) {
    const nets = portNets.get(p.node) ?? [];
    if (!nets.includes(p.network)) nets.push(p.network);
    portNets.set(p.node, nets);
  }
  /** node -> floating IPs of ports bound to it, with the port's network. */
  const fipsOn = new Map<string, { ip: string; network: string }[]>();
  for (const f of topo.floatingIps) {
    const p = portByName.get(f.port)!;
    const list = fipsOn.get(p.node) ?? [];
    list.push({ ip: f.ip, network: p.network });
    fipsOn.set(p.node, list);
  }
  const ifNets = new Map(topo.routers.map((r) => [r, r.interfaces.map((i) => netOfSubnet.get(i.subnet)!)]));
  const idx: NeedsIndex = { hosted: new Map(), external: new Map(), order: new Map(), nodesOf: new Map() };
  for (const node of topo.nodes) {
    const mine = portNets.get(node.name) ?? [];
    const routers = topo.routers.filter((r) => ifNets.get(r)!.some((n) => mine.includes(n)) || isSnatCandidate(r, node, snat));
    let ext: { net: TopoNetwork; why: string } | null = null;
    for (const r of routers) {
      if (r.gateway === null) continue;
      if (isSnatCandidate(r, node, snat)) { ext = { net: netByName.get(r.gateway.network)!, why: `router ${r.name}'s SNAT gateway` }; break; }
      if (node.agentMode === 'dvr_no_external') continue;
      const fip = (fipsOn.get(node.name) ?? []).find((f) => ifNets.get(r)!.includes(f.network));
      if (fip !== undefined) { ext = { net: netByName.get(r.gateway.network)!, why: `floating IP ${fip.ip}` }; break; }
    }
    const order = [...mine];
    const add = (n: string): void => { if (!order.includes(n)) order.push(n); };
    for (const r of routers) for (const n of ifNets.get(r)!) add(n);
    if (ext !== null) add(ext.net.name);
    idx.hosted.set(node.name, routers);
    if (ext !== null) idx.external.set(node.name, ext);
    idx.order.set(node.name, order);
    for (const n of order) {
      const list = idx.nodesOf.get(n) ?? [];
      list.push(node);
      idx.nodesOf.set(n, list);
    }
  }
  needsCache.set(topo, idx);
  return idx;
}

function hostedRouters(topo: Topology, node: TopoNode): TopoRouter[] {
  return needsIndex(topo).hosted.get(node.name)!;
}

/** The external network this node needs, with the router that needs it, or null. */
function externalNeed(topo: Topology, node: TopoNode): { net: TopoNetwork; why: string } | null {
  return needsIndex(topo).external.get(node.name) ?? null;
}

/** Network names a node needs, in local-VLAN order (see the header). */
export function nodeNetworkOrder(topo: Topology, node: TopoNode): string[] {
  return [...needsIndex(topo).order.get(node.name)!];
}

/**
 * Gives each name the previous number when it had one, else the lowest free from `base`.
 * A number whose name is gone is not given to a new name in the same change (OVS, too, avoids
 * handing out a just-freed OpenFlow port number): the diff adds ports and flows before it
 * removes the old ones, and the old and new holder must not meet on one number meanwhile.
 */
function allocate(names: string[], prev: Map<string, number> | undefined, base: number, max: number,
                  fixed: Map<string, number> = new Map()): Map<string, number> {
  const out = new Map<string, number>(fixed);
  const used = new Set<number>(fixed.values());
  for (const n of names) {
    const p = prev?.get(n);
    if (p !== undefined && !used.has(p) && p >= base && !out.has(n)) { out.set(n, p); used.add(p); }
  }
  const freedNow = new Set<number>();
  if (prev !== undefined) for (const [n, p] of prev) if (!out.has(n)) freedNow.add(p);
  let next = base;
  for (const n of names) {
    if (out.has(n)) continue;
    while (used.has(next) || freedNow.has(next)) next++;
    if (next > max) throw new Error(`no free number in ${base}..${max}`);
    out.set(n, next);
    used.add(next);
  }
  return out;
}

/** `haMasters`: the HA routers this node's keepalived is master for (dvr/ha.ts). */
export function planNode(fileTopo: Topology, nodeName: string, memory?: PlanMemory, haMasters: ReadonlySet<string> = new Set()): NodePlan {
  const topo = withHaNetworks(fileTopo);
  const node = topo.nodes.find((n) => n.name === nodeName);
  if (node === undefined) throw new ConfigError(topo.file, 0, 'node', `unknown node "${nodeName}" (topology has ${topo.nodes.map((n) => n.name).join(', ')})`);
  const routers = hostedRouters(topo, node);
  const snat = snatHost(topo);
  const order = nodeNetworkOrder(topo, node);
  const localVlans = allocate(order, memory?.localVlans, 1, MAX_LOCAL_VLAN);
  const networks = order.map((n) => networkOf(topo, n));

  // Physical bridges: one per physical network carrying a needed vlan or flat network.
  const ext = externalNeed(topo, node);
  const localPortList = switchPorts(topo).filter((p) => p.node === node.name);
  const whyNeeded = (n: TopoNetwork): string => {
    if (ext !== null && ext.net === n) return ext.why;
    return localPortList.some((p) => p.network === n.name) ? `a port on ${n.type} network ${n.name}` : `a router interface on ${n.type} network ${n.name}`;
  };
  const physNets = networks.filter((n) => !isTunnelNetwork(n));
  for (const n of physNets) {
    if (!node.bridgeMappings.has(n.physicalNetwork)) {
      throw new ConfigError(topo.file, node.line, `nodes[${node.name}].bridge_mappings`,
        `needs a mapping for physical network "${n.physicalNetwork}" (for ${whyNeeded(n)})`);
    }
  }
  const physicals: PlanPhysical[] = [];
  for (const [physnet, bridge] of node.bridgeMappings) {
    const nets = physNets.filter((n) => n.physicalNetwork === physnet);
    if (nets.length === 0) continue;
    physicals.push({ physnet, bridge, device: node.physicalInterfaces.get(bridge) ?? '', networks: nets, intOfport: 0, phyOfport: 0 });
  }
  const extPhys = ext === null ? undefined : physicals.find((p) => p.physnet === ext.net.physicalNetwork);
  const external: PlanExternal | null = ext === null || extPhys === undefined ? null
    : { network: ext.net, bridge: extPhys.bridge, device: extPhys.device, lv: localVlans.get(ext.net.name)! };

  // Tunnels: to each other node sharing a tunnel network.
  const mine = new Set(order);
  const tunnelNames: string[] = [];
  const tunnels: PlanTunnel[] = [];
  for (const other of topo.nodes) {
    if (other === node) continue;
    const theirs = needsIndex(topo).order.get(other.name)!.map((n) => networkOf(topo, n));
    for (const type of ['vxlan', 'gre'] as const) {
      if (theirs.some((n) => n.type === type && mine.has(n.name))) {
        const name = tunnelPortName(type, other.localIp);
        tunnelNames.push(name);
        tunnels.push({ name, type, remote: other, ofport: 0 });
      }
    }
  }

  const ofports = new Map<string, Map<string, number>>();
  const intFixed = allocate(physicals.map((p) => intPatchName(p.bridge)), memory?.ofports.get(BR_INT),
    PHYS_PATCH_OFPORT_BASE, PHYS_PATCH_OFPORT_MAX, new Map([[PATCH_TUN, 1]]));
  ofports.set(BR_INT, allocate(localPortList.map((p) => p.device), memory?.ofports.get(BR_INT), VM_OFPORT_BASE, 0xfeff, intFixed));
  ofports.set(BR_TUN, allocate(tunnelNames, memory?.ofports.get(BR_TUN), TUNNEL_OFPORT_BASE, 0xfeff, new Map([[PATCH_INT, 1]])));
  for (const ph of physicals) {
    const fixed = new Map<string, number>([[phyPatchName(ph.bridge), 1]]);
    if (ph.device !== '') fixed.set(ph.device, 2);
    ofports.set(ph.bridge, fixed);
    ph.intOfport = intFixed.get(intPatchName(ph.bridge))!;
    ph.phyOfport = 1;
  }
  for (const t of tunnels) t.ofport = ofports.get(BR_TUN)!.get(t.name)!;
  const localPorts = localPortList.map((p) => ({ port: p, ofport: ofports.get(BR_INT)!.get(p.device)!, lv: localVlans.get(p.network)! }));

  return {
    topo, node, routers,
    snatRouters: routers.filter((r) => servesSnat(r, node, snat, haMasters)),
    networks, localVlans, localPorts, tunnels, external, physicals, ofports,
    firewall: node.firewallDriver === 'openvswitch',
  };
}

/** The physical bridge that carries network `net` on this node, or undefined for a tunnel network. */
export function physicalOf(plan: NodePlan, net: TopoNetwork): PlanPhysical | undefined {
  return isTunnelNetwork(net) ? undefined : plan.physicals.find((p) => p.physnet === net.physicalNetwork);
}

/** br-int's port towards other nodes for network `net`: patch-tun, or int-<bridge> of its physical bridge. */
export function uplinkOf(plan: NodePlan, net: TopoNetwork): number {
  const ph = physicalOf(plan, net);
  return ph !== undefined ? ph.intOfport : plan.ofports.get(BR_INT)!.get(PATCH_TUN)!;
}

/**
 * How a frame of network `net` that another node sent arrives on br-int: `inPort` is patch-tun
 * or int-<bridge>, `vlanMatch` its tag there (the local VLAN, which br-tun pushed; or the
 * network's VID, or untagged for flat, as the wire has it) and `toLocal` the actions that give
 * it the local VLAN ('' or "mod_vlan_vid:LV,"). Neutron translates in br-int table 0 the same way.
 */
export function arrivalOf(plan: NodePlan, net: TopoNetwork): { inPort: number; vlanMatch: string; toLocal: string } {
  const lv = plan.localVlans.get(net.name)!;
  const ph = physicalOf(plan, net);
  if (ph === undefined) return { inPort: plan.ofports.get(BR_INT)!.get(PATCH_TUN)!, vlanMatch: `dl_vlan=${lv}`, toLocal: '' };
  return { inPort: ph.intOfport, vlanMatch: wireVlanMatch(net), toLocal: `mod_vlan_vid:${lv},` };
}

/** The 802.1Q match of network `net` as its frames are on the physical wire: its VID, or untagged (flat). */
export function wireVlanMatch(net: TopoNetwork): string {
  return net.type === 'flat' ? 'vlan_tci=0x0000/0x1fff' : `dl_vlan=${net.segmentationId}`;
}

/** Nodes (other than `plan.node`) that need network `net`: the flood list of table 22. */
export function remoteNodesOf(plan: NodePlan, net: string): TopoNode[] {
  return (needsIndex(plan.topo).nodesOf.get(net) ?? []).filter((n) => n !== plan.node);
}
