/**
 * Datapath actions: the flat list ofproto/xlate.ts produces for one megaflow, and the slow-path
 * executor that runs such a list on one frame of a PacketBatch (OVS's odp actions and
 * odp_execute_actions).
 *
 * Who uses it: ofproto/xlate.ts builds lists (executeSlowPath runs them right away); dpif/
 * caches a list with its megaflow and compiles it into a program for the fast path; ofproto/trace.ts
 * prints it with formatDpActions in ovs-appctl's "Datapath actions:" dialect.
 *
 * Semantics, as OVS's datapath:
 * - Actions run in order on the frame as it is at that point; `output` hands the current frame
 *   to `emit`, and later rewrites do not change what was emitted. `emit` must copy the frame
 *   (or finish with it) before it returns: the executor keeps rewriting the same slot.
 * - A set_* action writes only the fields it names (-1 means "leave alone"); header checksums
 *   are patched incrementally (RFC 1624), the L4 checksum too when an address or port changes.
 *   A set action whose header is not in the frame is skipped, as OVS does.
 * - push_vlan moves the 12 MAC bytes 4 bytes into the slot's headroom; pop_vlan moves them back.
 * - set_tunnel writes the tunnel metadata of the slot; the tunnel port reads it on output.
 * - A list that ends without any output drops the frame; a `drop` action says why.
 *
 * applyDpActions allocates nothing; the action objects are built once per megaflow.
 */
import type { PacketBatch } from '../netdev/batch';
import { checksum, csumPatch16, ipv4SetChecksum } from '../packet/checksum';
import { hdr, locate, popVlanTag, pushVlanTag, setAddr, setPort, setIcmpTypeCode } from './frame-headers';
import { formatIpv4, formatMac } from '../packet/addr-text';
import { wr16, wr32, wrMac48 } from '../packet/bytes';

/** Why a datapath action list drops a frame; one counter per reason. */
export enum DpDrop {
  None = 0,
  /** The pipeline decided to drop (explicit drop, table miss, no output). */
  Pipeline,
  /** dec_ttl on a packet whose TTL was 0 or 1. */
  TtlExceeded,
  /** More than 64 nested resubmits/patch crossings (OVS's MAX_DEPTH). */
  RecursionTooDeep,
  /** Too many resubmits in one translation (OVS's MAX_RESUBMITS): the loop guard. */
  TooManyResubmits,
  /** push_vlan without room in the slot's headroom. */
  NoHeadroom,
  /** icmp_error asked for an ICMP error about a frame that must not get one (RFC 1812 s4.3.2.7). */
  IcmpErrorSuppressed,
  /**
   * A frame too big for the next hop without DF: flowd drops and counts it rather than
   * fragmenting (see docs: the tenant's own stack gets PMTU right; fragments would be the only
   * frames the datapath ever built from pieces of one).
   */
  TooBigNoDf,
  /**
   * NORMAL refused a frame to a reserved multicast address (STP, LACP, LLDP, CDP, ...): a bridge
   * must not forward them unless its forward_bpdu setting says so (OVS's is_admissible).
   */
  ReservedMulticast,
}

export const DP_DROP_NAMES: readonly string[] = [
  'none', 'pipeline', 'ttl_exceeded', 'recursion_too_deep', 'too_many_resubmits',
  'no_headroom', 'icmp_error_suppressed', 'too_big_no_df', 'reserved_multicast',
];

export interface DpOutput { readonly kind: 'output'; readonly port: number }
/**
 * Turns the frame into an ICMPv4 error about itself (RFC 792): Ethernet to the frame's source
 * MAC from `srcMac` (VLAN tags kept), IPv4 from `srcIp` to the frame's source address, TTL 64,
 * then type/code and the original IPv4 header plus 8 bytes of its payload. flowd's router uses
 * it for time exceeded and net unreachable (dvr/flows-router.ts icmpErrorNote).
 */
export interface DpIcmpError {
  readonly kind: 'icmp_error'; readonly type: number; readonly code: number;
  readonly srcIp: number; readonly srcMac: number;
  /** Next-hop MTU for "fragmentation needed" (type 3 code 4, RFC 1191); 0 otherwise. */
  readonly mtu: number;
}
/**
 * Runs `gt` when the frame (Ethernet header included) is longer than `size` bytes, else `le`
 * (OVS's check_pkt_len); nothing runs after it.
 */
