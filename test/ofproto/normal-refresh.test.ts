/**
 * A cached hit repeats the MAC learning of its upcall (ofproto/upcall.ts refresh). Called again
 * at the same clock reading with no MAC table moved since, it returns at once; when the table
 * moved in between (here: the MAC seen on another port at that same reading), it learns again
 * and puts the MAC back where this flow's packets say it is, as their own translation would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bridge } from '../../src/ofproto/bridge';
import { Ofproto } from '../../src/ofproto/ofproto';
import { BridgeView } from '../../src/ofproto/bridge-view';
import { OfprotoUpcaller } from '../../src/ofproto/upcall';
import { extractKey, OFFS_WORDS } from '../../src/packet/flowkey';
import { KEY_WORDS } from '../../src/packet/flowkey-layout';
import { PacketBatch } from '../../src/netdev/batch';

const A = 0x020000000001;

test('NORMAL re-learning of a cached hit: a no-op at the same time, a move back after the MAC moved at that time', () => {
  const br = new Bridge('br0', 0, { defaultFlow: true }); // priority 0: NORMAL
  br.addPort({ name: 'p1', ofport: 1, kind: 'afpacket' });
  br.addPort({ name: 'p2', ofport: 2, kind: 'afpacket' });
  const ofp = new Ofproto();
  const view = new BridgeView(br);
  ofp.addBridge(view);
  const up = new OfprotoUpcaller(ofp, () => 1000, () => undefined);
  const inPort = ofp.dpPort(ofp.bridges.get('br0')!, 1);
  const frame = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x88, 0xb5, ...new Array(46).fill(0)]);
  const b = new PacketBatch(1);
  b.append(frame);
  b.inPort[0] = inPort;
  const keys = new Uint32Array(KEY_WORDS);
  extractKey(b.buf, b.off[0], b.len[0], inPort, keys, 0, new Uint16Array(OFFS_WORDS), 0);
  const r = up.upcall(keys, 0, b, 0, 1000);
  assert.ok(r !== null && r.refresh !== undefined && r.refresh !== null, 'NORMAL learned: the result repeats it');
  const refresh = r.refresh;
  assert.equal(view.macs.lookup(0, A, 1000), 1);
  assert.equal(refresh(1000), false); // learned by the upcall at this time: nothing to do
  assert.equal(refresh(1000), false);
  assert.ok(view.macs.learn(0, A, 2, 1000)); // another frame saw A on port 2 at the same reading
  assert.equal(view.macs.lookup(0, A, 1000), 2);
  assert.equal(refresh(1000), true); // this flow's frame moves it back
  assert.equal(view.macs.lookup(0, A, 1000), 1);
  assert.equal(refresh(1000), false);
  assert.equal(refresh(2000), false); // a later reading: timestamp refreshed, no move
});
