/**
 * The datapath's per-batch stages, each of the form `stage(state, count, ...) -> count` over one
 * BatchState (dpif/batch-state.ts): the live slots come in as state.live[0, count) and the
 * stage returns how many stay; misses go the same way through state.miss.
 *
 * Called by: dpif/datapath.ts, whose driver runs them in order for every pass (input batch,
 * queued misses, recirculation, finished offload pieces); the upcall stage lives there too,
 * because it needs the upcaller and revalidation. keepInPlace and keepRunInPlace are not
 * stages: the datapath's ct step calls them from execute for each frame it recirculates in place.
 *
 * None allocates: they write preallocated columns and count drops per reason in the arrays
 * the caller passes.
 */
import { PacketBatch } from '../netdev/batch';
import { W } from '../packet/flowkey-layout';
import { extractCommon, extractCommonRuns, extractKeyOver, keyTailUsed, Off } from '../packet/flowkey';
import { isDrop } from '../packet/stop';
import { BatchState, FlowPayload, FrameQueue, Rc } from './batch-state';
import { RECIRCULATED, runProgram, RunCtx, runStraight, SENT_AND_RECIRCULATED } from './compile';
import { Conntrack, CS_DST_NAT, CS_SRC_NAT, CT_DROP } from './conntrack';
import { ctL3FromKey } from './ct-parse';
import { DpCt, DpDrop } from './dp-actions';
import { Emc, emcKeyEq } from './emc';
import { ingressHash } from './flow-hash';
import { MegaflowCache } from './megaflow';
import { DpPort, PortTable } from './ports';
import { RXD_ACTION0, RXD_CT } from './rx-drops';

/**
 * Puts slots [0, n) of `batch` in the live list at depth 0 (the start of every pass; extract, next, marks
 * which keys are equal), and notes what all of them share, read once here instead of per frame by later stages:
 * state.rxPort, the port every one came in on if one port and it exists (execute credits its
 * rxForwarded per run), and state.plainPort, that port's number when none has tunnel metadata
 * either (extract writes the ingress words without reading the columns), else -1. `fromPorts`
 * (the input pass of processBatch): the frames just came in, and the ports' rx counters are
 * credited here, from this loop when they all came in on one port (countRx's loop otherwise:
 * a second loop over the same columns; with the changes of the same commit, callgrind counted
 * (a) 31116 -> 29292 instructions per 32-frame batch). Returns n.
 */
export function selectAll(st: BatchState, batch: PacketBatch, n: number, ports: PortTable, fromPorts = false): number {
  const live = st.live, depth = st.depth, inPort = batch.inPort, len = batch.len;
  const tunIdHi = batch.tunIdHi, tunIdLo = batch.tunIdLo, tunSrc = batch.tunSrc, tunDst = batch.tunDst;
  const in0 = n > 0 ? inPort[0] : 0;
  let mixed = 0, tunnel = 0, nBytes = 0;
  for (let i = 0; i < n; i++) {
    live[i] = i;
    depth[i] = 0; // a queued frame's is read from its queue later (extract)
    mixed |= inPort[i] ^ in0;
    tunnel |= tunIdHi[i] | tunIdLo[i] | tunSrc[i] | tunDst[i];
    nBytes += len[i];
  }
  const pi = mixed === 0 && n > 0 ? ports.portIndex[in0 & 0xffff] : -1;
  const rxPort = pi >= 0 ? ports.list[pi] : null;
  st.rxPort = rxPort;
  st.plainPort = mixed === 0 && tunnel === 0 && n > 0 ? in0 : -1;
  st.depthMax = 0;
  st.nRefresh = 0;
  st.nTouched = 0;
  st.nRuns = 0;
  if (fromPorts) {
    if (mixed !== 0) countRx(ports, batch, n);
    else if (rxPort !== null) { rxPort.rxPackets += n; rxPort.rxBytes += nBytes; }
  }
  return n;
}

/** Port rx counters for frames [0, n) of `batch`, once per run of frames from one port. */
export function countRx(ports: PortTable, batch: PacketBatch, n: number): void {
  let lastIn = -1, p: DpPort | null = null, nPk = 0, nBy = 0; // runs of frames from one port
  for (let i = 0; i < n; i++) {
    const inPort = batch.inPort[i];
    if (inPort !== lastIn) {
      if (p !== null) { p.rxPackets += nPk; p.rxBytes += nBy; }
      lastIn = inPort; nPk = 0; nBy = 0;
      const pi = ports.portIndex[inPort & 0xffff];
      p = pi >= 0 ? ports.list[pi] : null;
    }
    nPk++;
    nBy += batch.len[i];
  }
  if (p !== null) { p.rxPackets += nPk; p.rxBytes += nBy; }
}

/** Counts the end of frame `i` as a drop for `reason` (rx-drops.ts) on the port it came in on. */
export function countRxDrop(ports: PortTable, batch: PacketBatch, i: number, reason: number): void {
  const pi = ports.portIndex[batch.inPort[i] & 0xffff];
  if (pi >= 0) ports.list[pi].rxDrops[reason]++;
}

/** The cache hash of a recirculated frame: the packet hash mixed with recirc id and depth. */
export function recircHash(h: number, recircId: number, depth: number): number {
  let x = h ^ Math.imul(recircId, 0x9e3779b1) ^ Math.imul(depth, 0x85ebca6b);
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  return x; // int32, like ingressHash
}

/** What the conntrack stage counts. */
export interface CtCounters {
  nCtDrops: number;
  nRecirculated: number;
}

/**
 * The live list of a pass that runs the frames the previous pass over the same batch
 * recirculated in place (state.recirc, arrival order; keepInPlace put them there and decided
 * their state.sameKey): the two lists swap, so the old live list, no longer read, takes this
 * pass's own (no copy per frame). Returns their count. Their keys, offsets and lengths are
 * still in their columns; their flows are not (emcLookup writes every live frame's payload
 * before anything reads it).
 */
export function selectRecirculated(st: BatchState): number {
  const n = st.nRecirc, rc = st.recirc;
  st.recirc = st.live;
  st.live = rc;
  st.nRecirc = 0;
  st.depthMax++; // each frame is one deeper than it was in the pass before
  st.nRefresh = 0;
  st.nTouched = 0;
  st.nRuns = 0;
  st.nInRuns = st.nRecircRuns;
  st.nRecircRuns = 0;
  return n;
}