export interface DpCheckPktLen {
  readonly kind: 'check_pkt_len'; readonly size: number;
  readonly gt: readonly DpAction[]; readonly le: readonly DpAction[];
}
/** MACs are 48-bit numbers; -1 leaves the field alone. */
export interface DpSetEth { readonly kind: 'set_eth'; readonly src: number; readonly dst: number }
/** Pushes an 802.1Q tag (TPID 0x8100) carrying `tci` (VID | PCP << 13; CFI bit ignored). */
export interface DpPushVlan { readonly kind: 'push_vlan'; readonly tci: number }
export interface DpPopVlan { readonly kind: 'pop_vlan' }
/** IPv4 rewrites; `tos` is written under `tosMask` (nw_tos is the DSCP bits, mask 0xfc). */
export interface DpSetIpv4 {
  readonly kind: 'set_ipv4'; readonly src: number; readonly dst: number;
  readonly tos: number; readonly tosMask: number; readonly ttl: number;
}
/** Set TCP/UDP ports, or for ICMP (proto 1) the type (src) and code (dst); -1 keeps a field. */
export interface DpSetL4 { readonly kind: 'set_l4'; readonly proto: number; readonly src: number; readonly dst: number }
/** ARP rewrites: op, sender/target protocol address, sender/target hardware address. */
export interface DpSetArp {
  readonly kind: 'set_arp'; readonly op: number; readonly spa: number; readonly tpa: number;
  readonly sha: number; readonly tha: number;
}
/** Tunnel metadata for the next output to a tunnel port. */
export interface DpSetTunnel {
  readonly kind: 'set_tunnel'; readonly tunIdHi: number; readonly tunIdLo: number;
  readonly src: number; readonly dst: number;
}
export interface DpDropAction { readonly kind: 'drop'; readonly reason: DpDrop }
/**
 * Conntrack (dpif/conntrack.ts), executed through the DpHook: ct(zone, commit, nat, mark) on the
 * frame. recircId 0: the frame is changed in place (NAT) and the list goes on (OVS's ct without
 * table=). recircId != 0: OVS's ct(...),recirc(id): a copy of the frame goes through conntrack and
 * is looked up again with recirc_id = id and its ct_state/ct_zone/ct_mark; the original goes on
 * unchanged with the rest of the list (OVS's fork). `nat` null: no nat clause; kind 'none': plain
 * `nat` (apply the connection's NAT). `markMask` 0: ct_mark left alone.
 */
export interface DpCt {
  readonly kind: 'ct'; readonly zone: number; readonly commit: boolean; readonly recircId: number;
  readonly nat?: DpCtNat | null; readonly markValue?: number; readonly markMask?: number;
}
/** A nat(...) clause of ct; same shape as ofproto's CtNat and conntrack's CtNatRange. */
export interface DpCtNat {
  readonly kind: 'src' | 'dst' | 'none';
  readonly ipMin: number; readonly ipMax: number; readonly portMin: number; readonly portMax: number;
}

/**
 * What a packet-in says besides the frame (OVS's userspace(controller(...)) cookie): made once
 * per megaflow by ofproto/xlate.ts, read by control/openflow/ when it sends the PACKET_IN.
 */
export interface PacketInInfo {
  readonly bridge: string;
  readonly tableId: number;
  /** The cookie of the rule that ran the action. */
  readonly cookie: bigint;
  /** OpenFlow reason (ofproto/actions.ts PIN_REASON_*). */
  readonly reason: number;
  /** The action ran in a table-miss rule (priority 0, empty match): OpenFlow 1.3+ says no_match. */
  readonly tableMiss: boolean;
  readonly controllerId: number;
  readonly userdata: Uint8Array;
  /** The flow where the action ran (KEY_WORDS words): in_port, metadata, registers, tunnel, ct. */
  readonly flow: Uint32Array;
}
/**
 * Sends the frame as it is now to the bridge's OpenFlow connections (a packet-in, OVS's
 * userspace(controller(...))); whole, as nothing is buffered (`maxLen` is the action's, kept
 * for printing). The datapath copies it into its bounded
 * packet-in queue (dpif/packet-in-queue.ts) through the DpHook; the list goes on.
 */
export interface DpController { readonly kind: 'controller'; readonly maxLen: number; readonly info: PacketInInfo }

export type DpAction =
  | DpController | DpOutput | DpSetEth | DpPushVlan | DpPopVlan | DpSetIpv4 | DpSetL4 | DpSetArp
  | DpSetTunnel | DpDropAction | DpCt | DpIcmpError | DpCheckPktLen;

/** Called for every output: the frame is batch.frame(slot) right now; copy it before returning. */
export type DpEmit = (dpPort: number, batch: PacketBatch, slot: number) => void;

