/**
 * Compiled action programs: a datapath action list (dpif/dp-actions.ts) turned, once per
 * megaflow, into a flat program the hot loop runs on a frame of a PacketBatch.
 *
 * Called by: dpif/program-cache.ts (compile once per distinct action list, on an upcall that
 * returned a list not seen before); dpif/stages.ts execute (runProgram per packet; runStraight
 * per run of frames of one flow whose program is rewrites of MACs/TOS/TTL/VLAN and one output or
 * ct step in place). Never allocates per packet.
 *
 * A program is `code`, a Float64Array of fixed-width instructions (op + 5 operands; float64 so
 * 48-bit MACs and "-1 = leave alone" fit like dp-actions.ts's numbers), plus the tunnel headers
 * its outputs copy in front of the frame. Outputs name dense port indexes (dpif/ports.ts), fixed
 * at compile time; the datapath flushes every program when a port goes away.
 *
 * Semantics are exactly applyDpActions's (the slow path), which the property test in
 * test/dpif/fastpath-equivalence.test.ts checks byte for byte: rewrites in place, checksums
 * patched incrementally (RFC 1624), VLAN push/pop through the slot's headroom. Header offsets
 * come from what extractKey recorded for the frame (`parsed`: one parse per frame), which the
 * rewrites keep in step with the frame (VLAN push/pop, set_eth, set_ipv4: frame-headers.ts
 * key*); after a rewrite they cannot follow (set_l4, set_arp, QinQ) from a walk of the frame. What differs is output: a plain port gets a copy of the
 * frame in its output batch; a tunnel port gets the copy behind the header precomputed for
 * (port, tun_id of the last set_tunnel) with only lengths, IPv4 checksum and UDP source port filled.
 * ct is a step like the others (OP_CT): it hands the frame to the datapath's ExecCtx, which runs
 * conntrack in place (ct without recirculation) or recirculates the frame for the next pass,
 * where conntrack runs once per batch (datapath.ts): left in its slot, or, when an instruction
 * after the ct step rewrites the frame, as a copy (OP_CT's operand 2, markInPlace). A program of
 * MAC, TOS/TTL and VLAN rewrites ending in one output or one such ct step in place is
 * `straight`: stages.ts execute runs a run of its frames through runStraight, step by step over
 * the run. A list the compiler does not handle
 * (icmp_error, check_pkt_len, a tunnel output with no set_tunnel before it) compiles to one
 * SLOW instruction that runs applyDpActions through ExecCtx.slow.
 *
 * Offload frames (a GSO super-frame or a checksum-partial frame, batch.vnet): every non-SLOW
 * instruction handles them whole (outputs pass the vnet header to ports.emit, which finishes
 * the frame for tunnels and ports without offload; VLAN push/pop move csum_start; address
 * rewrites patch a partial checksum in its own form, frame-headers.ts; a ct step tracks the
 * frame once and NAT patches its partial checksum, conntrack.ts). Only a SLOW program is not
 * `offloadSafe`: the datapath finishes the frame first and runs the program per piece.
 *
 * Revalidation compares programs (sameProgram), not action text: equal code, the same memoised
 * tunnel headers and equal ct steps.
 */
import { PacketBatch, VNET_HDR_BYTES } from '../netdev/batch';
import { csumPatch16 } from '../packet/checksum';
import { DpAction, DpCt, DpDrop, formatDpActions } from './dp-actions';
import { ctL3FromKey } from './ct-parse';
import {
  hdr, headersFromKey, ipv4FromKey, IPV4_LOCATE, keyPopVlan, keyPushVlan, keyRetagVlan, keySetEth, keySetIpv4, locate, popVlanTag,
  pushVlanTag, retagVlan, setAddr, setPort, setIcmpTypeCode,
} from './frame-headers';
import { W } from '../packet/flowkey-layout';
import { Off } from '../packet/flowkey';
import { PortTable } from './ports';
import { TunnelHeader } from './tunnel-header';
import { wr32, wrMac } from '../packet/bytes';

export const OP_OUTPUT = 1;
export const OP_OUTPUT_TUNNEL = 2;
export const OP_SET_ETH = 3;
export const OP_PUSH_VLAN = 4;
export const OP_POP_VLAN = 5;
/** OP_SET_IPV4..OP_SET_ARP (6..8) are the ops that need header offsets; runProgram tests the range. */
export const OP_SET_IPV4 = 6;
export const OP_SET_L4 = 7;
export const OP_SET_ARP = 8;
export const OP_DROP = 9;
export const OP_SLOW = 10;
/** Output to a port this datapath does not have: counted, not sent. */
export const OP_OUTPUT_NONE = 11;
/** ct(...) with or without recirc: operand 1 indexes Program.cts. */
export const OP_CT = 12;
/**
 * set_ipv4 that changes only TOS and/or TTL (dec_ttl, the DVR router's rewrite): needs the L3
 * offset alone, which it reads from the key (frame-headers.ts ipv4FromKey) instead of locating
 * every header. Operands: tos, tosMask, ttl (-1: leave alone).
 */
export const OP_SET_IPV4_TOS_TTL = 13;
/**
 * pop_vlan then push_vlan(tci), compiled from the two adjacent actions (the VLAN change xlate
 * commits when a frame leaves with another tag than it came with): on a frame with a tag, the
 * tag rewritten in place (frame-headers.ts retagVlan, keyRetagVlan); on one without, a push.
 * Byte for byte the pop and the push one after the other; the key stays in step for a QinQ
 * frame too (the pop and push gave it up). Operand: tci.
 */
