/**
 * Conntrack sync between two nodes' conntrack tables over real UDP on loopback
 * (control/ha-ct-sync.ts + dpif/conntrack.ts journal/import + dpif/ct-sync.ts): router R of
 * examples/topologies/ha.yaml with NN1 at 127.0.0.1 and NN2 at 127.0.0.2. NN1 (master)
 * SNATs a TCP connection whose source port is taken, so its external port is remapped; after
 * the roles swap, NN2 translates the next segment to the same external port and de-NATs the
 * reply as established; without the sync it picks another port (the test can fail). Deletes
 * reach the backup; `ha status` shows the stream; malformed or foreign datagrams are counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Conntrack, CtNatRange, CS_ESTABLISHED, CS_REPLY_DIR, CS_TRACKED } from '../../src/dpif/conntrack';
import { HaCtSync } from '../../src/control/ha-ct-sync';
import { parseTopology } from '../../src/dvr/topology';
import { routerZones } from '../../src/dvr/ns-plan';
import { buildTcp4Frame } from '../../src/packet/tcp';
import { ipv4FromString } from '../../src/packet/ipv4';

const HA = path.resolve(__dirname, '../../../examples/topologies/ha.yaml');
const topo = parseTopology('ha.yaml', fs.readFileSync(HA, 'utf8')
  .replace('local_ip: 192.168.100.13', 'local_ip: 127.0.0.1').replace('local_ip: 192.168.100.14', 'local_ip: 127.0.0.2'));
const ZONE = routerZones(topo).get('R')!;
const GW = ipv4FromString('203.0.113.10');
const SNAT: CtNatRange = { kind: 'src', ipMin: GW, ipMax: GW, portMin: 0, portMax: 0 };
const SYN = 0x02, ACK = 0x10, PSH = 0x08;

function seg(src: string, dst: string, sport: number, dport: number, flags: number): Uint8Array {
  return buildTcp4Frame({ src, dst, sport, dport, flags, seq: 1, ack: 1, payload: new Uint8Array(4) });
}
/** Out through SNAT (table 45's ct(commit,zone,nat(src=gw))): the frame's source port after NAT. */
function out(ct: Conntrack, src: string, sport: number, flags: number, nowMs: number): { state: number; sport: number } {
  const b = seg(src, '203.0.113.1', sport, 80, flags);
  const state = ct.execute(b, 0, b.length, ZONE, true, SNAT, 0, 0, nowMs);
  return { state, sport: (b[34] << 8) | b[35] };
}
/** Back in (table 50's ct(zone,nat)): state and the de-NATed destination. */
function back(ct: Conntrack, dport: number, flags: number, nowMs: number): { state: number; dst: string; dport: number } {
  const b = seg('203.0.113.1', '203.0.113.10', 80, dport, flags);
  const NAT: CtNatRange = { kind: 'none', ipMin: 0, ipMax: 0, portMin: 0, portMax: 0 };
  const state = ct.execute(b, 0, b.length, ZONE, false, NAT, 0, 0, nowMs);
  return { state, dst: `${b[30]}.${b[31]}.${b[32]}.${b[33]}`, dport: (b[36] << 8) | b[37] };
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function until(what: string, f: () => boolean, ms = 3000): Promise<void> {
  const t0 = Date.now();
  while (!f()) {
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

test('the master streams SNAT connections to the backup; after the roles swap the backup keeps the external port', async () => {
  const port = 30000 + (process.pid % 20000);
  const ct1 = new Conntrack(), ct2 = new Conntrack();
  const nn1 = new HaCtSync({ node: 'NN1', conntrack: () => ct1, port, tickMs: 10 });
  const nn2 = new HaCtSync({ node: 'NN2', conntrack: () => ct2, port, tickMs: 10 });
  try {
    nn1.update(topo, new Set(['R']));
    nn2.update(topo, new Set());
    await sleep(50);
    const now = Date.now();
    // 10.0.2.30:40000 takes 203.0.113.10:40000, so 10.0.2.20:40000 is remapped.
    assert.equal(out(ct1, '10.0.2.30', 40000, SYN, now).sport, 40000);
    const first = out(ct1, '10.0.2.20', 40000, SYN, now);
    const ext = first.sport;
    assert.notEqual(ext, 40000);
    assert.equal(back(ct1, ext, SYN | ACK, now).dst, '10.0.2.20');
    out(ct1, '10.0.2.20', 40000, ACK, now);
    await until('both connections on NN2', () => ct2.zoneConnections(ZONE) === 2);
    const line = ct2.list(ZONE).find((l) => l.includes('src=10.0.2.20'))!;
    assert.match(line, new RegExp(`reply=\\(src=203\\.0\\.113\\.1,dst=203\\.0\\.113\\.10,sport=80,dport=${ext}\\).*state=ESTABLISHED`));
    const st2 = nn2.status()[0];
    assert.equal(st2.role, 'receiving');
    assert.equal(st2.peers[0].node, 'NN1');
    assert.equal(st2.peers[0].missing, 0);
    assert.equal(nn1.status()[0].role, 'sending');

    // Failover: NN2 becomes master, NN1 backup.
    nn2.update(topo, new Set(['R']));
    nn1.update(topo, new Set());
    const t = Date.now();
    const o = out(ct2, '10.0.2.20', 40000, ACK | PSH, t);
    assert.equal(o.sport, ext, 'the same external port after the failover');
    const r = back(ct2, ext, ACK, t);
    assert.equal(r.state & (CS_TRACKED | CS_ESTABLISHED | CS_REPLY_DIR), CS_TRACKED | CS_ESTABLISHED | CS_REPLY_DIR);
    assert.deepEqual([r.dst, r.dport], ['10.0.2.20', 40000]);
    // NN1, now backup, flushed its zone and gets NN2's table by NN2's first refresh round.
    await until('NN2 table on NN1', () => ct1.zoneConnections(ZONE) === 2);

    // Without the sync a new master has no entry: it keeps the inside port, a different 5-tuple.
    const fresh = new Conntrack();
    assert.notEqual(out(fresh, '10.0.2.20', 40000, ACK | PSH, t).sport, ext);

    // Deletes: NN2 (master) drops the connections; NN1 follows.
    ct2.flush(ZONE);
    await until('deletes on NN1', () => ct1.zoneConnections(ZONE) === 0);
    assert.equal(ct1.stats().sync_imported >= 2, true);
  } finally {
    nn1.close();
    nn2.close();
  }
});

test('datagrams from an address that is no l3 agent of the router, or for no known stream, are dropped and counted', async () => {
  const port = 30000 + ((process.pid + 7) % 20000);
  const ct2 = new Conntrack();
  const nn2 = new HaCtSync({ node: 'NN2', conntrack: () => ct2, port, tickMs: 10 });
  const s = dgram.createSocket('udp4');
  try {
    nn2.update(topo, new Set());
    await sleep(50);
    const hdr = (stream: number): Buffer => Buffer.from([0x46, 0x53, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, stream >> 8, stream & 0xff]);
    await new Promise<void>((r) => s.bind(0, '127.0.0.3', () => r()));
    s.send(hdr(ZONE), port, '127.0.0.2');
    s.send(hdr(ZONE ^ 1), port, '127.0.0.2');
    await until('two drops', () => (nn2.drops().get('not_a_peer') ?? 0) === 1 && (nn2.drops().get('unknown_stream') ?? 0) === 1);
    assert.equal(ct2.zoneConnections(ZONE), 0);
  } finally {
    s.close();
    nn2.close();
  }
});