/** Hook for actions this module does not execute itself (ct). Returns false to stop the list. */
export type DpHook = (action: DpAction, batch: PacketBatch, slot: number) => boolean;

function rd16(b: Uint8Array, o: number): number { return (b[o] << 8) | b[o + 1]; }

/**
 * Runs `actions` on frame `slot` of `batch`, handing every output to `emit`, and `ct` actions
 * to `hook` when given. Rewrites the frame in place (its off/len may change). Returns the drop
 * reason of a `drop` action that ended the list, DpDrop.Pipeline when nothing was output, or
 * DpDrop.None when the frame was output at least once.
 */
export function applyDpActions(actions: readonly DpAction[], batch: PacketBatch, slot: number,
                               emit: DpEmit, hook: DpHook | null = null): DpDrop {
  const b = batch.buf;
  let nOut = 0;
  let dirty = true;
  for (let i = 0; i < actions.length; i++) {
    const a = actions[i];
    const off = batch.off[slot];
    const len = batch.len[slot];
    if (dirty && a.kind !== 'output' && a.kind !== 'drop' && a.kind !== 'set_tunnel') {
      locate(b, off, len);
      hdr.l4Partial = batch.csumPartial(slot);
      dirty = false;
    }
    switch (a.kind) {
      case 'output':
        emit(a.port, batch, slot);
        nOut++;
        break;
      case 'set_eth':
        if (len < 14) break;
        if (a.dst >= 0) wrMac48(b, off, a.dst);
        if (a.src >= 0) wrMac48(b, off + 6, a.src);
        break;
      case 'push_vlan': {
        if (len < 14) break;
        if (off - 4 < batch.slotStart(slot)) return DpDrop.NoHeadroom;
        pushVlanTag(batch, slot, a.tci);
        dirty = true;
        break;
      }
      case 'pop_vlan':
        if (popVlanTag(batch, slot)) dirty = true;
        break;
      case 'set_ipv4': {
        if (hdr.l3 < 0 || hdr.ethType !== 0x0800) break;
        const ip = off + hdr.l3;
        const csum = ip + 10;
        if (a.tos >= 0) {
          const old = rd16(b, ip);
          const tos = (b[ip + 1] & ~a.tosMask) | (a.tos & a.tosMask);
          b[ip + 1] = tos & 0xff;
          csumPatch16(b, csum, old, rd16(b, ip));
        }
        if (a.ttl >= 0) {
          const old = rd16(b, ip + 8);
          b[ip + 8] = a.ttl & 0xff;
          csumPatch16(b, csum, old, rd16(b, ip + 8));
        }
        if (a.src >= 0) setAddr(b, ip + 12, a.src, off);
        if (a.dst >= 0) setAddr(b, ip + 16, a.dst, off);
        break;
      }
      case 'set_l4': {
        if (hdr.l4 < 0 || hdr.proto !== a.proto) break;
        const l4 = off + hdr.l4;
        if (a.proto === 1) { setIcmpTypeCode(b, l4, a.src, a.dst); break; }
        if (a.src >= 0) setPort(b, l4, a.src, off);
        if (a.dst >= 0) setPort(b, l4 + 2, a.dst, off);
        break;
      }
      case 'set_arp': {
        if (hdr.l3 < 0 || hdr.ethType !== 0x0806) break;
        const arp = off + hdr.l3;
        if (a.op >= 0) wr16(b, arp + 6, a.op);
        if (a.sha >= 0) wrMac48(b, arp + 8, a.sha);
        if (a.spa >= 0) wr32(b, arp + 14, a.spa);
        if (a.tha >= 0) wrMac48(b, arp + 18, a.tha);
        if (a.tpa >= 0) wr32(b, arp + 24, a.tpa);
        break;
      }
      case 'set_tunnel':
        batch.tunIdHi[slot] = a.tunIdHi;
        batch.tunIdLo[slot] = a.tunIdLo;
        batch.tunSrc[slot] = a.src;
        batch.tunDst[slot] = a.dst;
        break;
      case 'icmp_error': {
        const r = icmpError(batch, slot, a);
        if (r !== DpDrop.None) return r;
        dirty = true;
        break;
      }
      case 'check_pkt_len':
        return applyDpActions(len > a.size ? a.gt : a.le, batch, slot, emit, hook);
      case 'drop':
        return a.reason;
      case 'ct':
        if (hook !== null && !hook(a, batch, slot)) return nOut > 0 ? DpDrop.None : DpDrop.Pipeline;
        dirty = true;
        break;
      case 'controller':
        // Sent up, not dropped: it counts as an output (OVS's datapath counts it as a userspace action).
        if (hook !== null) hook(a, batch, slot);
        nOut++;
        break;
    }
  }
  return nOut > 0 ? DpDrop.None : DpDrop.Pipeline;
}

