/**
 * `lab check`, north-south part: the SNAT and floating-IP expectations of dvr-reference.md
 * ("Expected on the wire"), checked on a running lab with captures, byte for byte.
 * Called by: src/lab/lab.ts (`lab check`, next to lab-check.ts's east-west checks) and
 * test/integration/dvr-ns.test.ts. Captures every node's underlay and external device, the
 * VM's interface and the upstream host's, while it pings; then reads the pcap files.
 *
 * Scenarios, derived from the topology, whatever it is (the reference gives VM2 -> 203.0.113.1
 * for SNAT and VM1 / 203.0.113.50 on C1 for the floating IP):
 * - SNAT, for every router with a gateway and every bound VM without floating IP on one of
 *   its subnets with an sg- port: the VM pings the upstream gateway. On its node's underlay:
 *   outer node -> SNAT node (the HA master for an HA router), the VM network's VNI or GRE key,
 *   inner DVRMAC(node) -> sg MAC, TTL 63. On the SNAT node's external wire: that router's qg-
 *   MAC -> upstream MAC, its gateway IP (no other router's) -> upstream IP, untagged, TTL 63.
 *   The reply crosses back as sg MAC -> VM MAC; the VM gets it from the sg MAC, TTL 63; the
 *   fixed IP is never on the external network; no other node sees the flow. A VM on a vlan
 *   or flat network: the same legs on the physical wire, tagged with its VID
 *   (snatOverPhysical); a VM on the SNAT node itself: nothing crosses a tunnel.
 * - qg- ARP and echo, for every router with a gateway: only its qg MAC answers its ARP.
 * - Every floating IP: the upstream (ARP cache flushed) pings it: only the serving node
 *   answers ARP, with its fg- MAC (one per node per external network, shared by its routers),
 *   or with the router's qg- MAC when served centrally for a dvr_no_external node (then the
 *   DNATed request crosses the underlay to the VM's node with its network's VNI / key). The
 *   request is on the server's external wire, reaches the VM from its gateway MAC (the sg- MAC
 *   when central) with TTL 63; the reply leaves the server as its MAC -> upstream MAC; no
 *   other node sees the flow and a local one crosses no tunnel; the VM's own ping to the
 *   upstream leaves with the floating IP from the same node, source-NATed by no router.
 * Results that depend on pipeline features other engineers are adding name them in `needs`
 * (conntrack for everything after NN's SNAT).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isTunnelNetwork, Topology, TopoNetwork, TopoNode, TopoPort, TopoRouter } from '../dvr/topology';
import { fipBinding, fipServer } from '../dvr/ns-plan';
import { snatHost } from '../dvr/node-plan';
import { LabState, nodeNs, UP_NS, vmNs } from './lab-state';
import { framesOf, ping } from './ping';
import { Capture, capturesReady, CheckResult, classify, ip4, mac, startCapture, stopCaptures } from './lab-check';
import { externalPhysnet, labPhysnets, physicalDevice } from './lab-physical';
import { untag } from './lab-check-physical';
import { egressAllows, ingressAllows } from './sg-model';

/** What a check needs from flowd's pipeline beyond what the DVR flows themselves do. */
export const NEEDS_CT = 'ct() executed by the pipeline (conntrack with NAT)';
export const NEEDS_ICMP_TYPE = 'load:0->NXM_OF_ICMP_TYPE[] committed by xlate (the router echo reply)';

export interface NsCheckResult extends CheckResult {
  /** '' or what the expectation depends on (NEEDS_*): a failure there is not the flows' fault. */
  needs: string;
}


/** An untagged Ethernet/IPv4 ARP frame: op, sender MAC/IP, target IP; null otherwise. */
export function arpOf(b: Uint8Array): { op: number; sha: string; spa: string; tpa: string; ethSrc: string } | null {
  if (b.length < 42 || b[12] !== 0x08 || b[13] !== 0x06) return null;
  return { op: (b[20] << 8) | b[21], sha: mac(b, 22), spa: ip4(b, 28), tpa: ip4(b, 38), ethSrc: mac(b, 6) };
}

type Seen = ReturnType<typeof classify>;

