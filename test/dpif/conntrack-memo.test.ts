/**
 * Conntrack's memo (conntrack.ts trackLookup, two slots: both directions of a connection, or two
 * connections): packets of a memoised flow at one clock reading skip lookup, state machine and
 * refresh only while that changes nothing. Here, at
 * a single clock reading throughout (as within one datapath batch), what the table does between
 * two such packets (flush, expiry sweep, a sync delete, a FIN, a zero timeout) shows in the
 * second packet's ct_state, the connection's TCP state and the table listing.
 * Frames come from a tiny local builder: conntrack reads no checksum.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Conntrack, CS_DST_NAT, CS_ESTABLISHED, CS_NEW, CS_REPLY_DIR, CS_SRC_NAT, CS_TRACKED, CT_AGAIN_NO, CtNatRange,
} from '../../src/dpif/conntrack';
import { ipv4SetChecksum, l4SetChecksum4 } from '../../src/packet/checksum';
import { PacketBatch } from '../../src/netdev/batch';
import { extractKey, OFFS_WORDS } from '../../src/packet/flowkey';
import { KEY_WORDS } from '../../src/packet/flowkey-layout';

const TRK = CS_TRACKED, NEW = CS_NEW, EST = CS_ESTABLISHED, RPL = CS_REPLY_DIR;
const FIN = 1, SYN = 2, ACK = 0x10;
const A = 0x0a000001, B = 0x0a000002;

function tcp(src: number, dst: number, sp: number, dp: number, flags: number): Uint8Array {
  const b = new Uint8Array(54);
  b[12] = 0x08; b[14] = 0x45; b[17] = 40; b[22] = 64; b[23] = 6;
  const dv = new DataView(b.buffer);
  dv.setUint32(26, src); dv.setUint32(30, dst); dv.setUint16(34, sp); dv.setUint16(36, dp);
  b[46] = 0x50; b[47] = flags;
  return b;
}

function ex(ct: Conntrack, f: Uint8Array, now: number, commit = false): number {
  return ct.execute(f, 0, f.length, 1, commit, null, 0, 0, now);
}

/** A connection A:1000 -> B:80, established at time `now`. */
function established(now: number, opts: ConstructorParameters<typeof Conntrack>[0] = {}): Conntrack {
  const ct = new Conntrack({ capacity: 16, ...opts });
  ex(ct, tcp(A, B, 1000, 80, SYN), now, true);
  ex(ct, tcp(B, A, 80, 1000, SYN | ACK), now);
  ex(ct, tcp(A, B, 1000, 80, ACK), now);
  return ct;
}

test('a flushed connection is gone for the next packet at the same time', () => {
  const ct = established(5);
  assert.equal(ex(ct, tcp(A, B, 1000, 80, ACK), 5), TRK | EST);
  assert.equal(ex(ct, tcp(A, B, 1000, 80, ACK), 5), TRK | EST);
  assert.equal(ct.flush(), 1);
  assert.equal(ex(ct, tcp(A, B, 1000, 80, ACK), 5), TRK | NEW);
  assert.equal(ct.nLive, 0);
});

test('a sync import or delete between two packets: the second sees what the master sent', () => {
  const ct = established(5);
  assert.equal(ex(ct, tcp(A, B, 1000, 80, ACK), 5), TRK | EST);
  assert.equal(ex(ct, tcp(A, B, 1000, 80, ACK), 5), TRK | EST);
  const rec = ct.zoneEntries(1, 5)[0];
  assert.ok(ct.importConn({ ...rec, flags: 0 }, 5)); // as a master that has seen no reply yet
  assert.equal(ex(ct, tcp(A, B, 1000, 80, ACK), 5), TRK | NEW);
  assert.equal(ex(ct, tcp(B, A, 80, 1000, ACK), 5), TRK | EST | RPL);
  assert.equal(ex(ct, tcp(A, B, 1000, 80, ACK), 5), TRK | EST);
  assert.ok(ct.removeConn(rec));
  assert.equal(ex(ct, tcp(A, B, 1000, 80, ACK), 5), TRK | NEW); // not committed: nothing stored
  assert.equal(ct.nLive, 0);
});