/** The original IPv4 header (up to 60 bytes) and 8 bytes of payload, quoted by icmpError. */
const quote = new Uint8Array(68);

/**
 * Rewrites frame `slot` into the ICMP error `a` asks for (see DpIcmpError). Returns false,
 * leaving the frame alone, when RFC 1812 s4.3.2.7 forbids an error about it: not a first
 * fragment, an ICMP error itself, a source that is not a unicast host, or no room in the slot
 * (IcmpErrorSuppressed); "fragmentation needed" for a frame without DF is TooBigNoDf.
 */
function icmpError(batch: PacketBatch, slot: number, a: DpIcmpError): DpDrop {
  const S = DpDrop.IcmpErrorSuppressed;
  const b = batch.buf;
  const off = batch.off[slot];
  const len = batch.len[slot];
  if (hdr.ethType !== 0x0800 || hdr.l3 < 0) return S;
  const ip = off + hdr.l3;
  const frag = rd16(b, ip + 6);
  // RFC 1191: "fragmentation needed" only for DF packets; without DF flowd drops (counted).
  if (a.type === 3 && a.code === 4 && (frag & 0x4000) === 0) return DpDrop.TooBigNoDf;
  if ((frag & 0x1fff) !== 0) return S;
  const src = ((b[ip + 12] << 24) | (b[ip + 13] << 16) | (b[ip + 14] << 8) | b[ip + 15]) >>> 0;
  if (src === 0 || src === 0xffffffff || (src >>> 28) === 0xe) return S;
  const ihl = (b[ip] & 0x0f) << 2;
  if (b[ip + 9] === 1 && len - hdr.l3 > ihl) {
    const t = b[ip + ihl];
    if (t === 3 || t === 4 || t === 5 || t === 11 || t === 12) return S;
  }
  const nQuote = Math.min(ihl + 8, len - hdr.l3);
  const newLen = hdr.l3 + 28 + nQuote;
  if (off + newLen > batch.slotStart(slot) + batch.slotBytes) return S;
  for (let k = 0; k < nQuote; k++) quote[k] = b[ip + k];
  for (let k = 0; k < 6; k++) b[off + k] = b[off + 6 + k]; // to the sender's MAC
  wrMac48(b, off + 6, a.srcMac);
  b[ip] = 0x45; b[ip + 1] = 0;
  wr16(b, ip + 2, 28 + nQuote);
  wr16(b, ip + 4, 0); wr16(b, ip + 6, 0);
  b[ip + 8] = 64; b[ip + 9] = 1;
  wr32(b, ip + 12, a.srcIp >>> 0);
  wr32(b, ip + 16, src);
  ipv4SetChecksum(b, ip);
  const ic = ip + 20;
  b[ic] = a.type; b[ic + 1] = a.code;
  wr16(b, ic + 2, 0); wr16(b, ic + 4, 0); wr16(b, ic + 6, a.mtu);
  for (let k = 0; k < nQuote; k++) b[ic + 8 + k] = quote[k];
  wr16(b, ic + 2, checksum(b, ic, 8 + nQuote));
  batch.len[slot] = newLen;
  return DpDrop.None;
}

// ---- printing, in ovs-appctl ofproto/trace's "Datapath actions:" dialect --------------------

