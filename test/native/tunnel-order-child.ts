/**
 * The child of tunnel-order-netns.test.ts, run inside its namespace (root): flowd's sending
 * node (dpif/ports.ts PortTable -> netdev/underlay.ts TunnelPort, UDP GSO frames on an
 * AF_PACKET socket) sends the passes given in argv[2] (JSON: passes of super-frame payload
 * sizes, one TCP flow) over a veth to flowd's receiving node (a second Underlay on the peer,
 * recv -> coalesce into batches of argv[3] 64 KB slots). Prints one JSON line: every frame
 * delivered, in order, as [sequence offset, payload bytes, gso_size, payload is the stream's].
 * Not a test itself (no .test in its name).
 */
import { GSO_SLOT_BYTES, PacketBatch, VNET_HDR_BYTES } from '../../src/netdev/batch';
import { Underlay } from '../../src/netdev/underlay';
import { PortTable } from '../../src/dpif/ports';
import { buildTunnelHeader } from '../../src/dpif/tunnel-header';
import { streamByteAt as byteAt, tcpStreamFrame } from '../helpers/tcp-gso-frames';
import { ipv4FromString } from '../../src/packet/ipv4';

const [, , passesJson, capArg, devA, devB, ipA, ipB] = process.argv;
const MSS = 1398, SEQ0 = 0x10000000, VNI = 1001;


const passes = JSON.parse(passesJson) as number[][];
const tx = new Underlay(devA, ipA);
const rx = new Underlay(devB, ipB);
const txPort = tx.addPort('vx-a', 'vxlan', ipB);
const rxPort = rx.addPort('vx-b', 'vxlan', ipA);
rxPort.dpPort = 3;
const ports = new PortTable(64);
const p = ports.add(2, txPort, { kind: 'vxlan', localIp: ipv4FromString(ipA), remoteIp: ipv4FromString(ipB), srcMac: 0x020000000001,
  nextHopMac: 0x020000000002, dstPort: 4789, ttl: 64, tos: 0 });
const hdr = buildTunnelHeader({ kind: 'vxlan', localIp: ipv4FromString(ipA), remoteIp: ipv4FromString(ipB), srcMac: 0x020000000001,
  nextHopMac: 0x020000000002, dstPort: 4789, ttl: 64, tos: 0 }, VNI);
let seq = SEQ0, total = 0;
passes.forEach((sizes, pass) => {
  ports.batchNo = pass + 1;
  for (const n of sizes) {
    const { frame, vh } = tcpStreamFrame({ seq, payload: n, psh: n % MSS !== 0 });
    ports.emit(p.index, frame, 0, frame.length, hdr, 0x5eed, vh, 0);
    seq += n;
    total += n;
  }
  ports.flushTouched();
});
const out = new PacketBatch(Number(capArg), GSO_SLOT_BYTES, true);
const got: [number, number, number, boolean][] = [];
let bytes = 0;
for (let idle = 0; bytes < total && idle < 200000;) {
  const k = rx.recv(out);
  if (k === 0) { idle++; continue; }
  for (let i = 0; i < k; i++) {
    const f = out.buf.subarray(out.off[i], out.off[i] + out.len[i]);
    const s = ((f[38] << 24) | (f[39] << 16) | (f[40] << 8) | f[41]) >>> 0;
    const len = out.len[i] - 66;
    let ok = out.inPort[i] === 3;
    for (let j = 0; j < len && ok; j++) ok = f[66 + j] === byteAt(s + j);
    const v = out.vnet as Uint8Array;
    got.push([s - SEQ0, len, v[i * VNET_HDR_BYTES + 4] | (v[i * VNET_HDR_BYTES + 5] << 8), ok]);
    bytes += len;
  }
}
process.stdout.write(JSON.stringify({ total, sentFrames: p.txPackets, got }) + '\n');
tx.close();
rx.close();
