/**
 * Translation (OVS's ofproto-dpif-xlate): runs one flow key through a bridge's OpenFlow
 * pipeline from table 0 and produces what the datapath should do with every packet of that
 * megaflow: a datapath action list, the megaflow mask (wc), the final flow, the rules hit (for
 * stats) and, on request, a trace tree for ofproto/trace.
 *
 * Who calls: ofproto/upcall.ts on an upcall (a datapath cache miss) through one Translator,
 * executeSlowPath() for replay and tests, trace.ts for `flowctl trace`. Slow path, but the
 * upcall rate is a figure (issue 12 (e)): a Translator reuses its key-sized arrays, and a
 * translation allocates only its small result lists and action objects.
 *
 * How it works, as OVS:
 * - `flow` is a working copy of the key that actions rewrite; `base` is what the packet in the
 *   datapath looks like so far. Before every output the differences are "committed" as set_*,
 *   push_vlan/pop_vlan actions (only the fields that changed), so outputs interleaved with
 *   rewrites see the packet as it was at that point.
 * - `wc` collects every key bit the decision read: classifier lookups (staged, see
 *   classifier.ts), plus actions that read (dec_ttl reads nw_ttl, NORMAL reads dl_src, dl_dst
 *   and vlan_tci, learn and move read their sources) and actions that write (a write is only
 *   visible in the datapath actions when the value differs from the packet's, so the written
 *   bits are un-wildcarded as OVS does). in_port, dl_type and, for IP, nw_frag are always
 *   un-wildcarded (OVS's xlate_wc_init).
 * - resubmit nests (depth limit 64, OVS's MAX_DEPTH; at most 4096 resubmits in one
 *   translation, OVS's MAX_RESUBMITS): beyond either the translation fails and the packet is
 *   dropped with that reason. goto_table runs the next table in the same way.
 * - A patch port continues in the peer bridge at table 0 with in_port = the peer port,
 *   metadata and registers cleared; when it returns the caller's flow is restored (the
 *   datapath packet keeps what the peer committed, so the next commit diffs against that).
 * - dec_ttl at TTL 0/1 stops the current rule's actions (outer resubmits go on, as in OVS) and
 *   records DpDrop.TtlExceeded; when nothing was output the list ends with that drop reason.
 * - Output to the input port is skipped unless it is written as in_port (OFPP_IN_PORT).
 *
 * - Registers, metadata and conj_id leave the returned wc (they are 0 whenever a packet enters the
 *   datapath); a committed field joins wc whole (its unwritten bits come from the packet).
 * - Output to a tunnel port first emits set_tunnel (flow tun_id, the port's local/remote IPs)
 *   unless the same tunnel metadata was already set.
 *
 * - CONTROLLER outputs and controller(...) become a `controller` datapath action (a packet-in
 *   carrying the rule's table and cookie and the flow's metadata); translation goes on after it.
 *
 * Differences from OVS (deliberate, and normalised in test/ofproto/ovs-diff.test.ts): the
 * dec_ttl exception is dropped and counted instead of sent up; OVS runs every packet of a
 * megaflow with a controller action through the slow path, flowd runs the cached program (its
 * packet-in metadata is exact because the megaflow holds those fields); after a patch-port crossing OVS restores the packet (e.g. push_vlan right after the
 * peer popped) while flowd diffs against the packet as it is (same packets, shorter lists);
 * FLOOD/ALL/NORMAL flood in ofport order (OVS: port hash order); FLOOD and ALL are the same;
 * the megaflow keeps the CFI bit always (flowd's key has the inner ethertype, so tagged and
 * untagged frames must be told apart explicitly, which OVS's outer ethertype does).
 * All differences from OVS that remain are listed in docs/ovs-differences.md.
 * Not done: IPv6 address rewrites in the commit, a second VLAN tag (push_vlan on a tagged frame keeps one tag).
 */
import {
  Action, CtAction, LearnAction, OFPP_ALL, OFPP_CONTROLLER, PIN_REASON_ACTION, OFPP_FLOOD, OFPP_IN_PORT, OFPP_LOCAL,
  OFPP_NONE, OFPP_NORMAL, OFPP_TABLE, SubField,
} from './actions';
import { formatAction } from './action-syntax';
import { formatMatch } from './match-syntax';
import {
  FieldDef, readSubfield, writeField, writeField32, writeSubfield,
  fieldFullMask,
} from './fields';
import { buildLearnedFlow } from './learn';
import { recircTableOf } from './recirc';
import { decideNormal, isReservedMulticast } from './normal';
import type { LearnedFlow, Ofproto, XlateBridge, XlatePort, XlateRule } from './ofproto';
import { DpAction, DpDrop } from '../dpif/dp-actions';
import type { PacketBatch } from '../netdev/batch';
import { applyDpActions, DpEmit } from '../dpif/dp-actions';
import {
  KEY_WORDS, N_REGS, VLAN_CFI, W_DL_DST_HI, W_DL_DST_LO, W_DL_SRC_HI, W_DL_SRC_LO, W_IN_PORT,
  W_METADATA_HI, W_METADATA_LO, W_NW_DST, W_NW_MISC, W_NW_SRC, W_RECIRC_ID, W_REG0, W_TP,
  W_TUN_DST, W_TUN_ID_HI, W_TUN_ID_LO, W_TUN_SRC, W_VLAN_DLTYPE, W_ARP_SHA_HI, W_ARP_SHA_LO,
  W_ARP_THA_HI, W_ARP_THA_LO, W_CT_MARK, W_CT_STATE, W_CT_ZONE, W_CONJ_ID,
} from '../packet/flowkey-layout';

const NO_USERDATA = new Uint8Array(0);

/** OVS's MAX_DEPTH and MAX_RESUBMITS. */
export const MAX_XLATE_DEPTH = 64;
export const MAX_RESUBMITS = 64 * 64;

const ETH_TYPE_IP = 0x0800;
const ETH_TYPE_ARP = 0x0806;
const ETH_TYPE_IPV6 = 0x86dd;

