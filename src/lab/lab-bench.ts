/**
 * TCP throughput across the DVR lab against the same topology on Linux kernel forwarding, in
 * one run (issue 7: "iperf3 TCP between VMs on different nodes over VXLAN, next to the same
 * topology run over Linux kernel forwarding, measured in the same run").
 *
 * One round = a flowd phase then a kernel phase:
 *   flowd:  lab.up(topology, private state dir) -> iperf3 runs -> lab.down
 *   kernel: lab-kernel.kernelUp(topology, `fk-`)  -> the same iperf3 runs -> kernelDown
 * Rounds alternate (flowd, kernel, flowd, kernel, ...) because the machine is shared and noisy;
 * the figures are medians over every run of every round. Each phase runs, `reps` times, a
 * forward run (server in the destination VM, client in the source VM: data source -> dest) and
 * a reverse run (`iperf3 -R`: the same pair, data dest -> source), alternately, the
 * direction that goes first flipping per round; iperf3 leaves each run's first `--omit` seconds
 * (1 by default) out of its figure: TCP's slow start, and the daemons' first traffic.
 *
 * `--compare snat` (issue 16) measures the north-south paths of one flowd lab against each other:
 * a VM without floating IP reaching the upstream host through SNAT on the dvr_snat node (C2,
 * NN and back: three daemons) against the VM with a floating IP (its own node only); per round
 * one lab, the two systems alternating run by run (forward: VM -> upstream, reverse: -R).
 *
 * A topology with GRE tenant networks is compared with the kernel's VXLAN twin of it when this
 * kernel cannot make gretap devices (lab-kernel.kernelGretapProbe; the table says so).
 *
 * `--compare build --build-b DIR` (issue 16) measures two builds of flowd against each other in one
 * run: per round the flowd lab twice, after `up` every daemon restarted on the same configs
 * once from this tree's dist/src/cli/flowd.js ('flowd') and once from DIR's ('flowd-b'; DIR's
 * own native addon comes with it), the order flipping per round, so an A/B of a change shares
 * the machine's load instead of alternating whole runs. Both are restarted: a daemon that
 * carried the lab's setup traffic (pings, ARP, DHCP) first was slower in the stream.
 *
 * `--compare port-security` (issue 13) measures instead the flowd lab against itself: one phase
 * with every VM port in a group that accepts the stream (Neutron's OVS firewall with conntrack
 * on every frame), one with port security off on every port, both on firewall_driver
 * openvswitch nodes (lab/bench-variants.ts); phases alternate which goes first per round.
 *
 * While each run lasts it reads the CPU time (utime + stime, /proc/<pid>/stat) of every flowd
 * daemon and the machine's busy share (/proc/stat), so the table can say what the throughput
 * cost. Cleanup is in finally blocks and on SIGINT/SIGTERM: lab.down for the flowd lab (its own
 * state dir: it stops the daemons it started by PID), kernelDown for the namespaces this run
 * made, and the iperf3 processes this run started, by PID. It never touches other namespaces:
 * before a flowd phase it waits until no `fl-` namespace exists (another test may own them).
 *
 * Usage: lab-bench [--topology FILE] [--compare kernel|port-security|snat|build] [--build-b DIR] [--rounds N] [--reps N]
 *                  [--time S] [--omit S] [--from PORT] [--to PORT] [--json FILE]
 *        lab-bench profile [--node C1] [--time S] [--out DIR]   (flowd lab only: restarts one
 *                  node's daemon under `node --cpu-prof`, runs iperf3, prints the hottest
 *                  functions by self time)
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadTopology, Topology } from '../dvr/topology';
import { up, down, HA_NS_PREFIX } from './lab';
import { readState, vmNs, nodeNs, LabState, UP_NS } from './lab-state';
import { request } from '../control/client';
import { kernelGretapProbe, kernelUp, kernelDown, kernelVmNs, KernelLab } from './lab-kernel';
import { ping } from './ping';
import { namespacesWithPrefix } from './shell';
import { BENCH_GROUP, benchTopology } from './bench-variants';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
const FLOWD = path.join(ROOT, 'dist', 'src', 'cli', 'flowd.js');
const IPERF_PORT = 5299;

/** flowd against the kernel, or (--compare port-security) flowd filtered against unfiltered. */
export type System = 'flowd' | 'kernel' | 'filtered' | 'unfiltered' | 'snat' | 'fip' | 'flowd-b';
export type Compare = 'kernel' | 'port-security' | 'snat' | 'build';
/** The two systems a comparison measures, the first against the second. */
export const SYSTEMS: Record<Compare, [System, System]> = {
  kernel: ['flowd', 'kernel'], 'port-security': ['filtered', 'unfiltered'], snat: ['snat', 'fip'], build: ['flowd', 'flowd-b'],
};
export type Direction = 'forward' | 'reverse';

