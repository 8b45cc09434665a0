/**
 * `flowctl ha status` and `flowctl ha failover ROUTER` (issue 14 item 4), served by the
 * daemon's control socket from its keepalived supervisor (control/keepalived.ts).
 * Called by: cli/daemon.ts (adds the handler to the command table). Control plane only.
 *
 * status, one line per HA router this node hosts:
 *   R  vrid 212  master  since 13:20:01.123 (5.2 s)  ha-d70c14b5 169.254.195.81 in fl-ha-NN1-R
 *      peers NN2=169.254.195.82  advert 100 ms  keepalived pid 1234  reloads 0
 * JSON (--format json): the same fields, times in ms since the epoch.
 */
import { CommandError } from '../errors';
import { HaInstanceStatus, KeepalivedSupervisor } from './keepalived';
import { CommandArgs, JsonValue } from './server';

function line(s: HaInstanceStatus, nowMs: number): string {
  const since = new Date(s.sinceMs).toISOString().slice(11, 23);
  return `${s.router}  vrid ${s.vrid}  ${s.state}  since ${since} (${((nowMs - s.sinceMs) / 1000).toFixed(1)} s)  ` +
    `${s.device} ${s.address} in ${s.namespace}\n   peers ${s.peers.join(' ') || '-'}  advert ${s.advertIntMs} ms  ` +
    `keepalived pid ${s.pid || '-'}  reloads ${s.reloads}`;
}

export function cmdHa(sup: KeepalivedSupervisor | null, args: CommandArgs, nowMs: number): JsonValue {
  const action = typeof args.action === 'string' ? args.action : 'status';
  if (action === 'status') {
    const st = sup === null ? [] : sup.status();
    if (args.format === 'json') {
      return st.map((s) => ({ router: s.router, vrid: s.vrid, state: s.state, since_ms: s.sinceMs, namespace: s.namespace,
        device: s.device, address: s.address, peers: s.peers, advert_int_ms: s.advertIntMs, pid: s.pid, reloads: s.reloads }));
    }
    return st.length === 0 ? 'no HA routers on this node' : st.map((s) => line(s, nowMs)).join('\n');
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
