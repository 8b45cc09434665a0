/**
 * `lab failover` (issue 14): on a running lab with an HA router (examples/topologies/ha.yaml),
 * VM2 pings the upstream every 10 ms through SNAT and holds a TCP stream to it (lab/tcp-stream.ts,
 * 256 bytes every 10 ms) while the lab (1) SIGKILLs the master's flowd, then restarts it; (2)
 * cuts the new master's underlay link, then restores it. It prints the longest gap between two
 * replies around each event (the failover's cost in ms), the TCP stream's external address and
 * port as the upstream sees it (the same one all along is expected: conntrack sync) and the
 * bytes it brought during the event, the master after each settling time (exactly one is
 * expected: while the underlay is cut both nodes are master, as VRRP over a split network
 * must be; when it is back the one with the lower address steps down, RFC 5798 6.4.3) and
 * `flowctl ha status` of every node hosting the router before and after.
 * Called by: cli/lab.ts (`lab.sh failover`) and test/integration/ha-lab.test.ts.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { request } from '../control/client';
import { loadTopology, Topology } from '../dvr/topology';
import { LabState, nodeNs, readState, stateDir, vmNs } from './lab-state';
import { startDaemon } from './lab';
import { mastersOf } from './lab-check-ha';
import { pidOf } from './lab-state';
import { ipIn } from './shell';
import { UP_NS } from './lab-state';
import { TcpStreamClient, TcpStreamServer } from './tcp-stream';

/** The TCP port the upstream listens on for the stream. */
export const FAILOVER_TCP_PORT = 5001;

export interface FailoverEvent {
  what: string;
  /** Longest time between two consecutive echo replies while it happened, ms. */
  gapMs: number;
  /**
   * Echo requests without reply x the 10 ms interval, ms: the outage as the lost pings tell it.
   * Unlike gapMs it does not grow when the machine starves the ping process itself (then
   * replies pause while little is lost); the two agree on an idle machine.
   */
  lostMs: number;
  /** Requests sent and replies received during the measurement. */
  sent: number;
  received: number;
  /** Masters after the settling time that follows the event (and its repair). */
  mastersAfter: string[];
  /** The TCP stream's source as the upstream sees it (address:port) after the event, and the bytes it brought during it. */
  tcpPeer: string;
  tcpBytes: number;
}

export interface FailoverReport {
  router: string;
  advertIntMs: number;
  /** The TCP stream's source as the upstream saw it before the first event. */
  tcpPeerBefore: string;
  events: FailoverEvent[];
  statusBefore: string;
  statusAfter: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function haStatusText(st: LabState, t: Topology, router: string): Promise<string> {
  const nodes = t.routers.find((r) => r.name === router)!.ha.l3Agents;
  const lines: string[] = [];
  for (const n of nodes) {
    const d = st.daemons.find((x) => x.node === n)!;
    let text: string;
    try { text = String(await request(d.socket, 'ha', { action: 'status' }, 2000)); } catch (e) { text = `(flowd not answering: ${(e as Error).message})`; }
    lines.push(`  ${n}: flowctl ha status\n${text.split('\n').map((l) => `    ${l}`).join('\n')}`);
  }
  return lines.join('\n');
}

/** Pings `ip` from `ns` every 10 ms for `seconds`; resolves with the reply times (s). */
function fastPing(ns: string, ip: string, seconds: number): { child: ChildProcess; done: Promise<{ sent: number; times: number[] }> } {
  const child = spawn('ip', ['netns', 'exec', ns, 'ping', '-D', '-n', '-i', '0.01', '-w', String(seconds), ip], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (c: string) => { out += c; });
  const done = new Promise<{ sent: number; times: number[] }>((resolve) => {
    child.on('close', () => {
      const times: number[] = [];
      for (const m of out.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)) times.push(Number(m[1]));
      const sent = /(\d+) packets transmitted/.exec(out);
      resolve({ sent: sent ? Number(sent[1]) : 0, times });
    });
  });
  return { child, done };
}

/** Longest stretch without a reply, the one from the last reply to `endS` included (replies that never resume). */
function maxGapMs(times: number[], endS: number): number {
  let g = 0;
  for (let i = 1; i < times.length; i++) g = Math.max(g, (times[i] - times[i - 1]) * 1000);
  if (times.length > 0) g = Math.max(g, (endS - times[times.length - 1]) * 1000);
  return Math.round(g);
}

