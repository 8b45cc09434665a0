/**
 * The L3 HA part of the topology file (l3-ha.md): the top-level HA settings, a router's `ha`,
 * `l3_agents` and `project`, and the VRRP id of every HA router. Kept apart from
 * topology.ts so its vocabulary reads in one place; topology.ts calls these while parsing and
 * stores the results on its Topology and TopoRouter.
 * Called by: dvr/topology.ts (parseTopology). Pure.
 *
 *   l3_ha_net_cidr: 169.254.192.0/18        # optional (Neutron's default); one HA network per project
 *   l3_ha_network_type: vxlan               # optional: default the first tunnel type in use
 *   ha_vrrp_advert_int: 0.2                 # optional, seconds (Neutron's default 2); below 1 s
 *                                           # keepalived speaks VRRPv3 (centisecond adverts)
 *   ha_conntrack_sync: true                 # optional (default true): the master streams its SNAT
 *                                           # connections to the backups (Neutron's ha_conntrackd_enabled)
 *   ha_conntrack_sync_port: 3781            # optional: UDP port of that stream on the underlay
 *   routers:
 *     - name: R
 *       ha: true                            # centralized part (SNAT, qg-, sg-) on 2 or 3 dvr_snat nodes
 *       l3_agents: [NN1, NN2]               # optional: default the first three dvr_snat nodes
 *       project: demo                       # optional (default admin, as ports): VRIDs and the HA network are per project
 *
 * VRRP ids (Neutron's VR_ID_RANGE 1..254, per project): drawn as the conntrack zones are,
 * 1 + FNV-1a-32(router name) mod 254, a taken id takes the next one (wrapping), routers in
 * file order; so the same file gives the same ids and adding or removing a router moves no
 * other router's id (unless names collide). A router that finds all 254 taken is refused
 * with an error that names it.
 *
 * ha- port addresses: router VRID v, agent slot k (its place in l3_agents, 0..2) gets host
 * number 4v + k + 1 of l3_ha_net_cidr (so a /22 holds every VRID); the file is refused when
 * the prefix is too small for the VRIDs it uses. The keepalived primary VIP is Neutron's
 * 169.254.0.<v>/24 on the ha- device.
 */
import { isScalar, Node as YNode, YAMLMap } from 'yaml';
import { Cidr, fnv1a32, parseCidr } from './addr';
import { DEFAULT_PROJECT } from './topology-sg';
import { YamlReader } from '../control/yaml-reader';

export const HA_TOP_KEYS = ['l3_ha_net_cidr', 'l3_ha_network_type', 'ha_vrrp_advert_int', 'ha_conntrack_sync', 'ha_conntrack_sync_port'] as const;
/** Default UDP port of the conntrack sync stream (control/ha-ct-sync.ts). */
export const DEFAULT_HA_CT_SYNC_PORT = 3781;
export const HA_ROUTER_KEYS = ['ha', 'l3_agents', 'project'] as const;
export const DEFAULT_L3_HA_NET_CIDR = '169.254.192.0/18';
/** Neutron's ha_vrrp_advert_int default, seconds. */
export const DEFAULT_HA_VRRP_ADVERT_INT_MS = 2000;
/** Neutron's max_l3_agents_per_router. */
export const MAX_L3_AGENTS_PER_ROUTER = 3;
export const MIN_L3_AGENTS_PER_ROUTER = 2;
export const VRID_MIN = 1;
export const VRID_MAX = 254;

export type HaNetworkType = 'vxlan' | 'gre';

export interface HaSettings {
  netCidr: Cidr;
  /** '' when no HA router needs it and no tunnel type is in use. */
  networkType: HaNetworkType | '';
  /** VRRP advertisement interval in ms (10 ms steps: VRRPv3 counts centiseconds). */
  advertIntMs: number;
  /** Conntrack sync of SNAT connections master -> backups, and its UDP port. */
  ctSync: boolean;
  ctSyncPort: number;
  line: number;
}

/** A router's HA fields, as read (agents resolved to node names). */
export interface RouterHaFields {
  ha: boolean;
  /** dvr_snat nodes hosting the centralized part, in priority-free order; [] when not HA. */
  l3Agents: string[];
  project: string;
  /** VRRP id in 1..254 (0 when not HA); set by assignVrids. */
  vrid: number;
}

export interface HaNodeRef { name: string; agentMode: string }