/** Captures on the named interfaces while `act` runs; returns the frames per key. */
async function captured(dir: string, tag: string, where: Map<string, { ns: string; iface: string }>,
                        act: () => void): Promise<{ seen: Map<string, Seen[]>; raw: Map<string, Uint8Array[]> }> {
  const caps = new Map<string, Capture>();
  for (const [k, w] of where) caps.set(k, startCapture(w.ns, w.iface, path.join(dir, `ns-${tag}-${k.replace(/[^a-z0-9]+/gi, '_')}.pcap`)));
  await capturesReady(caps.values());
  act();
  await stopCaptures(caps.values());
  const seen = new Map<string, Seen[]>();
  const raw = new Map<string, Uint8Array[]>();
  for (const [k, c] of caps) {
    const frames = fs.existsSync(c.file) ? await framesOf(c.file) : [];
    raw.set(k, frames);
    seen.set(k, frames.map(classify));
  }
  return { seen, raw };
}

/**
 * Where to capture: every node's underlay, external device and other physical devices
 * (`pn:<node>:<physnet>`, lab-physical.ts), the upstream, and VMs.
 */
function wires(t: Topology, vms: TopoPort[]): Map<string, { ns: string; iface: string }> {
  const m = new Map<string, { ns: string; iface: string }>();
  const extPhysnet = externalPhysnet(t);
  for (const n of t.nodes) {
    m.set(`ul:${n.name}`, { ns: nodeNs(n), iface: n.underlayDevice });
    const ext = physicalDevice(n, extPhysnet);
    if (ext !== '') m.set(`ext:${n.name}`, { ns: nodeNs(n), iface: ext });
    for (const physnet of labPhysnets(t)) {
      const dev = physicalDevice(n, physnet);
      if (dev !== '') m.set(`pn:${n.name}:${physnet}`, { ns: nodeNs(n), iface: dev });
    }
  }
  m.set('up', { ns: UP_NS, iface: 'eth0' });
  for (const p of vms) m.set(`vm:${p.name}`, { ns: vmNs(p), iface: 'eth0' });
  return m;
}

/**
 * The SNAT legs of a VM on a vlan or flat network, on the physical wire (`pn:` captures): the
 * request leaves the VM's node with the network's VID as DVRMAC(node) -> sg MAC, TTL 63; the
 * de-NATed reply leaves the SNAT host with the same VID as sg MAC -> VM MAC.
 */
function snatOverPhysical(add: (name: string, pass: boolean, detail: string, needs?: string) => void, label: string,
                          raw: Map<string, Uint8Array[]>, node: TopoNode, snat: TopoNode, net: TopoNetwork, vm: TopoPort,
                          sgMac: string, upIp: string): void {
  const vmIp = vm.fixedIps[0].ip;
  const vid = net.type === 'flat' ? -1 : net.segmentationId;
  const tag = vid < 0 ? 'untagged' : `VID ${vid}`;
  const on = (n: TopoNode): ReturnType<typeof untag>[] => (raw.get(`pn:${n.name}:${net.physicalNetwork}`) ?? []).map(untag);
  const req = on(node).find((x) => x.s.inner.icmpType === 8 && x.s.inner.ipSrc === vmIp && x.s.inner.ipDst === upIp);
  add(`${label}: leaves ${node.name} on ${net.physicalNetwork} with ${tag}, ${node.dvrMac} -> ${sgMac}, TTL 63`,
    req !== undefined && req.vid === vid && req.s.src === node.dvrMac.toLowerCase() && req.s.dst === sgMac && req.s.inner.ttl === 63,
    req === undefined ? 'no such frame' : `VID ${req.vid}, ${describe(req.s)}`);
  const back = on(snat).find((x) => x.s.inner.icmpType === 0 && x.s.inner.ipSrc === upIp && x.s.inner.ipDst === vmIp && x.s.src === sgMac);
  add(`${label}: reply ${snat.name} -> ${node.name} on ${net.physicalNetwork} with ${tag}, ${sgMac} -> ${vm.mac}, ${upIp} -> ${vmIp}`,
    back !== undefined && back.vid === vid && back.s.dst === vm.mac.toLowerCase(), back === undefined ? 'no such frame' : `VID ${back.vid}, ${describe(back.s)}`, NEEDS_CT);
}

