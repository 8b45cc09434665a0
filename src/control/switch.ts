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
 *
 * A port whose device does not exist yet (ENODEV: a VM's tap or veth plugged after its port
 * was configured) stays in its bridge without a netdev, as Open vSwitch keeps an interface with
 * "could not open network device"; `pending` lists them with that error, `show` prints it, and
 * retryPending() (the daemon's tick) attaches each once its device appears.
 */
import { Bridge, BridgePort } from '../ofproto/bridge';
import { BridgeView, TunnelAddresses } from '../ofproto/bridge-view';
import { Ofproto } from '../ofproto/ofproto';
import { OfprotoUpcaller } from '../ofproto/upcall';
import { parseFlow, FlowSpec } from '../ofproto/flow-syntax';
import { Datapath, DatapathOptions } from '../dpif/datapath';
import { EMC_ALWAYS, EMC_DEFAULT_POLICY } from '../dpif/emc';
import { rxDropRecord } from '../dpif/rx-drops';
import { TunnelDesc } from '../dpif/tunnel-header';
import { PacketBatch } from '../netdev/batch';
import { Netdev, NetdevStats } from '../netdev/netdev';
import { TunnelPort, Underlay } from '../netdev/underlay';
import { BridgeConfig, FlowLine, NodeConfig, PortConfig } from './config';
import { ConfigError } from '../errors';
import { ipv4FromString } from '../packet/ipv4';

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
  /** Called when a port gets its netdev (the daemon starts polling it) and before one goes. */
  readonly onAttach?: (a: AttachedPort) => void;
  readonly onDetach?: (a: AttachedPort) => void;
  /** Called when a port's device is missing (it waits in `pending`). */
  readonly onPending?: (p: PendingPort) => void;
}

/** What applyDiff needs of a per-bridge difference (dvr/diff.ts BridgeDiff has this shape). */
export interface BridgeDiffLike {
  readonly bridge: string;
  readonly state: 'added' | 'removed' | 'changed';
  readonly addFlows: readonly FlowLine[];
  readonly modifyFlows: readonly FlowLine[];
  readonly deleteFlows: readonly FlowLine[];
  readonly addPorts: readonly PortConfig[];
  readonly modifyPorts: readonly PortConfig[];
  readonly removePorts: readonly PortConfig[];
}

/** A port configured while its device did not exist (see the header). */
export interface PendingPort {
  readonly bridge: string;
  readonly config: PortConfig;
  /** As Open vSwitch words it: `could not open network device NAME (No such device)`. */
  readonly error: string;
}

export interface AttachedPort {
  readonly bridge: string;
  readonly config: PortConfig;
  readonly dpPort: number;
  readonly netdev: Netdev;
}

/** A tunnel end from the config: its address, or 0 where the config leaves it empty. */
function ipToU32(s: string): number {
  return s === '' ? 0 : ipv4FromString(s);
}

/** One port's counters as the commands, the metrics and replay report them. */
export interface PortStats {
  netdev: NetdevStats;
  /** Frames the port handed the datapath, and how they ended (dpif/rx-drops.ts). */
  dpRx: number;
  dpRxForwarded: number;
  dpRxDrops: Record<string, number>;
  dpTx: number;
  dpTxDropped: number;
  /** Receive drops of the port and of the datapath for its frames, and by reason. */
  rxDrop: number;
  rxDropReasons: Record<string, number>;
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
  /** Ports waiting for their device, by name. */
  readonly pending = new Map<string, PendingPort>();
  private readonly tunnels = new Map<string, Map<string, TunnelAddresses>>();
  private readonly ctlBatch = new PacketBatch(1);

  constructor(readonly config: NodeConfig, private readonly factory: PortFactory, readonly opts: SwitchOptions) {
    this.upcaller = new OfprotoUpcaller(this.ofproto, opts.nowMs, () => this.datapath.destinationsChanged());
    const dc = config.datapath;
    const fromConfig = dc === undefined ? {}
      : { emcInsertInvProb: dc.emcInsertInvProb, emcLookup: dc.emcLookup === 'always' ? EMC_ALWAYS : EMC_DEFAULT_POLICY };
    this.datapath = new Datapath({ ...fromConfig, ...(opts.datapath ?? {}), upcaller: this.upcaller, nowMs: opts.nowMs });
    for (const bc of config.bridges) this.addBridge(bc, false);
    for (const bc of config.bridges) for (const pc of bc.ports) this.attach(bc, pc);
  }

