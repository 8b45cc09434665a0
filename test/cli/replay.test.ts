import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { replay } from '../../src/cli/replay';
import { readPcap, PcapWriter } from '../../src/netdev/pcap-file';
import { buildUdp4Frame } from '../../src/packet/udp';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const FLOWD = path.join(ROOT, 'dist', 'src', 'cli', 'flowd.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-replay-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, text);
  return f;
}

test('a replay through a one-rule bridge is byte-identical on the output port', async () => {
  const cfg = write('one.yaml', `bridges:
  - name: br0
    ports: [ { name: a, ofport: 1 }, { name: b, ofport: 2 } ]
    flows: ["in_port=1,actions=output:2"]
`);
  const input = path.join(tmp, 'a-in.pcap');
  const w = new PcapWriter(input);
  const frames: Uint8Array[] = [];
  for (let i = 0; i < 300; i++) {
    const f = buildUdp4Frame({ src: '10.1.0.1', dst: '10.1.0.2', sport: 1000 + (i % 7), dport: 2000,
      payload: new Uint8Array(i % 50).fill(i & 0xff) });
    frames.push(f);
    w.write(f, 1700000000 + Math.floor(i / 10), (i % 10) * 1000000);
  }
  w.close();
  const out = path.join(tmp, 'out1');
  const r = await replay({ config: cfg, inputs: [`a=${input}`], outDir: out, stats: false });
  assert.deepEqual(r.ports.map((p) => [p.port, p.rx, p.tx]), [['a', 300, 0], ['b', 0, 300]]);
  const got = await readPcap(path.join(out, 'b.pcap'));
  assert.equal(got.records.length, 300);
  for (let i = 0; i < 300; i++) assert.deepEqual(Buffer.from(got.records[i].data), Buffer.from(frames[i]));
  assert.equal(fs.existsSync(path.join(out, 'a.pcap')), false);
});

test('jumbo frames (9000 bytes) replay whole; every port reports its receive drops by reason', async () => {
  const cfg = write('jumbo.yaml', `bridges:
  - name: br0
    ports: [ { name: a, ofport: 1 }, { name: b, ofport: 2 } ]
    flows: ["in_port=1,actions=output:2"]
`);
  const input = path.join(tmp, 'jumbo-in.pcap');
  const w = new PcapWriter(input);
  const jumbo = buildUdp4Frame({ src: '10.1.0.1', dst: '10.1.0.2', sport: 1000, dport: 2000, payload: new Uint8Array(9000 - 42).fill(7) });
  w.write(jumbo, 1700000000, 0);
  w.write(buildUdp4Frame({ src: '10.1.0.1', dst: '10.1.0.2', sport: 1000, dport: 2000, payload: new Uint8Array(10) }), 1700000000, 1000);
  w.close();
  const out = path.join(tmp, 'jumbo');
  const r = await replay({ config: cfg, inputs: [`a=${input}`], outDir: out, stats: false });
  assert.deepEqual(r.ports.map((p) => [p.port, p.rx, p.tx, p.rxDropped, p.rxDropReasons]), [['a', 2, 0, 0, {}], ['b', 0, 2, 0, {}]]);
  const got = await readPcap(path.join(out, 'b.pcap'));
  assert.deepEqual(got.records.map((x) => x.data.length), [9000, 52]);
  assert.deepEqual(Buffer.from(got.records[0].data), Buffer.from(jumbo));
});

