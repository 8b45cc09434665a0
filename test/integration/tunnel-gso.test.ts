/**
 * Issue 16: TCP super-frames through VXLAN and GRE with default offloads, on the reference lab.
 * iperf3 VM1 -> VM2 (routed on C1, tunnelled to C2) for 2 s while tcpdump records C2's underlay
 * (eth1) and the link to VM2 (vm2-host). What must hold:
 * - iperf3 moves data without error;
 * - on the underlay every inner TCP segment is complete: tshark (checksum validation on) finds
 *   no bad inner IPv4 or TCP checksum, and an independent walk of every VXLAN/GRE payload in
 *   the capture verifies each inner segment's checksums and keeps it within the VM MTU;
 * - VXLAN: outer frames carrying several VXLAN datagrams (one UDP GSO frame from C1's flowd)
 *   are seen, i.e. the super-frame reached the underlay in one piece;
 * - both: frames far above the MTU go to VM2 (C2 coalesced the segments into super-frames).
 * And SNAT: iperf3 VM2 -> the upstream host through SNAT on NN (VXLAN C2 -> NN, conntrack with
 * NAT, out of br-ex), captured on the upstream's interface: every TCP frame from the SNAT
 * address is right (complete frames: tshark finds no bad checksum and an independent check
 * agrees; super-frames: their partial checksum is exactly the pseudo-header sum of the NATed
 * addresses, i.e. NAT patched it in its form), and super-frames do arrive (NN tracked and
 * NATed them whole). VM1's floating-IP run is measured beside it and both figures printed.
 *
 * Root, `ip netns`, the native addon, iperf3, tcpdump and tshark; skipped with the reason
 * otherwise. Uses the lab's `fl-` names with a private state dir; waits while another test
 * holds `fl-` namespaces; the SNAT test runs on the reference lab the VXLAN test left up (when
 * it passed; else it brings its own up); `down` runs in `after`, also on failure.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_TOPOLOGY, up, down } from '../../src/lab/lab';
import { nodeNs, UP_NS, vmNs } from '../../src/lab/lab-state';
import { iperfTcp } from '../../src/lab/lab-bench';
import { labSkipReason, waitLabFree } from '../helpers/lab-guard';
import { capturesReady, startCapture, stopCapture } from '../../src/lab/lab-check';
import { readPcap } from '../../src/netdev/pcap-file';
import { sum16 } from '../helpers/sum16';

const skip = labSkipReason(['iperf3', 'tcpdump', 'tshark']);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-tunnel-gso-'));
const GRE_TOPOLOGY = path.join(path.dirname(DEFAULT_TOPOLOGY), 'reference-gre.yaml');
/** VM MTU per tunnel type (Neutron: 1500 minus the overhead: VXLAN 50, GRE with key 42). */
const VM_MTU = { VXLAN: 1450, GRE: 1458 };