/** One line of an ofproto/trace tree (OVS's oftrace_node). */
export interface TraceNode {
  readonly kind: 'bridge' | 'table' | 'action' | 'detail' | 'warn' | 'error';
  readonly text: string;
  readonly subs: TraceNode[];
}

export interface XlateInput {
  readonly ofproto: Ofproto;
  readonly bridge: XlateBridge;
  /** The flow key (KEY_WORDS words at `keyBase`), in_port included. Not modified. */
  readonly key: Uint32Array;
  readonly keyBase?: number;
  /** The in_port to translate with instead of the key's (the upcaller's keys hold the datapath port). */
  readonly inPort?: number;
  /** Frame length, for rule byte counters. */
  readonly packetBytes: number;
  readonly nowMs: number;
  /** Learn, MAC learning and rule counters happen only when true (false for trace). */
  readonly sideEffects: boolean;
  /** Build a trace tree. */
  readonly trace?: boolean;
  /** Table to start in (a recirculated packet resumes where ct(table=T) sent it); 0 if absent. */
  readonly tableId?: number;
  /** The translation resumes a recirculation (the trace says "thaw", as OVS's). */
  readonly resumed?: boolean;
  /**
   * Credit the rules hit (packets, bytes, last use) when sideEffects is true; default true.
   * The datapath's upcaller passes false: the datapath credits every packet of a megaflow,
   * the upcalled one included, once per batch.
   */
  readonly creditRules?: boolean;
}

export interface XlateResult {
  /** Datapath actions; empty or ending in `drop` means the packet is dropped. */
  readonly actions: DpAction[];
  /** Megaflow mask, KEY_WORDS words. */
  readonly wc: Uint32Array;
  /** The flow after every action, KEY_WORDS words. */
  readonly finalKey: Uint32Array;
  /** Every rule matched, in the order hit (dpif credits cached hits to these). */
  readonly rulesHit: XlateRule[];
  /** DpDrop.None, or why the translation dropped or stopped. */
  readonly drop: DpDrop;
  /** Number of flows learn actions installed. */
  readonly nLearned: number;
  /** The flows learn actions built, with their bridge, in order (installed only with side effects). */
  readonly learned: readonly XlateLearned[];
  /** The trace tree (root nodes), when asked for. */
  readonly trace: TraceNode[] | null;
  /** The recirculations the actions start (ct with table=), in order. */
  readonly recircs: readonly XlateRecirc[];
}

/** One flow a learn action built, and the bridge it belongs in (ofproto/upcall.ts re-learns it per cached hit). */
export interface XlateLearned {
  readonly bridge: XlateBridge;
  readonly flow: LearnedFlow;
}

/** One ct(table=N) of a translation: where its recirculated copy resumes. */
export interface XlateRecirc {
  readonly recircId: number;
  readonly table: number;
  readonly zone: number;
  /** ct(...,nat): the recirculated pass sees the packet after NAT. */
  readonly nat: boolean;
  /** The flow as the ct action saw it (rewrites before it committed), KEY_WORDS words. */
  readonly key: Uint32Array;
}

const F_VLAN_TCI_MASK = 0xffff0000;
const F_DL_TYPE_MASK = 0x0000ffff;
const F_NW_PROTO = 0xff000000;
const F_NW_TOS_DSCP = 0x00fc0000;
const F_NW_TTL = 0x0000ff00;
const F_NW_FRAG = 0x000000ff;

/** First bytes of flowd's ICMP-error note ("fd" 01, dvr/flows-router.ts), then 12 bytes of operands. */
function isIcmpErrorNote(n: Uint8Array): boolean {
  return n.length >= 15 && n[0] === 0x66 && n[1] === 0x64 && n[2] === 0x01;
}

function macAt(k: Uint32Array, hi: number): number {
  return (k[hi] & 0xffff) * 0x100000000 + k[hi + 1];
}

class Xlate {
  // Key-sized scratch, allocated once per Xlate (a Translator reuses it for every translation).
  readonly flow = new Uint32Array(KEY_WORDS);
  readonly base = new Uint32Array(KEY_WORDS);
  readonly wc = new Uint32Array(KEY_WORDS);
  input!: XlateInput;
  ofproto!: Ofproto;
  bridge!: XlateBridge;
  /** Datapath actions so far (a check_pkt_larger branch swaps in its own list). */
  actions: DpAction[] = [];
  rulesHit: XlateRule[] = [];
  tableId = 0;
  /** The rule whose actions run now (its cookie and table go into a packet-in). */
  private rule: XlateRule | null = null;
  depth = 0;
  nResubmits = 0;
  error = DpDrop.None;
  /** Set by an action that ends the whole translation without a drop (icmp_error). */
  halted = false;
  stopReason = DpDrop.None;
  nOutputs = 0;
  /** Every ct(table=N) of this translation, in order (trace follows them). */
  recircs: XlateRecirc[] = [];
  nLearned = 0;
  learned: XlateLearned[] = [];
  /** Tunnel metadata last committed (hi, lo, src, dst); -1 = none yet. */
  private tunCommitted = [-1, -1, -1, -1];
  traceRoot: TraceNode[] | null = null;
  cur: TraceNode[] | null = null;

  /**
   * Starts a translation of `input`: every field back to its initial state. The lists the
   * result hands out (actions, rulesHit, learned, recircs) are fresh, so a result stays valid
   * when the next translation begins; flow and wc are overwritten.
   */
  begin(input: XlateInput): void {
    this.input = input;
    this.ofproto = input.ofproto;
    this.bridge = input.bridge;
    const b = input.keyBase ?? 0;
    const f = this.flow, base = this.base, wc = this.wc, key = input.key;
    for (let w = 0; w < KEY_WORDS; w++) { const v = key[b + w]; f[w] = v; base[w] = v; wc[w] = 0; }
    if (input.inPort !== undefined) { f[W_IN_PORT] = input.inPort; base[W_IN_PORT] = input.inPort; }
    this.actions = [];
    this.rulesHit = [];
    this.tableId = 0;
    this.rule = null;
    this.depth = 0;
    this.nResubmits = 0;
    this.error = DpDrop.None;
    this.halted = false;
    this.stopReason = DpDrop.None;
    this.nOutputs = 0;
    this.recircs = [];
    this.nLearned = 0;
    this.learned = [];
    this.tunCommitted.fill(-1);
    this.traceRoot = input.trace ? [] : null;
    this.cur = this.traceRoot;
  }

