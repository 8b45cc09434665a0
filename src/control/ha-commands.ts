/**
 * `flowctl ha status` and `flowctl ha failover ROUTER` (issue 14 item 4), served by the
 * daemon's control socket from its keepalived supervisor (control/keepalived.ts) and its
 * conntrack sync (control/ha-ct-sync.ts); and the HA families of the metrics endpoint.
 * Called by: control/daemon.ts (adds the handler to the command table, the families to
 * control/metrics.ts). Control plane only.
 *
 * status, per HA router this node hosts:
 *   R  vrid 212  master  since 13:20:01.123 (5.2 s)  ha-d70c14b5 169.254.195.81 in fl-ha-NN1-R
 *      peers NN2=169.254.195.82  advert 100 ms  keepalived pid 1234  reloads 0
 *      last advert: NN2 never (0 seen)
 *      ct-sync zone 5210 via 192.168.100.13:3781: sending seq 812, lag 0 entries (0 pending, 0 refresh), 3 connections
 * and on a backup the sync line per sending peer:
 *      ct-sync zone 5210 via 192.168.100.14:3781: receiving from NN1 seq 812, lag 0 datagrams missing, 3 connections, last 0.04 s ago
 * JSON (--format json): the same fields, times in ms since the epoch.
 *
 * failover: only on the master (a backup has nothing to hand over: it refuses with "not
 * master", naming the state it is in); a node that does not host the router refuses too.
 */
import { CommandError } from '../errors';
import { HaInstanceStatus, KeepalivedSupervisor } from './keepalived';
import type { HaCtSync, HaCtSyncStatus } from './ha-ct-sync';
import type { MetricFamily } from './metrics';
import { CommandArgs, JsonValue } from './server';

const ago = (nowMs: number, t: number): string => (t === 0 ? 'never' : `${((nowMs - t) / 1000).toFixed(2)} s ago`);

function syncLines(c: HaCtSyncStatus | undefined, nowMs: number): string[] {
  if (c === undefined) return ['   ct-sync: off'];
  const head = `   ct-sync zone ${c.zone} via ${c.local}: `;
  if (c.role === 'sending') {
    return [`${head}sending seq ${c.seq}, lag ${c.pending + c.refreshLeft} entries (${c.pending} pending, ${c.refreshLeft} refresh), ` +
      `${c.connections} connections`];
  }
  if (c.peers.length === 0) return [`${head}receiving, nothing from a master yet, ${c.connections} connections`];
  return c.peers.map((p) => `${head}receiving from ${p.node} seq ${p.lastSeq}, lag ${p.missing} datagrams missing, ` +
    `${p.connections} connections, last ${ago(nowMs, p.lastMs)}`);
}

function line(s: HaInstanceStatus, c: HaCtSyncStatus | undefined, nowMs: number): string {
  const since = new Date(s.sinceMs).toISOString().slice(11, 23);
  const adverts = s.advertWatch !== ''
    ? `not watched (${s.advertWatch})`
    : s.peerAdverts.map((p) => `${p.node} ${ago(nowMs, p.lastMs)} (${p.adverts} seen)`).join(', ') || '-';
  return [`${s.router}  vrid ${s.vrid}  ${s.state}  since ${since} (${((nowMs - s.sinceMs) / 1000).toFixed(1)} s)  ` +
    `${s.device} ${s.address} in ${s.namespace}`, `   peers ${s.peers.join(' ') || '-'}  advert ${s.advertIntMs} ms  ` +
    `keepalived pid ${s.pid || '-'}  reloads ${s.reloads}`, `   last advert: ${adverts}`, ...syncLines(c, nowMs)].join('\n');
}

