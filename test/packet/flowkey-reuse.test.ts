/**
 * extractKeyOver (the datapath's extraction into a reused key slot, without clearing it first)
 * gives exactly extractKey's packet words, offsets and stop code whatever key the slot held
 * before, as long as the caller clears the ARP/IPv6 words when keyTailUsed says the last key
 * used them (what dpif/stages.ts extract does); and it never touches the pipeline words.
 * Frames: every shape of the fuzz corpus plus ARP and an IPv6 neighbour solicitation (the
 * frames that write those words), bit-flipped and cut, one after another into one slot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as F from './frames';
import { extractKey, extractKeyOver, keyTailUsed, OFFS_WORDS } from '../../src/packet/flowkey';
import { KEY_WORDS, PACKET_WORDS, W_ARP_SHA_HI } from '../../src/packet/flowkey-layout';

const NS = F.hex('333300000001 020000000001 86dd |' +
  '60000000 0020 3a ff | 20010db8000000000000000000000001 | ff020000000000000000000000000001 |' +
  '87 00 0000 00000000 | 20010db8000000000000000000000002 | 01 01 020000000001');

const BASES: Uint8Array[] = [
  F.UDP4, F.TCP4_VLAN, F.ICMP4_ECHO, F.ARP_REQ, F.VXLAN, F.GRE_KEY, F.UDP6, F.ICMP6_HBH_FRAG,
  F.IPV6_LATER_FRAG, F.IPV4_LATER_FRAG, F.IPV4_FIRST_FRAG, F.ICMP4_FRAG_NEEDED, F.LLC_STP,
  F.SNAP_IPV4, F.UDP4_OPTS, NS,
];

test('extractKeyOver into a reused slot equals extractKey into a zeroed key (30000 frames)', () => {
  const OFF = 8;
  const buf = new Uint8Array(OFF + 2048);
  const ref = new Uint32Array(KEY_WORDS), slot = new Uint32Array(2 * KEY_WORDS);
  const refOffs = new Uint16Array(OFFS_WORDS), offs = new Uint16Array(2 * OFFS_WORDS);
  // The pipeline words of the slot (after PACKET_WORDS) belong to the caller: a marker there
  // must survive every extraction.
  for (let w = PACKET_WORDS; w < KEY_WORDS; w++) slot[KEY_WORDS + w] = 0xdead0000 + w;
  let s = 0x2468ace1;
  const rnd = (): number => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return s >>> 0; };
  let nTail = 0;
  for (let iter = 0; iter < 30000; iter++) {
    const frame = BASES[rnd() % BASES.length];
    buf.fill(0);
    buf.set(frame, OFF);
    if ((rnd() & 3) !== 0) for (let k = 0; k < 2; k++) buf[OFF + (rnd() % frame.length)] ^= 1 << (rnd() & 7);
    const len = (rnd() & 3) === 0 ? rnd() % (frame.length + 1) : frame.length;
    const inPort = rnd() & 0xff;
    const r1 = extractKey(buf, OFF, len, inPort, ref, 0, refOffs, 0);
    if (keyTailUsed(slot, KEY_WORDS)) { nTail++; slot.fill(0, KEY_WORDS + W_ARP_SHA_HI, KEY_WORDS + PACKET_WORDS); }
    const r2 = extractKeyOver(buf, OFF, len, inPort, slot, KEY_WORDS, offs, OFFS_WORDS);
    assert.equal(r2, r1, `stop, frame ${iter}`);
    for (let w = 0; w < PACKET_WORDS; w++) assert.equal(slot[KEY_WORDS + w], ref[w], `word ${w}, frame ${iter}`);
    for (let w = PACKET_WORDS; w < KEY_WORDS; w++) assert.equal(slot[KEY_WORDS + w], 0xdead0000 + w);
    for (let o = 0; o < OFFS_WORDS; o++) assert.equal(offs[OFFS_WORDS + o], refOffs[o], `offset ${o}, frame ${iter}`);
  }
  assert.ok(nTail > 1000, `the ARP/IPv6 words were cleared ${nTail} times`);
});
