/**
 * The control commands of a running (or offline) switch, as the control socket serves them and
 * flowctl names them. Each takes the JSON args of a request and returns text (or JSON when
 * args.format is "json"); a bad argument throws a FlowdError with a stable code, which the
 * socket turns into an error reply while the datapath keeps forwarding.
 */
import { Switch } from './switch';
import { NetdevStats } from '../netdev/netdev';
import { CommandArgs, CommandHandler, JsonValue } from './server';
import { CommandError } from '../errors';
import { Bridge } from '../ofproto/bridge';
import { formatRuleStats } from '../ofproto/dump';
import { parseFlow } from '../ofproto/flow-syntax';
import { keyFromFields, parseCtState, traceKey } from '../ofproto/trace';
import { extractKey, OFFS_WORDS } from '../packet/flowkey';
import { KEY_WORDS, W_IN_PORT, W_NW_DST, W_NW_MISC, W_NW_SRC, W_TP, W_VLAN_DLTYPE } from '../packet/flowkey-layout';
import { STOP_NAMES, isDrop } from '../packet/stop';
import { firewallDropsByPort } from '../dvr/firewall-drops';
import { dumpCache, perfStats } from '../dpif/dump';

function str(args: CommandArgs, name: string, required = true): string {
  const v = args[name];
  if (v === undefined || v === null || v === '') {
    if (required) throw new CommandError(`missing argument "${name}"`, 'E_ARGS');
    return '';
  }
  if (typeof v !== 'string') throw new CommandError(`argument "${name}" must be a string`, 'E_ARGS');
  return v;
}

function json(args: CommandArgs): boolean {
  return args.format === 'json';
}

export function bridgeOf(sw: Switch, args: CommandArgs): Bridge {
  const name = str(args, 'bridge');
  const b = sw.bridge(name);
  if (b === undefined) throw new CommandError(`${name}: no such bridge`, 'E_NO_BRIDGE');
  return b;
}

/**
 * dump-flows: every rule, or those a (non-strict) match selects, as ovs-ofctl prints them;
 * with `names`, ports by name (quoted as OVS quotes them), as `ovs-ofctl --names`.
 */
export function cmdDumpFlows(sw: Switch, args: CommandArgs): JsonValue {
  const b = bridgeOf(sw, args);
  const m = str(args, 'match', false);
  const spec = m === '' ? undefined : parseFlow(m, { command: 'del', resolvePort: b.resolvePort });
  const now = sw.opts.nowMs();
  const rules = spec ? b.selectRules(spec, false) : b.allRules();
  const namer = args.names === true ? b.portName : undefined;
  if (!json(args)) return rules.map((r) => formatRuleStats(r, now, namer)).join('\n');
  return rules.map((r) => ({
    table: r.tableId, priority: r.priority, cookie: `0x${r.cookie.toString(16)}`,
    n_packets: r.nPackets, n_bytes: r.nBytes, flow: formatRuleStats(r, now),
  }));
}

/**
 * trace BRIDGE PACKET: PACKET is ovs-ofctl match fields (`in_port=1,dl_src=...,ip,...`), or
 * `in_port=N,hex=<frame bytes>` for a frame given as hex.
 */
export function cmdTrace(sw: Switch, args: CommandArgs): JsonValue {
  const bname = str(args, 'bridge');
  const view = sw.views.get(bname);
  if (view === undefined) throw new CommandError(`${bname}: no such bridge`, 'E_NO_BRIDGE');
  const packet = str(args, 'packet');
  const now = sw.opts.nowMs();
  const hex = /(?:^|,)hex=([0-9a-fA-F]+)(?:,|$)/.exec(packet);
  let key: Uint32Array;
  if (hex !== null) {
    const rest = packet.replace(hex[0], ',').replace(/^,|,$/g, '');
    const fieldsKey = keyFromFields(rest === '' ? 'in_port=0' : rest, view);
    const bytes = Buffer.from(hex[1], 'hex');
    key = new Uint32Array(KEY_WORDS);
    const stop = extractKey(bytes, 0, bytes.length, fieldsKey[W_IN_PORT], key, 0, new Uint16Array(OFFS_WORDS), 0);
    if (isDrop(stop)) throw new CommandError(`the frame is malformed: ${STOP_NAMES[stop]}`, 'E_BAD_PACKET');
  } else {
    key = keyFromFields(packet, view);
  }
  // After --ct-next runs out, a pass resumes with what the live conntrack table says of the
  // packet (TCP/UDP over IPv4), else OVS's default trk|new.
  const ct = sw.datapath.conntrackIfAny();
  const ctLookup = ct === null ? undefined : (k: Uint32Array, zone: number): { state: number; mark: number } | null =>
    (k[W_VLAN_DLTYPE] & 0xffff) !== 0x0800 ? null
      : ct.peek(k[W_NW_MISC] >>> 24, k[W_NW_SRC], k[W_NW_DST], k[W_TP] >>> 16, k[W_TP] & 0xffff, zone, now);
  const { text: body, result } = traceKey(sw.ofproto, bname, key, now, { ctNext: ctNextArg(args), ctLookup });
  const text = `Bridge: ${bname}\n${body}`;
  return json(args) ? { text, drop: result.drop } : text;
}

