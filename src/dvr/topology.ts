/**
 * The DVR topology file (YAML) in Neutron's vocabulary, parsed and validated.
 * Called by: dvr/node-config.ts (and the daemon / lab through it). Pure: no I/O except
 * loadTopology reading the file.
 *
 *   dvr_mac_base: fa:16:3f:00:00:00        # optional (Neutron's default base)
 *   nodes:
 *     - name: C1
 *       agent_mode: dvr                     # dvr | dvr_snat | dvr_no_external
 *       local_ip: 192.168.100.11            # tunnel endpoint
 *       underlay: { device: eth1, mac: 52:54:00:00:00:11, mtu: 1500 }   # mtu defaults to 1500
 *       dvr_mac: fa:16:3f:00:00:11          # optional: else drawn from dvr_mac_base
 *       bridge_mappings: [external:br-ex]   # Neutron's physnet:bridge
 *       physical_interfaces: { br-ex: ext1 } # optional: device plugged into a physical bridge
 *       network_vlan_ranges: [physnet1:100:199] # optional (these three: topology-physical.ts)
 *       firewall_driver: openvswitch        # optional: openvswitch (default) | noop (FIREWALL_DRIVERS)
 *   networks:
 *     - { name: A, network_type: vxlan, segmentation_id: 1001 }       # mtu 1450 by default
 *     - { name: V, network_type: vlan, physical_network: physnet1, segmentation_id: 101 } # mtu 1500
 *     - { name: ext, network_type: flat, physical_network: external, router:external: true }
 *   subnets:
 *     - { name: A-v4, network: A, cidr: 10.0.1.0/24, gateway_ip: 10.0.1.1 }
 *     - { name: ext-v4, network: ext, cidr: 203.0.113.0/24, gateway_ip: 203.0.113.1,
 *         gateway_mac: 52:54:00:ff:00:01 }   # the upstream router's MAC (external only)
 *   routers:
 *     - name: R
 *       distributed: true
 *       interfaces:                          # qr- ports: one per subnet
 *         - { subnet: A-v4, mac: fa:16:3e:0a:00:01, snat: { ip: 10.0.1.2, mac: fa:16:3e:0a:00:02 } }
 *       external_gateway: { network: ext, ip: 203.0.113.10, mac: fa:16:3e:ee:00:10 }   # qg-
 *   fip_agent_gateways:                      # fg- ports: one per node per external network,
 *     - { node: C1, network: ext, ip: 203.0.113.11, mac: fa:16:3e:ee:00:11 }  # shared by its routers
 *   ports:
 *     - { name: VM1, mac: fa:16:3e:00:01:10, network: A, fixed_ips: [10.0.1.10],
 *         binding:host_id: C1, device: tap-vm1 }
 *   floating_ips:
 *     - { ip: 203.0.113.50, port: VM1 }
 *   security_groups: [...]                   # and ports' project, security_groups,
 *                                            # port_security_enabled, allowed_address_pairs:
 *                                            # dvr/topology-sg.ts
 *
 * DHCP (dhcp_agents_per_network, dhcp_agent, enable_dhcp, dns_nameservers, host_routes,
 * allocation_pools, device_owner, addressing) and the DHCP ports: dvr/dhcp-topology.ts.
 *
 * fg- ports are Neutron's floating IP agent gateway ports (device_owner
 * network:floatingip_agent_gateway): one per node and external network, its IP and MAC on the
 * external subnet, shared by every router with a floating IP on that node. The former
 * per-router `routers[R].fip_ports: [{ node, ip, mac }]` still reads: each entry becomes the
 * node's gateway on the router's external network, with a deprecation message naming
 * file:line:field and the entry to write instead (Topology.deprecations); two routers naming
 * different addresses for one node and network are refused (Neutron has one port there).
 *
 * Every error is a ConfigError "<file>:<line>: <field>: <message>", where the field names the
 * entry by its name when it has one (`ports[VM1].fixed_ips[0]`), else by its index.
 *
 * DVR MAC draw (deterministic, documented in docs/dvr-tables.md): a node without `dvr_mac`
 * gets dvr_mac_base with its random octets (the last three, or the last two when the fourth
 * octet of the base is not 00, as Neutron does) set from FNV-1a-32 of the node name; value 0
 * is skipped and a collision with any MAC of the file takes the next value. Nodes are drawn in
 * file order, so the same file always gives the same MACs, and a node's MAC does not depend on
 * the other nodes unless two names collide.
 */
import * as fs from 'node:fs';
import { isMap, isScalar, Node as YNode, YAMLMap } from 'yaml';
import { ConfigError } from '../errors';
import { Cidr, cidrContains, cidrsOverlap, fnv1a32, macToNumber, numberToMac, parseCidr } from './addr';
import * as Dhcp from './dhcp-topology';
import { YamlReader } from '../control/yaml-reader';
import { PortPlace, PortSecurity, readPortSecurity, readSecurityGroups, resolveSecurityGroups, SecurityGroup } from './topology-sg';
import { NODE_PHYSICAL_KEYS, readNetworkPhysical, readNodePhysical } from './topology-physical';
import { assignVrids, haLastHost, HA_ROUTER_KEYS, HA_TOP_KEYS, HaNetworkType, HaSettings, readHaSettings, readRouterHa, RouterHaFields } from './topology-ha';
import { ipv4FromString } from '../packet/ipv4';

export const AGENT_MODES = ['dvr', 'dvr_snat', 'dvr_no_external'] as const;
export type AgentMode = typeof AGENT_MODES[number];
export const NETWORK_TYPES = ['vxlan', 'gre', 'vlan', 'flat'] as const;
export type NetworkType = typeof NETWORK_TYPES[number];
export type TunnelType = 'vxlan' | 'gre';
/** Networks on a physical network (a physical bridge), as opposed to tunnel networks (br-tun). */
export type PhysicalType = 'vlan' | 'flat';

