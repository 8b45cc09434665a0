/**
 * GRE between two flowd daemons: two node namespaces joined by an underlay veth, each with a VM
 * namespace behind a veth. Key 1002 is set by flow and matched on the way in. The first ping over
 * the fresh tunnel is answered (both underlay neighbour tables empty), then a longer ping, and
 * the underlay capture shows GRE with the key bit, key 1002 and protocol 0x6558 (transparent
 * Ethernet bridging).
 *
 *   fg-v1: fg-a0 10.74.0.1 ── fg-a1 ┐ fg-n1: flowd n1   fg-u1 10.74.1.1 ──┐
 *                                                                         │ underlay
 *   fg-v2: fg-b0 10.74.0.2 ── fg-b1 ┘ fg-n2: flowd n2   fg-u2 10.74.1.2 ──┘
 *
 * Root, `ip netns`, tcpdump and tshark; skipped with the reason otherwise. Prefix fg-.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ChildProcess } from 'node:child_process';
import { Lab, FlowdDaemon, labSkipReason, parsePing, sleepMs, sh } from '../helpers/netlab';
import { waitForText } from '../helpers/wait';

const skip = labSkipReason(['ping', 'tcpdump', 'tshark']);
const lab = new Lab('fg-');
const daemons: FlowdDaemon[] = [];
let nsV1 = '';
let nsV2 = '';
let nsN1 = '';
let nsN2 = '';
let cap: ChildProcess;
let capFile = '';

function config(node: string, vm: string, local: string, remote: string): string {
  return `
node: ${node}
bridges:
  - name: br0
    ports:
      - { name: ${vm}, ofport: 1 }
      - { name: fg-gre, ofport: 2, type: gre, remote_ip: ${remote}, local_ip: ${local}, key: flow }
    flows:
      - "priority=10,in_port=1,actions=set_tunnel:1002,output:2"
      - "priority=10,in_port=2,tun_id=1002,actions=output:1"
`;
}

before(async () => {
  if (skip) return;
  nsV1 = lab.addNs('v1');
  nsV2 = lab.addNs('v2');
  nsN1 = lab.addNs('n1');
  nsN2 = lab.addNs('n2');
  lab.veth('a0', nsV1, 'a1', nsN1, { ipA: '10.74.0.1/24' });
  lab.veth('b0', nsV2, 'b1', nsN2, { ipA: '10.74.0.2/24' });
  lab.veth('u1', nsN1, 'u2', nsN2, { ipA: '10.74.1.1/24', ipB: '10.74.1.2/24' });
  for (const ns of [nsV1, nsV2, nsN1, nsN2]) lab.exec(ns, 'ip', 'neigh', 'flush', 'all');
  capFile = path.join(lab.dir, 'underlay.pcap');
  cap = lab.spawnIn(nsN2, 'tcpdump', ['-i', 'fg-u2', '-n', '-U', '--immediate-mode', '-w', capFile, 'ip proto 47'],
    path.join(lab.dir, 'tcpdump.log'));
  daemons.push(await lab.startFlowd(nsN1, 'n1', config('n1', 'fg-a1', '10.74.1.1', '10.74.1.2')));
  daemons.push(await lab.startFlowd(nsN2, 'n2', config('n2', 'fg-b1', '10.74.1.2', '10.74.1.1')));
  await waitForText('tcpdump capturing on fg-u2', path.join(lab.dir, 'tcpdump.log'), 'listening on');
});

after(async () => {
  await lab.cleanup();
});

test('the first ping over a fresh GRE tunnel between two flowd daemons is answered', { skip }, () => {
  const r = lab.run(nsV1, 'ping', '-c', '1', '-W', '2', '10.74.0.2');
  assert.equal(r.status, 0, `first ping lost:\n${r.stdout}${r.stderr}\n${daemons[0].log()}\n${daemons[1].log()}`);
});

test('ping both ways between VMs behind two flowd daemons over GRE key 1002', { skip }, () => {
  for (const [ns, dst] of [[nsV1, '10.74.0.2'], [nsV2, '10.74.0.1']]) {
    // -w: wait for every reply (a busy machine may send the last one later than -W's 2 x RTT), at most the deadline.
    const r = lab.run(ns, 'ping', '-c', '10', '-i', '0.05', '-w', '30', dst);
    const p = parsePing(r.stdout);
    console.log(`gre ping ${ns} -> ${dst}: ${p.received}/${p.sent}, avg RTT ${p.avgRttMs} ms`);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(p.lossPct, 0);
  }
});

test('on the wire: GRE with key 1002 and protocol 0x6558 both ways', { skip }, async () => {
  await sleepMs(300);
  await lab.stopChild(cap, 'SIGINT');
  const out = sh('tshark', '-r', capFile, '-T', 'fields', '-E', 'separator=,', '-E', 'occurrence=f',
    '-e', 'ip.src', '-e', 'gre.flags_and_version', '-e', 'gre.proto', '-e', 'gre.key');
  const rows = out.trim().split('\n').filter((l) => l !== '').map((l) => l.split(','));
  const bySrc = new Map<string, number>();
  for (const [src, flags, proto, key] of rows) {
    assert.equal(Number(flags) & 0x2000, 0x2000, `K bit set in ${flags}`);
    assert.equal(Number(proto), 0x6558, `protocol ${proto}`);
    assert.equal(Number(key), 1002, `key ${key}`);
    bySrc.set(src, (bySrc.get(src) ?? 0) + 1);
  }
  console.log(`gre on the wire: ${JSON.stringify([...bySrc])}`);
  assert.ok((bySrc.get('10.74.1.1') ?? 0) >= 20 && (bySrc.get('10.74.1.2') ?? 0) >= 20, JSON.stringify([...bySrc]));
  for (const d of daemons) assert.ok(d.running);
});

test('a too-big DF packet over GRE gets ICMP fragmentation needed with next-hop MTU 1458', { skip }, () => {
  // 1472 + 28 = 1500 bytes of IPv4; GRE with a key adds 42 (outer IPv4 20, GRE 8, inner Ethernet 14).
  const big = lab.run(nsV1, 'ping', '-M', 'do', '-s', '1472', '-c', '1', '-W', '2', '10.74.0.2');
  assert.notEqual(big.status, 0);
  assert.match(big.stdout + big.stderr, /Frag needed and DF set \(mtu = 1458\)/, big.stdout + big.stderr);
  const fits = lab.run(nsV1, 'ping', '-M', 'do', '-s', '1430', '-c', '1', '-W', '2', '10.74.0.2');
  assert.equal(fits.status, 0, fits.stdout);
});