export const OP_RETAG_VLAN = 14;
export const INSN_WORDS = 6;

/**
 * OP_SET_ETH's operand 1: which addresses it writes (bit 1 dst, bit 2 src). Operands 2..4 are
 * the big-endian words it stores: dst only, the 4 + 2 bytes at 0 and 4; src only, the 2 + 4
 * bytes at 6 and 8; both, the 3 words at 0, 4 and 8 (dst low half and src high half share the
 * middle one).
 */
export const ETH_DST = 1;
export const ETH_SRC = 2;

/** runProgram's answer for a frame that went nowhere but into the recirculation queue. */
export const RECIRCULATED = -1;
/**
 * runProgram's answer for a frame that went out and was also recirculated (a ct step forked
 * it): it counts as sent, and its end (forwarded or dropped on its port) is counted by the
 * pass of its recirculation, so a frame ends once.
 */
export const SENT_AND_RECIRCULATED = -2;
/** ExecCtx.ct's answers. */
export const CT_GO_ON = 0;
export const CT_QUEUED = 1;
export const CT_STOP = 2;

export class Program {
  private textMemo: string | null = null;
  constructor(
    readonly code: Float64Array,
    readonly nInsns: number,
    readonly headers: readonly TunnelHeader[],
    /** The source list (kept for SLOW and dumps). */
    readonly actions: readonly DpAction[],
    /** The ct steps' actions, indexed by OP_CT's operand. */
    readonly cts: readonly DpCt[] = [],
  ) {
    this.offloadSafe = !(nInsns === 1 && code[0] === OP_SLOW);
    this.outputOnly = nInsns === 1 && code[0] === OP_OUTPUT ? code[1] | 0 : -1;
    const lo = (nInsns - 1) * INSN_WORDS, lastOp = code[lo];
    const ctEnd = lastOp === OP_CT && code[lo + 2] === CT_FORK_IN_PLACE;
    let straight = this.outputOnly < 0 && (lastOp === OP_OUTPUT || lastOp === OP_OUTPUT_TUNNEL || ctEnd);
    let nPush = 0;
    for (let k = 0; k < nInsns - 1; k++) {
      const op = code[k * INSN_WORDS];
      if (op === OP_PUSH_VLAN || op === OP_RETAG_VLAN) nPush++; // a retag pushes on a frame without a tag
      else if (op !== OP_POP_VLAN && op !== OP_SET_ETH && op !== OP_SET_IPV4_TOS_TTL) straight = false;
    }
    this.straight = straight;
    this.straightCt = straight && ctEnd ? cts[code[lo + 1] | 0] : null;
    this.nPushVlan = nPush;
    let lastCt = -1, keyLast = -1, firstVlan = nInsns;
    for (let k = 0; k < nInsns; k++) {
      const op = code[k * INSN_WORDS];
      if (op === OP_CT) lastCt = k;
      if (readsKey(op)) keyLast = k;
      if ((op === OP_PUSH_VLAN || op === OP_POP_VLAN || op === OP_RETAG_VLAN) && firstVlan === nInsns) firstVlan = k;
    }
    this.lastCt = lastCt;
    this.keyLast = keyLast;
    this.firstVlan = firstVlan;
  }

  /**
   * Index of the last step that reads the frame's key or header offsets (readsKey: a VLAN step,
   * an IPv4, L4 or ARP rewrite, a ct step), -1 when none. A VLAN step after it leaves the key
   * alone (runProgram, runStraight): nothing reads the key of a frame that only goes out after
   * it, as the firewall's push_vlan(vid),output does in every reply.
   */
  readonly keyLast: number;

  /** Index of the first VLAN step (push, pop, retag), nInsns when none (runStraight's `stale` starts there). */
  readonly firstVlan: number;

  /**
   * Index of the last ct step, -1 when none. Only a ct step reads the MAC and IPv4 words of the
   * frame's key after a rewrite (conntrack here, or the next pass after recirculation in place),
   * so set_eth and set_ipv4 keep those words in step only before it (runProgram). Header offsets
   * and the VLAN word are kept in step always: later L3 rewrites read them.
   */
  readonly lastCt: number;

  /**
   * The port index when the program is one plain output and nothing else (dpif/stages.ts execute
   * hands such frames to ports.emitLast without running the program), else -1.
   */
  readonly outputOnly: number;

  /**
   * Rewrites of MACs, TOS/TTL and VLAN tags, then one end: an output (plain or tunnel) or a ct
   * step that recirculates the frame in place; and not outputOnly. The routed frame to a VM or
   * into a tunnel, a firewall's pop_vlan,ct(zone),recirc(N) or push_vlan,output, and the first
   * pass of every stateful flow, ct(zone...),recirc(N). dpif/stages.ts execute runs a run of
   * frames of such a flow through runStraight, step by step over the run, instead of runProgram
   * per frame.
   */
  readonly straight: boolean;

  /** The ct step that ends a straight program, else null (it ends with an output). */
  readonly straightCt: DpCt | null;

  /** VLAN push and retag steps (runStraight's headroom check). */
  readonly nPushVlan: number;

  /** runProgram can take a GSO / checksum-partial frame whole (false for SLOW only). */
  readonly offloadSafe: boolean;