test('a corpus of cut and malformed frames: on every port rx = forwarded + dropped, each drop under a reason that adds up', async () => {
  const cfg = write('corpus.yaml', `bridges:
  - name: br0
    ports: [ { name: a, ofport: 1 }, { name: b, ofport: 2 }, { name: c, ofport: 3 } ]
    flows: ["priority=40000,in_port=1,udp,tp_dst=9,actions=drop", "in_port=1,actions=output:2", "in_port=2,actions=output:1",
            "in_port=3,ip,actions=dec_ttl,output:1"]
`);
  const good = (dport: number, ttl = 64): Uint8Array => {
    const f = buildUdp4Frame({ src: '10.1.0.1', dst: '10.1.0.2', sport: 1000, dport, payload: new Uint8Array(20) });
    f[22] = ttl;
    return f;
  };
  // The expected end of each frame, by port: what the replay report must add up to.
  const corpus: [string, Uint8Array, string][] = [
    ['a', good(53), 'forwarded'],
    ['a', good(9), 'action_pipeline'],                           // the drop flow
    ['a', good(53).subarray(0, 20), 'truncated_ipv4'],          // cut inside the IPv4 header
    ['a', (() => { const f = good(53); f[14] = 0x43; return f; })(), 'bad_ihl'],
    ['a', (() => { const f = good(53); f[14] = 0x65; return f; })(), 'bad_ipv4_version'],
    ['b', good(53), 'forwarded'],
    ['b', good(53).subarray(0, 38), 'bad_ipv4_total_length'],   // cut, the IPv4 length says more
    ['c', good(53, 1), 'action_ttl_exceeded'],
    ['c', good(53, 9), 'forwarded'],
    // No flow of ours: the bridge's default priority-0 NORMAL (as OVS's) floods it.
    ['c', Uint8Array.from([...good(53).subarray(0, 12), 0x88, 0xb5, 1, 2, 3, 4]), 'forwarded'],
    ['c', good(53).subarray(0, 13), 'truncated_eth'],
  ];
  const inputs: string[] = [];
  for (const port of ['a', 'b', 'c']) {
    const file = path.join(tmp, `corpus-${port}.pcap`);
    const w = new PcapWriter(file);
    corpus.filter(([p]) => p === port).forEach(([, f], k) => w.write(f, 1700000000, k * 1000));
    w.close();
    inputs.push(`${port}=${file}`);
  }
  const r = await replay({ config: cfg, inputs, outDir: path.join(tmp, 'corpus'), stats: false });
  for (const port of ['a', 'b', 'c']) {
    const mine = corpus.filter(([p]) => p === port);
    const want: Record<string, number> = {};
    for (const [, , end] of mine) if (end !== 'forwarded') want[end] = (want[end] ?? 0) + 1;
    const row = r.ports.find((p) => p.port === port)!;
    assert.equal(row.rx, mine.length, `${port}: rx`);
    assert.equal(row.rxForwarded, mine.filter(([, , e]) => e === 'forwarded').length, `${port}: forwarded`);
    assert.deepEqual(row.rxDropReasons, want, `${port}: drops by reason`);
    assert.equal(row.rxDropped, Object.values(want).reduce((x, y) => x + y, 0), `${port}: rx_drop`);
    assert.equal(row.rx, row.rxForwarded + row.rxDropped, `${port}: rx = forwarded + dropped`);
  }
});

test('the shipped demo: NORMAL learns, rules steer and drop, a cut frame is counted', async () => {
  const d = path.join(ROOT, 'examples', 'demo');
  const out = path.join(tmp, 'demo');
  const r = await replay({ config: path.join(d, 'demo.yaml'),
    inputs: [`vm1=${path.join(d, 'vm1-in.pcap')}`, `vm2=${path.join(d, 'vm2-in.pcap')}`], outDir: out, stats: false });
  assert.deepEqual(r.ports.map((p) => [p.port, p.rx, p.tx]), [['vm1', 5, 2], ['vm2', 2, 2], ['vm3', 0, 2]]);
  assert.equal(r.drops.truncated_ipv4, 1);
  const vm1In = await readPcap(path.join(d, 'vm1-in.pcap'));
  const vm2In = await readPcap(path.join(d, 'vm2-in.pcap'));
  const vm3 = await readPcap(path.join(out, 'vm3.pcap'));
  // The ARP broadcast is flooded (vm3 gets it), then vm1's TCP to port 80, unchanged.
  assert.deepEqual(Buffer.from(vm3.records[0].data), Buffer.from(vm1In.records[0].data));
  assert.deepEqual(Buffer.from(vm3.records[1].data), Buffer.from(vm1In.records[2].data));
  const vm1 = await readPcap(path.join(out, 'vm1.pcap'));
  assert.deepEqual(vm1.records.map((x) => Buffer.from(x.data)), vm2In.records.map((x) => Buffer.from(x.data)));
});

test('flowd replay rejects a pcapng input with a clear error and exit code 2', () => {
  const ng = path.join(tmp, 'x.pcapng');
  fs.writeFileSync(ng, Buffer.from('0a0d0d0a1c0000004d3c2b1a01000000ffffffffffffffff1c000000', 'hex'));
  const r = spawnSync(process.execPath, [FLOWD, 'replay', '--config', path.join(ROOT, 'examples/demo/demo.yaml'),
    '--in', `vm1=${ng}`, '--out-dir', path.join(tmp, 'ng')], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /x\.pcapng: is a pcapng file; flowd reads classic pcap only/);
});

test('a bad flow in the config names the file and line', () => {
  const flows = write('bad.flows', '# comment\npriority=1,in_port=1 actions=output:2\npriority=1,nw_srcx=1 actions=drop\n');
  const cfg = write('bad.yaml', `bridges:\n  - name: br0\n    ports: [ { name: a, ofport: 1 } ]\n    flows: ${path.basename(flows)}\n`);
  const r = spawnSync(process.execPath, [FLOWD, 'replay', '--config', cfg, '--out-dir', path.join(tmp, 'bad')], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, new RegExp(`${flows.replace(/[.]/g, '\\.')}:3: .*nw_srcx`));
});

test('flowd trace prints the pipeline offline', () => {
  const out = execFileSync(process.execPath, [FLOWD, 'trace', '--config', path.join(ROOT, 'examples/demo/demo.yaml'),
    'br0', 'in_port=1,tcp,nw_dst=10.0.0.3,tp_dst=80'], { encoding: 'utf8' });
  assert.match(out, /^Bridge: br0\nFlow: /);
  assert.match(out, /priority 200/);
  assert.match(out, /Datapath actions: 3/);
});
