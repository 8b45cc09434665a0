/**
 * Text dumps of the datapath caches and counters, in the shapes OVS users know:
 * formatCache -> `ovs-appctl dpctl/dump-flows` (one megaflow per line, wildcarded fields omitted,
 * partial masks as value/mask), then the exact-match entries; formatPerf ->
 * `ovs-appctl dpif-netdev/pmd-perf-show`.
 *
 * Called by: control/commands.ts (`flowctl dump-cache` / `stats`), cli/replay.ts (`flowd replay
 * --stats`), bench/inmem.ts and tests, through dumpCache/perfStats. This module imports the
 * datapath, never the reverse. Control path only: allocates freely.
 */
import {
  KEY_WORDS, W_DL_DST_HI, W_DL_DST_LO, W_DL_SRC_HI, W_DL_SRC_LO, W_IN_PORT, W_NW_DST, W_NW_MISC,
  W_NW_SRC, W_RECIRC_ID, W_TP, W_TUN_DST, W_TUN_ID_HI, W_TUN_ID_LO, W_TUN_SRC, W_VLAN_DLTYPE,
  W_ARP_SHA_HI, W_ARP_SHA_LO, W_ARP_THA_HI, W_ARP_THA_LO, W_TCP_FLAGS, W_CT_STATE, W_CT_ZONE,
  W_CT_MARK, PACKET_WORDS, W_METADATA_HI, W_METADATA_LO, W_REG0, N_REGS,
} from '../packet/flowkey-layout';
import { EMC_KEY_WORDS } from './emc';
import { formatIpv4, formatMacHiLo } from '../packet/addr-text';
import type { Datapath } from './datapath';
import type { FlowPayload } from './batch-state';

function hex(v: number): string { return '0x' + (v >>> 0).toString(16); }

const mac = formatMacHiLo;
const ip = formatIpv4;

/** value or value/mask, with `fmt` for each; undefined when the field is wildcarded. */
function field(v: number, m: number, full: number, fmt: (x: number) => string): string | undefined {
  if (m === 0) return undefined;
  return m === full ? fmt(v) : `${fmt(v)}/${fmt(m)}`;
}

function macField(vh: number, vl: number, mh: number, ml: number): string | undefined {
  if (mh === 0 && ml === 0) return undefined;
  return (mh & 0xffff) === 0xffff && ml >>> 0 === 0xffffffff ? mac(vh, vl) : `${mac(vh, vl)}/${mac(mh, ml)}`;
}

function group(name: string, parts: [string, string | undefined][]): string | undefined {
  const p = parts.filter((x) => x[1] !== undefined).map((x) => `${x[0]}=${x[1]}`);
  return p.length === 0 ? undefined : `${name}(${p.join(',')})`;
}

/**
 * The key `v` under mask `m` (both KEY_WORDS at offsets `vo`, `mo`) in dpctl's flow syntax.
 * With `m` all ones for packet words this prints an exact key.
 */