  // ---- trace helpers -----------------------------------------------------------------------
  private node(kind: TraceNode['kind'], text: string): TraceNode | null {
    if (this.cur === null) return null;
    const n: TraceNode = { kind, text, subs: [] };
    this.cur.push(n);
    return n;
  }

  /** Table miss or rule line, in OVS's " 0. match, priority N" form. */
  private tableText(tableId: number, rule: XlateRule | undefined): string {
    const id = tableId < 10 ? ` ${tableId}` : String(tableId);
    if (rule === undefined) return `${id}. No match.`;
    const m = formatMatch(rule.match, 32768);
    let s = `${id}. ${m === '' ? '' : `${m}, `}priority ${rule.priority}`;
    if (rule.cookie !== 0n) s += `, cookie 0x${rule.cookie.toString(16)}`;
    return s;
  }

  // ---- entry ---------------------------------------------------------------------------------
  run(): void {
    const f = this.flow, wc = this.wc;
    wc[W_IN_PORT] = 0xffffffff;
    wc[W_RECIRC_ID] = 0xffffffff;
    // dl_type, and whether the frame is tagged (OVS's datapath key always has the outer
    // ethertype, which tells tagged from untagged frames).
    wc[W_VLAN_DLTYPE] |= F_DL_TYPE_MASK | (VLAN_CFI << 16);
    const dlType = f[W_VLAN_DLTYPE] & 0xffff;
    if (dlType === ETH_TYPE_IP || dlType === ETH_TYPE_IPV6) wc[W_NW_MISC] |= F_NW_FRAG;
    // A packet from a tunnel carries its tunnel metadata into every decision (OVS's tnl_wc_init).
    if (f[W_TUN_DST] !== 0 || f[W_TUN_SRC] !== 0) {
      wc[W_TUN_SRC] = 0xffffffff;
      wc[W_TUN_DST] = 0xffffffff;
    }
    this.enterBridge(this.bridge);
    if (this.input.resumed === true) {
      const n = this.node('table', 'thaw');
      if (n !== null) n.subs.push({ kind: 'table', text: `Resuming from table ${this.input.tableId ?? 0}`, subs: [] });
    }
    this.xlateTable(this.input.tableId ?? 0);
  }

  private enterBridge(b: XlateBridge): void {
    const n = this.node('bridge', `bridge("${b.name}")`);
    if (n !== null) this.cur = n.subs;
  }

  // ---- tables ----------------------------------------------------------------------------
  xlateTable(tableId: number): void {
    if (this.error !== DpDrop.None || this.halted) return;
    if (this.depth >= MAX_XLATE_DEPTH) {
      this.error = DpDrop.RecursionTooDeep;
      this.node('error', `over max translation depth ${MAX_XLATE_DEPTH}`);
      return;
    }
    if (this.nResubmits >= MAX_RESUBMITS) {
      this.error = DpDrop.TooManyResubmits;
      this.node('error', `over ${MAX_RESUBMITS} resubmit actions`);
      return;
    }
    this.nResubmits++;
    const table = this.bridge.table(tableId);
    const rule = table?.lookup(this.flow, 0, this.wc);
    const tn = this.cur === null ? null : this.node('table', this.tableText(tableId, rule));
    const savedCur = this.cur;
    if (tn !== null) this.cur = tn.subs;
    if (rule === undefined) {
      this.node('action', 'drop');
      this.cur = savedCur;
      return;
    }
    this.rulesHit.push(rule);
    const savedRule = this.rule;
    this.rule = rule;
    if (this.input.sideEffects && this.input.creditRules !== false) {
      rule.nPackets++;
      rule.nBytes += this.input.packetBytes;
      rule.lastUsedMs = this.input.nowMs;
    }
    const savedTable = this.tableId;
    this.tableId = tableId;
    this.depth++;
    if (rule.actions.length === 0) this.node('action', 'drop');
    this.doActions(rule.actions);
    this.depth--;
    this.rule = savedRule;
    this.tableId = savedTable;
    this.cur = savedCur;
  }