/** A vxlan or gre network: it crosses br-tun; vlan and flat networks cross their physical bridge. */
export function isTunnelNetwork<N extends { type: NetworkType }>(n: N): n is N & { type: TunnelType } {
  return n.type === 'vxlan' || n.type === 'gre';
}
/**
 * Neutron's [securitygroup] firewall_driver of the node's agent: `openvswitch` (the default, as
 * a Neutron OVS agent is deployed) filters the node's VM ports in br-int tables 60-94
 * (dvr/firewall-flows.ts): anti-spoofing, and each port's security groups (a port that names
 * none is in its project's `default` group: egress anywhere, ingress only from the group's
 * members). `noop` does not filter (router intercepts in table 0, no conntrack); a node opts
 * out with `firewall_driver: noop`. docs/dvr-tables.md.
 */
export const FIREWALL_DRIVERS = ['openvswitch', 'noop'] as const;
export type FirewallDriver = typeof FIREWALL_DRIVERS[number];
export const DEFAULT_FIREWALL_DRIVER: FirewallDriver = 'openvswitch';

/** Bytes of outer headers per tunnel type (Ethernet 14 excluded: IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14 = 50). */
export const TUNNEL_OVERHEAD_BYTES: Record<TunnelType, number> = { vxlan: 50, gre: 42 };
export const DEFAULT_MTU_BYTES: Record<NetworkType, number> = { vxlan: 1450, gre: 1458, vlan: 1500, flat: 1500 };
export const DEFAULT_UNDERLAY_MTU_BYTES = 1500;
export const NEUTRON_DVR_MAC_BASE = 'fa:16:3f:00:00:00';

export interface TopoNode {
  name: string;
  agentMode: AgentMode;
  localIp: string;
  underlayDevice: string;
  underlayMac: string;
  underlayMtuBytes: number;
  dvrMac: string;
  /** physical network -> bridge (Neutron's bridge_mappings), in file order. */
  bridgeMappings: Map<string, string>;
  /** bridge -> device plugged into it (physical_interfaces). */
  physicalInterfaces: Map<string, string>;
  /** physical network -> allowed VLAN ranges (network_vlan_ranges; topology-physical.ts). */
  vlanRanges: Map<string, [number, number][]>;
  firewallDriver: FirewallDriver;
  /** Runs Neutron's DHCP agent (dnsmasq per served network; dhcp-topology.ts). */
  dhcpAgent: boolean;
  line: number;
}

export interface TopoNetwork {
  name: string;
  type: NetworkType;
  /** VNI / GRE key / VLAN ID (VID on the physical wire); 0 for flat. */
  segmentationId: number;
  /** vlan and flat: the physical network (a key of the nodes' bridge_mappings); '' otherwise. */
  physicalNetwork: string;
  mtuBytes: number;
  external: boolean;
  line: number;
}

export interface TopoSubnet {
  name: string;
  network: string;
  cidr: Cidr;
  gatewayIp: string;
  /** The upstream router's MAC on an external subnet, '' when not given. */
  gatewayMac: string;
  dhcp: Dhcp.SubnetDhcp;
  line: number;
}

export interface RouterInterface {
  subnet: string;
  /** qr- port MAC = gwMAC, the same on every node. */
  mac: string;
  /** sg- port on the dvr_snat node: '' when the router has no SNAT port on this subnet. */
  snatIp: string;
  snatMac: string;
  line: number;
}

export interface RouterGateway { network: string; ip: string; mac: string; line: number }
/** fg-: a node's floating IP agent gateway port on one external network (see the header). */
export interface FipGateway { node: string; network: string; ip: string; mac: string; line: number }

export interface TopoRouter {
  name: string;
  distributed: boolean;
  interfaces: RouterInterface[];
  gateway: RouterGateway | null;
  /** L3 HA of the centralized part (topology-ha.ts). */
  ha: RouterHaFields;
  line: number;
}

export interface FixedIp { subnet: string; ip: string }

/** A VM port; its project, security groups and allowed address pairs: dvr/topology-sg.ts. */
export interface TopoPort extends PortSecurity {
  name: string;
  mac: string;
  network: string;
  fixedIps: FixedIp[];
  /** binding:host_id; '' when unbound. */
  node: string;
  /** Interface name on that node (veth/TAP host end). */
  device: string;
  /** Neutron's device_owner: '' for a VM port, 'network:dhcp' for a DHCP port. */
  deviceOwner: string;
  /** How the VM takes its address ('' only while parsing; dhcp-topology.ts settles it). */
  addressing: Dhcp.Addressing | '';
  line: number;
}

export interface FloatingIp { ip: string; port: string; line: number }

export interface Topology {
  file: string;
  dvrMacBase: string;
  nodes: TopoNode[];
  networks: TopoNetwork[];
  subnets: TopoSubnet[];
  routers: TopoRouter[];
  /** VM ports (no DHCP port among them). */
  ports: TopoPort[];
  floatingIps: FloatingIp[];
  /** fg- ports, one per node per external network (fip_agent_gateways, and converted fip_ports). */
  fipGateways: FipGateway[];
  /** "file:line: field: deprecated ...; write ... instead": read but to be rewritten by the user. */
  deprecations: string[];
  /** Declared groups in file order, then each project's implicit `default` (topology-sg.ts). */
  securityGroups: SecurityGroup[];
  dhcpAgentsPerNetwork: number;
  /** One per agent per served network, bound to the agent's node (dhcp-topology.ts). */
  dhcpPorts: TopoPort[];
  /** l3_ha_net_cidr, l3_ha_network_type, ha_vrrp_advert_int (topology-ha.ts). */
  ha: HaSettings;
}

