/**
 * The underlay of a node's tunnel ports: one AF_PACKET socket on the interface that holds
 * local_ip, shared by every VXLAN and GRE port of the node.
 *
 * Receive: frames on the underlay are decapsulated (netdev/tunnel-decap.ts) and demultiplexed
 * to tunnel ports by (kind, outer source IP); each frame gets its port's dp number as in_port
 * and the VNI/key as tun_id. ARP on the underlay is snooped to learn next-hop MACs; everything
 * else is left to the kernel. Drops are counted by reason.
 * Send: tunnel ports get whole outer frames from the datapath (the precomputed header of
 * dpif/tunnel-header.ts); the underlay writes the outer MACs (this interface's MAC and the next
 * hop's, from the neighbour table) and sends them in one batch. Frames to an unresolved next
 * hop wait (netdev/neighbors.ts) while flowd ARPs for it.
 * Too big: an outer frame that exceeds the underlay MTU is dropped (tunnel_too_big). When its
 * inner frame is IPv4 with DF set, the underlay answers the sender with ICMP fragmentation
 * needed (type 3 code 4, next-hop MTU = underlay MTU - encapsulation overhead, RFC 1191) from
 * the inner destination's addresses, and hands that reply to the datapath as if it had come out
 * of the same tunnel port with the same VNI/key, so the flows deliver it back to the sender the
 * way a real answer from the remote side would travel (this is what Linux does for a bridged
 * vxlan/gre device, see skb_tunnel_check_pmtu). Why not send it straight out of the ingress
 * port: the underlay does not know it (outputs carry no in_port), and going through the flows
 * keeps VLAN tagging and NORMAL learning right. At most ICMP_PENDING_MAX replies wait per loop
 * turn; they are delivered at the start of the next recv(), which the underlay schedules itself.
 * So that the kernel does not answer tunnel packets with ICMP port/protocol unreachable, the
 * underlay also holds a UDP socket on (local_ip, VXLAN port) and a raw GRE socket that it never
 * reads (their queues fill and drop silently); and a tc ingress filter (netdev/underlay-tc.ts)
 * drops those packets after flowd's socket has seen them, so the kernel's IP input does not
 * run for them at all.
 *
 * Who calls: the daemon (control/switch.ts) creates one per underlay interface, adds tunnel
 * ports, and polls it like any netdev. Control-plane work (route lookup) happens when a port is
 * added, never per frame.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { DEFAULT_SLOT_BYTES, GSO_SLOT_BYTES, HEADROOM, MAX_BATCH, PacketBatch, VNET_HDR_BYTES, VNET_OFF_GSO_SIZE, VNET_OFF_GSO_TYPE } from './batch';
import { dropReasons, Netdev, NetdevStats } from './netdev';
import { NeighborTable } from './neighbors';
import { Decap, decapTunnel, DECAP_NAMES, N_DECAP } from './tunnel-decap';
import { greOpen, loadNativeIo, NativeHandle, NativeIo, packetOpen, udpOpen } from '../native/io';
import { writeArp, ARP_OP_REPLY, ARP_OP_REQUEST } from '../packet/arp';
import { ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, icmpQuoteLen, writeIcmpError } from '../packet/icmp';
import { ipv4SetChecksum } from '../packet/checksum';
import { installTunnelDrop, removeTunnelDrop } from './underlay-tc';
import { countersAsDoubles } from '../counters';
import { ipv4FromString } from '../packet/ipv4';
import { formatIpv4 } from '../packet/addr-text';

export const TUNNEL_KIND_VXLAN = 1;
export const TUNNEL_KIND_GRE = 2;
/** virtio_net_hdr gso_type of a UDP GSO frame (a peer's packed VXLAN). */
const VNET_GSO_UDP_L4 = 5;
/** ICMP fragmentation-needed replies that may wait for the next recv() (more are not sent). */
export const ICMP_PENDING_MAX = 32;