  // ---- actions -----------------------------------------------------------------------------
  private doActions(actions: readonly Action[]): void {
    const f = this.flow, wc = this.wc;
    for (let i = 0; i < actions.length; i++) {
      if (this.error !== DpDrop.None || this.halted) return;
      const a = actions[i];
      if (this.cur !== null) this.node('action', formatAction(a));
      switch (a.kind) {
        case 'output': this.outputAction(a.port, a.maxLen); break;
        case 'controller': this.controller(a.maxLen, a.reason, a.controllerId, a.userdata); break;
        case 'output_reg': {
          const port = Number(readSubfield(a.src.field, a.src.ofs, a.src.nBits, f, 0));
          writeSubfield(a.src.field, a.src.ofs, a.src.nBits, wc, 0, (1n << BigInt(a.src.nBits)) - 1n);
          this.outputAction(port, a.maxLen);
          break;
        }
        case 'set_vlan_vid':
          wc[W_VLAN_DLTYPE] |= F_VLAN_TCI_MASK;
          this.setTci(((this.tci() & ~0x0fff) | (a.vid & 0xfff) | VLAN_CFI) & 0xffff);
          break;
        case 'set_vlan_pcp':
          wc[W_VLAN_DLTYPE] |= F_VLAN_TCI_MASK;
          this.setTci(((this.tci() & ~0xe000) | ((a.pcp & 7) << 13) | VLAN_CFI) & 0xffff);
          break;
        case 'push_vlan':
          // flowd's key holds one tag: pushing onto a tagged frame keeps its TCI (see report).
          if ((this.tci() & VLAN_CFI) === 0) this.setTci(VLAN_CFI);
          break;
        case 'strip_vlan':
          this.setTci(0);
          break;
        case 'set_dl_src':
          wc[W_DL_SRC_HI] |= 0xffff; wc[W_DL_SRC_LO] = 0xffffffff;
          f[W_DL_SRC_HI] = Math.floor(a.mac / 0x100000000) & 0xffff;
          f[W_DL_SRC_LO] = a.mac >>> 0;
          break;
        case 'set_dl_dst':
          wc[W_DL_DST_HI] |= 0xffff; wc[W_DL_DST_LO] = 0xffffffff;
          f[W_DL_DST_HI] = Math.floor(a.mac / 0x100000000) & 0xffff;
          f[W_DL_DST_LO] = a.mac >>> 0;
          break;
        case 'set_nw_src':
        case 'set_nw_dst':
          if (this.dlType() === ETH_TYPE_IP) {
            const w = a.kind === 'set_nw_src' ? W_NW_SRC : W_NW_DST;
            wc[w] = 0xffffffff;
            f[w] = a.ipv4 >>> 0;
          }
          break;
        case 'set_nw_tos':
          if (this.isIpAny()) {
            wc[W_NW_MISC] |= F_NW_TOS_DSCP;
            f[W_NW_MISC] = ((f[W_NW_MISC] & ~F_NW_TOS_DSCP) | (((a.tos & 0xfc) << 16) & F_NW_TOS_DSCP)) >>> 0;
          }
          break;
        case 'set_tp_src':
        case 'set_tp_dst':
          if (this.isIpAny()) {
            wc[W_NW_MISC] |= F_NW_PROTO | F_NW_FRAG;
            const proto = f[W_NW_MISC] >>> 24;
            if ((proto === 6 || proto === 17 || proto === 132) && (f[W_NW_MISC] & 2) === 0) {
              const m = a.kind === 'set_tp_src' ? 0xffff0000 : 0x0000ffff;
              const v = a.kind === 'set_tp_src' ? (a.port & 0xffff) << 16 : a.port & 0xffff;
              wc[W_TP] |= m;
              f[W_TP] = ((f[W_TP] & ~m) | (v & m)) >>> 0;
            }
          }
          break;
        case 'dec_ttl':
          if (this.isIpAny()) {
            wc[W_NW_MISC] |= F_NW_TTL;
            const ttl = (f[W_NW_MISC] >>> 8) & 0xff;
            if (ttl <= 1) {
              this.node('warn', `${this.dlType() === ETH_TYPE_IP ? 'IPv4' : 'IPv6'} decrement TTL exception`);
              this.stopReason = DpDrop.TtlExceeded;
              return; // stops this rule's actions only, as OVS
            }
            f[W_NW_MISC] = ((f[W_NW_MISC] & ~F_NW_TTL) | ((ttl - 1) << 8)) >>> 0;
          }
          break;
        case 'set_field':
          this.setField(a.field, a.value, a.mask);
          break;
        case 'load':
          writeSubfield(a.dst.field, a.dst.ofs, a.dst.nBits, f, 0, a.value);
          writeSubfield(a.dst.field, a.dst.ofs, a.dst.nBits, wc, 0, (1n << BigInt(a.dst.nBits)) - 1n);
          break;
        case 'move': {
          const v = readSubfield(a.src.field, a.src.ofs, a.src.nBits, f, 0);
          const ones = (1n << BigInt(a.src.nBits)) - 1n;
          writeSubfield(a.src.field, a.src.ofs, a.src.nBits, wc, 0, ones);
          writeSubfield(a.dst.field, a.dst.ofs, a.dst.nBits, f, 0, v);
          writeSubfield(a.dst.field, a.dst.ofs, a.dst.nBits, wc, 0, ones);
          break;
        }
        case 'set_tunnel': {
          const id = a.is64 ? a.tunId : a.tunId & 0xffffffffn;
          f[W_TUN_ID_HI] = Number((id >> 32n) & 0xffffffffn);
          f[W_TUN_ID_LO] = Number(id & 0xffffffffn);
          wc[W_TUN_ID_HI] = 0xffffffff; wc[W_TUN_ID_LO] = 0xffffffff;
          break;
        }
        case 'resubmit': {
          const oldInPort = f[W_IN_PORT];
          if (a.inPort !== OFPP_IN_PORT) f[W_IN_PORT] = a.inPort;
          this.xlateTable(a.table === 255 ? this.tableId : a.table);
          f[W_IN_PORT] = oldInPort;
          break;
        }
        case 'goto_table':
          this.xlateTable(a.table);
          return; // an instruction: nothing after it in this rule
        case 'note':
          if (isIcmpErrorNote(a.bytes)) { this.icmpError(a.bytes); return; }
          break;
        case 'check_pkt_larger':
          this.checkPktLarger(a.pktLen, a.dst, actions, i + 1);
          return;
        case 'learn':
          this.learn(a);
          break;
        case 'ct':
          this.conntrack(a);
          break;
        case 'ct_clear':
          // Pipeline state only: later matches in this translation see an untracked packet.
          f[W_CT_STATE] = 0; f[W_CT_ZONE] = 0; f[W_CT_MARK] = 0;
          break;
        case 'conjunction':
          // A clause is never the classifier's answer; reaching one (OVS: a packet-out) does nothing.
          break;
      }
    }
  }

  private tci(): number { return this.flow[W_VLAN_DLTYPE] >>> 16; }
  private setTci(tci: number): void {
    this.flow[W_VLAN_DLTYPE] = ((tci << 16) | (this.flow[W_VLAN_DLTYPE] & 0xffff)) >>> 0;
  }
  private dlType(): number { return this.flow[W_VLAN_DLTYPE] & 0xffff; }
  private isIpAny(): boolean { const t = this.dlType(); return t === ETH_TYPE_IP || t === ETH_TYPE_IPV6; }

