/**
 * The DHCP part of the topology file (Neutron's DHCP agent vocabulary), read and validated for
 * dvr/topology.ts, and the DHCP ports it implies.
 * Called by: dvr/topology.ts (parseTopology) only; the readers take its YamlReader so every
 * error is a ConfigError "<file>:<line>: <field>: <message>" like the rest of the file.
 *
 *   dhcp_agents_per_network: 2          # top level; default 1 (Neutron's option of that name)
 *   nodes:
 *     - { name: NN, ..., dhcp_agent: true }   # default: true on dvr_snat nodes, else false
 *   subnets:
 *     - { name: A-v4, ..., enable_dhcp: true,                      # default true
 *         dns_nameservers: [192.0.2.53],
 *         host_routes: [ { destination: 10.9.0.0/16, nexthop: 10.0.1.254 } ],
 *         allocation_pools: [ { start: 10.0.1.2, end: 10.0.1.200 } ] }  # default: the subnet
 *                                                  # minus network, broadcast and gateway
 *   ports:
 *     - { name: VM1, ..., addressing: dhcp }   # dhcp (default when the network is served) | static
 *     - { name: dhcp-A, device_owner: "network:dhcp", binding:host_id: NN, ... }  # given DHCP port
 *
 * DHCP ports (Neutron's `network:dhcp` ports, one per agent per served network):
 * - A network is served when one of its subnets has enable_dhcp. Its agents are the hosts of
 *   its given DHCP ports, then the other DHCP agent nodes in file order, up to
 *   dhcp_agents_per_network (fewer when fewer agents exist, unless the number was given).
 * - A DHCP port that is not given is made here, in network file order, then agent order:
 *   name `dhcp-<node>-<network>`, device `dhcp-<network>` on its node (`dhcp-<8 hex>` when the
 *   network's name does not fit an interface name), MAC drawn like the DVR MACs under Neutron's
 *   base fa:16:3e:00:00:00 from the port's name, and on each served subnet the first address
 *   of the allocation pools that no router, gateway or given DHCP port holds. VM ports are not
 *   considered: the DHCP addresses depend only on subnets, routers and agents, so adding or
 *   removing a VM never moves a DHCP server; a VM that takes one of them is an error naming it.
 * Given DHCP ports are moved from `ports` to `dhcpPorts`, so `ports` stays the VM ports. Every
 * DHCP port is trusted by the firewall as in Neutron (no security groups, no port security).
 */
import { isScalar, Node as YNode, YAMLMap } from 'yaml';
import { ConfigError } from '../errors';
import { Cidr, cidrContains, fnv1a32, parseCidr } from './addr';
import type { YamlReader } from '../control/yaml-reader';
import type { TopoPort, Topology } from './topology';
import { DEFAULT_PROJECT } from './topology-sg';
import { ipv4FromString } from '../packet/ipv4';
import { formatIpv4 } from '../packet/addr-text';

export const DEVICE_OWNER_DHCP = 'network:dhcp';
export const NEUTRON_BASE_MAC = 'fa:16:3e:00:00:00';
export const ADDRESSING = ['dhcp', 'static'] as const;
export type Addressing = typeof ADDRESSING[number];

/** Keys this module reads, appended to topology.ts's allowed keys of each entry kind. */
export const TOP_DHCP_KEYS = ['dhcp_agents_per_network'] as const;
export const NODE_DHCP_KEYS = ['dhcp_agent'] as const;
export const SUBNET_DHCP_KEYS = ['enable_dhcp', 'dns_nameservers', 'host_routes', 'allocation_pools'] as const;
export const PORT_DHCP_KEYS = ['device_owner', 'addressing'] as const;

export interface HostRoute { destination: Cidr; nexthop: string }
/** Inclusive range of IPv4 addresses, host order. */
export interface IpRange { start: number; end: number }

export interface SubnetDhcp {
  enabled: boolean;
  dnsNameservers: string[];
  hostRoutes: HostRoute[];
  allocationPools: IpRange[];
}

/** What the port entry says about DHCP; `addressing` is '' when not given (decided later). */
export interface PortDhcpFields { deviceOwner: string; addressing: Addressing | '' }

