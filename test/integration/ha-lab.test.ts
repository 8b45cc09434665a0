/**
 * Issue 14 acceptance on the namespace lab: examples/topologies/ha.yaml (C1, C2, NN1 and NN2
 * both dvr_snat, router R with ha: true, 100 ms VRRP adverts) comes up with keepalived per
 * node, the checks pass (one master, one node answers ARP for the gateway, SNAT through the
 * master), `lab failover` keeps each ping gap under 1000 ms, keeps VM2's TCP stream on the
 * same external 5-tuple as the upstream sees it (conntrack sync) and leaves exactly one
 * master after each event (while NN1's underlay is cut both are master: VRRP runs over the
 * tunnels; once it is back one steps down), east-west VM1 <-> VM2 loses nothing during a
 * failover, and `flowctl ha failover` moves mastership by hand (refused on the backup and on
 * a node that does not host the router). Root, tcpdump and keepalived needed; skipped with
 * the reason otherwise.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { up, down, status } from '../../src/lab/lab';
import { readState } from '../../src/lab/lab-state';
import { CheckResult } from '../../src/lab/lab-check';
import { mastersOf, runHaChecks } from '../../src/lab/lab-check-ha';
import { failover, FailoverReport } from '../../src/lab/lab-failover';
import { ping } from '../../src/lab/ping';
import { request } from '../../src/control/client';
import { loadTopology } from '../../src/dvr/topology';
import { labSkipReason, waitLabFree } from '../helpers/lab-guard';
import { waitFor, waitSteady } from '../helpers/wait';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const HA = path.join(ROOT, 'examples', 'topologies', 'ha.yaml');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-ha-test-'));
const skip = labSkipReason(['tcpdump', 'keepalived', 'setpriv']);
const topoFile = path.join(dir, 'topo.yaml');
let checks: CheckResult[] = [];
let report: FailoverReport | null = null;
let statusText = '';
/** East-west pings: requests sent, replies received, and the sequence numbers replied to. */
let eastWest = { sent: 0, received: 0, seqs: [] as number[] };
const printed: string[] = [];

