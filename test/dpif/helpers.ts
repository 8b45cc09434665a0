/**
 * Test doubles for dpif tests: an in-memory netdev, a linear-scan "xlate", an upcaller of
 * output / ct flows by IPv4 source (OutUpcaller), and one bridge over a datapath (bridgeWorld).
 */
import { PacketBatch } from '../../src/netdev/batch';
import { Netdev, NetdevStats } from '../../src/netdev/netdev';
import { KEY_WORDS, W_IN_PORT, W_NW_SRC, W_RECIRC_ID } from '../../src/packet/flowkey-layout';
import { ipv4SetChecksum, l4SetChecksum4 } from '../../src/packet/checksum';
import { DpAction } from '../../src/dpif/dp-actions';
import { StatsRule, UpcallResult, Upcaller } from '../../src/dpif/upcall';
import { Datapath } from '../../src/dpif/datapath';
import { Bridge } from '../../src/ofproto/bridge';
import { Ofproto } from '../../src/ofproto/ofproto';
import { BridgeView } from '../../src/ofproto/bridge-view';
import { OfprotoUpcaller } from '../../src/ofproto/upcall';

export class MemNetdev implements Netdev {
  readonly kind = 'internal';
  readonly sent: Uint8Array[] = [];
  nSendCalls = 0;
  /** `txFromInput`: like a native port, the datapath may send it the input batch itself (dpif/ports.ts). */
  constructor(readonly name: string, readonly txFromInput = false) {}
  recv(_batch: PacketBatch): number { return 0; }
  send(batch: PacketBatch, count: number): number {
    this.nSendCalls++;
    for (let i = 0; i < count; i++) this.sent.push(batch.frame(i).slice());
    return count;
  }
  stats(_out: NetdevStats): void { /* none */ }
  close(): void { /* none */ }
}

export class TestRule implements StatsRule {
  nPackets = 0;
  nBytes = 0;
  lastUsedMs = 0;
  constructor(readonly value: Uint32Array, readonly mask: Uint32Array, readonly priority: number,
              public actions: DpAction[]) {
    for (let w = 0; w < KEY_WORDS; w++) this.value[w] &= this.mask[w];
  }
  matches(keys: Uint32Array, base: number): boolean {
    for (let w = 0; w < KEY_WORDS; w++) if (((keys[base + w] & this.mask[w]) ^ this.value[w]) !== 0) return false;
    return true;
  }
}

/**
 * The flows of the run tests (ct-runs, extract-runs): from port 1, by IPv4 source (one
 * megaflow per source), output to `port` (with `tunnel`: set_tunnel VNI 5 and output to VXLAN
 * port 4), or with `ct` first `pre`, then ct(commit,zone=7) (with `snat`, nat(src=snat)) and
 * recirc(1), the recirculated flow then outputs; with `bySourceBeforeCt` false the flow before
 * the ct step is one megaflow for every source. The output flow's refresh, once `armed`, moves
 * the output to port 3 and says rules changed (as a learn does), once.
 */
export class OutUpcaller implements Upcaller {
  port = 2;
  armed = false;
  /** `pre`: the steps before the ct step (with `ct`). */
  constructor(readonly ct = false, readonly snat = 0, readonly tunnel = false, readonly pre: DpAction[] = [],
              readonly bySourceBeforeCt = true) {}
  readonly r0 = new TestRule(new Uint32Array(KEY_WORDS), new Uint32Array(KEY_WORDS), 1, []);
  readonly r1 = new TestRule(new Uint32Array(KEY_WORDS), new Uint32Array(KEY_WORDS), 1, []);

  private result(keys: Uint32Array, base: number, sideEffects: boolean): UpcallResult {
    const mask = new Uint32Array(KEY_WORDS);
    mask[W_IN_PORT] = 0xffffffff;
    mask[W_RECIRC_ID] = 0xffffffff;
    if (this.bySourceBeforeCt) mask[W_NW_SRC] = 0xffffffff;
    if (this.ct && keys[base + W_RECIRC_ID] === 0) {
      const nat = this.snat === 0 ? null : { kind: 'src' as const, ipMin: this.snat, ipMax: this.snat, portMin: 0, portMax: 0 };
      const ct: DpAction = { kind: 'ct', zone: 7, commit: true, recircId: 1, nat };
      return { actions: [...this.pre, ct], mask, rules: [this.r0], cacheable: true };
    }
    mask[W_NW_SRC] = 0xffffffff;
    const refresh = sideEffects ? (): boolean => {
      if (!this.armed) return false;
      this.armed = false;
      this.port = 3;
      return true;
    } : null;
    const out: DpAction[] = this.tunnel
      ? [{ kind: 'set_tunnel', tunIdHi: 0, tunIdLo: 5, src: 0, dst: 0 }, { kind: 'output', port: 4 }]
      : [{ kind: 'output', port: this.port }];
    return { actions: out, mask, rules: [this.r1], cacheable: true, refresh };
  }

  upcall(keys: Uint32Array, base: number): UpcallResult | null { return this.result(keys, base, true); }
  revalidate(keys: Uint32Array, base: number): UpcallResult | null { return this.result(keys, base, false); }
}

/** One table, highest priority wins (ties: first added); megaflow mask = OR of all masks. */
export class LinearXlate implements Upcaller {
  rules: TestRule[] = [];
  nUpcalls = 0;
  nRevalidates = 0;
  /** Side effect hook run on upcall (learn emulation). */
  onUpcall: ((keys: Uint32Array, base: number) => void) | null = null;
  cacheable = true;