/**
 * Recirculation in place (called by the execute stage through the datapath's ct step): frame
 * `slot` of `batch` stays in its slot with ct step `a` pending, one recirculation deeper;
 * `reparse` 1: a rewrite left its key stale, the next pass parses it again. It joins
 * state.recirc (that pass credits its length then, which a VLAN push/pop here may have moved).
 *
 * Its state.sameKey for the next pass is decided here, while this pass's are still in the
 * columns: it keeps "my key equals the frame's before me" only when that frame is the one
 * recirculated before it and both ran the same program (one payload, state.recircPl for the
 * frame before: a member's is its head's; a revalidation in the
 * upcall stage may have resolved two frames of one key to different programs) to the same ct
 * step with their IPv4 headers at one offset (conntrack answers a run of them at the first
 * one's, Conntrack.againRun), neither to be parsed again: the program's key rewrites before the
 * step (compile.ts runProgram: set_eth, set_ipv4, VLAN push/pop) read only the key, the offsets
 * and the program's operands, so the keys are still equal. (Depth is not part of the key: the
 * hash stage compares it itself.)
 * Only a frame that does not keep its sameKey gets `a` in state.ctPending: one that keeps it
 * has the same step as the frame before it, and the conntrack stage and the datapath's
 * spillInPlace take that frame's.
 */
export function keepInPlace(st: BatchState, a: DpCt, slot: number, reparse: number): void {
  const n = st.nRecirc;
  const j = n > 0 ? st.recirc[n - 1] : -1;
  st.recirc[n] = slot;
  st.nRecirc = n + 1;
  st.reparse[slot] = reparse;
  st.nReparse += reparse;
  st.depth[slot]++;
  const same = st.sameKey;
  const pl = st.payloads[slot];
  if (j < 0 || same[slot] !== j || pl !== st.recircPl || st.recircCt !== a || reparse !== 0 ||
      st.reparse[j] !== 0 || st.offs[slot * Off.WORDS + Off.L3] !== st.offs[j * Off.WORDS + Off.L3]) {
    same[slot] = -1;
    st.ctPending[slot] = a;
  }
  st.recircCt = a;
  st.recircPl = pl;
}

/**
 * keepInPlace for the frames live[from, to) of one run through a straight program that ends in
 * ct step `a` (compile.ts runStraight): one program (the run may hold frames of several flows
 * with equal actions: execute) and one ct step for all of them, so past the first, only the key
 * (sameKey), reparse flag (`stale`, null: none stale) and L3 offset of each frame and the one
 * before it decide its sameKey.
 * A run of one key (BatchState.runLen, in a pass with runs) recirculates whole: its head is kept
 * as a frame of its own with the run's length, its members follow it in state.recirc (each one
 * recirculation deeper) with nothing else written, and the next pass's conntrack stage takes them
 * by their position after the head (state.nInRuns), so the head starts a chain of its own (its
 * sameKey -1, its own ct step). A run whose head's key a VLAN step left stale is expanded first
 * (expandRun): its members are parsed again each, as the head.
 */
export function keepRunInPlace(st: BatchState, a: DpCt, live: Uint16Array, from: number,
                               to: number, stale: Uint8Array | null): void {
  const rc = st.recirc, re = st.reparse, pend = st.ctPending, depth = st.depth;
  const same = st.sameKey, offs = st.offs, runLen = st.nRuns > 0 ? st.runLen : null;
  let n = 0, nRe = 0, nRuns = 0;
  let j = -1, rJ = 0, l3J = 0; // the frame recirculated before this one, its flag and L3 offset
  let last = live[from]; // the last frame kept that is not a member
  for (let q = from; q < to; q++) {
    const i = live[q];
    const r = stale === null ? 0 : stale[i], l3 = offs[i * Off.WORDS + Off.L3];
    let nm = runLen === null ? 0 : runLen[i];
    if (nm !== 0 && r !== 0) { // the head's key is stale: every member is parsed again on its own
      expandRun(st, live, q, true);
      for (let m = q + 1; m <= q + nm; m++) (stale as Uint8Array)[live[m]] = 1;
      nm = 0;
    }
    if (q === from) {
      keepInPlace(st, a, i, r);
      n = st.nRecirc;
    } else {
      rc[n++] = i;
      re[i] = r;
      nRe += r;
      depth[i]++;
      if (same[i] !== j || (r | rJ) !== 0 || l3 !== l3J) { same[i] = -1; pend[i] = a; } // else the step of the frame before
    }
    last = i;
    j = i; rJ = r; l3J = l3;
    if (nm !== 0) {
      if (same[i] !== -1) { same[i] = -1; pend[i] = a; }
      nRuns++;
      for (let m = q + 1; m <= q + nm; m++) { const x = live[m]; rc[n++] = x; depth[x]++; }
      q += nm;
      j = live[q];
    }
  }
  st.nRecirc = n;
  st.nReparse += nRe;
  st.nRecircRuns += nRuns;
  st.recircPl = st.payloads[last];
}

/**
 * Parses again the live frames recirculated in place whose key a rewrite before the ct step
 * left stale (state.reparse; compile.ts runProgram), as extract does, keeping their depth (the
 * conntrack stage writes the recirculation and ct words next); the others keep their key. A
 * frame that no longer parses leaves the list, counted in `dropStop`. Returns the count left.
 */
export function reparse(st: BatchState, batch: PacketBatch, count: number, dropStop: Float64Array,
                        ports: PortTable): number {
  const keys = st.keys, live = st.live, re = st.reparse;
  st.nReparse = 0;
  let n = 0;
  for (let k = 0; k < count; k++) {
    const i = live[k];
    if (re[i] === 0) { live[n++] = i; continue; }
    re[i] = 0;
    const base = i * W.KEY_WORDS;
    const len = batch.len[i];
    if (keyTailUsed(keys, base)) keys.fill(0, base + W.ARP_SHA_HI, base + W.PACKET_WORDS);
    const stop = extractKeyOver(batch.buf, batch.off[i], len, batch.inPort[i], keys, base, st.offs, i * Off.WORDS,
                                batch.view);
    if (isDrop(stop)) { st.ctPending[i] = null; dropStop[stop]++; countRxDrop(ports, batch, i, stop); continue; }
    keys[base + W.TUN_ID_HI] = batch.tunIdHi[i];
    keys[base + W.TUN_ID_LO] = batch.tunIdLo[i];
    keys[base + W.TUN_SRC] = batch.tunSrc[i];
    keys[base + W.TUN_DST] = batch.tunDst[i];
    live[n++] = i;
  }
  return n;
}

