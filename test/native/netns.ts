/**
 * Helpers for the root-only native tests: why to skip, shell commands, and cleanup of the
 * `fn-` namespaces and links a test made (also when it fails). Not a test itself.
 * Every test file uses its own names (fn-p*, fn-o*, fn-t*) so files can run in parallel.
 */
import { spawn, spawnSync } from 'node:child_process';
import { nativeAvailable, nativeLoadError } from '../../src/native/io';
import { sh, trySh } from '../../src/lab/shell';
import { sum16 } from '../helpers/sum16';

/** false when the test can run, else the reason to skip. */
export function rootSkipReason(needNetns: boolean): string | false {
  if (!nativeAvailable()) return `native addon not built (${nativeLoadError()}): run scripts/build-native.sh`;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'needs root (CAP_NET_RAW, CAP_NET_ADMIN)';
  if (needNetns) {
    const name = `fn-probe${process.pid % 100000}`;
    const r = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
    if (r.status !== 0) return `ip netns does not work here: ${(r.stderr || r.error?.message || '').trim()}`;
    spawnSync('ip', ['netns', 'del', name]);
  }
  return false;
}

/** Runs `ip`/`sysctl`/... and returns stdout; throws with stderr on failure (lab/shell.ts). */
export const run = sh;

/** Runs and ignores failure (cleanup). */
export const tryRun = trySh;

/** A veth pair in the root namespace, both ends up, IPv6 off (no autoconf noise). */
export function vethPair(a: string, b: string): void {
  tryRun('ip', 'link', 'del', a);
  run('ip', 'link', 'add', a, 'type', 'veth', 'peer', 'name', b);
  for (const n of [a, b]) {
    tryRun('sysctl', '-qw', `net.ipv6.conf.${n}.disable_ipv6=1`);
    run('ip', 'link', 'set', n, 'up');
  }
}

/**
 * Namespace `ns` with a veth to the root namespace: `${ns}0` in the root, `${ns}1` in `ns` with
 * address ip/24; lo and both ends up, IPv6 off on the root end.
 */
export function nsBehindVeth(ns: string, ip: string): void {
  run('ip', 'netns', 'add', ns);
  run('ip', 'link', 'add', `${ns}0`, 'type', 'veth', 'peer', 'name', `${ns}1`, 'netns', ns);
  run('sysctl', '-qw', `net.ipv6.conf.${ns}0.disable_ipv6=1`);
  run('ip', 'link', 'set', `${ns}0`, 'up');
  run('ip', '-n', ns, 'link', 'set', 'lo', 'up');
  run('ip', '-n', ns, 'link', 'set', `${ns}1`, 'up');
  run('ip', '-n', ns, 'addr', 'add', `${ip}/24`, 'dev', `${ns}1`);
}

/**
 * Runs argv in namespace `ns` without blocking the event loop (the test's own forwarding runs
 * meanwhile); resolves with its stdout, rejects with its stderr. onStdout sees the output so far.
 */
export function nsRun(ns: string, argv: string[], onStdout?: (s: string) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); if (onStdout) onStdout(out); });
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${argv.join(' ')} in ${ns}: exit ${code}: ${err}`))));
  });
}

/**
 * Starts a receiver in namespace `ns` (python3 that prints "ready" on its own line, flushed, once
 * its socket is bound, then its result): `ready` resolves when that line came (a sender started
 * after it cannot lose datagrams to an unbound port, however slowly python started), `done`
 * with the output after it.
 */
export function nsReceiver(ns: string, argv: string[]): { ready: Promise<void>; done: Promise<string> } {
  let bound: () => void = () => undefined;
  const ready = new Promise<void>((r) => { bound = r; });
  const done = nsRun(ns, argv, (out) => { if (out.startsWith('ready\n')) bound(); })
    .then((out) => out.replace(/^ready\n/, ''));
  // A receiver that fails before its line rejects `ready` too.
  return { ready: Promise.race([ready, done.then(() => undefined)]), done };
}

/**
 * Streams `mb` MiB over TCP from namespace `fromNs` to a listener on dst:port in `toNs` (python3
 * on both ends; `src` binds the sender's address when given). Resolves with what each end saw
 * as "bytes sha256": equal when every byte arrived in order.
 */
export async function tcpStream(fromNs: string, toNs: string, dst: string, port: number, mb: number,
                                src = '', timeoutS = 20): Promise<{ sent: string; got: string }> {
  const rx = nsReceiver(toNs, ['python3', '-c', `
import socket,hashlib
l=socket.socket(); l.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); l.bind(('${dst}',${port})); l.listen(1)
print('ready',flush=True)
l.settimeout(${timeoutS}); c,_=l.accept(); c.settimeout(${timeoutS}); h=hashlib.sha256(); n=0
while True:
  d=c.recv(1<<16)
  if not d: break
  h.update(d); n+=len(d)
print(n,h.hexdigest())`]);
  await rx.ready;
  const tx = await nsRun(fromNs, ['python3', '-c', `
import socket,hashlib,time
blk=bytes((i*7+3)&255 for i in range(1<<20)); h=hashlib.sha256()
t=time.time()+${timeoutS}
while True:
  try: s=socket.create_connection(('${dst}',${port}),timeout=${timeoutS},source_address=('${src}',0)); break
  except ConnectionRefusedError:
    if time.time()>t: raise
    time.sleep(0.05)
for i in range(${mb}):
  s.sendall(blk); h.update(blk)
s.shutdown(socket.SHUT_WR); s.recv(1); s.close(); print(${mb}<<20,h.hexdigest())`]);
  return { sent: tx.trim(), got: (await rx.done).trim() };
}

/** Deletes links and namespaces; never throws. */
export function cleanup(links: string[], namespaces: string[] = []): void {
  for (const l of links) tryRun('ip', 'link', 'del', l);
  for (const n of namespaces) tryRun('ip', 'netns', 'del', n);
}

/** For an untagged IPv4 TCP/UDP frame: true when the IPv4 and L4 checksums verify. */
export function ipv4ChecksumsOk(f: Uint8Array): boolean {
  const ihl = (f[14] & 15) * 4;
  if (sum16(f, 14, ihl) !== 0xffff) return false;
  const l4 = 14 + ihl;
  const ipLen = (f[16] << 8) | f[17];
  const l4Len = ipLen - ihl;
  const proto = f[23];
  if (proto === 17 && f[l4 + 6] === 0 && f[l4 + 7] === 0) return true; // no UDP checksum
  return sum16(f, l4, l4Len, sum16(f, 26, 8) + proto + l4Len) === 0xffff;
}
