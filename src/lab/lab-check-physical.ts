/**
 * `lab check`, physical networks (issue 17): what VLAN and flat networks look like on the
 * physical wire, checked on a running lab with captures. Called by: lab/lab.ts (`lab check`)
 * and test/integration/vlan-lab.test.ts. Pure reading of pcap files besides the pings and
 * the tcpdumps it starts (and stops).
 *
 * For every pair of bound VMs on different nodes that a router joins (or that share a
 * network), where one of the two networks is vlan or flat, VM a pings VM b (its ARP cache
 * flushed first, so the broadcast crosses too) while tcpdump records, per node, what the node
 * SENDS on each physical device (`-Q out`) and its underlay, and every VM's interface (pairs
 * with no VM or address in common ping side by side, lab-check.ts pingRounds). Then:
 * - the ping is answered;
 * - each leg (request a -> b, reply b -> a) leaves the sender's node on the destination
 *   network: on a physical network with that network's VID (untagged for flat), source = the
 *   sender node's DVR MAC when routed (the VM's MAC when switched), destination = the VM's
 *   MAC, TTL 63 when routed; on a tunnel network as a tunnel frame with its VNI / key and the
 *   DVR MAC as inner source;
 * - the VM receives it from its own gateway MAC when routed (from the other VM when switched).
 * Over all physical-wire frames of all pairs:
 * - every IPv4 and ARP frame carries the VID of the network its addresses belong to (the
 *   destination's for IPv4, the target's for ARP; untagged for flat), never a local VLAN;
 * - no frame has a gateway (qr-) MAC as source, and every routed frame has the DVR MAC of the
 *   node that sent it;
 * - broadcasts stay within their VID: no VM saw an ARP request for an address outside its own
 *   subnet;
 * - a network with different local VLAN numbers on two nodes is switched and routed between
 *   them all the same (the numbers are listed).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cidrContains } from '../dvr/addr';
import { nodeConfig } from '../dvr/node-config';
import { isTunnelNetwork, Topology, TopoNetwork, TopoNode, TopoPort } from '../dvr/topology';
import { Capture, capturesReady, CheckResult, classify, pingRounds, startCapture, stopCaptures } from './lab-check';
import { physicalDevice } from './lab-physical';
import { LabState, nodeNs, vmNs } from './lab-state';
import { framesOf, pingAll } from './ping';
import { ipv4FromString } from '../packet/ipv4';

type Seen = ReturnType<typeof classify>;

/** A captured frame with its 802.1Q VID (-1 untagged) and its contents past the tag. */
export interface TaggedFrame { vid: number; s: Seen }

/** Reads an optional 802.1Q tag (TPID 0x8100 at offset 12) and classifies the rest. */
export function untag(b: Uint8Array): TaggedFrame {
  if (b.length >= 18 && b[12] === 0x81 && b[13] === 0x00) {
    const vid = ((b[14] & 0x0f) << 8) | b[15];
    const inner = new Uint8Array(b.length - 4);
    inner.set(b.subarray(0, 12), 0);
    inner.set(b.subarray(16), 12);
    return { vid, s: classify(inner) };
  }
  return { vid: -1, s: classify(b) };
}

/** The network whose subnet holds `ip`, among `nets`. */
function netOfIp(t: Topology, nets: readonly TopoNetwork[], ip: string): TopoNetwork | undefined {
  if (ip === '') return undefined;
  const u = ipv4FromString(ip);
  const sub = t.subnets.find((s) => nets.some((n) => n.name === s.network) && cidrContains(s.cidr, u));
  return sub === undefined ? undefined : nets.find((n) => n.name === sub.network);
}

const wireVid = (n: TopoNetwork): number => (n.type === 'flat' ? -1 : n.segmentationId);
const vidText = (v: number): string => (v < 0 ? 'untagged' : `VID ${v}`);

