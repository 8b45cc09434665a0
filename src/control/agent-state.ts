/**
 * Agent state in etcd, as Neutron agents report theirs to the server: each daemon keeps one
 * key, PREFIX/agents/NODE, bound to a lease of AGENT_TTL_S seconds, and rewrites it every
 * AGENT_REPORT_MS with what it is and what it carries (a JSON AgentState). A daemon that dies
 * or loses etcd stops renewing; etcd drops the key when the lease runs out, so a present key
 * means alive (reported within the TTL). `flowctl agents --etcd URL` lists them (listAgents).
 *
 * Called by: control/daemon.ts (AgentReporter, when the topology comes from etcd), cli/flowctl.ts
 * (listAgents, formatAgents).
 * Faults: a failed report is logged once (`agent_report_failed`) and retried at the next
 * period; when the lease has expired meanwhile a new one is granted (`agent_lease_renewed`).
 * Owns its lease (revoked on stop(): the key goes at once) and its timer.
 */
import { EtcdClient } from './etcd-client';
import { log } from './log';

export const AGENT_TTL_S = 10;
export const AGENT_REPORT_MS = 3000;
export const AGENTS_DIR = 'agents/';

export interface AgentCounters {
  bridges: number;
  ports: number;
  flows: number;
  rx_packets: number;
  tx_packets: number;
  drops: number;
}

export interface AgentState {
  node: string;
  alive: boolean;
  agent_mode: string;
  local_ip: string;
  version: string;
  pid: number;
  started_at: string;
  reported_at: string;
  /** The etcd revision of the topology the daemon applied last. */
  topology_revision: number;
  counters: AgentCounters;
}

export class AgentReporter {
  private lease = '0';
  private timer: NodeJS.Timeout | null = null;
  private failing = false;
  private running = false;
  private readonly key: string;

  constructor(private readonly client: EtcdClient, prefix: string, readonly node: string,
              private readonly state: () => AgentState) {
    this.key = `${prefix}/${AGENTS_DIR}${node}`;
  }

  /** Reports now and every AGENT_REPORT_MS until stop(). */
  start(): void {
    const loop = (): void => {
      void this.report().finally(() => {
        if (this.running) this.timer = setTimeout(loop, AGENT_REPORT_MS);
      });
    };
    this.running = true;
    loop();
  }

  /** One report: renew (or grant) the lease, then write the state under it. */
  async report(): Promise<void> {
    try {
      let ttl = this.lease === '0' ? 0 : await this.client.leaseKeepAlive(this.lease);
      if (ttl <= 0) {
        const had = this.lease !== '0';
        this.lease = await this.client.leaseGrant(AGENT_TTL_S);
        ttl = AGENT_TTL_S;
        if (had) log('info', 'agent_lease_renewed', { node: this.node, lease: this.lease });
      }
      await this.client.put(this.key, JSON.stringify(this.state()), this.lease);
      if (this.failing) log('info', 'agent_report_resumed', { node: this.node, etcd: this.client.describe() });
      this.failing = false;
    } catch (e) {
      if (!this.failing) log('warn', 'agent_report_failed', { node: this.node, etcd: this.client.describe(), error: (e as Error).message });
      this.failing = true;
    }
  }

  /** Stops reporting and revokes the lease, so the agent disappears at once. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.lease !== '0') {
      try { await this.client.leaseRevoke(this.lease); } catch { /* the lease expires by itself */ }
    }
  }
}

/** Every agent key under `prefix`, parsed; a value that is not an AgentState is shown as such. */
export async function listAgents(client: EtcdClient, prefix: string): Promise<(AgentState | { node: string; error: string })[]> {
  const dir = `${prefix}/${AGENTS_DIR}`;
  const r = await client.rangePrefix(dir);
  return r.kvs.map((kv) => {
    const node = kv.key.slice(dir.length);
    try {
      const s = JSON.parse(kv.value) as AgentState;
      if (typeof s.node !== 'string' || typeof s.counters !== 'object') return { node, error: 'not an agent state' };
      return s;
    } catch {
      return { node, error: 'not JSON' };
    }
  });
}

/** The `flowctl agents` table: one line per agent, age of its last report against `nowMs`. */
export function formatAgents(agents: (AgentState | { node: string; error: string })[], nowMs: number): string {
  const head = 'NODE              ALIVE  MODE             LOCAL_IP         VERSION  TOPO_REV  REPORTED  PORTS  FLOWS  RX_PKTS  TX_PKTS  DROPS';
  const rows = agents.map((a) => {
    if ('error' in a) return `${a.node.padEnd(17)} ?      (${a.error})`;
    const age = Math.max(0, Math.round((nowMs - Date.parse(a.reported_at)) / 1000));
    return [a.node.padEnd(17), (a.alive ? 'yes' : 'no').padEnd(6), a.agent_mode.padEnd(16), a.local_ip.padEnd(16),
      a.version.padEnd(8), String(a.topology_revision).padEnd(9), `${age}s ago`.padEnd(9), String(a.counters.ports).padEnd(6),
      String(a.counters.flows).padEnd(6), String(a.counters.rx_packets).padEnd(8), String(a.counters.tx_packets).padEnd(8),
      String(a.counters.drops)].join(' ');
  });
  return [head, ...rows].join('\n') + '\n';
}
