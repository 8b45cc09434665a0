/**
 * L3 HA of the centralized part of DVR routers (l3-ha.md): which dvr_snat nodes carry a
 * router's SNAT part, the per-project HA network and each router's ha- port on it, and who
 * serves the SNAT part right now. Pure functions of the topology (and of this node's VRRP
 * state where said); control plane only.
 * Called by: dvr/node-plan.ts (hosting, who serves SNAT), dvr/flows-tun.ts (sg- frames to
 * every l3 agent), control/keepalived-conf.ts and control/keepalived.ts (the ha- port,
 * VIP and peers of each instance).
 *
 * Rules:
 * - A router with `ha: true` is hosted on every node of its `l3_agents` (as the single SNAT
 *   host hosts a non-HA router), so every one of them has the tenant networks, the external
 *   bridge and the tunnels before it becomes master; a failover changes flows, not ports.
 * - Its SNAT part (sg- and qg- answers, tables 45/50/51) is installed only on the node whose
 *   keepalived is MASTER for it (`haMasters` of planNode); on the others the router's default
 *   route leads to the sg- MAC over the tunnel, like on a compute node.
 * - Other nodes send frames for an HA router's sg- MACs to every l3 agent of the router
 *   (br-tun table 20, dvr/flows-tun.ts haSnatFlows) instead of to one node by l2 population:
 *   the MAC moves with the master, and only the master's br-int takes such a frame (the
 *   others have no flow for it and drop it). A failover thus needs no relearning on the
 *   compute nodes, no announcement on the tenant networks and no central server; the price
 *   is one copy per backup of each SNAT-bound frame on the underlay.
 * - One HA network per project, of l3_ha_network_type, segmentation id: the highest id of
 *   that type no network of the file uses, counting down from 2^24-1, projects in order of
 *   their first HA router. Its ha- ports: address from topology-ha.ts (haPortHost), MAC
 *   fa:16:3d:<project index>:<vrid>:<slot>, device `ha-<8 hex of FNV-1a(router)>` (Neutron's
 *   ha-<port id prefix>), the same name on every node.
 * - withHaNetworks() adds the HA networks, their subnets and the ha- ports to a topology as
 *   ordinary networks and bound ports (as Neutron creates them in its database), so the node
 *   planner gives them local VLANs, tunnels, l2 population and flooding like any other.
 */
import { fnv1a32, parseCidr } from './addr';
import { TopoNetwork, TopoNode, TopoPort, TopoRouter, TopoSubnet, Topology } from './topology';
import { haPortHost, HaNetworkType } from './topology-ha';
import { formatIpv4 } from '../packet/addr-text';

export const HA_SEGMENTATION_ID_TOP = 0xffffff;
export const HA_VIP_PREFIX = '169.254.0.';

export interface HaNetwork {
  project: string;
  /** Neutron's name: "HA network tenant <project>". */
  name: string;
  type: HaNetworkType;
  segmentationId: number;
  /** Index of the project among those with HA routers (MAC octet 4). */
  index: number;
}

export interface HaPort {
  node: string;
  /** Place in l3_agents (0..2). */
  slot: number;
  ip: string;
  prefixLen: number;
  mac: string;
}

export interface HaRouter {
  router: TopoRouter;
  vrid: number;
  network: HaNetwork;
  /** ha- device name, the same on every node. */
  device: string;
  /** keepalived's primary VIP on the ha- device: 169.254.0.<vrid>/24. */
  vip: string;
  /** One per l3 agent, in l3_agents order. */
  ports: HaPort[];
}

/** The HA networks of the topology, one per project with an HA router (see the header). */
export function haNetworks(topo: Topology): HaNetwork[] {
  const out: HaNetwork[] = [];
  if (topo.ha.networkType === '') return out;
  const type = topo.ha.networkType;
  const used = new Set(topo.networks.filter((n) => n.type === type).map((n) => n.segmentationId));
  let next = HA_SEGMENTATION_ID_TOP;
  for (const r of topo.routers) {
    if (!r.ha.ha || out.some((n) => n.project === r.ha.project)) continue;
    while (used.has(next)) next--;
    used.add(next);
    out.push({ project: r.ha.project, name: `HA network tenant ${r.ha.project}`, type, segmentationId: next, index: out.length });
  }
  return out;
}