const describe = (s: Seen | undefined): string => (s === undefined ? 'no such frame'
  : `${s.src} -> ${s.dst}${s.tunnel ? `, outer ${s.tunnel.outerSrcIp} -> ${s.tunnel.outerDstIp} ${s.tunnel.kind} id ${s.tunnel.id}, inner ${s.inner.src} -> ${s.inner.dst}` : ''}, ` +
    `${s.inner.ipSrc} -> ${s.inner.ipDst}, type 0x${s.inner.type.toString(16)}, TTL ${s.inner.ttl}`);

/** One check's recorder and the facts every scenario reads. */
interface NsCtx {
  t: Topology;
  dir: string;
  add: (name: string, pass: boolean, detail: string, needs?: string) => void;
  nodeByName: Map<string, TopoNode>;
  upIp: string;
  upMac: string;
}

/** The node where router `r`'s SNAT runs now: its HA master (run-time, asked by the caller) or the SNAT host. */
export type SnatNodeOf = (r: TopoRouter) => string;

/**
 * Every north-south scenario the topology has, each checked on the wires: the SNAT of every VM
 * without floating IP behind every router with a gateway (on its own router's gateway IP),
 * every router's qg- address, every floating IP (served by its VM's node with that node's fg-
 * port, or centrally by the SNAT host for a dvr_no_external node). `snatNodeOf` names where a
 * router's SNAT runs now (an HA router's master; '' = the topology's SNAT host).
 */
export async function runNorthSouthChecks(t: Topology, st: LabState, snatNodeOf: SnatNodeOf = () => ''): Promise<NsCheckResult[]> {
  const res: NsCheckResult[] = [];
  const add = (name: string, pass: boolean, detail: string, needs = ''): void => {
    res.push({ name, pass, detail, needs });
  };
  const dir = path.join(st.stateDir, 'captures');
  fs.mkdirSync(dir, { recursive: true });
  const extNet = t.networks.find((n) => n.external);
  const extSub = extNet === undefined ? undefined : t.subnets.find((s) => s.network === extNet.name);
  const routers = t.routers.filter((r) => r.gateway !== null);
  if (snatHost(t) === null || extSub === undefined || routers.length === 0) {
    add('the topology has a dvr_snat node, an external subnet and a router with a gateway', false, 'nothing to check');
    return res;
  }
  const ctx: NsCtx = { t, dir, add, nodeByName: new Map(t.nodes.map((n) => [n.name, n])), upIp: extSub.gatewayIp, upMac: extSub.gatewayMac.toLowerCase() };
  const snatOf = (r: TopoRouter): TopoNode | null => {
    const name = snatNodeOf(r);
    return name !== '' ? ctx.nodeByName.get(name) ?? null : snatHost(t);
  };
  for (const sc of northSouthScenarios(t)) {
    if (sc.kind === 'snat') {
      const snat = snatOf(sc.router);
      if (snat === null) add(`router ${sc.router.name}: the node serving its SNAT is known`, false, 'no master');
      else await snatScenario(ctx, sc.router, sc.sgMac, sc.vm, snat);
    } else if (sc.kind === 'qg') {
      await qgScenario(ctx, sc.router);
    } else {
      await fipScenario(ctx, sc.ip, sc.port, ctx.nodeByName.get(sc.server)!, snatOf(sc.router));
    }
  }
  const fips = t.floatingIps.filter((f) => fipServer(t, f.ip, f.port) !== null).length;
  const haCentral = t.floatingIps.some((f) => fipServer(t, f.ip, f.port) === null && fipBinding(t, f.ip, f.port)?.router.ha.ha === true);
  if (fips === 0 && !haCentral) add('floating IP: a bound port with a floating IP', false, 'none in the topology');
  return res;
}

/** One north-south scenario of a topology (see the header). */
export type NsScenario =
  | { kind: 'snat'; router: TopoRouter; vm: TopoPort; sgMac: string }
  | { kind: 'qg'; router: TopoRouter }
  | { kind: 'fip'; ip: string; port: string; router: TopoRouter; server: string; central: boolean };

/**
 * Every north-south scenario of `t`, in order: per router with a gateway, the SNAT of each bound
 * VM without floating IP on one of its subnets with an sg- port, then its qg-; then every
 * floating IP with the node that serves it (a central one behind an HA router has no fixed
 * server: lab-check-ha.ts checks it on the master). Pure; the unit tests read it.
 */