  private setField(field: FieldDef, value: bigint, mask: bigint): void {
    const f = this.flow;
    const full = fieldFullMask(field);
    const m = mask & full;
    if (field.keyBits <= 32 && field.shift + field.keyBits <= 32 && m === full) {
      writeField32(field, f, 0, Number(value & full));
    } else {
      // Masked write: keep the bits outside the mask.
      const cur = readSubfield(field, 0, field.keyBits, f, 0);
      writeSubfield(field, 0, field.keyBits, f, 0, (cur & ~m) | (value & m));
    }
    writeField(field, this.wc, 0, readSubfield(field, 0, field.keyBits, this.wc, 0) | m);
    // A VLAN write pushes or modifies depending on the packet's tag: it reads the whole TCI.
    if (field.word === W_VLAN_DLTYPE && field.shift >= 16) this.wc[W_VLAN_DLTYPE] |= F_VLAN_TCI_MASK;
  }

  /**
   * ct(...): the datapath runs conntrack (dpif/conntrack.ts) on the packet as it is now, so
   * pending rewrites are committed first. With table=T the datapath forks: a copy goes through
   * conntrack and recirculates to table T of this bridge with this in_port, metadata and
   * registers (a recirculation id, ofproto/recirc.ts), where ct_state/ct_zone/ct_mark match;
   * this translation goes on with the next action on the original packet, as OVS's does. Without
   * table= the packet goes on in place. Either way, as in OVS, the ct_* fields are cleared for
   * the actions after ct (the packet is untracked outside the recirculated pass), and a list
   * holding a ct is kept even when nothing is output (ct(commit,exec(...)) alone marks the
   * connection, as Neutron's firewall does for connections whose rule was deleted).
   * Not supported (ignored): force, ct_label in exec().
   */
  private conntrack(a: CtAction): void {
    const f = this.flow;
    let zone = a.zone & 0xffff;
    if (a.zoneSrc !== null) {
      const z = a.zoneSrc;
      zone = Number(readSubfield(z.field, z.ofs, z.nBits, f, 0)) & 0xffff;
      writeSubfield(z.field, z.ofs, z.nBits, this.wc, 0, (1n << BigInt(z.nBits)) - 1n);
    }
    let markValue = 0, markMask = 0;
    for (const x of a.exec) {
      if (x.kind === 'set_field' && x.field.name === 'ct_mark') {
        const m = Number(x.mask & 0xffffffffn);
        markValue = ((markValue & ~m) | (Number(x.value & 0xffffffffn) & m)) >>> 0;
        markMask = (markMask | m) >>> 0;
      } else if (x.kind === 'load' && x.dst.field.name === 'ct_mark') {
        const m = Number(((1n << BigInt(x.dst.nBits)) - 1n) << BigInt(x.dst.ofs)) >>> 0;
        const v = Number((x.value << BigInt(x.dst.ofs)) & 0xffffffffn) >>> 0;
        markValue = ((markValue & ~m) | (v & m)) >>> 0;
        markMask = (markMask | m) >>> 0;
      } else {
        this.node('warn', `ct exec ${formatAction(x)} not supported, ignored`);
      }
    }
    this.commit();
    const recircId = a.table === 255 ? 0
      : recircTableOf(this.ofproto).idFor(this.bridge, f[W_IN_PORT], a.table, f);
    this.actions.push({ kind: 'ct', zone, commit: a.commit, recircId, nat: a.nat, markValue, markMask });
    if (recircId !== 0) {
      // The recirculated copy is this list's result as much as an output is.
      this.nOutputs++;
      this.recircs.push({ recircId, table: a.table, zone, nat: a.nat !== null, key: f.slice() });
      this.node('detail', `A clone of the packet is forked to recirculate. The forked pipeline will be resumed at table ${a.table}.`);
    }
    // As OVS: the ct_* fields exist only in the recirculated pass; here the packet is untracked.
    f[W_CT_STATE] = 0; f[W_CT_ZONE] = 0; f[W_CT_MARK] = 0;
    this.node('detail', 'Sets the packet to an untracked state, and clears all the conntrack fields.');
  }

  private learn(a: LearnAction): void {
    const lf = buildLearnedFlow(a, this.flow, this.wc);
    this.learned.push({ bridge: this.bridge, flow: lf });
    if (!this.input.sideEffects) {
      this.node('warn', 'suppressing side effects, so learn action ignored');
      return;
    }
    this.bridge.addLearnedFlow(lf, this.input.nowMs);
    this.nLearned++;
  }

  /**
   * check_pkt_larger(LEN)->DST: the frame length is not in the flow, so the rest of this
   * action list is translated twice, with DST = 1 into the datapath's "greater" branch and
   * with DST = 0 into its "less or equal" branch (OVS's check_pkt_len datapath action). Both
   * start from the flow as it is here (committed first, so the length is the frame's at this
   * point); what the branches read joins the one megaflow mask. Nothing after this list runs
   * once a branch has been taken: flowd ends the translation here (callers of a resubmit that
   * led here do not continue), which is how Neutron/OVN use it (the action is followed by a
   * resubmit that does everything).
   */
  private checkPktLarger(pktLen: number, dst: SubField, actions: readonly Action[], from: number): void {
    this.commit();
    const f = this.flow;
    const rest = actions.slice(from);
    const savedFlow = f.slice(), savedBase = this.base.slice(), savedTun = this.tunCommitted.slice();
    const outer = this.actions;
    const branch = (bit: bigint): DpAction[] => {
      f.set(savedFlow); this.base.set(savedBase); this.tunCommitted = savedTun.slice();
      this.halted = false;
      const list: DpAction[] = [];
      this.actions = list;
      writeSubfield(dst.field, dst.ofs, 1, f, 0, bit);
      this.node('detail', `check_pkt_larger: length ${bit === 1n ? '>' : '<='} ${pktLen}`);
      this.doActions(rest);
      return list;
    };
    const gt = branch(1n);
    const le = branch(0n);
    this.actions = outer;
    outer.push({ kind: 'check_pkt_len', size: pktLen, gt, le });
    this.halted = true;
  }