/** One iperf3 run. */
export interface IperfSample {
  system: System;
  direction: Direction;
  round: number;
  /** Goodput seen by the receiver, bits per second. */
  bps: number;
  retransmits: number;
  wallS: number;
  /** CPU seconds (user + system) of each flowd daemon during the run (node -> s); {} for kernel. */
  daemonCpuS: Record<string, number>;
  /** The system (kernel) part of daemonCpuS: syscalls, and the softirq work they trigger. */
  daemonSysS: Record<string, number>;
  /** Per daemon during the run, from its `stats` command: frames received, receive batches,
   *  and the datapath's own busy time (ns). */
  daemonRxPackets: Record<string, number>;
  daemonRxBatches: Record<string, number>;
  daemonBusyNs: Record<string, number>;
  /** Busy share of all CPUs of the machine during the run, 0..100. */
  hostBusyPct: number;
}

export interface BenchOptions {
  topology: string;
  rounds: number;
  reps: number;
  seconds: number;
  omitS: number;
  from: string;
  to: string;
  stateDir: string;
  kernelPrefix: string;
  /** What flowd is measured against (default kernel). */
  compare: Compare;
  /** --compare build: the other tree (its dist/src/cli/flowd.js runs as 'flowd-b'); '' otherwise. */
  buildB: string;
  /** --compare build: whose daemons are restarted after lab up: both builds' (default), or only
   *  flowd-b's ('b': with --build-b this tree, an A/A of a restarted daemon against one that
   *  carried the lab's setup traffic). */
  restart?: 'both' | 'b';
  print: (s: string) => void;
}

export interface BenchResult {
  options: Omit<BenchOptions, 'print'>;
  samples: IperfSample[];
  loadBefore: string;
  loadAfter: string;
  /** What the kernel peer is when it is not the topology's own twin (GRE built as VXLAN). */
  kernelNote?: string;
  /** --compare snat: the two VMs (SNAT, floating IP) and the upstream address. */
  northSouth?: { snatVm: string; fipVm: string; upstream: string };
  cpus: number;
  startedAt: string;
}

// --- what to clean up on a signal -------------------------------------------------------------

const live = {
  flowdDir: '',
  kernel: null as KernelLab | null,
  children: new Set<ChildProcess>(),
};

export async function cleanupLive(): Promise<void> {
  for (const c of live.children) {
    if (c.pid !== undefined && c.exitCode === null) {
      try { process.kill(c.pid, 'SIGTERM'); } catch { /* gone */ }
    }
  }
  live.children.clear();
  if (live.kernel !== null) {
    kernelDown(live.kernel);
    live.kernel = null;
  }
  if (live.flowdDir !== '') {
    // A signal in the middle of lab.up may come before the state file lists the daemons it
    // spawned; their pid files are in this run's private state dir, so stop those first.
    const listed = new Set((readState(live.flowdDir)?.daemons ?? []).map((d) => d.pidFile));
    for (const f of fs.existsSync(live.flowdDir) ? fs.readdirSync(live.flowdDir) : []) {
      const file = path.join(live.flowdDir, f);
      if (!f.endsWith('.pid') || listed.has(file)) continue;
      const pid = pidOfFile(file);
      if (pid > 0) try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
    }
    await down(live.flowdDir);
    live.flowdDir = '';
  }
}

// --- measurement helpers ----------------------------------------------------------------------

const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number((r.stdout ?? '').trim());
  return n > 0 ? n : 100;
})();

/** [utime, stime] of `pid` in seconds; zeros when it is gone. */
export function cpuSecondsOf(pid: number): [number, number] {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, so utime (14) and stime (15) are at 11 and 12.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return [Number(f[11]) / CLK_TCK, Number(f[12]) / CLK_TCK];
  } catch {
    return [0, 0];
  }
}

/** A daemon's cumulative datapath counters, read from its `stats` text (zeros on failure). */
export interface DpCounters { rxPackets: number; rxBatches: number; busyNs: number }

export function parsePerfStats(text: string): DpCounters {
  const pk = /Rx packets:\s+(\d+)\s+\(([\d.]+) ns\/pkt\)/.exec(text);
  const bt = /Rx batches:\s+(\d+)/.exec(text);
  const n = pk ? Number(pk[1]) : 0;
  return { rxPackets: n, rxBatches: bt ? Number(bt[1]) : 0, busyNs: pk ? n * Number(pk[2]) : 0 };
}