/** Runs the two failovers on the lab in `dir` (see the header); `print` gets the report as it goes. */
export async function failover(dir = stateDir(), print: (s: string) => void = (s) => { process.stdout.write(s); }): Promise<FailoverReport> {
  const st = readState(dir);
  if (st === null) throw new Error('the lab is down: run `lab up examples/topologies/ha.yaml` first');
  const t = loadTopology(st.topology);
  const r = t.routers.find((x) => x.ha.ha);
  if (r === undefined) throw new Error(`${st.topology} has no HA router (ha: true)`);
  const vm = t.ports.find((p) => p.node !== '' && !t.floatingIps.some((f) => f.port === p.name) &&
    r.interfaces.some((i) => p.fixedIps.some((f) => f.subnet === i.subnet)));
  if (vm === undefined) throw new Error(`no VM without a floating IP behind router ${r.name} to ping through SNAT`);
  const upstream = t.subnets.find((s) => s.network === r.gateway!.network)!.gatewayIp;
  const settleMs = Math.max(2000, 10 * t.ha.advertIntMs);
  const report: FailoverReport = { router: r.name, advertIntMs: t.ha.advertIntMs, tcpPeerBefore: '', events: [], statusBefore: '', statusAfter: '' };
  print(`HA router ${r.name}, advert interval ${t.ha.advertIntMs} ms; ${vm.name} pings ${upstream} every 10 ms through SNAT ` +
    `and sends 256 bytes every 10 ms on a TCP connection to ${upstream}:${FAILOVER_TCP_PORT}\n`);
  const server = new TcpStreamServer(UP_NS, upstream, FAILOVER_TCP_PORT);
  let client: TcpStreamClient | null = null;
  try {
    await server.ready;
    client = new TcpStreamClient(vmNs(vm), upstream, FAILOVER_TCP_PORT, 0, 10);
    await client.connected;
    await sleep(500);
    // The connection the server saw first from the router's gateway: the stream's external 5-tuple.
    report.tcpPeerBefore = Object.keys(server.bytes()).find((k) => k.startsWith(`${r.gateway!.ip}:`)) ?? '';
    print(`TCP stream seen on the upstream as ${report.tcpPeerBefore || '(nothing yet)'} -> ${upstream}:${FAILOVER_TCP_PORT}\n`);
    await runEvents(st, t, r.name, vm, upstream, settleMs, report, print, server, client);
  } finally {
    client?.stop();
    server.stop();
  }
  return report;
}

async function runEvents(st: LabState, t: Topology, router: string, vm: Parameters<typeof vmNs>[0], upstream: string, settleMs: number,
                         report: FailoverReport, print: (s: string) => void, server: TcpStreamServer, client: TcpStreamClient): Promise<void> {
  const r = t.routers.find((x) => x.name === router)!;
  report.statusBefore = await haStatusText(st, t, r.name);
  print(`before:\n${report.statusBefore}\n`);

  const measure = async (what: string, act: () => Promise<void>, repair: () => Promise<void>): Promise<void> => {
    const seconds = Math.ceil((2000 + 6 * t.ha.advertIntMs + 2000) / 1000);
    const p = fastPing(vmNs(vm), upstream, seconds);
    await sleep(1000);
    const before = server.bytes();
    await act();
    const res = await p.done;
    const endS = Date.now() / 1000;
    await repair();
    await sleep(settleMs);
    const after = server.bytes();
    // The connection that brought the most bytes during the event is the stream's 5-tuple now.
    let tcpPeer = '';
    let tcpBytes = 0;
    for (const k of Object.keys(after)) {
      const d = after[k] - (before[k] ?? 0);
      if (d > tcpBytes) { tcpBytes = d; tcpPeer = k; }
    }
    const ev: FailoverEvent = { what, gapMs: maxGapMs(res.times, endS), lostMs: (res.sent - res.times.length) * 10, sent: res.sent, received: res.times.length,
      mastersAfter: await mastersOf(st, r.name), tcpPeer, tcpBytes };
    report.events.push(ev);
    const same = tcpPeer === report.tcpPeerBefore ? 'the same 5-tuple' : `NOT the 5-tuple it started on (${report.tcpPeerBefore})`;
    print(`${what}: ping gap ${ev.gapMs} ms (${ev.received}/${ev.sent} replies: ${ev.lostMs} ms lost); TCP stream ${tcpPeer || '(nothing)'} -> ${upstream}:${FAILOVER_TCP_PORT} ` +
      `brought ${tcpBytes} bytes, ${same} (client ${client.state}); after ${settleMs} ms: master ${ev.mastersAfter.join(', ') || 'none'}` +
      `${ev.mastersAfter.length === 1 ? '' : ' (expected exactly one)'}\n`);
  };

  let m = (await mastersOf(st, r.name))[0];
  if (m === undefined) throw new Error(`router ${r.name} has no master`);
  const killed = m;
  await measure(`SIGKILL of ${killed}'s flowd (master)`, async () => {
    const pid = pidOf(st.daemons.find((d) => d.node === killed)!.pidFile);
    process.kill(pid, 'SIGKILL');
  }, async () => {
    // Recovery: the node's flowd comes back and its keepalived joins as backup.
    await sleep(500);
    await startDaemon(t, t.nodes.find((n) => n.name === killed)!, st);
  });

  m = (await mastersOf(st, r.name))[0];
  if (m === undefined) throw new Error(`router ${r.name} has no master after the first failover`);
  const cut = t.nodes.find((n) => n.name === m)!;
  await measure(`underlay of ${cut.name} (master) cut`, async () => {
    ipIn(nodeNs(cut), 'link', 'set', cut.underlayDevice, 'down');
  }, async () => {
    ipIn(nodeNs(cut), 'link', 'set', cut.underlayDevice, 'up');
  });
  report.statusAfter = await haStatusText(st, t, r.name);
  print(`after:\n${report.statusAfter}\n`);
}
