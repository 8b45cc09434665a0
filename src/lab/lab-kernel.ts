/**
 * The kernel baseline of the lab benchmark: the SAME east-west topology as the flowd lab
 * (lab/lab.ts), built from the same topology file, but forwarded by Linux alone.
 *
 *   <p>ul              the underlay segment: a Linux bridge `ulbr` joining every node's eth1
 *   <p><node>          per node: eth1 (local_ip, underlay MAC, underlay MTU); per tenant network
 *                      present on the node a bridge `br-<net>` with a kernel VXLAN device
 *                      `vx-<net>` (VNI = segmentation id, local = local_ip, dstport 4789,
 *                      `nolearning proxy`); the namespace itself routes between the bridges
 *                      (ip_forward=1, the router's gateway IP on each bridge)
 *   <p><port>          per VM port: eth0 with the port's MAC, fixed IP and network MTU, default
 *                      route via the gateway; the host end `<device>` is a port of `br-<net>`
 *
 * This is "distributed routing with kernel forwarding", not Neutron's wire format: each node's
 * router interfaces carry their own MAC (the gateway MAC with its fifth byte replaced by 0x11,
 * 0x12, ... per node), so no DVR MAC rewriting is needed; a routed frame crosses the tunnel
 * with the sending node's router MAC as source and the destination network's VNI, as in DVR.
 * What l2population does in Neutron is static here: for every port on another node the
 * VXLAN device has a unicast FDB entry (`dst` = that node's local_ip), the bridge a static
 * entry pointing at the VXLAN device, the router a permanent neighbour entry (no ARP on the
 * wire for routing), and the VXLAN device a neighbour entry its `proxy` mode answers ARP from.
 * With `proxy` the kernel consumes every ARP request at the VXLAN device, so no ARP (gateway or
 * other) ever crosses a tunnel, and there is no flood entry: broadcasts stay on the node.
 * VXLAN tenant networks and at most one router per node are supported (a namespace has one
 * routing table); external networks, floating IPs and SNAT are not built (east-west only).
 * A GRE tenant network is built as kernel VXLAN (same segmentation id, the GRE network's MTU)
 * only when the caller asks for that stand-in (`greAsVxlan`; the node's underlay MTU then
 * grows by the 8 bytes VXLAN takes more than GRE with key): a kernel GRE twin would need
 * gretap devices, which kernels built without CONFIG_NET_IPGRE (this lab machine's, see
 * kernelGretapProbe) cannot make; the benchmark then names VXLAN as the kernel peer.
 *
 * Called by: lab/lab-bench.ts. Everything it creates is named with the given prefix (default
 * `fk-`); kernelDown deletes exactly the namespaces recorded in the KernelLab it returns.
 */
import { Topology, TopoNode, TopoPort } from '../dvr/topology';
import { macFromString, macToString } from '../packet/ethernet';
import { ipIn, namespacesWithPrefix, newNamespace, nsx, sh, ShellError, trySh, vethBetween } from './shell';

export const KERNEL_PREFIX = 'fk-';

/** What kernelUp made; kernelDown removes exactly this. */
export interface KernelLab {
  prefix: string;
  namespaces: string[];
}

export function kernelNodeNs(prefix: string, node: TopoNode | string): string {
  return `${prefix}${(typeof node === 'string' ? node : node.name).toLowerCase()}`;
}

export function kernelVmNs(prefix: string, port: TopoPort | string): string {
  return `${prefix}${(typeof port === 'string' ? port : port.name).toLowerCase()}`;
}

function newNs(k: KernelLab, ns: string): void {
  newNamespace(ns);
  k.namespaces.push(ns);
}

/** A veth from `a` in `nsA` to `b` in `nsB`, both up; `macA` and `mtuBytes` when given. */
function veth(k: KernelLab, nsA: string, a: string, nsB: string, b: string, macA: string, mtuBytes: number): void {
  vethBetween(nsA, a, nsB, b, { macA, mtuBytes });
}