async function dpCounters(socket: string): Promise<DpCounters> {
  try {
    return parsePerfStats(String(await request(socket, 'stats', {}, 2000)));
  } catch {
    return { rxPackets: 0, rxBatches: 0, busyNs: 0 };
  }
}

/** [busy, total] jiffies of all CPUs (/proc/stat "cpu" line; idle + iowait are not busy). */
export function hostJiffies(): [number, number] {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  return [total - v[3] - v[4], total];
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function sleepMs(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.children.add(c);
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    c.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => { if (c.pid !== undefined) try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } }, timeoutMs);
    c.once('close', (status) => {
      clearTimeout(timer);
      live.children.delete(c);
      resolve({ status, stdout, stderr });
    });
  });
}

/** Parsed iperf3 --json output of a client run. */
export interface IperfResult { bps: number; retransmits: number; error: string }

export function parseIperfJson(text: string): IperfResult {
  try {
    const j = JSON.parse(text) as {
      error?: string;
      end?: { sum_received?: { bits_per_second?: number }; sum_sent?: { retransmits?: number } };
    };
    return {
      bps: j.end?.sum_received?.bits_per_second ?? 0,
      retransmits: j.end?.sum_sent?.retransmits ?? 0,
      error: j.error ?? '',
    };
  } catch {
    return { bps: 0, retransmits: 0, error: `iperf3 printed no JSON: ${text.slice(0, 200)}` };
  }
}

/**
 * One iperf3 TCP run between two namespaces: a one-shot server in `serverNs`, the client in
 * `clientNs` (`reverse`: -R, the server sends; `extra`: more client options, e.g. `-l 700 -N`).
 * Retries the connection while the server starts.
 */
export async function iperfTcp(clientNs: string, serverNs: string, serverIp: string, seconds: number,
                               reverse: boolean, omitS = 0, port = IPERF_PORT, extra: readonly string[] = []): Promise<IperfResult> {
  const srv = spawn('ip', ['netns', 'exec', serverNs, 'iperf3', '-s', '-1', '-p', String(port)], { stdio: 'ignore' });
  live.children.add(srv);
  const srvDone = new Promise<void>((r) => srv.once('close', () => { live.children.delete(srv); r(); }));
  let res: IperfResult = { bps: 0, retransmits: 0, error: 'not run' };
  try {
    await sleepMs(200);
    for (let attempt = 0; attempt < 5; attempt++) {
      const args = ['netns', 'exec', clientNs, 'iperf3', '-c', serverIp, '-p', String(port), '-t', String(seconds),
        '--json', '--connect-timeout', '3000'];
      if (omitS > 0) args.push('-O', String(omitS));
      if (reverse) args.push('-R');
      args.push(...extra);
      const r = await run('ip', args, (seconds + omitS + 30) * 1000);
      res = parseIperfJson(r.stdout);
      if (res.error === '' && r.status === 0) break;
      if (!/refused|unable to connect/i.test(res.error)) break;
      await sleepMs(300);
    }
  } finally {
    if (srv.exitCode === null && srv.pid !== undefined) {
      // The one-shot server exits after its test; give it a moment, then stop it.
      await Promise.race([srvDone, sleepMs(1000)]);
      if (srv.exitCode === null) try { process.kill(srv.pid, 'SIGTERM'); } catch { /* gone */ }
    }
    await Promise.race([srvDone, sleepMs(2000)]);
  }
  return res;
}

function pidOfFile(file: string): number {
  try {
    return Number(fs.readFileSync(file, 'utf8').trim());
  } catch {
    return 0;
  }
}

/** Waits until no namespace named `prefix`... exists (another test may own them). */
export async function waitNoNamespaces(prefix: string, timeoutMs: number, print: (s: string) => void): Promise<void> {
  const t0 = Date.now();
  let told = false;
  for (;;) {
    const ns = namespacesWithPrefix(prefix);
    if (ns.length === 0) return;
    if (Date.now() - t0 > timeoutMs) throw new Error(`namespaces ${ns.join(' ')} still exist after ${timeoutMs / 1000} s; not touching them`);
    if (!told) print(`waiting: namespaces ${ns.join(' ')} belong to someone else\n`);
    told = true;
    await sleepMs(5000);
  }
}

// --- the benchmark ----------------------------------------------------------------------------

interface Pair { clientNs: string; serverNs: string; serverIp: string }
interface Daemon { node: string; pid: number; socket: string }