/**
 * Moves the ct steps pending on the queued frames of `q` (FrameQueue.ct: copies a program
 * forked) to the state (state.ctPending), for the conntrack stage. Returns count.
 */
export function takeQueuedCt(q: FrameQueue, st: BatchState, count: number): number {
  const live = st.live, qct = q.ct, pend = st.ctPending;
  for (let k = 0; k < count; k++) {
    const i = live[k];
    pend[i] = qct[i];
    qct[i] = null;
  }
  return count;
}

/**
 * Conntrack for a recirculation pass, one loop for the batch: runs each live frame's pending
 * ct step (state.ctPending, set by the program that recirculated it; a frame recirculated in
 * place behind a frame of its key has that frame's, keepInPlace) in arrival order, from
 * the header offsets the frame's parse recorded (no second walk of the frame). It rewrites the
 * frame (NAT; a super-frame once, its partial checksum in its own form), writes recirc_id,
 * ct_state, zone and mark into the frame's key, and for a NATed frame refreshes the key words
 * NAT may change (IPv4 addresses, TCP/UDP ports) from the rewritten header (the hash stage
 * runs after it). So a frame recirculated in place keeps the key of its first parse. A frame
 * conntrack drops (a limit, NAT exhausted) leaves the list, counted in `c`. Returns the count
 * left.
 * A frame whose key equalled the one before it (state.sameKey, keepInPlace) still does
 * when conntrack wrote the same words into both (recirc id, ct state, zone and mark, and the
 * address and port words NAT refreshes): the hash stage and emcLookup then reuse that frame's
 * hashes and flow. Frames of one connection in a run (a TCP stream) give equal words; two
 * frames with equal keys of different connections (ICMP echoes with other ids, errors quoting
 * other packets) may not, and then compare their keys in full.
 * The frames after a frame of their key that Conntrack.againRun answered as that frame (a run of
 * one connection) become the members of its run (BatchState.runLen; their bytes in runBytes):
 * none of their columns is written here, and the stages after it walk the run's head alone
 * until one must see a member on its own (expandRun). Every other frame it keeps leaves with its
 * hashes (hashFrame; one whose key and depth equal the frame's kept before it copies that
 * frame's): the pass runs no hash stage after it.
 * In-process A/B against copying the head's words and hashes to every member (2026-12-06,
 * 5 pairs): (f) 0.914, (g) 0.936 with emcLookup and execute walking heads alone.
 * A run the pass before recirculated in place whole (keepRunInPlace; state.nInRuns > 0) comes
 * in as its head, with its step and its own chain, and its members after it, none of whose key
 * words are written: the stage finds it by position (the head's runLen), keeps the words it
 * will write into the head's key as they were, and answers the members with againRun as the
 * frames after any kept frame (from the head's key and offsets: a member's are not read). A
 * member it does not answer so (againRun refused it, or the head was dropped or had no step)
 * first gets its key from the head's with those words (memberWords), then goes as any frame.
 */
export function conntrack(ct: Conntrack, st: BatchState, b: PacketBatch, count: number, nowMs: number,
                          c: CtCounters, ports: PortTable): number {
  const live = st.live, keys = st.keys, offs = st.offs, pend = st.ctPending, same = st.sameKey, depth = st.depth;
  const runLen = st.runLen, runBytes = st.runBytes;
  const carried = st.nInRuns > 0; // runs recirculated in place whole (keepRunInPlace)
  st.nInRuns = 0;
  let cHead = -1, cEnd = 0; // the head of the carried run live[k] is in, and the run's end in the input
  let sRid = 0, sState = 0, sZone = 0, sMark = 0, sSrc = 0, sDst = 0, sTp = 0; // its key's words this stage writes, before
  let n = 0;
  let j = -1; // the frame kept before this one
  let jk = -1; // the frame whose key and hashes hold j's words: j, or the head of the run j is a member of
  let prev = -1, aPrev: DpCt | null = null; // the frame before this one in the stage's input, and its step
  for (let k = 0; k < count; k++) {
    const i = live[k];
    let member = false; // a member of a carried run, the frame before it kept with its step: againRun may answer it
    if (carried) {
      if (k >= cEnd) {
        const r = runLen[i];
        if (r !== 0) {
          cHead = i;
          cEnd = k + 1 + r;
          const hb = i * W.KEY_WORDS;
          sRid = keys[hb + W.RECIRC_ID]; sState = keys[hb + W.CT_STATE]; sZone = keys[hb + W.CT_ZONE];
          sMark = keys[hb + W.CT_MARK]; sSrc = keys[hb + W.NW_SRC]; sDst = keys[hb + W.NW_DST]; sTp = keys[hb + W.TP];
        }
      } else if (aPrev !== null && j === prev && same[i] === prev) {
        member = true;
      } else {
        memberWords(st, i, cHead, sRid, sState, sZone, sMark, sSrc, sDst, sTp);
      }
    }
    let a = pend[i];
    if (a !== null) pend[i] = null;
    else if (aPrev !== null && same[i] === prev) a = aPrev; // recirculated in place behind a frame of its key (keepInPlace)
    else { same[i] = -1; hashFrame(st, i); runLen[i] = 0; runBytes[i] = 0; live[n++] = j = jk = prev = i; aPrev = null; continue; }
    prev = i;
    aPrev = a;
    const lk = member ? cHead : i; // a member's key and offsets are its head's (taken before this stage)
    let l3 = ctL3FromKey(keys, lk * W.KEY_WORDS, offs, lk * Off.WORDS);
    if (j >= 0 && same[i] === j) {
      // The same key and ct step as the frame before, and so the frames after it that have the
      // key of theirs before: conntrack answers them as that frame (Conntrack.againRun), and
      // they join its run (BatchState.runLen): no column of theirs is written.
      const nOk = ct.againRun(b, live, k, count, same, l3, nowMs);
      if (nOk > 0) {
        runLen[jk] += nOk;
        runBytes[jk] += ct.runBytes;
        st.nRuns++;
        if (n !== k) for (let q = k; q < k + nOk; q++) live[n + q - k] = live[q];
        n += nOk;
        j = prev = live[n - 1];
        c.nRecirculated += nOk;
        k += nOk - 1;
        continue;
      }
    }
    if (member) { // not answered as its head: conntrack looks at it on its own, from its own key
      memberWords(st, i, cHead, sRid, sState, sZone, sMark, sSrc, sDst, sTp);
      l3 = ctL3FromKey(keys, i * W.KEY_WORDS, offs, i * Off.WORDS);
    }
    const base = i * W.KEY_WORDS, ob = i * Off.WORDS;
    const state = ct.executeKeyed(b, i, keys, base, l3, a.zone, a.commit, a.nat ?? null, a.markValue ?? 0,
      a.markMask ?? 0, nowMs);
    if (state === CT_DROP) { c.nCtDrops++; countRxDrop(ports, b, i, RXD_CT); continue; }
    keys[base + W.RECIRC_ID] = a.recircId;
    keys[base + W.CT_STATE] = state;
    keys[base + W.CT_ZONE] = a.zone & 0xffff;
    keys[base + W.CT_MARK] = ct.mark;
    // l3 < 0: conntrack walked a frame whose parse stopped before IPv4 (QinQ) or did not see
    // IPv4 where conntrack looks (LLC/SNAP): the key holds no word NAT can change.
    // The words come from the tuple conntrack left the packet with (Conntrack.pkt).
    if ((state & (CS_SRC_NAT | CS_DST_NAT)) !== 0 && l3 >= 0) {
      const p = ct.pkt;
      keys[base + W.NW_SRC] = p.src >>> 0;
      keys[base + W.NW_DST] = p.dst >>> 0;
      const proto = keys[base + W.NW_MISC] >>> 24;
      if ((proto === 6 || proto === 17) && offs[ob + Off.L4] !== 0) keys[base + W.TP] = ((p.sport << 16) | p.dport) >>> 0;
    }
    if (j < 0 || same[i] !== j || !sameCtWords(keys, base, jk * W.KEY_WORDS)) { same[i] = -1; hashFrame(st, i); }
    else if (depth[i] !== depth[jk]) hashFrame(st, i);
    else { st.hashes[i] = st.hashes[jk]; st.cacheHash[i] = st.cacheHash[jk]; }
    c.nRecirculated++;
    runLen[i] = 0;
    runBytes[i] = 0;
    live[n++] = j = jk = i;
  }
  return n;
}

