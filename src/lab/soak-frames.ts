/**
 * The soak's traffic: a corpus of well-formed frames of every kind the datapath parses (ARP,
 * IPv4/IPv6 with TCP, UDP, ICMP, VLAN tags, VXLAN and GRE outer headers, reserved multicast) and
 * seeded mutations of them: cut at a random length, bits flipped, header fields set to extremes,
 * or random bytes. Deterministic for a seed, so a soak that finds something can be replayed.
 *
 * Called by: lab/soak-gen.ts (the generator process, which sends what this makes) and the soak
 * tests. Builds each frame once per call; not on any daemon's path.
 */
import { buildArpFrame } from '../packet/arp';
import { buildGreFrame } from '../packet/gre';
import { buildIcmp4EchoFrame, buildIcmp6EchoFrame } from '../packet/icmp';
import { buildTcp4Frame, buildTcp6Frame } from '../packet/tcp';
import { buildUdp4Frame, buildUdp6Frame } from '../packet/udp';
import { buildVxlanFrame } from '../packet/vxlan';
import { ipv4FromString } from '../packet/ipv4';

/** xorshift32 over a seed (never 0): small, fast, reproducible. */
export class SoakRandom {
  private s: number;
  constructor(seed: number) {
    this.s = (seed >>> 0) || 0x9e3779b9;
  }

  /** A uniform 32-bit value. */
  next(): number {
    let x = this.s;
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    this.s = x;
    return x;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return n <= 1 ? 0 : this.next() % n;
  }
}

/** Addresses of the soak's world, so valid frames look like the lab's own traffic. */
export interface SoakAddresses {
  readonly srcMac: string;
  readonly dstMac: string;
  readonly srcIp: string;
  readonly dstIp: string;
}

/** Well-formed frames, one of each kind. */
export function soakCorpus(a: SoakAddresses): Uint8Array[] {
  const l2 = { ethSrc: a.srcMac, ethDst: a.dstMac };
  const ip4 = { ...l2, src: a.srcIp, dst: a.dstIp };
  const ip6 = { ...l2, src: 'fd00::1', dst: 'fd00::2' };
  const inner = buildUdp4Frame({ ...ip4, sport: 5000, dport: 5001, payload: new Uint8Array(18) });
  return [
    buildArpFrame({ op: 1, sha: a.srcMac, spa: ipv4FromString(a.srcIp), tpa: ipv4FromString(a.dstIp) }),
    buildArpFrame({ op: 2, sha: a.srcMac, spa: ipv4FromString(a.srcIp), tha: a.dstMac, tpa: ipv4FromString(a.dstIp) }),
    buildUdp4Frame({ ...ip4, sport: 1000, dport: 2000, payload: new Uint8Array(18) }),
    buildUdp4Frame({ ...ip4, vlanTci: 100, sport: 1000, dport: 2000, payload: new Uint8Array(100) }),
    buildTcp4Frame({ ...ip4, sport: 40000, dport: 80, flags: 0x02 }),
    buildTcp4Frame({ ...ip4, sport: 40000, dport: 80, flags: 0x18, payload: new Uint8Array(200) }),
    buildTcp4Frame({ ...ip4, sport: 40000, dport: 80, flags: 0x03 }), // SYN+FIN: ct invalid
    buildIcmp4EchoFrame({ ...ip4, echoId: 7, echoSeq: 1, payload: new Uint8Array(56) }),
    buildUdp4Frame({ ...ip4, mf: true, sport: 1, dport: 2, payload: new Uint8Array(64) }),
    buildUdp6Frame({ ...ip6, sport: 1000, dport: 2000, payload: new Uint8Array(18) }),
    buildTcp6Frame({ ...ip6, sport: 40000, dport: 443, flags: 0x02 }),
    buildIcmp6EchoFrame({ ...ip6, echoId: 7, echoSeq: 1 }),
    buildVxlanFrame({ ...ip4, vni: 1001, inner }),
    buildGreFrame({ ...ip4, key: 1002, inner }),
    buildUdp4Frame({ ...l2, ethDst: '01:80:c2:00:00:0e', src: a.srcIp, dst: a.dstIp, sport: 1, dport: 2 }),
  ];
}


/** How a soak frame was made from the corpus. */
export const enum Mutation { Intact, Cut, Flip, Extreme, Random }
export const MUTATION_NAMES: readonly string[] = ['intact', 'cut', 'flip', 'extreme', 'random'];

/**
 * Writes the next soak frame into `out` at `off` (at most `maxBytes`) and returns its length
 * and, in `kind[0]`, the Mutation used. Frames are at least 1 byte (a frame shorter than an
 * Ethernet header is one of the cases the datapath must count; the kernel pads frames under 14
 * bytes sent by root to 14, and refuses some of them). Mutations may still make a frame that
 * the kernel drops before any packet socket sees it (a flipped bit that makes a TPID): those
 * show as the difference between what the wire delivered and what flowd received.
 */
export function nextSoakFrame(rnd: SoakRandom, corpus: readonly Uint8Array[], out: Uint8Array, off: number,
                              maxBytes: number, kind: Uint8Array): number {
  const base = corpus[rnd.below(corpus.length)];
  const m = rnd.below(10);
  if (m < 3) { // intact
    kind[0] = Mutation.Intact;
    out.set(base, off);
    return base.length;
  }
  if (m < 5) { // cut: anywhere from 1 byte to one short of whole
    kind[0] = Mutation.Cut;
    // A frame with an 802.1Q TPID but no whole tag never reaches a packet socket: the kernel's
    // receive path (skb_vlan_untag) drops it first. Cut tagged frames after their tag.
    const tagged = base[12] === 0x81 && base[13] === 0x00;
    const min = tagged ? 18 : 1;
    const len = min + rnd.below(base.length - min);
    out.set(base.subarray(0, len), off);
    return len;
  }
  if (m < 7) { // flip 1..8 bits
    kind[0] = Mutation.Flip;
    out.set(base, off);
    for (let k = 1 + rnd.below(8); k > 0; k--) {
      const i = rnd.below(base.length);
      out[off + i] ^= 1 << rnd.below(8);
    }
    return base.length;
  }
  if (m < 9) { // a header byte set to 0x00 or 0xff (lengths, IHL, flags, ethertype)
    kind[0] = Mutation.Extreme;
    out.set(base, off);
    const i = rnd.below(Math.min(base.length, 64));
    out[off + i] = rnd.below(2) === 0 ? 0 : 0xff;
    return base.length;
  }
  kind[0] = Mutation.Random;
  const len = 1 + rnd.below(Math.min(maxBytes, 1514));
  for (let k = 0; k < len; k++) out[off + k] = rnd.next() & 0xff;
  return len;
}
