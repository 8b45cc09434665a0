/**
 * The Prometheus endpoint (control/metrics.ts): a switch runs frames, then a real HTTP scrape
 * reads its counters back in the text format, equal to what the datapath and ports hold.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../src/control/config';
import { escapeLabel, formatMetrics, MetricsServer, parseListen } from '../../src/control/metrics';
import { Switch } from '../../src/control/switch';
import { PacketBatch } from '../../src/netdev/batch';
import { Netdev, NetdevStats } from '../../src/netdev/netdev';
import { FlowdError } from '../../src/errors';

/** A netdev that keeps what it is sent and reports fixed receive counters. */
class CountingNetdev implements Netdev {
  readonly kind = 'afpacket';
  nSent = 0;
  constructor(readonly name: string, readonly rxPackets: number) {}
  recv(): number { return 0; }
  send(_b: PacketBatch, count: number): number { this.nSent += count; return count; }
  stats(out: NetdevStats): void { out.rxPackets = this.rxPackets; out.txPackets = this.nSent; }
  close(): void { /* nothing */ }
}

function frame(dstLast: number): Uint8Array {
  const f = new Uint8Array(60);
  f.set([2, 0, 0, 0, 0, dstLast, 2, 0, 0, 0, 0, 1, 0x08, 0x00], 0);
  f.set([0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, dstLast], 14);
  f.set([0x03, 0xe8, 0x07, 0xd0, 0, 26, 0, 0], 34); // UDP 1000 -> 2000, length 26, no checksum
  return f;
}

function makeSwitch(): { sw: Switch; ports: CountingNetdev[]; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-metrics-'));
  fs.writeFileSync(path.join(dir, 'm.flows'), 'priority=10,in_port=p1 actions=output:p2\n');
  fs.writeFileSync(path.join(dir, 'm.yaml'), [
    'node: m', 'bridges:', '  - name: br0', '    ports:', '      - { name: p1, ofport: 1 }', '      - { name: p2, ofport: 2 }',
    '    flows: m.flows', ''].join('\n'));
  const ports: CountingNetdev[] = [];
  const cfg = loadConfig(path.join(dir, 'm.yaml'));
  const sw = new Switch(cfg, { open: (_b, p) => { const n = new CountingNetdev(p.name, 7); ports.push(n); return { netdev: n, tunnel: null }; } },
    { nowMs: Date.now });
  return { sw, ports, dir };
}

function get(port: number, urlPath: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of the sample `name{labels}` in a scrape, or undefined. */
function sample(text: string, nameAndLabels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${nameAndLabels} `));
  return line === undefined ? undefined : Number(line.slice(nameAndLabels.length + 1));
}

test('metrics: a scrape over HTTP shows the port, cache, upcall and drop counters the switch holds', async () => {
  const { sw, dir } = makeSwitch();
  const b = new PacketBatch(8);
  const p1 = sw.port('p1');
  assert.ok(p1 !== undefined);
  for (let k = 0; k < 5; k++) { const i = b.append(frame(2)); b.inPort[i] = p1.dpPort; }
  const bad = b.append(new Uint8Array(10)); // shorter than an Ethernet header
  b.inPort[bad] = p1.dpPort;
  sw.run(b, b.count);
  const srv = new MetricsServer(sw, '127.0.0.1', 0);
  const port = await srv.listen();
  try {
    const r = await get(port, '/metrics');
    assert.equal(r.status, 200);
    assert.equal(r.type, 'text/plain; version=0.0.4; charset=utf-8');
    const t = r.body;
    assert.match(t, /^# HELP flowd_port_rx_packets_total .+\n# TYPE flowd_port_rx_packets_total counter\n/);
    assert.equal(sample(t, 'flowd_port_rx_packets_total{bridge="br0",port="p1"}'), 7);
    assert.equal(sample(t, 'flowd_port_tx_packets_total{bridge="br0",port="p2"}'), 5);
    assert.equal(sample(t, 'flowd_port_datapath_rx_packets_total{bridge="br0",port="p1"}'), 6);
    assert.equal(sample(t, 'flowd_datapath_packets_total'), 6);
    assert.equal(sample(t, 'flowd_upcalls_total'), sw.datapath.nUpcalls);
    assert.equal(sample(t, 'flowd_cache_hits_total{level="megaflow"}') as number + (sample(t, 'flowd_cache_hits_total{level="emc"}') as number), 4);
    assert.equal(sample(t, 'flowd_upcalls_lost_total'), 0);
    assert.equal(sample(t, 'flowd_drops_total{reason="truncated_eth"}'), 1);
    assert.equal(sample(t, 'flowd_megaflows'), 1);
    // Every sample line is NAME{labels} VALUE with a numeric value; every family has HELP and TYPE.
    for (const l of t.trimEnd().split('\n')) {
      if (l.startsWith('#')) continue;
      assert.match(l, /^flowd_[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? \d+(\.\d+)?$/, l);
    }
    const names = new Set(t.split('\n').filter((l) => !l.startsWith('#') && l !== '').map((l) => /^[a-z_]+/.exec(l)?.[0]));
    for (const n of names) assert.match(t, new RegExp(`# TYPE ${n} (counter|gauge)\\n`), String(n));
    assert.equal(srv.nScrapes, 1);
    assert.equal((await get(port, '/nope')).status, 404);
    assert.equal((await get(port, '/metrics', 'POST')).status, 405);
    assert.equal(formatMetrics(sw), (await get(port, '/')).body);
  } finally {
    await srv.close();
    sw.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('metrics: label values are escaped as the text format wants', () => {
  assert.equal(escapeLabel('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
});

test('--metrics-listen takes HOST:PORT and names itself when it is wrong', () => {
  assert.deepEqual(parseListen('127.0.0.1:9477'), { host: '127.0.0.1', port: 9477 });
  assert.deepEqual(parseListen('localhost:0'), { host: 'localhost', port: 0 });
  for (const bad of ['9477', '127.0.0.1:', '127.0.0.1:70000', ':x']) {
    assert.throws(() => parseListen(bad), (e: unknown) => e instanceof FlowdError && /--metrics-listen: expected HOST:PORT/.test(e.message), bad);
  }
});
