/**
 * Where scenarios (f) and (g) of bench/inmem.ts spend their time, stage by stage and pass by
 * pass (issue 12: the recirculation passes of ct). Not part of `npm run bench`: run by hand,
 *   node dist/bench/ct-stages.js            (BENCH_ONLY=f or g, BENCH_MS per measurement)
 *
 * Two measurements per scenario:
 *  1. Batch-size fit: wall time per batch for batches of 8, 16, 24 and 32 frames (interleaved,
 *     medians), fitted to fixed + n * per-frame: what a batch costs whatever its size, and
 *     what each frame adds.
 *  2. Stage table: every stage function of dpif/stages.ts and Datapath's upcall wrapped by a
 *     timer (performance.now around the call), attributed to the pass it ran in (the input
 *     pass, or the recirculation pass at its depth); the timer's own cost, measured on an
 *     empty function, is subtracted per call. The wrappers slow the whole (inlining across
 *     them is lost), so read the table for shares, the fit for totals.
 * The scenarios are built as bench/inmem.ts builds them (the same flows and frames); caseF,
 * caseG and runBatches are exported for A/B scripts that load two builds into one process.
 */
import { Datapath } from '../src/dpif/datapath';
import * as stages from '../src/dpif/stages';
import { copyFrame, wordsOf } from '../src/dpif/ports';
import { PacketBatch } from '../src/netdev/batch';
import { Netdev, NetdevStats } from '../src/netdev/netdev';
import { ipv4SetChecksum, l4SetChecksum4 } from '../src/packet/checksum';
import { Bridge } from '../src/ofproto/bridge';
import { BridgeView, Ofproto, XlateBridge } from '../src/ofproto/ofproto';
import { OfprotoUpcaller } from '../src/ofproto/upcall';
import { parseTopology } from '../src/dvr/topology';
import { nodeConfig } from '../src/dvr/node-config';
import * as fs from 'node:fs';
import * as path from 'node:path';

const BATCH = 32;
const MS = Number(process.env.BENCH_MS ?? 300);

class SinkNetdev implements Netdev {
  readonly kind = 'internal';
  readonly txFromInput = true;
  constructor(readonly name: string) {}
  recv(): number { return 0; }
  send(_b: PacketBatch, count: number): number { return count; }
  stats(_o: NetdevStats): void { /* none */ }
  close(): void { /* none */ }
}

/** One batch of `frame`, restored (a word copy per frame) before each use, as inmem.ts's Ring. */
class Restored {
  readonly b = new PacketBatch(BATCH, 512);
  private readonly pristine: Uint8Array;
  private readonly off0: Uint32Array;
  private readonly len0: Uint32Array;
  private readonly w: Uint32Array | null;
  private readonly pw: Uint32Array | null;
  constructor(frame: Uint8Array, inPort: number) {
    for (let k = 0; k < BATCH; k++) { const i = this.b.append(frame); this.b.inPort[i] = inPort; }
    this.pristine = this.b.buf.slice();
    this.off0 = Uint32Array.from(this.b.off);
    this.len0 = Uint32Array.from(this.b.len);
    this.w = wordsOf(this.b.buf);
    this.pw = wordsOf(this.pristine);
  }
  take(n: number): PacketBatch {
    const b = this.b;
    b.off.set(this.off0);
    b.len.set(this.len0);
    for (let i = 0; i < n; i++) copyFrame(b.buf, this.w, b.off[i], this.pristine, this.pw, b.off[i], b.len[i]);
    return b;
  }
}

export interface Case { name: string; dp: Datapath; a: Restored; b: Restored }

function ofprotoDp(br: Bridge): { dp: Datapath; dpOf: (ofport: number) => number } {
  const ofp = new Ofproto();
  ofp.addBridge(new BridgeView(br, new Map()));
  let dp: Datapath | null = null;
  const up = new OfprotoUpcaller(ofp, Date.now, () => dp?.rulesChanged());
  dp = new Datapath({ upcaller: up, maxUpcallsPerBatch: 64 });
  for (const info of ofp.dpPorts()) dp.addPort(info.dpPort, new SinkNetdev(info.port.name), null);
  br.onRulesChanged(() => dp?.rulesChanged());
  return { dp, dpOf: (ofport) => ofp.dpPort(ofp.bridges.get(br.name) as XlateBridge, ofport) };
}

