/**
 * TCP super-frames (TSO/GSO, veth default offloads) cross flowd whole and the byte stream
 * arrives intact (sha256 of 16 MB at both ends), on the three paths a frame can take:
 *   - plain output: the 64 KB frame and its vnet header go through untouched and leave
 *     whole (dump-ports: bytes per packet far above the 1514-byte MTU frame, on rx and tx);
 *   - an address rewrite (mod_nw_dst / mod_nw_src, a stateless "virtual IP"): the partial
 *     TCP checksum is patched in its pseudo-header form, the frame still leaves whole;
 *   - a conntrack flow (ct(commit)): conntrack tracks the super-frame once and it leaves whole
 *     too (issue 16; tx bytes per packet far above 1514).
 *
 *   fz-a: fz-a0 10.72.0.1 ── fz-a1 ┐
 *                                  ├ fz-sw: flowd br0 (fz-a1 = 1, fz-b1 = 2)
 *   fz-b: fz-b0 10.72.0.2 ── fz-b1 ┘      10.72.0.99 = virtual IP of fz-b0 (rewritten by flows)
 *
 * Root, `ip netns`, python3; skipped with the reason otherwise. Prefix fz-.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, FlowdDaemon, labSkipReason, sleepMs } from '../helpers/netlab';

const skip = labSkipReason(['python3']);
const lab = new Lab('fz-');
let d: FlowdDaemon;
let nsA = '';
let nsB = '';
let nsSw = '';
const MB = 16;

const CONFIG = `
node: fz
bridges:
  - name: br0
    ports:
      - { name: fz-a1, ofport: 1 }
      - { name: fz-b1, ofport: 2 }
    flows:
      - "priority=30,in_port=1,ip,nw_dst=10.72.0.99,actions=mod_nw_dst:10.72.0.2,output:2"
      - "priority=30,in_port=2,tcp,nw_src=10.72.0.2,tp_src=5303,actions=mod_nw_src:10.72.0.99,output:1"
      - "priority=20,in_port=1,tcp,tp_dst=5302,actions=ct(commit),output:2"
      - "priority=20,in_port=2,tcp,tp_src=5302,actions=ct(commit),output:1"
      - "priority=10,in_port=1,actions=output:2"
      - "priority=10,in_port=2,actions=output:1"
`;

before(async () => {
  if (skip) return;
  nsA = lab.addNs('a');
  nsB = lab.addNs('b');
  nsSw = lab.addNs('sw');
  lab.veth('a0', nsA, 'a1', nsSw, { ipA: '10.72.0.1/24' });
  lab.veth('b0', nsB, 'b1', nsSw, { ipA: '10.72.0.2/24' });
  // The virtual IP resolves to fz-b0's MAC; flowd rewrites it to 10.72.0.2 and back.
  lab.exec(nsA, 'ip', 'neigh', 'replace', '10.72.0.99', 'lladdr', lab.mac(nsB, 'fz-b0'), 'dev', 'fz-a0', 'nud', 'permanent');
  d = await lab.startFlowd(nsSw, 'fz', CONFIG);
});

after(async () => {
  await lab.cleanup();
});

interface PortRow { port: string; rx_pkts: number; rx_bytes: number; tx_pkts: number; tx_bytes: number; rx_drop: number; tx_drop: number }

async function ports(): Promise<Map<string, PortRow>> {
  const rows = await d.request('dump-ports', { bridge: 'br0', format: 'json' }) as unknown as PortRow[];
  return new Map(rows.map((r) => [r.port, r]));
}

/** Streams MB MiB from fz-a to `dstIp`:`port`; returns [sender, receiver] "bytes sha256". */
async function stream(dstIp: string, port: number): Promise<[string, string]> {
  const rx = lab.runAsync(nsB, 'python3', ['-c', `
import socket,hashlib
l=socket.socket(); l.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); l.bind(('0.0.0.0',${port})); l.listen(1)
l.settimeout(20); c,_=l.accept(); c.settimeout(20); h=hashlib.sha256(); n=0
while True:
  d=c.recv(1<<16)
  if not d: break
  h.update(d); n+=len(d)
c.sendall(b'k'); print(n,h.hexdigest())`], 30000);
  await sleepMs(300); // a head start; the sender also retries a refused connect (a slow python start under load)
  const tx = await lab.runAsync(nsA, 'python3', ['-c', `
import socket,hashlib,time
blk=bytes((i*7+3)&255 for i in range(1<<20)); h=hashlib.sha256()
t=time.time()+20
while True:
  try: s=socket.create_connection(('${dstIp}',${port}),timeout=20); break
  except ConnectionRefusedError:
    if time.time()>t: raise
    time.sleep(0.05)
for i in range(${MB}):
  s.sendall(blk); h.update(blk)
s.shutdown(socket.SHUT_WR); s.recv(1); s.close(); print(${MB}<<20,h.hexdigest())`], 30000);
  const r = await rx;
  assert.equal(tx.status, 0, tx.stderr);
  assert.equal(r.status, 0, r.stderr);
  return [tx.stdout.trim(), r.stdout.trim()];
}