/**
 * The key of frame `i`, a member of a run recirculated in place whole and headed by `head`, as the
 * conntrack stage found it: the head's key with the words the stage wrote into the head's put
 * back (their values before it: `rid` ... `tp`). Its hashes and payload are written after (the
 * stage hashes the frames it keeps); its offsets are its own.
 */
function memberWords(st: BatchState, i: number, head: number, rid: number, state: number, zone: number,
                     mark: number, src: number, dst: number, tp: number): void {
  const keys = st.keys, base = i * W.KEY_WORDS, hb = head * W.KEY_WORDS;
  keys.copyWithin(base, hb, hb + W.ARP_SHA_HI);
  keys[base + W.RECIRC_ID] = rid;
  keys[base + W.CT_STATE] = state;
  keys[base + W.CT_ZONE] = zone;
  keys[base + W.CT_MARK] = mark;
  keys[base + W.NW_SRC] = src;
  keys[base + W.NW_DST] = dst;
  keys[base + W.TP] = tp;
}

/**
 * Writes the columns of the members of the run headed by live frame live[k] (BatchState.runLen)
 * from the head's: their hashes, and with `whole` their keys (the ingress and packet words
 * extract writes and the ct words: a run formed by extract wrote none of a member's, one formed
 * by the conntrack stage none of those the stage wrote into the head's; the offsets are the
 * member's own), their cache hash (a member of another depth hashes its own: the depth is in
 * the cache hash) and payload, after which they are frames of their own (the head's run ends).
 * Without `whole` the run stays (the members' other columns are still the head's). For a stage
 * about to read a member's columns.
 */
export function expandRun(st: BatchState, live: Uint16Array, k: number, whole: boolean): void {
  const head = live[k], r = st.runLen[head];
  if (r === 0) return;
  const hashes = st.hashes, h = hashes[head];
  if (!whole) {
    for (let q = k + 1; q <= k + r; q++) hashes[live[q]] = h;
    return;
  }
  const keys = st.keys, depth = st.depth, cacheHash = st.cacheHash, payloads = st.payloads;
  const hb = head * W.KEY_WORDS;
  const d = depth[head], ch = cacheHash[head], pl = payloads[head];
  for (let q = k + 1; q <= k + r; q++) {
    const x = live[q], base = x * W.KEY_WORDS;
    keys.copyWithin(base, hb, hb + W.ARP_SHA_HI); // the ingress and packet words extractCommon writes
    keys[base + W.CT_STATE] = keys[hb + W.CT_STATE];
    keys[base + W.CT_ZONE] = keys[hb + W.CT_ZONE];
    keys[base + W.CT_MARK] = keys[hb + W.CT_MARK];
    st.runLen[x] = 0;
    st.runBytes[x] = 0;
    payloads[x] = pl;
    if (depth[x] === d) { hashes[x] = h; cacheHash[x] = ch; }
    else hashFrame(st, x);
  }
  st.runLen[head] = 0;
  st.runBytes[head] = 0;
}

/**
 * Every run of the pass expanded (expandRun, whole), after which the pass has none: for a stage
 * that looks at every frame on its own (the EMC bypassed; the upcall stage's resolve).
 */
export function expandAllRuns(st: BatchState, count: number): void {
  if (st.nRuns === 0) return;
  expandRunsIn(st, st.live, 0, count, true);
  st.nRuns = 0;
}

/** expandRun for every run headed in live[from, to). */
export function expandRunsIn(st: BatchState, live: Uint16Array, from: number, to: number, whole: boolean): void {
  const runLen = st.runLen;
  for (let k = from; k < to; k++) {
    const r = runLen[live[k]];
    if (r !== 0) { expandRun(st, live, k, whole); k += r; }
  }
}

/**
 * Frame `i`'s hashes from its finished key: the ingress hash (tunnel UDP source port) and the
 * cache hash, mixed with the recirc id and depth for a recirculated frame.
 */
function hashFrame(st: BatchState, i: number): void {
  const keys = st.keys, base = i * W.KEY_WORDS;
  const h = ingressHash(keys, base);
  st.hashes[i] = h;
  const rid = keys[base + W.RECIRC_ID], depth = st.depth[i];
  st.cacheHash[i] = depth === 0 && rid === 0 ? h : recircHash(h, rid, depth);
}

