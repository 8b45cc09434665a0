/**
 * A translation that runs a learn action is cached like any other (as OVS caches it): Neutron's
 * br-tun learns from every frame that arrives over a tunnel (table 10), so without a megaflow
 * every such frame was an upcall. A cached hit learns again (ofproto/upcall.ts refresh): the
 * learned flow's hard timeout restarts with each packet, and a learned flow that was deleted
 * or expired comes back with the next packet, as each packet's own translation would do.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datapath } from '../../src/dpif/datapath';
import { PacketBatch } from '../../src/netdev/batch';
import { Bridge } from '../../src/ofproto/bridge';
import { Ofproto } from '../../src/ofproto/ofproto';
import { BridgeView } from '../../src/ofproto/bridge-view';
import { OfprotoUpcaller } from '../../src/ofproto/upcall';
import { buildIcmp4EchoFrame } from '../../src/packet/icmp';
import { MemNetdev } from './helpers';

const LEARN = 'learn(table=20,hard_timeout=5,priority=1,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[])';

function world(clock: { now: number }): { br: Bridge; dp: Datapath; up: OfprotoUpcaller; inPort: number; out: MemNetdev } {
  const br = new Bridge('br-tun', 0, { defaultFlow: false });
  br.addPort({ name: 'p1', ofport: 1, kind: 'afpacket' });
  br.addPort({ name: 'p2', ofport: 2, kind: 'afpacket' });
  br.addFlows(`table=0,in_port=1,actions=${LEARN},output:2\n`, clock.now);
  const ofp = new Ofproto();
  ofp.addBridge(new BridgeView(br));
  let dp: Datapath | null = null;
  const up = new OfprotoUpcaller(ofp, () => clock.now, () => dp?.destinationsChanged());
  dp = new Datapath({ upcaller: up, nowMs: () => clock.now });
  let out: MemNetdev | null = null;
  for (const info of ofp.dpPorts()) {
    const nd = new MemNetdev(info.port.name);
    if (info.port.name === 'p2') out = nd;
    dp.addPort(info.dpPort, nd, null);
  }
  br.onRulesChanged(() => dp?.rulesChanged());
  const inPort = ofp.dpPort(ofp.bridges.get('br-tun')!, 1);
  return { br, dp, up, inPort, out: out! };
}

function send(w: ReturnType<typeof world>, n: number, seq0: number): void {
  const b = new PacketBatch(64);
  for (let k = 0; k < n; k++) {
    const i = b.append(buildIcmp4EchoFrame({ ethSrc: 'fa:16:3e:00:00:0b', ethDst: 'fa:16:3e:00:02:20', src: '10.0.2.1',
      dst: '10.0.2.20', echoId: 7, echoSeq: seq0 + k }));
    b.inPort[i] = w.inPort;
  }
  w.dp.processBatch(b, b.count);
}

function learned(br: Bridge): string[] {
  return br.allRules().filter((r) => r.tableId === 20).map((r) => `modified=${r.modifiedMs}`);
}

test('frames through a learn action take one upcall, then hit the megaflow and learn again', () => {
  const clock = { now: 1000 };
  const w = world(clock);
  send(w, 10, 0);
  assert.equal(w.dp.nUpcalls, 1);
  assert.equal(w.dp.nUncached, 0);
  assert.equal(w.out.sent.length, 10);
  assert.deepEqual(learned(w.br), ['modified=1000']);
  // A hit 4 s later (the megaflow is still live) restarts the learned flow's 5 s hard timeout,
  // as the packet's own translation would: at 9 s it has not expired, at 10 s it has.
  clock.now = 5000;
  send(w, 5, 10);
  assert.equal(w.dp.nUpcalls, 1);
  assert.equal(w.out.sent.length, 15);
  assert.deepEqual(learned(w.br), ['modified=5000']);
  assert.deepEqual(w.br.expire(9000).map((r) => r.tableId), []);
  assert.deepEqual(w.br.expire(10_000).map((r) => r.tableId), [20]);
});

test('a learned flow deleted (or expired) comes back with the next cached hit', () => {
  const clock = { now: 1000 };
  const w = world(clock);
  send(w, 3, 0);
  w.br.delFlows('table=20', false);
  assert.deepEqual(learned(w.br), []);
  clock.now = 2000;
  send(w, 2, 3);
  assert.deepEqual(learned(w.br), ['modified=2000']);
  clock.now = 7000;
  assert.deepEqual(w.br.expire(clock.now).map((r) => r.tableId), [20]);
  send(w, 1, 5);
  assert.deepEqual(learned(w.br), [`modified=${clock.now}`]);
  assert.equal(w.out.sent.length, 6);
  assert.equal(w.dp.nUpcalls, 1);
});