function tcpFrame(dst: number, src: number, vlan: number, ipSrc: number, ipDst: number, sport: number, dport: number,
                  flags: number): Uint8Array {
  const t = vlan === 0 ? 0 : 4;
  const f = new Uint8Array(64);
  const dv = new DataView(f.buffer);
  dv.setUint16(0, Math.floor(dst / 2 ** 32)); dv.setUint32(2, dst >>> 0);
  dv.setUint16(6, Math.floor(src / 2 ** 32)); dv.setUint32(8, src >>> 0);
  if (vlan !== 0) { dv.setUint16(12, 0x8100); dv.setUint16(14, vlan); }
  dv.setUint16(12 + t, 0x0800);
  const ip = 14 + t;
  f.set([0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6], ip);
  dv.setUint32(ip + 12, ipSrc); dv.setUint32(ip + 16, ipDst);
  dv.setUint16(ip + 20, sport); dv.setUint16(ip + 22, dport);
  f[ip + 32] = 0x50; f[ip + 33] = flags; f[ip + 34] = 0xfa; f[ip + 35] = 0xf0;
  ipv4SetChecksum(f, ip);
  l4SetChecksum4(f, ip, ip + 20, 20, 6);
  return f;
}

function send(dp: Datapath, f: Uint8Array, port: number): void {
  const b = new PacketBatch(1); b.append(f); b.inPort[0] = port;
  dp.processBatch(b, 1);
}

export function caseF(): Case {
  const br = new Bridge('br0', 0, { defaultFlow: false });
  br.addPort({ name: 'in', ofport: 1, kind: 'afpacket' });
  br.addPort({ name: 'out', ofport: 2, kind: 'afpacket' });
  br.addFlows([
    'table=0,priority=10,ip,actions=ct(table=1,zone=7,nat)',
    'table=1,priority=10,ct_state=+trk+new,in_port=1,ip,actions=ct(commit,zone=7,nat(src=172.24.4.10)),output:2',
    'table=1,priority=10,ct_state=+trk+est,in_port=1,ip,actions=output:2',
    'table=1,priority=10,ct_state=+trk+est,in_port=2,ip,actions=output:1',
    'table=1,priority=0,actions=drop',
  ].join('\n'), 0);
  const { dp, dpOf } = ofprotoDp(br);
  const vm = 0x0a000005, server = 0xcb007107, fip = 0xac18040a;
  const mac1 = 0xfa163e000001, mac2 = 0x020000000005;
  const out = (fl: number) => tcpFrame(mac1, mac2, 0, vm, server, 40000, 80, fl);
  const back = (fl: number) => tcpFrame(mac1, mac2, 0, server, fip, 80, 40000, fl);
  send(dp, out(0x02), dpOf(1));
  send(dp, back(0x12), dpOf(2));
  return { name: 'f', dp, a: new Restored(out(0x10), dpOf(1)), b: new Restored(back(0x10), dpOf(2)) };
}

export function caseG(): Case {
  const file = path.join(__dirname, '../../examples/topologies/security-groups.yaml');
  const cfg = nodeConfig(parseTopology(file, fs.readFileSync(file, 'utf8')), 'C1');
  const bc = cfg.bridges.find((x) => x.name === 'br-int');
  if (bc === undefined) throw new Error('no br-int');
  const br = new Bridge(bc.name, 0, { defaultFlow: false });
  for (const p of bc.ports) br.addPort({ name: p.name, ofport: p.ofport, kind: 'afpacket', tag: p.tag === 0 ? undefined : p.tag });
  br.addFlows(bc.flows.map((f) => f.text).join('\n'), 0, bc.flows[0].file);
  const ofport = (name: string): number => (bc.ports.find((x) => x.name === name) as { ofport: number }).ofport;
  const { dp, dpOf } = ofprotoDp(br);
  const WEB1 = 0xfa163e000110, WEB2 = 0xfa163e000111, ipWeb1 = 0x0a00010a, ipWeb2 = 0x0a00010b;
  const fromTun = dpOf(ofport('patch-tun')), fromVm = dpOf(ofport('web1-host'));
  const req = (fl: number) => tcpFrame(WEB1, WEB2, 1, ipWeb2, ipWeb1, 40000, 80, fl);
  const rpl = (fl: number) => tcpFrame(WEB2, WEB1, 0, ipWeb1, ipWeb2, 80, 40000, fl);
  const arp = new Uint8Array(46);
  const av = new DataView(arp.buffer);
  arp.fill(0xff, 0, 6);
  av.setUint16(6, Math.floor(WEB2 / 2 ** 32)); av.setUint32(8, WEB2 >>> 0);
  av.setUint16(12, 0x8100); av.setUint16(14, 1); av.setUint16(16, 0x0806);
  arp.set([0, 1, 8, 0, 6, 4, 0, 1], 18);
  av.setUint16(26, Math.floor(WEB2 / 2 ** 32)); av.setUint32(28, WEB2 >>> 0);
  av.setUint32(32, ipWeb2); av.setUint32(42, ipWeb1);
  send(dp, arp, fromTun); send(dp, req(0x02), fromTun); send(dp, rpl(0x12), fromVm); send(dp, req(0x10), fromTun);
  return { name: 'g', dp, a: new Restored(req(0x10), fromTun), b: new Restored(rpl(0x10), fromVm) };
}