export function northSouthScenarios(t: Topology): NsScenario[] {
  const out: NsScenario[] = [];
  const fipPorts = new Set(t.floatingIps.map((f) => f.port));
  for (const router of t.routers) {
    if (router.gateway === null) continue;
    for (const vm of t.ports) {
      if (vm.node === '' || vm.fixedIps.length === 0 || fipPorts.has(vm.name)) continue;
      const iface = router.interfaces.find((i) => i.subnet === vm.fixedIps[0].subnet && i.snatMac !== '');
      if (iface !== undefined) out.push({ kind: 'snat', router, vm, sgMac: iface.snatMac.toLowerCase() });
    }
    out.push({ kind: 'qg', router });
  }
  for (const f of t.floatingIps) {
    const server = fipServer(t, f.ip, f.port);
    const b = fipBinding(t, f.ip, f.port);
    if (server === null || b === null) continue;
    out.push({ kind: 'fip', ip: f.ip, port: f.port, router: b.router, server, central: server !== b.port.node });
  }
  return out;
}

/** Tunnel frames of a flow on node `n`'s underlay that concern `ips` (other traffic may cross meanwhile). */
function flowFrames(seen: Map<string, Seen[]>, key: string, ips: readonly string[]): Seen[] {
  return (seen.get(key) ?? []).filter((s) => s.inner.type === 0x0800 && (ips.includes(s.inner.ipSrc) || ips.includes(s.inner.ipDst)));
}

/**
 * SNAT of `vm` by `router` on `snat`: the VM pings the upstream. The request crosses from the
 * VM's node to the SNAT node (unless it is there) with the VM network's VNI / key (or VID), the
 * translated request leaves the SNAT node's external wire from the router's qg- MAC and IP, the
 * fixed IP never shows there, the reply comes back the same way to the VM from the sg- MAC, and
 * no other node sees any of it.
 */