/** Reads the top-level HA settings; `tunnelTypes` are the tunnel types of the file's networks, in order. */
export function readHaSettings(r: YamlReader, root: YAMLMap, tunnelTypes: readonly HaNetworkType[]): HaSettings {
  const cidrText = r.str(root, 'l3_ha_net_cidr', 'l3_ha_net_cidr', DEFAULT_L3_HA_NET_CIDR);
  const netCidr = parseCidr(cidrText);
  if (netCidr === null) {
    throw r.err(r.node(root, 'l3_ha_net_cidr'), 'l3_ha_net_cidr', `expected an IPv4 prefix like 169.254.192.0/18 with host bits zero, got "${cidrText}"`);
  }
  const typeText = r.str(root, 'l3_ha_network_type', 'l3_ha_network_type', tunnelTypes[0] ?? '');
  if (typeText !== '' && typeText !== 'vxlan' && typeText !== 'gre') {
    throw r.err(r.node(root, 'l3_ha_network_type'), 'l3_ha_network_type', `expected vxlan or gre, got "${typeText}"`);
  }
  let advertIntMs = DEFAULT_HA_VRRP_ADVERT_INT_MS;
  const an = r.node(root, 'ha_vrrp_advert_int');
  if (an !== undefined) {
    const v = isScalar(an) ? an.value : undefined;
    // VRRPv3 (RFC 5798 s5.2.7): 12 bits of centiseconds, so 0.01 .. 40.95 s.
    if (typeof v !== 'number' || !(v >= 0.01 && v <= 40.95) || Math.abs(Math.round(v * 100) - v * 100) > 1e-6) {
      throw r.err(an, 'ha_vrrp_advert_int', `expected seconds in 0.01..40.95 in steps of 0.01, got ${isScalar(an) ? JSON.stringify(an.value) : 'a collection'}`);
    }
    advertIntMs = Math.round(v * 100) * 10;
  }
  const ctSync = r.bool(root, 'ha_conntrack_sync', 'ha_conntrack_sync', true);
  const ctSyncPort = r.int(root, 'ha_conntrack_sync_port', 'ha_conntrack_sync_port', 1, 65535, DEFAULT_HA_CT_SYNC_PORT);
  return { netCidr, networkType: typeText as HaNetworkType | '', advertIntMs, ctSync, ctSyncPort, line: r.line(an ?? root) };
}

/** Reads `ha`, `l3_agents` and `project` of the router mapping `m` (`w` is its field prefix). */
export function readRouterHa(r: YamlReader, m: YAMLMap, w: string, nodes: readonly HaNodeRef[], hasGateway: boolean): RouterHaFields {
  const ha = r.bool(m, 'ha', `${w}.ha`, false);
  const project = r.str(m, 'project', `${w}.project`, DEFAULT_PROJECT);
  const out: RouterHaFields = { ha, l3Agents: [], project, vrid: 0 };
  const seq = r.seq(m, 'l3_agents', `${w}.l3_agents`);
  if (!ha) {
    if (seq.items.length > 0) throw r.err(r.node(m, 'l3_agents'), `${w}.l3_agents`, 'l3_agents is for HA routers (set ha: true)');
    return out;
  }
  if (!hasGateway) throw r.err(r.node(m, 'ha'), `${w}.ha`, 'an HA router needs an external_gateway (its centralized part is what VRRP makes HA)');
  const snatNodes = nodes.filter((n) => n.agentMode === 'dvr_snat').map((n) => n.name);
  if (seq.items.length === 0) {
    out.l3Agents = snatNodes.slice(0, MAX_L3_AGENTS_PER_ROUTER);
    if (out.l3Agents.length < MIN_L3_AGENTS_PER_ROUTER) {
      throw r.err(r.node(m, 'ha'), `${w}.ha`, `an HA router needs ${MIN_L3_AGENTS_PER_ROUTER} or ${MAX_L3_AGENTS_PER_ROUTER} dvr_snat nodes; the topology has ${snatNodes.length} (${snatNodes.join(', ') || 'none'})`);
    }
    return out;
  }
  if (seq.items.length > MAX_L3_AGENTS_PER_ROUTER || seq.items.length < MIN_L3_AGENTS_PER_ROUTER) {
    throw r.err(r.node(m, 'l3_agents'), `${w}.l3_agents`,
      `an HA router runs on ${MIN_L3_AGENTS_PER_ROUTER} or ${MAX_L3_AGENTS_PER_ROUTER} l3 agents (max_l3_agents_per_router), got ${seq.items.length}`);
  }
  for (let j = 0; j < seq.items.length; j++) {
    const n = seq.items[j] as YNode;
    const f = `${w}.l3_agents[${j}]`;
    const name = isScalar(n) ? String(n.value) : '';
    const node = nodes.find((x) => x.name === name);
    if (node === undefined) throw r.err(n, f, `unknown node "${name}"`);
    if (node.agentMode !== 'dvr_snat') throw r.err(n, f, `node ${name} is ${node.agentMode}; the centralized part runs on dvr_snat nodes`);
    if (out.l3Agents.includes(name)) throw r.err(n, f, `node ${name} is listed twice`);
    out.l3Agents.push(name);
  }
  return out;
}

export interface VridRouter { name: string; ha: RouterHaFields }

/**
 * Gives every HA router of `routers` (file order) its VRID (see the header); returns the
 * index of the first router that found no free id, or -1 when all got one.
 */
export function assignVrids(routers: readonly VridRouter[]): number {
  const used = new Map<string, Set<number>>();
  for (let i = 0; i < routers.length; i++) {
    const h = routers[i].ha;
    if (!h.ha) continue;
    let set = used.get(h.project);
    if (set === undefined) { set = new Set(); used.set(h.project, set); }
    if (set.size >= VRID_MAX - VRID_MIN + 1) return i;
    const span = VRID_MAX - VRID_MIN + 1;
    let v = fnv1a32(routers[i].name) % span;
    while (set.has(VRID_MIN + v)) v = (v + 1) % span;
    set.add(VRID_MIN + v);
    h.vrid = VRID_MIN + v;
  }
  return -1;
}

/** Host number of the ha- port of agent slot `slot` (0..2) of a router with VRID `vrid`. */
export function haPortHost(vrid: number, slot: number): number {
  return 4 * vrid + slot + 1;
}

/** The highest ha- host number the HA routers of `routers` use (0 when none). */
export function haLastHost(routers: readonly VridRouter[]): number {
  let last = 0;
  for (const x of routers) if (x.ha.ha) last = Math.max(last, haPortHost(x.ha.vrid, x.ha.l3Agents.length - 1));
  return last;
}