function macToNumber(s: string): number {
  return parseInt(s.replace(/:/g, ''), 16);
}

function macBytes(mac: number): Uint8Array {
  const b = new Uint8Array(6);
  const hi = Math.floor(mac / 0x100000000);
  const lo = mac >>> 0;
  b[0] = hi >>> 8; b[1] = hi & 0xff; b[2] = lo >>> 24; b[3] = (lo >>> 16) & 0xff; b[4] = (lo >>> 8) & 0xff; b[5] = lo & 0xff;
  return b;
}

function putMac(b: Uint8Array, o: number, mac: number): void {
  const hi = Math.floor(mac / 0x100000000);
  const lo = mac >>> 0;
  b[o] = hi >>> 8; b[o + 1] = hi & 0xff; b[o + 2] = lo >>> 24; b[o + 3] = (lo >>> 16) & 0xff; b[o + 4] = (lo >>> 8) & 0xff; b[o + 5] = lo & 0xff;
}

/** Next hop for `remote` from the kernel's routes (`ip route get`): the gateway, or remote itself. */
export function routeNextHop(remote: string): { nextHop: string; dev: string } {
  const out = execFileSync('ip', ['-j', 'route', 'get', remote], { encoding: 'utf8' });
  const r = (JSON.parse(out) as { gateway?: string; dev: string }[])[0];
  return { nextHop: r.gateway ?? remote, dev: r.dev };
}

/** A MAC the kernel already knows for `ip` on `dev`, if any (seeds the table at port add). */
export function kernelNeighbor(ip: string, dev: string): number | undefined {
  try {
    const out = execFileSync('ip', ['-j', 'neigh', 'show', 'to', ip, 'dev', dev], { encoding: 'utf8' });
    const n = (JSON.parse(out) as { lladdr?: string; state?: string[] }[])[0];
    if (n && n.lladdr && !(n.state ?? []).includes('FAILED')) return macToNumber(n.lladdr);
  } catch {
    // no entry
  }
  return undefined;
}

export class TunnelPort implements Netdev {
  readonly kind: 'vxlan' | 'gre';
  /** Set by the daemon when the port joins the datapath. */
  dpPort = 0;
  readonly nextHop: number;
  readonly st = new NetdevStats();
  /** Frames sent while the next hop was unresolved (queued, not dropped). */
  nQueued = 0;
  /** Frames over the underlay MTU (frag-needed sent when the inner frame had DF). */
  nTooBig = 0;
  /** Frames the underlay socket did not take. */
  nSendFailed = 0;

  constructor(readonly name: string, kind: 'vxlan' | 'gre', readonly remoteIp: number,
              readonly underlay: Underlay, nextHop: number) {
    this.kind = kind;
    this.nextHop = nextHop;
  }

  /** Underlay MTU (dpif/tunnel-gso.ts: a UDP GSO datagram must fit it). */
  get tunnelMtu(): number {
    return this.underlay.mtu;
  }

  /**
   * VXLAN ports take UDP GSO frames (dpif/tunnel-gso.ts) while the next hop is resolved (an
   * unresolved one queues ordinary frames, netdev/neighbors.ts).
   */
  get tunnelGso(): boolean {
    return this.kind === 'vxlan' && this.underlay.udpGso && this.underlay.neighbors.lookup(this.nextHop) !== undefined;
  }

  /** Tunnel ports receive through their underlay (Underlay.recv); this never yields frames. */
  recv(batch: PacketBatch): number {
    batch.count = 0;
    return 0;
  }

  send(batch: PacketBatch, count: number): number {
    return this.underlay.sendTunnel(this, batch, count);
  }

  stats(out: NetdevStats): void {
    Object.assign(out, this.st);
    out.rxDropReasons = {};
    out.txDropReasons = dropReasons([['tunnel_too_big', this.nTooBig], ['send_failed', this.nSendFailed]]);
  }

  close(): void {
    this.underlay.removePort(this);
  }
}

