/**
 * flowctl trace resumes each ct(table=N) pass with the live conntrack table's state of the
 * packet when --ct-next does not say (issue 22): a TCP connection through a two-table
 * conntrack pipeline is set up with real frames, then its next packet is traced.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Switch } from '../../src/control/switch';
import { cmdTrace } from '../../src/control/commands';
import { parseConfig } from '../../src/control/config';
import { PacketBatch } from '../../src/netdev/batch';
import { MemNetdev } from '../dpif/helpers';

const CONFIG = `bridges:
  - name: br0
    ports: [ { name: a, ofport: 1 }, { name: b, ofport: 2 } ]
    flows:
      - "table=0,priority=10,tcp,actions=ct(zone=5,table=1)"
      - "table=1,priority=10,ct_state=+trk+new,in_port=1,tcp,actions=ct(commit,zone=5),output:2"
      - "table=1,priority=10,ct_state=+trk+est,in_port=1,tcp,actions=output:2"
      - "table=1,priority=10,ct_state=+trk+est+rpl,in_port=2,tcp,actions=output:1"
      - "table=1,priority=1,actions=drop"
`;

/** A 54-byte TCP frame 10.0.0.1:40000 <-> 10.0.0.2:80 with `flags`, from `fromA` (a) or b. */
function tcp(fromA: boolean, flags: number): Uint8Array {
  const f = new Uint8Array(54);
  const [s, d] = fromA ? [1, 2] : [2, 1];
  f.set([2, 0, 0, 0, 0, d, 2, 0, 0, 0, 0, s, 8, 0, 0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, s, 10, 0, 0, d]);
  const v = new DataView(f.buffer);
  v.setUint16(34, fromA ? 40000 : 80); v.setUint16(36, fromA ? 80 : 40000);
  f[46] = 0x50; f[47] = flags;
  return f;
}

test('trace after ct(table=1): the live table says est|trk for an established connection, new|trk before it; --ct-next wins', () => {
  let now = 1000;
  const sw = new Switch(parseConfig('/tmp/ct.yaml', CONFIG), { open: (_b, p) => ({ netdev: new MemNetdev(p.name), tunnel: null }) },
    { nowMs: () => now });
  const send = (fromA: boolean, flags: number): void => {
    const b = new PacketBatch(4);
    const i = b.append(tcp(fromA, flags));
    b.inPort[i] = sw.port(fromA ? 'a' : 'b')!.dpPort;
    sw.datapath.processBatch(b, b.count);
    now += 10;
  };
  const ack = 'in_port=1,tcp,nw_src=10.0.0.1,nw_dst=10.0.0.2,tp_src=40000,tp_dst=80,tcp_flags=+ack';
  const before = String(cmdTrace(sw, { bridge: 'br0', packet: ack }));
  assert.match(before, /resume conntrack with default ct_state=new\|trk \(use --ct-next to customize\)/);

  send(true, 0x02);  // SYN
  send(false, 0x12); // SYN-ACK
  send(true, 0x10);  // ACK
  const live = String(cmdTrace(sw, { bridge: 'br0', packet: ack }));
  assert.match(live, /resume conntrack with ct_state=est\|trk from the conntrack table/);
  assert.match(live, /Datapath actions: 2\n$/);
  const reply = String(cmdTrace(sw, { bridge: 'br0', packet: 'in_port=2,tcp,nw_src=10.0.0.2,nw_dst=10.0.0.1,tp_src=80,tp_dst=40000' }));
  assert.match(reply, /ct_state=est\|rpl\|trk from the conntrack table/);
  assert.match(reply, /Datapath actions: 1\n$/);
  // Another zone's or another tuple's packet is not that connection.
  const other = String(cmdTrace(sw, { bridge: 'br0', packet: ack.replace('tp_src=40000', 'tp_src=40001') }));
  assert.match(other, /default ct_state=new\|trk/);
  const forced = String(cmdTrace(sw, { bridge: 'br0', packet: ack, ct_next: 'trk,inv' }));
  assert.match(forced, /resume conntrack with ct_state=inv\|trk\n/);
  assert.match(forced, /Datapath actions: drop\n$/);
});