test('a FIN after memoised ACKs moves the state; the ACKs after it follow the state machine', () => {
  const ct = established(5);
  ex(ct, tcp(A, B, 1000, 80, ACK), 5);
  ex(ct, tcp(A, B, 1000, 80, ACK), 5);
  const e = ct.lastConn;
  assert.equal(ct.tcpStateName(e), 'ESTABLISHED');
  assert.equal(ex(ct, tcp(A, B, 1000, 80, FIN | ACK), 5), TRK | EST);
  assert.equal(ct.tcpStateName(e), 'FIN_WAIT');
  ex(ct, tcp(B, A, 80, 1000, FIN | ACK), 5);
  assert.equal(ct.tcpStateName(e), 'CLOSING');
  ex(ct, tcp(A, B, 1000, 80, ACK), 5);
  assert.equal(ct.tcpStateName(e), 'TIME_WAIT');
  assert.match(ct.list(-1, 5)[0], /timeout=120,protoinfo=\(state=TIME_WAIT\)/);
});

test('a zero timeout expires the connection for the next packet at the same time, memo or not', () => {
  const ct = established(5, { timeoutsS: { tcp_established: 0 } });
  assert.equal(ex(ct, tcp(A, B, 1000, 80, ACK), 5), TRK | NEW); // expired at once
  assert.equal(ct.nLive, 0);
  assert.equal(ct.nExpired, 1);
});

test('a sweep between two packets of a live connection leaves it; the memo keeps counting packets', () => {
  const ct = established(5);
  const before = ct.nPackets;
  assert.equal(ex(ct, tcp(A, B, 1000, 80, ACK), 5), TRK | EST);
  assert.equal(ct.sweep(5, 16), 0);
  assert.equal(ex(ct, tcp(A, B, 1000, 80, ACK), 5), TRK | EST);
  assert.equal(ct.nPackets - before, 2);
  assert.match(ct.list(-1, 5)[0], /timeout=432000,protoinfo=\(state=ESTABLISHED\)/);
});

test('again() answers only right after a packet that hit or set the memo, and never across a table change', () => {
  const ct = established(5);
  const f = tcp(A, B, 1000, 80, ACK);
  assert.equal(ct.again(f, 0, f.length, 14, 5, false), CT_AGAIN_NO); // the last packet (the ACK that established) changed the state
  assert.equal(ex(ct, f, 5), TRK | EST); // sets the memo
  const n0 = ct.nPackets;
  assert.equal(ct.again(f, 0, f.length, 14, 5, false), TRK | EST);
  assert.equal(ct.nPackets, n0 + 1);
  assert.equal(ct.again(f, 0, f.length, 14, 6, false), CT_AGAIN_NO); // another clock reading
  ct.flush();
  assert.equal(ct.again(f, 0, f.length, 14, 5, false), CT_AGAIN_NO); // the connection is gone
  assert.equal(ex(ct, f, 5), TRK | NEW);
  assert.equal(ct.again(f, 0, f.length, 14, 5, false), CT_AGAIN_NO); // uncommitted: no memo
  const g = established(5);
  ex(g, f, 5);
  const short = f.slice();
  short[17] = 20 + 8; // an IPv4 total length with no room for the TCP header
  assert.equal(g.again(short, 0, short.length, 14, 5, false), CT_AGAIN_NO);
});

/** The two directions of connection A:1000 -> B:80, each memoised (ACK, ACK, ACK, ACK at one clock). */
function bothWays(ct: Conntrack, now: number, sp = 1000): void {
  for (let k = 0; k < 2; k++) {
    assert.equal(ex(ct, tcp(A, B, sp, 80, ACK), now), TRK | EST);
    assert.equal(ex(ct, tcp(B, A, 80, sp, ACK), now), TRK | EST | RPL);
  }
}