/** Every port on a br-int: VM ports in file order, then DHCP ports. */
export function switchPorts(topo: Topology): TopoPort[] {
  return topo.dhcpPorts.length === 0 ? topo.ports : topo.ports.concat(topo.dhcpPorts);
}

const IFNAME_RE = /^[A-Za-z0-9_.:-]{1,15}$/;

/** "name" of the i-th entry of a list for error fields: its name when readable, else its index. */
function entryName(m: YAMLMap, i: number): string {
  const n = m.get('name', true) as YNode | undefined;
  return isScalar(n) && (typeof n.value === 'string' || typeof n.value === 'number') ? String(n.value) : String(i);
}

/** Collects the place of each MAC and IP so duplicates name both entries. */
class Registry {
  private readonly macs = new Map<string, string>();
  private readonly ips = new Map<string, string>();
  constructor(private readonly r: YamlReader) {}

  mac(mac: string, owner: string, n: YNode | undefined, field: string): void {
    const prev = this.macs.get(mac);
    if (prev !== undefined) throw this.r.err(n, field, `MAC ${mac} is already used by ${prev}`);
    this.macs.set(mac, owner);
  }

  hasMac(mac: string): boolean {
    return this.macs.has(mac);
  }

  hasIp(network: string, ip: string): boolean {
    return this.ips.has(`${network}/${ip}`);
  }

  /** IPs are unique per network (two tenants may reuse 10.0.1.0/24 on different networks). */
  ip(network: string, ip: string, owner: string, n: YNode | undefined, field: string): void {
    const k = `${network}/${ip}`;
    const prev = this.ips.get(k);
    if (prev !== undefined) throw this.r.err(n, field, `IP ${ip} is already used by ${prev} on network ${network}`);
    this.ips.set(k, owner);
  }
}

function readNode(r: YamlReader, it: unknown, i: number, parent: YNode): TopoNode & { dvrMacNode?: YNode } {
  const m0 = r.map(it, `nodes[${i}]`, parent);
  const w = `nodes[${entryName(m0, i)}]`;
  r.checkKeys(m0, ['name', 'agent_mode', 'local_ip', 'underlay', 'dvr_mac', ...NODE_PHYSICAL_KEYS, 'firewall_driver', ...Dhcp.NODE_DHCP_KEYS], w);
  const name = r.str(m0, 'name', `${w}.name`);
  const modeText = r.str(m0, 'agent_mode', `${w}.agent_mode`, 'dvr');
  if (!(AGENT_MODES as readonly string[]).includes(modeText)) {
    throw r.err(r.node(m0, 'agent_mode'), `${w}.agent_mode`, `unknown agent_mode "${modeText}" (expected one of ${AGENT_MODES.join(', ')})`);
  }
  const fwText = r.str(m0, 'firewall_driver', `${w}.firewall_driver`, DEFAULT_FIREWALL_DRIVER);
  if (!(FIREWALL_DRIVERS as readonly string[]).includes(fwText)) {
    throw r.err(r.node(m0, 'firewall_driver'), `${w}.firewall_driver`, `unknown firewall_driver "${fwText}" (expected one of ${FIREWALL_DRIVERS.join(', ')})`);
  }
  const um = r.map(r.node(m0, 'underlay') ?? new YAMLMap(), `${w}.underlay`, m0);
  r.checkKeys(um, ['device', 'mac', 'mtu'], `${w}.underlay`);
  const node: TopoNode & { dvrMacNode?: YNode } = {
    name,
    agentMode: modeText as AgentMode,
    localIp: r.ipv4(m0, 'local_ip', `${w}.local_ip`),
    underlayDevice: r.str(um, 'device', `${w}.underlay.device`, ''),
    underlayMac: r.mac(um, 'mac', `${w}.underlay.mac`, ''),
    underlayMtuBytes: r.int(um, 'mtu', `${w}.underlay.mtu`, 576, 65535, DEFAULT_UNDERLAY_MTU_BYTES),
    dvrMac: r.mac(m0, 'dvr_mac', `${w}.dvr_mac`, ''),
    ...readNodePhysical(r, m0, w),
    firewallDriver: fwText as FirewallDriver,
    dhcpAgent: Dhcp.readNodeDhcpAgent(r, m0, w, modeText),
    line: r.line(m0),
  };
  if (node.underlayDevice !== '' && !IFNAME_RE.test(node.underlayDevice)) {
    throw r.err(r.node(um, 'device'), `${w}.underlay.device`, `"${node.underlayDevice}" is not a valid interface name`);
  }
  node.dvrMacNode = r.node(m0, 'dvr_mac');
  return node;
}


/**
 * Draws a DVR MAC for `nodeName` under `base` (see the header). `taken` says whether a MAC is
 * already used. Neutron keeps the first three octets of the base, and the fourth too when it
 * is not 00; the rest is random there and a hash of the name here.
 */
export function drawDvrMac(base: string, nodeName: string, taken: (mac: string) => boolean): string {
  const b = macToNumber(base);
  const randomBits = ((b / 0x1000000) & 0xff) !== 0 ? 16 : 24;
  const span = 2 ** randomBits;
  const fixed = Math.floor(b / span) * span;
  let v = fnv1a32(nodeName) % span;
  for (let tries = 0; tries < span; tries++) {
    if (v !== 0) {
      const mac = numberToMac(fixed + v);
      if (!taken(mac)) return mac;
    }
    v = (v + 1) % span;
  }
  throw new Error(`no free DVR MAC under ${base}`);
}

