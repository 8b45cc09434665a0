/**
 * VXLAN super-frames and a UDP GSO wire for the tests of shared outer frames
 * (test/dpif/tunnel-gso-share, test/control/poll-hold): a TCPv4 super-frame with its vnet
 * header, a tunnel netdev that records each send call, and the datagrams of the frames sent,
 * cut as the kernel cuts UDP_L4 frames, with every inner segment's checksums checked.
 */
import assert from 'node:assert/strict';
import { PacketBatch, VNET_HDR_BYTES } from '../../src/netdev/batch';
import { Netdev, NetdevStats } from '../../src/netdev/netdev';
import { TunnelDesc } from '../../src/dpif/tunnel-header';
import { loadNativeIo } from '../../src/native/io';
import { sum16 } from './sum16';

export const MSS = 1398;
export const UNIT = 8 + 66 + MSS;

export const VX: TunnelDesc = { kind: 'vxlan', localIp: 0xc0a8640b, remoteIp: 0xc0a8640c, srcMac: 0x525400000011,
  nextHopMac: 0x525400000012, dstPort: 4789, ttl: 64, tos: 0 };

export interface Sent { frame: Uint8Array; vnet: Uint8Array }

/** A tunnel port whose underlay takes UDP GSO frames; records each send call's frames. */
export class GsoWire implements Netdev {
  readonly kind = 'internal';
  readonly tunnelMtu = 1500;
  readonly tunnelGso = true;
  readonly calls: Sent[][] = [];
  constructor(readonly name: string) {}
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

/** A TCPv4 super-frame of `payload` bytes from sequence `seq` (32-byte TCP header), checksum-partial. */
export function superFrame(payload: number, seq: number): { frame: Uint8Array; vh: Uint8Array } {
  const hdr = 14 + 20 + 32;
  const f = new Uint8Array(hdr + payload);
  f.set([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
  f.set([0x45, 0, (20 + 32 + payload) >> 8, (20 + 32 + payload) & 0xff, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 1, 10, 10, 0, 2, 20], 14);
  f.set([0x9c, 0x40, 0x14, 0x51, seq >>> 24, (seq >>> 16) & 0xff, (seq >>> 8) & 0xff, seq & 0xff, 0, 0, 0x20, 0, 0x80, 0x10, 0x01, 0xf5, 0, 0, 0, 0,
    1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], 34);
  for (let i = 0; i < payload; i++) f[hdr + i] = ((seq + i) * 7 + 3) & 0xff;
  const ps = sum16(f, 26, 8) + 6 + (32 + payload);
  const folded = (ps & 0xffff) + (ps >>> 16);
  f[50] = folded >> 8; f[51] = folded & 0xff;
  const vh = new Uint8Array(VNET_HDR_BYTES);
  vh[0] = 1; vh[1] = 1; vh[4] = MSS & 0xff; vh[5] = MSS >> 8; vh[6] = 34; vh[8] = 16;
  return { frame: f, vh };
}

/** Datagrams of the outer frames sent (UDP_L4 frames cut by the addon, as the kernel would). */
export function datagrams(sent: Sent[]): Uint8Array[] {
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

/** The inner segments' sequence numbers, each checked: VXLAN header, inner IP and TCP checksums. */
export function innerSeqs(dgrams: Uint8Array[]): number[] {
  return dgrams.map((d) => {
    assert.ok(d.length - 14 <= 1500, 'datagram fits the MTU');
    assert.equal((d[46] << 16) | (d[47] << 8) | d[48], 1001, 'VNI');
    const inner = d.subarray(50);
    assert.equal(sum16(inner, 14, 20), 0xffff, 'inner IPv4 checksum');
    assert.equal(sum16(inner, 34, inner.length - 34, sum16(inner, 26, 8) + 6 + (inner.length - 34)), 0xffff, 'inner TCP checksum');
    return ((inner[38] << 24) | (inner[39] << 16) | (inner[40] << 8) | inner[41]) >>> 0;
  });
}
