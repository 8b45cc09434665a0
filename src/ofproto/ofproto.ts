/**
 * The set of bridges of one flowd and their datapath port numbering (OVS's ofproto-dpif
 * "backer": every bridge shares one datapath, whose ports are numbered across bridges).
 *
 * Who uses it: ofproto/xlate.ts (ports, patch peers, dp port numbers), dpif/ (dp port -> netdev),
 * control/ and the replay entry point (bridges by name).
 *
 * The shapes xlate needs of a bridge, a port and a rule are declared here as interfaces so the
 * translation does not depend on how bridge.ts stores them; bridge.ts's Bridge fits them.
 *
 * Datapath ports: every non-patch port (system, internal, tunnel, the bridge's LOCAL port) gets
 * a dp port number when its bridge is added or refreshPorts() sees it; numbers are never reused
 * while flowd runs. Patch ports have no dp port: crossing one is done inside the translation.
 */
import { Action } from './actions';
import type { Classifier } from './classifier';
import type { ClassifierRule, Match } from './types';
import type { MacTable } from './normal';


/** A rule as xlate uses it: what to do, and the counters the slow path and dpif credit. */
export interface XlateRule extends ClassifierRule {
  readonly tableId: number;
  readonly cookie: bigint;
  readonly actions: readonly Action[];
  nPackets: number;
  nBytes: number;
  lastUsedMs: number;
}

export type XlatePortKind = 'system' | 'internal' | 'patch' | 'tunnel' | 'local';

export interface XlatePort {
  readonly ofport: number;
  readonly name: string;
  readonly kind: XlatePortKind;
  /** Access VLAN (1..4095) for NORMAL, or -1 for a trunk. */
  readonly tag: number;
  /** Patch ports: the name of the peer port (in another bridge). '' otherwise. */
  readonly peer: string;
  /** Tunnel ports: underlay IPv4 addresses (host order), 0 when not a tunnel. */
  readonly tunnelLocalIp: number;
  readonly tunnelRemoteIp: number;
}

/** A flow installed by a learn action. */
export interface LearnedFlow {
  readonly tableId: number;
  readonly priority: number;
  readonly match: Match;
  readonly actions: Action[];
  readonly idleTimeoutS: number;
  readonly hardTimeoutS: number;
  readonly cookie: bigint;
  /** FF_* flow-mod flags (send_flow_rem when the learn action has it). */
  readonly flags: number;
}

export interface XlateBridge {
  readonly name: string;
  readonly macs: MacTable;
  /** NORMAL forwards reserved multicast destinations (STP, LLDP, ...): OVS's forward-bpdu. */
  readonly forwardBpdu: boolean;
  /** Table `tableId` (0..254), or undefined when it holds nothing. */
  table(tableId: number): Classifier<XlateRule> | undefined;
  port(ofport: number): XlatePort | undefined;
  /** All ports, including LOCAL when the bridge has one. */
  portList(): readonly XlatePort[];
  /**
   * Installs (or refreshes, for an identical match+priority) a learned flow. True when a flow
   * was installed (the rules changed), false when one was only refreshed.
   */
  addLearnedFlow(flow: LearnedFlow, nowMs: number): boolean;
}

export interface DpPortInfo {
  readonly dpPort: number;
  readonly bridge: XlateBridge;
  readonly port: XlatePort;
}

export class Ofproto {
  readonly bridges = new Map<string, XlateBridge>();
  private readonly byDp = new Map<number, DpPortInfo>();
  /** bridge name -> ofport -> dp port */
  private readonly toDp = new Map<string, Map<number, number>>();
  private nextDpPort = 1;

  addBridge(b: XlateBridge): void {
    this.bridges.set(b.name, b);
    this.refreshPorts();
  }

  removeBridge(name: string): void {
    this.bridges.delete(name);
    const m = this.toDp.get(name);
    if (m !== undefined) for (const dp of m.values()) this.byDp.delete(dp);
    this.toDp.delete(name);
  }

  /** Numbers ports added since the last call (and forgets removed ones). */
  refreshPorts(): void {
    for (const b of this.bridges.values()) {
      let m = this.toDp.get(b.name);
      if (m === undefined) { m = new Map(); this.toDp.set(b.name, m); }
      const live = new Set<number>();
      for (const p of b.portList()) {
        if (p.kind === 'patch') continue;
        live.add(p.ofport);
        if (!m.has(p.ofport)) {
          const dp = this.nextDpPort++;
          m.set(p.ofport, dp);
          this.byDp.set(dp, { dpPort: dp, bridge: b, port: p });
        }
      }
      for (const [ofport, dp] of m) if (!live.has(ofport)) { m.delete(ofport); this.byDp.delete(dp); }
    }
  }

  /** The dp port of `ofport` on `bridge`, or -1 (patch port, unknown port). */
  dpPort(bridge: XlateBridge, ofport: number): number {
    return this.toDp.get(bridge.name)?.get(ofport) ?? -1;
  }

  dpPortInfo(dpPort: number): DpPortInfo | undefined {
    return this.byDp.get(dpPort);
  }

  dpPorts(): DpPortInfo[] {
    return [...this.byDp.values()].sort((a, b) => a.dpPort - b.dpPort);
  }

  /** The other end of patch port `port` of `bridge`: a patch port named port.peer whose peer is us. */
  patchPeer(bridge: XlateBridge, port: XlatePort): { bridge: XlateBridge; port: XlatePort } | undefined {
    if (port.kind !== 'patch' || port.peer === '') return undefined;
    for (const b of this.bridges.values()) {
      if (b === bridge) continue;
      for (const p of b.portList()) {
        if (p.kind === 'patch' && p.name === port.peer && p.peer === port.name) return { bridge: b, port: p };
      }
    }
    return undefined;
  }
}

// ---- bridge.ts's Bridge as an XlateBridge: bridge-view.ts, re-exported for this module's callers --
export type { TunnelAddresses as TunnelEnds } from './bridge-view';
