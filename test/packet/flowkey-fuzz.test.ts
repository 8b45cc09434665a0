/**
 * Property tests for extractKey: millions of truncated, bit-flipped and random frames.
 *
 * Each frame is extracted twice, once with zeros and once with random garbage around it
 * (before `off` and after `off + len`) in the buffer. Identical key words, offsets and stop
 * code prove that extraction never reads outside the frame; no exception may escape; a frame
 * cut anywhere before its end (every test frame is exactly as long as its headers say) must
 * give a drop reason; offsets of a frame that is not dropped lie inside it.
 *
 * fast-check draws a seed per run; each run then loops over thousands of mutations with a
 * cheap xorshift generator, so the whole file does well over a million extractions quickly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as F from './frames';
import { extractKey, OFFS_WORDS, OFF_L3, OFF_L4, OFF_L4_PAYLOAD, OFF_VLAN } from '../../src/packet/flowkey';
import { KEY_WORDS } from '../../src/packet/flowkey-layout';
import { isDrop, N_STOP, STOP_NAMES } from '../../src/packet/stop';
import { buildVxlanFrame } from '../../src/packet/vxlan';
import { buildGreFrame } from '../../src/packet/gre';
import { buildTcp4Frame, buildTcp6Frame } from '../../src/packet/tcp';
import { buildUdp6Frame } from '../../src/packet/udp';
import { buildIcmp4EchoFrame } from '../../src/packet/icmp';
import { buildArpFrame } from '../../src/packet/arp';

const BASES: Uint8Array[] = [
  F.VXLAN, F.GRE_KEY, F.GRE_CKS, F.ARP_REQ, F.TCP4_VLAN, F.ICMP4_ECHO, F.ICMP4_FRAG_NEEDED,
  F.ICMP4_TIME_EXCEEDED, F.UDP4, F.UDP6, F.ICMP6_HBH_FRAG, F.IPV6_LATER_FRAG, F.IPV4_FIRST_FRAG,
  F.IPV4_LATER_FRAG, F.SNAP_IPV4, F.UDP4_OPTS,
  buildVxlanFrame({ src: '192.168.0.1', dst: '192.168.0.2', vni: 7,
    inner: buildUdp6Frame({ vlanTci: 5, src: '2001:db8::1', dst: '2001:db8::2', sport: 1, dport: 2 }) }),
  buildGreFrame({ vlanTci: 9, src: '192.168.0.1', dst: '192.168.0.2', csum: true, key: 1, seq: 2,
    inner: buildArpFrame({ op: 2, sha: '02:00:00:00:00:01', spa: 1, tha: '02:00:00:00:00:02', tpa: 2 }) }),
  buildTcp4Frame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, flags: 0x12,
    tcpOptions: F.hex('020405b4 01030307'), payload: new Uint8Array(10) }),
  buildTcp6Frame({ src: '2001:db8::1', dst: '2001:db8::2', sport: 1, dport: 2, flags: 0x10 }),
  buildIcmp4EchoFrame({ vlanTci: 4095, src: '10.0.0.1', dst: '10.0.0.2', echoId: 1, echoSeq: 1 }),
];

const OFF = 64;
const BUF_BYTES = 4096;

/** Two buffers that differ only outside the frame, plus the key/offset arrays per buffer. */
class Harness {
  readonly zeros = new Uint8Array(BUF_BYTES);
  readonly garbage = new Uint8Array(BUF_BYTES);
  readonly template = new Uint8Array(BUF_BYTES);
  readonly keysZ = new Uint32Array(KEY_WORDS);
  readonly keysG = new Uint32Array(KEY_WORDS);
  readonly offsZ = new Uint16Array(OFFS_WORDS);
  readonly offsG = new Uint16Array(OFFS_WORDS);
  nExtractions = 0;

  constructor(seed: number) {
    let s = seed | 1;
    for (let i = 0; i < BUF_BYTES; i++) {
      s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
      this.template[i] = s & 0xff;
    }
    this.garbage.set(this.template);
  }