/** ct_next: the ct_state of each recirculated pass (OVS's --ct-next), a string or strings. */
function ctNextArg(args: CommandArgs): number[] | undefined {
  const v = args.ct_next;
  if (v === undefined || v === null) return undefined;
  const list = Array.isArray(v) ? v : [v];
  return list.map((x) => {
    if (typeof x !== 'string') throw new CommandError('argument "ct_next" must be a string or strings', 'E_ARGS');
    return parseCtState(x);
  });
}

export function cmdShow(sw: Switch): JsonValue {
  const out: string[] = [];
  for (const [name, b] of sw.bridges) {
    out.push(`${name}:`);
    for (const p of b.ports()) {
      const a = sw.port(p.name);
      const pending = sw.pending.get(p.name);
      const extra = p.kind === 'patch' ? ` peer=${p.peerPort ?? ''}` : a ? ` dp_port=${a.dpPort}`
        : pending !== undefined ? ` error="${pending.error}"` : '';
      out.push(`  ${p.ofport}(${p.name}): ${p.kind}${p.tag ? ` tag=${p.tag}` : ''}${extra}`);
    }
  }
  return out.join('\n');
}

function dropText(r: Record<string, number>): string {
  return Object.entries(r).map(([k, v]) => `${k}=${v}`).join(', ');
}

/**
 * dump-ports: rx/tx/drops per port in ovs-ofctl's shape, and firewall drops by reason. rx drop
 * counts the port's own refusals and the datapath's drops of its frames (JSON: by reason, and
 * rx_forwarded: rx_pkts = rx_forwarded + the datapath's drops once no frame is in flight).
 */
export function cmdDumpPorts(sw: Switch, args: CommandArgs): JsonValue {
  const b = bridgeOf(sw, args);
  const only = str(args, 'port', false);
  // Security-group drops (dvr/firewall-drops.ts), from the counters of the firewall's drop flows.
  const fwDrops = firewallDropsByPort(b.allRules());
  const rows: { [k: string]: JsonValue }[] = [];
  const lines: string[] = [];
  for (const p of b.ports()) {
    if (only !== '' && only !== p.name && only !== String(p.ofport)) continue;
    const a = sw.port(p.name);
    if (a === undefined) continue;
    const s = sw.portStats(a);
    const row = {
      port: p.name, ofport: p.ofport, rx_pkts: s.dpRx, rx_bytes: s.netdev.rxBytes, rx_drop: s.rxDrop,
      rx_errs: s.netdev.rxErrors, tx_pkts: s.dpTx, tx_bytes: s.netdev.txBytes, tx_drop: s.dpTxDropped + s.netdev.txDropped,
      tx_errs: s.netdev.txErrors, rx_forwarded: s.dpRxForwarded,
      rx_drop_reasons: s.rxDropReasons, tx_drop_reasons: s.netdev.txDropReasons,
      rx_port_drop_reasons: s.netdev.rxDropReasons, rx_datapath_drop_reasons: s.dpRxDrops,
    };
    const fw = fwDrops.get(p.ofport);
    rows.push(fw === undefined ? row : { ...row, firewall_drops: fw });
    lines.push(`  port ${p.ofport}(${p.name}): rx pkts=${row.rx_pkts}, bytes=${row.rx_bytes}, drop=${row.rx_drop}, errs=${row.rx_errs}`);
    lines.push(`           tx pkts=${row.tx_pkts}, bytes=${row.tx_bytes}, drop=${row.tx_drop}, errs=${row.tx_errs}`);
    if (fw !== undefined) lines.push(`           firewall drops: ${dropText(fw)}`);
  }
  if (json(args)) return rows;
  return [`OFPST_PORT reply: ${rows.length} ports`, ...lines].join('\n');
}

/**
 * stats: the datapath's counters (pmd-perf-show shape), each underlay's (the frames it took
 * off the wire and those it refused before any tunnel port, by reason) and the security-group
 * drops per VM port by reason; JSON: drops by reason, the underlays, firewall_drops.
 */