/** True when the words the conntrack stage writes are equal in the keys at `a` and `b`. */
function sameCtWords(keys: Uint32Array, a: number, b: number): boolean {
  return keys[a + W.CT_STATE] === keys[b + W.CT_STATE] && keys[a + W.RECIRC_ID] === keys[b + W.RECIRC_ID] &&
    keys[a + W.CT_ZONE] === keys[b + W.CT_ZONE] && keys[a + W.CT_MARK] === keys[b + W.CT_MARK] &&
    keys[a + W.NW_SRC] === keys[b + W.NW_SRC] && keys[a + W.NW_DST] === keys[b + W.NW_DST] && keys[a + W.TP] === keys[b + W.TP];
}

/**
 * Parses each live frame once into its key and header offsets: first the common
 * Ethernet/IPv4/TCP-UDP frames of the whole batch in one loop (flowkey.ts extractCommon, which
 * also copies in_port and the tunnel metadata into their keys, or writes state.plainPort and
 * zero tunnel words without reading them when selectAll found them so), then each other frame by
 * extractKeyOver (its tunnel words written after); a frame that does not parse leaves the
 * list, counted in `dropStop` by reason. The recirculation and ct words are zero (the parse writes
 * them so), and the depth too (selectAll); queued frames (`meta` not null, Rc.WORDS per slot)
 * take theirs from `meta` after. The key slot is reused, not cleared: the parse writes the packet words, the
 * ARP/IPv6 words are cleared only when the slot's last key used them, and the words after the
 * ct words stay zero (BatchState.keys). Every parsed frame gets its ingress hash here, while
 * the key is fresh: extractCommon computes it from the words its parse holds in locals (one per
 * run of equal keys, and writes it for every frame of the run), extractOthers from the key; it
 * is their cache hash too (recirc id and depth 0: a frame from a port); queued frames get theirs
 * from the conntrack or hash stage, after conntrack may have rewritten the key.
 * An input pass (frames from ports) forms runs of one key (BatchState.runLen) by
 * extractCommonRuns, whose members get no key words or hashes, while the last input pass that
 * looked found runs, and looks again in one input pass of RUNS_PROBE_MASK + 1 otherwise: a
 * batch of distinct flows is parsed by extractCommon, which forms none (with the runs in its
 * loop it cost such batches about 1.3 ns a frame). Queued frames form none (each has pipeline
 * words of its own). Returns the live count.
 */
export function extract(st: BatchState, batch: PacketBatch, count: number, meta: Uint32Array | null,
                        dropStop: Float64Array, ports: PortTable): number {
  let nOther: number;
  if (meta === null && (st.extractRuns || (st.nPlainExtracts = (st.nPlainExtracts + 1) & RUNS_PROBE_MASK) === 0)) {
    nOther = extractCommonRuns(batch.view, batch.off, batch.len, st.live, count, st.keys, st.offs, st.other,
      st.sameKey, st.hashes, batch, st.plainPort, st.cacheHash, st);
    if (count > 1) st.extractRuns = st.nRuns > 0; // a batch of one frame cannot tell
  } else {
    nOther = extractCommon(batch.view, batch.off, batch.len, st.live, count, st.keys, st.offs, st.other,
      st.sameKey, st.hashes, batch, st.plainPort, st.cacheHash);
  }
  const n = nOther === 0 ? count : extractOthers(st, batch, count, nOther, dropStop, ports);
  if (meta !== null) queuedWords(st, n, meta);
  return n;
}

/**
 * While the input passes form no runs, extract forms them (extractCommonRuns) in one input pass
 * of RUNS_PROBE_MASK + 1 only, to see whether they do again.
 */
const RUNS_PROBE_MASK = 15;

/**
 * extractKeyOver for the frames extractCommon left (state.other[0, nOther), in live order),
 * with their tunnel words (extractKeyOver writes in_port and zero tunnel words) and their
 * ingress hash (state.hashes); those it drops leave the live list, counted. Returns the live
 * count.
 */
function extractOthers(st: BatchState, batch: PacketBatch, count: number, nOther: number, dropStop: Float64Array,
                       ports: PortTable): number {
  const other = st.other, keys = st.keys;
  let nDrop = 0;
  for (let q = 0; q < nOther; q++) {
    const i = other[q];
    const base = i * W.KEY_WORDS;
    const stop = extractKeyOver(batch.buf, batch.off[i], batch.len[i], batch.inPort[i], keys, base,
      st.offs, i * Off.WORDS, batch.view);
    keys[base + W.TUN_ID_HI] = batch.tunIdHi[i];
    keys[base + W.TUN_ID_LO] = batch.tunIdLo[i];
    keys[base + W.TUN_SRC] = batch.tunSrc[i];
    keys[base + W.TUN_DST] = batch.tunDst[i];
    if (!isDrop(stop)) {
      keys[base + W.CT_STATE] = 0; // as extractCommon: the key of a frame from a port
      keys[base + W.CT_ZONE] = 0;
      keys[base + W.CT_MARK] = 0;
      const h = ingressHash(keys, base);
      st.hashes[i] = h;
      st.cacheHash[i] = h;
      continue;
    }
    dropStop[stop]++;
    countRxDrop(ports, batch, i, stop);
    other[nDrop++] = i; // the dropped ones, still in live order
  }
  if (nDrop === 0) return count;
  const live = st.live;
  let n = 0, d = 0;
  for (let k = 0; k < count; k++) {
    const i = live[k];
    if (d < nDrop && other[d] === i) d++;
    else live[n++] = i;
  }
  return n;
}

/**
 * The words of queued frames that the frame does not give, from the queue's pipeline words
 * (extract's parse wrote in_port and the tunnel words).
 */
function queuedWords(st: BatchState, count: number, meta: Uint32Array): void {
  const keys = st.keys, live = st.live;
  let depthMax = 0;
  for (let k = 0; k < count; k++) {
    const i = live[k];
    const base = i * W.KEY_WORDS, mo = i * Rc.WORDS;
    keys[base + W.RECIRC_ID] = meta[mo + Rc.RECIRC_ID];
    keys[base + W.CT_STATE] = meta[mo + Rc.CT_STATE];
    keys[base + W.CT_ZONE] = meta[mo + Rc.CT_ZONE];
    keys[base + W.CT_MARK] = meta[mo + Rc.CT_MARK];
    const d = meta[mo + Rc.DEPTH];
    st.depth[i] = d;
    if (d > depthMax) depthMax = d;
    st.sameKey[i] = -1; // the pipeline words may differ: the hash stage and emcLookup compare
  }
  st.depthMax = depthMax;
}

