/**
 * `lab check`, north-south part: the SNAT and floating-IP expectations of dvr-reference.md
 * ("Expected on the wire"), checked on a running lab with captures, byte for byte.
 * Called by: src/lab/lab.ts (`lab check`, next to lab-check.ts's east-west checks) and
 * test/integration/dvr-ns.test.ts. Captures every node's underlay and external device, the
 * VM's interface and the upstream host's, while it pings; then reads the pcap files.
 *
 * Scenarios, derived from the topology (the reference gives VM2 -> 203.0.113.1 for SNAT and
 * VM1 / 203.0.113.50 on C1 for the floating IP):
 * - SNAT: a VM without floating IP, bound to a node other than the SNAT host, pings the
 *   upstream gateway. On its node's underlay: outer node -> SNAT host, the VM network's VNI,
 *   inner DVRMAC(node) -> sg MAC, TTL 63. On the SNAT host's external wire: qg MAC ->
 *   upstream MAC, gateway IP -> upstream IP, untagged, TTL 63. The reply crosses back with the
 *   same VNI as sg MAC -> VM MAC, upstream IP -> VM IP; the VM gets it from the sg MAC, TTL 63.
 *   A VM on a vlan or flat network: the same legs on the physical wire instead, tagged with the
 *   network's VID (snatOverPhysical).
 * - qg- ARP and echo: the upstream pings the gateway IP; only the qg MAC answers its ARP.
 * - Floating IP: the upstream (ARP cache flushed) pings the floating IP: only the serving
 *   node's fg MAC answers ARP; the request is on that node's external wire only, reaches the
 *   VM from its gateway MAC with the fixed IP as destination and TTL 63; the reply leaves
 *   that node as fg MAC -> upstream MAC, FIP -> upstream IP, TTL 63; no frame of the flow is
 *   on the SNAT host (external wire or underlay) nor on any underlay; and the VM's own ping
 *   to the upstream leaves with the floating IP as source from the same node.
 * Results that depend on pipeline features other engineers are adding name them in `needs`
 * (conntrack for everything after NN's SNAT).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isTunnelNetwork, Topology, TopoNetwork, TopoNode, TopoPort } from '../dvr/topology';
import { fipBinding, fipServer } from '../dvr/ns-plan';
import { snatHost } from '../dvr/node-plan';
import { LabState, nodeNs, UP_NS, vmNs } from './lab-state';
import { framesOf, ping } from './ping';
import { Capture, capturesReady, CheckResult, classify, ip4, mac, startCapture, stopCaptures } from './lab-check';
import { externalPhysnet, labPhysnets, physicalDevice } from './lab-physical';
import { untag } from './lab-check-physical';

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

/** `snatNode`: the node serving SNAT now when that is a run-time fact (an HA router's master); default the SNAT host. */
export async function runNorthSouthChecks(t: Topology, st: LabState, snatNode = ''): Promise<NsCheckResult[]> {
  const res: NsCheckResult[] = [];
  const add = (name: string, pass: boolean, detail: string, needs = ''): void => {
    res.push({ name, pass, detail, needs });
  };
  const dir = path.join(st.stateDir, 'captures');
  fs.mkdirSync(dir, { recursive: true });
  const snat = snatNode !== '' ? t.nodes.find((n) => n.name === snatNode) ?? null : snatHost(t);
  const extNet = t.networks.find((n) => n.external);
  const extSub = extNet === undefined ? undefined : t.subnets.find((s) => s.network === extNet.name);
  const router = t.routers.find((r) => r.gateway !== null);
  if (snat === null || extSub === undefined || router === undefined) {
    add('the topology has a dvr_snat node, an external subnet and a router with a gateway', false, 'nothing to check');
    return res;
  }
  const gw = router.gateway!;
  const upIp = extSub.gatewayIp;
  const upMac = extSub.gatewayMac.toLowerCase();
  const nodeByName = new Map(t.nodes.map((n) => [n.name, n]));
  const fipPorts = new Set(t.floatingIps.map((f) => f.port));

  // --- SNAT: a VM without floating IP on a node other than the SNAT host.
  const vm = t.ports.find((p) => p.node !== '' && p.node !== snat.name && p.fixedIps.length > 0 && !fipPorts.has(p.name) &&
    router.interfaces.some((i) => i.subnet === p.fixedIps[0].subnet && i.snatMac !== ''));
  if (vm === undefined) {
    add('SNAT: a VM without floating IP on a compute node', false, 'none in the topology');
  } else {
    const iface = router.interfaces.find((i) => i.subnet === vm.fixedIps[0].subnet)!;
    const sgMac = iface.snatMac.toLowerCase();
    const vmIp = vm.fixedIps[0].ip;
    const node = nodeByName.get(vm.node)!;
    const net = t.networks.find((n) => n.name === vm.network)!;
    const label = `SNAT ${vm.name} -> ${upIp}`;
    let pr = { sent: 0, received: 0, rttMs: '-' };
    const { seen, raw } = await captured(dir, 'snat', wires(t, [vm]), () => { pr = ping(vmNs(vm), upIp, 3); });
    add(`${label}: ping`, pr.sent > 0 && pr.received === pr.sent, `${pr.received}/${pr.sent}, rtt ${pr.rttMs} ms`, NEEDS_CT);
    if (!isTunnelNetwork(net)) {
      snatOverPhysical(add, label, raw, node, snat, net, vm, sgMac, upIp);
    } else {
      // The copy to the SNAT node (an HA router's frames go to each of its l3 agents, dvr/ha.ts).
      const req = (seen.get(`ul:${node.name}`) ?? []).find((s) => s.tunnel !== null && s.tunnel.outerDstIp === snat.localIp &&
        s.inner.icmpType === 8 && s.inner.ipSrc === vmIp && s.inner.ipDst === upIp);
      add(`${label}: leaves ${node.name} for ${snat.name}: outer ${node.underlayMac} -> ${snat.underlayMac}, ${node.localIp} -> ${snat.localIp}, ` +
        `${net.type} ${net.segmentationId}, inner ${node.dvrMac} -> ${sgMac}, TTL 63`,
      req !== undefined && req.src === node.underlayMac.toLowerCase() && req.dst === snat.underlayMac.toLowerCase() &&
        req.tunnel!.outerSrcIp === node.localIp && req.tunnel!.outerDstIp === snat.localIp && req.tunnel!.id === net.segmentationId &&
        (net.type !== 'vxlan' || req.tunnel!.flags === 0x08) &&
        req.inner.src === node.dvrMac.toLowerCase() && req.inner.dst === sgMac && req.inner.ttl === 63, describe(req));
    }
    const out = (seen.get(`ext:${snat.name}`) ?? []).find((s) => s.inner.icmpType === 8 && s.inner.ipDst === upIp);
    add(`${label}: ${snat.name}'s external wire: ${gw.mac} -> ${upMac}, ${gw.ip} -> ${upIp}, untagged, TTL 63`,
      out !== undefined && out.src === gw.mac.toLowerCase() && out.dst === upMac && out.inner.type === 0x0800 &&
      out.inner.ipSrc === gw.ip && out.inner.ttl === 63, describe(out), NEEDS_CT);
    const leak = (seen.get(`ext:${snat.name}`) ?? []).filter((s) => s.inner.ipSrc === vmIp || s.inner.ipDst === vmIp).length +
      (seen.get('up') ?? []).filter((s) => s.inner.ipSrc === vmIp || s.inner.ipDst === vmIp).length;
    add(`${label}: the fixed IP ${vmIp} never appears on the external network`, leak === 0, `${leak} frames`, NEEDS_CT);
    const back = (seen.get(`ul:${snat.name}`) ?? []).find((s) => s.tunnel !== null && s.inner.icmpType === 0 && s.inner.ipSrc === upIp && s.inner.ipDst === vmIp);
    if (isTunnelNetwork(net)) add(`${label}: reply ${snat.name} -> ${node.name} with ${net.type} ${net.segmentationId}, inner ${sgMac} -> ${vm.mac}, ${upIp} -> ${vmIp}`,
      back !== undefined && back.tunnel!.outerSrcIp === snat.localIp && back.tunnel!.outerDstIp === node.localIp &&
      back.tunnel!.id === net.segmentationId && back.inner.src === sgMac && back.inner.dst === vm.mac.toLowerCase(), describe(back), NEEDS_CT);
    const atVm = (seen.get(`vm:${vm.name}`) ?? []).find((s) => s.inner.icmpType === 0 && s.inner.ipSrc === upIp);
    add(`${label}: ${vm.name} gets the reply from the sg MAC ${sgMac}, TTL 63`,
      atVm !== undefined && atVm.src === sgMac && atVm.inner.ttl === 63, describe(atVm), NEEDS_CT);
  }

  // --- The gateway IP on the external network: ARP and echo, from the qg MAC only.
  {
    spawnSync('ip', ['netns', 'exec', UP_NS, 'ip', 'neigh', 'flush', 'all']);
    let pr = { sent: 0, received: 0, rttMs: '-' };
    const { raw } = await captured(dir, 'qg', wires(t, []), () => { pr = ping(UP_NS, gw.ip, 2); });
    add(`qg: ${upIp} pings the gateway IP ${gw.ip}`, pr.sent > 0 && pr.received === pr.sent, `${pr.received}/${pr.sent}`, NEEDS_ICMP_TYPE);
    const replies = (raw.get('up') ?? []).map(arpOf).filter((a) => a !== null && a.op === 2 && a.spa === gw.ip);
    const shas = [...new Set(replies.map((a) => a!.sha))];
    add(`qg: only ${gw.mac} answers who-has ${gw.ip}`, shas.length === 1 && shas[0] === gw.mac.toLowerCase(), `answers from ${shas.join(', ') || 'nobody'}`);
  }

  // --- Floating IP.
  const fip = t.floatingIps.find((f) => fipServer(t, f.ip, f.port) !== null);
  if (fip === undefined) {
    // A central floating IP behind an HA router is served by its master: lab-check-ha.ts checks it.
    const haCentral = t.floatingIps.some((f) => fipServer(t, f.ip, f.port) === null && fipBinding(t, f.ip, f.port)?.router.ha.ha === true);
    if (!haCentral) add('floating IP: a bound port with a floating IP', false, 'none in the topology');
    return res;
  }
  const b = fipBinding(t, fip.ip, fip.port)!;
  const server = nodeByName.get(fipServer(t, fip.ip, fip.port)!)!;
  const central = server.name !== b.port.node;
  const fipMac = (central ? b.router.gateway!.mac : t.fipGateways.find((g) => g.node === server.name && g.network === b.router.gateway!.network)!.mac).toLowerCase();
  const vmPort = b.port;
  const label = `floating IP ${fip.ip} (${vmPort.name} on ${vmPort.node})`;
  spawnSync('ip', ['netns', 'exec', UP_NS, 'ip', 'neigh', 'flush', 'all']);
  let pr = { sent: 0, received: 0, rttMs: '-' };
  const { seen, raw } = await captured(dir, 'fip', wires(t, [vmPort]), () => { pr = ping(UP_NS, fip.ip, 3); });
  add(`${label}: ${upIp} pings it`, pr.sent > 0 && pr.received === pr.sent, `${pr.received}/${pr.sent}, rtt ${pr.rttMs} ms`);
  const replies = (raw.get('up') ?? []).map(arpOf).filter((a) => a !== null && a.op === 2 && a.spa === fip.ip);
  const shas = [...new Set(replies.map((a) => a!.sha))];
  add(`${label}: only ${server.name} answers who-has ${fip.ip}, with ${fipMac}`, shas.length === 1 && shas[0] === fipMac,
    `answers from ${shas.join(', ') || 'nobody'}`);
  const inExt = (seen.get(`ext:${server.name}`) ?? []).find((s) => s.inner.icmpType === 8 && s.inner.ipDst === fip.ip);
  add(`${label}: the request is on ${server.name}'s external wire, ${upMac} -> ${fipMac}`,
    inExt !== undefined && inExt.src === upMac && inExt.dst === fipMac && inExt.inner.ipSrc === upIp, describe(inExt));
  const gwMac = b.iface.mac.toLowerCase();
  const vmSrc = central && b.iface.snatMac !== '' ? b.iface.snatMac.toLowerCase() : gwMac;
  const atVm = (seen.get(`vm:${vmPort.name}`) ?? []).find((s) => s.inner.icmpType === 8 && s.inner.ipSrc === upIp);
  add(`${label}: reaches ${vmPort.name} as ${upIp} -> ${b.fixedIp} from ${vmSrc}, TTL 63`,
    atVm !== undefined && atVm.src === vmSrc && atVm.inner.ipDst === b.fixedIp && atVm.inner.ttl === 63, describe(atVm));
  const rep = (seen.get(`ext:${server.name}`) ?? []).find((s) => s.inner.icmpType === 0 && s.inner.ipDst === upIp);
  add(`${label}: the reply leaves ${server.name} as ${fipMac} -> ${upMac}, ${fip.ip} -> ${upIp}, untagged, TTL 63`,
    rep !== undefined && rep.src === fipMac && rep.dst === upMac && rep.inner.type === 0x0800 && rep.inner.ipSrc === fip.ip && rep.inner.ttl === 63,
    describe(rep));
  for (const n of t.nodes) {
    if (n === server) continue;
    const touch = [...(seen.get(`ext:${n.name}`) ?? []), ...(seen.get(`ul:${n.name}`) ?? [])]
      .filter((s) => s.inner.type === 0x0800 && (s.inner.ipDst === fip.ip || s.inner.ipSrc === fip.ip || s.inner.ipSrc === b.fixedIp || s.inner.ipDst === b.fixedIp)).length;
    add(`${label}: nothing of it reaches ${n.name}`, central || touch === 0, `${touch} frames on ${n.name}'s wires`);
  }
  if (!central) {
    const tun = (seen.get(`ul:${server.name}`) ?? []).filter((s) => s.tunnel !== null && (s.inner.ipSrc === b.fixedIp || s.inner.ipDst === b.fixedIp)).length;
    add(`${label}: nothing of it crosses a tunnel`, tun === 0, `${tun} tunnel frames`);
  }

  // The VM's own traffic to the outside leaves with the floating IP from the same node.
  {
    let p2 = { sent: 0, received: 0, rttMs: '-' };
    const { seen: s2 } = await captured(dir, 'fip-out', wires(t, [vmPort]), () => { p2 = ping(vmNs(vmPort), upIp, 2); });
    add(`${label}: ${vmPort.name} pings ${upIp}`, p2.sent > 0 && p2.received === p2.sent, `${p2.received}/${p2.sent}`);
    const o = (s2.get(`ext:${server.name}`) ?? []).find((s) => s.inner.icmpType === 8 && s.inner.ipDst === upIp);
    add(`${label}: ${vmPort.name}'s request leaves ${server.name} as ${fipMac} -> ${upMac}, ${fip.ip} -> ${upIp}, TTL 63`,
      o !== undefined && o.src === fipMac && o.dst === upMac && o.inner.ipSrc === fip.ip && o.inner.ttl === 63, describe(o));
    const viaSnat = (s2.get(`ext:${snat.name}`) ?? []).filter((s) => snat !== server && s.inner.ipSrc === gw.ip).length;
    add(`${label}: none of it is source-NATed by ${snat.name}`, viaSnat === 0, `${viaSnat} frames from ${gw.ip}`);
  }
  return res;
}