  /**
   * flowd's "generate an ICMPv4 error" (dvr/flows-router.ts icmpErrorNote): the frame as the
   * pipeline has it so far becomes the error and goes back out the input port; the translation
   * stops (nothing after it runs, as after OVS's controller action without continuation).
   */
  private icmpError(n: Uint8Array): void {
    const type = n[3], code = n[4];
    const srcIp = ((n[5] << 24) | (n[6] << 16) | (n[7] << 8) | n[8]) >>> 0;
    let srcMac = 0;
    for (let k = 9; k < 15; k++) srcMac = srcMac * 256 + n[k];
    // Fragmentation needed carries the next-hop MTU (RFC 1191) in two more bytes.
    const mtu = n.length >= 17 ? (n[15] << 8) | n[16] : 0;
    const inPort = this.flow[W_IN_PORT];
    const dp = this.ofproto.dpPort(this.bridge, inPort);
    this.node('detail', `icmp error type ${type} code ${code} from ${srcIp >>> 24}.${(srcIp >>> 16) & 255}.${(srcIp >>> 8) & 255}.${srcIp & 255} back to port ${inPort}`);
    if (dp >= 0) {
      this.commit();
      this.actions.push({ kind: 'icmp_error', type, code, srcIp, srcMac, mtu });
      this.actions.push({ kind: 'output', port: dp });
      this.nOutputs++;
    }
    this.halted = true;
  }

  // ---- outputs ------------------------------------------------------------------------------
  private outputAction(port: number, maxLen: number): void {
    const inPort = this.flow[W_IN_PORT];
    switch (port) {
      case OFPP_IN_PORT: this.outputPort(inPort); return;
      case OFPP_NORMAL: this.normal(); return;
      case OFPP_FLOOD:
      case OFPP_ALL: {
        const ports = this.bridge.portList().slice().sort((x, y) => x.ofport - y.ofport);
        for (const p of ports) if (p.ofport !== inPort) this.outputPort(p.ofport);
        return;
      }
      case OFPP_LOCAL:
        if (inPort === OFPP_LOCAL) { this.node('detail', 'skipping output to input port'); return; }
        this.outputPort(OFPP_LOCAL);
        return;
      case OFPP_CONTROLLER:
        this.controller(maxLen, PIN_REASON_ACTION, 0, NO_USERDATA);
        return;
      case OFPP_TABLE:
      case OFPP_NONE:
        return;
      default:
        if (port === inPort) { this.node('detail', 'skipping output to input port'); return; }
        this.outputPort(port);
    }
  }

  /**
   * A packet-in (OVS's xlate_controller_action): the packet as the pipeline has it so far goes
   * up with the flow's metadata, the rule's table and cookie; translation goes on. The tunnel
   * and conntrack fields travel in the packet-in, so the megaflow holds them exactly.
   */
  private controller(maxLen: number, reason: number, controllerId: number, userdata: Uint8Array): void {
    const f = this.flow, wc = this.wc;
    for (const w of [W_TUN_ID_HI, W_TUN_ID_LO, W_TUN_SRC, W_TUN_DST, W_CT_STATE, W_CT_ZONE, W_CT_MARK]) wc[w] = 0xffffffff;
    this.commit();
    const meta = new Uint32Array(KEY_WORDS);
    for (const w of [W_IN_PORT, W_TUN_ID_HI, W_TUN_ID_LO, W_TUN_SRC, W_TUN_DST, W_METADATA_HI, W_METADATA_LO, W_CT_STATE, W_CT_ZONE, W_CT_MARK]) meta[w] = f[w];
    for (let r = 0; r < N_REGS; r++) meta[W_REG0 + r] = f[W_REG0 + r];
    const rule = this.rule;
    let tableMiss = false;
    if (rule !== null && rule.priority === 0) {
      tableMiss = true;
      for (const m of rule.match.mask) if (m !== 0) { tableMiss = false; break; }
    }
    this.actions.push({
      kind: 'controller', maxLen,
      info: {
        bridge: this.bridge.name, tableId: this.tableId, cookie: rule === null ? 0xffffffffffffffffn : rule.cookie,
        reason, tableMiss, controllerId, userdata, flow: meta,
      },
    });
    this.nOutputs++;
  }

  /** Sends the packet to `ofport` of the current bridge (patch ports cross to the peer). */
  private outputPort(ofport: number): void {
    const p = this.bridge.port(ofport);
    if (p === undefined) { this.node('detail', `output to nonexistent port ${ofport}`); return; }
    if (p.kind === 'patch') { this.patchOutput(p); return; }
    const dp = this.ofproto.dpPort(this.bridge, ofport);
    if (dp < 0) { this.node('detail', `port ${p.name} has no datapath port`); return; }
    if (p.kind === 'tunnel') this.commitTunnel(p);
    this.commit();
    this.actions.push({ kind: 'output', port: dp });
    this.nOutputs++;
  }

  private patchOutput(p: XlatePort): void {
    const peer = this.ofproto.patchPeer(this.bridge, p);
    if (peer === undefined) { this.node('detail', `patch port ${p.name} has no peer`); return; }
    const f = this.flow;
    const saved = f.slice();
    const savedBridge = this.bridge, savedTable = this.tableId, savedCur = this.cur;
    f[W_IN_PORT] = peer.port.ofport;
    f[W_METADATA_HI] = 0; f[W_METADATA_LO] = 0;
    for (let r = 0; r < N_REGS; r++) f[W_REG0 + r] = 0;
    this.bridge = peer.bridge;
    this.enterBridge(peer.bridge);
    this.depth++;
    this.xlateTable(0);
    this.depth--;
    this.bridge = savedBridge;
    this.tableId = savedTable;
    this.cur = savedCur;
    f.set(saved);
  }