test('FINs clear the memo of both directions: the reply\'s ACK memoised while ESTABLISHED now closes the connection', () => {
  const ct = established(5);
  bothWays(ct, 5);
  const e = ct.lastConn;
  assert.equal(ex(ct, tcp(B, A, 80, 1000, FIN | ACK), 5), TRK | EST | RPL);
  assert.equal(ct.tcpStateName(e), 'FIN_WAIT');
  assert.equal(ex(ct, tcp(A, B, 1000, 80, FIN | ACK), 5), TRK | EST);
  assert.equal(ct.tcpStateName(e), 'CLOSING');
  // The last FIN was the original direction's: the reply's ACK acknowledges it.
  assert.equal(ex(ct, tcp(B, A, 80, 1000, ACK), 5), TRK | EST | RPL);
  assert.equal(ct.tcpStateName(e), 'TIME_WAIT');
  assert.match(ct.list(-1, 5)[0], /timeout=120,protoinfo=\(state=TIME_WAIT\)/);
});

test('a flush or a sync delete between the two directions: the other direction is not answered from the memo', () => {
  const ct = established(5);
  bothWays(ct, 5);
  assert.equal(ct.flush(), 1);
  assert.equal(ex(ct, tcp(B, A, 80, 1000, ACK), 5), TRK | NEW);
  assert.equal(ex(ct, tcp(A, B, 1000, 80, ACK), 5), TRK | NEW);
  const g = established(5);
  bothWays(g, 5);
  assert.ok(g.removeConn(g.zoneEntries(1, 5)[0]));
  assert.equal(ex(g, tcp(B, A, 80, 1000, ACK), 5), TRK | NEW);
  assert.equal(g.nLive, 0);
});

test('a 1 s timeout: a connection memoised in both directions expires for the reply at the clock reading 1 s later', () => {
  const ct = established(5, { timeoutsS: { tcp_established: 1 } });
  bothWays(ct, 5);
  assert.equal(ex(ct, tcp(B, A, 80, 1000, ACK), 1005), TRK | NEW); // expired: 5 + 1000 ms
  assert.equal(ct.nLive, 0);
  assert.equal(ct.nExpired, 1);
});

test('two connections interleaved: each packet gets its own connection, and a FIN on one leaves the other', () => {
  const ct = established(5);
  ex(ct, tcp(A, B, 2000, 80, SYN), 5, true);
  ex(ct, tcp(B, A, 80, 2000, SYN | ACK), 5);
  ex(ct, tcp(A, B, 2000, 80, ACK), 5);
  const conns = [0, 0];
  for (let k = 0; k < 3; k++) {
    for (const [i, sp] of [[0, 1000], [1, 2000]]) {
      assert.equal(ex(ct, tcp(A, B, sp, 80, ACK), 5), TRK | EST);
      if (k > 0) assert.equal(ct.lastConn, conns[i]);
      conns[i] = ct.lastConn;
    }
  }
  assert.notEqual(conns[0], conns[1]);
  assert.equal(ex(ct, tcp(A, B, 1000, 80, FIN | ACK), 5), TRK | EST);
  assert.equal(ex(ct, tcp(A, B, 2000, 80, ACK), 5), TRK | EST);
  assert.equal(ct.lastConn, conns[1]);
  assert.equal(ct.tcpStateName(conns[1]), 'ESTABLISHED');
  assert.equal(ct.tcpStateName(conns[0]), 'FIN_WAIT');
  assert.equal(ex(ct, tcp(B, A, 80, 1000, FIN | ACK), 5), TRK | EST | RPL);
  assert.equal(ex(ct, tcp(A, B, 1000, 80, ACK), 5), TRK | EST);
  assert.equal(ct.tcpStateName(conns[0]), 'TIME_WAIT');
  assert.equal(ct.tcpStateName(conns[1]), 'ESTABLISHED');
});

/** Ethernet/IPv4/TCP ACK with both checksums computed in full (not patched). */
function ackFull(src: number, dst: number, sp: number, dp: number): Uint8Array {
  const b = tcp(src, dst, sp, dp, ACK);
  b[48] = 0xfa; b[49] = 0xf0; // a window, so the TCP sum is not trivial
  ipv4SetChecksum(b, 14);
  l4SetChecksum4(b, 14, 34, 20, 6);
  return b;
}