/**
 * The hashes of each live queued frame's finished key, for a pass over a queue that runs no
 * conntrack stage (extract hashes frames from ports itself, the conntrack stage the frames it
 * keeps): hashFrame. A frame whose key and depth equal the frame's before it (state.sameKey)
 * takes that frame's hashes. Returns count (every frame stays).
 */
export function hash(st: BatchState, count: number): number {
  const live = st.live, same = st.sameKey;
  for (let k = 0; k < count; k++) {
    const i = live[k];
    if (k > 0 && same[i] === live[k - 1] && st.depth[i] === st.depth[live[k - 1]]) {
      const j = live[k - 1];
      st.hashes[i] = st.hashes[j];
      st.cacheHash[i] = st.cacheHash[j];
      continue;
    }
    hashFrame(st, i);
  }
  return count;
}

/**
 * Exact-match lookup of every live slot. Hits get their flow; misses go to state.miss in
 * arrival order. A frame whose cache hash and key (the words the EMC compares) equal the last
 * hit's takes that hit's flow without probing the EMC (frames of one flow often come in runs,
 * as OVS's per-flow packet batches use), and so, without comparing keys, does a frame whose key
 * is known equal to the hit just before it (state.sameKey, carried by a recirculation pass).
 * A hit that heads a run of one key (BatchState.runLen: extract's or conntrack's) gives its members its flow
 * without a look at them; one that misses has them expanded (expandRun) and looked up on their
 * own. Every frame's sameKey is set here for the next pass (a member keeps its own). Misses get a null payload (the upcall
 * stage resolves those). While the EMC's lookup policy bypasses it (emc.ts: its hit rate did
 * not pay for its lookups), every frame is a miss without a probe. Returns the miss count.
 */
export function emcLookup(emc: Emc, mf: MegaflowCache<FlowPayload>, st: BatchState, count: number): number {
  emc.lookupsStart(count);
  // Two functions, so that V8 optimizes each with its own feedback: written as one, the lookup
  // loop compiled while the EMC was bypassed had none and ran deoptimized in the probes after
  // a bypass (measured: (b)'s probes with the EMC at 100 % hits took 140-170 ns/frame, 37
  // once reoptimized, so the policy kept bypassing a useful EMC).
  return emc.bypassing ? emcBypass(st, count) : emcProbe(emc, mf, st, count);
}

/**
 * emcLookup while the EMC is looked up. The last hit's answer (its payload and whether it has
 * side effects to repeat) is kept in locals: a frame of its run takes it without loading it
 * back from the columns. A hit writes its payload alone, no flow id or serial: the payload's
 * id and serial name its megaflow for the upcall stage (Datapath.resolve) and stats (a frame of
 * a run stored three columns, the largest per-frame copy of (f); in-process A/B without the two
 * number columns: (f) 0.982, (g) 0.980, (a) 0.981).
 */
function emcProbe(emc: Emc, mf: MegaflowCache<FlowPayload>, st: BatchState, count: number): number {
  const keys = st.keys, live = st.live, miss = st.miss, serials = mf.serial, cacheHash = st.cacheHash;
  const payloads = st.payloads, mfPayload = mf.payload, same = st.sameKey;
  const runs = st.nRuns > 0, runLen = st.runLen;
  let nMiss = 0;
  let nRefresh = 0;
  let prev = -1, prevHash = 0; // the last hit: a frame of the same flow reuses its answer
  let hitRefresh = 0, hitPl: FlowPayload | null = null;
  let last = -1; // the frame before this one when it was a hit (its key is prev's), else -1
  // The buckets of the leading frames with keys of their own are read first, in a loop of
  // their own (Emc.bucketsOf), so that their cache misses overlap; each lookup then starts at
  // the slot found there. In-process A/B: (b) 0.956, (c) 0.949, (a), (f), (g) within noise.
  const nCand = emc.bucketsOf(live, count, cacheHash, same), cand = emc.cand;
  for (let k = 0; k < count; k++) {
    const i = live[k];
    const h = cacheHash[i] | 0;
    if (prev >= 0 && h === prevHash && emcKeyEq(keys, prev * W.KEY_WORDS, keys, i * W.KEY_WORDS)) {
      payloads[i] = hitPl;
      nRefresh += hitRefresh;
      same[i] = last;
    } else {
      same[i] = -1;
      const s = k < nCand ? cand[k] : emc.bucketOf(h); // past the leading frames: from the bucket's first slot
      const f = s < 0 ? -1 : emc.lookupFrom(s, keys, i * W.KEY_WORDS, h, serials);
      if (f < 0) {
        miss[nMiss++] = i;
        payloads[i] = null;
        last = -1;
        if (runs && runLen[i] !== 0) expandRun(st, live, k, true); // its members are looked up on their own
        continue;
      }
      const pl = mfPayload[f] as FlowPayload;
      hitPl = pl;
      hitRefresh = pl.refresh !== null ? 1 : 0;
      payloads[i] = pl;
      nRefresh += hitRefresh;
      prev = i;
      prevHash = h;
    }
    // Its run's members (BatchState.runLen) have its flow without a look at them; the frames
    // after it known equal to it (extract, a recirculation pass) take it.
    let e = k + 1, j = i;
    if (runs && runLen[i] !== 0) { e += runLen[i]; j = live[e - 1]; }
    e = runOfHit(live, same, payloads, e, count, j, hitPl);
    nRefresh += hitRefresh * (e - k - 1);
    last = live[e - 1];
    k = e - 1;
  }
  st.nRefresh += nRefresh;
  // Counted for every pass, not only while the policy times a probe: a branch taken only in a
  // probe had no feedback when emcProbe was first optimized, so the first probe deoptimized it,
  // and the reoptimized code inlined bucketsOf instead of lookupFrom (a call per frame, 11 % of
  // (b) in perf). Masked to stay a small integer; a probe resets it and counts under 2^30.
  emc.probeHits = (emc.probeHits + count - nMiss) & 0x3fffffff;
  return nMiss;
}

/**
 * emcProbe's run of frames known equal to hit `head` (state.sameKey): from live[from] on,
 * each frame whose key is the one's before it takes the hit's payload `pl`, without a hash or
 * key compare. A loop of its own, so that V8 keeps its few values in registers (in emcProbe's
 * loop, around the probe's calls, it reloaded and rechecked the columns per frame). Returns the
 * end of the run.
 */