  /** Extracts frame[0, len) in both buffers; asserts identical results; returns the stop. */
  run(frame: Uint8Array, len: number, inPort: number): number {
    this.zeros.set(frame.subarray(0, len), OFF);
    this.garbage.set(frame.subarray(0, len), OFF);
    let stopZ = -1, stopG = -1;
    try {
      stopZ = extractKey(this.zeros, OFF, len, inPort, this.keysZ, 0, this.offsZ, 0);
      stopG = extractKey(this.garbage, OFF, len, inPort, this.keysG, 0, this.offsG, 0);
    } catch (e) {
      assert.fail(`threw on ${Buffer.from(frame.subarray(0, len)).toString('hex')}: ${String(e)}`);
    }
    this.nExtractions += 2;
    if (stopZ !== stopG || !sameWords(this.keysZ, this.keysG) || !sameWords(this.offsZ, this.offsG)) {
      assert.fail(`read outside the frame: ${STOP_NAMES[stopZ]} vs ${STOP_NAMES[stopG]} for ` +
        Buffer.from(frame.subarray(0, len)).toString('hex'));
    }
    if (stopZ < 0 || stopZ >= N_STOP) assert.fail(`stop code ${stopZ} out of range`);
    if (!isDrop(stopZ)) {
      // Whatever was parsed lies inside the frame.
      if (this.offsZ[OFF_L3] > len || this.offsZ[OFF_L4] > len || this.offsZ[OFF_L4_PAYLOAD] > len ||
          this.offsZ[OFF_VLAN] + 4 > len + (this.offsZ[OFF_VLAN] === 0 ? 4 : 0)) {
        assert.fail(`offsets ${Array.from(this.offsZ)} outside ${len} bytes: ` +
          Buffer.from(frame.subarray(0, len)).toString('hex'));
      }
    }
    // Restore the surroundings for the next frame.
    this.zeros.fill(0, OFF, OFF + len);
    this.garbage.set(this.template.subarray(OFF, OFF + len), OFF);
    return stopZ;
  }
}

function sameWords(a: Uint32Array | Uint16Array, b: Uint32Array | Uint16Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

let total = 0;

test('every truncation of every valid frame is a drop, read only inside the frame', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 0x7fffffff }), (seed) => {
    const h = new Harness(seed);
    for (const base of BASES) {
      assert.equal(isDrop(h.run(base, base.length, 1)), false);
      for (let len = 0; len < base.length; len++) {
        const stop = h.run(base, len, 1);
        if (!isDrop(stop)) {
          assert.fail(`cut at ${len} of ${base.length} gave ${STOP_NAMES[stop]}: ` +
            Buffer.from(base).toString('hex'));
        }
      }
    }
    total += h.nExtractions;
  }), { numRuns: 60, includeErrorInReport: true });
});

test('bit flips (and cuts) of valid VXLAN/GRE/ARP/TCP/ICMP/IPv6 frames never throw or over-read', () => {
  const scratch = new Uint8Array(2048);
  fc.assert(fc.property(fc.integer({ min: 1, max: 0x7fffffff }), (seed) => {
    const h = new Harness(seed ^ 0x5bd1e995);
    let s = seed | 1;
    const rnd = (): number => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return s >>> 0; };
    for (let iter = 0; iter < 6000; iter++) {
      const base = BASES[rnd() % BASES.length];
      scratch.set(base);
      const nFlips = 1 + (rnd() % 4);
      // Half the time aim at the first 64 bytes, where all the headers are.
      const span = (rnd() & 1) === 0 ? Math.min(64, base.length) : base.length;
      for (let k = 0; k < nFlips; k++) {
        const pos = rnd() % span;
        scratch[pos] ^= 1 << (rnd() & 7);
      }
      const r = rnd() % 4;
      const len = r === 0 ? rnd() % (base.length + 1) : base.length;
      h.run(scratch, len, rnd() & 0xffff);
    }
    total += h.nExtractions;
  }), { numRuns: 80, includeErrorInReport: true });
});