/**
 * Two established SNAT connections in zone 7 (two inside hosts with the same source port: the
 * second is mapped to G:1024), and per flow [frame in, frame out, ct_state]: originals SNATed,
 * replies de-NATed.
 */
function twoSnatConnections(): { ct: Conntrack; snat: CtNatRange; run: (f: Uint8Array) => number;
                                  flows: [Uint8Array, Uint8Array, number][] } {
  const G = 0xac18040a, A2 = 0x0a000003, S = 0xcb007107;
  const snat: CtNatRange = { kind: 'src', ipMin: G, ipMax: G, portMin: 0, portMax: 0 };
  const ct = new Conntrack({ capacity: 16 });
  const run = (f: Uint8Array, commit = false): number => ct.execute(f, 0, f.length, 7, commit, snat, 0, 0, 5);
  run(tcp(A, S, 40000, 80, SYN), true);
  run(tcp(A2, S, 40000, 80, SYN), true);
  run(tcp(S, G, 80, 40000, SYN | ACK));
  run(tcp(S, G, 80, 1024, SYN | ACK));
  run(tcp(A, S, 40000, 80, ACK));
  run(tcp(A2, S, 40000, 80, ACK));
  const flows: [Uint8Array, Uint8Array, number][] = [
    [ackFull(A, S, 40000, 80), ackFull(G, S, 40000, 80), TRK | EST | CS_SRC_NAT],
    [ackFull(S, G, 80, 40000), ackFull(S, A, 80, 40000), TRK | EST | RPL | CS_DST_NAT],
    [ackFull(A2, S, 40000, 80), ackFull(G, S, 1024, 80), TRK | EST | CS_SRC_NAT],
    [ackFull(S, G, 80, 1024), ackFull(S, A2, 80, 40000), TRK | EST | RPL | CS_DST_NAT],
  ];
  return { ct, snat, run, flows };
}

test('SNAT of two connections, both directions interleaved: every frame, from the memo or again(), carries its own translation', () => {
  const { ct, run, flows } = twoSnatConnections();
  // Runs of one flow, then the other direction, then the other connection, and back.
  for (const i of [0, 0, 1, 1, 0, 1, 2, 3, 2, 3, 0, 3, 1, 2, 1, 0]) {
    const [fin, fout, st] = flows[i];
    const f = fin.slice();
    assert.equal(run(f), st, `flow ${i}`);
    assert.deepEqual(f, fout, `flow ${i}`);
    const g = fin.slice();
    assert.equal(ct.again(g, 0, g.length, 14, 5, false), st, `flow ${i} again`);
    assert.deepEqual(g, fout, `flow ${i} again`);
  }
  assert.equal(ct.nLive, 2);
});

/** A conntrack with one established connection A:40000 -> `s`:80 in zone 7, SNATed by `snat` to `g`. */
function oneSnatConnection(snat: CtNatRange, s: number, g: number): Conntrack {
  const ct = new Conntrack({ capacity: 16 });
  const run = (f: Uint8Array, commit = false): number => ct.execute(f, 0, f.length, 7, commit, snat, 0, 0, 5);
  run(tcp(A, s, 40000, 80, SYN), true);
  run(tcp(s, g, 80, 40000, SYN | ACK));
  run(tcp(A, s, 40000, 80, ACK));
  return ct;
}

