/**
 * Commands on this machine for the lab, node set-up and the namespace tests: run a program,
 * run it inside a namespace, make a namespace and a veth between two namespaces.
 *
 * Called by: the lab's modules (lab/lab.ts, lab/lab-kernel.ts, lab/node-setup.ts, lab/soak.ts,
 * lab/lab-bench.ts and the other lab/lab-*.ts), test/helpers/netlab.ts, test/helpers/ha-netlab.ts,
 * test/native/netns.ts and integration tests. Synchronous (execFileSync): these run while a lab
 * is built or torn down, never on a daemon's datapath.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Where `ip netns add` keeps its namespaces' names. */
const NETNS_DIR = '/run/netns';

/** A command that failed: its command line and what it printed on stderr. */
export class ShellError extends Error {
  constructor(readonly command: string, readonly stderr: string) {
    super(`${command}: ${stderr}`);
    this.name = 'ShellError';
  }
}

/** Runs `cmd args...` and returns its stdout; throws a ShellError with its stderr on failure. */
export function sh(cmd: string, ...args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new ShellError(`${cmd} ${args.join(' ')}`, (err.stderr ?? '').trim() || err.message);
  }
}

/** Runs `cmd args...` ignoring its output; true when it exited 0 (cleanup, probes). */
export function trySh(cmd: string, ...args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore', timeout: 10000 }).status === 0;
}

/** sh() inside network namespace `ns`. */
export function nsx(ns: string, cmd: string, ...args: string[]): string {
  return sh('ip', 'netns', 'exec', ns, cmd, ...args);
}

/** `ip args...` inside namespace `ns`: `ip -n` enters it itself, one process where nsx() is two. */
export function ipIn(ns: string, ...args: string[]): string {
  return sh('ip', '-n', ns, ...args);
}

/** Namespaces on this machine whose name starts with `prefix`. */
export function namespacesWithPrefix(prefix: string): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').map((l) => l.split(' ')[0]).filter((n) => n !== '' && n.startsWith(prefix));
}

/**
 * Makes namespace `ns` (deleting a stale one of that name first) with loopback up and IPv6 off,
 * so no autoconfiguration chatter reaches the lab's wires. Three commands (`ip -n` enters the
 * namespace itself, one process where `ip netns exec ns ip` is two): a lab makes dozens.
 */
export function newNamespace(ns: string): void {
  if (fs.existsSync(path.join(NETNS_DIR, ns))) trySh('ip', 'netns', 'del', ns);
  sh('ip', 'netns', 'add', ns);
  ipIn(ns, 'link', 'set', 'lo', 'up');
  nsx(ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
}

export interface VethOptions {
  /** MAC of end `a` (kept when empty). */
  readonly macA?: string;
  /** MTU of both ends (kept when 0). */
  readonly mtuBytes?: number;
}

/**
 * A veth from `a` in `nsA` to `b` in `nsB`, both up. Each end is made in its own namespace
 * (never in the host's, so no temporary names): one command makes the pair, one brings `b` up.
 */
export function vethBetween(nsA: string, a: string, nsB: string, b: string, opts: VethOptions = {}): void {
  const mtu = opts.mtuBytes ?? 0;
  const mtuArgs = mtu > 0 ? ['mtu', String(mtu)] : [];
  const macArgs = opts.macA !== undefined && opts.macA !== '' ? ['address', opts.macA] : [];
  ipIn(nsA, 'link', 'add', a, ...macArgs, ...mtuArgs, 'up', 'type', 'veth', 'peer', 'name', b, 'netns', nsB, ...mtuArgs);
  ipIn(nsB, 'link', 'set', b, 'up');
}

/**
 * Waits until something in namespace `ns` listens on TCP `port` (a server started in the
 * background, e.g. `iperf3 -s`), polling `ss` every 50 ms; throws after `timeoutMs`. A client
 * started after a fixed sleep instead is refused when the machine is slow to start the server.
 */
export async function waitTcpListener(ns: string, port: number, timeoutMs = 10000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const r = spawnSync('ip', ['netns', 'exec', ns, 'ss', '-Hltn', `sport = :${port}`], { encoding: 'utf8', timeout: 5000 });
    if (r.status === 0 && (r.stdout ?? '').trim() !== '') return;
    if (Date.now() - t0 > timeoutMs) throw new Error(`nothing listens on TCP ${port} in ${ns} after ${timeoutMs} ms`);
    await new Promise<void>((resolve) => setTimeout(resolve, 50));
  }
}
