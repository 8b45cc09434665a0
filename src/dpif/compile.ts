/**
 * Compiled action programs: a datapath action list (dpif/dp-actions.ts) turned, once per
 * megaflow, into a flat program the hot loop runs on a frame of a PacketBatch.
 *
 * Called by: dpif/datapath.ts (compile on install; run per packet). Never allocates per packet.
 *
 * A program is `code`, a Float64Array of fixed-width instructions (op + 5 operands; float64 so
 * 48-bit MACs and "-1 = leave alone" fit like dp-actions.ts's numbers), plus the tunnel headers
 * its outputs copy in front of the frame. Outputs name dense port indexes (dpif/ports.ts), fixed
 * at compile time; the datapath flushes every program when a port goes away.
 *
 * Semantics are exactly applyDpActions's (the slow path), which the property test in
 * test/dpif/fastpath-equivalence.test.ts checks byte for byte: rewrites in place, checksums
 * patched incrementally (RFC 1624), VLAN push/pop through the slot's headroom, headers located
 * lazily and again after a push/pop. What differs is output: a plain port gets a copy of the
 * frame in its output batch; a tunnel port gets the copy behind the header precomputed for
 * (port, tun_id of the last set_tunnel) with only lengths, IPv4 checksum and UDP source port filled.
 * A list the compiler does not handle (ct, a tunnel output with no set_tunnel before it) compiles
 * to one SLOW instruction that runs applyDpActions with the datapath's emit function.
 *
 * Offload frames (a GSO super-frame or a checksum-partial frame, batch.vnet): every non-SLOW
 * instruction handles them whole (outputs pass the vnet header to ports.emit, which finishes
 * the frame for tunnels and ports without offload; VLAN push/pop move csum_start; address
 * rewrites patch a partial checksum in its own form, frame-headers.ts). A SLOW program is
 * `offloadSafe` when dp-actions.ts says its list keeps such frames right (ct and NAT included);
 * otherwise the datapath finishes the frame first and runs the program per piece.
 */
import { PacketBatch, VNET_HDR_BYTES } from '../netdev/batch';
import { csumPatch16 } from '../packet/checksum';
import { DpAction, DpDrop, dpActionsOffloadSafe, formatDpActions } from './dp-actions';
import { hdr, locate, setAddr, setPort, setIcmpTypeCode } from './frame-headers';
import { PortTable } from './ports';
import { TunnelHeader } from './tunnel-header';

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
export const INSN_WORDS = 6;

export class Program {
  private textMemo: string | null = null;
  constructor(
    readonly code: Float64Array,
    readonly nInsns: number,
    readonly headers: readonly TunnelHeader[],
    /** The source list (kept for SLOW, dumps and revalidation compares). */
    readonly actions: readonly DpAction[],
  ) {
    // Issue 16 hook: a SLOW list runs whole on offload frames when all its actions allow it.
    this.offloadSafe = !(nInsns === 1 && code[0] === OP_SLOW) || dpActionsOffloadSafe(actions);
  }

  /** runProgram can take a GSO / checksum-partial frame whole (SLOW: dpActionsOffloadSafe). */
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
      case 'set_eth':
        put(OP_SET_ETH, a.src < 0 ? -1 : Math.floor(a.src / 0x100000000), a.src >>> 0,
          a.dst < 0 ? -1 : Math.floor(a.dst / 0x100000000), a.dst >>> 0, 0);
        break;
      case 'push_vlan': put(OP_PUSH_VLAN, a.tci, 0, 0, 0, 0); break;
      case 'pop_vlan': put(OP_POP_VLAN, 0, 0, 0, 0, 0); break;
      case 'set_ipv4': put(OP_SET_IPV4, a.src, a.dst, a.tos, a.tosMask, a.ttl); break;
      case 'set_l4': put(OP_SET_L4, a.proto, a.src, a.dst, 0, 0); break;
      case 'set_arp': put(OP_SET_ARP, a.op, a.spa, a.tpa, a.sha, a.tha); break;
      case 'set_tunnel': tunSet = true; tunKey = a.tunIdLo >>> 0; break;
      case 'drop': put(OP_DROP, a.reason, 0, 0, 0, 0); break;
      default: return slow();
    }
  }
  return new Program(code, n, headers, actions);
}

function wrMac(b: Uint8Array, o: number, hi: number, lo: number): void {
  b[o] = (hi >>> 8) & 0xff; b[o + 1] = hi & 0xff;
  b[o + 2] = lo >>> 24; b[o + 3] = (lo >>> 16) & 0xff; b[o + 4] = (lo >>> 8) & 0xff; b[o + 5] = lo & 0xff;
}

function wr32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24; b[o + 1] = (v >>> 16) & 0xff; b[o + 2] = (v >>> 8) & 0xff; b[o + 3] = v & 0xff;
}