after(async () => {
  await down(dir);
  fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * The topology a test that passed left up ('' when none): the next test on the same topology
 * uses that lab instead of bringing it up again (VXLAN and SNAT share reference.yaml's).
 */
let leftUp = '';

/** The lab of `topology` is up (its lab-up pings all answered), for one test. */
async function labOn(topology: string): Promise<void> {
  const reuse = leftUp === topology;
  leftUp = '';
  if (reuse) return;
  await down(dir);
  await waitLabFree();
  const { pings } = await up(topology, dir, () => undefined);
  for (const p of pings) assert.equal(p.received, p.sent, `${p.from} -> ${p.to}: ${p.received}/${p.sent}`);
}

interface Walk { outer: number; multi: number; segments: number; badIp: number; badTcp: number; overMtu: number }

/** Inner frame at b[o, end): checks one IPv4 TCP segment; returns its length or 0. */
function checkInner(b: Uint8Array, o: number, end: number, w: Walk, mtu: number): number {
  if (o + 34 > end || b[o + 12] !== 0x08 || b[o + 13] !== 0x00) return 0;
  const ip = o + 14;
  const tot = (b[ip + 2] << 8) | b[ip + 3];
  if (ip + tot > end) return 0;
  if (b[ip + 9] === 6) {
    w.segments++;
    if (sum16(b, ip, 20) !== 0xffff) w.badIp++;
    const l4 = ip + ((b[ip] & 15) << 2);
    const l4Len = tot - (l4 - ip);
    if (sum16(b, l4, l4Len, sum16(b, ip + 12, 8) + 6 + l4Len) !== 0xffff) w.badTcp++;
    if (tot > mtu) w.overMtu++;
  }
  return 14 + tot;
}

/** Walks every tunnel frame of a capture, every VXLAN datagram packed in it, every inner segment. */
async function walkUnderlay(file: string, mtu: number): Promise<Walk> {
  const w: Walk = { outer: 0, multi: 0, segments: 0, badIp: 0, badTcp: 0, overMtu: 0 };
  for (const r of (await readPcap(file)).records) {
    const b = r.data;
    if (b.length < 42 || b[12] !== 0x08 || b[13] !== 0x00) continue;
    const ip = 14;
    const end = Math.min(b.length, ip + ((b[ip + 2] << 8) | b[ip + 3]));
    if (b[ip + 9] === 17 && ((b[36] << 8) | b[37]) === 4789) {
      w.outer++;
      let o = 42;
      let n = 0;
      while (o + 8 + 14 <= end) {
        const len = checkInner(b, o + 8, end, w, mtu);
        if (len === 0) break;
        o += 8 + len;
        n++;
      }
      if (n > 1) w.multi++;
    } else if (b[ip + 9] === 47) {
      w.outer++;
      checkInner(b, 42, end, w, mtu);                      // GRE with key: 4 + 4 bytes
    }
  }
  return w;
}

/**
 * tshark's checksum validation, without its TCP sequence analysis and reassembly: those take
 * minutes on a 100k-segment capture and say nothing about checksums.
 */
const TSHARK_CHECKSUM_PREFS = ['-o', 'tcp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE',
  '-o', 'tcp.analyze_sequence_numbers:FALSE', '-o', 'tcp.desegment_tcp_streams:FALSE'];

/**
 * tshark with checksum validation: the number of inner TCP segments and of bad checksums, and
 * for each bad frame a line naming it (number, length, addresses, which checksum), for the
 * failure message.
 */
function tsharkCheck(file: string): { tcp: number; bad: number; out: string } {
  const lines = (filter: string, fields: string[]): string[] => {
    const r = spawnSync('tshark', ['-n', '-r', file, ...TSHARK_CHECKSUM_PREFS, '-Y', filter, '-T', 'fields',
      ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8' });
    return r.stdout.split('\n').filter((l) => l.trim() !== '');
  };
  // ICMP errors quote a truncated packet (its inner TCP checksum cannot verify): not data frames.
  const bad = lines('!icmp && (tcp.checksum.status == "Bad" || ip.checksum.status == "Bad")',
    ['frame.number', 'frame.len', 'frame.cap_len', 'ip.src', 'ip.dst', 'ip.len', 'ip.flags', 'ip.frag_offset',
      'ip.checksum.status', 'tcp.len', 'tcp.flags', 'tcp.checksum.status']);
  return { tcp: lines('tcp', ['frame.number']).length, bad: bad.length, out: bad.slice(0, 10).join('\n') };
}

async function maxFrameLen(file: string): Promise<number> {
  let m = 0;
  for (const r of (await readPcap(file)).records) m = Math.max(m, r.origLen);
  return m;
}

function gsoTest(kind: 'VXLAN' | 'GRE', topology: string): void {
  test(`iperf3 VM1 -> VM2 across ${kind} with default offloads: complete inner segments on the underlay, super-frames to the VM`,
    { skip, timeout: 900000 }, async () => {
      await labOn(topology);
      const ul = startCapture(nodeNs('C2'), 'eth1', path.join(dir, `${kind}-ul.pcap`));
      const vm = startCapture(nodeNs('C2'), 'vm2-host', path.join(dir, `${kind}-vm.pcap`));
      await capturesReady([ul, vm]);
      const r = await iperfTcp(vmNs('VM1'), vmNs('VM2'), '10.0.2.20', 2, false);
      await stopCapture(ul);
      await stopCapture(vm);
      console.log(`${kind}: iperf3 ${(r.bps / 1e9).toFixed(3)} Gbit/s, ${r.retransmits} retransmits`);
      assert.equal(r.error, '');
      assert.ok(r.bps > 0, 'throughput > 0');
      const w = await walkUnderlay(ul.file, VM_MTU[kind]);
      console.log(`${kind} underlay: ${w.outer} outer frames (${w.multi} carrying several datagrams), ${w.segments} inner TCP segments`);
      assert.ok(w.segments > 1000, `inner TCP segments seen on the underlay: ${w.segments}`);
      assert.equal(w.badIp, 0, 'inner IPv4 header checksums');
      assert.equal(w.badTcp, 0, 'inner TCP checksums');
      assert.equal(w.overMtu, 0, 'inner segments within the VM MTU');
      if (kind === 'VXLAN') assert.ok(w.multi > 0, 'UDP GSO frames (several VXLAN datagrams in one outer frame) on the underlay');
      const ts = tsharkCheck(ul.file);
      assert.ok(ts.tcp > 0, 'tshark decodes inner TCP');
      if (ts.bad > 0) fs.copyFileSync(ul.file, path.join(os.tmpdir(), `flowd-tunnel-gso-bad-${kind}-${process.pid}.pcap`));
      assert.equal(ts.bad, 0, `tshark: no bad inner checksum (capture kept in ${os.tmpdir()}); bad frames ` +
        `(number, len, cap_len, ip src, dst, len, flags, frag offset, ip checksum, tcp len, flags, tcp checksum):\n${ts.out}`);
      const big = await maxFrameLen(vm.file);
      assert.ok(big > 1514 + 4, `super-frames delivered to VM2 (largest frame ${big} bytes)`);
      leftUp = topology;
    });
}

/** One frame the upstream check found wrong: which check, its record number, lengths and checksum. */
interface BadFrame { n: number; why: 'ip header' | 'partial sum' | 'checksum'; tot: number; field: number; want: number }

/** What the upstream check saw: frames checked, checksum-partial ones (and of those, the ones
 * above the MTU), and the record numbers (1-based, as tshark counts) of the partial ones. */
interface UpstreamWalk { frames: number; partial: number; supers: number; partialNos: Set<number>; bad: BadFrame[] }

/**
 * The checksum check of one upstream capture: TCP frames from `srcIp` (IPv4, no VLAN). A frame
 * verifies, or leaves its checksum to the receiver: then the field holds exactly the
 * pseudo-header sum of the NATed addresses (NAT patched it in its partial form). A frame above
 * the MTU must be partial. A partial frame within the MTU is what merging short segments gives
 * (NN's coalesce, like Linux GRO, joins segments up to the first one's size: two 700-byte
 * segments make a 1452-byte frame with gso_size 700).
 */
async function walkUpstream(file: string, srcIp: number[]): Promise<UpstreamWalk> {
  const r: UpstreamWalk = { frames: 0, partial: 0, supers: 0, partialNos: new Set(), bad: [] };
  let n = 0;
  for (const rec of (await readPcap(file)).records) {
    n++;
    const b = rec.data;
    if (b.length < 54 || b[12] !== 0x08 || b[13] !== 0x00 || b[23] !== 6) continue;
    if (b[26] !== srcIp[0] || b[27] !== srcIp[1] || b[28] !== srcIp[2] || b[29] !== srcIp[3]) continue;
    const ip = 14;
    const tot = (b[ip + 2] << 8) | b[ip + 3];
    if (rec.origLen !== b.length || ip + tot > b.length) continue;   // snapped: not checkable
    r.frames++;
    const l4 = ip + ((b[ip] & 15) << 2);
    const l4Len = tot - (l4 - ip);
    const pseudo = sum16(b, ip + 12, 8) + 6 + l4Len;
    let p = pseudo;
    while (p > 0xffff) p = (p & 0xffff) + (p >>> 16);
    const field = (b[l4 + 16] << 8) | b[l4 + 17];
    if (sum16(b, ip, 20) !== 0xffff) {
      r.bad.push({ n, why: 'ip header', tot, field: (b[ip + 10] << 8) | b[ip + 11], want: 0 });
    } else if (tot <= 1500 && sum16(b, l4, l4Len, pseudo) === 0xffff) {
      // complete and right
    } else if (field === p) {
      r.partial++;
      r.partialNos.add(n);
      if (tot > 1500) r.supers++;
    } else {
      r.bad.push({ n, why: tot > 1500 ? 'partial sum' : 'checksum', tot, field, want: p });
    }
  }
  return r;
}

// VXLAN, then SNAT on the lab it leaves up, then GRE.
gsoTest('VXLAN', DEFAULT_TOPOLOGY);

test('iperf3 VM2 -> upstream through SNAT on NN: NAT on super-frames and merged short segments, no bad checksum on the upstream wire; floating IP beside it',
  { skip, timeout: 900000 }, async () => {
    await labOn(DEFAULT_TOPOLOGY);
    const cap = startCapture(UP_NS, 'eth0', path.join(dir, 'snat-up.pcap'));
    await capturesReady([cap]);
    const snat = await iperfTcp(vmNs('VM2'), UP_NS, '203.0.113.1', 2, false);
    // 700-byte writes without Nagle: short segments, which NN merges when a batch holds several.
    const short = await iperfTcp(vmNs('VM2'), UP_NS, '203.0.113.1', 1, false, 0, undefined, ['-l', '700', '-N']);
    await stopCapture(cap);
    const fip = await iperfTcp(vmNs('VM1'), UP_NS, '203.0.113.1', 2, false);
    console.log(`SNAT (VM2 via NN) ${(snat.bps / 1e9).toFixed(3)} Gbit/s, floating IP (VM1 via C1) ${(fip.bps / 1e9).toFixed(3)} Gbit/s, ` +
      `ratio ${(snat.bps / fip.bps).toFixed(2)}`);
    assert.equal(snat.error, '');
    assert.equal(short.error, '');
    assert.equal(fip.error, '');
    const w = await walkUpstream(cap.file, [203, 0, 113, 10]);
    console.log(`upstream wire: ${w.frames} TCP frames from the SNAT address, ${w.partial} checksum-partial ` +
      `(${w.supers} super-frames, ${w.partial - w.supers} merged within the MTU)`);
    assert.ok(w.frames > 100, `TCP frames from the SNAT address: ${w.frames}`);
    assert.ok(w.supers > 0, 'super-frames went through conntrack/NAT whole');
    if (w.bad.length > 0) fs.copyFileSync(cap.file, path.join(os.tmpdir(), `flowd-tunnel-gso-bad-snat-${process.pid}.pcap`));
    assert.deepEqual(w.bad, [], 'no bad checksum (complete frames verify, partial ones carry the NATed pseudo-header sum; ' +
      `capture kept in ${os.tmpdir()})`);
    // tshark, independently: every frame from the SNAT address it finds bad is one the walk found partial.
    const r = spawnSync('tshark', ['-n', '-r', cap.file, ...TSHARK_CHECKSUM_PREFS,
      '-Y', 'ip.src == 203.0.113.10 && (tcp.checksum.status == "Bad" || ip.checksum.status == "Bad")',
      '-T', 'fields', '-e', 'frame.number'], { encoding: 'utf8' });
    const tsBad = r.stdout.split('\n').filter((l) => l.trim() !== '').map(Number);
    assert.ok(tsBad.length > 0, 'tshark decodes the capture and sees the partial frames');
    assert.deepEqual(tsBad.filter((no) => !w.partialNos.has(no)), [],
      'tshark: no bad checksum on frames from the SNAT address but the checksum-partial ones');
  });

gsoTest('GRE', GRE_TOPOLOGY);
