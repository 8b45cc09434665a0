/**
 * VXLAN interop with the Linux kernel's vxlan device, both ways, and the first ping over a
 * fresh tunnel (no ARP entry for the remote anywhere: flowd's underlay queues the frame while
 * it ARPs, it does not drop it).
 *
 *   fx-vm: fx-v0 10.73.0.1 ── fx-v1 ┐
 *                                   ├ fx-n: flowd br0 (fx-v1 = 1, vxlan fx-vxp = 2, key=flow)
 *               underlay fx-u1 10.73.1.1 (local_ip)
 *                                   │
 *   fx-k: fx-k0 10.73.1.2 ── kernel vxlan fx-vx (VNI 1001, remote 10.73.1.1, dstport 4789,
 *         nolearning) 10.73.0.2
 *
 * Flows: in_port=1 -> set_tunnel:1001,output:2; in_port=2,tun_id=1001 -> output:1.
 * The underlay is captured with tcpdump in fx-k and read back with tshark: flowd's packets carry
 * VNI 1001, UDP destination 4789 and a source port in 32768..61000 (the kernel's default
 * ephemeral range, which OVS and the kernel use for the flow-hash source port).
 *
 * Last, a too-big DF ping: flowd's underlay answers with ICMP fragmentation needed (MTU 1450)
 * and the sender's kernel takes it (ping reports it, the route cache holds mtu 1450).
 *
 * Root, `ip netns`, tcpdump and tshark; skipped with the reason otherwise. Prefix fx-.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ChildProcess } from 'node:child_process';
import { Lab, FlowdDaemon, labSkipReason, parsePing, sleepMs, sh } from '../helpers/netlab';
import { waitForText } from '../helpers/wait';

const skip = labSkipReason(['ping', 'tcpdump', 'tshark']);
const lab = new Lab('fx-');
let d: FlowdDaemon;
let nsVm = '';
let nsN = '';
let nsK = '';
let cap: ChildProcess;
let capFile = '';

const CONFIG = `
node: fx
bridges:
  - name: br0
    ports:
      - { name: fx-v1, ofport: 1 }
      - { name: fx-vxp, ofport: 2, type: vxlan, remote_ip: 10.73.1.2, local_ip: 10.73.1.1, key: flow }
    flows:
      - "priority=10,in_port=1,actions=set_tunnel:1001,output:2"
      - "priority=10,in_port=2,tun_id=1001,actions=output:1"
`;

before(async () => {
  if (skip) return;
  nsVm = lab.addNs('vm');
  nsN = lab.addNs('n');
  nsK = lab.addNs('k');
  lab.veth('v0', nsVm, 'v1', nsN, { ipA: '10.73.0.1/24' });
  lab.veth('u1', nsN, 'k0', nsK, { ipA: '10.73.1.1/24', ipB: '10.73.1.2/24' });
  lab.exec(nsK, 'ip', 'link', 'add', 'fx-vx', 'type', 'vxlan', 'id', '1001', 'remote', '10.73.1.1',
    'local', '10.73.1.2', 'dstport', '4789', 'nolearning', 'dev', 'fx-k0');
  lab.exec(nsK, 'ip', 'addr', 'add', '10.73.0.2/24', 'dev', 'fx-vx');
  lab.exec(nsK, 'ip', 'link', 'set', 'fx-vx', 'up');
  // A fresh tunnel: nobody knows anybody's MAC yet.
  for (const ns of [nsVm, nsN, nsK]) lab.exec(ns, 'ip', 'neigh', 'flush', 'all');
  capFile = path.join(lab.dir, 'underlay.pcap');
  cap = lab.spawnIn(nsK, 'tcpdump', ['-i', 'fx-k0', '-n', '-U', '--immediate-mode', '-w', capFile, 'udp port 4789'], path.join(lab.dir, 'tcpdump.log'));
  d = await lab.startFlowd(nsN, 'fx', CONFIG);
  await waitForText('tcpdump capturing on fx-k0', path.join(lab.dir, 'tcpdump.log'), 'listening on');
});

after(async () => {
  await lab.cleanup(process.env.KEEP_LAB === "1");
});

test('the first ping over a fresh VXLAN tunnel is answered (next hop resolved while the frame waits)', { skip }, () => {
  assert.equal(lab.exec(nsN, 'ip', 'neigh', 'show', '10.73.1.2').trim(), '', 'no neighbour entry for the remote yet');
  const r = lab.run(nsVm, 'ping', '-c', '1', '-W', '2', '10.73.0.2');
  assert.equal(r.status, 0, `first ping lost:\n${r.stdout}${r.stderr}\n${d.log()}`);
});

test('ping from the flowd side to the kernel vxlan device', { skip }, () => {
  // -w: wait for every reply (a busy machine may send the last one later than -W's 2 x RTT), at most the deadline.
  const r = lab.run(nsVm, 'ping', '-c', '10', '-i', '0.05', '-w', '30', '10.73.0.2');
  const p = parsePing(r.stdout);
  console.log(`vxlan flowd->kernel ping: ${p.received}/${p.sent}, avg RTT ${p.avgRttMs} ms`);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal(p.lossPct, 0);
});

test('ping from the kernel vxlan device to the flowd side', { skip }, () => {
  const r = lab.run(nsK, 'ping', '-c', '10', '-i', '0.05', '-w', '30', '10.73.0.1');
  const p = parsePing(r.stdout);
  console.log(`vxlan kernel->flowd ping: ${p.received}/${p.sent}, avg RTT ${p.avgRttMs} ms`);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal(p.lossPct, 0);
});

test('on the wire: VNI 1001, UDP dst 4789, outer source port in 32768..61000', { skip }, async () => {
  await sleepMs(300);
  await lab.stopChild(cap, 'SIGINT');
  const out = sh('tshark', '-r', capFile, '-d', 'udp.port==4789,vxlan', '-T', 'fields', '-E', 'separator=,', '-E', 'occurrence=f',
    '-e', 'ip.src', '-e', 'udp.srcport', '-e', 'udp.dstport', '-e', 'vxlan.vni', '-e', 'vxlan.flags');
  const rows = out.trim().split('\n').filter((l) => l !== '').map((l) => l.split(','));
  const fromFlowd = rows.filter((r) => r[0] === '10.73.1.1');
  const fromKernel = rows.filter((r) => r[0] === '10.73.1.2');
  assert.ok(fromFlowd.length >= 20, `flowd sent ${fromFlowd.length} VXLAN packets`);
  assert.ok(fromKernel.length >= 20, `kernel sent ${fromKernel.length} VXLAN packets`);
  const ports = new Set<number>();
  for (const [, sport, dport, vni] of fromFlowd) {
    assert.equal(dport, '4789');
    assert.equal(vni, '1001');
    const s = Number(sport);
    assert.ok(s >= 32768 && s <= 61000, `source port ${s}`);
    ports.add(s);
  }
  for (const [, , dport, vni] of fromKernel) {
    assert.equal(dport, '4789');
    assert.equal(vni, '1001');
  }
  console.log(`vxlan: ${fromFlowd.length} packets from flowd, ${fromKernel.length} from the kernel, flowd source ports ${[...ports].join(' ')}`);
});

test('a too-big DF packet over VXLAN gets ICMP fragmentation needed with next-hop MTU 1450', { skip }, async () => {
  const icmpFile = path.join(lab.dir, 'vm.pcap');
  const vmCap = lab.spawnIn(nsVm, 'tcpdump', ['-i', 'fx-v0', '-n', '-U', '--immediate-mode', '-w', icmpFile, 'icmp'],
    path.join(lab.dir, 'tcpdump-vm.log'));
  await waitForText('tcpdump capturing on fx-v0', path.join(lab.dir, 'tcpdump-vm.log'), 'listening on');
  // 1472 bytes of data + 28 = a 1500-byte IPv4 packet; with 50 bytes of VXLAN it needs 1550 > 1500.
  const big = lab.run(nsVm, 'ping', '-M', 'do', '-s', '1472', '-c', '1', '-W', '2', '10.73.0.2');
  await sleepMs(300);
  await lab.stopChild(vmCap, 'SIGINT');
  assert.notEqual(big.status, 0, 'the big ping cannot be answered');
  assert.match(big.stdout + big.stderr, /Frag needed and DF set \(mtu = 1450\)|mtu ?= ?1450/, big.stdout + big.stderr);
  const rows = sh('tshark', '-r', icmpFile, '-Y', 'icmp.type == 3', '-T', 'fields', '-E', 'separator=,', '-E', 'occurrence=f',
    '-e', 'ip.src', '-e', 'ip.dst', '-e', 'icmp.code', '-e', 'icmp.mtu', '-e', 'icmp.checksum.status', '-e', 'ip.checksum.status')
    .trim().split('\n').filter((l) => l !== '');
  assert.equal(rows.length, 1, rows.join('\n'));
  // From the inner destination to the sender, code 4, MTU 1450, ICMP checksum good (status 1).
  const [src, dst, code, mtu, icmpOk] = rows[0].split(',');
  assert.deepEqual([src, dst, code, mtu], ['10.73.0.2', '10.73.0.1', '4', '1450']);
  assert.equal(icmpOk, '1');
  assert.match(lab.exec(nsVm, 'ip', 'route', 'get', '10.73.0.2'), /mtu 1450/, 'the sender learned the path MTU');
  const fits = lab.run(nsVm, 'ping', '-M', 'do', '-s', '1422', '-c', '1', '-W', '2', '10.73.0.2');
  assert.equal(fits.status, 0, 'a 1450-byte packet fits: ' + fits.stdout);
  const ports = await d.request('dump-ports', { bridge: 'br0', port: 'fx-vxp', format: 'json' }) as unknown as
    { tx_drop: number; tx_drop_reasons: Record<string, number> }[];
  assert.ok(ports[0].tx_drop >= 1, 'the too-big frame is counted as a tx drop on the tunnel port');
  assert.equal(ports[0].tx_drop_reasons.tunnel_too_big, ports[0].tx_drop, 'under its reason');
  console.log(`too big: ${big.stdout.split('\n').find((l) => /mtu/.test(l)) ?? ''}`);
});

interface UnderlayRow { device: string; rx_pkts: number; rx_drop: number; rx_drop_reasons: Record<string, number> }

test('frames the underlay refuses are counted by reason in flowctl stats: bad VXLAN flags, cut headers, unknown tunnel source', { skip }, async () => {
  const underlay = async (): Promise<UnderlayRow> => ((await d.request('stats', { format: 'json' })) as unknown as { underlays: UnderlayRow[] }).underlays[0];
  const u0 = await underlay();
  assert.equal(u0.device, 'fx-u1');
  // From fx-k (the known remote 10.73.1.2): 20 datagrams with the I flag clear, 10 cut to 4 bytes;
  // from a second address of fx-k (no tunnel port has it as remote): 5 well-formed VXLAN frames.
  lab.exec(nsK, 'ip', 'addr', 'add', '10.73.1.3/24', 'dev', 'fx-k0');
  const script = `
const s = require('dgram').createSocket('udp4');
const inner = Buffer.alloc(60, 0); inner.writeUInt16BE(0x0800, 12);
const vx = (flags) => Buffer.concat([Buffer.from([flags, 0, 0, 0, 0, 0x03, 0xe9, 0]), inner]);
const jobs = [];
for (let i = 0; i < 20; i++) jobs.push([vx(0x00), '10.73.1.2']);
for (let i = 0; i < 10; i++) jobs.push([Buffer.from([8, 0, 0, 0]), '10.73.1.2']);
for (let i = 0; i < 5; i++) jobs.push([vx(0x08), '10.73.1.3']);
s.bind(0, '10.73.1.3', () => {
  const s2 = require('dgram').createSocket('udp4');
  s2.bind(0, '10.73.1.2', () => {
    let n = 0;
    for (const [b, from] of jobs) (from === '10.73.1.3' ? s : s2).send(b, 4789, '10.73.1.1', () => { if (++n === jobs.length) { s.close(); s2.close(); } });
  });
});`;
  const r = lab.run(nsK, process.execPath, '-e', script);
  assert.equal(r.status, 0, r.stderr);
  let u1 = await underlay();
  for (let k = 0; k < 20 && u1.rx_drop - u0.rx_drop < 35; k++) { await sleepMs(100); u1 = await underlay(); }
  const delta = (name: string): number => (u1.rx_drop_reasons[name] ?? 0) - (u0.rx_drop_reasons[name] ?? 0);
  assert.deepEqual({ flags: delta('tunnel_bad_vxlan_flags'), cut: delta('tunnel_truncated'), noPort: delta('tunnel_no_port') },
    { flags: 20, cut: 10, noPort: 5 }, JSON.stringify(u1));
  assert.equal(u1.rx_drop - u0.rx_drop, 35);
  const total = Object.values(u1.rx_drop_reasons).reduce((a, b) => a + b, 0);
  assert.equal(total, u1.rx_drop, 'every refused frame has a reason');
  const text = d.flowctl('stats');
  assert.match(text.stdout, /^ {2}underlay fx-u1: rx pkts=\d+, drop=\d+ \(.*tunnel_bad_vxlan_flags=\d+.*\); tx pkts=\d+, drop=\d+/m);
});