export function formatMaskedKey(v: Uint32Array, vo: number, m: Uint32Array, mo: number): string {
  const V = (w: number) => v[vo + w] >>> 0;
  const M = (w: number) => m[mo + w] >>> 0;
  const out: string[] = [];
  out.push(`recirc_id(${hex(V(W_RECIRC_ID))})`.replace('(0x0)', '(0)'));
  const tun = group('tunnel', [
    ['tun_id', (M(W_TUN_ID_HI) | M(W_TUN_ID_LO)) === 0 ? undefined
      : hex(V(W_TUN_ID_LO)) + (V(W_TUN_ID_HI) ? ` (hi ${hex(V(W_TUN_ID_HI))})` : '')],
    ['src', field(V(W_TUN_SRC), M(W_TUN_SRC), 0xffffffff, ip)],
    ['dst', field(V(W_TUN_DST), M(W_TUN_DST), 0xffffffff, ip)],
  ]);
  // As OVS, a packet that did not come out of a tunnel shows no tunnel() at all.
  if (tun && (V(W_TUN_ID_HI) | V(W_TUN_ID_LO) | V(W_TUN_SRC) | V(W_TUN_DST)) !== 0) out.push(tun);
  if (M(W_IN_PORT)) out.push(`in_port(${V(W_IN_PORT)})`);
  const ct: [string, string | undefined][] = [
    ['ct_state', field(V(W_CT_STATE), M(W_CT_STATE), 0xffffffff, hex)],
    ['ct_zone', field(V(W_CT_ZONE), M(W_CT_ZONE), 0xffffffff, hex)],
    ['ct_mark', field(V(W_CT_MARK), M(W_CT_MARK), 0xffffffff, hex)],
  ];
  for (const [n, s] of ct) if (s) out.push(`${n}(${s})`);
  const md = (M(W_METADATA_HI) | M(W_METADATA_LO)) !== 0;
  if (md) out.push(`metadata(${hex(V(W_METADATA_HI))}${(V(W_METADATA_LO) >>> 0).toString(16).padStart(8, '0')})`);
  for (let r = 0; r < N_REGS; r++) if (M(W_REG0 + r)) out.push(`reg${r}(${field(V(W_REG0 + r), M(W_REG0 + r), 0xffffffff, hex)})`);
  const eth = group('eth', [
    ['src', macField(V(W_DL_SRC_HI), V(W_DL_SRC_LO), M(W_DL_SRC_HI), M(W_DL_SRC_LO))],
    ['dst', macField(V(W_DL_DST_HI), V(W_DL_DST_LO), M(W_DL_DST_HI), M(W_DL_DST_LO))],
  ]);
  if (eth) out.push(eth);
  const tci = V(W_VLAN_DLTYPE) >>> 16, tciM = M(W_VLAN_DLTYPE) >>> 16;
  const et = V(W_VLAN_DLTYPE) & 0xffff, etM = M(W_VLAN_DLTYPE) & 0xffff;
  if (tciM !== 0) {
    // An untagged match (CFI 0) prints nothing, as in OVS; a tagged one prints the tag.
    if ((tci & 0x1000) !== 0) out.push(`vlan(vid=${tci & 0xfff}${(tciM & 0xfff) !== 0xfff ? `/${hex(tciM & 0xfff)}` : ''},pcp=${tci >>> 13})`);
  }
  if (etM !== 0) out.push(`eth_type(${field(et, etM, 0xffff, (x) => '0x' + x.toString(16).padStart(4, '0'))})`);
  const misc = V(W_NW_MISC), miscM = M(W_NW_MISC);
  const proto = misc >>> 24, protoM = miscM >>> 24;
  if (et === 0x0800 && etM === 0xffff) {
    const fragM = miscM & 0xff;
    const ipv4 = group('ipv4', [
      ['src', field(V(W_NW_SRC), M(W_NW_SRC), 0xffffffff, ip)],
      ['dst', field(V(W_NW_DST), M(W_NW_DST), 0xffffffff, ip)],
      ['proto', field(proto, protoM, 0xff, String)],
      ['tos', field((misc >>> 16) & 0xff, (miscM >>> 16) & 0xff, 0xff, hex)],
      ['ttl', field((misc >>> 8) & 0xff, (miscM >>> 8) & 0xff, 0xff, String)],
      ['frag', fragM === 0 ? undefined : (misc & 1) === 0 ? 'no' : (misc & 2) ? 'later' : 'first'],
    ]);
    if (ipv4) out.push(ipv4);
    if (protoM === 0xff && (proto === 6 || proto === 17 || proto === 1)) {
      const name = proto === 6 ? 'tcp' : proto === 17 ? 'udp' : 'icmp';
      const [a, b] = proto === 1 ? ['type', 'code'] : ['src', 'dst'];
      const l4 = group(name, [
        [a, field(V(W_TP) >>> 16, M(W_TP) >>> 16, 0xffff, String)],
        [b, field(V(W_TP) & 0xffff, M(W_TP) & 0xffff, 0xffff, String)],
      ]);
      if (l4) out.push(l4);
      if (proto === 6 && M(W_TCP_FLAGS)) out.push(`tcp_flags(${field(V(W_TCP_FLAGS), M(W_TCP_FLAGS), 0xfff, hex)})`);
    }
  } else if (et === 0x0806 && etM === 0xffff) {
    const arp = group('arp', [
      ['sip', field(V(W_NW_SRC), M(W_NW_SRC), 0xffffffff, ip)],
      ['tip', field(V(W_NW_DST), M(W_NW_DST), 0xffffffff, ip)],
      ['op', field(proto, protoM, 0xff, String)],
      ['sha', macField(V(W_ARP_SHA_HI), V(W_ARP_SHA_LO), M(W_ARP_SHA_HI), M(W_ARP_SHA_LO))],
      ['tha', macField(V(W_ARP_THA_HI), V(W_ARP_THA_LO), M(W_ARP_THA_HI), M(W_ARP_THA_LO))],
    ]);
    if (arp) out.push(arp);
  }
  return out.join(',');
}

function used(nowMs: number, usedMs: number, nPackets: number): string {
  if (nPackets === 0) return 'never';
  return `${Math.max(0, (nowMs - usedMs) / 1000).toFixed(3)}s`;
}

