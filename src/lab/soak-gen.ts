/**
 * The soak's generator: sends soak frames (lab/soak-frames.ts) out of one interface through the
 * project's AF_PACKET addon, in batches, paced to a rate, and reports what it sent per mutation.
 *
 * Called by: cli/soak-gen.ts, which lab/soak.ts runs inside a generator namespace (one process
 * per wire it feeds). Blocking loop: it is a process of its own.
 */
import { loadNativeIo, packetOpen } from '../native/io';
import { MUTATION_NAMES, nextSoakFrame, SoakAddresses, soakCorpus, SoakRandom } from './soak-frames';

const SLOT_BYTES = 2048;
const HEADROOM = 64;
const BATCH = 64;

export interface SoakGenOptions {
  readonly ifname: string;
  readonly count: number;
  readonly seed: number;
  /** Frames per second to aim at (0: as fast as the kernel takes them). */
  readonly ratePps: number;
  readonly addresses: SoakAddresses;
}

export interface SoakGenReport {
  readonly ifname: string;
  /** Frames the kernel accepted, and those it refused (send errors). */
  readonly sent: number;
  readonly refused: number;
  /** Sent frames by mutation name. */
  readonly byMutation: Record<string, number>;
  readonly seconds: number;
}

/** Sends `count` soak frames; returns what went out. */
export function runSoakGen(o: SoakGenOptions): SoakGenReport {
  const io = loadNativeIo();
  const h = packetOpen(o.ifname, { promisc: false, ringFrames: 32 });
  const rnd = new SoakRandom(o.seed);
  const corpus = soakCorpus(o.addresses);
  const buf = new Uint8Array(BATCH * SLOT_BYTES);
  const offs = new Uint32Array(BATCH);
  const lens = new Uint32Array(BATCH);
  const kinds = new Uint8Array(BATCH);
  const kind = new Uint8Array(1);
  const byMutation = new Float64Array(MUTATION_NAMES.length);
  let sent = 0;
  let refused = 0;
  const t0 = process.hrtime.bigint();
  const nsPerFrame = o.ratePps > 0 ? 1e9 / o.ratePps : 0;
  for (let done = 0; done < o.count;) {
    const n = Math.min(BATCH, o.count - done);
    for (let i = 0; i < n; i++) {
      offs[i] = i * SLOT_BYTES + HEADROOM;
      lens[i] = nextSoakFrame(rnd, corpus, buf, offs[i], SLOT_BYTES - HEADROOM, kind);
      kinds[i] = kind[0];
    }
    const ok = io.send(h, buf, offs, lens, n);
    for (let i = 0; i < ok; i++) byMutation[kinds[i]]++;
    sent += ok;
    refused += n - ok;
    done += n;
    if (nsPerFrame > 0) {
      const due = t0 + BigInt(Math.round(done * nsPerFrame));
      while (process.hrtime.bigint() < due) { /* pace */ }
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  io.close(h);
  const out: Record<string, number> = {};
  MUTATION_NAMES.forEach((name, k) => { out[name] = byMutation[k]; });
  return { ifname: o.ifname, sent, refused, byMutation: out, seconds };
}
