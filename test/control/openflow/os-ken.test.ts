/**
 * flowd connects out to an OpenFlow controller: Debian's python3-os-ken runs
 * examples/os-ken/flowd_app.py, which installs two IPv4 flows and a table-miss flow to the
 * controller (cookie 0x42) when flowd connects and reads the flow statistics back. Ping between
 * the two namespaces works only through the reactive loop: ARP misses the IPv4 flows, goes up as
 * a PACKET_IN, and the app sends it on with a PACKET_OUT. ovs-ofctl on the management socket
 * shows the flows, and after the controller restarts flowd reconnects (backoff) and the app sees
 * it again.
 *
 *   ok-a: ok-a0 10.77.0.1 ── ok-a1 ┐
 *                                  ├ ok-sw: flowd br0 (no flows but what the controller sends),
 *   ok-b: ok-b0 10.77.0.2 ── ok-b1 ┘        osken-manager on 127.0.0.1:16653 in the same namespace
 *
 * Root, ip netns, ping, osken-manager (python3-os-ken); skipped with the reason otherwise. Prefix ok-.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { Lab, FlowdDaemon, labSkipReason, parsePing } from '../../helpers/netlab';

const skip = labSkipReason(['ping', 'osken-manager', 'ovs-ofctl']);
const lab = new Lab('ok-');
const APP = path.join(__dirname, '../../../../examples/os-ken/flowd_app.py');
const PORT = 16653;
let d: FlowdDaemon;
let nsA = '';
let nsSw = '';
let nsB = '';

const CONFIG = `
openflow:
  br0: { controller: "tcp:127.0.0.1:${PORT}" }
bridges:
  - name: br0
    ports:
      - { name: ok-a1, ofport: 1 }
      - { name: ok-b1, ofport: 2 }
    flows: []
`;

function startController(logName: string): { child: ChildProcess; log: string } {
  const log = path.join(lab.dir, logName);
  const child = lab.spawnIn(nsSw, 'osken-manager',
    ['--ofp-listen-host', '127.0.0.1', '--ofp-tcp-listen-port', String(PORT), APP], log);
  return { child, log };
}

async function waitFor(file: string, re: RegExp, timeoutMs: number): Promise<string> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const t = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    if (re.test(t)) return t;
    await new Promise((r) => setTimeout(r, 100));
  }
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '(no output)';
}

function stopChild(c: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (c.exitCode !== null || c.pid === undefined) { resolve(); return; }
    c.once('exit', () => resolve());
    try { process.kill(c.pid, 'SIGTERM'); } catch { resolve(); }
  });
}

before(async () => {
  if (skip) return;
  nsA = lab.addNs('a');
  nsB = lab.addNs('b');
  nsSw = lab.addNs('sw');
  lab.exec(nsSw, 'ip', 'link', 'set', 'lo', 'up');
  lab.veth('a0', nsA, 'a1', nsSw, { ipA: '10.77.0.1/24', macA: '02:77:00:00:00:01' });
  lab.veth('b0', nsB, 'b1', nsSw, { ipA: '10.77.0.2/24', macA: '02:77:00:00:00:02' });
  d = await lab.startFlowd(nsSw, 'ok', CONFIG);
});

after(async () => {
  await lab.cleanup();
});

test('an os-ken app installs flows when flowd connects out and reads their statistics back', { skip }, async () => {
  // Only the default NORMAL flow is there before the controller speaks; remove it so that
  // forwarding depends on the controller's flows.
  execFileSync('ovs-ofctl', ['del-flows', `unix:${path.join(lab.dir, 'ok', 'br0.mgmt')}`]);
  const ctl = startController('osken1.log');
  const out = await waitFor(ctl.log, /STATS_DONE/, 30000);
  assert.match(out, /CONNECTED dpid=[0-9a-f]{16} ports=3/, out);
  assert.match(out, /FLOW table=0 priority=100 cookie=0x42 in_port=1 packets=\d+ bytes=\d+ actions=OUTPUT:2/, out);
  assert.match(out, /FLOW table=0 priority=100 cookie=0x42 in_port=2 packets=\d+ bytes=\d+ actions=OUTPUT:1/, out);
  assert.match(out, /FLOW table=0 priority=0 cookie=0x42 in_port=0 packets=\d+ bytes=\d+ actions=OUTPUT:65533/, out);
  const dump = execFileSync('ovs-ofctl', ['dump-flows', `unix:${path.join(lab.dir, 'ok', 'br0.mgmt')}`]).toString();
  assert.match(dump, /cookie=0x42, .*priority=100,ip,in_port=1 actions=output:2/);
  assert.match(dump, /cookie=0x42, .*priority=0 actions=CONTROLLER:65535/);
  // No neighbour entries yet: the first ping's ARP request and reply each go through the controller.
  lab.run(nsA, 'ip', 'neigh', 'flush', 'all');
  lab.run(nsB, 'ip', 'neigh', 'flush', 'all');
  // -w: wait for every reply (a busy machine may send the last one later than -W's 2 x RTT), at most the deadline.
  const ping = lab.run(nsA, 'ping', '-c', '3', '-i', '0.1', '-w', '30', '10.77.0.2');
  assert.equal(parsePing(ping.stdout).received, 3, ping.stdout);
  const loop = await waitFor(ctl.log, /PACKET_OUT in_port=2 out_port=1/, 10000);
  assert.match(loop, /PACKET_IN in_port=1 reason=1 total_len=42 buffer_id=0xffffffff/, loop);
  assert.match(loop, /PACKET_OUT in_port=1 out_port=2 len=42/, loop);
  assert.match(loop, /PACKET_IN in_port=2 reason=1 total_len=42 buffer_id=0xffffffff/, loop);
  assert.match(execFileSync('ovs-ofctl', ['dump-flows', `unix:${path.join(lab.dir, 'ok', 'br0.mgmt')}`, 'in_port=1']).toString(),
    /cookie=0x42, .*n_packets=[1-9]/);
  const rows = await d.request('openflow', { format: 'json' }) as Record<string, number | string | boolean>[];
  assert.equal(rows[0].controller_connected, true);
  assert.equal(rows[0].controller_connects, 1);
  assert.ok(Number(rows[0].packet_ins) >= 2, `packet_ins ${String(rows[0].packet_ins)}`);
  assert.ok(Number(rows[0].packet_outs) >= 2, `packet_outs ${String(rows[0].packet_outs)}`);
  // The controller goes away and comes back: flowd reconnects (backoff 1 s, 2 s, ...).
  await stopChild(ctl.child);
  const ctl2 = startController('osken2.log');
  const out2 = await waitFor(ctl2.log, /STATS_DONE/, 30000);
  // The app adds its flows again on the new connection: an OpenFlow 1.0 add resets the counters.
  assert.match(out2, /FLOW table=0 priority=100 cookie=0x42 in_port=1 packets=0 bytes=0 actions=OUTPUT:2/, out2);
  const rows2 = await d.request('openflow', { format: 'json' }) as Record<string, number | string | boolean>[];
  assert.equal(rows2[0].controller_connects, 2);
  await stopChild(ctl2.child);
});
