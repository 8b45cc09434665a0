/**
 * ofproto/trace: runs one packet through the pipeline without side effects and prints what
 * happened in the shape of `ovs-appctl ofproto/trace` (Flow:, one block per bridge with the
 * tables visited, the rule matched and its actions, Final flow:, Megaflow:, Datapath actions:).
 *
 * Who calls: control/ (`flowctl trace BR FIELDS`), the offline `flowd trace`, tests.
 *
 * The packet is given as match fields (`in_port=1,dl_src=..,ip,nw_src=..`, parsed with
 * match-syntax.ts; unspecified fields are 0, as in OVS), or as fields holding at least in_port
 * followed by the frame in hex (`in_port=1 ffffffffffff0200...`, as ofproto/trace takes a
 * packet), whose key packet/flowkey.ts extracts.
 *
 * Recirculation: every ct(table=N) the translation meets is followed into its own pass, as
 * ofproto/trace does (see traceKey); --ct-next gives each pass's ct_state.
 *
 * Tree layout follows OVS exactly: a node is indented by 4 * (level + more) spaces, where
 * `more` is 1 when the node has a next sibling or is a leaf (action, detail, warning, error);
 * its children print at level + 2 * more; a bridge is preceded by a blank line and underlined.
 */
import { parseFlow } from './flow-syntax';
import { formatMatch, DEFAULT_PRIORITY } from './match-syntax';
import type { Ofproto, XlateBridge } from './ofproto';
import { xlate, TraceNode, XlateRecirc, XlateResult } from './xlate';
import { RecircTable, recircTableOf } from './recirc';
import { formatDpActions } from '../dpif/dp-actions';
import { CommandError } from '../errors';
import { extractKey, OFFS_WORDS } from '../packet/flowkey';
import {
  KEY_WORDS, W_IN_PORT, W_VLAN_DLTYPE, W_DL_DST_HI, W_DL_DST_LO, W_DL_SRC_HI, W_DL_SRC_LO,
  W_NW_SRC, W_NW_DST, W_NW_MISC, W_TP, W_TCP_FLAGS, W_ARP_SHA_HI, W_ARP_SHA_LO, W_ARP_THA_HI,
  W_ARP_THA_LO, W_IPV6_SRC, W_IPV6_DST, W_TUN_ID_HI, W_TUN_ID_LO, W_TUN_SRC, W_TUN_DST,
  W_METADATA_HI, W_METADATA_LO, W_REG0, N_REGS, W_CT_STATE, W_CT_ZONE, W_CT_MARK, W_RECIRC_ID,
  W_IPV6_LABEL, W_ND_TARGET, W_CONJ_ID,
} from '../packet/flowkey-layout';

/** A flow key from ovs-ofctl match text; port names resolve through `bridge`. */
export function keyFromFields(text: string, bridge: XlateBridge): Uint32Array {
  const resolvePort = (n: string): number | undefined => bridge.portList().find((p) => p.name === n)?.ofport;
  const spec = parseFlow(text, { command: 'del', resolvePort });
  return spec.match.value.slice();
}