/** One action as OVS prints it: `set(eth(dst=..))`, `push_vlan(vid=5,pcp=0)`, `2`. */
export function formatDpAction(a: DpAction, portName: ((dpPort: number) => string) | null = null): string {
  switch (a.kind) {
    case 'output': return portName !== null ? portName(a.port) : String(a.port);
    case 'set_eth': {
      const p: string[] = [];
      if (a.src >= 0) p.push(`src=${formatMac(a.src)}`);
      if (a.dst >= 0) p.push(`dst=${formatMac(a.dst)}`);
      return `set(eth(${p.join(',')}))`;
    }
    case 'push_vlan': return `push_vlan(vid=${a.tci & 0xfff},pcp=${(a.tci >>> 13) & 7})`;
    case 'pop_vlan': return 'pop_vlan';
    case 'set_ipv4': {
      const p: string[] = [];
      if (a.src >= 0) p.push(`src=${formatIpv4(a.src)}`);
      if (a.dst >= 0) p.push(`dst=${formatIpv4(a.dst)}`);
      if (a.tos >= 0) p.push(`tos=0x${a.tos.toString(16)}/0x${a.tosMask.toString(16)}`);
      if (a.ttl >= 0) p.push(`ttl=${a.ttl}`);
      return `set(ipv4(${p.join(',')}))`;
    }
    case 'set_l4': {
      const p: string[] = [];
      if (a.src >= 0) p.push(`src=${a.src}`);
      if (a.dst >= 0) p.push(`dst=${a.dst}`);
      if (a.proto === 1) return `set(icmp(type=${a.src >= 0 ? a.src : '*'},code=${a.dst >= 0 ? a.dst : '*'}))`;
      return `set(${a.proto === 6 ? 'tcp' : 'udp'}(${p.join(',')}))`;
    }
    case 'set_arp': {
      const p: string[] = [];
      if (a.spa >= 0) p.push(`sip=${formatIpv4(a.spa)}`);
      if (a.tpa >= 0) p.push(`tip=${formatIpv4(a.tpa)}`);
      if (a.op >= 0) p.push(`op=${a.op}`);
      if (a.sha >= 0) p.push(`sha=${formatMac(a.sha)}`);
      if (a.tha >= 0) p.push(`tha=${formatMac(a.tha)}`);
      return `set(arp(${p.join(',')}))`;
    }
    case 'set_tunnel': {
      const id = (BigInt(a.tunIdHi) << 32n) | BigInt(a.tunIdLo);
      return `set(tunnel(tun_id=0x${id.toString(16)},src=${formatIpv4(a.src)},dst=${formatIpv4(a.dst)},flags(df|key)))`;
    }
    case 'drop': return 'drop';
    case 'icmp_error':
      return `icmp_error(type=${a.type},code=${a.code},src=${formatIpv4(a.srcIp)},mac=${formatMac(a.srcMac)}${a.mtu ? `,mtu=${a.mtu}` : ''})`;
    case 'check_pkt_len':
      return `check_pkt_len(size=${a.size},gt(${formatDpActions(a.gt, portName) || 'drop'}),le(${formatDpActions(a.le, portName) || 'drop'}))`;
    case 'controller': return formatController(a);
    case 'ct': return `${formatCt(a)}${a.recircId ? `,recirc(0x${a.recircId.toString(16)})` : ''}`;
  }
}

/**
 * userspace(controller(...)) with every packet-in field, so a program's text changes (and a
 * cached SLOW program is revalidated) whenever what the packet-in would say changes.
 */
function formatController(a: DpController): string {
  const i = a.info;
  let meta = '';
  for (let w = 0; w < i.flow.length; w++) if (i.flow[w] !== 0) meta += `${meta === '' ? '' : '.'}${w}:${i.flow[w].toString(16)}`;
  const ud = Array.from(i.userdata, (b) => b.toString(16).padStart(2, '0')).join('.');
  return `userspace(controller(reason=${i.reason}${i.tableMiss ? ',table_miss' : ''},controller_id=${i.controllerId},max_len=${a.maxLen},` +
    `rule_cookie=0x${i.cookie.toString(16)},bridge=${i.bridge},table=${i.tableId}${ud === '' ? '' : `,userdata=${ud}`},flow=${meta}))`;
}

/** ct(commit,zone=5,mark=0x1/0xff,nat(src=172.24.4.10:1024-65535)) in OVS's datapath dialect. */
function formatCt(a: DpCt): string {
  const p: string[] = [];
  if (a.commit) p.push('commit');
  p.push(`zone=${a.zone}`);
  const mm = a.markMask ?? 0;
  if (mm !== 0) p.push(`mark=0x${((a.markValue ?? 0) >>> 0).toString(16)}/0x${(mm >>> 0).toString(16)}`);
  const n = a.nat;
  if (n !== null && n !== undefined) {
    if (n.kind === 'none') p.push('nat');
    else {
      let r = formatIpv4(n.ipMin);
      if (n.ipMax !== n.ipMin && n.ipMax !== 0) r += `-${formatIpv4(n.ipMax)}`;
      if (n.portMin !== 0) r += `:${n.portMin}${n.portMax !== n.portMin ? `-${n.portMax}` : ''}`;
      p.push(`nat(${n.kind}=${r})`);
    }
  }
  return `ct(${p.join(',')})`;
}

/** A whole list, comma-separated; an empty list (or only a drop) prints "drop". */
export function formatDpActions(actions: readonly DpAction[],
                                portName: ((dpPort: number) => string) | null = null): string {
  const parts: string[] = [];
  for (const a of actions) if (a.kind !== 'drop') parts.push(formatDpAction(a, portName));
  return parts.length === 0 ? 'drop' : parts.join(',');
}