  lookup(keys: Uint32Array, base: number): TestRule | null {
    let best: TestRule | null = null;
    for (const r of this.rules) if (r.matches(keys, base) && (best === null || r.priority > best.priority)) best = r;
    return best;
  }

  translate(keys: Uint32Array, base: number): UpcallResult {
    const mask = new Uint32Array(KEY_WORDS);
    for (const r of this.rules) for (let w = 0; w < KEY_WORDS; w++) mask[w] |= r.mask[w];
    const r = this.lookup(keys, base);
    return { actions: r === null ? [] : r.actions, mask, rules: r === null ? [] : [r], cacheable: this.cacheable };
  }

  upcall(keys: Uint32Array, base: number): UpcallResult | null {
    this.nUpcalls++;
    const res = this.translate(keys, base);
    if (this.onUpcall !== null) this.onUpcall(keys, base);
    return res;
  }

  revalidate(keys: Uint32Array, base: number): UpcallResult | null {
    this.nRevalidates++;
    return this.translate(keys, base);
  }
}

export function matchOf(fields: [number, number, number][]): { value: Uint32Array; mask: Uint32Array } {
  const value = new Uint32Array(KEY_WORDS);
  const mask = new Uint32Array(KEY_WORDS);
  for (const [w, v, m] of fields) { value[w] = v & m; mask[w] = m; }
  return { value, mask };
}

export function hexBytes(s: string): Uint8Array {
  const h = s.replace(/[^0-9a-f]/gi, '');
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.substr(i * 2, 2), 16);
  return out;
}

/** A 64-byte UDP frame 10.0.1.1:1000 -> 10.0.1.`dstLast`:2000 (valid IPv4 checksum), as the stats tests send. */
export function udpFrameTo(dstLast: number): Uint8Array {
  const f = hexBytes('020000000002 020000000001 0800' +
    `4500 0032 0000 4000 4011 0000 0a000101 0a0001${dstLast.toString(16).padStart(2, '0')}` +
    '03e8 07d0 001e 0000' + '00'.repeat(22));
  ipv4SetChecksum(f, 14);
  return f;
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** A bridge translated by ofproto over a Datapath, with one MemNetdev per port. */
export interface BridgeWorld { dp: Datapath; ofp: Ofproto; br: Bridge; nd: Map<string, MemNetdev>; dpNo: Map<string, number> }

/**
 * `br` (ports and flows added) over a Datapath with conntrack (1024 entries), every flow into
 * the EMC, and a clock that stays at 1000 ms (only the tables' own changes tell two batches
 * apart); nd and dpNo name each port's MemNetdev and datapath port number.
 */
export function bridgeWorld(br: Bridge): BridgeWorld {
  const ofp = new Ofproto();
  ofp.addBridge(new BridgeView(br));
  let dp: Datapath | null = null;
  const up = new OfprotoUpcaller(ofp, () => 1000, () => dp?.rulesChanged());
  dp = new Datapath({ upcaller: up, emcInsertInvProb: 1, nowMs: () => 1000, conntrack: { capacity: 1024 } });
  const nd = new Map<string, MemNetdev>(), dpNo = new Map<string, number>();
  for (const info of ofp.dpPorts()) {
    const m = new MemNetdev(info.port.name);
    dp.addPort(info.dpPort, m, null);
    nd.set(info.port.name, m);
    dpNo.set(info.port.name, info.dpPort);
  }
  br.onRulesChanged(() => dp?.rulesChanged());
  return { dp, ofp, br, nd, dpNo };
}

/** Sends `frames` in on `port` of `w` as one batch; returns the frames (hex) each port sent. */
export function sendBatch(w: BridgeWorld, port: string, frames: readonly Uint8Array[]): Record<string, string[]> {
  const b = new PacketBatch(32);
  for (const f of frames) { const i = b.append(f); b.inPort[i] = w.dpNo.get(port) as number; }
  w.dp.processBatch(b, b.count);
  const out: Record<string, string[]> = {};
  for (const [name, m] of w.nd) { out[name] = m.sent.map(toHex); m.sent.length = 0; }
  return out;
}

/**
 * Ethernet + IPv4 + TCP (proto 6, `flags`, `opt` bytes of NOP options) or UDP (proto 17) from
 * src:sp to dst:dp, IP id `id`, 4 bytes of payload, checksums filled.
 */
export function tcpUdpFrame(proto: number, src: number, dst: number, sp: number, dp: number, flags: number, id: number,
               opt = 0): Uint8Array {
  const l4len = proto === 6 ? 20 + opt : 8;
  const f = new Uint8Array(14 + 20 + l4len + 4);
  const v = new DataView(f.buffer);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45]);
  v.setUint16(16, 20 + l4len + 4); v.setUint16(18, id); f[22] = 64; f[23] = proto;
  v.setUint32(26, src); v.setUint32(30, dst);
  v.setUint16(34, sp); v.setUint16(36, dp);
  if (proto === 6) {
    f[46] = (l4len >> 2) << 4; f[47] = flags; f[48] = 0xfa; f[49] = 0xf0;
    f.fill(1, 54, 54 + opt); // NOP
  } else {
    v.setUint16(38, l4len + 4);
  }
  ipv4SetChecksum(f, 14);
  l4SetChecksum4(f, 14, 34, l4len + 4, proto);
  return f;
}