  /**
   * Canonical text of `actions` (two lists with equal text behave the same), made on first use
   * (dumps, revalidation) rather than per upcall, where it cost about 5% of an upcall.
   */
  get text(): string {
    if (this.textMemo === null) this.textMemo = formatDpActions(this.actions);
    return this.textMemo;
  }
}

/** What compile needs from the datapath: port lookup and memoised tunnel headers. */
export interface CompileEnv {
  readonly ports: PortTable;
  /** Header for tunnel port index `idx` and key/VNI `key` (null when idx is no tunnel). */
  tunnelHeader(idx: number, key: number): TunnelHeader | null;
}

/** Compiles `actions` once, for installation with a megaflow. */
export function compileActions(actions: readonly DpAction[], env: CompileEnv): Program {
  const code = new Float64Array(Math.max(1, actions.length) * INSN_WORDS);
  const headers: TunnelHeader[] = [];
  const cts: DpCt[] = [];
  let n = 0;
  let tunSet = false;
  let tunKey = 0;
  const put = (op: number, a: number, b: number, c: number, d: number, e: number): void => {
    const o = n * INSN_WORDS;
    code[o] = op; code[o + 1] = a; code[o + 2] = b; code[o + 3] = c; code[o + 4] = d; code[o + 5] = e;
    n++;
  };
  const slow = (): Program => {
    const c = new Float64Array(INSN_WORDS);
    c[0] = OP_SLOW;
    return new Program(c, 1, [], actions);
  };
  for (let i = 0; i < actions.length; i++) {
    const a = actions[i];
    switch (a.kind) {
      case 'output': {
        const idx = env.ports.portIndex[a.port & 0xffff];
        if (a.port < 0 || a.port > 0xffff || idx < 0) { put(OP_OUTPUT_NONE, a.port, 0, 0, 0, 0); break; }
        if (env.ports.list[idx].tunnel === null) { put(OP_OUTPUT, idx, 0, 0, 0, 0); break; }
        if (!tunSet) return slow();
        const h = env.tunnelHeader(idx, tunKey);
        if (h === null) return slow();
        headers.push(h);
        put(OP_OUTPUT_TUNNEL, idx, headers.length - 1, 0, 0, 0);
        break;
      }
      case 'set_eth': {
        const mode = (a.dst >= 0 ? ETH_DST : 0) | (a.src >= 0 ? ETH_SRC : 0);
        const dHi32 = a.dst >= 0 ? Math.floor(a.dst / 0x10000) : 0, dLo16 = a.dst >= 0 ? a.dst % 0x10000 : 0;
        const sHi16 = a.src >= 0 ? Math.floor(a.src / 0x100000000) : 0, sLo32 = a.src >= 0 ? a.src % 0x100000000 : 0;
        if (mode === ETH_DST) put(OP_SET_ETH, mode, dHi32, dLo16, 0, 0);
        else if (mode === ETH_SRC) put(OP_SET_ETH, mode, 0, sHi16, sLo32, 0);
        else put(OP_SET_ETH, mode, dHi32, dLo16 * 0x10000 + sHi16, sLo32, 0);
        break;
      }
      case 'push_vlan': put(OP_PUSH_VLAN, a.tci, 0, 0, 0, 0); break;
      case 'pop_vlan': {
        const next = i + 1 < actions.length ? actions[i + 1] : null;
        if (next !== null && next.kind === 'push_vlan') { put(OP_RETAG_VLAN, next.tci, 0, 0, 0, 0); i++; break; }
        put(OP_POP_VLAN, 0, 0, 0, 0, 0);
        break;
      }
      case 'set_ipv4':
        if (a.src < 0 && a.dst < 0) put(OP_SET_IPV4_TOS_TTL, a.tos, a.tosMask, a.ttl, 0, 0);
        else put(OP_SET_IPV4, a.src, a.dst, a.tos, a.tosMask, a.ttl);
        break;
      case 'set_l4': put(OP_SET_L4, a.proto, a.src, a.dst, 0, 0); break;
      case 'set_arp': put(OP_SET_ARP, a.op, a.spa, a.tpa, a.sha, a.tha); break;
      case 'set_tunnel': tunSet = true; tunKey = a.tunIdLo >>> 0; break;
      case 'drop': put(OP_DROP, a.reason, 0, 0, 0, 0); break;
      case 'ct': cts.push(a); put(OP_CT, cts.length - 1, 0, 0, 0, 0); break;
      default: return slow();
    }
  }
  markInPlace(code, n, cts);
  return new Program(code, n, headers, actions, cts);
}

/**
 * True when instruction op `op` reads the frame's key or header offsets as the program keeps
 * them (frame-headers.ts headersFromKey, ipv4FromKey, keyPopVlan/keyPushVlan, a ct step's key).
 * set_eth is not among them: it only writes the key's MAC words, for a ct step after it.
 */
function readsKey(op: number): boolean {
  return op === OP_PUSH_VLAN || op === OP_POP_VLAN || op === OP_RETAG_VLAN || op === OP_SET_IPV4_TOS_TTL ||
    op === OP_SET_IPV4 || op === OP_SET_L4 || op === OP_SET_ARP || op === OP_CT;
}