export class Underlay implements Netdev {
  readonly kind = 'underlay';
  readonly localIp: number;
  readonly srcMac: number;
  readonly mtu: number;
  readonly neighbors = new NeighborTable();
  readonly drops = new Float64Array(N_DECAP);
  private readonly io: NativeIo;
  private readonly h: NativeHandle;
  private readonly sinks: NativeHandle[] = [];
  private readonly ports = new Map<number, TunnelPort>(); // (kind << 32 | remoteIp) as number key
  /** decapTunnel's answers: [0] tunnel kind, [1] inner bytes vouched for. */
  private readonly kindOut = new Uint8Array(2);
  private readonly sendBatch = new PacketBatch(64);
  /** Merge TCP segment runs into super-frames on receive (FLOWD_TUNNEL_GRO=0 turns it off). */
  readonly gro = process.env.FLOWD_TUNNEL_GRO !== '0';
  /**
   * Frames as read from the socket, before decapsulation and coalescing into the caller's
   * batch. With gro its slots take 64 KB: a peer's VXLAN UDP GSO frame then arrives whole
   * (the socket is markValid, flowd_io.c) and coalesce takes its inner frames straight from
   * it; with small slots the addon cuts it into datagrams first (one copy more).
   */
  private readonly rxBatch = new PacketBatch(MAX_BATCH, this.gro ? GSO_SLOT_BYTES : DEFAULT_SLOT_BYTES, true);
  /** Per kept frame: the datagram size of a whole VXLAN UDP GSO frame (its vnet gso_size), else 0. */
  private readonly stride = new Uint32Array(256);
  /** Sub-frame of rxBatch[rxNext] to resume at (a packed frame partly handed out). */
  private rxSub = 0;
  /** Per received frame: in_port, tun_id, tun_src (frames merge only when all are equal). */
  private readonly grp = new Uint32Array(3 * 256);
  private readonly srcIdx = new Uint32Array(256);
  /** Per kept frame: its inner TCP checksum needs no check before merging (decapTunnel kindOut[1]). */
  private readonly trusted = new Uint8Array(256);
  /** coalesce's [inputs consumed, merged, sub-frame to resume at, sub-frames dropped]. */
  private readonly coalesceStats = new Uint32Array(4);
  /** Decapsulated frames not yet handed out (the caller's batch was full): first index. */
  private rxNext = 0;
  private rxCount = 0;
  /** Send TCP super-frames to VXLAN as UDP GSO frames (FLOWD_TUNNEL_GSO=0 turns it off). */
  readonly udpGso = process.env.FLOWD_TUNNEL_GSO !== '0';
  /** Received frames merged into an earlier one (they count in rx_packets, not in batches). */
  nCoalesced = 0;
  private readonly st = new NetdevStats();
  nNoPort = 0;
  nTooBig = 0;
  /** ICMP fragmentation-needed replies handed to the datapath. */
  nFragNeeded = 0;
  /** ICMP replies ready for the next recv(), with their tunnel metadata. */
  private readonly icmpOut = new PacketBatch(ICMP_PENDING_MAX);
  private readableCb: (() => void) | null = null;
  /**
   * '' while the tc ingress filter (netdev/underlay-tc.ts) keeps the kernel from processing
   * the tunnel packets flowd takes; else why it is not installed (the sinks still hold).
   */
  readonly tcDrop: string;
  private icmpScheduled = false;

  constructor(readonly name: string, localIp: string, readonly vxlanPort = 4789) {
    countersAsDoubles<Underlay>(this, 'nCoalesced');
    this.io = loadNativeIo();
    this.localIp = ipv4FromString(localIp);
    this.srcMac = macToNumber(fs.readFileSync(`/sys/class/net/${name}/address`, 'utf8').trim());
    this.mtu = Number(fs.readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim());
    // markValid: segments the addon cuts from a peer's UDP GSO frame need no checksum check.
    this.h = packetOpen(name, { promisc: false, ringFrames: 2048, markValid: true });
    try {
      this.sinks.push(udpOpen(this.localIp, vxlanPort));
      this.sinks.push(greOpen(this.localIp));
    } catch (e) {
      for (const s of this.sinks) this.io.close(s);
      this.io.close(this.h);
      throw e;
    }
    this.tcDrop = installTunnelDrop(name, this.localIp, vxlanPort);
  }

