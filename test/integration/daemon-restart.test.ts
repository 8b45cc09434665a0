/**
 * A node's flowd killed with SIGKILL and started again, as systemd restarts it in the Vagrant
 * lab: the new daemon starts despite the stale control socket and pid file the dead one left,
 * traffic resumes, and the time from the restart to the first forwarded frame is measured
 * (printed). A second daemon started while one runs refuses to start (exit 2, clear message)
 * and the running one keeps forwarding. The running daemon's Prometheus endpoint
 * (--metrics-listen) is scraped from inside its namespace and agrees with dump-ports.
 *
 *   rs-a: rs-a0 10.76.0.1 ── rs-a1 ┐
 *                                  ├ rs-sw: flowd br0 (rs-a1 = 1, rs-b1 = 2), NORMAL
 *   rs-b: rs-b0 10.76.0.2 ── rs-b1 ┘
 *
 * Root, `ip netns`, ping; skipped with the reason otherwise. Prefix rs-.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Lab, FlowdDaemon, labSkipReason, runAsync, sleepMs, FLOWD_JS } from '../helpers/netlab';
import { waitFor } from '../helpers/wait';

const skip = labSkipReason(['ping']);
const lab = new Lab('rs-');
const METRICS = '127.0.0.1:19477';
const CONFIG = `
bridges:
  - name: br0
    ports:
      - { name: rs-a1, ofport: 1 }
      - { name: rs-b1, ofport: 2 }
`;
let nsA = '';
let nsSw = '';

before(() => {
  if (skip) return;
  nsA = lab.addNs('a');
  const nsB = lab.addNs('b');
  nsSw = lab.addNs('sw');
  lab.veth('a0', nsA, 'a1', nsSw, { ipA: '10.76.0.1/24', macA: '02:76:00:00:00:01' });
  lab.veth('b0', nsB, 'b1', nsSw, { ipA: '10.76.0.2/24', macA: '02:76:00:00:00:02' });
});

after(async () => {
  await lab.cleanup();
});

/** `ping -D` reply lines: [epoch seconds] ... icmp_seq=N ... -> epoch ms of each reply. */
function replyTimesMs(out: string): number[] {
  const ts: number[] = [];
  for (const m of out.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from .* icmp_seq=\d+/gm)) ts.push(Number(m[1]) * 1000);
  return ts;
}

test('SIGKILL and restart: stale socket and pid file, traffic resumes; the time to the first forwarded frame', { skip, timeout: 60000 }, async () => {
  let d: FlowdDaemon = await lab.startFlowd(nsSw, 'rs', CONFIG, 15000, ['--metrics-listen', METRICS]);
  assert.equal(lab.run(nsA, 'ping', '-c', '2', '-i', '0.1', '-W', '2', '10.76.0.2').status, 0, 'pings before the kill');
  // ping every 10 ms from before the kill until 50 replies came after the restart (a fixed
  // window would state how fast this machine restarts a daemon); -D stamps each reply.
  const pingOut = lab.file('ping.out', '');
  const pinger = lab.spawnIn(nsA, 'ping', ['-D', '-i', '0.01', '-w', '60', '10.76.0.2'], pingOut);
  await waitFor('ping replies before the kill', () => replyTimesMs(fs.readFileSync(pingOut, 'utf8')).length >= 20);
  const oldPid = d.pid;
  process.kill(oldPid, 'SIGKILL');
  for (let k = 0; k < 100 && d.running; k++) await sleepMs(20);
  assert.equal(d.exitSignal, 'SIGKILL');
  assert.ok(fs.existsSync(d.socket), 'the dead daemon left its socket file');
  assert.equal(fs.readFileSync(d.pidFile, 'utf8').trim(), String(oldPid), 'and its pid file');
  await sleepMs(500);
  const tSpawnMs = Date.now();
  d = await lab.startFlowd(nsSw, 'rs', CONFIG, 15000, ['--metrics-listen', METRICS]);
  const tAnswerMs = Date.now();
  const repliesAfter = (): number[] => replyTimesMs(fs.readFileSync(pingOut, 'utf8')).filter((t) => t > tSpawnMs);
  await waitFor('50 ping replies after the restart', () => repliesAfter().length > 50,
    { detail: () => fs.readFileSync(pingOut, 'utf8').slice(-400) });
  await lab.stopChild(pinger, 'SIGINT');
  const after = repliesAfter();
  const firstMs = after[0] - tSpawnMs;
  const logLine = d.log().split('\n').find((l) => l.includes('"started"')) ?? '';
  const startMs = Number(/"start_ms":(\d+)/.exec(logLine)?.[1] ?? NaN);
  console.log(`restart after SIGKILL: first forwarded frame ${firstMs.toFixed(0)} ms after the new flowd was spawned ` +
    `(control socket answering after ${tAnswerMs - tSpawnMs} ms; the daemon's own start ${startMs} ms; ping every 10 ms)`);
  assert.match(d.log(), /"stale_pid_file"/);
  assert.equal(fs.readFileSync(d.pidFile, 'utf8').trim(), String(d.pid));
  assert.ok(d.running);
});

test('a second flowd for the same socket and pid file refuses to start; the first keeps forwarding', { skip, timeout: 30000 }, async () => {
  const d = (await lab.startFlowd(nsSw, 'rs2', CONFIG)) as FlowdDaemon;
  const r = await runAsync('ip', ['netns', 'exec', nsSw, process.execPath, FLOWD_JS, '--config', lab.file('rs2b.yaml', CONFIG),
    '--socket', d.socket, '--pid-file', d.pidFile], 15000);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`^flowd: ${d.pidFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: flowd is already running as pid ${d.pid}\\n$`));
  assert.ok(d.running);
  assert.equal(fs.readFileSync(d.pidFile, 'utf8').trim(), String(d.pid));
  assert.equal(lab.run(nsA, 'ping', '-c', '3', '-i', '0.1', '-W', '2', '10.76.0.2').status, 0);
  await d.stop();
});

test('--metrics-listen: a scrape inside the namespace matches dump-ports', { skip, timeout: 30000 }, async () => {
  // The daemon of the first test still runs (tag rs) with its endpoint on the namespace's loopback.
  const scrape = `require('http').get('http://${METRICS}/metrics', (r) => { let b = ''; r.on('data', (c) => b += c); r.on('end', () => process.stdout.write(b)); })`;
  const ports = JSON.parse(String(lab.run(nsSw, process.execPath, FLOWD_JS.replace('flowd.js', 'flowctl.js'), '--socket',
    `${lab.dir}/rs.sock`, '--format', 'json', 'dump-ports', 'br0').stdout)) as { port: string; rx_pkts: number; tx_pkts: number }[];
  const r = await runAsync('ip', ['netns', 'exec', nsSw, process.execPath, '-e', scrape], 10000);
  assert.equal(r.status, 0, r.stderr);
  for (const p of ports) {
    const m = new RegExp(`^flowd_port_rx_packets_total\\{bridge="br0",port="${p.port}"\\} (\\d+)$`, 'm').exec(r.stdout);
    assert.ok(m !== null, `no rx sample for ${p.port}:\n${r.stdout}`);
    assert.ok(Number(m[1]) >= p.rx_pkts, `${p.port}: scrape ${m[1]} >= dump-ports ${p.rx_pkts}`);
  }
  assert.match(r.stdout, /^flowd_upcalls_lost_total 0$/m);
  assert.match(r.stdout, /^# TYPE flowd_drops_total counter$/m);
});