/** True when instruction op `op` (ct step `a` for OP_CT) may change the frame's bytes. */
function rewritesFrame(op: number, a: DpCt | null): boolean {
  if (op === OP_CT) return a !== null && (a.recircId !== 0 || (a.nat ?? null) !== null);
  return op === OP_SET_ETH || op === OP_PUSH_VLAN || op === OP_POP_VLAN || op === OP_RETAG_VLAN || op === OP_SET_IPV4 ||
    op === OP_SET_IPV4_TOS_TTL || op === OP_SET_L4 || op === OP_SET_ARP || op === OP_SLOW;
}

/** OP_CT's operand 2: how a recirculating ct step forks its frame (see markInPlace). */
export const CT_FORK_COPY = 0;
export const CT_FORK_IN_PLACE = 1;
/**
 * Not compiled: what runProgram passes instead of CT_FORK_IN_PLACE when a rewrite before the ct
 * step left the frame's key stale (one frame-headers.ts cannot keep in step: set_l4, set_arp,
 * a second VLAN tag, NAT by an earlier ct): the next pass parses the frame again.
 */
export const CT_FORK_IN_PLACE_REPARSE = 2;

/**
 * Sets OP_CT's operand 2 for each ct step with recirculation. When no instruction after it
 * rewrites the frame (outputs after it copy the frame as it is), the frame may stay in its batch
 * slot for the next pass (datapath.ts), CT_FORK_IN_PLACE, with the key its parse recorded and
 * the rewrites before the step kept in it (runProgram; CT_FORK_IN_PLACE_REPARSE at run time when
 * they could not be). Otherwise (CT_FORK_COPY) a copy of the frame goes to the recirculation
 * queue and the original goes on.
 */
function markInPlace(code: Float64Array, n: number, cts: readonly DpCt[]): void {
  for (let k = 0; k < n; k++) {
    const o = k * INSN_WORDS;
    if (code[o] !== OP_CT || cts[code[o + 1]].recircId === 0) continue;
    let after = false;
    for (let j = k + 1; j < n; j++) {
      const op = code[j * INSN_WORDS];
      if (rewritesFrame(op, op === OP_CT ? cts[code[j * INSN_WORDS + 1]] : null)) after = true;
    }
    code[o + 2] = after ? CT_FORK_COPY : CT_FORK_IN_PLACE;
  }
}

function sameCt(a: DpCt, b: DpCt): boolean {
  if (a.zone !== b.zone || a.commit !== b.commit || a.recircId !== b.recircId ||
      (a.markValue ?? 0) !== (b.markValue ?? 0) || (a.markMask ?? 0) !== (b.markMask ?? 0)) return false;
  const x = a.nat ?? null, y = b.nat ?? null;
  if (x === null || y === null) return x === y;
  return x.kind === y.kind && x.ipMin === y.ipMin && x.ipMax === y.ipMax && x.portMin === y.portMin &&
    x.portMax === y.portMax;
}

/**
 * True when `a` and `b` do the same to every frame: equal instructions, the same tunnel headers
 * (memoised per port and key, so equal headers are the same object) and equal ct steps. Two SLOW
 * programs compare their action text (the one place text is still built: lists compile never
 * handles are rare). Revalidation's test of "did this megaflow's actions change".
 */
export function sameProgram(a: Program, b: Program): boolean {
  if (a === b) return true; // interned (dpif/program-cache.ts): the usual answer
  if (a.nInsns !== b.nInsns || a.headers.length !== b.headers.length || a.cts.length !== b.cts.length) return false;
  const n = a.nInsns * INSN_WORDS;
  for (let k = 0; k < n; k++) if (a.code[k] !== b.code[k]) return false;
  for (let k = 0; k < a.headers.length; k++) if (a.headers[k] !== b.headers[k]) return false;
  for (let k = 0; k < a.cts.length; k++) if (!sameCt(a.cts[k], b.cts[k])) return false;
  if (!a.offloadSafe && a.cts.length === 0) return a.text === b.text;
  return true;
}



/**
 * set_ipv4's TOS (bits `tosMask` of byte 1 from `tos`) and TTL rewrite (-1: leave alone) of the
 * IPv4 header at byte `ip` of `b` (`dv` a DataView over the same bytes), its header checksum
 * patched per 16-bit word changed (RFC 1624).
 */
function setTosTtl(b: Uint8Array, dv: DataView, ip: number, tos: number, tosMask: number, ttl: number): void {
  if (tos >= 0) {
    const old = (b[ip] << 8) | b[ip + 1];
    b[ip + 1] = ((b[ip + 1] & ~tosMask) | (tos & tosMask)) & 0xff;
    csumPatch16(b, ip + 10, old, (b[ip] << 8) | b[ip + 1]);
  }
  if (ttl >= 0) setTtl(dv, ip, ttl);
}

/**
 * TTL `ttl` into the IPv4 header at byte `ip` through `dv`: TTL, protocol and the header checksum
 * are bytes 8 to 11, so one big-endian 32-bit load and one store do the rewrite and its patch,
 * HC' = ~(~HC + ~m + m') (RFC 1624 eqn 3) for m the TTL/protocol word, folded twice: the sum of
 * three 16-bit values is below 2^18, so two end-around folds leave at most 0xffff, as
 * checksum.ts csumPatch16's fold16 does (the same field value, 0xffff and 0 alike). With
 * set_eth's int32 operands in runStraight, (b)'s execute + flush went 33.5 -> 31 ns per frame
 * (bench/tunnel-stages.ts STAGES_HOT; the byte loads, stores and fold16 loop of csumPatch16).
 */
