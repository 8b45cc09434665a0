/**
 * The NORMAL action: a VLAN-aware MAC-learning switch, as OVS's xlate_normal with the
 * behaviour of its bundles' `tag` (access) and trunk modes.
 *
 * Who calls: ofproto/xlate.ts when a rule outputs to NORMAL. Learning is a side effect of the
 * slow path: decideNormal() learns only when asked to (a trace does not learn, as OVS's
 * ofproto/trace does not).
 *
 * VLAN rules (OVS): a frame entering an access port (tag T) must be untagged and belongs to
 * VLAN T (a tagged frame there is dropped); a frame entering a trunk belongs to the VID of its
 * tag, or VLAN 0 when untagged. It leaves access ports of its VLAN untagged and trunks tagged
 * with its VLAN (untagged for VLAN 0), keeping the PCP it came with. Flooding stays within the
 * VLAN and never goes back out of the input port; a destination learned on the input port is
 * dropped.
 *
 * Aging: an entry not refreshed for `agingMs` (300 s by default, OVS's mac-aging-time) is
 * ignored by lookups and removed by expire(). `generation` changes whenever a decision could
 * change (new, moved or expired entry), so dpif can revalidate cached megaflows.
 */
import { VLAN_CFI } from '../packet/flowkey-layout';

/**
 * Destination MACs a bridge never forwards by NORMAL unless forward_bpdu is set, as OVS's
 * eth_addr_is_reserved lists them: IEEE 802.1D/802.1Q reserved (STP, pause, LACP, 802.1X,
 * LLDP: 01:80:c2:00:00:00-0f), Extreme EDP/EAPS, Cisco ISL, CDP/VTP/DTP/PAgP/UDLD, PVST+,
 * Uplink Fast and CFM.
 */
const RESERVED_MACS: ReadonlySet<number> = new Set([
  0x00e02b000000, 0x00e02b000004, 0x00e02b000006,
  0x01000c000000, 0x01000ccccccc, 0x01000ccccccd, 0x01000ccdcdcd,
  0x01000cccccc0, 0x01000cccccc1, 0x01000cccccc2, 0x01000cccccc3,
  0x01000cccccc4, 0x01000cccccc5, 0x01000cccccc6, 0x01000cccccc7,
]);

/** True for a reserved multicast destination (`mac` as a 48-bit number). */
export function isReservedMulticast(mac: number): boolean {
  return (mac >= 0x0180c2000000 && mac <= 0x0180c200000f) || RESERVED_MACS.has(mac);
}

export const DEFAULT_MAC_AGING_MS = 300_000;
/** Changed MACs remembered between revalidations; past this, everything is revalidated. */
export const MAX_CHANGED_MACS = 1024;
export const DEFAULT_MAC_MAX_ENTRIES = 8192;

export interface MacEntry {
  readonly vlan: number;
  readonly mac: number;
  ofport: number;
  lastSeenMs: number;
}

export class MacTable {
  /** vlan -> mac -> entry. Slow path only. */
  private readonly byVlan = new Map<number, Map<number, MacEntry>>();
  private nEntries = 0;
  generation = 0;

  constructor(readonly agingMs = DEFAULT_MAC_AGING_MS, readonly maxEntries = DEFAULT_MAC_MAX_ENTRIES) {}

  get size(): number {
    return this.nEntries;
  }

  /** The port `mac` was last seen on in `vlan`, or -1 when unknown or aged out. */
  lookup(vlan: number, mac: number, nowMs: number): number {
    const e = this.byVlan.get(vlan)?.get(mac);
    if (e === undefined || nowMs - e.lastSeenMs > this.agingMs) return -1;
    return e.ofport;
  }

  /**
   * MACs whose answer changed (learned, moved, aged out) since takeChanges(), so the datapath
   * re-translates only the cached flows to those destinations; `changedAll` when an answer
   * changed for every MAC (a port flushed) or more changed than MAX_CHANGED_MACS.
   */
  private changed: number[] = [];
  private changedAll = false;

  /** The MACs changed since the last call (null: assume every MAC), and forgets them. */
  takeChanges(): number[] | null {
    const out = this.changedAll ? null : this.changed;
    this.changed = [];
    this.changedAll = false;
    return out;
  }

  private noteChanged(mac: number): void {
    if (this.changedAll) return;
    if (this.changed.length >= MAX_CHANGED_MACS) { this.changedAll = true; this.changed = []; return; }
    this.changed.push(mac);
  }

  /**
   * When not null, every learn() call appends (vlan, mac, ofport) here: the upcall handler
   * records what NORMAL learned for a flow so the fast path can repeat it for cached hits.
   */
  journal: number[] | null = null;

  /**
   * What learn() would record, in the journal alone (the table unchanged): a translation
   * without side effects (a revalidation) still tells what its cached hits must learn.
   */
  note(vlan: number, mac: number, ofport: number): void {
    if (this.journal !== null) this.journal.push(vlan, mac, ofport);
  }