test('againRun NATs the run up to the first frame whose IPv4 lengths ctParseKeyed refuses, and leaves that one unwritten', () => {
  const G = 0xac18040a, S = 0xcb007107;
  const snat: CtNatRange = { kind: 'src', ipMin: G, ipMax: G, portMin: 0, portMax: 0 };
  // Each spoils one length check of the third frame: total length past the frame, IP version
  // 6, IHL 4 (16 bytes), room for less than a TCP header, IHL 6 with the total length 40.
  const spoil: [string, (f: Uint8Array) => void][] = [
    ['total length past the frame', (f) => { f[17] = 41; }],
    ['version 6', (f) => { f[14] = 0x65; }],
    ['IHL 4', (f) => { f[14] = 0x44; }],
    ['no room for TCP', (f) => { f[17] = 39; }],
    ['IHL 6 in 40 bytes', (f) => { f[14] = 0x46; }],
  ];
  for (const [what, bad] of spoil) {
    const ct = oneSnatConnection(snat, S, G);
    const bt = new PacketBatch(8, 256);
    for (let k = 0; k < 5; k++) bt.append(ackFull(A, S, 40000, 80));
    const third = ackFull(A, S, 40000, 80);
    bad(third);
    bt.buf.set(third, bt.off[2]);
    assert.equal(ct.execute(bt.buf, bt.off[0], bt.len[0], 7, false, snat, 0, 0, 5, false, 14), TRK | EST | CS_SRC_NAT);
    const live = Uint16Array.from([0, 1, 2, 3, 4]);
    const same = Int16Array.from([-1, 0, 1, 2, 3]); // one run of equal keys
    assert.equal(ct.againRun(bt, live, 1, 5, same, 14, 5), 1, what);
    const frame = (i: number): Uint8Array => bt.buf.slice(bt.off[i], bt.off[i] + bt.len[i]);
    assert.deepEqual(frame(1), ackFull(G, S, 40000, 80), what);
    assert.deepEqual(frame(2), third, `${what}: not written`);
    assert.equal(ct.again(third.slice(), 0, third.length, 14, 5, false), CT_AGAIN_NO, what);
  }
});

test('againRun ends at the first frame whose key is not the one\'s before it (state.sameKey), leaving it unwritten', () => {
  const G = 0xac18040a, S = 0xcb007107;
  const snat: CtNatRange = { kind: 'src', ipMin: G, ipMax: G, portMin: 0, portMax: 0 };
  const ct = oneSnatConnection(snat, S, G);
  const bt = new PacketBatch(8, 256);
  for (let k = 0; k < 5; k++) bt.append(ackFull(A, S, 40000, 80));
  assert.equal(ct.execute(bt.buf, bt.off[0], bt.len[0], 7, false, snat, 0, 0, 5, false, 14), TRK | EST | CS_SRC_NAT);
  const live = Uint16Array.from([0, 1, 2, 3, 4]);
  const same = Int16Array.from([-1, 0, 1, -1, 3]); // frame 3 starts another run
  assert.equal(ct.againRun(bt, live, 1, 5, same, 14, 5), 2);
  const frame = (i: number): Uint8Array => bt.buf.slice(bt.off[i], bt.off[i] + bt.len[i]);
  assert.deepEqual(frame(2), ackFull(G, S, 40000, 80));
  assert.deepEqual(frame(3), ackFull(A, S, 40000, 80));
});

test('executeKeyed on a memo hit NATs by the slot\'s plan: two connections, both directions, batch after batch at one clock', () => {
  const { ct, snat, flows } = twoSnatConnections();
  // A batch of three frames of one flow: the head through executeKeyed (its key from the
  // datapath's parse), the others through againRun, which works out the slot's plan the head's
  // of the flow's next batch uses. The slots change hands between flows along the way.
  const live = Uint16Array.from([0, 1, 2]), same = Int16Array.from([-1, 0, 1]);
  const keys = new Uint32Array(3 * KEY_WORDS), offs = new Uint16Array(3 * OFFS_WORDS);
  for (const f of [0, 0, 0, 1, 1, 2, 2, 2, 3, 0, 0, 3, 3, 1, 2, 1, 1, 0, 2, 2]) {
    const [fin, fout, st] = flows[f];
    const bt = new PacketBatch(4, 256);
    for (let i = 0; i < 3; i++) {
      bt.append(fin);
      extractKey(bt.buf, bt.off[i], bt.len[i], 1, keys, i * KEY_WORDS, offs, i * OFFS_WORDS);
    }
    assert.equal(ct.executeKeyed(bt, 0, keys, 0, 14, 7, false, snat, 0, 0, 5), st, `flow ${f}`);
    assert.equal(ct.againRun(bt, live, 1, 3, same, 14, 5), 2, `flow ${f}`);
    for (let i = 0; i < 3; i++) assert.deepEqual(bt.buf.slice(bt.off[i], bt.off[i] + bt.len[i]), fout, `flow ${f} frame ${i}`);
  }
});
