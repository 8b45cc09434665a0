/**
 * Pings from a namespace and captured frames read back: what the lab's pings and checks see.
 *
 * Called by: lab/lab.ts, lab/lab-check*.ts and the lab tests.
 */
import { execFile, spawnSync } from 'node:child_process';
import { readPcap } from '../netdev/pcap-file';

export interface PingResult {
  from: string;
  to: string;
  toIp: string;
  sent: number;
  received: number;
  rttMs: string;
}

export interface PingCount { sent: number; received: number; rttMs: string }

/** Seconds each echo request has for its reply. */
const REPLY_WAIT_S = 2;

/** Options of one ping: `source` is the address to send from (ping -I), not the namespace's own. */
export interface PingOptions { source?: string }

/**
 * The ping command line: `count` echo requests all sent at once (ping's preload, -l), and ping
 * stops when every one is answered or REPLY_WAIT_S after sending them.
 *
 * Why at once and not spaced out: once iputils ping has any reply, it waits after its last
 * request only max(2 x the slowest reply so far, the interval), whatever -W says. With requests
 * 50 ms apart, a first reply held up on a cold path (the far side's ARP, an upcall queue behind
 * a lab's worth of first packets) for more than ~150 ms was counted as lost although it came:
 * CI saw "WEB1 -> upstream: 2/3" where flowd's megaflow for the replies had put all three on
 * WEB1's port, the last 176 ms after the first request. When every request is out before any reply, ping's wait is -W, so "each answered
 * within 2 s" is what a count of replies means. Requests of one ping leave back to back, so the
 * later ones meet the first one's upcall still pending (flowd's queued misses) rather than its
 * installed megaflow.
 */
function pingArgs(fromNs: string, ip: string, count: number, opts: PingOptions): string[] {
  const src = opts.source === undefined ? [] : ['-I', opts.source];
  return ['netns', 'exec', fromNs, 'ping', '-n', '-c', String(count), '-l', String(count), '-W', String(REPLY_WAIT_S), ...src, ip];
}

/** What ping printed: packets sent and answered, rtt min/avg/max. */
function pingCount(out: string, count: number): PingCount {
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  const rtt = /= ([\d.]+)\/([\d.]+)\/([\d.]+)/.exec(out);
  return { sent: m ? Number(m[1]) : count, received: m ? Number(m[2]) : 0, rttMs: rtt ? `${rtt[1]}/${rtt[2]}/${rtt[3]}` : '-' };
}

/** `count` echo requests from namespace `fromNs` to `ip`, each answered within 2 s (pingArgs). */
export function ping(fromNs: string, ip: string, count: number, opts: PingOptions = {}): PingCount {
  const r = spawnSync('ip', pingArgs(fromNs, ip, count, opts), { encoding: 'utf8' });
  return pingCount(r.stdout ?? '', count);
}

/** ping() without blocking, for pings that run side by side (pingAll). */
export function pingAsync(fromNs: string, ip: string, count: number, opts: PingOptions = {}): Promise<PingCount> {
  return new Promise((resolve) => {
    execFile('ip', pingArgs(fromNs, ip, count, opts), { encoding: 'utf8' }, (_e, stdout) => resolve(pingCount(stdout ?? '', count)));
  });
}

/** Pings at most this many at once: each is its own process on a 2-core machine. */
export const PING_PARALLEL = 8;

/**
 * Runs independent pings side by side, at most PING_PARALLEL at once; results in the order of
 * `pings`. Each ping still counts its own replies (its own ICMP id), so one pair's loss is
 * never hidden by another's answers.
 */
export async function pingAll(pings: readonly { fromNs: string; ip: string; count: number }[]): Promise<PingCount[]> {
  const out: PingCount[] = new Array<PingCount>(pings.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < pings.length; i = next++) out[i] = await pingAsync(pings[i].fromNs, pings[i].ip, pings[i].count);
  };
  await Promise.all(Array.from({ length: Math.min(PING_PARALLEL, pings.length) }, worker));
  return out;
}

/** Reads every frame of a capture file (for checks). */
export async function framesOf(file: string): Promise<Uint8Array[]> {
  return (await readPcap(file)).records.map((r) => r.data);
}
