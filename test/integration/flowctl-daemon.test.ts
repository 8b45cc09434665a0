/**
 * flowctl against a running daemon: every command's output and exit code (0 ok, 1 refused,
 * 2 usage, 3 unreachable), and the control socket under abuse: while `ping -i 0.01` runs
 * through the bridge, a client floods garbage lines and flow changes; no ping is lost, every
 * garbage line gets an error reply, and the daemon is still up afterwards. The flow changes
 * include add, mod, del and replace-flows (the bridge made to hold exactly NORMAL + one drop).
 *
 *   fc-a: fc-a0 10.75.0.1 ── fc-a1 ┐
 *                                  ├ fc-sw: flowd br0 (fc-a1 = 1, fc-b1 = 2), default NORMAL
 *   fc-b: fc-b0 10.75.0.2 ── fc-b1 ┘
 *
 * Root, `ip netns`; skipped with the reason otherwise. Prefix fc-.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Lab, FlowdDaemon, labSkipReason, parsePing, FLOWCTL_JS } from '../helpers/netlab';

const skip = labSkipReason(['ping']);
const lab = new Lab('fc-');
let d: FlowdDaemon;
let nsA = '';
let nsSw = '';

const CONFIG = `
bridges:
  - name: br0
    ports:
      - { name: fc-a1, ofport: 1 }
      - { name: fc-b1, ofport: 2 }
`;

before(async () => {
  if (skip) return;
  nsA = lab.addNs('a');
  const nsB = lab.addNs('b');
  nsSw = lab.addNs('sw');
  lab.veth('a0', nsA, 'a1', nsSw, { ipA: '10.75.0.1/24', macA: '02:75:00:00:00:01' });
  lab.veth('b0', nsB, 'b1', nsSw, { ipA: '10.75.0.2/24', macA: '02:75:00:00:00:02' });
  d = await lab.startFlowd(nsSw, 'fc', CONFIG);
  lab.run(nsA, 'ping', '-c', '2', '-i', '0.1', '-W', '2', '10.75.0.2'); // learn MACs, fill caches
});

after(async () => {
  await lab.cleanup();
});

test('show, dump-ports, dump-flows, stats, dump-cache answer with exit code 0', { skip }, () => {
  const show = d.flowctl('show');
  assert.equal(show.status, 0, show.stderr);
  assert.match(show.stdout, /^br0:\n {2}1\(fc-a1\): afpacket dp_port=\d+\n {2}2\(fc-b1\): afpacket dp_port=\d+\n$/);
  const ports = d.flowctl('dump-ports', 'br0');
  assert.equal(ports.status, 0, ports.stderr);
  assert.match(ports.stdout, /^OFPST_PORT reply: 2 ports\n {2}port 1\(fc-a1\): rx pkts=\d+, bytes=\d+, drop=0, errs=0\n/);
  const pj = d.flowctl('--format', 'json', 'dump-ports', 'br0', 'fc-b1');
  assert.equal(pj.status, 0, pj.stderr);
  const rows = JSON.parse(pj.stdout) as { port: string; tx_pkts: number }[];
  assert.equal(rows.length, 1);
  assert.equal(rows[0].port, 'fc-b1');
  assert.ok(rows[0].tx_pkts >= 2);
  const flows = d.flowctl('dump-flows', 'br0');
  assert.equal(flows.status, 0, flows.stderr);
  assert.match(flows.stdout, /^ cookie=0x0, duration=[\d.]+s, table=0, n_packets=\d+, n_bytes=\d+, idle_age=\d+, priority=0 actions=NORMAL$/m);
  const stats = d.flowctl('stats');
  assert.equal(stats.status, 0, stats.stderr);
  assert.ok(stats.stdout.length > 0);
  const cache = d.flowctl('dump-cache');
  assert.equal(cache.status, 0, cache.stderr);
  const sj = d.flowctl('--format', 'json', 'stats');
  assert.equal(sj.status, 0);
  assert.ok(typeof (JSON.parse(sj.stdout) as { drops: object }).drops === 'object');
});

test('add-flow, mod-flows, trace and del-flows change and show the rules', { skip }, () => {
  let r = d.flowctl('add-flow', 'br0', 'priority=100,in_port=1,dl_type=0x0800,nw_dst=10.75.0.2,actions=output:2');
  assert.equal(r.status, 0, r.stderr);
  r = d.flowctl('dump-flows', 'br0', 'in_port=1');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /priority=100,ip,in_port=1,nw_dst=10\.75\.0\.2 actions=output:2/);
  // -w: wait for every reply (a busy machine may send the last one later than -W's 2 x RTT), at most the deadline.
  const ping = lab.run(nsA, 'ping', '-c', '3', '-i', '0.05', '-w', '30', '10.75.0.2');
  assert.equal(ping.status, 0, ping.stdout);
  r = d.flowctl('--format', 'json', 'dump-flows', 'br0', 'in_port=1');
  const j = JSON.parse(r.stdout) as { priority: number; n_packets: number }[];
  const p100 = j.find((x) => x.priority === 100);
  assert.ok(p100 !== undefined && p100.n_packets >= 3, r.stdout);
  r = d.flowctl('trace', 'br0', 'in_port=1,ip,nw_dst=10.75.0.2,dl_src=02:75:00:00:00:01,dl_dst=02:75:00:00:00:02');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Bridge: br0\n/);
  assert.match(r.stdout, /output:2/);
  r = d.flowctl('mod-flows', 'br0', 'in_port=1,ip,nw_dst=10.75.0.2,actions=NORMAL');
  assert.equal(r.status, 0, r.stderr);
  assert.match(d.flowctl('dump-flows', 'br0').stdout, /priority=100,ip,in_port=1,nw_dst=10\.75\.0\.2 actions=NORMAL/);
  r = d.flowctl('del-flows', 'br0', '--strict', 'priority=100,ip,in_port=1,nw_dst=10.75.0.2');
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(d.flowctl('dump-flows', 'br0').stdout, /priority=100/);
});

test('flowctl exit codes: 1 refused (bad flow, no bridge), 2 usage, 3 unreachable', { skip }, () => {
  let r = d.flowctl('add-flow', 'br0', 'priority=1,in_port=1,actions=frobnicate');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^flowctl: add-flow: .*frobnicate/);
  r = d.flowctl('dump-flows', 'br-nope');
  assert.equal(r.status, 1);
  assert.equal(r.stderr, 'flowctl: dump-flows: br-nope: no such bridge\n');
  r = d.flowctl('no-such-command');
  assert.equal(r.status, 2);
  const u = spawnSync(process.execPath, [FLOWCTL_JS, '--socket', path.join(lab.dir, 'nobody.sock'), 'show'], { encoding: 'utf8' });
  assert.equal(u.status, 3);
  assert.match(u.stderr, /cannot reach flowd/);
});

/** Sends `lines` on one connection and collects one reply per line. */
function flood(socket: string, lines: string[]): Promise<{ ok: boolean; code?: string }[]> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(socket);
    const replies: { ok: boolean; code?: string }[] = [];
    let buf = '';
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`only ${replies.length}/${lines.length} replies`)); }, 30000);
    s.setEncoding('utf8');
    s.on('connect', () => {
      // Write in chunks so the requests interleave with the datapath's batches.
      let i = 0;
      const next = (): void => {
        const chunk = lines.slice(i, i + 50).join('\n') + '\n';
        i += 50;
        if (i < lines.length) s.write(chunk, () => setTimeout(next, 5));
        else s.write(chunk);
      };
      next();
    });
    s.on('data', (c: string) => {
      buf += c;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        replies.push(JSON.parse(buf.slice(0, nl)) as { ok: boolean; code?: string });
        buf = buf.slice(nl + 1);
      }
      if (replies.length >= lines.length) { clearTimeout(timer); s.end(); resolve(replies); }
    });
    s.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