function macOctet(v: number): string {
  return (v & 0xff).toString(16).padStart(2, '0');
}

export function haDeviceName(routerName: string): string {
  return `ha-${fnv1a32(routerName).toString(16).padStart(8, '0')}`;
}

/** Every HA router of the topology with its ha- ports (file order). */
export function haRouters(topo: Topology): HaRouter[] {
  const nets = haNetworks(topo);
  const out: HaRouter[] = [];
  for (const r of topo.routers) {
    if (!r.ha.ha) continue;
    const network = nets.find((n) => n.project === r.ha.project)!;
    const ports = r.ha.l3Agents.map((node, slot) => ({
      node, slot,
      ip: formatIpv4((topo.ha.netCidr.base + haPortHost(r.ha.vrid, slot)) >>> 0),
      prefixLen: topo.ha.netCidr.prefixLen,
      mac: `fa:16:3d:${macOctet(network.index)}:${macOctet(r.ha.vrid)}:${macOctet(slot)}`,
    }));
    out.push({ router: r, vrid: r.ha.vrid, network, device: haDeviceName(r.name), vip: `${HA_VIP_PREFIX}${r.ha.vrid}/24`, ports });
  }
  return out;
}

/** The HA routers `node` carries a keepalived instance for. */
export function haRoutersOn(topo: Topology, node: string): HaRouter[] {
  return haRouters(topo).filter((h) => h.router.ha.l3Agents.includes(node));
}

/** Whether `node` may serve the SNAT part of `r`: its SNAT host, or one of its l3 agents when HA. */
export function isSnatCandidate(r: TopoRouter, node: TopoNode, snatHost: TopoNode | null): boolean {
  if (r.gateway === null) return false;
  return r.ha.ha ? r.ha.l3Agents.includes(node.name) : snatHost === node;
}

/**
 * Whether `node` serves the SNAT part of `r` now: the SNAT host of a non-HA router; for an HA
 * router, an l3 agent whose keepalived is master (`haMasters` holds the router names).
 */
export function servesSnat(r: TopoRouter, node: TopoNode, snatHost: TopoNode | null, haMasters: ReadonlySet<string>): boolean {
  if (!isSnatCandidate(r, node, snatHost)) return false;
  return !r.ha.ha || haMasters.has(r.name);
}

/**
 * `topo` plus its HA networks, subnets and ha- ports as ordinary entries (see the header);
 * `topo` itself when it has no HA router. The result is a new object; `topo` is not changed.
 */
export function withHaNetworks(topo: Topology): Topology {
  const hrs = haRouters(topo);
  if (hrs.length === 0) return topo;
  const networks: TopoNetwork[] = [...topo.networks];
  const subnets: TopoSubnet[] = [...topo.subnets];
  const ports: TopoPort[] = [...topo.ports];
  const cidr = topo.ha.netCidr;
  for (const n of haNetworks(topo)) {
    networks.push({ name: n.name, type: n.type, segmentationId: n.segmentationId, physicalNetwork: '',
      mtuBytes: n.type === 'vxlan' ? 1450 : 1458, external: false, line: topo.ha.line });
    // The HA subnet has no gateway: keepalived talks on the segment only.
    subnets.push({ name: `${n.name} subnet`, network: n.name, cidr: parseCidr(cidr.text)!, gatewayIp: formatIpv4(cidr.base),
      gatewayMac: '', line: topo.ha.line, dhcp: { enabled: false, dnsNameservers: [], hostRoutes: [], allocationPools: [] } });
  }
  for (const h of hrs) {
    for (const p of h.ports) {
      ports.push({ name: `${h.device}@${p.node}`, mac: p.mac, network: h.network.name,
        fixedIps: [{ subnet: `${h.network.name} subnet`, ip: p.ip }], node: p.node, device: h.device, line: h.router.line,
        // A router port: no security groups (VRRP must pass), as Neutron's ha- ports.
        project: h.network.project, securityGroups: [], portSecurityEnabled: false, allowedAddressPairs: [],
        deviceOwner: 'network:router_ha_interface', addressing: 'static' });
    }
  }
  return { ...topo, networks, subnets, ports };
}