function setTtl(dv: DataView, ip: number, ttl: number): void {
  const w = dv.getUint32(ip + 8);
  const old16 = w >>> 16, new16 = ((ttl & 0xff) << 8) | (old16 & 0xff);
  let s = (~w & 0xffff) + (~old16 & 0xffff) + new16;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  dv.setUint32(ip + 8, (new16 << 16) | (~s & 0xffff));
}

/** OP_SET_ETH's stores (operands as compileActions lays them) on the frame at `off` through `dv`. */
function setEth(dv: DataView, off: number, mode: number, w0: number, w1: number, w2: number): void {
  if (mode === ETH_DST) { dv.setUint32(off, w0); dv.setUint16(off + 4, w1); }
  else if (mode === ETH_SRC) { dv.setUint16(off + 6, w1); dv.setUint32(off + 8, w2); }
  else if (mode !== 0) { dv.setUint32(off, w0); dv.setUint32(off + 4, w1); dv.setUint32(off + 8, w2); }
}

/** The keys and header offsets extractKey recorded for the batch's frames (BatchState has them). */
export interface ParsedFrames {
  readonly keys: Uint32Array;
  readonly offs: Uint16Array;
}

/** What runStraight reads and writes besides keys and offsets (BatchState has them). */
export interface RunFrames extends ParsedFrames {
  /**
   * No frame of the pass is deeper (recirculation depth) than this; BatchState.depthMax. A bound
   * above the run's deepest frame only makes runStraight decline a run at the depth limit
   * (the frames then run one by one, each at its own depth).
   */
  readonly depthMax: number;
  /** Scratch per slot: 1 when a step left the key and offsets stale (runProgram's keyOk false). */
  readonly stale: Uint8Array;
  /**
   * Runs of one key (BatchState.runLen, read while nRuns > 0): a head's runLen members follow it
   * in `live`, their keys, hashes and `stale` are the head's; their offsets are their own.
   */
  readonly runLen: Uint16Array;
  readonly nRuns: number;
}

/** What programs need from the datapath beyond ports: conntrack and the slow fallback. */
export interface ExecCtx {
  /**
   * ct step `a` on frame `slot` (at recirculation depth `depth`): CT_GO_ON after conntrack ran
   * in place, CT_QUEUED when the frame was recirculated (`fork`, CT_FORK_*: in place, it stays
   * in its slot for the next pass, see markInPlace; else a copy went to the recirculation
   * queue), CT_STOP to end the list.
   * `l3`: the frame's L3 offset from its parse (ct-parse.ts ctL3FromKey) for a ct step without
   * recirculation, -1 when unknown (and for a recirculating one: its conntrack runs in the next pass).
   */
  ct(a: DpCt, batch: PacketBatch, slot: number, depth: number, l3: number, fork: number): number;
  /** Runs a SLOW program's list (applyDpActions); a DpDrop, RECIRCULATED or SENT_AND_RECIRCULATED. */
  slow(actions: readonly DpAction[], batch: PacketBatch, slot: number, flowHash: number, depth: number): number;
}

/** ExecCtx with the ct step of a run of frames (runStraight). */
export interface RunCtx extends ExecCtx {
  /**
   * True when ct(..., fork CT_FORK_IN_PLACE) on a frame at depth `depth`, or any lower, would
   * leave it in its slot now.
   */
  recircInPlace(depth: number): boolean;
  /**
   * ct step `a` for the frames in slots live[from, to) of `batch`, each as ct() with
   * CT_FORK_IN_PLACE (CT_FORK_IN_PLACE_REPARSE where `stale[slot]` is 1; `stale` null: none),
   * which recircInPlace said leaves each in its slot.
   */
  recircRun(a: DpCt, batch: PacketBatch, live: Uint16Array, from: number, to: number, stale: Uint8Array | null): void;
}

/**
 * Runs `p` on frame `slot` of `batch` (rewritten in place; off/len may move) and appends its
 * outputs to `ports`. `flowHash` is the ingress key hash (tunnel UDP source port); `depth` the
 * frame's recirculation depth. Returns DpDrop.None when the frame went out at least once,
 * RECIRCULATED when it only went to the recirculation queue, SENT_AND_RECIRCULATED when both,
 * else why it was dropped.
 */