/** dpctl/dump-flows lines for every megaflow, then the exact entries. */
export function formatCache(dp: Datapath, nowMs: number): string {
  const mf = dp.megaflows;
  const lines: string[] = [];
  const ids = mf.liveIds();
  lines.push(`megaflows: ${ids.length}`);
  for (const id of ids) {
    const st = mf.subtables[mf.subtableOf[id]];
    const pl = mf.payload[id] as FlowPayload;
    lines.push(`${formatMaskedKey(mf.value, id * KEY_WORDS, st.mask, 0)}, packets:${mf.nPackets[id]}, ` +
      `bytes:${mf.nBytes[id]}, used:${used(nowMs, mf.usedMs[id], mf.nPackets[id])}, actions:${pl.program.text}`);
  }
  // Exact entries show every packet word, and the ct words of recirculated frames (an entry
  // from a port has them zero, which is no match on them).
  const packet = new Uint32Array(KEY_WORDS);
  packet.fill(0xffffffff, 0, PACKET_WORDS);
  const recirc = Uint32Array.from(packet);
  recirc.fill(0xffffffff, PACKET_WORDS, EMC_KEY_WORDS);
  const exact: string[] = [];
  const emc = dp.emc;
  emc.forEachLive(mf.serial, (slot, flowId) => {
    const k = new Uint32Array(KEY_WORDS);
    emc.entryKey(slot, k);
    exact.push(`${formatMaskedKey(k, 0, k[W_RECIRC_ID] === 0 ? packet : recirc, 0)}, megaflow:${flowId}, ` +
      `actions:${(mf.payload[flowId] as FlowPayload).program.text}`);
  });
  lines.push(`exact entries: ${exact.length} (of ${emc.nSlots} slots)`);
  return lines.concat(exact).join('\n') + '\n';
}

/** pmd-perf-show-style counters. */
export function formatPerf(dp: Datapath): string {
  const n = dp.nPackets;
  const pct = (x: number) => (n === 0 ? 0 : (100 * x) / n).toFixed(1).padStart(5);
  const num = (x: number) => String(x).padStart(12);
  const nsPerPkt = n === 0 ? 0 : (dp.busyMs * 1e6) / n;
  const perBatch = dp.nBatches === 0 ? 0 : n / dp.nBatches;
  let tx = 0;
  for (const p of dp.ports.list) tx += p.txPackets;
  const drops = dp.drops();
  const mf = dp.megaflows;
  const lines = [
    'pmd thread (flowd datapath):',
    '',
    `  Iterations:       ${num(dp.nBatches)}  (${(dp.nBatches === 0 ? 0 : (dp.busyMs * 1000) / dp.nBatches).toFixed(2)} us/it)`,
    `  Rx packets:       ${num(n)}  (${nsPerPkt.toFixed(1)} ns/pkt)`,
    `  Datapath passes:  ${num(n)}  (1.00 passes/pkt)`,
    `  - EMC hits:       ${num(dp.nEmcHits)}  (${pct(dp.nEmcHits)} %)`,
    `  - EMC bypassed:   ${num(dp.emc.nBypassed)}  (${pct(dp.emc.nBypassed)} %, ${dp.emc.nBypasses} runs; last probe ${dp.emc.lastOnNs.toFixed(1)} ns/pkt with at ${dp.emc.lastHitPct.toFixed(0)} % hits, ${dp.emc.lastOffNs.toFixed(1)} without)`,
    `  - Megaflow hits:  ${num(dp.nMegaflowHits)}  (${pct(dp.nMegaflowHits)} %, ${dp.megaflows.ranked.length} subtables)`,
    `    avg. subtable lookups per megaflow lookup: ${(mf.nBatchLookups === 0 ? 0 : mf.nSubtableSearches / mf.nBatchLookups).toFixed(2)}`,
    `  - Upcalls:        ${num(dp.nUpcalls)}  (${pct(dp.nUpcalls)} %)`,
    `  - Lost upcalls:   ${num(dp.nLostUpcalls)}  (${pct(dp.nLostUpcalls)} %)`,
    `  - Queued misses:  ${num(dp.nQueuedMisses)}  (${pct(dp.nQueuedMisses)} %, ${dp.queuedMisses} waiting)`,
    `  Tx packets:       ${num(tx)}`,
    `  Rx batches:       ${num(dp.nBatches)}  (${perBatch.toFixed(2)} pkts/batch)`,
    `  Avg ns/packet:    ${num(Number(nsPerPkt.toFixed(1)))}`,
    `  Megaflows:        ${num(dp.megaflows.nFlows)}  (limit ${dp.megaflows.maxFlows})`,
    `  Exact entries:    ${num(dp.emc.countLive(dp.megaflows.serial))}  (of ${dp.emc.nSlots} slots, insert 1/${dp.emc.insertInvProb})`,
    `  Revalidations:    ${num(dp.nRevalidations)}  (${dp.nRevalidatedOut} megaflows removed, ${dp.nExpired} expired idle)`,
    `  Drops:            ${Object.keys(drops).length === 0 ? 'none' : Object.entries(drops).map(([k, v]) => `${k}=${v}`).join(' ')}`,
  ];
  return lines.join('\n') + '\n';
}

/** Megaflows (dpctl/dump-flows shape), then the exact entries, at the datapath's clock. */
export function dumpCache(dp: Datapath): string {
  return formatCache(dp, dp.nowMs());
}

/** Counters in the shape of dpif-netdev/pmd-perf-show. */
export function perfStats(dp: Datapath): string {
  return formatPerf(dp);
}
