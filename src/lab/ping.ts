/**
 * Pings from a namespace and captured frames read back: what the lab's pings and checks see.
 *
 * Called by: lab/lab.ts, lab/lab-check*.ts and the lab tests.
 */
import { spawnSync } from 'node:child_process';
import { readPcap } from '../netdev/pcap-file';

export interface PingResult {
  from: string;
  to: string;
  toIp: string;
  sent: number;
  received: number;
  rttMs: string;
}

export function ping(fromNs: string, ip: string, count: number, intervalS = 0.2): { sent: number; received: number; rttMs: string } {
  const r = spawnSync('ip', ['netns', 'exec', fromNs, 'ping', '-c', String(count), '-i', String(intervalS), '-W', '2', ip],
    { encoding: 'utf8' });
  const out = r.stdout ?? '';
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  const rtt = /= ([\d.]+)\/([\d.]+)\/([\d.]+)/.exec(out);
  return { sent: m ? Number(m[1]) : count, received: m ? Number(m[2]) : 0, rttMs: rtt ? `${rtt[1]}/${rtt[2]}/${rtt[3]}` : '-' };
}

/** Reads every frame of a capture file (for checks). */
export async function framesOf(file: string): Promise<Uint8Array[]> {
  return (await readPcap(file)).records.map((r) => r.data);
}