  private static key(kind: number, remoteIp: number): number {
    return kind * 0x100000000 + remoteIp;
  }

  /** Adds a tunnel port to `remote` (dotted quad); resolves its next hop from the routes. */
  addPort(name: string, kind: 'vxlan' | 'gre', remote: string): TunnelPort {
    const { nextHop } = routeNextHop(remote);
    const nh = ipv4FromString(nextHop);
    const p = new TunnelPort(name, kind, ipv4FromString(remote), this, nh);
    this.ports.set(Underlay.key(kind === 'vxlan' ? TUNNEL_KIND_VXLAN : TUNNEL_KIND_GRE, p.remoteIp), p);
    if (this.neighbors.lookup(nh) === undefined) {
      const mac = kernelNeighbor(nextHop, this.name);
      if (mac !== undefined) this.neighbors.learn(nh, mac);
    }
    return p;
  }

  removePort(p: TunnelPort): void {
    this.ports.delete(Underlay.key(p.kind === 'vxlan' ? TUNNEL_KIND_VXLAN : TUNNEL_KIND_GRE, p.remoteIp));
  }

  /**
   * Receives a batch from the underlay and keeps only tunnel frames for known ports, in order,
   * decapsulated, with in_port = the tunnel port's dp number. ARP is snooped.
   */
  recv(batch: PacketBatch): number {
    if (this.icmpOut.count > 0) return this.takeIcmp(batch);
    if (this.rxNext >= this.rxCount) {
      this.rxNext = 0;
      this.rxSub = 0;
      this.rxCount = this.recvDecap(this.rxBatch);
    }
    return this.coalesce(batch);
  }

  /**
   * Hands decapsulated frames [rxNext, rxCount) of rxBatch to `batch`: copied, and when
   * `batch` has offload metadata and 64 KB slots, runs of consecutive TCP segments of one flow
   * from one tunnel merged into super-frames (native coalesce: the receive side's GRO).
   */
  private coalesce(batch: PacketBatch): number {
    const rx = this.rxBatch;
    const n = this.rxCount - this.rxNext;
    batch.count = 0;
    if (n <= 0) return 0;
    const g = this.grp;
    for (let i = 0; i < n; i++) {
      const j = this.rxNext + i;
      g[3 * i] = rx.inPort[j]; g[3 * i + 1] = rx.tunIdLo[j]; g[3 * i + 2] = rx.tunSrc[j];
    }
    const merge = this.gro && batch.vnet !== null && batch.slotBytes >= GSO_SLOT_BYTES;
    const inOff = this.rxNext === 0 ? rx.off : rx.off.subarray(this.rxNext);
    const inLen = this.rxNext === 0 ? rx.len : rx.len.subarray(this.rxNext);
    const st = this.coalesceStats;
    st[1] = 0;
    st[2] = this.rxSub;
    st[3] = 0;
    const trusted = this.rxNext === 0 ? this.trusted : this.trusted.subarray(this.rxNext);
    const stride = this.rxNext === 0 ? this.stride : this.stride.subarray(this.rxNext);
    const k = this.io.coalesce(rx.buf, inOff, inLen, n, g, 3, batch.buf, batch.slotBytes, HEADROOM, batch.capacity,
      batch.off, batch.len, merge ? batch.vnet ?? undefined : undefined, this.srcIdx, st, trusted, stride);
    for (let o = 0; o < k; o++) {
      const j = this.rxNext + this.srcIdx[o];
      batch.inPort[o] = rx.inPort[j];
      batch.tunIdHi[o] = rx.tunIdHi[j];
      batch.tunIdLo[o] = rx.tunIdLo[j];
      batch.tunSrc[o] = rx.tunSrc[j];
      batch.tunDst[o] = rx.tunDst[j];
    }
    if (!merge && batch.vnet !== null) batch.vnet.fill(0, 0, k * VNET_HDR_BYTES);
    this.nCoalesced += st[1];
    if (st[3] > 0) {
      this.drops[Decap.GsoSubframe] += st[3];
      this.st.rxDropped += st[3];
    }
    this.rxNext += st[0];
    this.rxSub = st[2];
    batch.count = k;
    return k;
  }

