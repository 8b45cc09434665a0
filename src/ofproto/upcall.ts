/**
 * Glue between ofproto's translation (ofproto/xlate.ts) and the datapath's Upcaller interface
 * (dpif/upcall.ts). It lives above both layers (dpif must not import ofproto); the daemon and
 * replay entry points should use it (or a copy of it in their own layer) the same way the bench
 * and the dpif tests do.
 *
 * What it does per upcall, as OVS's upcall handler does:
 * - maps the datapath in_port to (bridge, OpenFlow port) and translates with side effects
 *   (NORMAL MAC learning, learn actions, which fire the bridges' rules-changed listeners);
 * - asks xlate not to credit the rules it hits (creditRules: false): the datapath credits every
 *   packet of the megaflow, this one included, once per batch, so each packet is credited once;
 * - reports a MAC-table change (MacTable.generation moved) through `onChange`, which the owner
 *   points at Datapath.destinationsChanged(); takeChangedDestinations() then names the MACs,
 *   so only the megaflows to those destinations are re-translated;
 * - records the MAC learning NORMAL did (MacTable.journal) and returns it as `refresh`, which
 *   the datapath repeats for every cached hit in packet order, so a MAC that moves back is
 *   re-learned as the slow path would;
 * - returns the flows learn actions built (XlateResult.learned) in `refresh` too: a cached hit
 *   learns them again, as each packet's own translation would (the learned flow's timeouts
 *   restart; one that expired or was deleted comes back). Learn reads un-wildcard what it copies
 *   (learn.ts), so one megaflow always learns the same flows.
 * revalidate() is the same translation without side effects; its `refresh` holds the side
 * effects the translation would have had (NORMAL's learning noted in the journal, the flows
 * learn built), for the datapath to give a revalidated megaflow whose rules changed.
 */
import { DpPortInfo, Ofproto } from './ofproto';
import { Translator, XlateLearned, XlateResult } from './xlate';
import { MacTable } from './normal';
import { KEY_WORDS, W_IN_PORT, W_RECIRC_ID } from '../packet/flowkey-layout';
import { RecircTable, recircTableOf } from './recirc';
import type { PacketBatch } from '../netdev/batch';
import { UpcallResult, Upcaller } from '../dpif/upcall';

export class OfprotoUpcaller implements Upcaller {
  private readonly key = new Uint32Array(KEY_WORDS);
  /** One translator for every upcall and revalidation (its key-sized arrays are reused). */
  private readonly translator = new Translator();
  /** Per bridge (in ofproto.bridges order) during a translation: its MAC table and journal. */
  private readonly journalTables: MacTable[] = [];
  private readonly journals: number[][] = [];
  nLearnUpcalls = 0;

  constructor(readonly ofproto: Ofproto, readonly nowMs: () => number, readonly onChange: () => void) {}