/** Neutron's default pools: every host address of the subnet except the gateway. */
export function defaultPools(cidr: Cidr, gatewayIp: string): IpRange[] {
  if (cidr.prefixLen > 30) return [];
  const first = cidr.base + 1;
  const last = cidr.base + 2 ** (32 - cidr.prefixLen) - 2;
  const gw = ipv4FromString(gatewayIp);
  const out: IpRange[] = [];
  if (gw > first) out.push({ start: first, end: Math.min(gw - 1, last) });
  if (gw < last) out.push({ start: Math.max(gw + 1, first), end: last });
  return out;
}

/** Reads `dhcp_agents_per_network`; `given` says whether the file set it. */
export function readAgentsPerNetwork(r: YamlReader, root: YAMLMap): { n: number; given: boolean } {
  return { n: r.int(root, 'dhcp_agents_per_network', 'dhcp_agents_per_network', 1, 64, 1), given: r.has(root, 'dhcp_agents_per_network') };
}

export function readNodeDhcpAgent(r: YamlReader, m: YAMLMap, w: string, agentMode: string): boolean {
  return r.bool(m, 'dhcp_agent', `${w}.dhcp_agent`, agentMode === 'dvr_snat');
}

/** The DHCP fields of subnet entry `m` (`w` names it), checked against its prefix and gateway. */
export function readSubnetDhcp(r: YamlReader, m: YAMLMap, w: string, cidr: Cidr, gatewayIp: string): SubnetDhcp {
  const inSubnet = (n: YNode | undefined, field: string, ip: string): number => {
    const u = ipv4FromString(ip);
    if (!cidrContains(cidr, u)) throw r.err(n, field, `${ip} is outside ${cidr.text}`);
    return u;
  };
  const d: SubnetDhcp = { enabled: r.bool(m, 'enable_dhcp', `${w}.enable_dhcp`, true), dnsNameservers: [], hostRoutes: [], allocationPools: [] };
  const dns = r.seq(m, 'dns_nameservers', `${w}.dns_nameservers`);
  for (let j = 0; j < dns.items.length; j++) {
    const n = dns.items[j] as YNode;
    const f = `${w}.dns_nameservers[${j}]`;
    if (!isScalar(n) || typeof n.value !== 'string') throw r.err(n, f, 'expected an IPv4 address');
    d.dnsNameservers.push(r.ipv4Text(n, f, n.value));
  }
  const hr = r.seq(m, 'host_routes', `${w}.host_routes`);
  for (let j = 0; j < hr.items.length; j++) {
    const f = `${w}.host_routes[${j}]`;
    const hm = r.map(hr.items[j], f, hr);
    r.checkKeys(hm, ['destination', 'nexthop'], f);
    const text = r.str(hm, 'destination', `${f}.destination`);
    const dest = parseCidr(text);
    if (dest === null) throw r.err(r.node(hm, 'destination'), `${f}.destination`, `expected an IPv4 prefix like 10.9.0.0/16 with host bits zero, got "${text}"`);
    const nexthop = r.ipv4(hm, 'nexthop', `${f}.nexthop`);
    inSubnet(r.node(hm, 'nexthop'), `${f}.nexthop`, nexthop);
    d.hostRoutes.push({ destination: dest, nexthop });
  }
  const ap = r.seq(m, 'allocation_pools', `${w}.allocation_pools`);
  if (ap.items.length === 0) d.allocationPools = defaultPools(cidr, gatewayIp);
  for (let j = 0; j < ap.items.length; j++) {
    const f = `${w}.allocation_pools[${j}]`;
    const pm = r.map(ap.items[j], f, ap);
    r.checkKeys(pm, ['start', 'end'], f);
    const start = inSubnet(r.node(pm, 'start'), `${f}.start`, r.ipv4(pm, 'start', `${f}.start`));
    const end = inSubnet(r.node(pm, 'end'), `${f}.end`, r.ipv4(pm, 'end', `${f}.end`));
    const bcast = cidr.base + 2 ** (32 - cidr.prefixLen) - 1;
    if (end < start) throw r.err(r.node(pm, 'end'), `${f}.end`, `${formatIpv4(end)} is before the start ${formatIpv4(start)}`);
    if (cidr.prefixLen <= 30 && (start === cidr.base || end === bcast)) {
      throw r.err(pm, f, `a pool cannot hold the network or broadcast address of ${cidr.text}`);
    }
    const gw = ipv4FromString(gatewayIp);
    if (gw >= start && gw <= end) throw r.err(pm, f, `the pool ${formatIpv4(start)}-${formatIpv4(end)} holds the gateway ${gatewayIp}`);
    for (const o of d.allocationPools) {
      if (start <= o.end && o.start <= end) throw r.err(pm, f, `the pool overlaps ${formatIpv4(o.start)}-${formatIpv4(o.end)}`);
    }
    d.allocationPools.push({ start, end });
  }
  return d;
}