export async function runPhysicalChecks(t: Topology, st: LabState): Promise<CheckResult[]> {
  const res: CheckResult[] = [];
  const add = (name: string, pass: boolean, detail = ''): void => { res.push({ name, pass, detail }); };
  const physNets = t.networks.filter((n) => !isTunnelNetwork(n) && !n.external);
  if (physNets.length === 0) return res;
  const dir = path.join(st.stateDir, 'captures');
  fs.mkdirSync(dir, { recursive: true });
  const netOf = (p: TopoPort): TopoNetwork => t.networks.find((n) => n.name === p.network)!;
  const nodeOf = (p: TopoPort): TopoNode => t.nodes.find((n) => n.name === p.node)!;
  const gwOf = (p: TopoPort): string => {
    for (const r of t.routers) for (const i of r.interfaces) if (i.subnet === p.fixedIps[0].subnet) return i.mac.toLowerCase();
    return '';
  };
  const joined = (a: TopoPort, b: TopoPort): boolean => a.network === b.network || t.routers.some((r) => {
    const nets = r.interfaces.map((i) => t.subnets.find((s) => s.name === i.subnet)?.network);
    return nets.includes(a.network) && nets.includes(b.network);
  });
  const gwMacs = new Set(t.routers.flatMap((r) => r.interfaces.map((i) => i.mac.toLowerCase())));
  const dvrMacs = new Map(t.nodes.map((n) => [n.dvrMac.toLowerCase(), n.name]));
  const vms = t.ports.filter((p) => p.node !== '' && p.fixedIps.length > 0);
  const physnets = [...new Set(physNets.map((n) => n.physicalNetwork))];
  /** Every frame a node sent on a physical network, over all pairs: [node, physnet, frame]. */
  const wire: { node: TopoNode; physnet: string; f: TaggedFrame }[] = [];
  const okPairs = new Set<string>();

  const pairs: { a: TopoPort; b: TopoPort }[] = [];
  for (const a of vms) {
    for (const b of vms) {
      if (a === b || a.node === b.node || !joined(a, b)) continue;
      if (isTunnelNetwork(netOf(a)) && isTunnelNetwork(netOf(b))) continue;
      pairs.push({ a, b });
    }
  }
  const pairNo = pairs.length;
  // The pairs of one round ping at once (lab-check.ts pingRounds: a pair's two directions, no
  // other pair's VM or address); each leg is told apart by ICMP type and the addresses' order.
  const byPair = new Map<{ a: TopoPort; b: TopoPort }, CheckResult[]>();
  let roundNo = 0;
  for (const round of pingRounds(pairs, true)) {
    roundNo++;
    const caps = new Map<string, Capture>();
    for (const n of t.nodes) {
      for (const physnet of physnets) {
        const dev = physicalDevice(n, physnet);
        if (dev !== '') caps.set(`out:${n.name}:${physnet}`, startCapture(nodeNs(n), dev, path.join(dir, `pn-${roundNo}-${n.name}-${physnet}.pcap`), 'out'));
      }
      caps.set(`ul:${n.name}`, startCapture(nodeNs(n), n.underlayDevice, path.join(dir, `pn-${roundNo}-${n.name}-ul.pcap`), 'out'));
    }
    for (const v of vms) caps.set(`vm:${v.name}`, startCapture(vmNs(v), 'eth0', path.join(dir, `pn-${roundNo}-${v.name}.pcap`)));
    await capturesReady(caps.values());
    for (const a of new Set(round.map((x) => x.a))) spawnSync('ip', ['-n', vmNs(a), 'neigh', 'flush', 'all']);
    const answers = await pingAll(round.map(({ a, b }) => ({ fromNs: vmNs(a), ip: b.fixedIps[0].ip, count: 3 })));
    await stopCaptures(caps.values());
    const seen = new Map<string, TaggedFrame[]>();
    for (const [k, c] of caps) seen.set(k, fs.existsSync(c.file) ? (await framesOf(c.file)).map(untag) : []);
    for (const n of t.nodes) {
      for (const physnet of physnets) for (const f of seen.get(`out:${n.name}:${physnet}`) ?? []) wire.push({ node: n, physnet, f });
    }
    round.forEach((x, i) => {
      const out: CheckResult[] = [];
      byPair.set(x, out);
      const { a, b } = x;
      const pr = answers[i];
      const add = (name: string, pass: boolean, detail = ''): void => { out.push({ name, pass, detail }); };
      const label = `${a.name}->${b.name}`;
      const pass = pr.sent > 0 && pr.received === pr.sent;
      if (pass) okPairs.add(`${a.name}/${b.name}`);
      add(`${label}: ping ${b.fixedIps[0].ip} from ${a.name} (${a.node}, ${a.network}) to ${b.name} (${b.node}, ${b.network})`,
        pass, `${pr.received}/${pr.sent}, rtt ${pr.rttMs} ms`);
      const routed = a.network !== b.network;
      for (const [from, to, icmpType] of [[a, b, 8], [b, a, 0]] as const) {
        const leg = `${label}: ${icmpType === 8 ? 'request' : 'reply'} ${from.node} -> ${to.node}`;
        const net = netOf(to);
        const fromIp = from.fixedIps[0].ip;
        const toIp = to.fixedIps[0].ip;
        const srcMac = routed ? nodeOf(from).dvrMac.toLowerCase() : from.mac.toLowerCase();
        const ttl = routed ? 63 : 64;
        if (isTunnelNetwork(net)) {
          const fr = (seen.get(`ul:${from.node}`) ?? []).find((x) => x.s.tunnel !== null && x.s.inner.icmpType === icmpType &&
            x.s.inner.ipSrc === fromIp && x.s.inner.ipDst === toIp);
          add(`${leg} over ${net.type} ${net.segmentationId}, inner ${srcMac} -> ${to.mac}, TTL ${ttl}`,
            fr !== undefined && fr.s.tunnel!.id === net.segmentationId && fr.s.inner.src === srcMac && fr.s.inner.dst === to.mac.toLowerCase() && fr.s.inner.ttl === ttl,
            fr === undefined ? 'no such frame' : `id ${fr.s.tunnel!.id}, inner ${fr.s.inner.src} -> ${fr.s.inner.dst}, TTL ${fr.s.inner.ttl}`);
        } else {
          const fr = (seen.get(`out:${from.node}:${net.physicalNetwork}`) ?? []).find((x) => x.s.inner.icmpType === icmpType &&
            x.s.inner.ipSrc === fromIp && x.s.inner.ipDst === toIp);
          add(`${leg} on ${net.physicalNetwork} with ${vidText(wireVid(net))} (${net.name}), ${srcMac} -> ${to.mac}, TTL ${ttl}`,
            fr !== undefined && fr.vid === wireVid(net) && fr.s.src === srcMac && fr.s.dst === to.mac.toLowerCase() && fr.s.inner.ttl === ttl,
            fr === undefined ? 'no such frame' : `${vidText(fr.vid)}, ${fr.s.src} -> ${fr.s.dst}, TTL ${fr.s.inner.ttl}`);
        }
        const wantSrc = routed ? gwOf(to) : from.mac.toLowerCase();
        const got = (seen.get(`vm:${to.name}`) ?? []).find((x) => x.s.inner.icmpType === icmpType && x.s.inner.ipSrc === fromIp);
        add(`${leg}: ${to.name} receives it from ${wantSrc}${routed ? ' (its gateway)' : ''}, untagged`,
          got !== undefined && got.s.src === wantSrc && got.vid === -1, got === undefined ? 'not received' : `from ${got.s.src}, ${vidText(got.vid)}`);
      }
      // Broadcasts stay within their network: no VM saw an ARP request for another subnet.
      let strayArp = 0;
      const where: string[] = [];
      for (const v of vms) {
        const own = t.subnets.find((s) => s.name === v.fixedIps[0].subnet)!;
        for (const x of seen.get(`vm:${v.name}`) ?? []) {
          if (x.s.inner.type === 0x0806 && x.s.inner.arpTpa !== '' && !cidrContains(own.cidr, ipv4FromString(x.s.inner.arpTpa))) {
            strayArp++;
            if (!where.includes(v.name)) where.push(v.name);
          }
        }
      }
      add(`${label}: broadcasts stay within their network (no VM sees ARP for another subnet)`, strayArp === 0,
        strayArp === 0 ? 'none' : `${strayArp} frames at ${where.join(', ')}`);
    });
  }
  for (const x of pairs) res.push(...byPair.get(x)!);
  if (pairNo === 0) { add('the topology has VM pairs on physical networks across nodes', false, 'nothing to check'); return res; }

  // Over every frame the nodes sent on the physical wires.
  for (const physnet of physnets) {
    const nets = physNets.filter((n) => n.physicalNetwork === physnet);
    const frames = wire.filter((w) => w.physnet === physnet);
    const vids = new Set(nets.map(wireVid));
    let wrongVid = 0, foreignVid = 0, gwSrc = 0, routedBad = 0, routedN = 0;
    const wrong: string[] = [];
    for (const { node, f } of frames) {
      if (!vids.has(f.vid)) foreignVid++;
      const s = f.s;
      let net: TopoNetwork | undefined;
      if (s.inner.type === 0x0806) net = netOfIp(t, nets, s.inner.arpTpa);
      else if (s.inner.type === 0x0800) net = netOfIp(t, nets, s.inner.ipDst) ?? netOfIp(t, nets, s.inner.ipSrc);
      if (net !== undefined && f.vid !== wireVid(net)) {
        wrongVid++;
        if (wrong.length < 3) wrong.push(`${node.name}: ${s.inner.ipSrc || s.inner.arpTpa} -> ${s.inner.ipDst} with ${vidText(f.vid)}, want ${vidText(wireVid(net))}`);
      }
      if (gwMacs.has(s.src)) gwSrc++;
      if (s.inner.type === 0x0800) {
        const all = t.networks.filter((n) => !n.external);
        const ns = netOfIp(t, all, s.inner.ipSrc);
        const nd = netOfIp(t, all, s.inner.ipDst);
        const snatReply = t.routers.some((r) => r.interfaces.some((i) => i.snatMac.toLowerCase() === s.src));
        if (ns !== undefined && nd !== undefined && ns !== nd && !snatReply) {
          routedN++;
          if (dvrMacs.get(s.src) !== node.name) routedBad++;
        }
      }
    }
    add(`${physnet}: every frame carries its network's ${nets.map((n) => `${n.name}=${vidText(wireVid(n))}`).join(', ')}`,
      wrongVid === 0 && frames.length > 0, `${frames.length} frames, ${wrongVid} with another tag${wrong.length ? `: ${wrong.join('; ')}` : ''}`);
    add(`${physnet}: no frame carries a tag other than these (never a local VLAN)`, foreignVid === 0, `${foreignVid} frames`);
    add(`${physnet}: no frame has a gateway MAC as source`, gwSrc === 0, `${gwSrc} frames`);
    add(`${physnet}: every routed frame has the sending node's DVR MAC as source`, routedN > 0 && routedBad === 0,
      `${routedN} routed frames, ${routedBad} with another source`);
  }

  // Different local VLANs for one network on different nodes make no difference.
  const lvs = new Map(t.nodes.map((n) => [n.name, nodeConfig(t, n.name).localVlans]));
  for (const net of physNets) {
    const holders = t.nodes.filter((n) => lvs.get(n.name)!.has(net.name));
    const vmsOn = vms.filter((p) => p.network === net.name);
    const pairs = vmsOn.flatMap((a) => vmsOn.filter((b) => b !== a && b.node !== a.node).map((b) => `${a.name}/${b.name}`));
    if (pairs.length === 0) continue;
    const numbers = holders.map((n) => `${n.name}=${lvs.get(n.name)!.get(net.name)}`).join(' ');
    const differ = new Set(holders.map((n) => lvs.get(n.name)!.get(net.name))).size > 1;
    add(`${net.name}: local VLANs ${numbers}${differ ? ' differ' : ' (all equal)'}; ${vidText(wireVid(net))} on the wire and every pair across nodes answers`,
      pairs.every((p) => okPairs.has(p)), pairs.map((p) => `${p}: ${okPairs.has(p) ? 'ok' : 'FAIL'}`).join(', '));
  }
  return res;
}