function runOfHit(live: Uint16Array, same: Int16Array, payloads: (FlowPayload | null)[], from: number, count: number,
                  head: number, pl: FlowPayload | null): number {
  let j = head, q = from;
  for (; q < count; q++) {
    const x = live[q];
    if (same[x] !== j) break;
    payloads[x] = pl;
    j = x;
  }
  return q;
}

/**
 * emcLookup while the EMC is bypassed (emc.ts, lookup policy): every live frame is a miss. A
 * miss is looked up by its own key, so the runs of the pass are expanded first (a member's key
 * still holds the words of its first pass).
 */
function emcBypass(st: BatchState, count: number): number {
  const live = st.live, miss = st.miss, payloads = st.payloads, same = st.sameKey;
  expandAllRuns(st, count);
  for (let k = 0; k < count; k++) {
    const i = live[k];
    miss[k] = i;
    payloads[i] = null;
    same[i] = -1;
  }
  return count;
}

/**
 * Megaflow lookup of the misses, each subtable searched once for the whole batch
 * (MegaflowCache.lookupBatch); hits get their flow and are offered to the EMC. Returns the
 * misses left (state.miss, arrival order).
 */
export function dpclsLookup(mf: MegaflowCache<FlowPayload>, emc: Emc, st: BatchState, nMiss: number): number {
  const left = nMiss === 0 || mf.nFlows === 0 ? nMiss : megaflowHits(mf, emc, st, nMiss);
  emc.lookupsEnd(); // the end of the pass's lookups, for the EMC's lookup policy
  return left;
}

/**
 * dpclsLookup's lookups. The columns are held in locals: the EMC insertion is a call on its
 * rare path, after which V8 would load them from `st` again for every frame. lookupBatch
 * gives every miss its flow id (-1: none) and lists those left in state.missLeft, so state.miss
 * still names the misses in arrival order for the loop over the hits; the ones left move to
 * state.miss after it (a loop that copied state.miss and cleared each miss's flow id first
 * went; with the other driver changes of the same commit, (d) 54526 -> 50739 instructions per
 * 32-frame batch, callgrind).
 */
function megaflowHits(mf: MegaflowCache<FlowPayload>, emc: Emc, st: BatchState, nMiss: number): number {
  const miss = st.miss, missLeft = st.missLeft, keys = st.keys, flowIds = st.flowIds;
  const left = mf.lookupBatch(keys, miss, nMiss, flowIds, missLeft);
  if (left !== nMiss) {
    const serials = mf.serial, mfPayload = mf.payload, payloads = st.payloads;
    const cacheHash = st.cacheHash;
    let nRefresh = 0;
    for (let k = 0; k < nMiss; k++) {
      const i = miss[k];
      const f = flowIds[i];
      if (f < 0) continue;
      const pl = mfPayload[f] as FlowPayload;
      payloads[i] = pl;
      if (pl.refresh !== null) nRefresh++;
      emc.maybeInsert(keys, i * W.KEY_WORDS, cacheHash[i] | 0, f, serials);
    }
    st.nRefresh += nRefresh;
  }
  for (let k = 0; k < left; k++) miss[k] = missLeft[k];
  return left;
}

/**
 * Runs each live frame's program in arrival order (outputs gather in the ports' batches) and
 * sums packets/bytes per flow for the stats stage (credit: once per stretch of frames of one
 * flow). A run of consecutive frames with one program runs as one: programs are interned per
 * action list (program-cache.ts), so frames of several flows with the same actions (one output
 * port for many megaflows, as with 100k flows over 16 destinations) make one run as well as
 * frames of one flow do. An output-only program's run goes to its port in one call
 * (PortTable.emitLastRun), a straight one's (compile.ts runStraight) through its program step
 * by step over the run, to its port or, for a program that ends in a ct step, back to the next
 * pass in place; a run runStraight declines runs frame by frame. Offload frames whose program
 * must see complete segments are set aside in state.deferred instead (finished after the pass:
 * datapath.ts runFinished), and so are the later frames of their flow in the pass, complete or
 * not, so that a flow's frames leave in the order they came (a TCP segment overtaking the
 * super-frame before it would read as loss). The ports' rxForwarded
 * are credited per stretch of frames from one port, or once per run when the whole pass came
 * from one port (state.rxPort). A run of one key (BatchState.runLen) goes whole with its
 * head (creditRuns: its bytes from runBytes), through a straight program by its head
 * (runStraight; a ct step recirculates it whole: keepRunInPlace); its members get the head's
 * hashes before a tunnel output reads them, and all their words before a program run one by one
 * or being set aside (expandRun). Returns the frames that went out at least once.
 */
