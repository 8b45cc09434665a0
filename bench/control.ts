/**
 * Control-plane benchmark (`npm run bench:control`, issue 20): a generated topology of 100
 * nodes, 1,000 ports and 100 routers (200 tenant networks, two per router, five ports each),
 * given to one node's switch from a file and from etcd (a real etcd on loopback, started here,
 * test/helpers/etcd.ts), through the daemon's own path: the source (control/topology-source.ts)
 * validates, control/topology-apply.ts generates the node's config, diffs and applies it.
 *
 * Figures, per source, medians of BENCH_REPS interleaved rounds (file, etcd, file, etcd, ...):
 *  - cold start: from nothing to the node's flows in place (read + validate + generate + install);
 *  - one port change (a port bound to another node moved onto this node, then back): from the
 *    write (file rewritten / one etcd key put) to the node's flows changed, end to end (the file
 *    source polls every 250 ms: fs.watchFile), and the part after the source validated it
 *    (generate + diff + apply);
 *  - flows and ports of the node.
 * Ratios etcd/file are printed beside each figure. Target (issue 20): a port change through
 * etcd applied in under 100 ms at this size.
 * Environment: BENCH_REPS (5), BENCH_ETCD_PORT (24391; +1 for the peer port).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EtcdCluster, etcdSkipReason } from '../test/helpers/etcd';
import { pushTopology } from '../src/control/topology-push';
import { EtcdClient, parseEtcdUrl } from '../src/control/etcd-client';
import { FileTopologySource, TopologySource } from '../src/control/topology-source';
import { EtcdTopologySource } from '../src/control/topology-etcd';
import { applyTopology, nodeConfigFor } from '../src/control/topology-apply';
import { NodeConfig } from '../src/control/config';
import { Switch } from '../src/control/switch';
import { Topology } from '../src/dvr/topology';

const N_NODES = 100;
const N_ROUTERS = 100;
const N_PORTS = 1000;
const NODE = 'N001';
const MOVED_PORT = 'p0500';

const hex2 = (n: number): string => (n & 0xff).toString(16).padStart(2, '0');
const mac = (kind: number, n: number): string => `fa:16:3e:${hex2(kind)}:${hex2(n >> 8)}:${hex2(n)}`;
const pad = (n: number, w: number): string => String(n).padStart(w, '0');

/** The port entry; `node` is where it is bound. */
function portLine(i: number, node: string): string {
  const net = i % (2 * N_ROUTERS);
  const host = 10 + Math.floor(i / (2 * N_ROUTERS));
  return `  - { name: p${pad(i, 4)}, mac: "${mac(3, i)}", network: net${pad(net, 3)}, fixed_ips: [10.${1 + (net >> 7)}.${net & 127}.${host}], ` +
    `binding:host_id: ${node}, device: tap${pad(i, 4)} }`;
}

function nodeOfPort(i: number): string {
  return `N${pad(((i * 7) % N_NODES) + 1, 3)}`;
}