  /** Creates a bridge with its ports (not yet attached to netdevs unless `attach`) and flows. */
  private addBridge(bc: BridgeConfig, attach: boolean): void {
    const now = this.opts.nowMs();
    const br = new Bridge(bc.name, now);
    br.forwardBpdu = bc.forwardBpdu ?? false;
    const tunnels = new Map<string, TunnelAddresses>();
    this.tunnels.set(bc.name, tunnels);
    for (const pc of bc.ports) {
      br.addPort(this.bridgePort(bc, pc));
      if (pc.kind === 'vxlan' || pc.kind === 'gre') {
        tunnels.set(pc.name, { localIp: ipToU32(pc.localIp), remoteIp: ipToU32(pc.remoteIp) });
      }
    }
    const view = new BridgeView(br, tunnels);
    this.bridges.set(bc.name, br);
    this.views.set(bc.name, view);
    this.ofproto.addBridge(view);
    if (attach) for (const pc of bc.ports) this.attach(bc, pc);
    br.addFlows(this.parseFlows(bc.flows, br), now);
    br.onRulesChanged(() => this.datapath.rulesChanged());
  }

  /** Opens the netdev of a (non-patch) port and gives it its dp port. */
  private attach(bc: BridgeConfig, pc: PortConfig): void {
    if (pc.kind === 'patch') return;
    const view = this.views.get(bc.name) as BridgeView;
    let opened: OpenedPort | null;
    try {
      opened = this.factory.open(bc, pc);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENODEV') throw e;
      if (this.pending.has(pc.name)) return;
      const p: PendingPort = { bridge: bc.name, config: pc, error: `could not open network device ${pc.name} (No such device)` };
      this.pending.set(pc.name, p);
      if (this.opts.onPending) this.opts.onPending(p);
      return;
    }
    this.pending.delete(pc.name);
    if (opened === null) return;
    const dpPort = this.ofproto.dpPort(view, pc.ofport);
    this.datapath.addPort(dpPort, opened.netdev, opened.tunnel);
    const a: AttachedPort = { bridge: bc.name, config: pc, dpPort, netdev: opened.netdev };
    this.attached.set(dpPort, a);
    this.byName.set(pc.name, a);
    if (this.opts.onAttach) this.opts.onAttach(a);
  }

  /** Adds a port to an existing bridge at run time. */
  addPort(bc: BridgeConfig, pc: PortConfig): void {
    const br = this.bridges.get(bc.name) as Bridge;
    br.addPort(this.bridgePort(bc, pc));
    if (pc.kind === 'vxlan' || pc.kind === 'gre') {
      this.tunnels.get(bc.name)?.set(pc.name, { localIp: ipToU32(pc.localIp), remoteIp: ipToU32(pc.remoteIp) });
    }
    (this.views.get(bc.name) as BridgeView).refresh();
    this.ofproto.refreshPorts();
    this.attach(bc, pc);
  }

  /**
   * Tries again to open the ports waiting for their device; returns those attached now. A
   * missing device is one failed open (an if_nametoindex), so this is cheap to call often.
   */
  retryPending(): AttachedPort[] {
    const out: AttachedPort[] = [];
    for (const p of [...this.pending.values()]) {
      const bc = this.config.bridges.find((b) => b.name === p.bridge);
      if (bc === undefined) { this.pending.delete(p.config.name); continue; }
      this.attach(bc, p.config);
      const a = this.byName.get(p.config.name);
      if (a !== undefined) out.push(a);
    }
    return out;
  }

  /** Removes a port: its netdev is closed and its dp port goes (the caches are flushed). */
  removePort(bridge: string, name: string): void {
    if (this.pending.get(name)?.bridge === bridge) this.pending.delete(name);
    const a = this.byName.get(name);
    if (a !== undefined && a.bridge === bridge) {
      if (this.opts.onDetach) this.opts.onDetach(a);
      this.datapath.removePort(a.dpPort);
      a.netdev.close();
      this.attached.delete(a.dpPort);
      this.byName.delete(name);
    }
    this.bridges.get(bridge)?.removePort(name);
    this.tunnels.get(bridge)?.delete(name);
    this.views.get(bridge)?.refresh();
    this.ofproto.refreshPorts();
    this.datapath.rulesChanged();
  }

  /** Removes a whole bridge (its ports first). */
  removeBridge(name: string): void {
    const br = this.bridges.get(name);
    if (br === undefined) return;
    for (const p of br.ports()) this.removePort(name, p.name);
    this.ofproto.removeBridge(name);
    this.bridges.delete(name);
    this.views.delete(name);
    this.tunnels.delete(name);
    this.datapath.rulesChanged();
  }

