/**
 * Where a node's topology comes from: a YAML file (the default, zero setup) or etcd
 * (control/topology-etcd.ts). Both give the daemon the same thing, a Topology validated by
 * dvr/topology.ts's parseTopology, first once (`load`) and then on every change (`watch`), so
 * every source ends in the same node-config generation and diff application (control/daemon.ts).
 *
 * Called by: control/daemon.ts (openTopologySource), bench/control.ts.
 * Invariant: onChange only ever sees a topology that passed the file's validation; a change
 * that fails it goes to onReject with the reason, and the source keeps waiting for the next
 * one (the caller keeps its last good topology).
 */
import * as fs from 'node:fs';
import { loadTopology, Topology } from '../dvr/topology';
import { isEtcdUrl } from './etcd-client';
import { EtcdTopologySource } from './topology-etcd';

export interface TopologyWatcher {
  /** A new valid topology; `origin` says what changed (file path, or etcd revision). */
  onChange(topology: Topology, origin: string): void;
  /** A change that failed validation (or a store that cannot be read); the last good topology stays. */
  onReject(err: Error, origin: string): void;
}

export interface TopologySource {
  /** The file path or etcd URL, for logs. */
  readonly name: string;
  /** Reads and validates the topology as it is now; throws (ConfigError, EtcdError) when it cannot. */
  load(): Promise<Topology>;
  /** From the state load() read, reports every later change until close(). */
  watch(w: TopologyWatcher): void;
  close(): void;
}

/** The topology file, polled every 250 ms (fs.watchFile: survives editors that replace the file). */
export class FileTopologySource implements TopologySource {
  private watcher: TopologyWatcher | null = null;
  constructor(readonly name: string) {}

  load(): Promise<Topology> {
    return Promise.resolve(loadTopology(this.name));
  }

  watch(w: TopologyWatcher): void {
    this.watcher = w;
    fs.watchFile(this.name, { interval: 250 }, () => {
      let t: Topology;
      try {
        t = loadTopology(this.name);
      } catch (e) {
        w.onReject(e as Error, this.name);
        return;
      }
      w.onChange(t, this.name);
    });
  }

  close(): void {
    if (this.watcher !== null) fs.unwatchFile(this.name);
    this.watcher = null;
  }
}

/** `etcd://...` -> the etcd source; anything else is a file path. */
export function openTopologySource(spec: string): TopologySource {
  return isEtcdUrl(spec) ? new EtcdTopologySource(spec) : new FileTopologySource(spec);
}