export function readPortDhcp(r: YamlReader, m: YAMLMap, w: string): PortDhcpFields {
  const deviceOwner = r.str(m, 'device_owner', `${w}.device_owner`, '');
  const a = r.str(m, 'addressing', `${w}.addressing`, '');
  if (a !== '' && !(ADDRESSING as readonly string[]).includes(a)) {
    throw r.err(r.node(m, 'addressing'), `${w}.addressing`, `unknown addressing "${a}" (expected one of ${ADDRESSING.join(', ')})`);
  }
  if (deviceOwner === DEVICE_OWNER_DHCP && a !== '') throw r.err(r.node(m, 'addressing'), `${w}.addressing`, 'a DHCP port has no addressing of its own');
  return { deviceOwner, addressing: a as Addressing | '' };
}

/**
 * Neutron's firewall trusts ports of `network:` owners: a DHCP port has no security groups and
 * no port security (what the server sends is not filtered; the VMs' groups decide what reaches it).
 */
const TRUSTED_PORT = { project: DEFAULT_PROJECT, securityGroups: [] as string[], portSecurityEnabled: false, allowedAddressPairs: [] };

/** Interface name of the DHCP port of `network` on its node (see the header). */
export function dhcpDeviceName(network: string): string {
  const d = `dhcp-${network}`;
  return /^[A-Za-z0-9_.-]{1,15}$/.test(d) ? d : `dhcp-${fnv1a32(network).toString(16).padStart(8, '0')}`;
}

/** How parseTopology lets this module see and claim addresses (its registry). */
export interface DhcpAllocContext {
  agentsPerNetwork: { n: number; given: boolean; line: number };
  /** Whether `ip` on `network` is held by anything of the file (VM ports included). */
  ipTaken(network: string, ip: string): boolean;
  claimIp(network: string, ip: string, owner: string, line: number, field: string): void;
  /** A fresh MAC drawn under Neutron's base for `name`, claimed. */
  drawMac(name: string, line: number, field: string): string;
}

/** The agents that serve `network`: hosts of its given DHCP ports first (see the header). */
export function agentsOf(topo: Topology, network: string, perNetwork: number): string[] {
  const out = topo.dhcpPorts.filter((p) => p.network === network).map((p) => p.node);
  for (const n of topo.nodes) {
    if (out.length >= perNetwork) break;
    if (n.dhcpAgent && !out.includes(n.name)) out.push(n.name);
  }
  return out;
}

/**
 * Networks with at least one DHCP-enabled subnet, in file order, when some node runs a DHCP
 * agent; none otherwise (nothing could serve them: their VMs keep static addressing, as the
 * topologies without a dvr_snat node had before DHCP).
 */
export function servedNetworks(topo: Topology): string[] {
  if (!topo.nodes.some((n) => n.dhcpAgent)) return [];
  return topo.networks.filter((n) => topo.subnets.some((s) => s.network === n.name && s.dhcp.enabled)).map((n) => n.name);
}

/**
 * Moves given DHCP ports out of `topo.ports`, makes the missing ones, and settles every VM
 * port's addressing. Runs after the ports and before the floating IPs are read.
 */