/** The generated topology; `movedTo` rebinds MOVED_PORT. */
function generate(movedTo = ''): string {
  const out: string[] = ['nodes:'];
  for (let n = 1; n <= N_NODES; n++) {
    out.push(`  - { name: N${pad(n, 3)}, agent_mode: ${n === N_NODES ? 'dvr_snat' : 'dvr'}, local_ip: 10.200.${n >> 8}.${n & 255}, ` +
      `underlay: { device: eth1, mac: "${`52:54:00:00:${hex2(n >> 8)}:${hex2(n)}`}" } }`);
  }
  out.push('networks:');
  for (let k = 0; k < 2 * N_ROUTERS; k++) out.push(`  - { name: net${pad(k, 3)}, network_type: vxlan, segmentation_id: ${2000 + k} }`);
  out.push('subnets:');
  for (let k = 0; k < 2 * N_ROUTERS; k++) {
    out.push(`  - { name: sub${pad(k, 3)}, network: net${pad(k, 3)}, cidr: 10.${1 + (k >> 7)}.${k & 127}.0/24, gateway_ip: 10.${1 + (k >> 7)}.${k & 127}.1 }`);
  }
  out.push('routers:');
  for (let r = 0; r < N_ROUTERS; r++) {
    out.push(`  - name: r${pad(r, 3)}`, '    distributed: true', '    interfaces:');
    for (const k of [2 * r, 2 * r + 1]) out.push(`      - { subnet: sub${pad(k, 3)}, mac: "${mac(1, k)}" }`);
  }
  out.push('ports:');
  for (let i = 0; i < N_PORTS; i++) {
    const name = `p${pad(i, 4)}`;
    out.push(portLine(i, name === MOVED_PORT && movedTo !== '' ? movedTo : nodeOfPort(i)));
  }
  return out.join('\n') + '\n';
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

interface Round { coldMs: number; changeMs: number; processMs: number; flows: number; ports: number }

/** One round on a fresh source: cold start, then two port changes (onto the node and back). */
async function round(source: TopologySource, write: (movedTo: string) => Promise<void>): Promise<Round> {
  const node: NodeConfig = { file: source.name, node: NODE, controlSocket: '', bridges: [] };
  const t0 = nowMs();
  let current: NodeConfig = nodeConfigFor(node, await source.load());
  const sw = new Switch(current, { open: () => null }, { nowMs: Date.now });
  const coldMs = nowMs() - t0;
  const flows = current.bridges.reduce((n, b) => n + b.flows.length, 0);
  const ports = current.bridges.reduce((n, b) => n + b.ports.length, 0);
  let waiting: ((processMs: number) => void) | null = null;
  source.watch({
    onChange: (t: Topology) => {
      const p0 = nowMs();
      const { next } = applyTopology(sw, node, current, t);
      current = next;
      waiting?.(nowMs() - p0);
    },
    onReject: (e) => { throw e; },
  });
  await new Promise((r) => setTimeout(r, 300));
  const change = async (movedTo: string): Promise<{ e2e: number; proc: number }> => {
    const done = new Promise<number>((r) => { waiting = r; });
    const w0 = nowMs();
    await write(movedTo);
    const proc = await done;
    return { e2e: nowMs() - w0, proc };
  };
  const a = await change(NODE);
  // The file source compares mtimes: a second write within its granularity could be missed.
  await new Promise((r) => setTimeout(r, 300));
  const b = await change('');
  source.close();
  sw.close();
  return { coldMs, changeMs: (a.e2e + b.e2e) / 2, processMs: (a.proc + b.proc) / 2, flows, ports };
}

async function main(): Promise<void> {
  const why = etcdSkipReason();
  if (why !== false) {
    console.log(`bench:control skipped: ${why}`);
    return;
  }
  const reps = Number(process.env.BENCH_REPS ?? 5);
  const port = Number(process.env.BENCH_ETCD_PORT ?? 24391);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-bench-control-'));
  const file = path.join(dir, 'topology.yaml');
  const etcd = new EtcdCluster(port, 1);
  try {
    await etcd.start();
    const url = etcd.url('et-bench');
    const base = generate();
    fs.writeFileSync(file, base);
    const pushT0 = nowMs();
    const pushed = await pushTopology(url, file, base);
    const pushMs = nowMs() - pushT0;
    const kv = new EtcdClient(parseEtcdUrl(url).endpoints);
    const key = `${parseEtcdUrl(url).prefix}/topology/ports/${MOVED_PORT}`;
    const idx = Number(MOVED_PORT.slice(1));
    const res: { file: Round[]; etcd: Round[] } = { file: [], etcd: [] };
    for (let r = 0; r < reps; r++) {
      res.file.push(await round(new FileTopologySource(file), async (to) => { fs.writeFileSync(file, generate(to)); }));
      res.etcd.push(await round(new EtcdTopologySource(url), async (to) => {
        await kv.put(key, portLine(idx, to === '' ? nodeOfPort(idx) : to).replace(/^ {2}- /, '') + '\n');
      }));
    }
    const m = (src: Round[], f: (x: Round) => number): number => median(src.map(f));
    const row = (what: string, f: (x: Round) => number): string => {
      const a = m(res.file, f);
      const b = m(res.etcd, f);
      return `  ${what.padEnd(44)} file ${a.toFixed(1).padStart(8)} ms   etcd ${b.toFixed(1).padStart(8)} ms   etcd/file ${(b / a).toFixed(2)}`;
    };
    console.log(`bench:control: ${N_NODES} nodes, ${N_PORTS} ports, ${N_ROUTERS} routers, ${2 * N_ROUTERS} networks; node ${NODE}: ` +
      `${res.file[0].flows} flows, ${res.file[0].ports} ports (etcd: ${res.etcd[0].flows} flows); medians of ${reps} interleaved rounds`);
    console.log(`  first push to etcd: ${pushed.put.length} keys in one transaction, ${pushMs.toFixed(0)} ms (file ${(base.length / 1024).toFixed(0)} KiB)`);
    console.log(row('cold start to flows in place', (x) => x.coldMs));
    console.log(row('one port change -> flows changed (end to end)', (x) => x.changeMs));
    console.log(row('  of which generate+diff+apply', (x) => x.processMs));
    const etcdChange = m(res.etcd, (x) => x.changeMs);
    console.log(`  target: a port change through etcd under 100 ms: ${etcdChange < 100 ? 'met' : 'NOT met'} (${etcdChange.toFixed(1)} ms)`);
  } finally {
    await etcd.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.env.BENCH_GEN_ONLY) { process.stdout.write(generate()); } else void main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