export function cmdStats(sw: Switch, args: CommandArgs): JsonValue {
  const underlays = sw.underlays().map((u) => {
    const s = new NetdevStats();
    u.stats(s);
    return {
      device: u.name, rx_pkts: s.rxPackets, rx_bytes: s.rxBytes, rx_drop: s.rxDropped, rx_drop_reasons: s.rxDropReasons,
      rx_errs: s.rxErrors, tx_pkts: s.txPackets, tx_drop: s.txDropped, tx_drop_reasons: s.txDropReasons,
      tx_errs: s.txErrors,
    };
  });
  const firewall: { [k: string]: JsonValue }[] = [];
  for (const [name, b] of sw.bridges) {
    for (const [ofport, r] of firewallDropsByPort(b.allRules())) {
      firewall.push({ bridge: name, ofport, port: b.portByNumber(ofport)?.name ?? '', ...r });
    }
  }
  if (json(args)) return { drops: sw.datapath.drops(), underlays, firewall_drops: firewall };
  const reasons = (r: Record<string, number>): string => {
    const e = Object.entries(r);
    return e.length === 0 ? '' : ` (${e.map(([k, v]) => `${k}=${v}`).join(' ')})`;
  };
  const lines = underlays.map((u) => `  underlay ${u.device}: rx pkts=${u.rx_pkts}, drop=${u.rx_drop}${reasons(u.rx_drop_reasons)}; ` +
    `tx pkts=${u.tx_pkts}, drop=${u.tx_drop}${reasons(u.tx_drop_reasons)}` +
    (u.rx_errs + u.tx_errs > 0 ? `; errs rx=${u.rx_errs} tx=${u.tx_errs}` : ''));
  for (const f of firewall) {
    lines.push(`  firewall ${f.bridge} port ${f.ofport}(${f.port}): spoofed=${f.spoofed}, no_rule=${f.no_rule}, invalid=${f.invalid}, killed=${f.killed}`);
  }
  return perfStats(sw.datapath) + (lines.length === 0 ? '' : `${lines.join('\n')}\n`);
}

/**
 * conntrack: `list` (dpctl/dump-conntrack lines, of one zone with zone=N), `flush` (all, or one
 * zone), `stats` (counters by reason), `limits` (dpctl/ct-get-limits; with zone=N and limit=M it
 * sets that zone's limit first, and with limit=M alone the default limit).
 */
export function cmdConntrack(sw: Switch, args: CommandArgs): JsonValue {
  const ct = sw.datapath.conntrack;
  const action = str(args, 'action', false) || 'list';
  const zv = args.zone;
  if (zv !== undefined && zv !== null && (typeof zv !== 'number' || !Number.isInteger(zv) || zv < 0 || zv > 65535)) {
    throw new CommandError('argument "zone" must be an integer 0..65535', 'E_ARGS');
  }
  const zone = typeof zv === 'number' ? zv : -1;
  const now = sw.opts.nowMs();
  switch (action) {
    case 'list': {
      const lines = ct.list(zone, now);
      return json(args) ? lines : lines.join('\n');
    }
    case 'flush': {
      const n = ct.flush(zone);
      return json(args) ? { flushed: n } : '';
    }
    case 'stats': {
      const st = ct.stats();
      return json(args) ? st : Object.entries(st).map(([k, v]) => `${k}: ${v}`).join('\n');
    }
    case 'limits': {
      const lv = args.limit;
      if (typeof lv === 'number' && Number.isInteger(lv) && lv >= 0) {
        if (zone >= 0) ct.setZoneLimit(zone, lv); else ct.defaultZoneLimit = lv;
      }
      const lines = ct.limits(zone);
      return json(args) ? lines : lines.join('\n');
    }
    default:
      throw new CommandError(`conntrack: unknown action "${action}" (expected list, flush, stats, limits)`, 'E_ARGS');
  }
}

/** All commands, by name, bound to a switch. */
export function commandTable(sw: Switch): Map<string, CommandHandler> {
  const now = (): number => sw.opts.nowMs();
  const text = (a: CommandArgs): string => str(a, 'text');
  const fileName = (a: CommandArgs): string => str(a, 'file', false) || '-';
  return new Map<string, CommandHandler>([
    ['show', () => cmdShow(sw)],
    ['dump-ports', (a) => cmdDumpPorts(sw, a)],
    ['dump-flows', (a) => cmdDumpFlows(sw, a)],
    ['add-flow', (a) => { bridgeOf(sw, a).addFlow(str(a, 'flow'), now()); return ''; }],
    ['add-flows', (a) => { const n = bridgeOf(sw, a).addFlows(text(a), now(), fileName(a)).length; return json(a) ? { added: n } : ''; }],
    ['del-flows', (a) => {
      const m = str(a, 'match', false);
      const n = bridgeOf(sw, a).delFlows(m === '' ? undefined : m, a.strict === true).length;
      return json(a) ? { deleted: n } : '';
    }],
    ['mod-flows', (a) => { const n = bridgeOf(sw, a).modFlows(str(a, 'flow'), a.strict === true, now()).length; return json(a) ? { modified: n } : ''; }],
    ['replace-flows', (a) => {
      const c = bridgeOf(sw, a).replaceFlows(text(a), now(), fileName(a));
      return json(a) ? { added: c.added.length, removed: c.removed.length, modified: c.modified.length } : '';
    }],
    ['diff-flows', (a) => bridgeOf(sw, a).diffFlows(text(a), fileName(a)).join('\n')],
    ['trace', (a) => cmdTrace(sw, a)],
    ['dump-cache', () => dumpCache(sw.datapath)],
    ['stats', (a) => cmdStats(sw, a)],
    ['conntrack', (a) => cmdConntrack(sw, a)],
  ]);
}
