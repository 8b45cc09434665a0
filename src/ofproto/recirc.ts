/**
 * Recirculation ids (OVS's ofproto-dpif-rid): what a recirculated packet resumes with.
 *
 * Who uses it: ofproto/xlate.ts allocates an id when it translates ct(table=T) (the datapath
 * emits ct(...),recirc(id)); ofproto/upcall.ts looks the id up when a packet with recirc_id != 0
 * misses the caches, and resumes the translation in that bridge and table.
 *
 * The frozen state is what the datapath key does not carry across the recirculation: the
 * bridge (a patch crossing happens inside translation), the OpenFlow in_port in that bridge,
 * the table to continue in, and metadata + registers (Neutron's security-group tables match
 * reg5/reg6 after ct(table=...)). Equal frozen states share one id, so a megaflow keyed on the
 * id stays valid for every packet that reaches it. Ids are never freed while flowd runs (their
 * number is bounded by the distinct frozen states the rules produce); one table per Ofproto.
 */
import { N_REGS, W_METADATA_HI } from '../packet/flowkey-layout';
import type { Ofproto, XlateBridge } from './ofproto';

export interface FrozenState {
  readonly id: number;
  readonly bridge: XlateBridge;
  readonly inPort: number;
  readonly tableId: number;
  /** metadata hi, lo, reg0..reg15 (key words W_METADATA_HI .. W_REG0 + 15). */
  readonly words: Uint32Array;
}

const N_FROZEN_WORDS = 2 + N_REGS;

export class RecircTable {
  private readonly byId = new Map<number, FrozenState>();
  private readonly byKey = new Map<string, FrozenState>();
  private nextId = 1;

  /** The id for resuming `flow` (KEY_WORDS at `base`) in `bridge`, table `tableId`. */
  idFor(bridge: XlateBridge, inPort: number, tableId: number, flow: Uint32Array, base = 0): number {
    const words = flow.slice(base + W_METADATA_HI, base + W_METADATA_HI + N_FROZEN_WORDS);
    const key = `${bridge.name}|${inPort}|${tableId}|${words.join(',')}`;
    const f = this.byKey.get(key);
    if (f !== undefined && f.bridge === bridge) return f.id;
    const id = this.nextId++;
    const st: FrozenState = { id, bridge, inPort, tableId, words };
    this.byId.set(id, st);
    this.byKey.set(key, st);
    return id;
  }

  get(id: number): FrozenState | undefined { return this.byId.get(id); }

  /** Writes the frozen metadata and registers into `flow` at `base`. */
  static thaw(st: FrozenState, flow: Uint32Array, base = 0): void {
    flow.set(st.words, base + W_METADATA_HI);
  }

  get size(): number { return this.byId.size; }
}

const tables = new WeakMap<Ofproto, RecircTable>();

/** The recirculation table of `ofproto` (made on first use). */
export function recircTableOf(ofproto: Ofproto): RecircTable {
  let t = tables.get(ofproto);
  if (t === undefined) { t = new RecircTable(); tables.set(ofproto, t); }
  return t;
}