export function runProgram(p: Program, batch: PacketBatch, slot: number, flowHash: number, depth: number,
                           parsed: ParsedFrames, ports: PortTable, ctx: ExecCtx): number {
  const code = p.code;
  const b = batch.buf;
  const dv = batch.view;
  const vnet = batch.vnet;
  const vOff = slot * VNET_HDR_BYTES;
  const keys = parsed.keys, kb = slot * W.KEY_WORDS, offs = parsed.offs, ob = slot * Off.WORDS;
  let nOut = 0;
  let nQueued = 0;
  let dirty = true;
  // The slot's key and offsets still describe the frame: rewrites keep them in step where
  // frame-headers.ts can (VLAN push/pop, set_eth, set_ipv4); any other rewrite makes them stale.
  let keyOk = true;
  for (let k = 0; k < p.nInsns; k++) {
    const o = k * INSN_WORDS;
    const op = code[o] | 0;
    const off = batch.off[slot];
    const len = batch.len[slot];
    if (op === OP_OUTPUT) {
      // The last step: the frame does not change after it, so the port may send it from here.
      if (k === p.nInsns - 1) ports.emitLast(code[o + 1] | 0, batch, slot, flowHash);
      else ports.emit(code[o + 1] | 0, b, off, len, null, flowHash, vnet, vOff);
      nOut++;
      continue;
    }
    if (op === OP_OUTPUT_TUNNEL) {
      // As above: the last step may encapsulate the frame where it lies (ports.emitLastTunnel).
      if (k === p.nInsns - 1) ports.emitLastTunnel(code[o + 1] | 0, batch, slot, p.headers[code[o + 2] | 0], flowHash);
      else ports.emit(code[o + 1] | 0, b, off, len, p.headers[code[o + 2] | 0], flowHash, vnet, vOff);
      nOut++;
      continue;
    }
    // Only the L3/L4 rewrites need the header offsets; MAC and VLAN ops work at fixed offsets.
    if (dirty && op >= OP_SET_IPV4 && op <= OP_SET_ARP) {
      if (keyOk) headersFromKey(keys, kb, offs, ob, b, off, len);
      else locate(b, off, len);
      if (vnet !== null) hdr.l4Partial = batch.csumPartial(slot);
      dirty = false;
    }
    switch (op) {
      case OP_SET_ETH: {
        if (len < 14) break;
        setEth(dv, off, code[o + 1], code[o + 2], code[o + 3], code[o + 4]);
        if (keyOk && k < p.lastCt) keySetEth(keys, kb, dv, off);
        break;
      }
      case OP_SET_IPV4_TOS_TTL: {
        let l3 = keyOk ? ipv4FromKey(keys, kb, offs, ob) : IPV4_LOCATE;
        if (l3 === IPV4_LOCATE) {
          if (dirty) {
            locate(b, off, len);
            if (vnet !== null) hdr.l4Partial = batch.csumPartial(slot);
            dirty = false;
          }
          l3 = hdr.ethType === 0x0800 ? hdr.l3 : -1;
        }
        if (l3 < 0) break;
        setTosTtl(b, dv, off + l3, code[o + 1], code[o + 2], code[o + 3]);
        if (keyOk && k < p.lastCt) keySetIpv4(keys, kb, dv, off + l3);
        break;
      }
      case OP_PUSH_VLAN: {
        if (len < 14) break;
        if (off - 4 < slot * batch.slotBytes) return DpDrop.NoHeadroom;
        const tci = code[o + 1] & 0xefff;
        pushVlanTag(batch, slot, tci);
        dirty = true;
        if (keyOk && k < p.keyLast) keyOk = keyPushVlan(keys, kb, offs, ob, tci);
        break;
      }
      case OP_POP_VLAN:
        if (!popVlanTag(batch, slot)) break;
        dirty = true;
        if (keyOk && k < p.keyLast) keyOk = keyPopVlan(keys, kb, offs, ob);
        break;
      case OP_RETAG_VLAN: {
        const tci = code[o + 1] & 0xefff;
        if (retagVlan(batch, slot, tci)) {
          dirty = true;
          if (keyOk && k < p.keyLast) keyOk = keyRetagVlan(keys, kb, tci);
          break;
        }
        if (len < 14) break; // the pop found no tag: the push alone, as OP_PUSH_VLAN
        if (off - 4 < slot * batch.slotBytes) return DpDrop.NoHeadroom;
        pushVlanTag(batch, slot, tci);
        dirty = true;
        if (keyOk && k < p.keyLast) keyOk = keyPushVlan(keys, kb, offs, ob, tci);
        break;
      }
      case OP_SET_IPV4: {
        if (hdr.l3 < 0 || hdr.ethType !== 0x0800) break;
        const ip = off + hdr.l3;
        setTosTtl(b, dv, ip, code[o + 3], code[o + 4], code[o + 5]);
        if (code[o + 1] >= 0) setAddr(b, ip + 12, code[o + 1], off);
        if (code[o + 2] >= 0) setAddr(b, ip + 16, code[o + 2], off);
        if (keyOk && k < p.lastCt) keySetIpv4(keys, kb, dv, ip);
        break;
      }
      case OP_SET_L4: {
        if (hdr.l4 < 0 || hdr.proto !== code[o + 1]) break;
        keyOk = false;
        const l4 = off + hdr.l4;
        if (hdr.proto === 1) { setIcmpTypeCode(b, l4, code[o + 2], code[o + 3]); break; }
        if (code[o + 2] >= 0) setPort(b, l4, code[o + 2], off);
        if (code[o + 3] >= 0) setPort(b, l4 + 2, code[o + 3], off);
        break;
      }
      case OP_SET_ARP: {
        if (hdr.l3 < 0 || hdr.ethType !== 0x0806) break;
        keyOk = false;
        const arp = off + hdr.l3;
        const opv = code[o + 1];
        if (opv >= 0) { b[arp + 6] = (opv >>> 8) & 0xff; b[arp + 7] = opv & 0xff; }
        const sha = code[o + 4];
        if (sha >= 0) wrMac(b, arp + 8, Math.floor(sha / 0x100000000), sha >>> 0);
        if (code[o + 2] >= 0) wr32(b, arp + 14, code[o + 2] >>> 0);
        const tha = code[o + 5];
        if (tha >= 0) wrMac(b, arp + 18, Math.floor(tha / 0x100000000), tha >>> 0);
        if (code[o + 3] >= 0) wr32(b, arp + 24, code[o + 3] >>> 0);
        break;
      }
      case OP_DROP:
        return code[o + 1];
      case OP_OUTPUT_NONE:
        nOut++; // the slow path hands it to emit too; here it is counted and goes nowhere
        ports.nNoPort++;
        break;
      case OP_CT: {
        const a = p.cts[code[o + 1] | 0];
        // Only a ct step without recirculation runs conntrack here and needs the L3 offset.
        const l3 = keyOk && a.recircId === 0 ? ctL3FromKey(keys, kb, offs, ob) : -1;
        let fork = code[o + 2] | 0;
        if (fork === CT_FORK_IN_PLACE && !keyOk) fork = CT_FORK_IN_PLACE_REPARSE;
        const r = ctx.ct(a, batch, slot, depth, l3, fork);
        if (r === CT_STOP) return nOut > 0 ? (nQueued > 0 ? SENT_AND_RECIRCULATED : DpDrop.None) : nQueued > 0 ? RECIRCULATED : DpDrop.Pipeline;
        if (r === CT_QUEUED) nQueued++;
        else if (a.nat !== undefined && a.nat !== null) keyOk = false; // conntrack NATed the frame in place
        dirty = true; // NAT may have rewritten the headers
        break;
      }
      case OP_SLOW:
        return ctx.slow(p.actions, batch, slot, flowHash, depth);
    }
  }
  return nOut > 0 ? (nQueued > 0 ? SENT_AND_RECIRCULATED : DpDrop.None) : nQueued > 0 ? RECIRCULATED : DpDrop.Pipeline;
}