async function measure(sys: System, round: number, pair: Pair, opts: BenchOptions,
                       daemons: Daemon[], out: IperfSample[]): Promise<void> {
  // Which direction goes first flips per round: the first stream after `up` is the daemons'
  // first TCP traffic (their JIT still compiling the stream's path: its first second ran at
  // 2.9-3.1 Gbit/s where later streams' first seconds ran at 6-7), so a fixed order charged
  // that to forward alone (native-notes/tunnel-gso.md, "2026-12-06, 09:00-09:40 UTC").
  const dirs: Direction[] = round % 2 === 1 ? ['forward', 'reverse'] : ['reverse', 'forward'];
  for (let rep = 0; rep < opts.reps; rep++) {
    for (const direction of dirs) {
      const dp0 = await Promise.all(daemons.map((d) => dpCounters(d.socket)));
      const cpu0 = daemons.map((d) => cpuSecondsOf(d.pid));
      const [b0, t0] = hostJiffies();
      const w0 = process.hrtime.bigint();
      const r = await iperfTcp(pair.clientNs, pair.serverNs, pair.serverIp, opts.seconds, direction === 'reverse', opts.omitS);
      const wallS = Number(process.hrtime.bigint() - w0) / 1e9;
      const [b1, t1] = hostJiffies();
      const cpu1 = daemons.map((d) => cpuSecondsOf(d.pid));
      const dp1 = await Promise.all(daemons.map((d) => dpCounters(d.socket)));
      if (r.error !== '') throw new Error(`${sys} ${direction} iperf3: ${r.error}`);
      const s: IperfSample = {
        system: sys, direction, round, bps: r.bps, retransmits: r.retransmits, wallS,
        daemonCpuS: {}, daemonSysS: {}, daemonRxPackets: {}, daemonRxBatches: {}, daemonBusyNs: {},
        hostBusyPct: t1 > t0 ? (100 * (b1 - b0)) / (t1 - t0) : 0,
      };
      daemons.forEach((d, i) => {
        s.daemonCpuS[d.node] = cpu1[i][0] + cpu1[i][1] - cpu0[i][0] - cpu0[i][1];
        s.daemonSysS[d.node] = cpu1[i][1] - cpu0[i][1];
        s.daemonRxPackets[d.node] = dp1[i].rxPackets - dp0[i].rxPackets;
        s.daemonRxBatches[d.node] = dp1[i].rxBatches - dp0[i].rxBatches;
        s.daemonBusyNs[d.node] = dp1[i].busyNs - dp0[i].busyNs;
      });
      const daemonCpuS = s.daemonCpuS;
      out.push(s);
      const cpu = daemons.length === 0 ? '' : `, flowd CPU ${daemons.map((d) => `${d.node} ${daemonCpuS[d.node].toFixed(2)} s`).join(' ')}`;
      opts.print(`  round ${round} ${sys.padEnd(6)} ${direction.padEnd(7)} ${(r.bps / 1e9).toFixed(3)} Gbit/s, ` +
        `${r.retransmits} retr, host busy ${s.hostBusyPct.toFixed(0)}%${cpu}\n`);
    }
  }
}

/**
 * Stops the lab daemon `d` (SIGTERM, by its pid file) and starts `flowdJs` under `nodeArgs` in
 * its namespace with the arguments lab.up gave it (same config, pid file, log, HA namespace
 * prefix); returns the new daemon's PID.
 */