test('garbage and flow changes flooding the socket during ping -i 0.01: no loss, one error per garbage line', { skip }, async () => {
  const garbage = [
    'this is not json',
    '{"cmd": 42}',
    '{"id": 7, "cmd": "no-such-command", "args": {}}',
    '{"id": 8, "cmd": "add-flow", "args": {"bridge": "br0", "flow": "in_port=banana,actions=drop"}}',
    '{"id": 9, "cmd": "dump-flows", "args": {"bridge": "nope"}}',
    '[1, 2, 3]',
    '\u0000\u0001\u0002\u00ff',
    '{"id": 10, "cmd": "del-flows", "args": {"bridge": 17}}',
  ];
  const changes = [
    '{"id": 20, "cmd": "add-flow", "args": {"bridge": "br0", "flow": "priority=50,in_port=1,dl_type=0x0806,actions=NORMAL"}}',
    '{"id": 21, "cmd": "add-flow", "args": {"bridge": "br0", "flow": "priority=60,ip,nw_dst=10.75.9.9,actions=drop"}}',
    '{"id": 22, "cmd": "mod-flows", "args": {"bridge": "br0", "flow": "priority=60,ip,nw_dst=10.75.9.9,actions=output:2"}}',
    '{"id": 23, "cmd": "del-flows", "args": {"bridge": "br0", "match": "ip,nw_dst=10.75.9.9"}}',
    '{"id": 24, "cmd": "del-flows", "args": {"bridge": "br0", "match": "arp"}}',
    '{"id": 25, "cmd": "replace-flows", "args": {"bridge": "br0", "text": "priority=0,actions=NORMAL\\npriority=5,ip,nw_dst=10.75.9.8,actions=drop\\n"}}',
  ];
  const lines: string[] = [];
  let nGarbage = 0;
  for (let round = 0; round < 100; round++) {
    for (const g of garbage) { lines.push(g); nGarbage++; }
    for (const c of changes) lines.push(c);
  }
  const pingP = lab.runAsync(nsA, 'ping', ['-c', '300', '-i', '0.01', '-w', '60', '10.75.0.2'], 90000);
  const replies = await flood(d.socket, lines);
  const ping = await pingP;
  const p = parsePing(ping.stdout);
  const nErr = replies.filter((r) => r.ok === false).length;
  console.log(`control flood: ${lines.length} lines (${nGarbage} garbage) -> ${nErr} error replies; ping ${p.received}/${p.sent}, avg RTT ${p.avgRttMs} ms`);
  assert.equal(replies.length, lines.length);
  assert.equal(nErr, nGarbage, 'exactly the garbage lines were refused');
  assert.equal(p.sent, 300);
  assert.equal(p.lossPct, 0, ping.stdout.slice(-500));
  assert.ok(d.running, 'daemon still up');
  const show = await d.request('show');
  assert.match(String(show), /fc-a1/);
});