function addBridge(ns: string, br: string): void {
  ipIn(ns, 'link', 'add', br, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
  ipIn(ns, 'link', 'set', br, 'up');
}

/** The per-node router MAC: the gateway MAC with byte 4 set to 0x11 + the node's index. */
export function kernelRouterMac(gwMac: string, nodeIndex: number): string {
  const b = macFromString(gwMac);
  b[4] = 0x11 + nodeIndex;
  return macToString(b);
}

/** Short device names (IFNAMSIZ 16 with the NUL): br-<net>, vx-<net>. */
function netDev(kind: 'br' | 'vx', net: string): string {
  return `${kind}-${net.toLowerCase()}`.slice(0, 15);
}

/**
 * Whether this kernel can make a gretap device: tries `ip link add ... type gretap` in a
 * scratch namespace `<prefix>probe` (removed again). '' when it can, else ip's error text.
 */
export function kernelGretapProbe(prefix = KERNEL_PREFIX): string {
  const ns = `${prefix}probe`;
  newNamespace(ns);
  try {
    ipIn(ns, 'link', 'add', 'gt0', 'type', 'gretap', 'local', '192.0.2.1', 'remote', '192.0.2.2', 'key', '1');
    return '';
  } catch (e) {
    return e instanceof ShellError ? e.stderr : (e as Error).message;
  } finally {
    trySh('ip', 'netns', 'del', ns);
  }
}

/**
 * The networks node `n` carries: those of its ports, plus every network of a router that has
 * an interface on one of them (a DVR node hosts the whole router). Throws for what this
 * baseline cannot build (tenant networks other than VXLAN, or GRE without `greAsVxlan`; two
 * routers on one node).
 */
export function nodeNetworks(t: Topology, n: TopoNode, greAsVxlan = false): { networks: string[]; router: string } {
  const nets = new Set(t.ports.filter((p) => p.node === n.name && p.fixedIps.length > 0).map((p) => p.network));
  let router = '';
  for (const r of t.routers) {
    const rNets = r.interfaces.map((i) => t.subnets.find((s) => s.name === i.subnet)?.network ?? '');
    if (!rNets.some((x) => nets.has(x))) continue;
    if (router !== '') throw new Error(`kernel baseline: node ${n.name} would host routers ${router} and ${r.name}; one namespace has one routing table`);
    router = r.name;
    for (const x of rNets) if (x !== '') nets.add(x);
  }
  for (const x of nets) {
    const net = t.networks.find((m) => m.name === x);
    if (net === undefined || !(net.type === 'vxlan' || (greAsVxlan && net.type === 'gre'))) {
      throw new Error(`kernel baseline: network ${x} on node ${n.name} is ${net?.type ?? 'unknown'}; only VXLAN tenant networks are built` +
        `${net?.type === 'gre' ? ' (GRE as a VXLAN stand-in only when asked)' : ''}`);
    }
  }
  return { networks: [...nets], router };
}

/**
 * Builds the kernel-forwarding twin of `t` in namespaces named `prefix`...; on failure it
 * removes what it made and rethrows. Refuses to start when a namespace with the prefix exists.
 */
export function kernelUp(t: Topology, prefix = KERNEL_PREFIX, greAsVxlan = false): KernelLab {
  const existing = namespacesWithPrefix(prefix);
  if (existing.length > 0) throw new Error(`kernel baseline: namespaces ${existing.join(' ')} exist already (not made by this run; remove them first)`);
  const k: KernelLab = { prefix, namespaces: [] };
  try {
    build(t, k, greAsVxlan);
  } catch (e) {
    kernelDown(k);
    throw e;
  }
  return k;
}

function build(t: Topology, k: KernelLab, greAsVxlan: boolean): void {
  const ul = `${k.prefix}ul`;
  newNs(k, ul);
  addBridge(ul, 'ulbr');
  const carried = new Map<string, { networks: string[]; router: string }>();
  t.nodes.forEach((n, idx) => {
    const ns = kernelNodeNs(k.prefix, n);
    newNs(k, ns);
    const peer = `ul-${n.name.toLowerCase()}`.slice(0, 15);
    const c = nodeNetworks(t, n, greAsVxlan);
    // A GRE network's MTU (underlay - 42) is 8 bytes more than VXLAN (- 50) can carry: the
    // stand-in's underlay grows by what it needs, so the tenant MTU (and TCP MSS) stay the same.
    const ulMtu = Math.max(n.underlayMtuBytes, ...c.networks.map((x) => {
      const net = t.networks.find((m) => m.name === x);
      return net !== undefined && net.type === 'gre' ? net.mtuBytes + 50 : 0;
    }));
    veth(k, ns, n.underlayDevice, ul, peer, n.underlayMac, ulMtu);
    ipIn(ul, 'link', 'set', peer, 'master', 'ulbr');
    ipIn(ns, 'addr', 'add', `${n.localIp}/24`, 'dev', n.underlayDevice);
    nsx(ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    nsx(ns, 'sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0');
    nsx(ns, 'sysctl', '-qw', 'net.ipv4.conf.default.rp_filter=0');
    carried.set(n.name, c);
    for (const netName of c.networks) {
      const net = t.networks.find((m) => m.name === netName)!;
      const br = netDev('br', netName);
      const vx = netDev('vx', netName);
      addBridge(ns, br);
      ipIn(ns, 'link', 'add', vx, 'type', 'vxlan', 'id', String(net.segmentationId), 'local', n.localIp,
        'dstport', '4789', 'dev', n.underlayDevice, 'nolearning', 'proxy');
      ipIn(ns, 'link', 'set', vx, 'mtu', String(net.mtuBytes));
      ipIn(ns, 'link', 'set', vx, 'master', br);
      ipIn(ns, 'link', 'set', vx, 'up');
      const r = t.routers.find((x) => x.name === c.router);
      const itf = r?.interfaces.find((i) => t.subnets.find((s) => s.name === i.subnet)?.network === netName);
      const sn = itf === undefined ? undefined : t.subnets.find((s) => s.name === itf.subnet);
      if (itf !== undefined && sn !== undefined) {
        ipIn(ns, 'link', 'set', br, 'address', kernelRouterMac(itf.mac, idx));
        ipIn(ns, 'addr', 'add', `${sn.gatewayIp}/${sn.cidr.prefixLen}`, 'dev', br);
      }
    }
  });
  for (const p of t.ports) {
    if (p.node === '' || p.device === '' || p.fixedIps.length === 0) continue;
    const vm = kernelVmNs(k.prefix, p);
    newNs(k, vm);
    const net = t.networks.find((m) => m.name === p.network)!;
    const sn = t.subnets.find((s) => s.name === p.fixedIps[0].subnet);
    const nodeNs = kernelNodeNs(k.prefix, p.node);
    veth(k, vm, 'eth0', nodeNs, p.device, p.mac, net.mtuBytes);
    ipIn(nodeNs, 'link', 'set', p.device, 'master', netDev('br', p.network));
    ipIn(vm, 'addr', 'add', `${p.fixedIps[0].ip}/${sn?.cidr.prefixLen ?? 24}`, 'dev', 'eth0');
    if (sn !== undefined && sn.gatewayIp !== '') ipIn(vm, 'route', 'add', 'default', 'via', sn.gatewayIp);
  }
  // l2population, statically: every node learns where the other nodes' ports are.
  for (const n of t.nodes) {
    const ns = kernelNodeNs(k.prefix, n);
    const c = carried.get(n.name)!;
    for (const p of t.ports) {
      if (p.node === '' || p.node === n.name || p.fixedIps.length === 0 || !c.networks.includes(p.network)) continue;
      const remote = t.nodes.find((x) => x.name === p.node);
      if (remote === undefined) continue;
      const br = netDev('br', p.network);
      const vx = netDev('vx', p.network);
      sh('ip', 'netns', 'exec', ns, 'bridge', 'fdb', 'append', p.mac, 'dev', vx, 'dst', remote.localIp, 'self', 'permanent');
      sh('ip', 'netns', 'exec', ns, 'bridge', 'fdb', 'replace', p.mac, 'dev', vx, 'master', 'static');
      ipIn(ns, 'neigh', 'replace', p.fixedIps[0].ip, 'lladdr', p.mac, 'dev', vx, 'nud', 'permanent');
      if (c.router !== '') ipIn(ns, 'neigh', 'replace', p.fixedIps[0].ip, 'lladdr', p.mac, 'dev', br, 'nud', 'permanent');
    }
  }
}

/** Deletes the namespaces `k` recorded (last made first); returns one line per deletion. */
export function kernelDown(k: KernelLab): string[] {
  const done: string[] = [];
  for (const ns of [...k.namespaces].reverse()) {
    if (trySh('ip', 'netns', 'del', ns)) done.push(`deleted namespace ${ns}`);
  }
  k.namespaces.length = 0;
  return done;
}