  private translate(keys: Uint32Array, base: number, bytes: number, sideEffects: boolean, now: number): UpcallResult | null {
    const dpIn = keys[base + W_IN_PORT];
    const info: DpPortInfo | undefined = this.ofproto.dpPortInfo(dpIn);
    if (info === undefined) return null;
    // Translated from the datapath's key in place, with the OpenFlow in_port; a recirculated
    // packet (after ct(table=T)) resumes its frozen translation from a thawed copy.
    let key = keys, keyBase = base, inPort = info.port.ofport;
    let bridge = info.bridge;
    let tableId = 0;
    const rid = keys[base + W_RECIRC_ID];
    if (rid !== 0) {
      const st = recircTableOf(this.ofproto).get(rid);
      if (st === undefined) return null;
      const k = this.key;
      for (let w = 0; w < KEY_WORDS; w++) k[w] = keys[base + w];
      bridge = st.bridge;
      tableId = st.tableId;
      inPort = st.inPort;
      k[W_IN_PORT] = inPort;
      RecircTable.thaw(st, k, 0);
      key = k;
      keyBase = 0;
    }
    // Record NORMAL's MAC learning so cached hits can repeat it (OVS's xlate cache does too);
    // the MAC tables' generations tell whether it changed anything.
    // A revalidation (no side effects) journals what NORMAL would learn (MacTable.note): the
    // cached hits of the flow it keeps must repeat that, not what its first upcall learned.
    const tables = this.journalTables, logs = this.journals;
    let nTables = 0, gen = 0;
    for (const b of this.ofproto.bridges.values()) {
      let log = logs[nTables];
      if (log === undefined) { log = []; logs[nTables] = log; }
      if (log.length > 0) log.length = 0;
      b.macs.journal = log;
      tables[nTables++] = b.macs;
      gen += b.macs.generation;
    }
    let r: XlateResult;
    try {
      r = this.translator.translate({ ofproto: this.ofproto, bridge, key, keyBase, inPort, packetBytes: bytes,
        nowMs: now, sideEffects, tableId, creditRules: false });
    } finally {
      for (let q = 0; q < nTables; q++) tables[q].journal = null;
    }
    let learned: [MacTable, number[]][] | null = null;
    let g = 0;
    for (let q = 0; q < nTables; q++) {
      g += tables[q].generation;
      if (logs[q].length > 0) (learned ??= []).push([tables[q], logs[q].slice()]);
    }
    if (sideEffects) {
      if (g !== gen) this.onChange();
      if (r.nLearned > 0) this.nLearnUpcalls++;
    }
    // The megaflow lives on datapath keys: in_port there is the dp port (xlate always
    // un-wildcards in_port, so the mask covers it whole). r.wc is the translator's array: the
    // datapath copies the mask it installs.
    r.wc[W_IN_PORT] = 0xffffffff;
    r.wc[W_RECIRC_ID] = 0xffffffff;
    // Flows learn actions built: a cached hit learns them again (restarting their timeouts, or
    // installing them anew when they expired or were deleted, which revalidates), as each
    // packet's own translation would (OVS's xlate cache repeats learn the same way). A
    // revalidation's translation built them without adding them: its refresh is what the
    // flow's hits must do from then on (OVS's revalidator rebuilds a ukey's xlate cache so).
    const relearn = r.learned;
    const refresh = learned === null && relearn.length === 0 ? null : refresher(learned ?? [], relearn);
    return { actions: r.actions, mask: r.wc, rules: r.rulesHit, cacheable: true, refresh };
  }

  takeChangedDestinations(): number[] | null {
    let all = false;
    const out: number[] = [];
    for (const b of this.ofproto.bridges.values()) {
      const c = b.macs.takeChanges(); // every table forgets its changes, also once `all` is known
      if (c === null) all = true; else for (const m of c) out.push(m);
    }
    return all ? null : out;
  }

  upcall(keys: Uint32Array, base: number, batch: PacketBatch, slot: number, nowMs?: number): UpcallResult | null {
    return this.translate(keys, base, batch.len[slot], true, nowMs ?? this.nowMs());
  }

  revalidate(keys: Uint32Array, base: number): UpcallResult | null {
    return this.translate(keys, base, 0, false, this.nowMs());
  }
}

/**
 * The side effects a cached hit repeats: the MAC learning and the learned flows of its upcall.
 * Learning the same (vlan, mac, port) entries again at the same time `t` changes nothing when
 * no MAC table moved since the last call (their generations are unchanged: no entry learned,
 * moved, aged or flushed in between), so such a call returns at once: the datapath calls this
 * once per stretch of consecutive hits of the flow (Datapath.upcall), stretches of flows that
 * interleave in one batch share one clock reading. A list with learned flows (relearn) always
 * runs: their bridges' rules can change without a MAC table. Either way a second call at the
 * same reading with nothing in between changes nothing (learning the same MAC or flow at the
 * same time again is a no-op), which is what the datapath's once-per-stretch relies on.
 */
function refresher(learned: readonly [MacTable, number[]][], relearn: readonly XlateLearned[]): (t: number) => boolean {
  const gens = new Float64Array(learned.length).fill(-1);
  let lastT = -1;
  return (t: number): boolean => {
    let changed = false;
    if (t === lastT && relearn.length === 0) {
      let same = true;
      for (let q = 0; q < learned.length; q++) if (learned[q][0].generation !== gens[q]) { same = false; break; }
      if (same) return false;
    }
    for (let q = 0; q < learned.length; q++) {
      const m = learned[q][0], j = learned[q][1];
      for (let x = 0; x < j.length; x += 3) if (m.learn(j[x], j[x + 1], j[x + 2], t)) changed = true;
    }
    for (let q = 0; q < relearn.length; q++) if (relearn[q].bridge.addLearnedFlow(relearn[q].flow, t)) changed = true;
    for (let q = 0; q < learned.length; q++) gens[q] = learned[q][0].generation;
    lastT = t;
    return changed;
  };
}
