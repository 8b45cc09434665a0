/**
 * flowd between two namespaces over veth, with the interfaces' default offloads (TSO, checksum
 * offload: GSO super-frames and partial checksums cross flowd through PACKET_VNET_HDR):
 * ping with 0 % loss, an iperf3 TCP run with throughput > 0, dump-ports counters that match the
 * kernel's, and dump-flows n_packets that grow with the traffic.
 *
 *   fi-a: fi-a0 10.71.0.1 ── fi-a1 ┐
 *                                  ├ fi-sw: flowd br0 (fi-a1 = 1, fi-b1 = 2)
 *   fi-b: fi-b0 10.71.0.2 ── fi-b1 ┘
 *
 * Root, `ip netns`, iperf3; skipped with the reason otherwise. Prefix fi-.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, FlowdDaemon, labSkipReason, parsePing, iperfBps, sleepMs } from '../helpers/netlab';
import { waitTcpListener } from '../../src/lab/shell';

const skip = labSkipReason(['iperf3', 'ping']);
const lab = new Lab('fi-');
let d: FlowdDaemon;
let nsA = '';
let nsB = '';
let nsSw = '';

const CONFIG = `
node: fi
bridges:
  - name: br0
    ports:
      - { name: fi-a1, ofport: 1 }
      - { name: fi-b1, ofport: 2 }
    flows:
      - "priority=10,in_port=1,actions=output:2"
      - "priority=10,in_port=2,actions=output:1"
`;

before(async () => {
  if (skip) return;
  nsA = lab.addNs('a');
  nsB = lab.addNs('b');
  nsSw = lab.addNs('sw');
  lab.veth('a0', nsA, 'a1', nsSw, { ipA: '10.71.0.1/24' });
  lab.veth('b0', nsB, 'b1', nsSw, { ipA: '10.71.0.2/24' });
  d = await lab.startFlowd(nsSw, 'fi', CONFIG);
});

after(async () => {
  await lab.cleanup();
});

interface PortRow { port: string; rx_pkts: number; tx_pkts: number; rx_drop: number; tx_drop: number }

async function ports(): Promise<Map<string, PortRow>> {
  const rows = await d.request('dump-ports', { bridge: 'br0', format: 'json' }) as unknown as PortRow[];
  return new Map(rows.map((r) => [r.port, r]));
}

async function flowPackets(): Promise<number[]> {
  const rows = await d.request('dump-flows', { bridge: 'br0', format: 'json' }) as unknown as { priority: number; n_packets: number }[];
  return rows.filter((r) => r.priority === 10).map((r) => r.n_packets);
}

test('ping through flowd over veth: 0% loss, dump-ports and dump-flows count it', { skip }, async () => {
  const flows0 = await flowPackets();
  const p0 = await ports();
  const kRx0 = lab.counter(nsSw, 'fi-a1', 'rx_packets');
  const kTx0 = lab.counter(nsSw, 'fi-b1', 'tx_packets');
  // -w: wait for every reply (a busy machine may send the last one later than -W's 2 x RTT), at most the deadline.
  const r = lab.run(nsA, 'ping', '-c', '20', '-i', '0.05', '-w', '30', '10.71.0.2');
  const p = parsePing(r.stdout);
  console.log(`veth ping: ${p.received}/${p.sent}, avg RTT ${p.avgRttMs} ms`);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal(p.lossPct, 0);
  await sleepMs(100);
  const p1 = await ports();
  const kRx1 = lab.counter(nsSw, 'fi-a1', 'rx_packets');
  const kTx1 = lab.counter(nsSw, 'fi-b1', 'tx_packets');
  const a = p1.get('fi-a1') as PortRow;
  const b = p1.get('fi-b1') as PortRow;
  const aRx = a.rx_pkts - (p0.get('fi-a1') as PortRow).rx_pkts;
  const bTx = b.tx_pkts - (p0.get('fi-b1') as PortRow).tx_pkts;
  // 20 echo requests (+ maybe ARP) came in on port 1 and left on port 2; flowd's counters
  // agree with the kernel's on the switch-side veth ends.
  assert.ok(aRx >= 20, `rx on fi-a1 ${aRx}`);
  assert.equal(aRx, kRx1 - kRx0, 'flowd rx on fi-a1 == kernel rx_packets of fi-a1');
  assert.equal(bTx, kTx1 - kTx0, 'flowd tx on fi-b1 == kernel tx_packets of fi-b1');
  assert.equal(aRx, bTx, 'every frame in on 1 went out on 2');
  assert.equal(a.rx_drop + b.tx_drop, 0);
  const flows1 = await flowPackets();
  assert.equal(flows1.length, 2);
  assert.ok(flows1[0] - flows0[0] >= 20 && flows1[1] - flows0[1] >= 20, `n_packets ${flows0} -> ${flows1}`);
});

test('iperf3 TCP through flowd over veth with default offloads moves data', { skip }, async () => {
  const srv = lab.spawnIn(nsB, 'iperf3', ['-s', '-1', '-p', '5271']);
  await waitTcpListener(nsB, 5271);
  const flows0 = await flowPackets();
  const r = await lab.runAsync(nsA, 'iperf3', ['-c', '10.71.0.2', '-p', '5271', '-t', '3', '--json', '--connect-timeout', '3000'], 20000);
  await lab.stopChild(srv);
  const bps = iperfBps(r.stdout);
  console.log(`veth iperf3 TCP: ${(bps / 1e9).toFixed(3)} Gbit/s`);
  assert.equal(r.status, 0, r.stderr + r.stdout.slice(0, 2000));
  // Data moved: the server got more than 1 MB (3 s of TCP; the rate itself is bench:io's).
  const got = (JSON.parse(r.stdout) as { end: { sum_received: { bytes: number } } }).end.sum_received.bytes;
  assert.ok(got > 1_000_000, `only ${got} bytes received (${bps} bit/s)`);
  const flows1 = await flowPackets();
  assert.ok(flows1[0] > flows0[0] && flows1[1] > flows0[1], `n_packets ${flows0} -> ${flows1}`);
  const p = await ports();
  assert.ok((p.get('fi-a1') as PortRow).rx_pkts > 1000);
  assert.ok(d.running, 'daemon still up');
});
