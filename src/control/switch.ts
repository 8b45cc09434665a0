/**
 * Switch: one node's flowd assembled from its config — bridges with their rules (ofproto/),
 * the datapath with its caches (dpif/), and a netdev per port (netdev/). The daemon and the
 * offline replay build exactly this object; they differ only in the PortFactory (real
 * interfaces vs. capture files) and in the clock (wall time vs. capture timestamps).
 *
 * Wiring: every bridge's rule changes (flow-mods, learn, timeouts) call
 * Datapath.rulesChanged(), so cached decisions are revalidated before the next batch; NORMAL
 * MAC-table changes do the same through the upcaller. Patch ports have no netdev: crossing
 * one happens inside the translation. Everything else gets a dp port number from Ofproto.
 */
import { Bridge, BridgePort } from '../ofproto/bridge';
import { BridgeView, TunnelAddresses } from '../ofproto/bridge-view';
import { Ofproto } from '../ofproto/ofproto';
import { OfprotoUpcaller } from '../ofproto/upcall';
import { parseFlow, FlowSpec } from '../ofproto/flow-syntax';
import { Datapath, DatapathOptions } from '../dpif/datapath';
import { TunnelDesc } from '../dpif/tunnel-header';
import { PacketBatch } from '../netdev/batch';
import { Netdev, NetdevStats } from '../netdev/netdev';
import { BridgeConfig, NodeConfig, PortConfig } from './config';
import { ConfigError } from '../errors';

/** What a port becomes: a netdev (and for tunnels, the header description), or nothing (patch). */
export interface OpenedPort {
  readonly netdev: Netdev;
  readonly tunnel: TunnelDesc | null;
}

export interface PortFactory {
  open(bridge: BridgeConfig, port: PortConfig): OpenedPort | null;
}

export interface SwitchOptions {
  readonly nowMs: () => number;
  readonly datapath?: Omit<DatapathOptions, 'upcaller' | 'nowMs'>;
}

export interface AttachedPort {
  readonly bridge: string;
  readonly config: PortConfig;
  readonly dpPort: number;
  readonly netdev: Netdev;
}

function ipToU32(s: string): number {
  if (s === '') return 0;
  return s.split('.').reduce((a, o) => a * 256 + Number(o), 0) >>> 0;
}

export class Switch {
  readonly ofproto = new Ofproto();
  readonly bridges = new Map<string, Bridge>();
  readonly views = new Map<string, BridgeView>();
  readonly datapath: Datapath;
  readonly upcaller: OfprotoUpcaller;
  /** Ports with a netdev, by dp port number. */
  readonly attached = new Map<number, AttachedPort>();
  private readonly byName = new Map<string, AttachedPort>();

  constructor(readonly config: NodeConfig, factory: PortFactory, readonly opts: SwitchOptions) {
    this.upcaller = new OfprotoUpcaller(this.ofproto, opts.nowMs, () => this.datapath.rulesChanged());
    this.datapath = new Datapath({ ...(opts.datapath ?? {}), upcaller: this.upcaller, nowMs: opts.nowMs });
    const now = opts.nowMs();
    for (const bc of config.bridges) {
      const br = new Bridge(bc.name, now);
      const tunnels = new Map<string, TunnelAddresses>();
      for (const pc of bc.ports) {
        br.addPort(this.bridgePort(bc, pc));
        if (pc.kind === 'vxlan' || pc.kind === 'gre') {
          tunnels.set(pc.name, { localIp: ipToU32(pc.localIp), remoteIp: ipToU32(pc.remoteIp) });
        }
      }
      br.addFlows(this.parseFlows(bc, br), now);
      br.onRulesChanged(() => this.datapath.rulesChanged());
      const view = new BridgeView(br, tunnels);
      this.bridges.set(bc.name, br);
      this.views.set(bc.name, view);
      this.ofproto.addBridge(view);
    }
    for (const bc of config.bridges) {
      const view = this.views.get(bc.name) as BridgeView;
      for (const pc of bc.ports) {
        if (pc.kind === 'patch') continue;
        const opened = factory.open(bc, pc);
        if (opened === null) continue;
        const dpPort = this.ofproto.dpPort(view, pc.ofport);
        this.datapath.addPort(dpPort, opened.netdev, opened.tunnel);
        const a: AttachedPort = { bridge: bc.name, config: pc, dpPort, netdev: opened.netdev };
        this.attached.set(dpPort, a);
        this.byName.set(pc.name, a);
      }
    }
  }

  private bridgePort(bc: BridgeConfig, pc: PortConfig): BridgePort {
    if (pc.kind !== 'patch') return { name: pc.name, ofport: pc.ofport, kind: pc.kind, tag: pc.tag || undefined };
    const peerBridge = this.config.bridges.find((b) => b.ports.some((p) => p.name === pc.peer));
    if (peerBridge === undefined) throw new ConfigError(this.config.file, pc.line, `${bc.name}.${pc.name}.peer`, `no port named "${pc.peer}"`);
    return { name: pc.name, ofport: pc.ofport, kind: 'patch', peerBridge: peerBridge.name, peerPort: pc.peer };
  }

  /** Parses a bridge's configured flows; a bad flow is a FlowSyntaxError naming file and line. */
  private parseFlows(bc: BridgeConfig, br: Bridge): FlowSpec[] {
    return bc.flows.map((f) => parseFlow(f.text, { command: 'add', resolvePort: br.resolvePort, file: f.file, line: f.line }));
  }

  bridge(name: string): Bridge | undefined {
    return this.bridges.get(name);
  }

  port(name: string): AttachedPort | undefined {
    return this.byName.get(name);
  }

  /** Receives one batch from `port`'s netdev and runs it; returns frames received. */
  poll(port: AttachedPort, batch: PacketBatch): number {
    const n = port.netdev.recv(batch);
    if (n === 0) return 0;
    if (port.netdev.kind !== 'underlay') {
      const inPort = batch.inPort;
      for (let i = 0; i < n; i++) inPort[i] = port.dpPort;
    }
    this.datapath.processBatch(batch, n);
    return n;
  }

  /** Runs a batch whose in_port metadata is already set (underlay demultiplexing). */
  run(batch: PacketBatch, count: number): void {
    this.datapath.processBatch(batch, count);
  }

  /** Rule timeouts: removes expired rules (the datapath revalidates through the listeners). */
  expireRules(nowMs: number): number {
    let n = 0;
    for (const b of this.bridges.values()) n += b.expire(nowMs).length;
    return n;
  }

  /** Per-port counters from the netdev and the datapath. */
  portStats(a: AttachedPort): { netdev: NetdevStats; dpRx: number; dpTx: number; dpTxDropped: number } {
    const s = new NetdevStats();
    a.netdev.stats(s);
    const p = this.datapath.ports.byNo(a.dpPort);
    return { netdev: s, dpRx: p ? p.rxPackets : 0, dpTx: p ? p.txPackets : 0, dpTxDropped: p ? p.txDropped : 0 };
  }

  close(): void {
    for (const a of this.attached.values()) a.netdev.close();
  }
}