export function cmdHa(sup: KeepalivedSupervisor | null, args: CommandArgs, nowMs: number, sync: HaCtSync | null = null): JsonValue {
  const action = typeof args.action === 'string' ? args.action : 'status';
  if (action === 'status') {
    const st = sup === null ? [] : sup.status();
    const cs = sync === null ? [] : sync.status();
    if (args.format === 'json') {
      return st.map((s) => {
        const c = cs.find((x) => x.router === s.router);
        return {
          router: s.router, vrid: s.vrid, state: s.state, since_ms: s.sinceMs, namespace: s.namespace,
          device: s.device, address: s.address, peers: s.peers, advert_int_ms: s.advertIntMs, pid: s.pid, reloads: s.reloads,
          last_advert: s.peerAdverts.map((p) => ({ node: p.node, ip: p.ip, last_ms: p.lastMs, adverts: p.adverts })),
          advert_watch: s.advertWatch === '' ? 'on' : s.advertWatch,
          ct_sync: c === undefined ? null : {
            zone: c.zone, role: c.role, local: c.local, seq: c.seq, pending: c.pending, refresh_left: c.refreshLeft,
            connections: c.connections, datagrams_sent: c.datagramsSent,
            peers: c.peers.map((p) => ({ node: p.node, ip: p.ip, seq: p.lastSeq, missing: p.missing, connections: p.connections,
              datagrams: p.datagrams, last_ms: p.lastMs, refresh_rounds: p.refreshRounds })),
          },
        };
      });
    }
    return st.length === 0 ? 'no HA routers on this node' : st.map((s) => line(s, cs.find((x) => x.router === s.router), nowMs)).join('\n');
  }
  if (action === 'failover') {
    const router = typeof args.router === 'string' ? args.router : '';
    if (router === '') throw new CommandError('ha failover needs a router name', 'E_ARGS');
    const st = sup?.status().find((s) => s.router === router);
    if (st === undefined) throw new CommandError(`${router}: no HA router of that name on this node`, 'E_NO_ROUTER');
    if (!sup!.failover(router)) throw new CommandError(`${router}: this node is ${st.state}, not master; run failover on the master`, 'E_NOT_MASTER');
    return `${router}: handing mastership over (ha- port down for ${5 * st.advertIntMs + 1000} ms)`;
  }
  throw new CommandError(`ha: unknown action "${action}" (expected status or failover)`, 'E_ARGS');
}

const STATES = ['master', 'backup', 'fault', 'stopped'] as const;

/**
 * The HA families of the metrics endpoint: flowd_ha_state{router,state} (1 for the state the
 * router is in on this node, 0 for the others: one state set per router), and the conntrack
 * sync's connections and lag per router, and its refused datagrams by reason.
 */
export function haMetricFamilies(sup: KeepalivedSupervisor | null, sync: HaCtSync | null): MetricFamily[] {
  const st = sup === null ? [] : sup.status();
  const cs = sync === null ? [] : sync.status();
  return [
    {
      name: 'flowd_ha_state', type: 'gauge', help: 'VRRP state of each HA router on this node (1 = the state it is in).',
      samples: st.flatMap((s) => STATES.map((x) => [{ router: s.router, state: x }, s.state === x ? 1 : 0] as const)),
    },
    {
      name: 'flowd_ha_ct_sync_connections', type: 'gauge', help: 'Connections of the HA router\'s conntrack zone on this node.',
      samples: cs.map((c) => [{ router: c.router, role: c.role }, c.connections] as const),
    },
    {
      name: 'flowd_ha_ct_sync_lag', type: 'gauge',
      help: 'Conntrack sync lag: entries not yet sent (master) or datagrams missing (backup).',
      samples: cs.map((c) => [{ router: c.router, role: c.role },
        c.role === 'sending' ? c.pending + c.refreshLeft : c.peers.reduce((n, p) => n + p.missing, 0)] as const),
    },
    {
      name: 'flowd_ha_ct_sync_drops_total', type: 'counter', help: 'Conntrack sync datagrams refused, by reason.',
      samples: sync === null ? [] : [...sync.drops()].sort((a, b) => a[0].localeCompare(b[0])).map(([reason, n]) => [{ reason }, n] as const),
    },
  ];
}