export function settleDhcp(topo: Topology, ctx: DhcpAllocContext): void {
  const f = topo.file;
  /** "network node" of each DHCP port so far, and "node device" of each VM port (sets: topologies of 1,000s of ports). */
  const hasDhcpPort = new Set<string>();
  const devices = new Map<string, TopoPort>();
  for (const p of topo.ports) {
    if (p.deviceOwner !== DEVICE_OWNER_DHCP) continue;
    const w = `ports[${p.name}]`;
    const node = topo.nodes.find((n) => n.name === p.node);
    if (node === undefined) throw new ConfigError(f, p.line, `${w}.binding:host_id`, 'a DHCP port is bound to the node of its agent');
    if (!node.dhcpAgent) throw new ConfigError(f, p.line, `${w}.binding:host_id`, `node ${node.name} runs no DHCP agent (dhcp_agent: false)`);
    if (hasDhcpPort.has(`${p.network} ${p.node}`)) {
      throw new ConfigError(f, p.line, `${w}.binding:host_id`, `network ${p.network} already has a DHCP port on node ${p.node}`);
    }
    Object.assign(p, { securityGroups: [], portSecurityEnabled: false, allowedAddressPairs: [] });
    topo.dhcpPorts.push(p);
    hasDhcpPort.add(`${p.network} ${p.node}`);
  }
  topo.ports = topo.ports.filter((p) => p.deviceOwner !== DEVICE_OWNER_DHCP);
  for (const p of topo.ports) {
    const k = `${p.node} ${p.device}`;
    if (!devices.has(k)) devices.set(k, p);
  }

  const nAgents = topo.nodes.filter((n) => n.dhcpAgent).length;
  const per = ctx.agentsPerNetwork;
  if (per.given && per.n > nAgents) {
    throw new ConfigError(f, per.line, 'dhcp_agents_per_network', `${per.n} agents per network, but ${nAgents} node(s) run a DHCP agent`);
  }
  const served = servedNetworks(topo);
  for (const net of served) {
    for (const nodeName of agentsOf(topo, net, per.n)) {
      if (hasDhcpPort.has(`${net} ${nodeName}`)) continue;
      const name = `dhcp-${nodeName}-${net}`;
      const netLine = topo.networks.find((n) => n.name === net)!.line;
      const w = `networks[${net}]`;
      const device = dhcpDeviceName(net);
      const clash = devices.get(`${nodeName} ${device}`);
      if (clash !== undefined) {
        throw new ConfigError(f, clash.line, `ports[${clash.name}].device`, `device ${device} on node ${nodeName} is the DHCP port of network ${net}`);
      }
      const port: TopoPort = {
        name, mac: ctx.drawMac(name, netLine, `${w}(dhcp port on ${nodeName}).mac`), network: net, fixedIps: [],
        node: nodeName, device, deviceOwner: DEVICE_OWNER_DHCP, addressing: 'static', line: netLine,
        ...TRUSTED_PORT,
      };
      for (const s of topo.subnets) {
        if (s.network !== net || !s.dhcp.enabled) continue;
        const ip = firstFree(topo, s.name, s.dhcp.allocationPools, net, ctx, nodeName);
        ctx.claimIp(net, ip, `DHCP port of network ${net} on node ${nodeName}`, netLine, `${w}(dhcp port on ${nodeName}).fixed_ips`);
        port.fixedIps.push({ subnet: s.name, ip });
      }
      topo.dhcpPorts.push(port);
      hasDhcpPort.add(`${net} ${nodeName}`);
    }
  }

  for (const p of topo.ports) {
    const isServed = served.includes(p.network);
    if (p.addressing === '') {
      p.addressing = isServed ? 'dhcp' : 'static';
    } else if (p.addressing === 'dhcp' && !isServed) {
      throw new ConfigError(f, p.line, `ports[${p.name}].addressing`, `network ${p.network} has no subnet with enable_dhcp`);
    }
  }
}

/** First pool address not held by a router, gateway or DHCP port; a VM holding it is an error. */
function firstFree(topo: Topology, subnet: string, pools: IpRange[], net: string, ctx: DhcpAllocContext, nodeName: string): string {
  for (const pool of pools) {
    for (let u = pool.start; u <= pool.end; u++) {
      const ip = formatIpv4(u);
      if (!ctx.ipTaken(net, ip)) return ip;
      const vm = topo.ports.find((p) => p.network === net && p.fixedIps.some((x) => x.ip === ip));
      if (vm !== undefined) {
        const j = vm.fixedIps.findIndex((x) => x.ip === ip);
        throw new ConfigError(topo.file, vm.line, `ports[${vm.name}].fixed_ips[${j}]`,
          `${ip} is the address of the DHCP port of network ${net} on node ${nodeName} (the first free address of the pool of ${subnet}); pick another`);
      }
    }
  }
  throw new ConfigError(topo.file, topo.subnets.find((s) => s.name === subnet)!.line, `subnets[${subnet}].allocation_pools`,
    `no free address left for the DHCP port of network ${net} on node ${nodeName}`);
}