async function restartDaemon(stateDir: string, d: LabState['daemons'][number], flowdJs: string, nodeArgs: string[]): Promise<number> {
  const pid = pidOfFile(d.pidFile);
  if (pid > 0) process.kill(pid, 'SIGTERM');
  for (let k = 0; k < 50 && fs.existsSync(d.pidFile); k++) await sleepMs(100);
  const cfg = path.join(stateDir, `${d.node}.yaml`);
  const log = fs.openSync(d.log, 'a');
  const child = spawn('ip', ['netns', 'exec', nodeNs(d.node), process.execPath, ...nodeArgs,
    flowdJs, '--config', cfg, '--pid-file', d.pidFile, '--ha-ns-prefix', HA_NS_PREFIX], { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  fs.closeSync(log);
  for (let k = 0; k < 100 && !fs.existsSync(d.pidFile); k++) await sleepMs(100);
  const newPid = pidOfFile(d.pidFile);
  if (newPid <= 0) throw new Error(`flowd of ${d.node} did not restart from ${flowdJs} (see ${d.log})`);
  return newPid;
}

/** Pings `ip` from namespace `ns` until one answer comes (a restarted lab settling), or throws. */
function pingUntil(ns: string, ip: string, seconds: number): void {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-w', String(seconds), '-i', '0.2', ip], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`${ns} cannot ping ${ip} within ${seconds} s`);
}

/**
 * One flowd lab: up, iperf3 runs, down. With `flowdJs` every daemon is restarted from that file
 * after up (--compare build does so for both builds: see docs/lab-bench.md, a restarted daemon
 * was faster in the stream than one that carried the lab's setup traffic first).
 */
async function flowdPhase(t: Topology, topoFile: string, sys: System, round: number, opts: BenchOptions, out: IperfSample[],
                          flowdJs = ''): Promise<void> {
  await waitNoNamespaces('fl-', 10 * 60 * 1000, opts.print);
  live.flowdDir = opts.stateDir;
  try {
    const { pings } = await up(topoFile, opts.stateDir, () => undefined);
    const bad = pings.filter((p) => p.received !== p.sent);
    if (bad.length > 0) throw new Error(`flowd lab: pings failed: ${bad.map((p) => `${p.from}->${p.to} ${p.received}/${p.sent}`).join(', ')}`);
    const st = readState(opts.stateDir) as LabState;
    const server = t.ports.find((p) => p.name === opts.to)!;
    if (flowdJs !== '') {
      for (const d of st.daemons) await restartDaemon(opts.stateDir, d, flowdJs, []);
      pingUntil(vmNs(opts.from), server.fixedIps[0].ip, 20);
    }
    const daemons: Daemon[] = st.daemons.map((d) => ({ node: d.node, pid: pidOfFile(d.pidFile), socket: d.socket }));
    await measure(sys, round, { clientNs: vmNs(opts.from), serverNs: vmNs(opts.to), serverIp: server.fixedIps[0].ip },
      opts, daemons, out);
  } finally {
    await down(opts.stateDir);
    live.flowdDir = '';
  }
}

async function kernelPhase(t: Topology, round: number, opts: BenchOptions, out: IperfSample[], greAsVxlan: boolean): Promise<void> {
  const k = kernelUp(t, opts.kernelPrefix, greAsVxlan);
  live.kernel = k;
  try {
    const server = t.ports.find((p) => p.name === opts.to)!;
    const client = kernelVmNs(k.prefix, opts.from);
    const ok = ping(client, server.fixedIps[0].ip, 3);
    if (ok.received !== ok.sent) throw new Error(`kernel baseline: ${opts.from} cannot ping ${opts.to} (${server.fixedIps[0].ip})`);
    await measure('kernel', round, { clientNs: client, serverNs: kernelVmNs(k.prefix, opts.to), serverIp: server.fixedIps[0].ip },
      opts, [], out);
  } finally {
    kernelDown(k);
    live.kernel = null;
  }
}

/**
 * The north-south pair of `t` for --compare snat: the first bound VM without a floating IP
 * behind a router with a gateway (SNAT), the first with one (floating IP), and the upstream
 * host's address (the external subnet's gateway, which the lab gives fl-up).
 */
export function northSouthPair(t: Topology): { snatVm: string; fipVm: string; upstream: string } {
  const ext = t.networks.find((n) => n.external);
  const sn = ext === undefined ? undefined : t.subnets.find((s) => s.network === ext.name);
  if (sn === undefined || sn.gatewayIp === '') throw new Error(`--compare snat: ${t.file} has no external subnet with a gateway (the upstream host)`);
  const bound = t.ports.filter((p) => p.node !== '' && p.fixedIps.length > 0);
  const fip = bound.find((p) => t.floatingIps.some((f) => f.port === p.name));
  const snat = bound.find((p) => !t.floatingIps.some((f) => f.port === p.name) &&
    t.routers.some((r) => r.gateway !== null && r.interfaces.some((i) => p.fixedIps.some((f) => f.subnet === i.subnet))));
  if (fip === undefined || snat === undefined) throw new Error(`--compare snat: ${t.file} needs a VM with a floating IP and one reaching out by SNAT`);
  return { snatVm: snat.name, fipVm: fip.name, upstream: sn.gatewayIp };
}

/** One flowd lab, SNAT and floating-IP runs alternating (order flips per rep and round). */
async function northSouthPhase(topoFile: string, ns: { snatVm: string; fipVm: string; upstream: string }, round: number,
                               opts: BenchOptions, out: IperfSample[]): Promise<void> {
  await waitNoNamespaces('fl-', 10 * 60 * 1000, opts.print);
  live.flowdDir = opts.stateDir;
  try {
    await up(topoFile, opts.stateDir, () => undefined);
    const st = readState(opts.stateDir) as LabState;
    const daemons: Daemon[] = st.daemons.map((d) => ({ node: d.node, pid: pidOfFile(d.pidFile), socket: d.socket }));
    const one = { ...opts, reps: 1 };
    for (let rep = 0; rep < opts.reps; rep++) {
      const order: [System, string][] = [['snat', ns.snatVm], ['fip', ns.fipVm]];
      if ((round + rep) % 2 === 0) order.reverse();
      for (const [sys, vm] of order) {
        await measure(sys, round, { clientNs: vmNs(vm), serverNs: UP_NS, serverIp: ns.upstream }, one, daemons, out);
      }
    }
  } finally {
    await down(opts.stateDir);
    live.flowdDir = '';
  }
}

function checkPair(t: Topology, from: string, to: string): void {
  for (const name of [from, to]) {
    const p = t.ports.find((x) => x.name === name);
    if (p === undefined || p.node === '' || p.fixedIps.length === 0) throw new Error(`port ${name}: not a bound port with an IP in ${t.file}`);
  }
}

/** The whole benchmark: `rounds` x (flowd phase, kernel phase). */
export async function runBench(opts: BenchOptions): Promise<BenchResult> {
  const t = loadTopology(path.resolve(opts.topology));
  checkPair(t, opts.from, opts.to);
  const leftovers = namespacesWithPrefix(opts.kernelPrefix);
  if (leftovers.length > 0) throw new Error(`namespaces ${leftovers.join(' ')} exist already; this run only deletes what it makes`);
  const res: BenchResult = {
    options: { topology: path.resolve(opts.topology), rounds: opts.rounds, reps: opts.reps, seconds: opts.seconds,
      omitS: opts.omitS, from: opts.from, to: opts.to, stateDir: opts.stateDir, kernelPrefix: opts.kernelPrefix, compare: opts.compare,
      buildB: opts.buildB, restart: opts.restart },
    samples: [], loadBefore: fs.readFileSync('/proc/loadavg', 'utf8').trim(), loadAfter: '',
    cpus: os.cpus().length, startedAt: new Date().toISOString(),
  };
  if (opts.compare === 'port-security') {
    // The same topology twice: every port in a group that accepts the stream, and every port
    // with port security off (lab/bench-variants.ts); files of this run, removed at its end.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-bench-topo-'));
    try {
      const text = fs.readFileSync(path.resolve(opts.topology), 'utf8');
      const files = (['filtered', 'unfiltered'] as const).map((v) => {
        const f = path.join(dir, `${v}-${path.basename(opts.topology)}`);
        fs.writeFileSync(f, benchTopology(text, v, IPERF_PORT));
        return { sys: v, file: f, t: loadTopology(f) };
      });
      for (let round = 1; round <= opts.rounds; round++) {
        // Alternate which goes first, so neither always runs on a machine the other warmed.
        const order = round % 2 === 1 ? files : [...files].reverse();
        for (const v of order) await flowdPhase(v.t, v.file, v.sys, round, opts, res.samples);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  } else if (opts.compare === 'build') {
    const other = path.join(path.resolve(opts.buildB), 'dist', 'src', 'cli', 'flowd.js');
    if (!fs.existsSync(other)) throw new Error(`--build-b ${opts.buildB}: no dist/src/cli/flowd.js there (build that tree first)`);
    const file = path.resolve(opts.topology);
    const js: Partial<Record<System, string>> = { flowd: opts.restart === 'b' ? '' : FLOWD, 'flowd-b': other };
    for (let round = 1; round <= opts.rounds; round++) {
      const order: System[] = round % 2 === 1 ? ['flowd', 'flowd-b'] : ['flowd-b', 'flowd'];
      for (const sys of order) await flowdPhase(t, file, sys, round, opts, res.samples, js[sys]);
    }
  } else if (opts.compare === 'snat') {
    const ns = northSouthPair(t);
    res.northSouth = ns;
    opts.print(`SNAT: ${ns.snatVm} -> upstream ${ns.upstream}; floating IP: ${ns.fipVm} -> upstream\n`);
    for (let round = 1; round <= opts.rounds; round++) await northSouthPhase(path.resolve(opts.topology), ns, round, opts, res.samples);
  } else {
    let greAsVxlan = false;
    if (t.networks.some((n) => n.type === 'gre')) {
      const why = kernelGretapProbe(opts.kernelPrefix);
      greAsVxlan = why !== '';
      if (greAsVxlan) {
        res.kernelNote = `kernel peer: GRE networks built as kernel VXLAN (same VNI and MTU): this kernel makes no gretap (${why})`;
        opts.print(`${res.kernelNote}\n`);
      }
    }
    for (let round = 1; round <= opts.rounds; round++) {
      await flowdPhase(t, path.resolve(opts.topology), 'flowd', round, opts, res.samples);
      await kernelPhase(t, round, opts, res.samples, greAsVxlan);
    }
  }
  res.loadAfter = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  return res;
}

/** The summary table: per direction the medians and their ratio; then flowd's cost per node. */
export function formatTable(r: BenchResult): string {
  const o = r.options;
  const trafficS = o.seconds + o.omitS;
  const lines: string[] = [];
  const g = (x: number): string => (Number.isNaN(x) ? '-' : (x / 1e9).toFixed(3));
  const label = (dir: Direction): string => (o.compare === 'snat' ? (dir === 'forward' ? 'VM -> upstream' : 'upstream -> VM')
    : dir === 'forward' ? `${o.from} -> ${o.to}` : `${o.to} -> ${o.from}`);
  const dirs: Direction[] = ['forward', 'reverse'];
  const [one, two] = SYSTEMS[o.compare ?? 'kernel'];
  if (o.compare === 'port-security') {
    lines.push(`${one}: every VM port in group ${BENCH_GROUP} (tcp/${IPERF_PORT} and ICMP in, all out), firewall_driver openvswitch; ` +
      `${two}: the same topology with port_security_enabled false on every port`);
  }
  if (r.northSouth !== undefined) {
    lines.push(`${one}: ${r.northSouth.snatVm} <-> upstream ${r.northSouth.upstream} through SNAT; ${two}: ${r.northSouth.fipVm} <-> upstream by its floating IP`);
  }
  if (o.compare === 'build') {
    lines.push(o.restart === 'b' ? `${one}: this tree's daemons as lab up started them; ${two}: every daemon restarted from ${o.buildB} after lab up`
      : `${one}: every daemon restarted from this tree after lab up; ${two}: from ${o.buildB}`);
  }
  if (r.kernelNote !== undefined) lines.push(r.kernelNote);
  lines.push(`iperf3 TCP, ${o.seconds} s per run${o.omitS > 0 ? ` (after ${o.omitS} s omitted)` : ''}, ` +
    `${o.rounds} round(s) x ${o.reps} run(s) per direction and system, medians; ${r.cpus} CPUs`);
  lines.push(`load average before: ${r.loadBefore}; after: ${r.loadAfter}`);
  lines.push('');
  lines.push(`${'direction'.padEnd(14)} ${`${one} Gbit/s`.padStart(12)} ${`${two} Gbit/s`.padStart(13)} ${`${one}/${two}`.padStart(12)}` +
    ` ${`${one} retr`.padStart(10)} ${`${two} retr`.padStart(11)} ${'host busy'.padStart(9)}`);
  for (const dir of dirs) {
    const f = r.samples.filter((s) => s.system === one && s.direction === dir);
    const k = r.samples.filter((s) => s.system === two && s.direction === dir);
    const fm = median(f.map((s) => s.bps));
    const km = median(k.map((s) => s.bps));
    lines.push(`${label(dir).padEnd(14)} ${g(fm).padStart(12)} ${g(km).padStart(13)} ${(km > 0 ? (fm / km).toFixed(3) : '-').padStart(12)}` +
      ` ${String(median(f.map((s) => s.retransmits))).padStart(10)} ${String(median(k.map((s) => s.retransmits))).padStart(11)}` +
      ` ${`${median(r.samples.filter((s) => s.direction === dir).map((s) => s.hostBusyPct)).toFixed(0)}%`.padStart(9)}`);
  }
  lines.push('');
  lines.push(`flowd daemons during the flowd runs (medians; CPU over the ${trafficS} s of traffic; ` +
    'us/pkt = CPU time / frames received; dp ns/pkt = the datapath\'s own busy time per frame):');
  lines.push(`${'direction'.padEnd(14)} ${'node'.padEnd(4)} ${'CPU'.padStart(5)} ${'sys'.padStart(5)} ${'kpps rx'.padStart(8)}` +
    ` ${'us/pkt'.padStart(7)} ${'pkts/batch'.padStart(10)} ${'dp ns/pkt'.padStart(9)}`);
  const withDaemons = o.compare === 'kernel' || o.compare === undefined ? [one] : [one, two];
  for (const dir of dirs) for (const sys of withDaemons) {
    const f = r.samples.filter((s) => s.system === sys && s.direction === dir);
    const nodes = f.length > 0 ? Object.keys(f[0].daemonCpuS) : [];
    for (const n of nodes) {
      const cpuPct = median(f.map((s) => (100 * s.daemonCpuS[n]) / trafficS));
      const sysPct = median(f.map((s) => (s.daemonCpuS[n] > 0 ? (100 * s.daemonSysS[n]) / s.daemonCpuS[n] : 0)));
      const kpps = median(f.map((s) => s.daemonRxPackets[n] / trafficS / 1000));
      const usPkt = median(f.map((s) => (s.daemonRxPackets[n] > 0 ? (1e6 * s.daemonCpuS[n]) / s.daemonRxPackets[n] : NaN)));
      const perBatch = median(f.map((s) => (s.daemonRxBatches[n] > 0 ? s.daemonRxPackets[n] / s.daemonRxBatches[n] : NaN)));
      const dpNs = median(f.map((s) => (s.daemonRxPackets[n] > 0 ? s.daemonBusyNs[n] / s.daemonRxPackets[n] : NaN)));
      const fx = (x: number, d: number): string => (Number.isNaN(x) ? '-' : x.toFixed(d));
      lines.push(`${label(dir).padEnd(14)} ${withDaemons.length > 1 ? `${sys.padEnd(10)} ` : ''}${n.padEnd(4)} ${`${fx(cpuPct, 0)}%`.padStart(5)} ${`${fx(sysPct, 0)}%`.padStart(5)}` +
        ` ${fx(kpps, 1).padStart(8)} ${fx(usPkt, 1).padStart(7)} ${fx(perBatch, 2).padStart(10)} ${fx(dpNs, 0).padStart(9)}`);
    }
  }
  lines.push('');
  for (const sys of [one, two]) {
    lines.push(`${sys} runs, Gbit/s in order: ` + dirs.map((d) => `${d} [${r.samples.filter((s) => s.system === sys && s.direction === d)
      .map((s) => (s.bps / 1e9).toFixed(3)).join(' ')}]`).join(', '));
  }
  return `${lines.join('\n')}\n`;
}

// --- profile: one node's daemon under --cpu-prof ---------------------------------------------

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

/** Self time per function of a .cpuprofile, hottest first, as "share%  name (file:line)". */
export function topSelfTime(file: string, n: number): string[] {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>(p.nodes.map((x) => [x.id, x]));
  const selfUs = new Map<string, number>();
  let totalUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i]);
    const dt = p.timeDeltas[i] ?? 0;
    if (node === undefined) continue;
    const cf = node.callFrame;
    const key = `${cf.functionName || '(anonymous)'} (${path.basename(cf.url || '')}${cf.url ? `:${cf.lineNumber + 1}` : ''})`;
    selfUs.set(key, (selfUs.get(key) ?? 0) + dt);
    totalUs += dt;
  }
  return [...selfUs.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([k, us]) => `${((100 * us) / Math.max(totalUs, 1)).toFixed(1).padStart(5)}%  ${k}`);
}

/**
 * Brings the flowd lab up, restarts `node`'s daemon under `node --cpu-prof`, runs iperf3
 * forward for `seconds`, stops the lab (the daemon writes its profile on its clean exit) and
 * returns the profile's path and its hottest functions.
 */
export async function profileNode(topology: string, nodeName: string, seconds: number, outDir: string, stateDir: string,
                                  print: (s: string) => void, from = 'VM1', to = 'VM2'): Promise<{ file: string; top: string[] }> {
  const t = loadTopology(path.resolve(topology));
  checkPair(t, from, to);
  await waitNoNamespaces('fl-', 10 * 60 * 1000, print);
  fs.mkdirSync(outDir, { recursive: true });
  live.flowdDir = stateDir;
  try {
    await up(topology, stateDir, () => undefined);
    const st = readState(stateDir) as LabState;
    const d = st.daemons.find((x) => x.node === nodeName);
    if (d === undefined) throw new Error(`no daemon for node ${nodeName}`);
    const profPid = await restartDaemon(stateDir, d, FLOWD, ['--cpu-prof', '--cpu-prof-dir', outDir]);
    await sleepMs(500);
    const server = t.ports.find((p) => p.name === to)!;
    const r = await iperfTcp(vmNs(from), vmNs(to), server.fixedIps[0].ip, seconds, false);
    if (r.error !== '') throw new Error(`iperf3: ${r.error}`);
    print(`profiled run: ${(r.bps / 1e9).toFixed(3)} Gbit/s ${from} -> ${to}, ${nodeName} under --cpu-prof (pid ${profPid})\n`);
    const before = new Set(fs.readdirSync(outDir));
    process.kill(profPid, 'SIGTERM');
    for (let k = 0; k < 100; k++) {
      const fresh = fs.readdirSync(outDir).filter((f) => f.endsWith('.cpuprofile') && !before.has(f));
      if (fresh.length > 0) {
        await sleepMs(300);
        const file = path.join(outDir, fresh[0]);
        return { file, top: topSelfTime(file, 25) };
      }
      await sleepMs(100);
    }
    throw new Error(`no .cpuprofile appeared in ${outDir}`);
  } finally {
    await down(stateDir);
    live.flowdDir = '';
  }
}

/** Throws when this machine cannot run the bench (root, iperf3, a built flowd). */
export function preflight(): void {
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces)');
  if (spawnSync('which', ['iperf3']).status !== 0) throw new Error('iperf3 is not installed');
  if (!fs.existsSync(FLOWD)) throw new Error(`${FLOWD} missing: build first (npx tsc -p .)`);
}