async function snatScenario(c: NsCtx, router: TopoRouter, sgMac: string, vm: TopoPort, snat: TopoNode): Promise<void> {
  const { t, add, upIp, upMac } = c;
  const gw = router.gateway!;
  const vmIp = vm.fixedIps[0].ip;
  const node = c.nodeByName.get(vm.node)!;
  const net = t.networks.find((n) => n.name === vm.network)!;
  const label = `SNAT ${vm.name} (${vmIp} on ${node.name}) -> ${upIp} by router ${router.name} on ${snat.name}`;
  if (!egressAllows(t, vm, { proto: 1, port: 8, srcIp: vmIp, dstIp: upIp })) {
    // Refused by the VM's own security groups (lab-check-sg.ts checks how): no reply.
    const r = ping(vmNs(vm), upIp, 1);
    add(`${label}: ${vm.name}'s security groups refuse the ping: no reply`, r.received === 0, `${r.received}/${r.sent}`);
    return;
  }
  let pr = { sent: 0, received: 0, rttMs: '-' };
  const { seen, raw } = await captured(c.dir, `snat-${vm.name}`, wires(t, [vm]), () => { pr = ping(vmNs(vm), upIp, 3); });
  add(`${label}: ping`, pr.sent > 0 && pr.received === pr.sent, `${pr.received}/${pr.sent}, rtt ${pr.rttMs} ms`, NEEDS_CT);
  const local = node === snat;
  if (local) {
    const tun = flowFrames(seen, `ul:${node.name}`, [vmIp, upIp, gw.ip]).filter((s) => s.tunnel !== null).length;
    add(`${label}: translated on ${node.name} itself, nothing crosses a tunnel`, tun === 0, `${tun} tunnel frames`);
  } else if (!isTunnelNetwork(net)) {
    snatOverPhysical(add, label, raw, node, snat, net, vm, sgMac, upIp);
  } else {
    // The copy to the SNAT node (an HA router's frames go to each of its l3 agents, dvr/ha.ts).
    const req = (seen.get(`ul:${node.name}`) ?? []).find((s) => s.tunnel !== null && s.tunnel.outerDstIp === snat.localIp &&
      s.inner.icmpType === 8 && s.inner.ipSrc === vmIp && s.inner.ipDst === upIp);
    add(`${label}: leaves ${node.name} for ${snat.name}: outer ${node.underlayMac} -> ${snat.underlayMac}, ${node.localIp} -> ${snat.localIp}, ` +
      `${net.type} ${net.type === 'gre' ? 'key' : 'VNI'} ${net.segmentationId}, inner ${node.dvrMac} -> ${sgMac}, TTL 63`,
    req !== undefined && req.src === node.underlayMac.toLowerCase() && req.dst === snat.underlayMac.toLowerCase() &&
      req.tunnel!.outerSrcIp === node.localIp && req.tunnel!.outerDstIp === snat.localIp && req.tunnel!.kind === net.type &&
      req.tunnel!.id === net.segmentationId && (net.type !== 'vxlan' || req.tunnel!.flags === 0x08) &&
      req.inner.src === node.dvrMac.toLowerCase() && req.inner.dst === sgMac && req.inner.ttl === 63, describe(req));
    const back = (seen.get(`ul:${snat.name}`) ?? []).find((s) => s.tunnel !== null && s.inner.icmpType === 0 && s.inner.ipSrc === upIp && s.inner.ipDst === vmIp);
    add(`${label}: reply ${snat.name} -> ${node.name} with ${net.type} ${net.segmentationId}, inner ${sgMac} -> ${vm.mac}, ${upIp} -> ${vmIp}`,
      back !== undefined && back.tunnel!.outerSrcIp === snat.localIp && back.tunnel!.outerDstIp === node.localIp && back.tunnel!.kind === net.type &&
      back.tunnel!.id === net.segmentationId && back.inner.src === sgMac && back.inner.dst === vm.mac.toLowerCase(), describe(back), NEEDS_CT);
  }
  const out = (seen.get(`ext:${snat.name}`) ?? []).find((s) => s.inner.icmpType === 8 && s.inner.ipDst === upIp && s.inner.ipSrc === gw.ip);
  add(`${label}: ${snat.name}'s external wire: ${gw.mac} -> ${upMac}, ${gw.ip} -> ${upIp}, untagged, TTL 63`,
    out !== undefined && out.src === gw.mac.toLowerCase() && out.dst === upMac && out.inner.type === 0x0800 && out.inner.ttl === 63, describe(out), NEEDS_CT);
  const other = t.routers.filter((r) => r !== router && r.gateway !== null).map((r) => r.gateway!.ip);
  const wrong = (seen.get(`ext:${snat.name}`) ?? []).filter((s) => s.inner.icmpType === 8 && s.inner.ipDst === upIp && other.includes(s.inner.ipSrc)).length;
  if (other.length > 0) add(`${label}: not translated to another router's gateway (${other.join(', ')})`, wrong === 0, `${wrong} frames`, NEEDS_CT);
  const leak = (seen.get(`ext:${snat.name}`) ?? []).filter((s) => s.inner.ipSrc === vmIp || s.inner.ipDst === vmIp).length +
    (seen.get('up') ?? []).filter((s) => s.inner.ipSrc === vmIp || s.inner.ipDst === vmIp).length;
  add(`${label}: the fixed IP ${vmIp} never appears on the external network`, leak === 0, `${leak} frames`, NEEDS_CT);
  const atVm = (seen.get(`vm:${vm.name}`) ?? []).find((s) => s.inner.icmpType === 0 && s.inner.ipSrc === upIp);
  add(`${label}: ${vm.name} gets the reply from the sg MAC ${sgMac}, TTL 63`,
    atVm !== undefined && atVm.src === sgMac && atVm.inner.ttl === 63, describe(atVm), NEEDS_CT);
  for (const n of c.t.nodes) {
    if (n === node || n === snat || router.ha.l3Agents.includes(n.name)) continue;
    const touch = [...flowFrames(seen, `ul:${n.name}`, [vmIp, upIp, gw.ip]), ...flowFrames(seen, `ext:${n.name}`, [vmIp, gw.ip])].length;
    add(`${label}: nothing of it reaches ${n.name}`, touch === 0, `${touch} frames on ${n.name}'s wires`);
  }
}