/** The mask of the fields a packet of this key has (what OVS prints in "Flow:"). */
export function packetMask(key: Uint32Array): Uint32Array {
  const m = new Uint32Array(KEY_WORDS);
  m[W_IN_PORT] = 0xffff;
  m[W_VLAN_DLTYPE] = 0xffffffff;
  m[W_DL_DST_HI] = 0xffff; m[W_DL_DST_LO] = 0xffffffff;
  m[W_DL_SRC_HI] = 0xffff; m[W_DL_SRC_LO] = 0xffffffff;
  for (const w of [W_RECIRC_ID, W_TUN_SRC, W_TUN_DST, W_CT_STATE, W_CT_ZONE, W_CT_MARK]) if (key[w] !== 0) m[w] = 0xffffffff;
  // 64-bit fields: both words when either is set.
  for (const [hi, lo] of [[W_TUN_ID_HI, W_TUN_ID_LO], [W_METADATA_HI, W_METADATA_LO]]) {
    if (key[hi] !== 0 || key[lo] !== 0) { m[hi] = 0xffffffff; m[lo] = 0xffffffff; }
  }
  for (let r = 0; r < N_REGS; r++) if (key[W_REG0 + r] !== 0) m[W_REG0 + r] = 0xffffffff;
  const dlType = key[W_VLAN_DLTYPE] & 0xffff;
  if (dlType === 0x0800 || dlType === 0x86dd) {
    if (dlType === 0x0800) { m[W_NW_SRC] = 0xffffffff; m[W_NW_DST] = 0xffffffff; }
    else {
      for (let i = 0; i < 4; i++) { m[W_IPV6_SRC + i] = 0xffffffff; m[W_IPV6_DST + i] = 0xffffffff; }
      m[W_IPV6_LABEL] = 0xfffff;
    }
    m[W_NW_MISC] = 0xffffffff;
    const proto = key[W_NW_MISC] >>> 24;
    if (proto === 6 || proto === 17 || proto === 132 || proto === 1 || proto === 58) m[W_TP] = 0xffffffff;
    if (proto === 6) m[W_TCP_FLAGS] = 0xfff;
    // Neighbour discovery: OVS's flow has the target and both link-layer addresses.
    const icmpType = key[W_TP] >>> 16;
    if (dlType === 0x86dd && proto === 58 && (icmpType === 135 || icmpType === 136) && (key[W_TP] & 0xffff) === 0) {
      for (let i = 0; i < 4; i++) m[W_ND_TARGET + i] = 0xffffffff;
      m[W_ARP_SHA_HI] = 0xffff; m[W_ARP_SHA_LO] = 0xffffffff;
      m[W_ARP_THA_HI] = 0xffff; m[W_ARP_THA_LO] = 0xffffffff;
    }
  } else if (dlType === 0x0806 || dlType === 0x8035) {
    m[W_NW_SRC] = 0xffffffff; m[W_NW_DST] = 0xffffffff; m[W_NW_MISC] = 0xff000000;
    m[W_ARP_SHA_HI] = 0xffff; m[W_ARP_SHA_LO] = 0xffffffff;
    m[W_ARP_THA_HI] = 0xffff; m[W_ARP_THA_LO] = 0xffffffff;
  }
  return m;
}

/**
 * A packet's flow as OVS prints it after "Flow:" / "Final flow:" (flow_format): a tunnel
 * shows as OVS's whole tunnel block (its tun_id only with a key flag a trace never sets, so
 * never), a tagged frame shows the empty second VLAN header (vlan_tci1=0x0000), and a
 * recirculated flow names its packet type ("eth") after the ct_* fields.
 */
export function formatFlowKey(key: Uint32Array): string {
  const mask = packetMask(key);
  const value = new Uint32Array(KEY_WORDS);
  for (let w = 0; w < KEY_WORDS; w++) value[w] = (key[w] & mask[w]) >>> 0;
  const items = formatMatch({ value, mask }, DEFAULT_PRIORITY, undefined, { flowTunnel: true }).split(',');
  // OVS's flow has room for two VLAN headers and prints the (empty) inner one of a tagged frame.
  const pcp = items.findIndex((x) => x.startsWith('dl_vlan_pcp='));
  if (pcp >= 0) items.splice(pcp + 1, 0, 'vlan_tci1=0x0000');
  if (key[W_RECIRC_ID] !== 0) {
    let i = 0;
    while (i < items.length && /^(recirc_id|conj_id|ct_state|ct_zone|ct_mark)=/.test(items[i])) i++;
    items.splice(i, 0, 'eth');
  }
  return items.join(',');
}

/** The megaflow (key under wc) as a match. */
export function formatMegaflow(key: Uint32Array, wc: Uint32Array): string {
  const value = new Uint32Array(KEY_WORDS);
  for (let w = 0; w < KEY_WORDS; w++) value[w] = (key[w] & wc[w]) >>> 0;
  const m = formatMatch({ value, mask: wc }, DEFAULT_PRIORITY);
  // OVS names the packet type ("eth") right after recirc_id; flowd only carries Ethernet.
  return m.startsWith('recirc_id=0,') ? `recirc_id=0,eth,${m.slice(12)}` : `eth,${m}`;
}

function isLeaf(n: TraceNode): boolean {
  return n.kind === 'action' || n.kind === 'detail' || n.kind === 'warn' || n.kind === 'error';
}