/** VRIDs of the HA routers and the HA network they need (topology-ha.ts); errors name the router. */
function readHaRouters(r: YamlReader, root: YAMLMap, topo: Topology, routerMaps: YAMLMap[]): void {
  const full = assignVrids(topo.routers);
  if (full >= 0) {
    const rt = topo.routers[full];
    throw r.err(r.node(routerMaps[full], 'ha'), `routers[${rt.name}].ha`,
      `project ${rt.ha.project} has no free VRRP id for router ${rt.name} (ids 1..254 are all taken by its other HA routers)`);
  }
  const first = topo.routers.findIndex((x) => x.ha.ha);
  if (first >= 0 && topo.ha.networkType === '') {
    throw r.err(r.node(routerMaps[first], 'ha'), `routers[${topo.routers[first].name}].ha`,
      'the HA network needs a tunnel type: set l3_ha_network_type (no vxlan or gre network in the file)');
  }
  const last = haLastHost(topo.routers);
  if (last >= 2 ** (32 - topo.ha.netCidr.prefixLen) - 1) {
    throw r.err(r.node(root, 'l3_ha_net_cidr') ?? root, 'l3_ha_net_cidr',
      `${topo.ha.netCidr.text} is too small for the ha- ports (host ${last} is needed; a /22 or larger holds every VRID)`);
  }
}

/** Parses and validates topology text; `file` names it in errors. */
export function parseTopology(file: string, text: string): Topology {
  const r = new YamlReader(file);
  return readTopology(r, r.parse(text));
}

/**
 * Validates a topology document already parsed by `r` (or put together from parsed parts whose
 * node ranges are offsets into the text `r.lc` counts lines of: control/topology-keys.ts).
 */