/** Runs one stream and returns bytes per packet on fz-a1 rx and fz-b1 tx during it. */
async function measured(dstIp: string, port: number): Promise<{ rxAvg: number; txAvg: number; sent: string; got: string }> {
  const p0 = await ports();
  const [sent, got] = await stream(dstIp, port);
  await sleepMs(100);
  const p1 = await ports();
  const a0 = p0.get('fz-a1') as PortRow, a1 = p1.get('fz-a1') as PortRow;
  const b0 = p0.get('fz-b1') as PortRow, b1 = p1.get('fz-b1') as PortRow;
  const rxAvg = (a1.rx_bytes - a0.rx_bytes) / Math.max(1, a1.rx_pkts - a0.rx_pkts);
  const txAvg = (b1.tx_bytes - b0.tx_bytes) / Math.max(1, b1.tx_pkts - b0.tx_pkts);
  console.log(`# ${dstIp}:${port}: rx ${a1.rx_pkts - a0.rx_pkts} pkts (${rxAvg.toFixed(0)} B avg) on fz-a1, ` +
    `tx ${b1.tx_pkts - b0.tx_pkts} pkts (${txAvg.toFixed(0)} B avg) on fz-b1, drops ${b1.tx_drop + a1.rx_drop}`);
  assert.equal(b1.tx_drop - b0.tx_drop, 0, 'nothing dropped on output');
  return { rxAvg, txAvg, sent, got };
}

test('a TCP stream crosses flowd as whole super-frames and arrives intact', { skip }, async () => {
  const m = await measured('10.72.0.2', 5301);
  assert.equal(m.got, m.sent, 'receiver got every byte, in order');
  // Super-frames counted whole: far more bytes per packet than a 1514-byte frame.
  assert.ok(m.rxAvg > 3000, `rx bytes per packet ${m.rxAvg}`);
  assert.ok(m.txAvg > 3000, `tx bytes per packet ${m.txAvg}`);
  assert.ok(d.running);
});

test('an address rewrite on super-frames keeps them whole and the stream intact', { skip }, async () => {
  const m = await measured('10.72.0.99', 5303);
  assert.equal(m.got, m.sent, 'receiver got every byte, in order');
  assert.ok(m.txAvg > 3000, `tx bytes per packet ${m.txAvg}`);
});

test('a conntrack flow (ct(commit)) keeps super-frames whole, stream intact', { skip }, async () => {
  const m = await measured('10.72.0.2', 5302);
  assert.equal(m.got, m.sent, 'receiver got every byte, in order');
  assert.ok(m.rxAvg > 3000, `rx bytes per packet ${m.rxAvg} (super-frames arrived whole)`);
  assert.ok(m.txAvg > 3000, `tx bytes per packet ${m.txAvg} (tracked and sent whole)`);
});
