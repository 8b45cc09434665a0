/**
 * TCP super-frames into VXLAN/GRE tunnels in one native call (src/native/tunnel-offload.c):
 * the super-frame is cut into MSS-sized inner segments with full checksums and each gets the
 * port's precomputed outer header (dpif/tunnel-header.ts) in the same loop. For VXLAN, when
 * the tunnel port says its underlay takes it (`tunnelGso`) and one datagram fits the underlay
 * MTU, consecutive segments are packed as the VXLAN payloads of one outer UDP frame with a
 * UDP_L4 virtio_net_hdr, so the kernel cuts the datagrams (or passes the frame whole across
 * veth and a bridge to a receiving flowd, whose underlay coalesces it back:
 * netdev/underlay.ts). GRE, and VXLAN frames whose datagrams would exceed the MTU, get one
 * outer frame per segment (virtio_net_hdr has no GRE GSO type: native-notes/tunnel-gso.md),
 * which then meet the underlay's too-big / frag-needed rules exactly as before.
 *
 * Called by: dpif/ports.ts (emit of an offload frame to a port with a tunnel header).
 * Ownership: the template scratch and the one-slot state belong to this object; output goes
 * into slots the caller passes; nothing is kept after a call.
 * Allocation: none per frame (views made once).
 */
import { HEADROOM, PacketBatch } from '../netdev/batch';
import { Netdev } from '../netdev/netdev';
import { loadNativeIo, NativeIo, TUNNEL_EMIT_EXTEND, TUNNEL_EMIT_GRE, TUNNEL_EMIT_UDP_GSO, TUNNEL_EMIT_VXLAN } from '../native/io';
import { tunnelSrcPort } from './flow-hash';
import { TunnelHeader } from './tunnel-header';
import { countersAsDoubles } from '../counters';

/** What a tunnel port's netdev may tell the datapath (netdev/underlay.ts TunnelPort). */
interface TunnelOffload {
  /** Underlay MTU (outer IPv4 packet bytes); 0 or absent: unknown, no UDP GSO. */
  readonly tunnelMtu?: number;
  /** True while the port's send takes UDP GSO frames with their vnet header (next hop known). */
  readonly tunnelGso?: boolean;
}

/** Result of TunnelSegmenter.write. */
export const TUNNEL_NOT_TCP_GSO = -4;

export class TunnelSegmenter {
  private io: NativeIo | null = null;
  private readonly tmplBuf = new Uint8Array(64);
  private readonly vxlanTmpl = this.tmplBuf.subarray(0, 50);
  private readonly greTmpl = this.tmplBuf.subarray(0, 42);
  /** [0]: inner segment to start at / resume at; [1]: 1 when the last write packed UDP GSO frames. */
  readonly state = new Uint32Array(2);
  /** Super-frames sent as UDP GSO-packed VXLAN frames. */
  nUdpGso = 0;
  /** Super-frames cut into one outer frame per segment (GRE, or datagrams over the MTU). */
  nPerSegment = 0;

  constructor() {
    countersAsDoubles<TunnelSegmenter>(this, 'nUdpGso', 'nPerSegment');
  }

  /** True when `netdev` (a tunnel port) currently takes UDP GSO VXLAN frames. */
  static udpGso(netdev: Netdev): boolean {
    return (netdev as Netdev & TunnelOffload).tunnelGso === true;
  }

  static mtu(netdev: Netdev): number {
    return (netdev as Netdev & TunnelOffload).tunnelMtu ?? 0;
  }

  /**
   * Prepares the outer header of `hdr` for the flow `flowHash` (VXLAN source port) and
   * returns the template for write().
   */
  template(hdr: TunnelHeader, flowHash: number): Uint8Array {
    const t = hdr.isVxlan ? this.vxlanTmpl : this.greTmpl;
    t.set(hdr.bytes);
    if (hdr.isVxlan) {
      const sp = tunnelSrcPort(flowHash);
      t[34] = sp >>> 8; t[35] = sp & 0xff;
    }
    return t;
  }

  /**
   * Writes the super-frame src[off, off+len) (vnet header vnet[vOff..]) encapsulated with
   * `tmpl` into slots [first, out.capacity) of `out`, starting at segment state[0]. Returns the
   * slots written (state[0] != 0 afterwards: slots ran out, call again), or a negative
   * OffloadResult (TUNNEL_NOT_TCP_GSO: finish the frame the ordinary way); state[1] says
   * whether it packed UDP GSO frames. `extend`: slot first - 1 holds the last UDP GSO frame
   * written for the same port with nothing sent after it, which this super-frame's first
   * datagrams may fill up (the addon checks that it is a full frame of this template and
   * datagram size), so consecutive super-frames of a flow share outer frames.
   */
  write(tmpl: Uint8Array, udpGso: boolean, extend: boolean, mtu: number, src: Uint8Array, off: number, len: number,
        vnet: Uint8Array, vOff: number, out: PacketBatch, first: number): number {
    if (this.io === null) this.io = loadNativeIo();
    const vx = tmpl.length === 50;
    const mode = udpGso && vx ? TUNNEL_EMIT_UDP_GSO | (extend && first > 0 ? TUNNEL_EMIT_EXTEND : 0) : 0;
    return this.io.tunnelEmit(vnet, src, tmpl, vx ? TUNNEL_EMIT_VXLAN : TUNNEL_EMIT_GRE, mode, mtu,
      out.buf, out.slotBytes, HEADROOM, first, out.capacity, out.off, out.len, out.vnet ?? undefined, this.state,
      vOff, off, len);
  }
}