export function execute(st: BatchState, batch: PacketBatch, count: number, bn: number, ports: PortTable,
                        ctx: RunCtx, dropAction: Float64Array): number {
  const live = st.live, payloads = st.payloads, len = batch.len, hashes = st.hashes;
  const offload = batch.vnet !== null, inPortA = batch.inPort, rxPort = st.rxPort;
  const runs = st.nRuns > 0;
  let nSent = 0;
  let lastIn = -1, lastPort: DpPort | null = null; // frames of a batch mostly come from one port
  let oneByOne = 0; // frames before live[oneByOne] run one by one (runStraight declined their run; credited)
  for (let k = 0; k < count; k++) {
    const i = live[k];
    const pl = payloads[i] as FlowPayload;
    const prog = pl.program;
    if (offload && !prog.offloadSafe && (batch.hasOffload(i) || pl.deferPass === bn)) {
      if (runs) expandRun(st, live, k, true); // its members are set aside behind it, each with its words
      pl.deferPass = bn;
      st.deferred[st.nDeferred++] = i;
      continue;
    }
    if ((prog.outputOnly >= 0 || prog.straight) && (!offload || prog.offloadSafe) && k >= oneByOne) {
      // The run: the following live frames of this flow, or of another with this program (none
      // is set aside: the program is offload-safe or the batch has no offload), a run of one
      // connection's members (BatchState.runLen) taken whole. Credited before the program runs
      // (a VLAN push/pop moves the length; the frame's next pass credits that).
      let e: number;
      if (runs) {
        e = creditRuns(st, live, k, count, bn, len);
        // For a tunnel output the members' hashes (the UDP source port). A plain output reads
        // neither hashes nor keys (ports.ts emitLast: the flow hash goes only into a tunnel
        // header), a straight program's steps take a run by its head and its ct step
        // recirculates the run whole (compile.ts runStraight, keepRunInPlace): it goes as it is.
        if (prog.straightCt === null && prog.headers.length !== 0) expandRunsIn(st, live, k, e, false);
      } else {
        let stretchPl = pl, stretch = k, nBytes = len[i]; // the run's last stretch of one flow
        for (e = k + 1; e < count; e++) {
          const j = live[e], q = payloads[j] as FlowPayload;
          if (q !== stretchPl) {
            if (q.program !== prog) break;
            creditFlow(st, stretchPl, e - stretch, nBytes, bn);
            stretchPl = q; stretch = e; nBytes = 0;
          }
          nBytes += len[j];
        }
        creditFlow(st, stretchPl, e - stretch, nBytes, bn);
      }
      if (prog.outputOnly >= 0) ports.emitLastRun(prog.outputOnly, batch, live, k, e, hashes);
      else if (!runStraight(prog, batch, live, k, e, hashes, st, ports, ctx)) { oneByOne = e; k--; continue; }
      if (prog.straightCt !== null) { k = e - 1; continue; } // recirculated in place: their pass counts their end
      nSent += e - k;
      if (rxPort !== null) {
        rxPort.rxForwarded += e - k;
        k = e - 1;
        continue;
      }
      // Their ends, credited per stretch of frames from one port.
      let nFwd = 0;
      for (; k < e; k++) {
        const inPort = inPortA[live[k]];
        if (inPort !== lastIn) {
          if (lastPort !== null) lastPort.rxForwarded += nFwd;
          nFwd = 0;
          lastIn = inPort;
          const pi = ports.portIndex[inPort & 0xffff];
          lastPort = pi >= 0 ? ports.list[pi] : null;
        }
        nFwd++;
      }
      if (lastPort !== null) lastPort.rxForwarded += nFwd;
      k--; // the loop's k++ moves to the frame after the run
      continue;
    }
    if (runs) expandRun(st, live, k, true); // its members run one by one after it
    if (k >= oneByOne) creditFlow(st, pl, 1, len[i], bn);
    let r: number = DpDrop.None;
    if (prog.outputOnly >= 0) ports.emitLast(prog.outputOnly, batch, i, hashes[i] | 0);
    else r = runProgram(prog, batch, i, hashes[i] | 0, st.depth[i], st, ports, ctx);
    if (r === SENT_AND_RECIRCULATED) {
      nSent++; // its end is counted by its recirculation's pass
    } else if (r === DpDrop.None) {
      nSent++;
      if (rxPort !== null) rxPort.rxForwarded++;
      else {
        const inPort = inPortA[i];
        if (inPort !== lastIn) { lastIn = inPort; const pi = ports.portIndex[inPort & 0xffff]; lastPort = pi >= 0 ? ports.list[pi] : null; }
        if (lastPort !== null) lastPort.rxForwarded++;
      }
    } else if (r !== RECIRCULATED) {
      dropAction[r]++;
      countRxDrop(ports, batch, i, RXD_ACTION0 + r);
    }
  }
  return nSent;
}

/**
 * execute's run from live[k] on in a pass with runs of one connection (BatchState.runLen): the
 * following live frames with the program of live[k]'s flow, a run's members taken with their
 * head (their payload columns are not written: the head's flow is theirs), credited per stretch
 * of one flow. Returns the end of the run. (A function of its own: the members' columns in
 * execute's loop cost (a), which has none, 3 % in-process.)
 */
function creditRuns(st: BatchState, live: Uint16Array, k: number, count: number, bn: number, len: Uint32Array): number {
  const payloads = st.payloads, runLen = st.runLen, runBytes = st.runBytes;
  const i = live[k];
  const r0 = runLen[i]; // runBytes is read only where runLen > 0 (extract writes it only there)
  let stretchPl = payloads[i] as FlowPayload, stretch = k, nBytes = len[i] + (r0 !== 0 ? runBytes[i] : 0);
  const prog = stretchPl.program;
  let e = k + 1 + r0;
  while (e < count) {
    const j = live[e], q = payloads[j] as FlowPayload;
    if (q !== stretchPl) {
      if (q.program !== prog) break;
      creditFlow(st, stretchPl, e - stretch, nBytes, bn);
      stretchPl = q; stretch = e; nBytes = 0;
    }
    const r = runLen[j];
    nBytes += len[j] + (r !== 0 ? runBytes[j] : 0);
    e += 1 + r;
  }
  creditFlow(st, stretchPl, e - stretch, nBytes, bn);
  return e;
}

/** Adds `nPackets` frames of `nBytes` to flow `pl`'s counts of pass `bn` (the stats stage's touched list). */
function creditFlow(st: BatchState, pl: FlowPayload, nPackets: number, nBytes: number, bn: number): void {
  if (pl.stamp !== bn) {
    pl.stamp = bn;
    pl.bPackets = 0;
    pl.bBytes = 0;
    st.touched[st.nTouched++] = pl;
  }
  pl.bPackets += nPackets;
  pl.bBytes += nBytes;
}

/** Sends what the pass gathered, one send per port. */
export function flush(ports: PortTable): void {
  ports.flushTouched();
}

/**
 * Megaflow and rule counters, once per flow per pass. A rule's lastUsedMs is written only when
 * it changes: the clock reading is a fresh heap number each batch and the field holds a tagged
 * value, so every store was a write-barrier call (an old rule pointing at a young number; in
 * (g), 4.5 a batch, callgrind 2026-12-05), and a batch mostly reads the millisecond the last
 * one did.
 */
export function stats(st: BatchState, mf: MegaflowCache<FlowPayload>, nowMs: number): void {
  const touched = st.touched;
  for (let k = 0; k < st.nTouched; k++) {
    const pl = touched[k] as FlowPayload;
    touched[k] = null;
    const id = pl.id;
    if (id >= 0 && mf.serial[id] === pl.serial) { // the megaflow lives (this payload or one revalidation put after it)
      mf.nPackets[id] += pl.bPackets;
      mf.nBytes[id] += pl.bBytes;
      mf.usedMs[id] = nowMs;
    }
    const rules = pl.rules;
    for (let q = 0; q < rules.length; q++) {
      const rule = rules[q];
      rule.nPackets += pl.bPackets;
      rule.nBytes += pl.bBytes;
      if (rule.lastUsedMs !== nowMs) rule.lastUsedMs = nowMs;
    }
  }
  st.nTouched = 0;
}