  /** Records `mac` on `ofport` in `vlan`; returns true when the table's answer changed. */
  learn(vlan: number, mac: number, ofport: number, nowMs: number): boolean {
    this.note(vlan, mac, ofport);
    let m = this.byVlan.get(vlan);
    if (m === undefined) { m = new Map(); this.byVlan.set(vlan, m); }
    const e = m.get(mac);
    if (e !== undefined) {
      const wasLive = nowMs - e.lastSeenMs <= this.agingMs;
      e.lastSeenMs = nowMs;
      if (e.ofport === ofport && wasLive) return false;
      e.ofport = ofport;
      this.generation++;
      this.noteChanged(mac);
      return true;
    }
    if (this.nEntries >= this.maxEntries) this.expire(nowMs);
    if (this.nEntries >= this.maxEntries) return false; // full of live entries: do not learn
    m.set(mac, { vlan, mac, ofport, lastSeenMs: nowMs });
    this.nEntries++;
    this.generation++;
    this.noteChanged(mac);
    return true;
  }

  /** Removes entries older than the aging time; returns how many. */
  expire(nowMs: number): number {
    let n = 0;
    for (const [vlan, m] of this.byVlan) {
      for (const [mac, e] of m) if (nowMs - e.lastSeenMs > this.agingMs) { m.delete(mac); this.noteChanged(mac); n++; }
      if (m.size === 0) this.byVlan.delete(vlan);
    }
    if (n > 0) { this.nEntries -= n; this.generation++; }
    return n;
  }

  /** Forgets every entry on `ofport` (port removed). */
  flushPort(ofport: number): void {
    for (const m of this.byVlan.values()) {
      for (const [mac, e] of m) if (e.ofport === ofport) { m.delete(mac); this.nEntries--; }
    }
    this.generation++;
    this.changedAll = true;
  }

  entries(): MacEntry[] {
    const out: MacEntry[] = [];
    for (const m of this.byVlan.values()) for (const e of m.values()) out.push(e);
    return out;
  }
}

/** What NORMAL needs to know about a bridge port. */
export interface NormalPort {
  readonly ofport: number;
  /** Access VLAN (1..4095), or -1 for a trunk. */
  readonly tag: number;
}

export interface NormalOutput {
  readonly ofport: number;
  /** vlan_tci the frame leaves with (0 = untagged). */
  readonly tci: number;
}

export interface NormalDecision {
  readonly outputs: NormalOutput[];
  /** Trace detail, in OVS's words. */
  readonly detail: string;
}

function isMulticast(mac: number): boolean {
  return Math.floor(mac / 0x10000000000) % 2 === 1; // I/G bit of the first octet
}

/**
 * Decides NORMAL's outputs for a frame with `dlSrc`, `dlDst`, `tci` entering `inPort` of a
 * bridge with `ports` (any order; outputs come in ofport order). Learns the source when `learn`;
 * otherwise notes it in the table's journal only (MacTable.note).
 */
export function decideNormal(macs: MacTable, ports: readonly NormalPort[], inPort: NormalPort | undefined,
                             dlSrc: number, dlDst: number, tci: number, nowMs: number,
                             learn: boolean): NormalDecision {
  if (inPort === undefined) return { outputs: [], detail: 'no input bundle, dropping' };
  const tagged = (tci & VLAN_CFI) !== 0;
  let vlan: number;
  if (inPort.tag >= 0) {
    if (tagged) return { outputs: [], detail: `dropping VLAN ${tci & 0xfff} tagged packet received on port ${inPort.ofport} configured as VLAN ${inPort.tag} access port` };
    vlan = inPort.tag;
  } else {
    vlan = tagged ? tci & 0xfff : 0;
  }
  const pcpBits = tagged ? tci & 0xe000 : 0;
  if (!isMulticast(dlSrc)) {
    if (learn) macs.learn(vlan, dlSrc, inPort.ofport, nowMs);
    else macs.note(vlan, dlSrc, inPort.ofport);
  }

  const leaveTci = (p: NormalPort): number => (p.tag >= 0 || vlan === 0 ? 0 : (pcpBits | VLAN_CFI | vlan));
  if (!isMulticast(dlDst)) {
    const out = macs.lookup(vlan, dlDst, nowMs);
    if (out >= 0) {
      if (out === inPort.ofport) return { outputs: [], detail: 'learned port is input port, dropping' };
      const p = ports.find((x) => x.ofport === out);
      if (p !== undefined && (p.tag < 0 || p.tag === vlan)) {
        return { outputs: [{ ofport: out, tci: leaveTci(p) }], detail: `forwarding to learned port` };
      }
    }
  }
  const sorted = ports.slice().sort((a, b) => a.ofport - b.ofport);
  const outputs: NormalOutput[] = [];
  for (const p of sorted) {
    if (p.ofport === inPort.ofport) continue;
    if (p.tag >= 0 && p.tag !== vlan) continue;
    outputs.push({ ofport: p.ofport, tci: leaveTci(p) });
  }
  return { outputs, detail: isMulticast(dlDst) ? 'multicast/broadcast, flooding' : 'no learned MAC for destination, flooding' };
}
