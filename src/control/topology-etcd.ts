/**
 * The topology from etcd (`flowd --topology etcd://HOST:PORT[,HOST:PORT...]/PREFIX`): the keys
 * under PREFIX/topology/ (control/topology-keys.ts, docs/etcd.md) read once, then watched from
 * the next revision; every batch of events updates a local copy of the keys, and the whole copy
 * is validated as a file is and handed to the watcher (the daemon diffs and applies it).
 *
 * Called by: control/topology-source.ts (openTopologySource), for the daemon and the bench.
 *
 * Faults: when the watch stream breaks (member stopped, network cut), the source logs
 * `etcd_unreachable` once, keeps the last topology it gave (the daemon keeps forwarding on it),
 * and re-creates the watch with backoff (100 ms doubling to 5 s), on the next member of the URL
 * each time, from the revision after the last one it merged, so changes made meanwhile arrive
 * as ordinary events (`etcd_reconnected` names the revision). When etcd has compacted that
 * revision away, the source reads the whole prefix again (`etcd_resync`). Several events of
 * one turn of the event loop are validated once.
 * Owns its EtcdClient and the one watch stream; close() ends both and any retry timer.
 */
import { Topology } from '../dvr/topology';
import { EtcdClient, EtcdEvent, EtcdUrl, EtcdWatch, parseEtcdUrl } from './etcd-client';
import { log } from './log';
import { assembleTopology, ParsedCache, TOPOLOGY_DIR } from './topology-keys';
import type { TopologySource, TopologyWatcher } from './topology-source';

const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 5000;

export class EtcdTopologySource implements TopologySource {
  readonly url: EtcdUrl;
  readonly client: EtcdClient;
  /** Relative key (ports/VM1) -> value: etcd's keys as of `revision`. */
  readonly entries = new Map<string, string>();
  /** The last etcd revision merged into `entries`. */
  revision = 0;
  /** How long validating the last change took (ms): the whole copy is validated each time. */
  validateMs = 0;
  private readonly dir: string;
  private readonly parsed: ParsedCache = new Map();
  private watcher: TopologyWatcher | null = null;
  private stream: EtcdWatch | null = null;
  private retry: NodeJS.Timeout | null = null;
  private backoffMs = BACKOFF_FIRST_MS;
  private down = false;
  /** etcd accepted the current watch stream (see `watching`). */
  private created = false;
  private closed = false;
  private emitScheduled = false;

  constructor(readonly name: string) {
    this.url = parseEtcdUrl(name);
    this.client = new EtcdClient(this.url.endpoints);
    this.dir = `${this.url.prefix}/${TOPOLOGY_DIR}`;
  }

  /** Reads every key under the prefix; returns the revision read. */
  private async readAll(): Promise<number> {
    const r = await this.client.rangePrefix(this.dir);
    this.entries.clear();
    for (const kv of r.kvs) this.entries.set(kv.key.slice(this.dir.length), kv.value);
    this.revision = r.revision;
    return r.revision;
  }

  async load(): Promise<Topology> {
    await this.readAll();
    return assembleTopology(this.url.text, this.entries, this.parsed);
  }

  watch(w: TopologyWatcher): void {
    this.watcher = w;
    this.startWatch();
  }

  /**
   * True while etcd has accepted the watch: every change from now on arrives. False before
   * that, and while the stream is broken and being re-created (the daemon forwards on the last
   * topology meanwhile). Read by tests that stop a member once the source is watching it.
   */
  get watching(): boolean {
    return this.created;
  }

  private merge(events: EtcdEvent[], revision: number): void {
    for (const ev of events) {
      const k = ev.key.slice(this.dir.length);
      if (ev.type === 'DELETE') this.entries.delete(k);
      else this.entries.set(k, ev.value);
      if (ev.modRevision > this.revision) this.revision = ev.modRevision;
    }
    if (revision > this.revision) this.revision = revision;
    this.scheduleEmit();
  }

  private scheduleEmit(): void {
    if (this.emitScheduled) return;
    this.emitScheduled = true;
    setImmediate(() => {
      this.emitScheduled = false;
      if (this.closed || this.watcher === null) return;
      const origin = `${this.url.text}@${this.revision}`;
      let t: Topology;
      const t0 = process.hrtime.bigint();
      try {
        t = assembleTopology(this.url.text, this.entries, this.parsed);
      } catch (e) {
        this.watcher.onReject(e as Error, origin);
        return;
      } finally {
        this.validateMs = Number(process.hrtime.bigint() - t0) / 1e6;
      }
      this.watcher.onChange(t, origin);
    });
  }

  private startWatch(): void {
    if (this.closed) return;
    const from = this.revision + 1;
    this.stream = this.client.watchPrefix(this.dir, from, {
      onCreated: () => {
        this.created = true;
        this.backoffMs = BACKOFF_FIRST_MS;
        if (this.down) {
          this.down = false;
          log('info', 'etcd_reconnected', { etcd: this.client.describe(), from_revision: from });
        }
      },
      onEvents: (evs, rev) => this.merge(evs, rev),
      onError: (err, compacted) => {
        this.stream = null;
        this.created = false;
        if (this.closed) return;
        if (!this.down) {
          this.down = true;
          log('warn', 'etcd_unreachable', { etcd: this.client.describe(), error: err.message,
            keeps: `forwarding on the topology of revision ${this.revision}` });
        }
        const delay = this.backoffMs;
        this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
        this.retry = setTimeout(() => {
          this.retry = null;
          if (compacted > 0) void this.resync();
          else this.startWatch();
        }, delay);
      },
    });
  }

  /** The revision to watch from was compacted: read everything again, then watch on. */
  private async resync(): Promise<void> {
    try {
      const rev = await this.readAll();
      log('info', 'etcd_resync', { etcd: this.client.describe(), revision: rev });
      this.scheduleEmit();
      this.startWatch();
    } catch (e) {
      log('warn', 'etcd_resync_failed', { etcd: this.client.describe(), error: (e as Error).message });
      this.retry = setTimeout(() => { this.retry = null; void this.resync(); }, this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    }
  }

  close(): void {
    this.closed = true;
    if (this.retry !== null) clearTimeout(this.retry);
    this.retry = null;
    this.stream?.cancel();
    this.stream = null;
    this.created = false;
  }
}
