/**
 * `lab up --store etcd [--etcd-members N]`: the lab's topology in etcd instead of a file.
 * Starts Debian's etcd (one member, or N forming one cluster) each in its own namespace
 * fl-etcdK on the underlay segment (a veth to the underlay bridge, an address of the nodes'
 * underlay /24 counted down from .250), pushes the topology there with flowctl's push
 * (control/topology-push.ts), and returns the etcd:// URL the nodes' flowd read it from.
 *
 * Called by: lab/lab.ts (up, down). Ownership: every etcd process is recorded in the lab state
 * (PID and data dir) and stopped by PID in stopEtcd(); its namespace is one of the lab's.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Topology } from '../dvr/topology';
import { LabState, PREFIX, UL_NS } from './lab-state';
import { ipIn, newNamespace, vethBetween } from './shell';

export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
export const LAB_ETCD_PREFIX = '/flowd';

export interface LabEtcdMember { name: string; ns: string; ip: string; pid: number; dataDir: string; log: string }

/** Addresses for the members on the nodes' underlay /24, from .250 down, skipping the nodes'. */
function memberIps(t: Topology, n: number): string[] {
  const base = t.nodes[0].localIp.split('.').slice(0, 3).join('.');
  const used = new Set(t.nodes.map((x) => x.localIp));
  const out: string[] = [];
  for (let h = 250; h > 1 && out.length < n; h--) if (!used.has(`${base}.${h}`)) out.push(`${base}.${h}`);
  return out;
}

function sleepMs(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Starts the members, waits for a leader, pushes `topologyFile`; returns the etcd:// URL. */
export async function startEtcd(t: Topology, topologyFile: string, nMembers: number, st: LabState, flowctlJs: string): Promise<string> {
  if (spawnSync('sh', ['-c', 'command -v etcd'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('--store etcd: etcd is not installed (apt-get install etcd-server etcd-client; scripts/setup.sh does)');
  }
  const ips = memberIps(t, nMembers);
  const members: LabEtcdMember[] = ips.map((ip, k) => ({
    name: `etcd${k + 1}`, ns: `${PREFIX}etcd${k + 1}`, ip, pid: 0,
    dataDir: path.join(st.stateDir, `etcd${k + 1}.data`), log: path.join(st.stateDir, `etcd${k + 1}.log`),
  }));
  const cluster = members.map((m) => `${m.name}=http://${m.ip}:${ETCD_PEER_PORT}`).join(',');
  st.etcd = members;
  for (const m of members) {
    newNamespace(m.ns);
    st.namespaces.push(m.ns);
    const peer = `ul-${m.name}`;
    vethBetween(m.ns, 'eth0', UL_NS, peer);
    ipIn(UL_NS, 'link', 'set', peer, 'master', 'ulbr');
    ipIn(m.ns, 'addr', 'add', `${m.ip}/24`, 'dev', 'eth0');
    fs.rmSync(m.dataDir, { recursive: true, force: true });
    const out = fs.openSync(m.log, 'a');
    // `ip netns exec` becomes etcd (no fork): the child's PID is etcd's.
    const c = spawn('ip', ['netns', 'exec', m.ns, 'etcd', '--name', m.name, '--data-dir', m.dataDir,
      '--listen-client-urls', `http://${m.ip}:${ETCD_CLIENT_PORT}`, '--advertise-client-urls', `http://${m.ip}:${ETCD_CLIENT_PORT}`,
      '--listen-peer-urls', `http://${m.ip}:${ETCD_PEER_PORT}`, '--initial-advertise-peer-urls', `http://${m.ip}:${ETCD_PEER_PORT}`,
      '--initial-cluster', cluster, '--initial-cluster-state', 'new', '--initial-cluster-token', 'flowd-lab',
      '--max-txn-ops', '8192'], { detached: true, stdio: ['ignore', out, out] });
    c.unref();
    fs.closeSync(out);
    m.pid = c.pid ?? 0;
  }
  const url = `etcd://${members.map((m) => `${m.ip}:${ETCD_CLIENT_PORT}`).join(',')}${LAB_ETCD_PREFIX}`;
  // Push from the first member's namespace (the lab's root namespace has no underlay address);
  // the first pushes fail until a leader is elected (the file was validated before: up()).
  let last = '';
  for (let k = 0; k < 100; k++) {
    const r = spawnSync('ip', ['netns', 'exec', members[0].ns, process.execPath, flowctlJs, 'topology', 'push', topologyFile, '--etcd', url],
      { encoding: 'utf8', timeout: 20000 });
    if (r.status === 0) return url;
    last = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim();
    await sleepMs(200);
  }
  throw new Error(`--store etcd: could not push ${topologyFile} to ${url}: ${last}`);
}

function alive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('etcd');
  } catch {
    return false;
  }
}

/** Stops the lab's etcd members by PID and removes their data dirs; returns what it did. */
export async function stopEtcd(st: LabState): Promise<string[]> {
  const done: string[] = [];
  for (const m of st.etcd ?? []) {
    if (alive(m.pid)) {
      process.kill(m.pid, 'SIGTERM');
      for (let k = 0; k < 50 && alive(m.pid); k++) await sleepMs(100);
      if (alive(m.pid)) process.kill(m.pid, 'SIGKILL');
      done.push(`stopped ${m.name} (pid ${m.pid})`);
    }
    fs.rmSync(m.dataDir, { recursive: true, force: true });
  }
  return done;
}