  /** Reads one batch from the socket into `batch`, decapsulated; returns the frames kept. */
  private recvDecap(batch: PacketBatch): number {
    const n = this.io.recv(this.h, batch.buf, batch.slotBytes, HEADROOM, batch.capacity, batch.off, batch.len,
      undefined, undefined, batch.vnet ?? undefined);
    let k = 0;
    for (let i = 0; i < n; i++) {
      this.st.rxPackets++;
      this.st.rxBytes += batch.len[i];
      this.snoopArp(batch.buf, batch.off[i], batch.len[i]);
      const r = decapTunnel(batch, i, this.localIp, this.vxlanPort, this.kindOut);
      if (r === Decap.NotTunnel) continue;
      if (r !== Decap.Ok) {
        this.drops[r]++;
        this.st.rxDropped++;
        continue;
      }
      const p = this.ports.get(Underlay.key(this.kindOut[0], batch.tunSrc[i]));
      if (p === undefined) {
        this.nNoPort++;
        this.st.rxDropped++;
        continue;
      }
      p.st.rxPackets++;
      p.st.rxBytes += batch.len[i];
      if (k !== i) {
        // rxBatch is private and only read through off/len by coalesce(): move the
        // descriptors, not the bytes (frame k may stay in slot i).
        batch.off[k] = batch.off[i];
        batch.len[k] = batch.len[i];
        batch.tunIdHi[k] = batch.tunIdHi[i];
        batch.tunIdLo[k] = batch.tunIdLo[i];
        batch.tunSrc[k] = batch.tunSrc[i];
        batch.tunDst[k] = batch.tunDst[i];
      }
      batch.inPort[k] = p.dpPort;
      this.trusted[k] = this.kindOut[1];
      // A VXLAN UDP GSO frame kept whole: coalesce walks its datagrams (GRE is never packed).
      const v = batch.vnet;
      this.stride[k] = v !== null && this.kindOut[0] === TUNNEL_KIND_VXLAN && (v[i * VNET_HDR_BYTES + VNET_OFF_GSO_TYPE] & 0x7f) === VNET_GSO_UDP_L4
        ? v[i * VNET_HDR_BYTES + VNET_OFF_GSO_SIZE] | (v[i * VNET_HDR_BYTES + VNET_OFF_GSO_SIZE + 1] << 8) : 0;
      k++;
    }
    batch.count = k;
    return k;
  }

  /** Learns next-hop MACs from ARP requests and replies seen on the underlay. */
  private snoopArp(b: Uint8Array, off: number, len: number): void {
    if (len < 42 || b[off + 12] !== 0x08 || b[off + 13] !== 0x06) return;
    const a = off + 14;
    if (b[a + 4] !== 6 || b[a + 5] !== 4) return;
    const spa = ((b[a + 14] << 24) | (b[a + 15] << 16) | (b[a + 16] << 8) | b[a + 17]) >>> 0;
    const sha = (b[a + 8] * 0x10000 + (b[a + 9] << 8) + b[a + 10]) * 0x1000000 +
      ((b[a + 11] << 16) | (b[a + 12] << 8) | b[a + 13]);
    if (spa === 0 || spa === this.localIp) return;
    const known = this.neighbors.lookup(spa);
    const op = (b[a + 6] << 8) | b[a + 7];
    // Learn from replies, and refresh known entries from requests (as the kernel does).
    if (op === ARP_OP_REPLY || known !== undefined) {
      const waiting = this.neighbors.learn(spa, sha);
      if (waiting.length > 0) this.flushWaiting(waiting, sha);
    }
  }