before(async () => {
  if (skip) return;
  await waitLabFree();
  fs.copyFileSync(HA, topoFile);
  await up(topoFile, dir, () => undefined);
  const st = readState(dir)!;
  // VRRP settles on one master (at 100 ms adverts both may claim it for an instant on a busy
  // machine): the checks start once exactly one has held it for a second.
  await waitSteady('one master of router R', async () => (await mastersOf(st, 'R')).length === 1, 1000,
    { detail: async () => (await mastersOf(st, 'R')).join(',') || 'none' });
  statusText = await status(dir);
  checks = await runHaChecks(loadTopology(topoFile), st);
  // East-west during the failovers: VM1 -> VM2 every 20 ms for their whole duration.
  const pinger = spawn('ip', ['netns', 'exec', 'fl-vm1', 'ping', '-n', '-i', '0.02', '-w', '25', '10.0.2.20'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  pinger.stdout.setEncoding('utf8');
  pinger.stdout.on('data', (c: string) => { out += c; });
  const ewDone = new Promise<void>((r) => pinger.on('close', () => r()));
  report = await failover(dir, (s) => { printed.push(s); });
  pinger.kill('SIGINT');
  await ewDone;
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  const seqs = [...out.matchAll(/icmp_seq=(\d+)/g)].map((x) => Number(x[1]));
  eastWest = { sent: m ? Number(m[1]) : 0, received: m ? Number(m[2]) : 0, seqs };
});

after(async () => {
  if (!skip) await down(dir);
  fs.rmSync(dir, { recursive: true, force: true });
});

const show = (rs: CheckResult[]): string[] => rs.map((r) => `${r.pass ? 'PASS' : 'FAIL'} ${r.name}: ${r.detail}`);

test('ha.yaml: one master, one node answers ARP for 203.0.113.10, SNAT through the master', { skip }, () => {
  assert.equal(checks.length, 3, show(checks).join('\n'));
  assert.deepEqual(show(checks.filter((r) => !r.pass)), [], show(checks).join('\n'));
  assert.match(statusText, /HA router R: master NN[12] \(/);
});

test('lab failover: each ping gap under 1000 ms at 100 ms adverts, exactly one master after each (also after the underlay cut heals)', { skip }, () => {
  assert.ok(report !== null);
  const text = printed.join('');
  process.stdout.write(text.split('\n').map((l) => `# ${l}`).join('\n') + '\n');
  assert.equal(report.events.length, 2, text);
  for (const e of report.events) {
    // The outage by lost pings (10 ms apart); the reply gap also counts a starved ping process,
    // so on a loaded machine it is printed and only bounded loosely.
    assert.ok(e.gapMs > 0 && e.lostMs < 1000, `${e.what}: ${e.lostMs} ms of pings lost, gap ${e.gapMs} ms\n${text}`);
    assert.ok(e.gapMs < 5000, `${e.what}: gap ${e.gapMs} ms\n${text}`);
    assert.equal(e.mastersAfter.length, 1, `${e.what}: masters ${e.mastersAfter.join(',')}\n${text}`);
  }
  assert.match(report.statusBefore, /vrid 212 {2}master/);
  assert.match(report.statusAfter, /vrid 212 {2}backup/);
  // ha status: last advert per peer and the sync stream.
  assert.match(report.statusAfter, /last advert: NN[12] \d+\.\d\d s ago \(\d+ seen\)/, report.statusAfter);
  assert.match(report.statusAfter, /ct-sync zone \d+ via 192\.168\.100\.1[34]:3781: sending seq \d+, lag \d+ entries/, report.statusAfter);
  assert.match(report.statusAfter, /ct-sync zone \d+ via 192\.168\.100\.1[34]:3781: receiving from NN[12] seq \d+, lag 0 datagrams missing/, report.statusAfter);
});

test('lab failover: VM2\'s TCP stream keeps its external 5-tuple through both failovers and keeps moving', { skip }, () => {
  assert.ok(report !== null);
  const text = printed.join('');
  assert.match(report.tcpPeerBefore, /^203\.0\.113\.10:\d+$/, text);
  for (const e of report.events) {
    assert.equal(e.tcpPeer, report.tcpPeerBefore, `${e.what}\n${text}`);
    assert.ok(e.tcpBytes > 50000, `${e.what}: ${e.tcpBytes} bytes\n${text}`);
  }
});

test('east-west VM1 -> VM2 loses nothing during the failovers', { skip }, () => {
  assert.ok(eastWest.sent > 100, `${eastWest.sent} sent`);
  // Every request up to the last reply was answered (a loss during the failovers is a gap).
  // ping, stopped by SIGINT after the failovers, counts the requests still in flight then as
  // transmitted without reply: up to the few sent within one round trip are not losses.
  const last = Math.max(...eastWest.seqs);
  assert.equal(new Set(eastWest.seqs).size, last, `replies to ${eastWest.seqs.length} of requests 1..${last}`);
  assert.equal(eastWest.received, last);
  assert.ok(eastWest.sent - last <= 5, `${eastWest.sent - last} requests unanswered at the end`);
});

test('flowctl ha failover R on the master hands mastership over; the old master stays backup; a backup or a non-host refuses', { skip }, async () => {
  const st = readState(dir)!;
  const masters = await mastersOf(st, 'R');
  assert.equal(masters.length, 1, masters.join(','));
  const m = masters[0];
  const other = m === 'NN1' ? 'NN2' : 'NN1';
  await assert.rejects(request(st.daemons.find((d) => d.node === other)!.socket, 'ha', { action: 'failover', router: 'R' }), /R: this node is backup, not master/);
  await assert.rejects(request(st.daemons.find((d) => d.node === 'C1')!.socket, 'ha', { action: 'failover', router: 'R' }), /no HA router of that name on this node/);
  const r = await request(st.daemons.find((d) => d.node === m)!.socket, 'ha', { action: 'failover', router: 'R' });
  assert.match(String(r), /handing mastership over/);
  // The old master's ha- port comes back when the hold ends (a timer): it must rejoin as
  // backup and stay so (nopreempt).
  const seen = async (): Promise<string> => (await mastersOf(st, 'R')).join(',') || 'none';
  await waitFor(`${other} master`, async () => (await mastersOf(st, 'R')).join() === other, { detail: seen });
  const oldState = async (): Promise<string> => {
    const r = await request(st.daemons.find((d) => d.node === m)!.socket, 'ha', { action: 'status', format: 'json' }) as { state: string }[];
    return r[0].state;
  };
  await waitFor(`${m} back from fault as backup`, async () => (await oldState()) === 'backup', { detail: oldState });
  await waitSteady(`${other} alone master`, async () => (await mastersOf(st, 'R')).join() === other, 1000, { detail: seen });
  const p = ping('fl-vm2', '203.0.113.1', 3);
  assert.equal(p.received, 3);
});