/**
 * Runs straight program `p` (Program.straight) on the frames in slots live[from, to) of `batch`,
 * all with this program (frames of one flow, or of flows with equal actions: dpif/stages.ts
 * execute): each step over the whole run, then the run's end in one call: its output
 * (ports.emitLastRun / emitLastTunnelRun) or its ct step (ctx.recircRun: every frame stays in
 * its slot for the next pass). Per frame exactly what runProgram does: the steps cannot stop a
 * frame, and `st.stale` follows each frame's key as runProgram's keyOk does (a VLAN step the key
 * cannot follow, QinQ), from the first VLAN step on; a VLAN step after Program.keyLast moves
 * the frame's bytes alone, as runProgram's does. A run of one key among them (st.runLen, while
 * st.nRuns > 0: its members' keys are the head's) is stepped by its head: the key words and
 * `stale` of the head alone, each member's bytes as the head's (same headers, same step: the
 * head's IPv4 offset, the head's tag outcome), and after a VLAN step the head's offsets copied
 * to the members (runVlan). Returns false, having done nothing, when a frame of the run would end
 * otherwise: a push_vlan without headroom (runProgram drops it), a ct step that would not
 * recirculate in place (too deep, or the pass recirculates by copies); the caller then runs the
 * run's frames one by one.
 */
