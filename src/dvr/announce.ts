/**
 * ARP announcements a node sends on the external network: the hook for the daemon.
 * Flows cannot originate a packet, so when a node starts serving an external address (a
 * floating IP appears on it or moves to it, its qg- or fg- port comes up) the daemon sends a
 * gratuitous ARP out the external bridge's physical interface, so the upstream router and
 * the switches learn the new MAC at once instead of after their ARP entry expires; and, when
 * the topology does not give the upstream gateway's MAC, an ARP request for it from the
 * qg-/fg- address (the reply is learned by br-int table 48, flows-ns.ts).
 *
 * Called by: dvr/node-config.ts (DvrNodeConfig.announcements); the daemon, after applying a
 * topology diff (and once at start), sends announcementsToSend(old, new) with
 * announcementFrame() straight out of the device (control/daemon.ts, Switch.sendFrame).
 *
 * The gratuitous ARP is RFC 5227's "ARP Announcement" (s2.3): an ARP request, broadcast,
 * sender and target protocol address both the announced IP, target hardware address zero.
 */
import { NodePlan } from './node-plan';
import { NsPlan } from './ns-plan';
import { buildArpFrame } from '../packet/arp';
import { ipv4FromString } from '../packet/ipv4';

export interface Announcement {
  /** The physical bridge and the device on it the frame leaves by (br-ex, ext1). */
  bridge: string;
  device: string;
  /** 'garp': announce senderIp at senderMac; 'request': ask for targetIp. */
  kind: 'garp' | 'request';
  senderMac: string;
  senderIp: string;
  targetIp: string;
  /** Why, for logs: "floating IP 203.0.113.50 of VM1". */
  why: string;
}

export function announcements(plan: NodePlan, ns: NsPlan | null): Announcement[] {
  if (ns === null || plan.external === null || plan.external.device === '') return [];
  const out: Announcement[] = [];
  const at = { bridge: plan.external.bridge, device: plan.external.device };
  const garp = (mac: string, ip: string, why: string): void => {
    out.push({ ...at, kind: 'garp', senderMac: mac, senderIp: ip, targetIp: ip, why });
  };
  for (const nr of ns.routers) {
    const gw = nr.router.gateway!;
    if (nr.snatHere) garp(gw.mac, gw.ip, `qg- port of router ${nr.router.name}`);
  }
  if (ns.fg !== null) garp(ns.fg.mac, ns.fg.ip, `fg- port of ${plan.node.name} on ${ns.fg.network}`);
  for (const f of ns.fips) garp(f.mac, f.ip, `floating IP ${f.ip} of ${f.port.name}${f.central ? ' (central)' : ''}`);
  if (ns.upstreamMac === '' && ns.upstreamIp !== '') {
    const first = out[0];
    if (first !== undefined) {
      out.push({ ...at, kind: 'request', senderMac: first.senderMac, senderIp: first.senderIp, targetIp: ns.upstreamIp,
        why: `upstream gateway ${ns.upstreamIp} (MAC not in the topology)` });
    }
  }
  return out;
}

function key(a: Announcement): string {
  return `${a.kind}/${a.device}/${a.senderIp}/${a.senderMac}/${a.targetIp}`;
}

/**
 * What to send after going from `old` to `next` (the node's announcements before and after
 * a topology change): every announcement of `next` that `old` did not have, i.e. an address
 * that appeared here or moved here, or changed MAC. All of them when there is no `old`.
 */
export function announcementsToSend(old: readonly Announcement[] | undefined, next: readonly Announcement[]): Announcement[] {
  const had = new Set((old ?? []).map(key));
  return next.filter((a) => !had.has(key(a)));
}

/** The frame to send for an announcement (untagged, 60 bytes with padding). */
export function announcementFrame(a: Announcement): Uint8Array {
  return buildArpFrame({
    op: 1, sha: a.senderMac, spa: ipv4FromString(a.senderIp), tha: '00:00:00:00:00:00', tpa: ipv4FromString(a.targetIp),
    ethDst: 'ff:ff:ff:ff:ff:ff', pad: true,
  });
}