  private flushWaiting(frames: Uint8Array[], mac: number): void {
    const out = this.sendBatch;
    out.count = 0;
    for (const f of frames) {
      putMac(f, 0, mac);
      if (out.append(f) < 0) {
        this.io.send(this.h, out.buf, out.off, out.len, out.count);
        out.count = 0;
        out.append(f);
      }
    }
    this.st.txPackets += this.io.send(this.h, out.buf, out.off, out.len, out.count);
    out.count = 0;
  }

  /** Sends frames of tunnel port `p`: outer MACs written here; unresolved next hop -> queue. */
  sendTunnel(p: TunnelPort, batch: PacketBatch, count: number): number {
    const mac = this.neighbors.lookup(p.nextHop);
    const now = Date.now();
    const vnet = batch.vnet;
    let nOk = 0;
    for (let i = 0; i < count; i++) {
      const o = batch.off[i];
      // A UDP GSO frame (dpif/tunnel-gso.ts) was packed so that each datagram fits the MTU.
      const gso = vnet !== null && vnet[i * VNET_HDR_BYTES + VNET_OFF_GSO_TYPE] !== 0;
      if (gso && mac === undefined) { p.st.txDropped++; continue; } // packed only while resolved
      if (!gso && batch.len[i] - 14 > this.mtu) {
        this.nTooBig++;
        p.nTooBig++;
        p.st.txDropped++;
        this.fragNeeded(p, batch.buf, o, batch.len[i]);
        continue;
      }
      putMac(batch.buf, o + 6, this.srcMac);
      if (mac === undefined) {
        if (this.neighbors.enqueue(p.nextHop, batch.frame(i), now)) this.sendArpRequest(p.nextHop);
        p.nQueued++;
        continue;
      }
      putMac(batch.buf, o, mac);
      // Compact the frames to send to the front (offsets only: send reads off/len/vnet).
      batch.off[nOk] = o;
      batch.len[nOk] = batch.len[i];
      if (vnet !== null && nOk !== i) vnet.copyWithin(nOk * VNET_HDR_BYTES, i * VNET_HDR_BYTES, (i + 1) * VNET_HDR_BYTES);
      nOk++;
    }
    const sent = nOk > 0
      ? this.io.send(this.h, batch.buf, batch.off, batch.len, nOk, undefined, undefined, vnet ?? undefined) : 0;
    p.st.txPackets += sent;
    p.st.txDropped += nOk - sent;
    p.nSendFailed += nOk - sent;
    this.st.txPackets += sent;
    return count;
  }