export function readTopology(r: YamlReader, contents: unknown): Topology {
  const file = r.file;
  const root = r.map(contents, '(top level)', null);
  r.checkKeys(root, ['dvr_mac_base', 'nodes', 'networks', 'subnets', 'routers', 'fip_agent_gateways', 'ports', 'floating_ips', 'security_groups', ...Dhcp.TOP_DHCP_KEYS, ...HA_TOP_KEYS], '(top level)');
  const agentsPerNetwork = Dhcp.readAgentsPerNetwork(r, root);
  const reg = new Registry(r);
  const topo: Topology = {
    file,
    dvrMacBase: r.mac(root, 'dvr_mac_base', 'dvr_mac_base', NEUTRON_DVR_MAC_BASE),
    nodes: [], networks: [], subnets: [], routers: [], ports: [], floatingIps: [], fipGateways: [], deprecations: [], securityGroups: [],
    dhcpAgentsPerNetwork: agentsPerNetwork.n, dhcpPorts: [],
    ha: { netCidr: parseCidr('0.0.0.0/0')!, networkType: '', advertIntMs: 0, ctSync: true, ctSyncPort: 0, line: 0 },
  };
  const declaredGroups = readSecurityGroups(r, root);

  // Nodes.
  const nodeSeq = r.seq(root, 'nodes', 'nodes', true);
  const nodeNodes: YAMLMap[] = [];
  const localIps = new Map<string, string>();
  for (let i = 0; i < nodeSeq.items.length; i++) {
    const n = readNode(r, nodeSeq.items[i], i, nodeSeq);
    const m = nodeSeq.items[i] as YAMLMap;
    const w = `nodes[${n.name}]`;
    if (topo.nodes.some((x) => x.name === n.name)) throw r.err(r.node(m, 'name'), `${w}.name`, `node "${n.name}" is defined twice`);
    const prevIp = localIps.get(n.localIp);
    if (prevIp !== undefined) throw r.err(r.node(m, 'local_ip'), `${w}.local_ip`, `IP ${n.localIp} is already the local_ip of node ${prevIp}`);
    localIps.set(n.localIp, n.name);
    if (n.underlayMac !== '') reg.mac(n.underlayMac, `node ${n.name} underlay`, r.node(r.node(m, 'underlay') as YAMLMap, 'mac'), `${w}.underlay.mac`);
    if (n.dvrMac !== '') reg.mac(n.dvrMac, `node ${n.name} dvr_mac`, n.dvrMacNode, `${w}.dvr_mac`);
    delete n.dvrMacNode;
    topo.nodes.push(n);
    nodeNodes.push(m);
  }
  const nodeByName = new Map(topo.nodes.map((n) => [n.name, n]));
  const nodeRef = (m: YAMLMap, key: string, field: string, def?: string): string => {
    const s = r.str(m, key, field, def);
    if (s !== '' && !nodeByName.has(s)) throw r.err(r.node(m, key), field, `unknown node "${s}"`);
    return s;
  };

  // Networks.
  const netSeq = r.seq(root, 'networks', 'networks', true);
  const segIds = new Map<string, string>();
  const physSeen = new Map<string, string>();
  const minUnderlay = topo.nodes.reduce((a, n) => Math.min(a, n.underlayMtuBytes), DEFAULT_UNDERLAY_MTU_BYTES);
  const minUnderlayNode = topo.nodes.find((n) => n.underlayMtuBytes === minUnderlay);
  for (let i = 0; i < netSeq.items.length; i++) {
    const m = r.map(netSeq.items[i], `networks[${i}]`, netSeq);
    const w = `networks[${entryName(m, i)}]`;
    r.checkKeys(m, ['name', 'network_type', 'segmentation_id', 'physical_network', 'mtu', 'router:external'], w);
    const name = r.str(m, 'name', `${w}.name`);
    if (topo.networks.some((x) => x.name === name)) throw r.err(r.node(m, 'name'), `${w}.name`, `network "${name}" is defined twice`);
    const typeText = r.str(m, 'network_type', `${w}.network_type`);
    if (!(NETWORK_TYPES as readonly string[]).includes(typeText)) {
      throw r.err(r.node(m, 'network_type'), `${w}.network_type`, `unknown network_type "${typeText}" (expected one of ${NETWORK_TYPES.join(', ')})`);
    }
    const type = typeText as NetworkType;
    const phys = isTunnelNetwork({ type }) ? null : readNetworkPhysical(r, m, w, name, type as PhysicalType, topo.nodes, physSeen);
    if (phys === null && r.has(m, 'physical_network')) {
      throw r.err(r.node(m, 'physical_network'), `${w}.physical_network`, `a ${type} network has no physical network (only vlan and flat do)`);
    }
    const net: TopoNetwork = {
      name, type,
      segmentationId: phys !== null ? phys.segmentationId : r.int(m, 'segmentation_id', `${w}.segmentation_id`, 1, type === 'vxlan' ? 0xffffff : 0xffffffff),
      physicalNetwork: phys !== null ? phys.physicalNetwork : '',
      mtuBytes: r.int(m, 'mtu', `${w}.mtu`, 68, 65535, DEFAULT_MTU_BYTES[type]),
      external: r.bool(m, 'router:external', `${w}.router:external`, false),
      line: r.line(m),
    };
    if (type === 'vxlan' || type === 'gre') {
      const k = `${type}:${net.segmentationId}`;
      const prev = segIds.get(k);
      if (prev !== undefined) {
        throw r.err(r.node(m, 'segmentation_id'), `${w}.segmentation_id`, `${type} segmentation id ${net.segmentationId} is already used by network ${prev}`);
      }
      segIds.set(k, name);
      const need = net.mtuBytes + TUNNEL_OVERHEAD_BYTES[type];
      if (need > minUnderlay) {
        throw r.err(r.node(m, 'mtu') ?? m, `${w}.mtu`,
          `MTU ${net.mtuBytes} + ${TUNNEL_OVERHEAD_BYTES[type]} bytes of ${type.toUpperCase()} overhead = ${need} exceeds the underlay MTU ${minUnderlay} of node ${minUnderlayNode?.name}`);
      }
    }
    topo.networks.push(net);
  }
  const tunnelTypes: HaNetworkType[] = [];
  for (const n of topo.networks) if (isTunnelNetwork(n) && !tunnelTypes.includes(n.type)) tunnelTypes.push(n.type);
  topo.ha = readHaSettings(r, root, tunnelTypes);
  const netByName = new Map(topo.networks.map((n) => [n.name, n]));
  const netRef = (m: YAMLMap, key: string, field: string): TopoNetwork => {
    const s = r.str(m, key, field);
    const n = netByName.get(s);
    if (n === undefined) throw r.err(r.node(m, key), field, `unknown network "${s}"`);
    return n;
  };

  // Subnets.
  const subSeq = r.seq(root, 'subnets', 'subnets');
  for (let i = 0; i < subSeq.items.length; i++) {
    const m = r.map(subSeq.items[i], `subnets[${i}]`, subSeq);
    const w = `subnets[${entryName(m, i)}]`;
    r.checkKeys(m, ['name', 'network', 'cidr', 'gateway_ip', 'gateway_mac', ...Dhcp.SUBNET_DHCP_KEYS], w);
    const name = r.str(m, 'name', `${w}.name`);
    if (topo.subnets.some((x) => x.name === name)) throw r.err(r.node(m, 'name'), `${w}.name`, `subnet "${name}" is defined twice`);
    const net = netRef(m, 'network', `${w}.network`);
    const cidrText = r.str(m, 'cidr', `${w}.cidr`);
    const cidr = parseCidr(cidrText);
    if (cidr === null) throw r.err(r.node(m, 'cidr'), `${w}.cidr`, `expected an IPv4 prefix like 10.0.1.0/24 with host bits zero, got "${cidrText}"`);
    for (const o of topo.subnets) {
      if (o.network === net.name && cidrsOverlap(o.cidr, cidr)) {
        throw r.err(r.node(m, 'cidr'), `${w}.cidr`, `${cidrText} overlaps subnet ${o.name} (${o.cidr.text}) on network ${net.name}`);
      }
    }
    const gw = r.ipv4(m, 'gateway_ip', `${w}.gateway_ip`);
    if (!cidrContains(cidr, ipv4FromString(gw))) throw r.err(r.node(m, 'gateway_ip'), `${w}.gateway_ip`, `${gw} is outside ${cidrText}`);
    const sub: TopoSubnet = { name, network: net.name, cidr, gatewayIp: gw, gatewayMac: r.mac(m, 'gateway_mac', `${w}.gateway_mac`, ''),
      dhcp: Dhcp.readSubnetDhcp(r, m, w, cidr, gw), line: r.line(m) };
    reg.ip(net.name, gw, `subnet ${name} gateway`, r.node(m, 'gateway_ip'), `${w}.gateway_ip`);
    if (sub.gatewayMac !== '') reg.mac(sub.gatewayMac, `subnet ${name} gateway`, r.node(m, 'gateway_mac'), `${w}.gateway_mac`);
    topo.subnets.push(sub);
  }
  const subByName = new Map(topo.subnets.map((s) => [s.name, s]));
  const subRef = (m: YAMLMap, key: string, field: string): TopoSubnet => {
    const s = r.str(m, key, field);
    const n = subByName.get(s);
    if (n === undefined) throw r.err(r.node(m, key), field, `unknown subnet "${s}"`);
    return n;
  };
  /** network name -> its subnets, file order (all are read by now). */
  const subnetsOf = new Map<string, TopoSubnet[]>();
  for (const s of topo.subnets) {
    const list = subnetsOf.get(s.network) ?? [];
    list.push(s);
    subnetsOf.set(s.network, list);
  }
  /** An IP on `net`: must lie in one of its subnets; returns that subnet. */
  const ipOnNet = (n: YNode | undefined, field: string, ip: string, net: TopoNetwork, owner: string): TopoSubnet => {
    const u = ipv4FromString(ip);
    const sub = subnetsOf.get(net.name)?.find((s) => cidrContains(s.cidr, u));
    if (sub === undefined) {
      const cidrs = (subnetsOf.get(net.name) ?? []).map((s) => s.cidr.text);
      throw r.err(n, field, `${ip} is outside the subnets of network ${net.name} (${cidrs.join(', ') || 'none'})`);
    }
    reg.ip(net.name, ip, owner, n, field);
    return sub;
  };

  /** One fg- port per node and external network (unused on a dvr_no_external node: its floating IPs are central). */
  const addFipGateway = (r0: YamlReader, m: YAMLMap, w: string, g: FipGateway): void => {
    const prev = topo.fipGateways.find((x) => x.node === g.node && x.network === g.network);
    if (prev !== undefined) {
      throw r0.err(r0.node(m, 'node') ?? m, `${w}.node`, `node ${g.node} already has its fg- port on ${g.network} (line ${prev.line}): one per node per external network`);
    }
    const net = netByName.get(g.network)!;
    ipOnNet(r0.node(m, 'ip') ?? m, `${w}.ip`, g.ip, net, `fg- port of node ${g.node}`);
    reg.mac(g.mac, `fg- port of node ${g.node}`, r0.node(m, 'mac') ?? m, `${w}.mac`);
    topo.fipGateways.push(g);
  };
  const fgSeq = r.seq(root, 'fip_agent_gateways', 'fip_agent_gateways');
  for (let i = 0; i < fgSeq.items.length; i++) {
    const m = r.map(fgSeq.items[i], `fip_agent_gateways[${i}]`, fgSeq);
    const w = `fip_agent_gateways[${i}]`;
    r.checkKeys(m, ['node', 'network', 'ip', 'mac'], w);
    const node = nodeRef(m, 'node', `${w}.node`);
    const net = netRef(m, 'network', `${w}.network`);
    if (!net.external) throw r.err(r.node(m, 'network'), `${w}.network`, `network ${net.name} is not router:external`);
    addFipGateway(r, m, w, { node, network: net.name, ip: r.ipv4(m, 'ip', `${w}.ip`), mac: r.mac(m, 'mac', `${w}.mac`), line: r.line(m) });
  }

  // Routers.
  const rtSeq = r.seq(root, 'routers', 'routers');
  const attached = new Map<string, string>();
  for (let i = 0; i < rtSeq.items.length; i++) {
    const m = r.map(rtSeq.items[i], `routers[${i}]`, rtSeq);
    const w = `routers[${entryName(m, i)}]`;
    r.checkKeys(m, ['name', 'distributed', 'interfaces', 'external_gateway', 'fip_ports', ...HA_ROUTER_KEYS], w);
    const name = r.str(m, 'name', `${w}.name`);
    if (topo.routers.some((x) => x.name === name)) throw r.err(r.node(m, 'name'), `${w}.name`, `router "${name}" is defined twice`);
    const rt: TopoRouter = { name, distributed: r.bool(m, 'distributed', `${w}.distributed`, true), interfaces: [], gateway: null,
      ha: { ha: false, l3Agents: [], project: '', vrid: 0 }, line: r.line(m) };
    if (!rt.distributed) throw r.err(r.node(m, 'distributed'), `${w}.distributed`, 'only distributed routers are supported (flowd has no centralized router)');
    const ifs = r.seq(m, 'interfaces', `${w}.interfaces`);
    for (let j = 0; j < ifs.items.length; j++) {
      const im = r.map(ifs.items[j], `${w}.interfaces[${j}]`, ifs);
      const iw = `${w}.interfaces[${j}]`;
      r.checkKeys(im, ['subnet', 'mac', 'snat'], iw);
      const sub = subRef(im, 'subnet', `${iw}.subnet`);
      const prevRt = attached.get(sub.name);
      if (prevRt !== undefined) throw r.err(r.node(im, 'subnet'), `${iw}.subnet`, `subnet ${sub.name} is already attached to router ${prevRt}`);
      for (const o of rt.interfaces) {
        const os = subByName.get(o.subnet)!;
        if (cidrsOverlap(os.cidr, sub.cidr)) {
          throw r.err(r.node(im, 'subnet'), `${iw}.subnet`, `${sub.name} (${sub.cidr.text}) overlaps ${os.name} (${os.cidr.text}) on router ${name}`);
        }
      }
      attached.set(sub.name, name);
      const ri: RouterInterface = { subnet: sub.name, mac: r.mac(im, 'mac', `${iw}.mac`), snatIp: '', snatMac: '', line: r.line(im) };
      reg.mac(ri.mac, `router ${name} interface on ${sub.name}`, r.node(im, 'mac'), `${iw}.mac`);
      const sn = r.node(im, 'snat');
      if (sn !== undefined) {
        const sm = r.map(sn, `${iw}.snat`, im);
        r.checkKeys(sm, ['ip', 'mac'], `${iw}.snat`);
        ri.snatIp = r.ipv4(sm, 'ip', `${iw}.snat.ip`);
        ri.snatMac = r.mac(sm, 'mac', `${iw}.snat.mac`);
        if (!cidrContains(sub.cidr, ipv4FromString(ri.snatIp))) throw r.err(r.node(sm, 'ip'), `${iw}.snat.ip`, `${ri.snatIp} is outside subnet ${sub.name} (${sub.cidr.text})`);
        reg.ip(sub.network, ri.snatIp, `router ${name} snat port on ${sub.name}`, r.node(sm, 'ip'), `${iw}.snat.ip`);
        reg.mac(ri.snatMac, `router ${name} snat port on ${sub.name}`, r.node(sm, 'mac'), `${iw}.snat.mac`);
      }
      rt.interfaces.push(ri);
    }
    const gn = r.node(m, 'external_gateway');
    if (gn !== undefined) {
      const gm = r.map(gn, `${w}.external_gateway`, m);
      const gw = `${w}.external_gateway`;
      r.checkKeys(gm, ['network', 'ip', 'mac'], gw);
      const net = netRef(gm, 'network', `${gw}.network`);
      if (!net.external) throw r.err(r.node(gm, 'network'), `${gw}.network`, `network ${net.name} is not router:external`);
      const ip = r.ipv4(gm, 'ip', `${gw}.ip`);
      ipOnNet(r.node(gm, 'ip'), `${gw}.ip`, ip, net, `router ${name} gateway`);
      const mac = r.mac(gm, 'mac', `${gw}.mac`);
      reg.mac(mac, `router ${name} gateway`, r.node(gm, 'mac'), `${gw}.mac`);
      rt.gateway = { network: net.name, ip, mac, line: r.line(gm) };
    }
    const fps = r.seq(m, 'fip_ports', `${w}.fip_ports`);
    for (let j = 0; j < fps.items.length; j++) {
      const fm = r.map(fps.items[j], `${w}.fip_ports[${j}]`, fps);
      const fw = `${w}.fip_ports[${j}]`;
      r.checkKeys(fm, ['node', 'ip', 'mac'], fw);
      if (rt.gateway === null) throw r.err(fm, fw, 'fip ports need an external_gateway');
      const node = nodeRef(fm, 'node', `${fw}.node`);
      const ip = r.ipv4(fm, 'ip', `${fw}.ip`);
      const mac = r.mac(fm, 'mac', `${fw}.mac`);
      const entry = `{ node: ${node}, network: ${rt.gateway.network}, ip: ${ip}, mac: ${mac} }`;
      const why = `deprecated: fg- ports are per node per external network, shared by the node's routers (Neutron's floating IP agent gateway port); ` +
        `write ${entry} under the top-level fip_agent_gateways instead`;
      const have = topo.fipGateways.find((g) => g.node === node && g.network === rt.gateway!.network);
      if (have !== undefined) {
        if (have.ip !== ip || have.mac !== mac) {
          throw r.err(fm, fw, `node ${node} already has its fg- port on ${rt.gateway.network} (${have.ip} ${have.mac}, line ${have.line}): ` +
            `one per node per external network, shared by its routers; delete this entry (${why})`);
        }
      } else {
        addFipGateway(r, fm, fw, { node, network: rt.gateway.network, ip, mac, line: r.line(fm) });
      }
      topo.deprecations.push(r.err(fm, fw, why).message);
    }
    rt.ha = readRouterHa(r, m, w, topo.nodes, rt.gateway !== null);
    topo.routers.push(rt);
  }
  readHaRouters(r, root, topo, rtSeq.items as YAMLMap[]);

  // Ports.
  const portSeq = r.seq(root, 'ports', 'ports');
  const devices = new Map<string, string>();
  const portPlaces: PortPlace[] = [];
  const portNames = new Set<string>();
  for (let i = 0; i < portSeq.items.length; i++) {
    const m = r.map(portSeq.items[i], `ports[${i}]`, portSeq);
    const w = `ports[${entryName(m, i)}]`;
    r.checkKeys(m, ['name', 'mac', 'network', 'fixed_ips', 'binding:host_id', 'device', 'project',
      'security_groups', 'port_security_enabled', 'allowed_address_pairs', ...Dhcp.PORT_DHCP_KEYS], w);
    const name = r.str(m, 'name', `${w}.name`);
    if (portNames.has(name)) throw r.err(r.node(m, 'name'), `${w}.name`, `port "${name}" is defined twice`);
    portNames.add(name);
    const net = netRef(m, 'network', `${w}.network`);
    const mac = r.mac(m, 'mac', `${w}.mac`);
    const port: TopoPort = {
      name, mac, network: net.name, fixedIps: [],
      node: nodeRef(m, 'binding:host_id', `${w}.binding:host_id`, ''),
      device: r.str(m, 'device', `${w}.device`, ''),
      ...Dhcp.readPortDhcp(r, m, w),
      line: r.line(m),
      ...readPortSecurity(r, m, w, mac),
    };
    portPlaces.push({ name, node: m, sec: port });
    reg.mac(port.mac, `port ${name}`, r.node(m, 'mac'), `${w}.mac`);
    if (port.node !== '') {
      if (port.device === '') throw r.err(m, `${w}.device`, 'a bound port needs the device name on its node');
      if (!IFNAME_RE.test(port.device)) throw r.err(r.node(m, 'device'), `${w}.device`, `"${port.device}" is not a valid interface name (1-15 of letters, digits, _ . : -)`);
      const k = `${port.node}/${port.device}`;
      const prev = devices.get(k);
      if (prev !== undefined) throw r.err(r.node(m, 'device'), `${w}.device`, `device ${port.device} on node ${port.node} is already used by port ${prev}`);
      devices.set(k, name);
    }
    const fips = r.seq(m, 'fixed_ips', `${w}.fixed_ips`);
    for (let j = 0; j < fips.items.length; j++) {
      const it = fips.items[j] as YNode;
      const fw = `${w}.fixed_ips[${j}]`;
      let ip: string;
      let subName = '';
      let ipNode: YNode = it;
      if (isMap(it)) {
        r.checkKeys(it, ['ip_address', 'subnet'], fw);
        ip = r.ipv4(it, 'ip_address', `${fw}.ip_address`);
        ipNode = r.node(it, 'ip_address') ?? it;
        if (it.has('subnet')) subName = subRef(it, 'subnet', `${fw}.subnet`).name;
      } else if (isScalar(it) && typeof it.value === 'string') {
        ip = r.ipv4Text(it, fw, it.value);
      } else {
        throw r.err(it, fw, 'expected an IPv4 address or { ip_address, subnet }');
      }
      const sub = ipOnNet(ipNode, fw, ip, net, `port ${name}`);
      if (subName !== '' && subName !== sub.name) throw r.err(ipNode, fw, `${ip} is outside subnet ${subName} (${subByName.get(subName)!.cidr.text})`);
      port.fixedIps.push({ subnet: sub.name, ip });
    }
    topo.ports.push(port);
  }
  settleDhcpPorts(topo, reg, agentsPerNetwork.n, agentsPerNetwork.given, r.line(r.node(root, 'dhcp_agents_per_network') ?? null));
  const portByName = new Map(topo.ports.map((p) => [p.name, p]));
  topo.securityGroups = resolveSecurityGroups(r, root, declaredGroups, portPlaces);

  // Floating IPs.
  const fipSeq = r.seq(root, 'floating_ips', 'floating_ips');
  for (let i = 0; i < fipSeq.items.length; i++) {
    const m = r.map(fipSeq.items[i], `floating_ips[${i}]`, fipSeq);
    const w = `floating_ips[${i}]`;
    r.checkKeys(m, ['ip', 'port'], w);
    const ip = r.ipv4(m, 'ip', `${w}.ip`);
    const portName = r.str(m, 'port', `${w}.port`);
    const port = portByName.get(portName);
    if (port === undefined) throw r.err(r.node(m, 'port'), `${w}.port`, `unknown port "${portName}"`);
    const u = ipv4FromString(ip);
    const sub = topo.subnets.find((s) => netByName.get(s.network)!.external && cidrContains(s.cidr, u));
    if (sub === undefined) throw r.err(r.node(m, 'ip'), `${w}.ip`, `${ip} is not in a subnet of a router:external network`);
    reg.ip(sub.network, ip, `floating IP of port ${portName}`, r.node(m, 'ip'), `${w}.ip`);
    // The router that carries it: an interface on the port's subnet, the gateway on the FIP's network.
    const rt = topo.routers.find((x) => x.gateway !== null && x.gateway.network === sub.network &&
      x.interfaces.some((i) => port.fixedIps.some((f) => f.subnet === i.subnet)));
    if (rt === undefined) {
      throw r.err(r.node(m, 'port'), `${w}.port`, `no router joins a subnet of port ${portName} to external network ${sub.network}`);
    }
    if (topo.floatingIps.some((f) => f.port === portName)) {
      throw r.err(r.node(m, 'port'), `${w}.port`, `port ${portName} already has a floating IP`);
    }
    const node = nodeByName.get(port.node);
    if (node !== undefined && node.agentMode === 'dvr_no_external') {
      // Served centrally on the dvr_snat node (Neutron's centralized floating IPs).
      if (!topo.nodes.some((n) => n.agentMode === 'dvr_snat')) {
        throw r.err(r.node(m, 'port'), `${w}.port`, `port ${portName} is bound to dvr_no_external node ${node.name} and no dvr_snat node can serve its floating IP`);
      }
    } else if (node !== undefined && !topo.fipGateways.some((g) => g.node === node.name && g.network === sub.network)) {
      throw r.err(r.node(m, 'port'), `${w}.port`, `node ${node.name}, where port ${portName} is bound, has no fg- port on ${sub.network}: ` +
        `add { node: ${node.name}, network: ${sub.network}, ip: ..., mac: ... } to fip_agent_gateways`);
    }
    topo.floatingIps.push({ ip, port: portName, line: r.line(m) });
  }

  // DVR MACs last, so a drawn MAC never collides with any MAC of the file.
  for (let i = 0; i < topo.nodes.length; i++) {
    const n = topo.nodes[i];
    if (n.dvrMac !== '') continue;
    n.dvrMac = drawDvrMac(topo.dvrMacBase, n.name, (mac) => reg.hasMac(mac));
    reg.mac(n.dvrMac, `node ${n.name} dvr_mac`, nodeNodes[i], `nodes[${n.name}].dvr_mac`);
  }
  return topo;
}

/** DHCP ports and VM addressing (dhcp-topology.ts), with this file's registry of addresses. */
function settleDhcpPorts(topo: Topology, reg: Registry, n: number, given: boolean, line: number): void {
  Dhcp.settleDhcp(topo, {
    agentsPerNetwork: { n, given, line },
    ipTaken: (net, ip) => reg.hasIp(net, ip),
    claimIp: (net, ip, owner, l, field) => reg.ip(net, ip, owner, undefined, `${field} (line ${l})`),
    drawMac: (name, l, field) => {
      const mac = drawDvrMac(Dhcp.NEUTRON_BASE_MAC, name, (x) => reg.hasMac(x));
      reg.mac(mac, name, undefined, `${field} (line ${l})`);
      return mac;
    },
  });
}

export function loadTopology(file: string): Topology {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, 0, '(file)', `cannot read: ${(e as Error).message}`);
  }
  return parseTopology(file, text);
}