/** Slow fallback: the datapath's emit function and hook for OP_SLOW programs. */
export interface SlowPath {
  run(actions: readonly DpAction[], batch: PacketBatch, slot: number, flowHash: number): DpDrop;
}

/**
 * Runs `p` on frame `slot` of `batch` (rewritten in place; off/len may move) and appends its
 * outputs to `ports`. `flowHash` is the ingress key hash (tunnel UDP source port).
 * Returns DpDrop.None when the frame went out at least once, else why it was dropped.
 */
export function runProgram(p: Program, batch: PacketBatch, slot: number, flowHash: number,
                           ports: PortTable, slow: SlowPath): DpDrop {
  const code = p.code;
  const b = batch.buf;
  const vnet = batch.vnet;
  const vOff = slot * VNET_HDR_BYTES;
  let nOut = 0;
  let dirty = true;
  for (let k = 0; k < p.nInsns; k++) {
    const o = k * INSN_WORDS;
    const op = code[o] | 0;
    const off = batch.off[slot];
    const len = batch.len[slot];
    if (op === OP_OUTPUT) {
      ports.emit(code[o + 1] | 0, b, off, len, null, flowHash, vnet, vOff);
      nOut++;
      continue;
    }
    if (op === OP_OUTPUT_TUNNEL) {
      ports.emit(code[o + 1] | 0, b, off, len, p.headers[code[o + 2] | 0], flowHash, vnet, vOff);
      nOut++;
      continue;
    }
    // Only the L3/L4 rewrites need the header offsets; MAC and VLAN ops work at fixed offsets.
    if (dirty && op >= OP_SET_IPV4 && op <= OP_SET_ARP) {
      locate(b, off, len);
      if (vnet !== null) hdr.l4Partial = batch.csumPartial(slot);
      dirty = false;
    }
    switch (op) {
      case OP_SET_ETH:
        if (len < 14) break;
        if (code[o + 3] >= 0) wrMac(b, off, code[o + 3], code[o + 4]);
        if (code[o + 1] >= 0) wrMac(b, off + 6, code[o + 1], code[o + 2]);
        break;
      case OP_PUSH_VLAN: {
        if (len < 14) break;
        if (off - 4 < slot * batch.slotBytes) return DpDrop.NoHeadroom;
        b.copyWithin(off - 4, off, off + 12);
        const tci = code[o + 1] & 0xefff;
        b[off + 8] = 0x81; b[off + 9] = 0x00; b[off + 10] = tci >>> 8; b[off + 11] = tci & 0xff;
        batch.off[slot] = off - 4;
        batch.len[slot] = len + 4;
        if (vnet !== null) batch.shiftCsumStart(slot, 4);
        dirty = true;
        break;
      }
      case OP_POP_VLAN: {
        if (len < 18) break;
        const tpid = (b[off + 12] << 8) | b[off + 13];
        if (tpid !== 0x8100 && tpid !== 0x88a8) break;
        b.copyWithin(off + 4, off, off + 12);
        batch.off[slot] = off + 4;
        batch.len[slot] = len - 4;
        if (vnet !== null) batch.shiftCsumStart(slot, -4);
        dirty = true;
        break;
      }
      case OP_SET_IPV4: {
        if (hdr.l3 < 0 || hdr.ethType !== 0x0800) break;
        const ip = off + hdr.l3;
        const tos = code[o + 3];
        const ttl = code[o + 5];
        if (tos >= 0) {
          const old = (b[ip] << 8) | b[ip + 1];
          const m = code[o + 4];
          b[ip + 1] = ((b[ip + 1] & ~m) | (tos & m)) & 0xff;
          csumPatch16(b, ip + 10, old, (b[ip] << 8) | b[ip + 1]);
        }
        if (ttl >= 0) {
          const old = (b[ip + 8] << 8) | b[ip + 9];
          b[ip + 8] = ttl & 0xff;
          csumPatch16(b, ip + 10, old, (b[ip + 8] << 8) | b[ip + 9]);
        }
        if (code[o + 1] >= 0) setAddr(b, ip + 12, code[o + 1], off);
        if (code[o + 2] >= 0) setAddr(b, ip + 16, code[o + 2], off);
        break;
      }
      case OP_SET_L4: {
        if (hdr.l4 < 0 || hdr.proto !== code[o + 1]) break;
        const l4 = off + hdr.l4;
        if (hdr.proto === 1) { setIcmpTypeCode(b, l4, code[o + 2], code[o + 3]); break; }
        if (code[o + 2] >= 0) setPort(b, l4, code[o + 2], off);
        if (code[o + 3] >= 0) setPort(b, l4 + 2, code[o + 3], off);
        break;
      }
      case OP_SET_ARP: {
        if (hdr.l3 < 0 || hdr.ethType !== 0x0806) break;
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
      case OP_SLOW:
        return slow.run(p.actions, batch, slot, flowHash);
    }
  }
  return nOut > 0 ? DpDrop.None : DpDrop.Pipeline;
}
