/**
 * Commands on this machine for the lab, node set-up and the namespace tests: run a program,
 * run it inside a namespace, make a namespace and a veth between two namespaces.
 *
 * Called by: lab/lab.ts, lab/lab-kernel.ts, lab/node-setup.ts and test/helpers (netlab.ts,
 * native/netns.ts). Synchronous (execFileSync): these run while a lab is built or torn down,
 * never on a daemon's datapath.
 */
import { execFileSync, spawnSync } from 'node:child_process';

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

/** Namespaces on this machine whose name starts with `prefix`. */
export function namespacesWithPrefix(prefix: string): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').map((l) => l.split(' ')[0]).filter((n) => n !== '' && n.startsWith(prefix));
}

/**
 * Makes namespace `ns` (deleting a stale one of that name first) with loopback up and IPv6 off,
 * so no autoconfiguration chatter reaches the lab's wires.
 */
export function newNamespace(ns: string): void {
  trySh('ip', 'netns', 'del', ns);
  sh('ip', 'netns', 'add', ns);
  nsx(ns, 'ip', 'link', 'set', 'lo', 'up');
  nsx(ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1');
  nsx(ns, 'sysctl', '-qw', 'net.ipv6.conf.default.disable_ipv6=1');
}

export interface VethOptions {
  /** Prefix of the temporary names the pair has before it moves (the caller's own prefix). */
  readonly tmpPrefix: string;
  /** MAC of end `a` (kept when empty). */
  readonly macA?: string;
  /** MTU of both ends (kept when 0). */
  readonly mtuBytes?: number;
}

/** A veth from `a` in `nsA` to `b` in `nsB`, both up. */
export function vethBetween(nsA: string, a: string, nsB: string, b: string, opts: VethOptions): void {
  const t0 = `${opts.tmpPrefix}tmp0`;
  const t1 = `${opts.tmpPrefix}tmp1`;
  sh('ip', 'link', 'add', t0, 'type', 'veth', 'peer', 'name', t1);
  sh('ip', 'link', 'set', t0, 'netns', nsA);
  sh('ip', 'link', 'set', t1, 'netns', nsB);
  nsx(nsA, 'ip', 'link', 'set', t0, 'name', a);
  nsx(nsB, 'ip', 'link', 'set', t1, 'name', b);
  if (opts.macA !== undefined && opts.macA !== '') nsx(nsA, 'ip', 'link', 'set', a, 'address', opts.macA);
  const mtu = opts.mtuBytes ?? 0;
  if (mtu > 0) {
    nsx(nsA, 'ip', 'link', 'set', a, 'mtu', String(mtu));
    nsx(nsB, 'ip', 'link', 'set', b, 'mtu', String(mtu));
  }
  nsx(nsA, 'ip', 'link', 'set', a, 'up');
  nsx(nsB, 'ip', 'link', 'set', b, 'up');
}