/** Prints trace nodes as OVS's oftrace_node_print_details does (see header). */
export function formatTraceNodes(nodes: readonly TraceNode[], level = 0, out: string[] = []): string[] {
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i];
    if (n.kind === 'bridge') out.push('');
    const more = i < nodes.length - 1 || isLeaf(n) ? 1 : 0;
    const pad = ' '.repeat((level + more) * 4);
    switch (n.kind) {
      case 'detail': out.push(`${pad} -> ${n.text}`); break;
      case 'warn': out.push(`${pad} >> ${n.text}`); break;
      case 'error': out.push(`${pad} >>>> ${n.text} <<<<`); break;
      case 'bridge': out.push(`${pad}${n.text}`, `${pad}${'-'.repeat(n.text.length)}`); break;
      default: out.push(`${pad}${n.text}`);
    }
    formatTraceNodes(n.subs, level + 2 * more, out);
  }
  return out;
}

/**
 * The whole report for `key` translated into `r`. `start` is the key the translation began
 * with when it differs from the printed one (a recirculated pass thaws registers into it);
 * "Final flow: unchanged" compares against it.
 */
export function formatTrace(key: Uint32Array, r: XlateResult, start: Uint32Array = key): string {
  const lines: string[] = [`Flow: ${formatFlowKey(key)}`];
  if (r.trace !== null) formatTraceNodes(r.trace, 0, lines);
  lines.push('');
  let same = true;
  for (let w = 0; w < KEY_WORDS; w++) if (start[w] !== r.finalKey[w]) { same = false; break; }
  lines.push(`Final flow: ${same ? 'unchanged' : formatFlowKey(r.finalKey)}`);
  lines.push(`Megaflow: ${formatMegaflow(key, r.wc)}`);
  lines.push(`Datapath actions: ${formatDpActions(r.actions)}`);
  return `${lines.join('\n')}\n`;
}

/** What a trace does at each recirculation (ct(table=N)): the conntrack state to resume with. */
export interface TraceOptions {
  /**
   * ct_state of each recirculated pass in turn (OVS's --ct-next, repeated); when they run out,
   * `ctLookup` decides, else OVS's default trk|new.
   */
  readonly ctNext?: readonly number[];
  /** The live conntrack table's state and mark for the packet `key` in `zone`, or null. */
  readonly ctLookup?: (key: Uint32Array, zone: number) => { state: number; mark: number } | null;
}

/** OVS's ct_state flags as flow_format prints them ("est|trk"). */
export function formatCtState(state: number): string {
  const names = ['new', 'est', 'rel', 'rpl', 'inv', 'trk', 'snat', 'dnat'];
  const out: string[] = [];
  for (let i = 0; i < names.length; i++) if (state & (1 << i)) out.push(names[i]);
  return out.length === 0 ? '0' : out.join('|');
}

/** Parses one --ct-next value ("trk,est", "+trk+est", "est|trk" or a number) into ct_state bits. */
export function parseCtState(text: string): number {
  const n = /^(0x[0-9a-f]+|\d+)$/i.exec(text.trim());
  if (n !== null) return Number(n[1]) & 0xff;
  const names = ['new', 'est', 'rel', 'rpl', 'inv', 'trk', 'snat', 'dnat'];
  let v = 0;
  for (const part of text.split(/[,|+\s]+/)) {
    if (part === '') continue;
    const i = names.indexOf(part);
    if (i < 0) throw new CommandError(`--ct-next: unknown ct_state flag "${part}" (expected ${names.join(', ')})`, 'E_ARGS');
    v |= 1 << i;
  }
  return v;
}

const CS_NEW_TRK = 0x21;
/** At most this many recirculated passes are followed (OVS stops a trace likewise). */
const MAX_TRACE_RECIRCS = 32;
const BANNER = '='.repeat(79);

/**
 * Traces a flow key through `bridgeName` of `ofproto` (no learning, no counters), then every
 * pass its ct(table=N) actions start, as `ofproto/trace` does: each recirculated pass gets a
 * banner naming its recirc id and ct_state, its own Flow (the packet as the ct saw it, with
 * recirc_id, ct_state, ct_zone and ct_mark, without the frozen registers), a "thaw" back into
 * the frozen bridge, table and registers, and its own Final flow, Megaflow and Datapath actions.
 * `result` is the first pass's translation.
 */
