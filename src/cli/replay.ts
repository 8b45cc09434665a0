/**
 * flowd replay: run a node config offline. Every port becomes a pcap port (netdev/pcap-port.ts);
 * input captures are fed into their ports in timestamp order through the same Switch (bridges,
 * datapath, caches) the daemon runs, and every port that sent frames gets DIR/<port>.pcap.
 *
 * The clock is the capture's: while a batch runs, "now" is the timestamp of its first frame,
 * so MAC aging, idle/hard timeouts and megaflow expiry follow the capture, and a replay gives
 * the same output on every run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig, PortConfig } from '../control/config';
import { Switch, PortFactory, OpenedPort } from '../control/switch';
import { GSO_SLOT_BYTES, MAX_BATCH, PacketBatch } from '../netdev/batch';
import { PcapNetdev } from '../netdev/pcap-port';
import { readPcap, PcapRecord } from '../netdev/pcap-file';
import { FlowdError } from '../errors';
import { dumpCache, perfStats } from '../dpif/dump';

export interface ReplayOptions {
  config: string;
  /** PORT=FILE.pcap */
  inputs: string[];
  outDir: string;
  stats: boolean;
}

export interface ReplayPortReport {
  port: string;
  ofport: number;
  rx: number;
  tx: number;
  txDropped: number;
  rxDropped: number;
  /** rxDropped by reason (netdev/netdev.ts NetdevStats). */
  rxDropReasons: Record<string, number>;
  /** Frames of the port that left on some port: rx = rxForwarded + the datapath's drops. */
  rxForwarded: number;
  file: string | null;
}

export interface ReplayReport {
  ports: ReplayPortReport[];
  drops: Record<string, number>;
  perf: string;
  cache: string;
}

/** Runs a replay and returns what happened; throws FlowdError on bad config or inputs. */
export async function replay(opts: ReplayOptions): Promise<ReplayReport> {
  const cfg = loadConfig(opts.config);
  const inputs = new Map<string, PcapRecord[]>();
  for (const spec of opts.inputs) {
    const eq = spec.indexOf('=');
    if (eq <= 0) throw new FlowdError('E_ARGS', `--in ${spec}: expected PORT=FILE.pcap`);
    const port = spec.slice(0, eq);
    if (!cfg.bridges.some((b) => b.ports.some((p) => p.name === port && p.kind !== 'patch'))) {
      throw new FlowdError('E_ARGS', `--in ${spec}: no port named "${port}" in ${opts.config}`);
    }
    const c = await readPcap(spec.slice(eq + 1));
    inputs.set(port, c.records);
  }
  fs.mkdirSync(opts.outDir, { recursive: true });
  const clock = { ms: 0 };
  const pcapPorts: PcapNetdev[] = [];
  const factory: PortFactory = {
    open(_b, p: PortConfig): OpenedPort {
      const nd = new PcapNetdev(p.name, inputs.get(p.name) ?? [], path.join(opts.outDir, `${p.name}.pcap`), () => clock.ms);
      pcapPorts.push(nd);
      return { netdev: nd, tunnel: null };
    },
  };
  const sw = new Switch(cfg, factory, { nowMs: () => clock.ms });
  const attached = [...sw.attached.values()];
  // Slots for any frame a capture holds (jumbo frames and captured super-frames too).
  const batch = new PacketBatch(MAX_BATCH, GSO_SLOT_BYTES);
  const t = new Float64Array(2);
  for (;;) {
    // The port whose next frame is earliest runs, up to the next frame of any other port.
    let best = -1;
    let bestSec = Infinity, bestNsec = 0, nextSec = Infinity, nextNsec = 0;
    for (let k = 0; k < attached.length; k++) {
      const nd = attached[k].netdev as PcapNetdev;
      if (!nd.pending) continue;
      nd.peekTime(t);
      if (t[0] < bestSec || (t[0] === bestSec && t[1] < bestNsec)) {
        nextSec = bestSec; nextNsec = bestNsec;
        best = k; bestSec = t[0]; bestNsec = t[1];
      } else if (t[0] < nextSec || (t[0] === nextSec && t[1] < nextNsec)) {
        nextSec = t[0]; nextNsec = t[1];
      }
    }
    if (best < 0) break;
    const nd = attached[best].netdev as PcapNetdev;
    nd.horizonSec = nextSec;
    nd.horizonNsec = nextNsec;
    clock.ms = bestSec * 1000 + bestNsec / 1e6;
    sw.expireRules(clock.ms);
    sw.poll(attached[best], batch);
  }
  // Misses still waiting for an upcall run once the input ends (the daemon runs them when idle).
  while (sw.datapath.queuedMisses > 0) sw.datapath.runQueuedMisses();
  const report: ReplayReport = {
    ports: [], drops: sw.datapath.drops(), perf: perfStats(sw.datapath), cache: dumpCache(sw.datapath),
  };
  for (const a of attached) {
    const nd = a.netdev as PcapNetdev;
    nd.close();
    const s = sw.portStats(a);
    report.ports.push({
      port: a.config.name, ofport: a.config.ofport, rx: s.dpRx, tx: s.dpTx, txDropped: s.dpTxDropped,
      rxDropped: s.rxDrop, rxDropReasons: s.rxDropReasons, rxForwarded: s.dpRxForwarded, file: nd.writtenFile,
    });
  }
  return report;
}

/** The report as a person reads it. */
export function formatReplayReport(r: ReplayReport, withStats: boolean): string {
  const rows = [['port', 'ofport', 'rx', 'tx', 'rx_drop', 'tx_drop', 'output'],
    ...r.ports.map((p) => [p.port, String(p.ofport), String(p.rx), String(p.tx), String(p.rxDropped),
      String(p.txDropped), p.file ?? '-'])];
  const w = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const lines = rows.map((row) => row.map((cell, c) => cell.padEnd(w[c])).join('  ').trimEnd());
  for (const p of r.ports) {
    const e = Object.entries(p.rxDropReasons);
    if (e.length > 0) lines.push(`${p.port} rx drops: ${e.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  }
  const drops = Object.entries(r.drops);
  lines.push('');
  lines.push(drops.length === 0 ? 'drops: none' : `drops: ${drops.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  if (withStats) {
    lines.push('', r.perf.trimEnd(), '', r.cache.trimEnd());
  }
  return lines.join('\n') + '\n';
}