  /**
   * Applies the difference between two generated configs (dvr/diff.ts) in the order that keeps
   * traffic flowing: new bridges and ports, added and modified flows, deleted flows, removed
   * ports and bridges. `next` is the config the diff leads to (for patch peers).
   */
  applyDiff(diffs: readonly BridgeDiffLike[], next: NodeConfig): void {
    const now = this.opts.nowMs();
    (this as { config: NodeConfig }).config = next;
    for (const d of diffs) {
      const bc = next.bridges.find((b) => b.name === d.bridge);
      if (d.state === 'added' && bc !== undefined) this.addBridge(bc, true);
    }
    for (const d of diffs) {
      if (d.state !== 'changed') continue;
      const bc = next.bridges.find((b) => b.name === d.bridge) as BridgeConfig;
      for (const p of d.modifyPorts) this.removePort(d.bridge, p.name);
      for (const p of [...d.addPorts, ...d.modifyPorts]) this.addPort(bc, p);
    }
    for (const d of diffs) {
      const br = this.bridges.get(d.bridge);
      if (br === undefined || d.state === 'added') continue;
      if (d.addFlows.length > 0) br.addFlows(this.parseFlows(d.addFlows, br), now);
      for (const f of d.modifyFlows) br.modFlows(this.parseFlow(f, 'mod', br), true, now);
      for (const f of d.deleteFlows) br.delFlows(this.parseFlow(f, 'del', br), true);
    }
    for (const d of diffs) {
      if (d.state === 'removed') this.removeBridge(d.bridge);
      else for (const p of d.removePorts) this.removePort(d.bridge, p.name);
    }
  }

  private bridgePort(bc: BridgeConfig, pc: PortConfig): BridgePort {
    if (pc.kind !== 'patch') return { name: pc.name, ofport: pc.ofport, kind: pc.kind, tag: pc.tag || undefined };
    const peerBridge = this.config.bridges.find((b) => b.ports.some((p) => p.name === pc.peer));
    if (peerBridge === undefined) throw new ConfigError(this.config.file, pc.line, `${bc.name}.${pc.name}.peer`, `no port named "${pc.peer}"`);
    return { name: pc.name, ofport: pc.ofport, kind: 'patch', peerBridge: peerBridge.name, peerPort: pc.peer };
  }

  /** Parses configured flows; a bad flow is a FlowSyntaxError naming file and line. */
  private parseFlows(flows: readonly FlowLine[], br: Bridge): FlowSpec[] {
    return flows.map((f) => this.parseFlow(f, 'add', br));
  }

  private parseFlow(f: FlowLine, command: 'add' | 'mod' | 'del', br: Bridge): FlowSpec {
    return parseFlow(f.text, { command, resolvePort: br.resolvePort, file: f.file, line: f.line });
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

  /** The underlays of the attached tunnel ports (one per local_ip), each once. */
  underlays(): Underlay[] {
    const out: Underlay[] = [];
    for (const a of this.attached.values()) {
      if (a.netdev instanceof TunnelPort && !out.includes(a.netdev.underlay)) out.push(a.netdev.underlay);
    }
    return out;
  }

  /** Runs a batch whose in_port metadata is already set (underlay demultiplexing). */
  run(batch: PacketBatch, count: number): void {
    this.datapath.processBatch(batch, count);
  }

  /**
   * Sends one frame the control plane made (a gratuitous ARP) straight out of port `name`,
   * bypassing the pipeline. Returns false when there is no such attached port.
   */
  sendFrame(name: string, frame: Uint8Array): boolean {
    const a = this.byName.get(name);
    if (a === undefined) return false;
    const b = this.ctlBatch;
    b.count = 0;
    if (b.append(frame) < 0) return false;
    return a.netdev.send(b, 1) === 1;
  }

  /** Rule timeouts: removes expired rules (the datapath revalidates through the listeners). */
  expireRules(nowMs: number): number {
    let n = 0;
    for (const b of this.bridges.values()) n += b.expire(nowMs).length;
    return n;
  }

  /** Per-port counters from the netdev and the datapath. */
  portStats(a: AttachedPort): PortStats {
    const s = new NetdevStats();
    a.netdev.stats(s);
    const p = this.datapath.ports.byNo(a.dpPort);
    const dpDrops = p ? rxDropRecord(p.rxDrops) : {};
    // Every frame the port delivered ends forwarded or dropped by the datapath; the port's own
    // refusals (ring full, too big, ...) never reached it. rx_drop is both, by reason.
    const reasons: Record<string, number> = { ...s.rxDropReasons };
    let rxDrop = s.rxDropped;
    for (const [k, v] of Object.entries(dpDrops)) {
      reasons[k] = (reasons[k] ?? 0) + v;
      rxDrop += v;
    }
    return {
      netdev: s, dpRx: p ? p.rxPackets : 0, dpTx: p ? p.txPackets : 0, dpTxDropped: p ? p.txDropped : 0,
      dpRxForwarded: p ? p.rxForwarded : 0, dpRxDrops: dpDrops, rxDrop, rxDropReasons: reasons,
    };
  }

  close(): void {
    for (const a of this.attached.values()) a.netdev.close();
  }
}
