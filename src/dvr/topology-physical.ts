/**
 * The physical-network parts of the topology file (Neutron's ML2 type drivers `vlan` and
 * `flat`, and the OVS agent's `bridge_mappings` / the node's physical interfaces):
 *
 *   nodes:
 *     - name: C1
 *       bridge_mappings: [physnet1:br-vlan, external:br-ex]   # physnet:bridge, one bridge each
 *       physical_interfaces: { br-vlan: phys1, br-ex: ext1 }  # bridge -> device plugged into it
 *       network_vlan_ranges: [physnet1:100:199, external]     # optional, Neutron's ml2_type_vlan
 *   networks:
 *     - { name: V1, network_type: vlan, physical_network: physnet1, segmentation_id: 101 }
 *     - { name: P, network_type: flat, physical_network: physnet2 }
 *
 * Called by: dvr/topology.ts (readNode for the node keys, the network loop for vlan/flat).
 * Pure: reads the parsed YAML through the YamlReader, throws ConfigError naming file:line:field.
 *
 * What is refused (docs/physical-networks.md):
 * - a bridge_mappings entry that is not "physnet:bridge", a physical network mapped twice on
 *   one node, two physical networks on one bridge, a mapping onto br-int or br-tun;
 * - a physical_interfaces key that is not a bridge of the node's bridge_mappings, or one
 *   device plugged into two bridges;
 * - a network_vlan_ranges entry that is not "physnet" or "physnet:min:max" with
 *   1 <= min <= max <= 4094, or a range for a physical network the node does not map;
 * - a vlan network without physical_network or segmentation_id, a VID outside 1..4094, a
 *   VID outside the ranges a node that maps the physical network gives for it (a physnet
 *   listed without ranges, or not listed, takes every VID), the same VID twice on one physical
 *   network; two flat networks on one physical network; a vlan or flat network on a physical
 *   network no node maps.
 */
import { isScalar, Node as YNode, YAMLMap } from 'yaml';
import type { YamlReader } from '../control/yaml-reader';

export const MIN_VLAN_ID = 1;
export const MAX_VLAN_ID = 4094;
/** Bridges flowd owns itself; a physical network cannot map onto them. */
const RESERVED_BRIDGES = ['br-int', 'br-tun'];
const IFNAME_RE = /^[A-Za-z0-9_.:-]{1,15}$/;

export const NODE_PHYSICAL_KEYS = ['bridge_mappings', 'physical_interfaces', 'network_vlan_ranges'] as const;

/** A node's physical networks: what readNodePhysical returns. */
export interface NodePhysical {
  /** physical network -> bridge (Neutron's bridge_mappings), in file order. */
  bridgeMappings: Map<string, string>;
  /** bridge -> device plugged into it (physical_interfaces). */
  physicalInterfaces: Map<string, string>;
  /** physical network -> allowed VID ranges [min, max]; an empty list allows every VID. */
  vlanRanges: Map<string, [number, number][]>;
}

