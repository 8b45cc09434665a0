/**
 * The underlay neighbour table of tunnel ports: IPv4 next hop -> MAC, learned by snooping ARP
 * on the underlay interface, with a small bounded queue per unresolved next hop.
 *
 * Why a queue: OVS's userspace tunnels drop a frame whose next hop is not resolved yet, so the
 * first ping over a fresh tunnel is lost. flowd keeps up to MAX_PENDING frames per next hop
 * (copies; this path allocates, it runs once per neighbour) while an ARP request is out, and
 * sends them when the reply arrives. Beyond the bound the oldest frame is dropped and counted.
 * A next hop that never answers has its queue dropped after PENDING_TIMEOUT_MS.
 */
export const MAX_PENDING = 64;
export const PENDING_TIMEOUT_MS = 3000;
export const ARP_RETRY_MS = 500;

export class PendingQueue {
  readonly frames: Uint8Array[] = [];
  readonly since: number;
  lastRequestMs = -Infinity;
  constructor(nowMs: number) {
    this.since = nowMs;
  }
}

export class NeighborTable {
  /** next-hop IPv4 (host order) -> MAC as a 48-bit number */
  private readonly macs = new Map<number, number>();
  private readonly pending = new Map<number, PendingQueue>();
  nQueued = 0;
  nQueueDrops = 0;
  nTimeoutDrops = 0;

  lookup(ip: number): number | undefined {
    return this.macs.get(ip);
  }

  /** Records a MAC; returns the frames that waited for it (the caller sends them). */
  learn(ip: number, mac: number): Uint8Array[] {
    this.macs.set(ip, mac);
    const q = this.pending.get(ip);
    if (q === undefined) return [];
    this.pending.delete(ip);
    return q.frames;
  }

  /**
   * Queues a copy of `frame` for `ip`. Returns true when an ARP request should go out now
   * (first frame, or the last request is older than ARP_RETRY_MS).
   */
  enqueue(ip: number, frame: Uint8Array, nowMs: number): boolean {
    let q = this.pending.get(ip);
    if (q === undefined) {
      q = new PendingQueue(nowMs);
      this.pending.set(ip, q);
    }
    if (q.frames.length >= MAX_PENDING) {
      q.frames.shift();
      this.nQueueDrops++;
    }
    q.frames.push(frame.slice());
    this.nQueued++;
    if (nowMs - q.lastRequestMs >= ARP_RETRY_MS) {
      q.lastRequestMs = nowMs;
      return true;
    }
    return false;
  }

  /** Drops queues older than PENDING_TIMEOUT_MS; returns the next hops still waiting. */
  expire(nowMs: number): number[] {
    const waiting: number[] = [];
    for (const [ip, q] of this.pending) {
      if (nowMs - q.since > PENDING_TIMEOUT_MS) {
        this.nTimeoutDrops += q.frames.length;
        this.pending.delete(ip);
      } else {
        waiting.push(ip);
      }
    }
    return waiting;
  }

  get nPending(): number {
    let n = 0;
    for (const q of this.pending.values()) n += q.frames.length;
    return n;
  }
}