/** The router's gateway IP on the external network: ARP and echo, from its qg- MAC only. */
async function qgScenario(c: NsCtx, router: TopoRouter): Promise<void> {
  const gw = router.gateway!;
  spawnSync('ip', ['netns', 'exec', UP_NS, 'ip', 'neigh', 'flush', 'all']);
  let pr = { sent: 0, received: 0, rttMs: '-' };
  const { raw } = await captured(c.dir, `qg-${router.name}`, wires(c.t, []), () => { pr = ping(UP_NS, gw.ip, 2); });
  c.add(`qg- of router ${router.name}: ${c.upIp} pings the gateway IP ${gw.ip}`, pr.sent > 0 && pr.received === pr.sent, `${pr.received}/${pr.sent}`, NEEDS_ICMP_TYPE);
  const replies = (raw.get('up') ?? []).map(arpOf).filter((a) => a !== null && a.op === 2 && a.spa === gw.ip);
  const shas = [...new Set(replies.map((a) => a!.sha))];
  c.add(`qg- of router ${router.name}: only ${gw.mac} answers who-has ${gw.ip}`, shas.length === 1 && shas[0] === gw.mac.toLowerCase(), `answers from ${shas.join(', ') || 'nobody'}`);
}

/**
 * A floating IP served by `server`: its VM's node with that node's fg- port (one per node per
 * external network, shared by its routers), or the SNAT host for a dvr_no_external node (the
 * qg- MAC; the VM gets it from the sg- MAC across the tunnel). The upstream pings it, the VM
 * pings the upstream; only `server` answers ARP, no other node sees the flow, a local one
 * crosses no tunnel.
 */
