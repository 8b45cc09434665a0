/**
 * Namespace lab for the integration tests (test/integration/): network namespaces and veths
 * with a per-file prefix, flowd daemons started inside a namespace as child processes, and
 * commands run in namespaces. Not a test itself.
 *
 * Ownership: a Lab remembers every namespace, link and daemon it made; cleanup() stops the
 * daemons by PID (SIGTERM, then SIGKILL after 3 s), deletes the links and namespaces, and never
 * throws, so an `after` hook can always call it, also after a failed test. Names are
 * `<prefix><short>`; interface names must stay <= 15 characters (IFNAMSIZ - 1), so prefixes are
 * short (`fi-`, `ft-`, ...) and each test file has its own, so files can run in parallel; a
 * prefix is claimed per process (NetLab.claim), so two runs of one file wait for each other.
 *
 * A daemon is `ip netns exec NS node dist/src/cli/flowd.js --config ...`; `ip netns exec`
 * replaces itself with node (no fork), so the child's PID is the daemon's. Its stdout and
 * stderr (the structured log) go to a file in the lab's temp directory; a failed start throws
 * with that log.
 */
import { ChildProcess, spawn, spawnSync, SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { request } from '../../src/control/client';
import { CommandArgs, JsonValue } from '../../src/control/server';
import { rootSkipReason } from '../native/netns';
import { newNamespace, sh, trySh } from '../../src/lab/shell';

export { sh };

/** dist/src/cli/ as seen from dist/test/helpers/. */
const CLI_DIR = path.resolve(__dirname, '../../src/cli');
export const FLOWD_JS = path.join(CLI_DIR, 'flowd.js');
/** Where test processes claim their name prefixes (NetLab.claim). */
const CLAIM_DIR = '/run/flowd-netlab';
export const FLOWCTL_JS = path.join(CLI_DIR, 'flowctl.js');

/** false when the integration tests can run, else why they skip. `tools`: programs they need. */
export function labSkipReason(tools: string[] = []): string | false {
  const r = rootSkipReason(true);
  if (r !== false) return r;
  if (!fs.existsSync(FLOWD_JS)) return `${FLOWD_JS} missing: run npx tsc -p .`;
  for (const t of tools) {
    if (spawnSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }).status !== 0) return `${t} is not installed`;
  }
  return false;
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

function result(r: SpawnSyncReturns<string>): RunResult {
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error ? r.error.message : '') };
}

export function sleepMs(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A running flowd: its PID, control socket and log; stop() is idempotent and never throws. */
export class FlowdDaemon {
  private exited = false;
  exitCode: number | null = null;
  exitSignal: string | null = null;

  constructor(readonly ns: string, readonly child: ChildProcess, readonly socket: string,
              readonly pidFile: string, readonly logFile: string) {
    child.on('exit', (code, signal) => {
      this.exited = true;
      this.exitCode = code;
      this.exitSignal = signal;
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return !this.exited;
  }

  log(): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** One control request (control/client.ts); rejects with the daemon's error code. */
  request(cmd: string, args: CommandArgs = {}, timeoutMs = 10000): Promise<JsonValue> {
    return request(this.socket, cmd, args, timeoutMs);
  }

  /** Runs flowctl against this daemon (from the root namespace: the socket is a file). */
  flowctl(...args: string[]): RunResult {
    return result(spawnSync(process.execPath, [FLOWCTL_JS, '--socket', this.socket, ...args],
      { encoding: 'utf8', timeout: 30000 }));
  }

  /** Async flowctl, so the test's event loop (and other children) keep running. */
  flowctlAsync(...args: string[]): Promise<RunResult> {
    return runAsync(process.execPath, [FLOWCTL_JS, '--socket', this.socket, ...args]);
  }

  /** SIGTERM by PID, SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.exited || this.child.pid === undefined) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    try {
      process.kill(this.child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const t = setTimeout(() => {
      try {
        if (!this.exited && this.child.pid !== undefined) process.kill(this.child.pid, 'SIGKILL');
      } catch { /* gone */ }
    }, graceMs);
    await gone;
    clearTimeout(t);
  }
}

/** Runs a command without blocking the event loop; never rejects. */
export function runAsync(cmd: string, args: string[], timeoutMs = 60000): Promise<RunResult> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    c.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    const t = setTimeout(() => { try { c.kill('SIGKILL'); } catch { /* gone */ } }, timeoutMs);
    c.on('error', (e) => { clearTimeout(t); resolve({ status: -1, stdout: out, stderr: err + e.message }); });
    c.on('close', (code) => { clearTimeout(t); resolve({ status: code ?? -1, stdout: out, stderr: err }); });
  });
}