test('random frames with plausible L2/L3 starts never throw or over-read', () => {
  const scratch = new Uint8Array(2048);
  const types = [0x0800, 0x86dd, 0x0806, 0x8035, 0x8100, 0x88a8, 0x0027, 0x88cc];
  const protos = [6, 17, 1, 58, 47, 132, 0, 43, 44, 60, 51, 59];
  fc.assert(fc.property(fc.integer({ min: 1, max: 0x7fffffff }), (seed) => {
    const h = new Harness(seed ^ 0x27d4eb2f);
    let s = seed | 1;
    const rnd = (): number => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return s >>> 0; };
    for (let iter = 0; iter < 6000; iter++) {
      const len = rnd() % 160;
      for (let i = 0; i < len; i++) scratch[i] = rnd() & 0xff;
      if (len >= 14 && (rnd() & 3) !== 0) {
        const t = types[rnd() % types.length];
        scratch[12] = t >>> 8; scratch[13] = t & 0xff;
        if (t === 0x8100 || t === 0x88a8) { scratch[16] = 0x08; scratch[17] = 0x00; }
        const l3 = t === 0x8100 || t === 0x88a8 ? 18 : 14;
        if (t === 0x0800) {
          scratch[l3] = 0x45;
          const tot = Math.max(0, len - l3 - (rnd() % 3));
          scratch[l3 + 2] = tot >>> 8; scratch[l3 + 3] = tot & 0xff;
          scratch[l3 + 6] &= (rnd() & 1) === 0 ? 0x00 : 0xff;
          scratch[l3 + 7] &= (rnd() & 1) === 0 ? 0x00 : 0xff;
          scratch[l3 + 9] = protos[rnd() % protos.length];
        } else if (t === 0x86dd) {
          scratch[l3] = 0x60;
          const pl = Math.max(0, len - l3 - 40 - (rnd() % 3));
          scratch[l3 + 4] = pl >>> 8; scratch[l3 + 5] = pl & 0xff;
          scratch[l3 + 6] = protos[rnd() % protos.length];
        }
      }
      h.run(scratch, len, rnd() & 0xffff);
    }
    total += h.nExtractions;
  }), { numRuns: 80, includeErrorInReport: true });
});

/**
 * A view of `frame[0, len)` at offset OFF of a larger buffer that throws on any index read
 * outside the frame: exact proof of bounds, slower, so used on fewer frames.
 */
function guarded(frame: Uint8Array, len: number): Uint8Array {
  const b = new Uint8Array(OFF + len + 64);
  b.set(frame.subarray(0, len), OFF);
  return new Proxy(b, {
    get(target, prop, receiver) {
      if (typeof prop === 'string' && /^[0-9]+$/.test(prop)) {
        const i = Number(prop);
        if (i < OFF || i >= OFF + len) throw new RangeError(`read of byte ${i - OFF} of a ${len}-byte frame`);
        return target[i];
      }
      const v: unknown = Reflect.get(target, prop, receiver === undefined ? target : target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

test('a buffer that throws on any read outside the frame: all cuts and 20000 bit flips', () => {
  const keys = new Uint32Array(KEY_WORDS);
  const offs = new Uint16Array(OFFS_WORDS);
  const scratch = new Uint8Array(2048);
  let s = 0x1234567;
  const rnd = (): number => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return s >>> 0; };
  for (const base of BASES) {
    for (let len = 0; len <= base.length; len++) extractKey(guarded(base, len), OFF, len, 1, keys, 0, offs, 0);
  }
  for (let iter = 0; iter < 20000; iter++) {
    const base = BASES[rnd() % BASES.length];
    scratch.set(base);
    for (let k = 0; k < 3; k++) scratch[rnd() % Math.min(64, base.length)] ^= 1 << (rnd() & 7);
    const len = (rnd() & 1) === 0 ? rnd() % (base.length + 1) : base.length;
    extractKey(guarded(scratch, len), OFF, len, 1, keys, 0, offs, 0);
  }
});

test('the properties above ran over a million extractions', (t) => {
  t.diagnostic(`${total} extractions`);
  assert.ok(total >= 1_000_000, `only ${total} extractions`);
});