export function runBatches(c: Case, nBatches: number, n: number): void {
  for (let k = 0; k < nBatches; k++) c.dp.processBatch((k & 1) === 0 ? c.a.take(n) : c.b.take(n), n);
}

function median(a: number[]): number {
  const s = a.slice().sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** ns per batch of n frames, over about MS ms. */
function timeBatches(c: Case, n: number): number {
  const nb = Math.max(64, Math.round(MS * 200 / n)) & ~1;
  const t0 = process.hrtime.bigint();
  runBatches(c, nb, n);
  return Number(process.hrtime.bigint() - t0) / nb;
}

function fit(c: Case): void {
  const sizes = [8, 16, 24, 32];
  const res = new Map<number, number[]>(sizes.map((n) => [n, []]));
  for (const n of sizes) timeBatches(c, n); // warm
  for (let r = 0; r < 5; r++) for (const n of sizes) (res.get(n) as number[]).push(timeBatches(c, n));
  const xs = sizes, ys = sizes.map((n) => median(res.get(n) as number[]));
  const mx = xs.reduce((s, x) => s + x, 0) / xs.length, my = ys.reduce((s, y) => s + y, 0) / ys.length;
  let sxy = 0, sxx = 0;
  for (let k = 0; k < xs.length; k++) { sxy += (xs[k] - mx) * (ys[k] - my); sxx += (xs[k] - mx) ** 2; }
  const slope = sxy / sxx, icpt = my - slope * mx;
  console.log(`${c.name}: ns/batch by size ${sizes.map((n, k) => `${n}:${ys[k].toFixed(0)}`).join(' ')}` +
    ` -> fixed ${icpt.toFixed(0)} ns/batch + ${slope.toFixed(1)} ns/frame (32-frame batch ${(ys[3] / 32).toFixed(1)} ns/frame)`);
}

// ---- stage table ------------------------------------------------------------------------------

const NAMES: string[] = [];
const PASSES = ['in', 'rc1', 'rc2', 'rc3', 'rc4', 'rc5', 'rc6'];
const acc = new Float64Array(64 * PASSES.length);
/** Per (pass, stage) the time of each call of the current measurement (medians: preemption on a shared machine hits a few calls hard). */
const SAMPLES = 20000;
const samples: Float64Array[] = [];
const nSamples = new Int32Array(64 * PASSES.length);
let pass = 0;
let timerCost = 0;
let whole = 0;

type Fn = (...args: never[]) => unknown;

function timed<F extends Fn>(name: string, fn: F): F {
  const id = NAMES.length;
  NAMES.push(name);
  const w = function (this: unknown, ...args: never[]): unknown {
    const t0 = performance.now();
    const r = fn.apply(this, args);
    const dt = (performance.now() - t0) * 1e6 - timerCost, x = pass * 64 + id;
    acc[x] += dt;
    if (nSamples[x] < SAMPLES) samples[x][nSamples[x]++] = dt;
    return r;
  };
  return w as unknown as F;
}

function wrapAll(): void {
  for (let x = 0; x < 64 * PASSES.length; x++) samples.push(new Float64Array(SAMPLES));
  const s = stages as unknown as Record<string, Fn>;
  for (const name of ['selectAll', 'countRx', 'extract', 'hash', 'emcLookup', 'dpclsLookup', 'execute', 'flush', 'stats',
    'selectRecirculated', 'reparse', 'takeQueuedCt', 'conntrack']) s[name] = timed(name, s[name]);
  const proto = Datapath.prototype as unknown as Record<string, Fn>;
  proto.upcall = timed('upcall', proto.upcall);
  const runPass = proto.runPass, runRecircPass = proto.runRecircPass, processBatch = proto.processBatch;
  proto.runPass = function (this: unknown, ...a: never[]): unknown { pass = 0; return runPass.apply(this, a); };
  proto.runRecircPass = function (this: unknown, ...a: never[]): unknown { pass++; return runRecircPass.apply(this, a); };
  proto.processBatch = function (this: unknown, ...a: never[]): unknown {
    pass = 0;
    const t0 = performance.now();
    const r = processBatch.apply(this, a);
    whole += (performance.now() - t0) * 1e6 - timerCost;
    return r;
  };
}

function calibrateTimer(): void {
  const noop = (x: number): number => x + 1;
  const f = timed('noop', noop as unknown as Fn) as unknown as (x: number) => number;
  for (let k = 0; k < 2e6; k++) f(k);
  acc.fill(0);
  for (let k = 0; k < 2e6; k++) f(k);
  timerCost = acc[NAMES.indexOf('noop')] / 2e6;
  acc.fill(0);
  nSamples.fill(0);
}

/** Per stage ns per batch at batch size n, medians of 5 runs. */
function stageRun(c: Case, n: number): { per: Float64Array; whole: number; rc: number } {
  const nb = 20000;
  const runs: Float64Array[] = [], wholes: number[] = [];
  const rc0 = c.dp.nRecirculated, p0 = c.dp.nPackets;
  for (let r = 0; r < 5; r++) {
    acc.fill(0); whole = 0; nSamples.fill(0);
    runBatches(c, nb, n);
    // Per stage the median call, times its calls per batch.
    runs.push(acc.map((_v, x) => nSamples[x] === 0 ? 0 : median(Array.from(samples[x].subarray(0, nSamples[x]))) * nSamples[x] / nb));
    wholes.push(whole / nb);
  }
  const per = new Float64Array(acc.length);
  for (let x = 0; x < acc.length; x++) per[x] = median(runs.map((a) => a[x]));
  return { per, whole: median(wholes), rc: (c.dp.nRecirculated - rc0) / (c.dp.nPackets - p0) };
}

function table(c: Case): void {
  runBatches(c, 20000, BATCH);
  const s8 = stageRun(c, 8), s32 = stageRun(c, 32);
  console.log(`${c.name}: stage table, timer cost ${timerCost.toFixed(0)} ns/call subtracted; fit of 8- and 32-frame batches:`);
  console.log('  pass stage              ns/batch@32  ns/frame@32   fixed ns/batch  + ns/frame');
  const rows: [string, number, number, number][] = [];
  for (let x = 0; x < acc.length; x++) {
    const a = s8.per[x], b = s32.per[x];
    if (a === 0 && b === 0) continue;
    const slope = (b - a) / 24;
    rows.push([`${PASSES[Math.floor(x / 64)]} ${NAMES[x % 64]}`, b, b - 32 * slope, slope]);
  }
  let sum = 0;
  for (const [k, b, f, sl] of rows.sort((x, y) => y[1] - x[1])) {
    sum += b;
    console.log(`  ${k.padEnd(24)} ${b.toFixed(0).padStart(6)} ${(b / 32).toFixed(1).padStart(10)} ${f.toFixed(0).padStart(14)} ${sl.toFixed(1).padStart(10)}`);
  }
  console.log(`  ${'sum of stages'.padEnd(24)} ${sum.toFixed(0).padStart(6)}; processBatch ${s32.whole.toFixed(0)} ns/batch@32, ` +
    `${s8.whole.toFixed(0)}@8 (the rest: driver, ct sweep, clock, wrappers)`);
  console.log(`  recirculations per input frame: ${s32.rc.toFixed(2)}`);
}

function main(): void {
  const only = process.env.BENCH_ONLY ?? 'f,g';
  const cases = [['f', caseF], ['g', caseG]].filter(([n]) => only.split(',').includes(n as string))
    .map(([, mk]) => (mk as () => Case)());
  if (process.env.STAGES === 'loop') { // for --cpu-prof: 32-frame batches for BENCH_MS each
    for (const c of cases) { const t0 = Date.now(); while (Date.now() - t0 < MS) runBatches(c, 1000, BATCH); }
    return;
  }
  if (process.env.STAGES !== 'only') for (const c of cases) fit(c);
  if (process.env.STAGES === 'no') return;
  wrapAll();
  calibrateTimer();
  for (const c of cases) table(c);
}

if (require.main === module) main();
