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

/** Seconds between a ping's echo requests. */
const PING_INTERVAL_S = 0.05;

function pingArgs(fromNs: string, ip: string, count: number, intervalS: number): string[] {
  return ['netns', 'exec', fromNs, 'ping', '-c', String(count), '-i', String(intervalS), '-W', '2', ip];
}

/** What ping printed: packets sent and answered, rtt min/avg/max. */
function pingCount(out: string, count: number): PingCount {
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  const rtt = /= ([\d.]+)\/([\d.]+)\/([\d.]+)/.exec(out);
  return { sent: m ? Number(m[1]) : count, received: m ? Number(m[2]) : 0, rttMs: rtt ? `${rtt[1]}/${rtt[2]}/${rtt[3]}` : '-' };
}

/**
 * `count` echo requests from namespace `fromNs` to `ip`, 50 ms apart (the lab runs as root,
 * which may ping faster than ping's 200 ms floor for users), each answered within 2 s.
 */
export function ping(fromNs: string, ip: string, count: number, intervalS = PING_INTERVAL_S): PingCount {
  const r = spawnSync('ip', pingArgs(fromNs, ip, count, intervalS), { encoding: 'utf8' });
  return pingCount(r.stdout ?? '', count);
}

/** ping() without blocking, for pings that run side by side (pingAll). */
export function pingAsync(fromNs: string, ip: string, count: number, intervalS = PING_INTERVAL_S): Promise<PingCount> {
  return new Promise((resolve) => {
    execFile('ip', pingArgs(fromNs, ip, count, intervalS), { encoding: 'utf8' }, (_e, stdout) => resolve(pingCount(stdout ?? '', count)));
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