  private normal(): void {
    const f = this.flow, wc = this.wc;
    wc[W_DL_SRC_HI] |= 0xffff; wc[W_DL_SRC_LO] = 0xffffffff;
    wc[W_DL_DST_HI] |= 0xffff; wc[W_DL_DST_LO] = 0xffffffff;
    wc[W_VLAN_DLTYPE] |= F_VLAN_TCI_MASK;
    if (!this.bridge.forwardBpdu && isReservedMulticast(macAt(f, W_DL_DST_HI))) {
      this.node('detail', 'packet has reserved destination MAC, dropping');
      if (this.stopReason === DpDrop.None) this.stopReason = DpDrop.ReservedMulticast;
      return;
    }
    const ports = this.bridge.portList();
    const inPort = this.bridge.port(f[W_IN_PORT]);
    const origTci = this.tci();
    const d = decideNormal(this.bridge.macs, ports, inPort, macAt(f, W_DL_SRC_HI), macAt(f, W_DL_DST_HI),
      origTci, this.input.nowMs, this.input.sideEffects);
    this.node('detail', d.detail);
    for (const o of d.outputs) {
      this.setTci(o.tci);
      this.outputPort(o.ofport);
      if (this.error !== DpDrop.None) break;
    }
    this.setTci(origTci);
  }

  // ---- commit ------------------------------------------------------------------------------
  private commitTunnel(p: XlatePort): void {
    const f = this.flow, t = this.tunCommitted;
    const hi = f[W_TUN_ID_HI], lo = f[W_TUN_ID_LO];
    const src = p.tunnelLocalIp >>> 0, dst = p.tunnelRemoteIp >>> 0;
    if (t[0] === hi && t[1] === lo && t[2] === src && t[3] === dst) return;
    t[0] = hi; t[1] = lo; t[2] = src; t[3] = dst;
    this.wc[W_TUN_ID_HI] = 0xffffffff; this.wc[W_TUN_ID_LO] = 0xffffffff;
    this.actions.push({ kind: 'set_tunnel', tunIdHi: hi, tunIdLo: lo, src, dst });
  }

  /**
   * Emits set/push/pop actions for every field where `flow` differs from `base`. An emitted
   * action carries the whole field, whose unwritten bits come from the packet, so the whole
   * field joins the megaflow (a masked load of 2 bits of vlan_tci leaves the rest as it was).
   */
  private commit(): void {
    const f = this.flow, b = this.base, acts = this.actions, wc = this.wc;
    // Ethernet addresses.
    const srcCh = f[W_DL_SRC_HI] !== b[W_DL_SRC_HI] || f[W_DL_SRC_LO] !== b[W_DL_SRC_LO];
    const dstCh = f[W_DL_DST_HI] !== b[W_DL_DST_HI] || f[W_DL_DST_LO] !== b[W_DL_DST_LO];
    if (srcCh || dstCh) {
      acts.push({ kind: 'set_eth', src: srcCh ? macAt(f, W_DL_SRC_HI) : -1, dst: dstCh ? macAt(f, W_DL_DST_HI) : -1 });
      if (srcCh) { wc[W_DL_SRC_HI] |= 0xffff; wc[W_DL_SRC_LO] = 0xffffffff; }
      if (dstCh) { wc[W_DL_DST_HI] |= 0xffff; wc[W_DL_DST_LO] = 0xffffffff; }
      b[W_DL_SRC_HI] = f[W_DL_SRC_HI]; b[W_DL_SRC_LO] = f[W_DL_SRC_LO];
      b[W_DL_DST_HI] = f[W_DL_DST_HI]; b[W_DL_DST_LO] = f[W_DL_DST_LO];
    }
    const dlType = f[W_VLAN_DLTYPE] & 0xffff;
    if (dlType === ETH_TYPE_IP) {
      const srcC = f[W_NW_SRC] !== b[W_NW_SRC], dstC = f[W_NW_DST] !== b[W_NW_DST];
      const tosC = (f[W_NW_MISC] & F_NW_TOS_DSCP) !== (b[W_NW_MISC] & F_NW_TOS_DSCP);
      const ttlC = (f[W_NW_MISC] & F_NW_TTL) !== (b[W_NW_MISC] & F_NW_TTL);
      if (srcC || dstC || tosC || ttlC) {
        acts.push({
          kind: 'set_ipv4', src: srcC ? f[W_NW_SRC] : -1, dst: dstC ? f[W_NW_DST] : -1,
          tos: tosC ? (f[W_NW_MISC] >>> 16) & 0xfc : -1, tosMask: tosC ? 0xfc : 0,
          ttl: ttlC ? (f[W_NW_MISC] >>> 8) & 0xff : -1,
        });
        if (srcC) wc[W_NW_SRC] = 0xffffffff;
        if (dstC) wc[W_NW_DST] = 0xffffffff;
        if (tosC) wc[W_NW_MISC] |= F_NW_TOS_DSCP;
        if (ttlC) wc[W_NW_MISC] |= F_NW_TTL;
        b[W_NW_SRC] = f[W_NW_SRC]; b[W_NW_DST] = f[W_NW_DST];
        b[W_NW_MISC] = ((b[W_NW_MISC] & ~(F_NW_TOS_DSCP | F_NW_TTL)) | (f[W_NW_MISC] & (F_NW_TOS_DSCP | F_NW_TTL))) >>> 0;
      }
      const proto = f[W_NW_MISC] >>> 24;
      if ((proto === 6 || proto === 17 || proto === 1) && f[W_TP] !== b[W_TP]) {
        const sC = (f[W_TP] >>> 16) !== (b[W_TP] >>> 16), dC = (f[W_TP] & 0xffff) !== (b[W_TP] & 0xffff);
        // ICMP keeps its type in tp_src and code in tp_dst; OVS commits both: set(icmp(type,code)).
        const icmp = proto === 1;
        acts.push({ kind: 'set_l4', proto, src: sC || icmp ? f[W_TP] >>> 16 : -1, dst: dC || icmp ? f[W_TP] & 0xffff : -1 });
        wc[W_NW_MISC] |= F_NW_PROTO | F_NW_FRAG;
        if (sC) wc[W_TP] |= 0xffff0000;
        if (dC) wc[W_TP] |= 0x0000ffff;
        b[W_TP] = f[W_TP];
      }
    } else if (dlType === ETH_TYPE_ARP) {
      const opC = (f[W_NW_MISC] & F_NW_PROTO) !== (b[W_NW_MISC] & F_NW_PROTO);
      const spaC = f[W_NW_SRC] !== b[W_NW_SRC], tpaC = f[W_NW_DST] !== b[W_NW_DST];
      const shaC = f[W_ARP_SHA_HI] !== b[W_ARP_SHA_HI] || f[W_ARP_SHA_LO] !== b[W_ARP_SHA_LO];
      const thaC = f[W_ARP_THA_HI] !== b[W_ARP_THA_HI] || f[W_ARP_THA_LO] !== b[W_ARP_THA_LO];
      if (opC || spaC || tpaC || shaC || thaC) {
        acts.push({
          kind: 'set_arp', op: opC ? f[W_NW_MISC] >>> 24 : -1, spa: spaC ? f[W_NW_SRC] : -1,
          tpa: tpaC ? f[W_NW_DST] : -1, sha: shaC ? macAt(f, W_ARP_SHA_HI) : -1,
          tha: thaC ? macAt(f, W_ARP_THA_HI) : -1,
        });
        if (opC) wc[W_NW_MISC] |= F_NW_PROTO;
        if (spaC) wc[W_NW_SRC] = 0xffffffff;
        if (tpaC) wc[W_NW_DST] = 0xffffffff;
        if (shaC) { wc[W_ARP_SHA_HI] |= 0xffff; wc[W_ARP_SHA_LO] = 0xffffffff; }
        if (thaC) { wc[W_ARP_THA_HI] |= 0xffff; wc[W_ARP_THA_LO] = 0xffffffff; }
        b[W_NW_MISC] = ((b[W_NW_MISC] & ~F_NW_PROTO) | (f[W_NW_MISC] & F_NW_PROTO)) >>> 0;
        b[W_NW_SRC] = f[W_NW_SRC]; b[W_NW_DST] = f[W_NW_DST];
        b[W_ARP_SHA_HI] = f[W_ARP_SHA_HI]; b[W_ARP_SHA_LO] = f[W_ARP_SHA_LO];
        b[W_ARP_THA_HI] = f[W_ARP_THA_HI]; b[W_ARP_THA_LO] = f[W_ARP_THA_LO];
      }
    }
    // VLAN (after L3/L4, in OVS's order): pop what the packet has, push what the flow wants.
    const ft = f[W_VLAN_DLTYPE] >>> 16, bt = b[W_VLAN_DLTYPE] >>> 16;
    if (ft !== bt) {
      if ((bt & VLAN_CFI) !== 0) acts.push({ kind: 'pop_vlan' });
      if ((ft & VLAN_CFI) !== 0) acts.push({ kind: 'push_vlan', tci: ft });
      wc[W_VLAN_DLTYPE] |= F_VLAN_TCI_MASK;
      b[W_VLAN_DLTYPE] = f[W_VLAN_DLTYPE];
    }
  }

