/**
 * Real etcd members for tests and the control bench: Debian's `etcd` (3.4) started on loopback
 * with temp data dirs, one member or a cluster, each stoppable and restartable by PID. Not a
 * test itself.
 *
 * Ownership: an EtcdCluster remembers every process it started; cleanup() stops them by PID
 * (SIGTERM, SIGKILL after 3 s) and deletes the data dirs, never throws, so an `after` hook can
 * always call it. Ports: clientPort(i) = base + 2i, peer port = base + 2i + 1, so give each
 * test file its own base.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EtcdClient } from '../../src/control/etcd-client';

/** false when etcd can be started here, else why the test skips. */
export function etcdSkipReason(): string | false {
  if (spawnSync('sh', ['-c', 'command -v etcd'], { stdio: 'ignore' }).status !== 0) {
    return 'etcd is not installed (Debian: apt-get install etcd-server etcd-client; scripts/setup.sh does)';
  }
  return false;
}

function sleepMs(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class EtcdCluster {
  readonly dir: string;
  private readonly procs: (ChildProcess | null)[];
  constructor(readonly basePort: number, readonly nMembers = 1, readonly host = '127.0.0.1') {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-et-'));
    this.procs = new Array<ChildProcess | null>(nMembers).fill(null);
  }

  clientPort(i: number): number { return this.basePort + 2 * i; }
  private peerPort(i: number): number { return this.basePort + 2 * i + 1; }
  private memberName(i: number): string { return `et${i}`; }

  /** etcd://H:P,.../PREFIX naming every member. */
  url(prefix: string): string {
    return `etcd://${[...Array(this.nMembers).keys()].map((i) => `${this.host}:${this.clientPort(i)}`).join(',')}/${prefix}`;
  }

  logOf(i: number): string {
    try { return fs.readFileSync(path.join(this.dir, `${this.memberName(i)}.log`), 'utf8'); } catch { return ''; }
  }

  /** Starts member `i` (a new cluster on first start; the same data dir on a restart). */
  startMember(i: number): void {
    const name = this.memberName(i);
    const cluster = [...Array(this.nMembers).keys()].map((k) => `${this.memberName(k)}=http://${this.host}:${this.peerPort(k)}`).join(',');
    const fd = fs.openSync(path.join(this.dir, `${name}.log`), 'a');
    const p = spawn('etcd', [
      '--name', name, '--data-dir', path.join(this.dir, name),
      '--listen-client-urls', `http://${this.host}:${this.clientPort(i)}`, '--advertise-client-urls', `http://${this.host}:${this.clientPort(i)}`,
      '--listen-peer-urls', `http://${this.host}:${this.peerPort(i)}`, '--initial-advertise-peer-urls', `http://${this.host}:${this.peerPort(i)}`,
      '--initial-cluster', cluster, '--initial-cluster-state', 'new', '--initial-cluster-token', `flowd-et-${this.basePort}`,
      '--max-txn-ops', '8192', '--heartbeat-interval', '50', '--election-timeout', '500',
    ], { stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    this.procs[i] = p;
  }

  /**
   * Starts every member and waits until a write succeeds (a leader is elected), then checks
   * that every member it started still runs: a port held by another etcd (a second run of the
   * same test file on this machine) makes a member exit at once, and the write would have
   * reached the other run's etcd.
   */
  async start(timeoutMs = 20000): Promise<void> {
    for (let i = 0; i < this.nMembers; i++) this.startMember(i);
    await this.waitReady(timeoutMs);
    for (let i = 0; i < this.nMembers; i++) {
      const p = this.procs[i];
      if (p === null || p.exitCode !== null || p.signalCode !== null) {
        throw new Error(`etcd member ${i} (client port ${this.clientPort(i)}) exited at start: is the port taken?\n${this.logOf(i).slice(-1000)}`);
      }
    }
  }

  async waitReady(timeoutMs = 20000, member = -1): Promise<void> {
    const eps = member >= 0 ? [member] : [...Array(this.nMembers).keys()];
    const c = new EtcdClient(eps.map((i) => ({ host: this.host, port: this.clientPort(i) })), 1000);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await c.put('/et-ready', String(Date.now()));
        return;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`etcd not ready after ${timeoutMs} ms: ${(e as Error).message}\n${this.logOf(0).slice(-2000)}`);
        await sleepMs(100);
      }
    }
  }

  /** Stops member `i` by PID (SIGTERM, SIGKILL after 3 s); resolves when it exited. */
  async stopMember(i: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.procs[i];
    this.procs[i] = null;
    if (p === null || p.pid === undefined || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    try { process.kill(p.pid, signal); } catch { return; }
    const t = setTimeout(() => { try { if (p.pid !== undefined) process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }, 3000);
    await gone;
    clearTimeout(t);
  }

  async cleanup(): Promise<void> {
    for (let i = 0; i < this.nMembers; i++) {
      try { await this.stopMember(i); } catch { /* keep going */ }
    }
    try { fs.rmSync(this.dir, { recursive: true, force: true }); } catch { /* ignore */ }
  }
}
