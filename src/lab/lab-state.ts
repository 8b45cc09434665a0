/**
 * The lab's names and its state file: the namespace prefixes, which namespace a node or VM
 * port lives in, and what `lab up` made (read back by status, check and down).
 *
 * Called by: lab/lab.ts, lab/lab-check*.ts, lab/lab-bench.ts and the lab tests.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TopoNode, TopoPort } from '../dvr/topology';

export const PREFIX = 'fl-';
export const UL_NS = 'fl-ul';
export const EXT_NS = 'fl-ext';
export const UP_NS = 'fl-up';

export interface LabState {
  topology: string;
  stateDir: string;
  namespaces: string[];
  daemons: { node: string; ns: string; pidFile: string; socket: string; log: string }[];
  /** Where the nodes read the topology: the file (default) or etcd (lab/lab-etcd.ts). */
  store?: 'file' | 'etcd';
  /** etcd://... the nodes use, with --store etcd. */
  etcdUrl?: string;
  /** The etcd members `lab up --store etcd` started (stopped by PID on down). */
  etcd?: { name: string; ns: string; ip: string; pid: number; dataDir: string; log: string }[];
}

export function stateDir(): string {
  return process.env.FLOWD_LAB_DIR ?? '/run/flowd-lab';
}

export function statePath(dir: string): string {
  return path.join(dir, 'state.json');
}

export function readState(dir = stateDir()): LabState | null {
  try {
    return JSON.parse(fs.readFileSync(statePath(dir), 'utf8')) as LabState;
  } catch {
    return null;
  }
}

export function nodeNs(n: TopoNode | string): string {
  return `${PREFIX}${(typeof n === 'string' ? n : n.name).toLowerCase()}`;
}

export function vmNs(p: TopoPort | string): string {
  return `${PREFIX}${(typeof p === 'string' ? p : p.name).toLowerCase()}`;
}

export function saveState(st: LabState): void {
  fs.mkdirSync(st.stateDir, { recursive: true });
  fs.writeFileSync(statePath(st.stateDir), JSON.stringify(st, null, 2));
}

/** The pid in a daemon's pid file, 0 when there is none. */
export function pidOf(pidFile: string): number {
  try {
    return Number(fs.readFileSync(pidFile, 'utf8').trim());
  } catch {
    return 0;
  }
}

export function alive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