  /**
   * For the too-big outer frame at b[o, o+len) of port `p`: when the inner frame is IPv4 with DF
   * (and not itself an ICMP error, RFC 1122 s3.2.2), queues ICMP fragmentation needed for its
   * sender in icmpOut and schedules a recv(). Runs only for oversized frames.
   */
  private fragNeeded(p: TunnelPort, b: Uint8Array, o: number, len: number): void {
    const out = this.icmpOut;
    if (out.count >= ICMP_PENDING_MAX || len < 14 + 20) return;
    const ihl = (b[o + 14] & 0x0f) << 2;
    const l4 = o + 14 + ihl;
    let key = 0;
    let hdrLen: number;
    if (p.kind === 'vxlan') {
      hdrLen = 14 + ihl + 8 + 8;                                     // RFC 7348 s5
      key = (b[l4 + 12] << 16) | (b[l4 + 13] << 8) | b[l4 + 14];
    } else {
      const flags = b[l4];                                           // RFC 2890 s2: C, K, S bits
      let g = 4;
      if (flags & 0x80) g += 4;
      if (flags & 0x20) { key = ((b[l4 + g] << 24) | (b[l4 + g + 1] << 16) | (b[l4 + g + 2] << 8) | b[l4 + g + 3]) >>> 0; g += 4; }
      if (flags & 0x10) g += 4;
      hdrLen = 14 + ihl + g;
    }
    const inner = o + hdrLen;
    let l2 = 14;
    if (b[inner + 12] === 0x81 && b[inner + 13] === 0x00) l2 = 18; // one 802.1Q tag
    const ip = inner + l2;
    const ipLen = len - hdrLen - l2;
    if (ipLen < 20 || b[ip - 2] !== 0x08 || b[ip - 1] !== 0x00) return; // IPv4 only
    if ((b[ip] >>> 4) !== 4 || (b[ip + 6] & 0x40) === 0) return;       // DF set
    if (((b[ip + 6] & 0x1f) | b[ip + 7]) !== 0) return;                 // first fragment only
    const iph = (b[ip] & 0x0f) << 2;
    if (b[ip + 9] === 1 && ipLen >= iph + 1) {
      const t = b[ip + iph];
      if (t === 3 || t === 4 || t === 5 || t === 11 || t === 12) return; // never answer an ICMP error
    }
    const src0 = b[ip + 12];
    if (src0 === 0 || src0 >= 224) return;                              // no reply to 0/8, multicast, broadcast
    const nextHopMtu = this.mtu - (hdrLen - 14) - l2;
    const s = out.count;
    out.resetSlot(s);
    const f = out.off[s];
    const fb = out.buf;
    for (let k = 0; k < 6; k++) { fb[f + k] = b[inner + 6 + k]; fb[f + 6 + k] = b[inner + k]; }
    for (let k = 12; k < l2; k++) fb[f + k] = b[inner + k];             // VLAN tag (if any) + ethertype
    const q = icmpQuoteLen(b, ip, ipLen);
    const r = f + l2;
    const total = 20 + 8 + q;
    fb[r] = 0x45; fb[r + 1] = 0; fb[r + 2] = total >>> 8; fb[r + 3] = total & 0xff;
    fb[r + 4] = 0; fb[r + 5] = 0; fb[r + 6] = 0; fb[r + 7] = 0;
    fb[r + 8] = 64; fb[r + 9] = 1;
    for (let k = 0; k < 4; k++) { fb[r + 12 + k] = b[ip + 16 + k]; fb[r + 16 + k] = b[ip + 12 + k]; }
    ipv4SetChecksum(fb, r);
    writeIcmpError(fb, r + 20, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, nextHopMtu & 0xffff, b, ip, ipLen);
    out.len[s] = l2 + total;
    out.inPort[s] = p.dpPort;
    out.tunIdLo[s] = key;
    out.tunSrc[s] = p.remoteIp;
    out.tunDst[s] = this.localIp;
    out.count++;
    this.nFragNeeded++;
    if (!this.icmpScheduled && this.readableCb !== null) {
      this.icmpScheduled = true;
      setImmediate(this.readableCb);
    }
  }

  /** Moves the queued ICMP replies into `batch` (they are the whole batch); returns the count. */
  private takeIcmp(batch: PacketBatch): number {
    const src = this.icmpOut;
    const n = Math.min(src.count, batch.capacity);
    batch.count = 0;
    for (let i = 0; i < n; i++) batch.append(src.frame(i), src, i);
    src.count = 0;
    this.icmpScheduled = false;
    return batch.count;
  }