export class Lab {
  readonly dir: string;
  private readonly namespaces: string[] = [];
  private readonly links: { name: string; ns: string }[] = [];
  private readonly daemons: FlowdDaemon[] = [];
  private readonly children: ChildProcess[] = [];

  private claimed = false;
  private readonly releaseHook = (): void => this.release();

  /** `prefix`: this test file's own name prefix, e.g. 'fi-' (keep it 3 characters). */
  constructor(readonly prefix: string) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `flowd-${prefix}`));
  }

  /**
   * Claims the prefix for this process before its first namespace: two runs of one test file
   * at once (a developer's and CI's, on one machine) would otherwise delete each other's
   * namespaces as stale. The claim is a file holding the owner's PID, created exclusively; a
   * live owner is waited for (up to 20 minutes), a dead one's claim is taken over.
   */
  private claim(): void {
    if (this.claimed) return;
    fs.mkdirSync(CLAIM_DIR, { recursive: true });
    const file = path.join(CLAIM_DIR, `${this.prefix}claim`);
    const deadline = Date.now() + 20 * 60_000;
    for (;;) {
      try {
        fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      let owner = 0;
      try { owner = Number(fs.readFileSync(file, 'utf8')); } catch { continue; }
      if (!(owner > 0) || !fs.existsSync(`/proc/${owner}`)) {
        try { fs.unlinkSync(file); } catch { /* another waiter took it */ }
        continue;
      }
      if (Date.now() > deadline) throw new Error(`prefix ${this.prefix} held by PID ${owner} for 20 minutes`);
      spawnSync('sleep', ['0.5']);
    }
    this.claimed = true;
    process.on('exit', this.releaseHook);
  }

  /** Gives the prefix back (cleanup() and process exit). */
  private release(): void {
    if (!this.claimed) return;
    this.claimed = false;
    process.removeListener('exit', this.releaseHook);
    const file = path.join(CLAIM_DIR, `${this.prefix}claim`);
    try {
      if (fs.readFileSync(file, 'utf8') === String(process.pid)) fs.unlinkSync(file);
    } catch { /* gone */ }
  }

  /** The full name of a namespace or interface; throws if it would exceed 15 characters. */
  name(short: string): string {
    const n = this.prefix + short;
    if (n.length > 15) throw new Error(`interface name ${n} is longer than 15 characters`);
    return n;
  }

  /** Creates namespace <prefix><short> with lo up, IPv6 off; removes a stale one first. */
  addNs(short: string): string {
    this.claim();
    const ns = this.name(short);
    newNamespace(ns);
    this.namespaces.push(ns);
    return ns;
  }

  /**
   * A veth pair: `a` in namespace `nsA`, `b` in `nsB`, both up. Optional MACs and IPv4
   * addresses (CIDR). Returns the full interface names.
   */
  veth(a: string, nsA: string, b: string, nsB: string,
       opt: { ipA?: string; ipB?: string; macA?: string; macB?: string; mtu?: number } = {}): [string, string] {
    this.claim();
    const na = this.name(a);
    const nb = this.name(b);
    const mtu = opt.mtu ? ['mtu', String(opt.mtu)] : [];
    const args = ['link', 'add', na, 'netns', nsA, ...mtu];
    if (opt.macA) args.push('address', opt.macA);
    args.push('type', 'veth', 'peer', 'name', nb, 'netns', nsB, ...mtu);
    if (opt.macB) args.push('address', opt.macB);
    sh('ip', ...args);
    this.links.push({ name: na, ns: nsA });
    for (const [n, ns, ip] of [[na, nsA, opt.ipA], [nb, nsB, opt.ipB]] as [string, string, string | undefined][]) {
      if (ip) this.exec(ns, 'ip', 'addr', 'add', ip, 'dev', n);
      this.exec(ns, 'ip', 'link', 'set', n, 'up');
    }
    return [na, nb];
  }

  /**
   * Runs a command in a namespace; throws with stderr on failure; returns stdout. `ip` itself
   * runs as `ip -n ns` (one process where `ip netns exec ns ip` is two).
   */
  exec(ns: string, cmd: string, ...args: string[]): string {
    try {
      return cmd === 'ip' ? sh('ip', '-n', ns, ...args) : sh('ip', 'netns', 'exec', ns, cmd, ...args);
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`[${ns}] ${cmd} ${args.join(' ')}: ${(err.stderr ?? '').trim() || err.message}`);
    }
  }

  /** Runs a command in a namespace and returns status and output (no throw). */
  run(ns: string, cmd: string, ...args: string[]): RunResult {
    return result(spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: 120000 }));
  }

  /** Same, without blocking the event loop (for work that overlaps other work). */
  runAsync(ns: string, cmd: string, args: string[], timeoutMs = 60000): Promise<RunResult> {
    return runAsync('ip', ['netns', 'exec', ns, cmd, ...args], timeoutMs);
  }

  /**
   * Starts a long-running process in a namespace (tcpdump, iperf3 -s); its PID is tracked and
   * it is stopped (SIGTERM, then SIGKILL) by cleanup() or stopChild().
   */
  spawnIn(ns: string, cmd: string, args: string[], outFile?: string): ChildProcess {
    const fd = outFile ? fs.openSync(outFile, 'w') : 'ignore';
    const c = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', fd, fd] });
    if (typeof fd === 'number') fs.closeSync(fd);
    this.children.push(c);
    return c;
  }

  /** Stops a child started by spawnIn, by its PID; resolves when it exited. */
  async stopChild(c: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    try { process.kill(c.pid, signal); } catch { return; }
    const t = setTimeout(() => { try { if (c.pid !== undefined) process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } }, 3000);
    await gone;
    clearTimeout(t);
  }

  /** Writes `text` into the lab directory and returns the path. */
  file(name: string, text: string): string {
    const p = path.join(this.dir, name);
    fs.writeFileSync(p, text);
    return p;
  }

  /**
   * Starts flowd in namespace `ns` with config text `yaml` (written as <tag>.yaml) and waits
   * until its control socket answers `show`. Throws with the daemon's log if it exits or does
   * not answer within `timeoutMs`.
   */
  async startFlowd(ns: string, tag: string, yaml: string, timeoutMs = 15000, extraArgs: string[] = []): Promise<FlowdDaemon> {
    const config = this.file(`${tag}.yaml`, yaml);
    const socket = path.join(this.dir, `${tag}.sock`);
    const pidFile = path.join(this.dir, `${tag}.pid`);
    const logFile = path.join(this.dir, `${tag}.log`);
    const fd = fs.openSync(logFile, 'w');
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, FLOWD_JS,
      '--config', config, '--socket', socket, '--pid-file', pidFile, ...extraArgs], { stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    const d = new FlowdDaemon(ns, child, socket, pidFile, logFile);
    this.daemons.push(d);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!d.running) throw new Error(`flowd ${tag} exited (code ${d.exitCode}, signal ${d.exitSignal}) before answering:\n${d.log()}`);
      if (fs.existsSync(socket)) {
        try {
          await d.request('show', {}, 2000);
          return d;
        } catch {
          // not ready yet
        }
      }
      if (Date.now() > deadline) throw new Error(`flowd ${tag} did not answer on ${socket} within ${timeoutMs} ms:\n${d.log()}`);
      await sleepMs(50);
    }
  }

  /** Reads /sys/class/net/IF/statistics/NAME inside `ns`. */
  counter(ns: string, ifname: string, name: string): number {
    return Number(this.exec(ns, 'cat', `/sys/class/net/${ifname}/statistics/${name}`).trim());
  }

  /** The MAC of `ifname` in `ns`. */
  mac(ns: string, ifname: string): string {
    return this.exec(ns, 'cat', `/sys/class/net/${ifname}/address`).trim();
  }

  /** Stops every daemon and child by PID, deletes links, namespaces and the temp dir. Never throws. */
  async cleanup(keepDir = false): Promise<void> {
    for (const d of this.daemons) {
      try { await d.stop(); } catch { /* keep going */ }
    }
    for (const c of this.children) {
      try { await this.stopChild(c); } catch { /* keep going */ }
    }
    for (const l of this.links) trySh('ip', '-n', l.ns, 'link', 'del', l.name);
    for (const ns of this.namespaces) trySh('ip', 'netns', 'del', ns);
    this.release();
    if (!keepDir) {
      try { fs.rmSync(this.dir, { recursive: true, force: true }); } catch { /* ignore */ }
    }
  }
}

/** Parses `ping` output: transmitted, received, loss percent and average RTT in ms. */
export function parsePing(out: string): { sent: number; received: number; lossPct: number; avgRttMs: number } {
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received.*?([\d.]+)% packet loss/.exec(out);
  const rtt = /= [\d.]+\/([\d.]+)\//.exec(out);
  return {
    sent: m ? Number(m[1]) : 0,
    received: m ? Number(m[2]) : 0,
    lossPct: m ? Number(m[3]) : 100,
    avgRttMs: rtt ? Number(rtt[1]) : NaN,
  };
}

/** Parses `iperf3 --json` client output: the receiver's bits per second. */
export function iperfBps(jsonText: string): number {
  try {
    const j = JSON.parse(jsonText) as { end?: { sum_received?: { bits_per_second?: number } } };
    return j.end?.sum_received?.bits_per_second ?? 0;
  } catch {
    return 0;
  }
}