export function runStraight(p: Program, batch: PacketBatch, live: Uint16Array, from: number, to: number,
                            hashes: Uint32Array, st: RunFrames, ports: PortTable, ctx: RunCtx): boolean {
  const code = p.code, dv = batch.view, b = batch.buf, offA = batch.off, lenA = batch.len, vnet = batch.vnet;
  const keys = st.keys, offs = st.offs, stale = st.stale;
  const last = p.nInsns - 1, lastCt = p.lastCt, keyLast = p.keyLast, firstVlan = p.firstVlan, ct = p.straightCt;
  if (p.nPushVlan > 0) {
    const need = 4 * p.nPushVlan;
    for (let q = from; q < to; q++) { const i = live[q]; if (offA[i] - need < i * batch.slotBytes) return false; }
  }
  if (ct !== null && !ctx.recircInPlace(st.depthMax)) return false; // no frame of the run is deeper than depthMax
  // `stale` is written by the first VLAN step that keeps the key (for every frame of the run)
  // and read only after it: a step before it, or a program with none, reads every key as kept.
  // A run of one key (runLen, in a pass with runs) is walked by its head: the head's key steps
  // stand for its members (their keys and `stale` are the head's, and their headers are laid
  // out as the head's), whose bytes each step rewrites as the head's, and whose offsets a VLAN
  // step sets to the head's.
  const runLen = st.nRuns > 0 ? st.runLen : null;
  for (let k = 0; k < last; k++) {
    const o = k * INSN_WORDS, op = code[o];
    const keep = k < lastCt; // the key's MAC and IPv4 words are read by the ct step at the end
    const staleSet = k > firstVlan;
    if (op === OP_SET_ETH) {
      // Operands as int32 (setUint32 stores their low 32 bits): no float truncation per store.
      const mode = code[o + 1] | 0, w0 = code[o + 2] | 0, w1 = code[o + 3] | 0, w2 = code[o + 4] | 0;
      for (let q = from; q < to; q++) {
        const i = live[q];
        const r = runLen === null ? 0 : runLen[i];
        if (lenA[i] >= 14) {
          setEth(dv, offA[i], mode, w0, w1, w2);
          if (keep && !(staleSet && stale[i] !== 0)) keySetEth(keys, i * W.KEY_WORDS, dv, offA[i]);
        }
        for (let m = q + 1; m <= q + r; m++) setEth(dv, offA[live[m]], mode, w0, w1, w2);
        q += r;
      }
    } else if (op === OP_SET_IPV4_TOS_TTL) {
      const tos = code[o + 1], tosMask = code[o + 2], ttl = code[o + 3];
      for (let q = from; q < to; q++) {
        const i = live[q];
        const r = runLen === null ? 0 : runLen[i];
        const off = offA[i], keyOk = !(staleSet && stale[i] !== 0);
        let l3 = keyOk ? ipv4FromKey(keys, i * W.KEY_WORDS, offs, i * Off.WORDS) : IPV4_LOCATE;
        if (l3 === IPV4_LOCATE) {
          locate(b, off, lenA[i]);
          if (vnet !== null) hdr.l4Partial = batch.csumPartial(i);
          l3 = hdr.ethType === 0x0800 ? hdr.l3 : -1;
        }
        if (l3 >= 0) {
          setTosTtl(b, dv, off + l3, tos, tosMask, ttl);
          if (keyOk && keep) keySetIpv4(keys, i * W.KEY_WORDS, dv, off + l3);
          for (let m = q + 1; m <= q + r; m++) setTosTtl(b, dv, offA[live[m]] + l3, tos, tosMask, ttl);
        }
        q += r;
      }
    } else if (op === OP_PUSH_VLAN) {
      const tci = code[o + 1] & 0xefff;
      if (k >= keyLast) { // nothing reads the key after this step
        for (let q = from; q < to; q++) { const i = live[q]; if (lenA[i] >= 14) pushVlanTag(batch, i, tci); }
        continue;
      }
      for (let q = from; q < to; q++) {
        const i = live[q];
        const r = runLen === null ? 0 : runLen[i];
        if (lenA[i] < 14) { if (!staleSet) stale[i] = 0; }
        else {
          pushVlanTag(batch, i, tci);
          if (!staleSet || stale[i] === 0) stale[i] = keyPushVlan(keys, i * W.KEY_WORDS, offs, i * Off.WORDS, tci) ? 0 : 1;
        }
        if (r !== 0) { runVlan(batch, live, q, r, offs, 1, tci); q += r; }
      }
    } else if (op === OP_RETAG_VLAN) {
      const tci = code[o + 1] & 0xefff, track = k < keyLast;
      for (let q = from; q < to; q++) {
        const i = live[q];
        const r = runLen === null ? 0 : runLen[i];
        if (retagVlan(batch, i, tci)) {
          if (track && (!staleSet || stale[i] === 0)) stale[i] = keyRetagVlan(keys, i * W.KEY_WORDS, tci) ? 0 : 1;
        } else if (lenA[i] < 14) {
          if (track && !staleSet) stale[i] = 0;
        } else {
          pushVlanTag(batch, i, tci);
          if (track && (!staleSet || stale[i] === 0)) stale[i] = keyPushVlan(keys, i * W.KEY_WORDS, offs, i * Off.WORDS, tci) ? 0 : 1;
        }
        if (r !== 0) { runVlan(batch, live, q, r, offs, 2, tci); q += r; }
      }
    } else { // OP_POP_VLAN
      if (k >= keyLast) {
        for (let q = from; q < to; q++) popVlanTag(batch, live[q]);
        continue;
      }
      for (let q = from; q < to; q++) {
        const i = live[q];
        const r = runLen === null ? 0 : runLen[i];
        if (!popVlanTag(batch, i)) { if (!staleSet) stale[i] = 0; }
        else if (!staleSet || stale[i] === 0) stale[i] = keyPopVlan(keys, i * W.KEY_WORDS, offs, i * Off.WORDS) ? 0 : 1;
        if (r !== 0) { runVlan(batch, live, q, r, offs, 0, 0); q += r; }
      }
    }
  }
  const o = last * INSN_WORDS;
  if (ct !== null) ctx.recircRun(ct, batch, live, from, to, firstVlan < last ? stale : null);
  else if (code[o] === OP_OUTPUT) ports.emitLastRun(code[o + 1] | 0, batch, live, from, to, hashes);
  else ports.emitLastTunnelRun(code[o + 1] | 0, batch, live, from, to, p.headers[code[o + 2] | 0], hashes);
  return true;
}

/**
 * runStraight's VLAN step for the members of the run headed by live[q] (`r` of them, after the
 * head's step): each frame's bytes as the head's were (`op` 0 pop, 1 push, 2 retag or push,
 * with `tci`), and its offsets set to the head's (equal before the step, moved as the head's).
 */
function runVlan(batch: PacketBatch, live: Uint16Array, q: number, r: number, offs: Uint16Array, op: number,
                 tci: number): void {
  const hb = live[q] * Off.WORDS;
  const l3 = offs[hb + Off.L3], l4 = offs[hb + Off.L4], pay = offs[hb + Off.L4_PAYLOAD], vlan = offs[hb + Off.VLAN];
  for (let m = q + 1; m <= q + r; m++) {
    const x = live[m];
    if (op === 0) popVlanTag(batch, x);
    else if (op === 1) { if (batch.len[x] >= 14) pushVlanTag(batch, x, tci); }
    else if (!retagVlan(batch, x, tci) && batch.len[x] >= 14) pushVlanTag(batch, x, tci);
    const ob = x * Off.WORDS;
    offs[ob + Off.L3] = l3;
    offs[ob + Off.L4] = l4;
    offs[ob + Off.L4_PAYLOAD] = pay;
    offs[ob + Off.VLAN] = vlan;
  }
}