async function fipScenario(c: NsCtx, fipIp: string, portName: string, server: TopoNode, snat: TopoNode | null): Promise<void> {
  const { t, add, upIp, upMac } = c;
  const b = fipBinding(t, fipIp, portName)!;
  const central = server.name !== b.port.node;
  const gwNet = b.router.gateway!.network;
  const fg = t.fipGateways.find((g) => g.node === server.name && g.network === gwNet);
  const fipMac = (central ? b.router.gateway!.mac : fg?.mac ?? '?').toLowerCase();
  const vmPort = b.port;
  const vmNode = c.nodeByName.get(vmPort.node)!;
  const net = t.networks.find((n) => n.name === vmPort.network)!;
  const label = `floating IP ${fipIp} (${vmPort.name} ${b.fixedIp} on ${vmPort.node}${central ? `, dvr_no_external: central on ${server.name}` : ''}, router ${b.router.name})`;
  if (!ingressAllows(t, vmPort, { proto: 1, port: 8, srcIp: upIp, dstIp: b.fixedIp })) {
    // Refused by the VM's security groups (lab-check-sg.ts checks how): no reply.
    const r = ping(UP_NS, fipIp, 1);
    add(`${label}: ${vmPort.name}'s security groups refuse ${upIp}'s ping: no reply`, r.received === 0, `${r.received}/${r.sent}`);
    return;
  }
  spawnSync('ip', ['netns', 'exec', UP_NS, 'ip', 'neigh', 'flush', 'all']);
  let pr = { sent: 0, received: 0, rttMs: '-' };
  const { seen, raw } = await captured(c.dir, `fip-${fipIp}`, wires(t, [vmPort]), () => { pr = ping(UP_NS, fipIp, 3); });
  add(`${label}: ${upIp} pings it`, pr.sent > 0 && pr.received === pr.sent, `${pr.received}/${pr.sent}, rtt ${pr.rttMs} ms`);
  const replies = (raw.get('up') ?? []).map(arpOf).filter((a) => a !== null && a.op === 2 && a.spa === fipIp);
  const shas = [...new Set(replies.map((a) => a!.sha))];
  add(`${label}: only ${server.name} answers who-has ${fipIp}, with ${central ? 'the qg- MAC' : `its fg- MAC`} ${fipMac}`, shas.length === 1 && shas[0] === fipMac,
    `answers from ${shas.join(', ') || 'nobody'}`);
  const inExt = (seen.get(`ext:${server.name}`) ?? []).find((s) => s.inner.icmpType === 8 && s.inner.ipDst === fipIp);
  add(`${label}: the request is on ${server.name}'s external wire, ${upMac} -> ${fipMac}`,
    inExt !== undefined && inExt.src === upMac && inExt.dst === fipMac && inExt.inner.ipSrc === upIp, describe(inExt));
  const vmSrc = central && b.iface.snatMac !== '' ? b.iface.snatMac.toLowerCase() : b.iface.mac.toLowerCase();
  const atVm = (seen.get(`vm:${vmPort.name}`) ?? []).find((s) => s.inner.icmpType === 8 && s.inner.ipSrc === upIp);
  add(`${label}: reaches ${vmPort.name} as ${upIp} -> ${b.fixedIp} from ${vmSrc}, TTL 63`,
    atVm !== undefined && atVm.src === vmSrc && atVm.inner.ipDst === b.fixedIp && atVm.inner.ttl === 63, describe(atVm));
  const rep = (seen.get(`ext:${server.name}`) ?? []).find((s) => s.inner.icmpType === 0 && s.inner.ipDst === upIp && s.inner.ipSrc === fipIp);
  add(`${label}: the reply leaves ${server.name} as ${fipMac} -> ${upMac}, ${fipIp} -> ${upIp}, untagged, TTL 63`,
    rep !== undefined && rep.src === fipMac && rep.dst === upMac && rep.inner.type === 0x0800 && rep.inner.ttl === 63, describe(rep));
  const ips = [fipIp, b.fixedIp];
  if (central && isTunnelNetwork(net)) {
    // The DNATed request crosses from the server to the VM's node with the VM network's VNI / key.
    const req = (seen.get(`ul:${server.name}`) ?? []).find((s) => s.tunnel !== null && s.inner.icmpType === 8 && s.inner.ipDst === b.fixedIp);
    add(`${label}: the request crosses ${server.name} -> ${vmNode.name}: outer ${server.localIp} -> ${vmNode.localIp}, ${net.type} ${net.segmentationId}, ` +
      `${upIp} -> ${b.fixedIp}, TTL 63`,
    req !== undefined && req.src === server.underlayMac.toLowerCase() && req.dst === vmNode.underlayMac.toLowerCase() &&
      req.tunnel!.outerSrcIp === server.localIp && req.tunnel!.outerDstIp === vmNode.localIp && req.tunnel!.kind === net.type &&
      req.tunnel!.id === net.segmentationId && req.inner.ttl === 63, describe(req));
  }
  for (const n of t.nodes) {
    if (n === server || (central && n === vmNode)) continue;
    const touch = [...flowFrames(seen, `ext:${n.name}`, ips), ...flowFrames(seen, `ul:${n.name}`, ips)].length;
    add(`${label}: nothing of it reaches ${n.name}`, touch === 0, `${touch} frames on ${n.name}'s wires`);
  }
  if (!central) {
    const tun = (seen.get(`ul:${server.name}`) ?? []).filter((s) => s.tunnel !== null && ips.some((ip) => s.inner.ipSrc === ip || s.inner.ipDst === ip)).length;
    add(`${label}: nothing of it crosses a tunnel`, tun === 0, `${tun} tunnel frames`);
  }

  // The VM's own traffic to the outside leaves with the floating IP from the same node.
  let p2 = { sent: 0, received: 0, rttMs: '-' };
  const { seen: s2 } = await captured(c.dir, `fip-out-${fipIp}`, wires(t, [vmPort]), () => { p2 = ping(vmNs(vmPort), upIp, 2); });
  add(`${label}: ${vmPort.name} pings ${upIp}`, p2.sent > 0 && p2.received === p2.sent, `${p2.received}/${p2.sent}`);
  const o = (s2.get(`ext:${server.name}`) ?? []).find((s) => s.inner.icmpType === 8 && s.inner.ipDst === upIp && s.inner.ipSrc === fipIp);
  add(`${label}: ${vmPort.name}'s request leaves ${server.name} as ${fipMac} -> ${upMac}, ${fipIp} -> ${upIp}, TTL 63`,
    o !== undefined && o.src === fipMac && o.dst === upMac && o.inner.ttl === 63, describe(o));
  const gwIps = t.routers.filter((r) => r.gateway !== null).map((r) => r.gateway!.ip);
  const viaSnat = [...new Set(t.nodes)].flatMap((n) => s2.get(`ext:${n.name}`) ?? [])
    .filter((s) => s.inner.icmpType === 8 && s.inner.ipDst === upIp && gwIps.includes(s.inner.ipSrc)).length;
  add(`${label}: none of it is source-NATed${snat !== null ? ` (by ${snat.name} or any router)` : ''}`, viaSnat === 0, `${viaSnat} requests from a gateway IP`);
}
