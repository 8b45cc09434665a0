/**
 * Glue between ofproto's translation (ofproto/xlate.ts) and the datapath's Upcaller interface
 * (dpif/upcall.ts). It lives above both layers (dpif must not import ofproto); the daemon and
 * replay entry points should use it (or a copy of it in their own layer) the same way the bench
 * and the dpif tests do.
 *
 * What it does per upcall, as OVS's upcall handler does:
 * - maps the datapath in_port to (bridge, OpenFlow port) and translates with side effects
 *   (NORMAL MAC learning, learn actions, which fire the bridges' rules-changed listeners);
 * - undoes xlate's own credit of the rules it hit, because the datapath credits every packet of
 *   the megaflow (this one included) once per batch;
 * - reports a MAC-table change (MacTable.generation moved) through `onChange`, which the owner
 *   points at Datapath.rulesChanged();
 * - records the MAC-learning calls NORMAL made (by wrapping MacTable.learn for the duration of
 *   the translation) and returns them as `refresh`, which the datapath repeats for every cached
 *   hit in packet order, so a MAC that moves back is re-learned as the slow path would;
 * - marks translations that ran a learn action as not cacheable: xlate re-learns per packet
 *   (refreshing the learned flow's timeouts and counters), which a cached megaflow would skip.
 * revalidate() is the same translation without side effects.
 */
import { DpPortInfo, Ofproto } from '../src/ofproto/ofproto';
import { xlate, XlateResult } from '../src/ofproto/xlate';
import { MacTable } from '../src/ofproto/normal';
import { KEY_WORDS, W_IN_PORT } from '../src/packet/flowkey-layout';
import type { PacketBatch } from '../src/netdev/batch';
import { UpcallResult, Upcaller } from '../src/dpif/upcall';

export class OfprotoUpcaller implements Upcaller {
  private readonly key = new Uint32Array(KEY_WORDS);
  nLearnUpcalls = 0;
  /** Time spent in xlate itself (for the bench's breakdown), milliseconds. */
  xlateMs = 0;

  constructor(readonly ofproto: Ofproto, readonly nowMs: () => number, readonly onChange: () => void) {}

  private recording: [MacTable, number, number, number][] | null = null;
  private readonly hooked = new WeakSet<MacTable>();

  /** Wraps `macs.learn` once so that calls made while recording are remembered. */
  private hook(macs: MacTable): void {
    if (this.hooked.has(macs)) return;
    this.hooked.add(macs);
    const self = this;
    macs.learn = function learn(vlan: number, mac: number, ofport: number, t: number): boolean {
      if (self.recording !== null) self.recording.push([macs, vlan, mac, ofport]);
      return MacTable.prototype.learn.call(macs, vlan, mac, ofport, t);
    };
  }

  private macGenerations(): number {
    let g = 0;
    for (const b of this.ofproto.bridges.values()) g += b.macs.generation;
    return g;
  }

  private translate(keys: Uint32Array, base: number, bytes: number, sideEffects: boolean): UpcallResult | null {
    const dpIn = keys[base + W_IN_PORT];
    const info: DpPortInfo | undefined = this.ofproto.dpPortInfo(dpIn);
    if (info === undefined) return null;
    const k = this.key;
    for (let w = 0; w < KEY_WORDS; w++) k[w] = keys[base + w];
    k[W_IN_PORT] = info.port.ofport;
    const gen = sideEffects ? this.macGenerations() : 0;
    const now = this.nowMs();
    // Record NORMAL's MAC learning so cached hits can repeat it (OVS's XC_NORMAL).
    const learned: [MacTable, number, number, number][] = [];
    if (sideEffects) for (const b of this.ofproto.bridges.values()) this.hook(b.macs);
    let r: XlateResult;
    const t0 = performance.now();
    this.recording = sideEffects ? learned : null;
    try {
      r = xlate({ ofproto: this.ofproto, bridge: info.bridge, key: k, keyBase: 0, packetBytes: bytes,
        nowMs: now, sideEffects });
    } finally {
      this.recording = null;
      this.xlateMs += performance.now() - t0;
    }
    if (sideEffects) {
      for (const rule of r.rulesHit) { rule.nPackets--; rule.nBytes -= bytes; }
      if (this.macGenerations() !== gen) this.onChange();
      if (r.nLearned > 0) this.nLearnUpcalls++;
    }
    // The megaflow lives on datapath keys: in_port there is the dp port (xlate always
    // un-wildcards in_port, so the mask covers it whole).
    r.wc[W_IN_PORT] = 0xffffffff;
    // Decided from the rules, not r.nLearned, so revalidation (no side effects) agrees.
    let learns = false;
    for (const rule of r.rulesHit) for (const a of rule.actions) if (a.kind === 'learn') learns = true;
    const refresh = learned.length === 0 ? null : (t: number): boolean => {
      let changed = false;
      for (let q = 0; q < learned.length; q++) {
        const e = learned[q];
        if (e[0].learn(e[1], e[2], e[3], t)) changed = true;
      }
      return changed;
    };
    return { actions: r.actions, mask: r.wc, rules: r.rulesHit, cacheable: !learns, refresh };
  }

  upcall(keys: Uint32Array, base: number, batch: PacketBatch, slot: number): UpcallResult | null {
    return this.translate(keys, base, batch.len[slot], true);
  }

  revalidate(keys: Uint32Array, base: number): UpcallResult | null {
    return this.translate(keys, base, 0, false);
  }
}
