/**
 * The switch's counters in the Prometheus text exposition format (version 0.0.4), served over
 * HTTP by `flowd --metrics-listen HOST:PORT` for the tools operators already run.
 *
 * Called by: control/daemon.ts (MetricsServer, one per daemon) and the metrics tests. A scrape reads
 * counters the datapath keeps anyway; it runs between batches on the event loop like a control
 * command, allocates only its reply, and never touches the datapath's state.
 *
 * Names follow Prometheus practice: `flowd_` prefix, `_total` for counters, base units (bytes),
 * one metric per meaning with labels for the port, bridge, cache level, drop reason or zone.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { FlowdError } from '../errors';
import type { Switch } from './switch';

type Labels = Readonly<Record<string, string | number>>;

/** One metric family: its samples as [labels, value]. */
export interface MetricFamily {
  readonly name: string;
  readonly type: 'counter' | 'gauge';
  readonly help: string;
  readonly samples: (readonly [Labels, number])[];
}

/** A label value as the text format wants it: backslash, double quote and newline escaped. */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatFamily(f: MetricFamily): string {
  let out = `# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${f.type}\n`;
  for (const [labels, value] of f.samples) {
    const keys = Object.keys(labels);
    const l = keys.length === 0 ? '' : `{${keys.map((k) => `${k}="${escapeLabel(String(labels[k]))}"`).join(',')}}`;
    out += `${f.name}${l} ${Number.isFinite(value) ? value : 0}\n`;
  }
  return out;
}

/** Every family of `sw`'s counters, in a stable order. */
export function collectMetrics(sw: Switch): MetricFamily[] {
  const dp = sw.datapath;
  const port = (name: string, type: MetricFamily['type'], help: string): MetricFamily => ({ name, type, help, samples: [] });
  const rxPackets = port('flowd_port_rx_packets_total', 'counter', 'Frames received on the port (netdev).');
  const rxBytes = port('flowd_port_rx_bytes_total', 'counter', 'Bytes received on the port (netdev).');
  const txPackets = port('flowd_port_tx_packets_total', 'counter', 'Frames sent on the port (netdev).');
  const txBytes = port('flowd_port_tx_bytes_total', 'counter', 'Bytes sent on the port (netdev).');
  const rxDropped = port('flowd_port_rx_dropped_total', 'counter', 'Frames the port dropped on receive.');
  const txDropped = port('flowd_port_tx_dropped_total', 'counter', 'Frames the port could not send (netdev and datapath).');
  const rxErrors = port('flowd_port_rx_errors_total', 'counter', 'Receive errors on the port.');
  const dpRx = port('flowd_port_datapath_rx_packets_total', 'counter', 'Frames of the port that entered the datapath.');
  const dpFwd = port('flowd_port_datapath_rx_forwarded_total', 'counter', 'Frames of the port the datapath sent on.');
  const dpDrop = port('flowd_port_datapath_rx_dropped_total', 'counter', 'Frames of the port the datapath dropped, by reason.');
  for (const a of [...sw.attached.values()].sort((x, y) => x.dpPort - y.dpPort)) {
    const s = sw.portStats(a);
    const l = { bridge: a.bridge, port: a.config.name };
    rxPackets.samples.push([l, s.netdev.rxPackets]);
    rxBytes.samples.push([l, s.netdev.rxBytes]);
    txPackets.samples.push([l, s.netdev.txPackets]);
    txBytes.samples.push([l, s.netdev.txBytes]);
    rxDropped.samples.push([l, s.netdev.rxDropped]);
    txDropped.samples.push([l, s.netdev.txDropped + s.dpTxDropped]);
    rxErrors.samples.push([l, s.netdev.rxErrors]);
    dpRx.samples.push([l, s.dpRx]);
    dpFwd.samples.push([l, s.dpRxForwarded]);
    for (const [reason, v] of Object.entries(s.dpRxDrops)) dpDrop.samples.push([{ ...l, reason }, v]);
  }
  const drops = dp.drops();
  const ct = sw.datapath.conntrackIfAny();
  const families: MetricFamily[] = [
    rxPackets, rxBytes, txPackets, txBytes, rxDropped, txDropped, rxErrors, dpRx, dpFwd, dpDrop,
    { name: 'flowd_datapath_packets_total', type: 'counter', help: 'Frames the datapath received.', samples: [[{}, dp.nPackets]] },
    { name: 'flowd_datapath_batches_total', type: 'counter', help: 'Batches the datapath ran.', samples: [[{}, dp.nBatches]] },
    {
      name: 'flowd_cache_hits_total', type: 'counter', help: 'Lookups answered by each cache level.',
      samples: [[{ level: 'emc' }, dp.nEmcHits], [{ level: 'megaflow' }, dp.nMegaflowHits]],
    },
    { name: 'flowd_upcalls_total', type: 'counter', help: 'Misses translated by the slow path.', samples: [[{}, dp.nUpcalls]] },
    {
      name: 'flowd_upcalls_queued_total', type: 'counter',
      help: 'Misses over the per-batch upcall budget that waited for a later pass.', samples: [[{}, dp.nQueuedMisses]],
    },
    {
      name: 'flowd_upcalls_lost_total', type: 'counter',
      help: 'Misses dropped because the miss queue was full.', samples: [[{}, dp.nLostUpcalls]],
    },
    {
      name: 'flowd_drops_total', type: 'counter', help: 'Frames the datapath dropped, by reason.',
      samples: Object.keys(drops).sort().map((r) => [{ reason: r }, drops[r]] as const),
    },
    { name: 'flowd_megaflows', type: 'gauge', help: 'Megaflows in the cache.', samples: [[{}, dp.megaflows.nFlows]] },
    {
      name: 'flowd_conntrack_connections', type: 'gauge', help: 'Tracked connections, per conntrack zone.',
      samples: ct === null ? [] : ct.zonesInUse().map((z) => [{ zone: z }, ct.zoneConnections(z)] as const),
    },
  ];
  return families;
}

/** The text a scrape returns. */
export function formatMetrics(sw: Switch, extra?: () => MetricFamily[]): string {
  return [...collectMetrics(sw), ...(extra?.() ?? [])].map(formatFamily).join('');
}

/** Parses `HOST:PORT` (an IPv4 or name host; port 0..65535) or throws naming the option. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(text);
  const port = m === null ? -1 : Number(m[2]);
  if (m === null || port > 65535) {
    throw new FlowdError('E_USAGE', `--metrics-listen: expected HOST:PORT (e.g. 127.0.0.1:9477), got "${text}"`);
  }
  return { host: m[1], port };
}

/** GET /metrics (or /) answers the text; anything else is 404, other methods 405. */
export class MetricsServer {
  private readonly server: http.Server;
  nScrapes = 0;

  /** `extra`: families of parts beside the switch (the HA routers' states: control/ha-commands.ts). */
  constructor(private readonly sw: Switch, readonly host: string, readonly port: number,
              private readonly extra?: () => MetricFamily[]) {
    this.server = http.createServer((req, res) => {
      const url = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' }).end();
        return;
      }
      if (url !== '/metrics' && url !== '/') {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: try /metrics\n');
        return;
      }
      this.nScrapes++;
      const body = formatMetrics(this.sw, this.extra);
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  }

  /** Starts listening; resolves with the bound port (useful with port 0). */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, this.host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