export function traceKey(ofproto: Ofproto, bridgeName: string, key: Uint32Array, nowMs = Date.now(),
                         opts: TraceOptions = {}): { text: string; result: XlateResult; passes: XlateResult[] } {
  const bridge = ofproto.bridges.get(bridgeName);
  if (bridge === undefined) throw new CommandError(`${bridgeName}: no such bridge`, 'E_NO_BRIDGE');
  const result = xlate({ ofproto, bridge, key, packetBytes: 0, nowMs, sideEffects: false, trace: true });
  let text = formatTrace(key, result);
  const passes: XlateResult[] = [];
  const queue: XlateRecirc[] = result.recircs.slice();
  let nextCt = 0;
  while (queue.length > 0 && passes.length < MAX_TRACE_RECIRCS) {
    const rc = queue.shift() as XlateRecirc;
    const st = recircTableOf(ofproto).get(rc.recircId);
    if (st === undefined) break;
    const k = rc.key.slice();
    k[W_METADATA_HI] = 0; k[W_METADATA_LO] = 0; k[W_CONJ_ID] = 0;
    for (let r = 0; r < N_REGS; r++) k[W_REG0 + r] = 0;
    k[W_RECIRC_ID] = rc.recircId;
    k[W_IN_PORT] = st.inPort;
    let state = -1, mark = 0, how = '';
    if (opts.ctNext !== undefined && nextCt < opts.ctNext.length) {
      state = opts.ctNext[nextCt++];
      how = `ct_state=${formatCtState(state)}`;
    } else {
      const live = opts.ctLookup?.(k, rc.zone) ?? null;
      if (live !== null) {
        state = live.state; mark = live.mark;
        how = `ct_state=${formatCtState(state)} from the conntrack table`;
      } else {
        state = CS_NEW_TRK;
        how = `default ct_state=${formatCtState(state)} (use --ct-next to customize)`;
      }
    }
    k[W_CT_STATE] = state; k[W_CT_ZONE] = rc.zone; k[W_CT_MARK] = mark;
    const thawed = k.slice();
    RecircTable.thaw(st, thawed, 0);
    const r = xlate({ ofproto, bridge: st.bridge, key: thawed, packetBytes: 0, nowMs, sideEffects: false,
      trace: true, tableId: st.tableId, resumed: true });
    passes.push(r);
    let banner = `\n${BANNER}\nrecirc(0x${rc.recircId.toString(16)}) - resume conntrack with ${how}\n`;
    if (rc.nat) banner += 'Replacing src/dst IP/ports to simulate NAT:\n Initial flow: \n Modified flow: \n';
    text += `${banner}${BANNER}\n\n${formatTrace(k, r, thawed)}`;
    for (const n of r.recircs) queue.push(n);
  }
  return { text, result, passes };
}

/**
 * A flow key from a frame in hex (blanks and `.`/`:` separators allowed) arriving on the
 * in_port given in `fields` (other fields there are ignored, as OVS takes them from the packet,
 * except tunnel metadata, which a frame cannot carry).
 */
export function keyFromHex(fields: string, hex: string, bridge: XlateBridge): Uint32Array {
  const clean = hex.replace(/[\s.:]/g, '');
  if (!/^([0-9a-fA-F]{2})+$/.test(clean)) throw new CommandError(`not a hex packet: ${hex.slice(0, 40)}`, 'E_BAD_PACKET');
  const bytes = Uint8Array.from(Buffer.from(clean, 'hex'));
  const meta = keyFromFields(fields, bridge);
  const key = new Uint32Array(KEY_WORDS);
  extractKey(bytes, 0, bytes.length, meta[W_IN_PORT], key, 0, new Uint16Array(OFFS_WORDS), 0);
  for (const w of [W_TUN_ID_HI, W_TUN_ID_LO, W_TUN_SRC, W_TUN_DST]) key[w] = meta[w];
  return key;
}

/**
 * Traces a packet given as ovs-ofctl match fields, or as fields then a hex frame separated by
 * a blank (`in_port=1 0a1b...`).
 */
export function traceFields(ofproto: Ofproto, bridgeName: string, fields: string, nowMs = Date.now(),
                            opts: TraceOptions = {}): { text: string; result: XlateResult; passes: XlateResult[] } {
  const bridge = ofproto.bridges.get(bridgeName);
  if (bridge === undefined) throw new CommandError(`${bridgeName}: no such bridge`, 'E_NO_BRIDGE');
  const t = fields.trim();
  const sp = t.search(/\s/);
  if (sp > 0) return traceKey(ofproto, bridgeName, keyFromHex(t.slice(0, sp), t.slice(sp + 1), bridge), nowMs, opts);
  return traceKey(ofproto, bridgeName, keyFromFields(t, bridge), nowMs, opts);
}
