/**
 * A `type: tap` port: flowd creates the TAP in its own namespace and keeps the fd; the test
 * moves the TAP into an endpoint namespace (`ip link set NAME netns X` works while the fd is
 * held: the queue follows the device) and pings a veth endpoint through flowd; then an iperf3
 * TCP run (TSO super-frames from the TAP side arrive through IFF_VNET_HDR).
 *
 *   ft-t: ft-tap 10.72.0.1 (flowd's TAP, moved here) ┐
 *                                                    ├ ft-sw: flowd br0 (ft-tap = 1, ft-b1 = 2)
 *   ft-b: ft-b0 10.72.0.2 ──────────────── ft-b1 ────┘
 *
 * Root, `ip netns`; skipped with the reason otherwise. Prefix ft-.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, FlowdDaemon, labSkipReason, parsePing, iperfBps } from '../helpers/netlab';
import { waitTcpListener } from '../../src/lab/shell';

const skip = labSkipReason(['ping']);
const lab = new Lab('ft-');
let d: FlowdDaemon;
let nsT = '';
let nsB = '';
let nsSw = '';

const CONFIG = `
bridges:
  - name: br0
    ports:
      - { name: ft-tap, ofport: 1, type: tap }
      - { name: ft-b1, ofport: 2 }
`;

before(async () => {
  if (skip) return;
  nsT = lab.addNs('t');
  nsB = lab.addNs('b');
  nsSw = lab.addNs('sw');
  lab.veth('b0', nsB, 'b1', nsSw, { ipA: '10.72.0.2/24' });
  d = await lab.startFlowd(nsSw, 'ft', CONFIG);
  lab.exec(nsSw, 'ip', 'link', 'set', 'ft-tap', 'netns', nsT);
  lab.exec(nsT, 'ip', 'addr', 'add', '10.72.0.1/24', 'dev', 'ft-tap');
  lab.exec(nsT, 'ip', 'link', 'set', 'ft-tap', 'up');
});

after(async () => {
  await lab.cleanup();
});

test('ping from a namespace whose interface is flowd\'s TAP reaches a veth endpoint', { skip }, async () => {
  // -w: wait for every reply (a busy machine may send the last one later than -W's 2 x RTT), at most the deadline.
  const r = lab.run(nsT, 'ping', '-c', '10', '-i', '0.05', '-w', '30', '10.72.0.2');
  const p = parsePing(r.stdout);
  console.log(`tap ping: ${p.received}/${p.sent}, avg RTT ${p.avgRttMs} ms`);
  assert.equal(r.status, 0, r.stdout + r.stderr + d.log());
  assert.equal(p.lossPct, 0);
  const rows = await d.request('dump-ports', { bridge: 'br0', format: 'json' }) as unknown as { port: string; rx_pkts: number; tx_pkts: number }[];
  const tap = rows.find((x) => x.port === 'ft-tap');
  assert.ok(tap !== undefined && tap.rx_pkts >= 10 && tap.tx_pkts >= 10, JSON.stringify(rows));
});

test('iperf3 TCP from the TAP namespace through flowd', { skip: skip || labSkipReason(['iperf3']) }, async () => {
  const portRow = async (): Promise<{ port: string; rx_bytes: number }> => {
    const rows = await d.request('dump-ports', { bridge: 'br0', format: 'json' }) as unknown as { port: string; rx_bytes: number }[];
    return rows.find((x) => x.port === 'ft-tap') as { port: string; rx_bytes: number };
  };
  const before = await portRow();
  const srv = lab.spawnIn(nsB, 'iperf3', ['-s', '-1', '-p', '5272']);
  await waitTcpListener(nsB, 5272);
  const r = await lab.runAsync(nsT, 'iperf3', ['-c', '10.72.0.2', '-p', '5272', '-t', '2', '--json', '--connect-timeout', '3000'], 20000);
  await lab.stopChild(srv);
  const bps = iperfBps(r.stdout);
  console.log(`tap iperf3 TCP: ${(bps / 1e9).toFixed(3)} Gbit/s`);
  assert.equal(r.status, 0, r.stderr + r.stdout.slice(0, 2000));
  // What the server received crossed flowd's TAP port: its rx byte counter grew by at least
  // the TCP payload the server got (headers come on top). (The sender's count can be higher:
  // bytes still in flight when the test stops.)
  const end = (JSON.parse(r.stdout) as { end: { sum_received: { bytes: number } } }).end;
  assert.ok(end.sum_received.bytes > 1_000_000, `only ${end.sum_received.bytes} bytes received`);
  const after = await portRow();
  assert.ok(after.rx_bytes - before.rx_bytes >= end.sum_received.bytes,
    `tap rx_bytes +${after.rx_bytes - before.rx_bytes} < ${end.sum_received.bytes} received`);
  assert.ok(d.running);
});