  result(): XlateResult {
    let drop = DpDrop.None;
    let actions = this.actions;
    if (this.error !== DpDrop.None) {
      drop = this.error;
      actions = [{ kind: 'drop', reason: this.error }];
    } else if (this.nOutputs === 0) {
      drop = this.stopReason !== DpDrop.None ? this.stopReason : DpDrop.Pipeline;
      // Pure rewrites without an output do nothing to a dropped packet: keep only the reason,
      // after the actions up to the last ct(), which acts on the connection (a commit, a mark)
      // and which OVS keeps too: Neutron's firewall marks a connection ct_mark=1 and drops.
      let keep = 0;
      for (let i = 0; i < actions.length; i++) if (actions[i].kind === 'ct') keep = i + 1;
      actions = [...actions.slice(0, keep), { kind: 'drop', reason: drop }];
    } else if (this.stopReason !== DpDrop.None) {
      drop = this.stopReason;
    }
    // Registers and metadata are 0 whenever a packet enters the datapath: their mask bits
    // constrain nothing, so they leave the megaflow (as OVS's datapath keys lack them).
    const wc = this.wc;
    wc[W_METADATA_HI] = 0; wc[W_METADATA_LO] = 0; wc[W_CONJ_ID] = 0;
    for (let r = 0; r < N_REGS; r++) wc[W_REG0 + r] = 0;
    return {
      actions, wc, finalKey: this.flow, rulesHit: this.rulesHit, drop,
      nLearned: this.nLearned, learned: this.learned, trace: this.traceRoot, recircs: this.recircs,
    };
  }
}

/** Translates one flow through `input.bridge`'s pipeline (see the header comment). */
export function xlate(input: XlateInput): XlateResult {
  const x = new Xlate();
  x.begin(input);
  x.run();
  return x.result();
}

/**
 * A translator for callers that translate one flow after another (ofproto/upcall.ts, per
 * upcall): the key-sized arrays of a translation (flow, packet so far, wildcards) are allocated
 * once, not per call (three 220-byte typed arrays live outside V8's heap and cost more to make
 * than a whole translation through one table). What translate() returns is xlate()'s result,
 * except that `wc` and `finalKey` are the translator's own arrays: valid until the next call,
 * so a caller that keeps them copies them. A nested call (none is known: side effects only set
 * flags) gets a fresh translation.
 */
export class Translator {
  private readonly x = new Xlate();
  private busy = false;

  translate(input: XlateInput): XlateResult {
    if (this.busy) return xlate(input);
    this.busy = true;
    try {
      const x = this.x;
      x.begin(input);
      x.run();
      return x.result();
    } finally {
      this.busy = false;
    }
  }
}

/**
 * The slow path for one frame: translates its key and runs the resulting actions on frame
 * `slot` of `batch` (outputs go to `emit`, see dp-actions.ts). Learning and counters happen.
 * Returns the translation (for caching) and the executor's drop reason.
 */
export function executeSlowPath(ofproto: Ofproto, bridge: XlateBridge, key: Uint32Array, keyBase: number,
                                batch: PacketBatch, slot: number, nowMs: number,
                                emit: DpEmit): { xlate: XlateResult; drop: DpDrop } {
  const r = xlate({ ofproto, bridge, key, keyBase, packetBytes: batch.len[slot], nowMs, sideEffects: true });
  const drop = applyDpActions(r.actions, batch, slot, emit);
  return { xlate: r, drop };
}