  /** Broadcasts "who-has `ip` tell local_ip" on the underlay. */
  sendArpRequest(ip: number): void {
    const out = this.sendBatch;
    out.count = 0;
    out.resetSlot(0);
    const b = out.buf;
    const o = out.off[0];
    putMac(b, o, 0xffffffffffff);
    putMac(b, o + 6, this.srcMac);
    b[o + 12] = 0x08; b[o + 13] = 0x06;
    writeArp(b, o + 14, ARP_OP_REQUEST, macBytes(this.srcMac), this.localIp, new Uint8Array(6), ip);
    for (let k = 42; k < 60; k++) b[o + k] = 0;
    out.len[0] = 60;
    out.count = 1;
    this.io.send(this.h, out.buf, out.off, out.len, 1);
    out.count = 0;
  }

  /** Periodic work (the daemon calls it about every 100 ms): ARP retries and queue timeouts. */
  tick(nowMs: number): void {
    for (const ip of this.neighbors.expire(nowMs)) this.sendArpRequest(ip);
  }

  send(batch: PacketBatch, count: number): number {
    return this.io.send(this.h, batch.buf, batch.off, batch.len, count);
  }

  /**
   * The underlay's own counters: every frame it received, and those it refused before any
   * tunnel port saw them, by reason (decap failures, unknown tunnel source); on transmit, frames
   * that waited for the next hop's ARP and were dropped (queue full or never resolved).
   */
  stats(out: NetdevStats): void {
    Object.assign(out, this.st);
    // Frames the kernel had no ring slot for never reached recv(): counted by the kernel.
    // Frames the addon read but could not deliver (a ring slot truncated because the socket
    // queue was over its receive buffer, so no whole copy was queued; too big; bad offload
    // metadata) are counted there, as on a NativePort.
    const io = this.io.stats(this.h);
    out.rxDropped += io.rxDropped + io.rxTruncated + io.rxTooBig + io.rxBadOffload;
    out.rxErrors += io.rxErrors;
    out.txErrors += io.txErrors;
    const rx: [string, number][] = [['ring_full', io.rxDropped], ['truncated', io.rxTruncated],
      ['too_big', io.rxTooBig], ['bad_offload', io.rxBadOffload]];
    for (let k = 2; k < N_DECAP; k++) rx.push([DECAP_NAMES[k], this.drops[k]]);
    rx.push(['tunnel_no_port', this.nNoPort]);
    out.rxDropReasons = dropReasons(rx);
    const nb = this.neighbors;
    out.txDropped = nb.nQueueDrops + nb.nTimeoutDrops;
    out.txDropReasons = dropReasons([['neighbor_queue_full', nb.nQueueDrops], ['neighbor_unresolved', nb.nTimeoutDrops]]);
  }

  /** Drop counters by reason (tunnel decap failures, unknown tunnel source). */
  dropCounters(): Record<string, number> {
    const r: Record<string, number> = {};
    for (let k = 2; k < N_DECAP; k++) if (this.drops[k] > 0) r[DECAP_NAMES[k]] = this.drops[k];
    if (this.nNoPort > 0) r.tunnel_no_port = this.nNoPort;
    if (this.nTooBig > 0) r.tunnel_too_big = this.nTooBig;
    if (this.nFragNeeded > 0) r.tunnel_frag_needed_sent = this.nFragNeeded;
    if (this.neighbors.nQueueDrops > 0) r.neighbor_queue_full = this.neighbors.nQueueDrops;
    if (this.neighbors.nTimeoutDrops > 0) r.neighbor_unresolved = this.neighbors.nTimeoutDrops;
    return r;
  }

  onReadable(cb: () => void): void {
    this.readableCb = cb;
    this.io.startPoll(this.h, cb);
  }

  close(): void {
    this.io.stopPoll(this.h);
    for (const s of this.sinks) this.io.close(s);
    this.io.close(this.h);
    if (this.tcDrop === '') removeTunnelDrop(this.name);
  }

  describe(): string {
    return `${this.name} local_ip=${formatIpv4(this.localIp)} mtu=${this.mtu} ` +
      `kernel_tunnel_rx=${this.tcDrop === '' ? 'dropped by tc after the tap' : `on (${this.tcDrop})`}`;
  }
}