/** Reads bridge_mappings, physical_interfaces and network_vlan_ranges of node entry `m0` (field prefix `w`). */
export function readNodePhysical(r: YamlReader, m0: YAMLMap, w: string): NodePhysical {
  const out: NodePhysical = { bridgeMappings: new Map(), physicalInterfaces: new Map(), vlanRanges: new Map() };
  const bm = r.seq(m0, 'bridge_mappings', `${w}.bridge_mappings`);
  const bridgeOwner = new Map<string, string>();
  for (let j = 0; j < bm.items.length; j++) {
    const n = bm.items[j] as YNode;
    const f = `${w}.bridge_mappings[${j}]`;
    const s = isScalar(n) ? String(n.value) : '';
    const mm = /^([A-Za-z0-9_.-]+):([A-Za-z0-9_.-]{1,15})$/.exec(s);
    if (mm === null) throw r.err(n, f, `expected "physnet:bridge", got "${s}"`);
    const [, physnet, bridge] = mm;
    if (RESERVED_BRIDGES.includes(bridge)) throw r.err(n, f, `bridge ${bridge} is flowd's own; map ${physnet} to a bridge of its own (e.g. br-${physnet})`);
    if (out.bridgeMappings.has(physnet)) throw r.err(n, f, `physical network ${physnet} is already mapped to ${out.bridgeMappings.get(physnet)}`);
    const prev = bridgeOwner.get(bridge);
    if (prev !== undefined) throw r.err(n, f, `bridge ${bridge} already carries physical network ${prev} (one physical network per bridge)`);
    bridgeOwner.set(bridge, physnet);
    out.bridgeMappings.set(physnet, bridge);
  }
  const pi = r.node(m0, 'physical_interfaces');
  if (pi !== undefined) {
    const pm = r.map(pi, `${w}.physical_interfaces`, m0);
    const devOwner = new Map<string, string>();
    for (const p of pm.items) {
      const br = isScalar(p.key) ? String(p.key.value) : '';
      const f = `${w}.physical_interfaces.${br}`;
      const dev = isScalar(p.value) ? String(p.value.value) : '';
      if (!bridgeOwner.has(br)) {
        throw r.err(p.key as YNode, f, `${br} is not a bridge of bridge_mappings (${[...bridgeOwner.keys()].join(', ') || 'none'})`);
      }
      if (!IFNAME_RE.test(dev)) throw r.err(p.value as YNode, f, `"${dev}" is not a valid interface name`);
      const prevBr = devOwner.get(dev);
      if (prevBr !== undefined) throw r.err(p.value as YNode, f, `device ${dev} is already plugged into ${prevBr}`);
      devOwner.set(dev, br);
      out.physicalInterfaces.set(br, dev);
    }
  }
  const vr = r.seq(m0, 'network_vlan_ranges', `${w}.network_vlan_ranges`);
  for (let j = 0; j < vr.items.length; j++) {
    const n = vr.items[j] as YNode;
    const f = `${w}.network_vlan_ranges[${j}]`;
    const s = isScalar(n) ? String(n.value) : '';
    const mm = /^([A-Za-z0-9_.-]+)(?::(\d+):(\d+))?$/.exec(s);
    if (mm === null) throw r.err(n, f, `expected "physnet" or "physnet:min:max", got "${s}"`);
    const physnet = mm[1];
    if (!out.bridgeMappings.has(physnet)) throw r.err(n, f, `physical network ${physnet} is not in this node's bridge_mappings`);
    const list = out.vlanRanges.get(physnet) ?? [];
    out.vlanRanges.set(physnet, list);
    if (mm[2] === undefined) continue;
    const lo = Number(mm[2]);
    const hi = Number(mm[3]);
    if (lo < MIN_VLAN_ID || hi > MAX_VLAN_ID || lo > hi) {
      throw r.err(n, f, `VLAN range ${lo}:${hi} must satisfy ${MIN_VLAN_ID} <= min <= max <= ${MAX_VLAN_ID}`);
    }
    list.push([lo, hi]);
  }
  return out;
}

/** What the network loop of topology.ts knows about a node for checking physical networks. */
export interface PhysicalNodeView extends NodePhysical { name: string }

/** The physical part of one network entry. */
export interface NetworkPhysical { physicalNetwork: string; segmentationId: number }

/**
 * Reads physical_network and segmentation_id of a `vlan` or `flat` network entry `m` (field
 * prefix `w`) and checks them against the nodes and the physical networks seen so far
 * (`seen`: "physnet" -> flat network name, "physnet:VID" -> vlan network name; updated).
 */
export function readNetworkPhysical(r: YamlReader, m: YAMLMap, w: string, name: string, type: 'vlan' | 'flat',
                                    nodes: readonly PhysicalNodeView[], seen: Map<string, string>): NetworkPhysical {
  const physnet = r.str(m, 'physical_network', `${w}.physical_network`);
  if (!nodes.some((n) => n.bridgeMappings.has(physnet))) {
    throw r.err(r.node(m, 'physical_network'), `${w}.physical_network`, `no node maps physical network ${physnet} (bridge_mappings)`);
  }
  if (type === 'flat') {
    if (r.has(m, 'segmentation_id')) throw r.err(r.node(m, 'segmentation_id'), `${w}.segmentation_id`, 'a flat network has no segmentation id');
    const prev = seen.get(physnet);
    if (prev !== undefined) throw r.err(r.node(m, 'physical_network'), `${w}.physical_network`, `physical network ${physnet} already carries flat network ${prev}`);
    seen.set(physnet, name);
    return { physicalNetwork: physnet, segmentationId: 0 };
  }
  const vid = r.int(m, 'segmentation_id', `${w}.segmentation_id`, MIN_VLAN_ID, MAX_VLAN_ID);
  const k = `${physnet}:${vid}`;
  const prev = seen.get(k);
  if (prev !== undefined) throw r.err(r.node(m, 'segmentation_id'), `${w}.segmentation_id`, `VLAN ${vid} on physical network ${physnet} is already used by network ${prev}`);
  for (const n of nodes) {
    const ranges = n.vlanRanges.get(physnet);
    if (ranges === undefined || ranges.length === 0 || !n.bridgeMappings.has(physnet)) continue;
    if (!ranges.some(([lo, hi]) => vid >= lo && vid <= hi)) {
      throw r.err(r.node(m, 'segmentation_id'), `${w}.segmentation_id`,
        `VLAN ${vid} is outside node ${n.name}'s network_vlan_ranges for ${physnet} (${ranges.map(([lo, hi]) => `${lo}:${hi}`).join(', ')})`);
    }
  }
  seen.set(k, name);
  return { physicalNetwork: physnet, segmentationId: vid };
}
