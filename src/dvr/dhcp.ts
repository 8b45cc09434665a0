/**
 * What Neutron's DHCP agent runs on a node, as data: for each network this node serves (it
 * holds one of the network's DHCP ports, dhcp-topology.ts), dnsmasq's hosts file, options file
 * and command line in static mode. Pure functions of the topology; the files are written and
 * dnsmasq is run by control/dhcp-agent.ts.
 * Called by: control/dhcp-agent.ts, the lab (status), tests.
 *
 * As Neutron's dnsmasq driver has it (neutron/agent/linux/dhcp.py):
 * - hosts file: one line per fixed IP of every VM port of the network on a served subnet,
 *   "MAC,host-<ip with dashes>.<domain>,IP". Static mode (`--dhcp-range=set:TAG,NET,static,...`)
 *   means dnsmasq leases only these: an unknown MAC gets no offer.
 * - options file, per subnet tag: option:router (the gateway, option 3), option:dns-server
 *   (dns_nameservers, only when given: flowd's dnsmasq serves no DNS, --port=0), and with
 *   host_routes option:classless-static-route (121) and 249 with the routes plus the default
 *   route (RFC 3442 s3: a client that takes 121 ignores option 3).
 * - the network's MTU as option 26 on the command line (--dhcp-option-force=option:mtu,N).
 * A change of the hosts or options file is applied by rewriting it and SIGHUP (dnsmasq rereads
 * both); a change of the command line (a subnet or the MTU) needs a restart.
 */
import { fnv1a32, prefixMask } from './addr';
import { DEVICE_OWNER_DHCP } from './dhcp-topology';
import { TopoPort, TopoSubnet, Topology } from './topology';
import { formatIpv4 } from '../packet/addr-text';

export const DHCP_DOMAIN = 'openstacklocal';
/** Neutron's dhcp_lease_duration default. */
export const DEFAULT_LEASE_S = 86400;

/** One network this node serves: its DHCP port here and the served subnets. */
export interface DhcpService {
  network: string;
  mtuBytes: number;
  port: TopoPort;
  subnets: TopoSubnet[];
}

/** The networks `nodeName` serves, in network file order. */
export function dhcpServices(topo: Topology, nodeName: string): DhcpService[] {
  const out: DhcpService[] = [];
  for (const net of topo.networks) {
    const port = topo.dhcpPorts.find((p) => p.network === net.name && p.node === nodeName && p.deviceOwner === DEVICE_OWNER_DHCP);
    if (port === undefined) continue;
    const subnets = topo.subnets.filter((s) => s.network === net.name && s.dhcp.enabled);
    out.push({ network: net.name, mtuBytes: net.mtuBytes, port, subnets });
  }
  return out;
}

/** dnsmasq's tag for a subnet: its name when it is a plain word, else a hash of it. */
export function subnetTag(s: TopoSubnet): string {
  return /^[A-Za-z0-9_-]{1,40}$/.test(s.name) ? `subnet-${s.name}` : `subnet-${fnv1a32(s.name).toString(16).padStart(8, '0')}`;
}

/** Neutron's default host name for an address. */
export function hostName(ip: string): string {
  return `host-${ip.replace(/\./g, '-')}`;
}

/** The hosts file (--dhcp-hostsfile) of `svc`: see the header. */
export function dnsmasqHosts(topo: Topology, svc: DhcpService): string {
  const served = new Set(svc.subnets.map((s) => s.name));
  const lines: string[] = [];
  for (const p of topo.ports) {
    if (p.network !== svc.network) continue;
    for (const f of p.fixedIps) {
      if (served.has(f.subnet)) lines.push(`${p.mac},${hostName(f.ip)}.${DHCP_DOMAIN},${f.ip}`);
    }
  }
  return lines.map((l) => `${l}\n`).join('');
}

/** The options file (--dhcp-optsfile) of `svc`: see the header. */
export function dnsmasqOpts(svc: DhcpService): string {
  const lines: string[] = [];
  for (const s of svc.subnets) {
    const tag = `tag:${subnetTag(s)}`;
    if (s.dhcp.dnsNameservers.length > 0) lines.push(`${tag},option:dns-server,${s.dhcp.dnsNameservers.join(',')}`);
    if (s.dhcp.hostRoutes.length > 0) {
      const routes = s.dhcp.hostRoutes.map((h) => `${h.destination.text},${h.nexthop}`);
      routes.push(`0.0.0.0/0,${s.gatewayIp}`);
      lines.push(`${tag},option:classless-static-route,${routes.join(',')}`);
      lines.push(`${tag},249,${routes.join(',')}`);
    }
    lines.push(`${tag},option:router,${s.gatewayIp}`);
  }
  return lines.map((l) => `${l}\n`).join('');
}

/** Where dnsmasq keeps its files for one network (control/dhcp-agent.ts owns the directory). */
export interface DnsmasqPaths { pid: string; hosts: string; opts: string; leases: string }

/** dnsmasq's arguments for `svc` on interface `ifname` (kept in the foreground: supervised by PID). */
export function dnsmasqArgs(svc: DhcpService, ifname: string, paths: DnsmasqPaths, leaseS = DEFAULT_LEASE_S): string[] {
  // --group=root as well as --user=root: dnsmasq's default group change (to `dip`) is a
  // credential change, which clears the parent-death signal the DHCP agent sets on it.
  const args = [
    '--no-hosts', '--no-resolv', '--keep-in-foreground', '--port=0', '--user=root', '--group=root',
    '--bind-interfaces', `--interface=${ifname}`, '--except-interface=lo',
    `--pid-file=${paths.pid}`, `--dhcp-hostsfile=${paths.hosts}`, `--dhcp-optsfile=${paths.opts}`,
    `--dhcp-leasefile=${paths.leases}`, '--log-facility=-', '--log-dhcp',
  ];
  let nAddrs = 0;
  for (const s of svc.subnets) {
    args.push(`--dhcp-range=set:${subnetTag(s)},${formatIpv4(s.cidr.base)},static,${formatIpv4(prefixMask(s.cidr.prefixLen))},${leaseS}s`);
    nAddrs += 2 ** (32 - s.cidr.prefixLen);
  }
  args.push(`--dhcp-option-force=option:mtu,${svc.mtuBytes}`);
  args.push(`--dhcp-lease-max=${Math.min(nAddrs, 2 ** 24)}`, '--conf-file=/dev/null', `--domain=${DHCP_DOMAIN}`);
  return args;
}

/** The addresses of the DHCP port with their prefixes ("10.0.1.3/24"), one per served subnet. */
export function dhcpPortCidrs(svc: DhcpService): string[] {
  return svc.port.fixedIps.map((f) => `${f.ip}/${svc.subnets.find((x) => x.name === f.subnet)!.cidr.prefixLen}`);
}
