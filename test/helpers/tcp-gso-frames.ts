/**
 * TCPv4 frames of a test stream, a VXLAN tunnel port's recording underlay, and the datagrams of
 * UDP GSO frames, for the tunnel GSO tests
 * (test/dpif/tunnel-gso-share.test.ts, tunnel-gso-order.test.ts, test/native/tunnel-order-child.ts).
 *
 * A frame: Ethernet 02:00:00:00:00:01 -> 02:00:00:00:00:02, IPv4 10.0.1.10 -> 10.0.2.20 (ID
 * 0x1234, DF, TTL 64), TCP `sport` -> 5201 with the timestamp option (a 32-byte header), ACK,
 * and PSH when `psh` (the tail of a write). Payload byte i is `byteAt(seq + i)`. By default a
 * super-frame as a VM hands it over: TCP checksum partial, a virtio header for TCPv4 GSO of
 * GSO_MSS; `plain`: a complete segment (both checksums) with a zero virtio header.
 */
import assert from 'node:assert/strict';
import { PacketBatch, VNET_HDR_BYTES } from '../../src/netdev/batch';
import { Netdev, NetdevStats } from '../../src/netdev/netdev';
import { TunnelDesc } from '../../src/dpif/tunnel-header';
import { loadNativeIo } from '../../src/native/io';
import { sum16 } from './sum16';

export const GSO_MSS = 1398;

/** The VXLAN tunnel of the tests: 192.168.100.11 -> .12. */
export const TEST_VXLAN: TunnelDesc = { kind: 'vxlan', localIp: 0xc0a8640b, remoteIp: 0xc0a8640c, srcMac: 0x525400000011,
  nextHopMac: 0x525400000012, dstPort: 4789, ttl: 64, tos: 0 };

/** A frame a port sent, with its virtio header (zero when the batch had none). */
export interface Sent { frame: Uint8Array; vnet: Uint8Array }

/** A tunnel port's underlay that takes UDP GSO frames and records each send call's frames. */
export class GsoWire implements Netdev {
  readonly kind = 'internal';
  readonly tunnelMtu = 1500;
  readonly tunnelGso = true;
  readonly calls: Sent[][] = [];
  constructor(readonly name: string) {}
  /** Every frame sent, in order. */
  get sent(): Sent[] { return this.calls.flat(); }
  recv(): number { return 0; }
  send(b: PacketBatch, count: number): number {
    const call: Sent[] = [];
    for (let i = 0; i < count; i++) {
      const vnet = b.vnet === null ? new Uint8Array(VNET_HDR_BYTES)
        : b.vnet.slice(i * VNET_HDR_BYTES, (i + 1) * VNET_HDR_BYTES);
      call.push({ frame: b.buf.slice(b.off[i], b.off[i] + b.len[i]), vnet });
    }
    this.calls.push(call);
    return count;
  }
  stats(_o: NetdevStats): void { /* none */ }
  close(): void { /* none */ }
}

/** The default payload: byte i of the stream is (i * 7 + 3) mod 256. */
export const streamByteAt = (seq: number): number => ((seq >>> 0) * 7 + 3) & 0xff;

export interface TcpFrameOpts {
  readonly seq: number;
  readonly payload: number;
  readonly sport?: number;
  readonly psh?: boolean;
  readonly plain?: boolean;
  readonly byteAt?: (seq: number) => number;
}

export function tcpStreamFrame(o: TcpFrameOpts): { frame: Uint8Array; vh: Uint8Array } {
  const { seq, payload } = o, sport = o.sport ?? 40000, byteAt = o.byteAt ?? streamByteAt;
  const hdr = 14 + 20 + 32;
  const f = new Uint8Array(hdr + payload);
  f.set([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
  f.set([0x45, 0, (20 + 32 + payload) >> 8, (20 + 32 + payload) & 0xff, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 1, 10, 10, 0, 2, 20], 14);
  f.set([sport >> 8, sport & 0xff, 0x14, 0x51, seq >>> 24, (seq >>> 16) & 0xff, (seq >>> 8) & 0xff, seq & 0xff, 0, 0, 0x20, 0,
    0x80, o.psh === true ? 0x18 : 0x10, 0x01, 0xf5, 0, 0, 0, 0, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], 34);
  for (let i = 0; i < payload; i++) f[hdr + i] = byteAt(seq + i);
  const vh = new Uint8Array(VNET_HDR_BYTES);
  if (o.plain === true) {
    const ipSum = ~sum16(f, 14, 20) & 0xffff;
    f[24] = ipSum >> 8; f[25] = ipSum & 0xff;
    const tcp = ~sum16(f, 34, 32 + payload, sum16(f, 26, 8) + 6 + 32 + payload) & 0xffff;
    f[50] = tcp >> 8; f[51] = tcp & 0xff;
    return { frame: f, vh };
  }
  const ps = sum16(f, 26, 8) + 6 + (32 + payload);
  const folded = (ps & 0xffff) + (ps >>> 16);
  f[50] = folded >> 8; f[51] = folded & 0xff;
  vh[0] = 1; vh[1] = 1; vh[4] = GSO_MSS & 0xff; vh[5] = GSO_MSS >> 8; vh[6] = 34; vh[8] = 16;
  return { frame: f, vh };
}

/** The datagrams of the outer frames a port sent (UDP_L4 GSO frames cut by the addon, as the kernel cuts them). */
export function cutDatagrams(sent: readonly Sent[]): Uint8Array[] {
  const io = loadNativeIo();
  const out: Uint8Array[] = [];
  const buf = new Uint8Array(64 * 2048), so = new Uint32Array(64), sl = new Uint32Array(64);
  for (const s of sent) {
    if (s.vnet[1] === 0) { out.push(s.frame); continue; }
    const n = io.offloadFrame(s.vnet, s.frame, buf, 2048, 128, 64, so, sl);
    assert.ok(n > 0, 'the UDP GSO frame cuts');
    for (let k = 0; k < n; k++) out.push(buf.slice(so[k], so[k] + sl[k]));
  }
  return out;
}
