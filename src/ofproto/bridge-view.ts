/**
 * BridgeView: a Bridge (bridge.ts: rules and ports, changed by flow-mods) seen through the
 * XlateBridge shape that the translation reads (ofproto.ts), plus the bridge's MAC table for
 * NORMAL. The daemon and replay put one view per bridge into the Ofproto.
 *
 * Port kinds map as OVS sees them: afpacket/tap/pcap/dummy are "system" ports, vxlan/gre are
 * "tunnel" ports, internal and patch keep their kind. A port without an access tag is a trunk
 * (-1). The view re-reads the bridge's ports when Bridge.portsVersion moves (an integer compare
 * per call, so translation never builds strings to find out).
 * Learned flows go through Bridge.learnFlow: an identical learned flow only has its timeouts
 * restarted (OVS's semantics), so re-learning the same MAC does not revalidate every cache.
 */
import { Bridge, BridgePort } from './bridge';
import type { Classifier } from './classifier';
import { MacTable } from './normal';
import type { LearnedFlow, XlateBridge, XlatePort, XlatePortKind, XlateRule } from './ofproto';

function kindOf(p: BridgePort): XlatePortKind {
  switch (p.kind) {
    case 'vxlan': case 'gre': return 'tunnel';
    case 'internal': return 'internal';
    case 'patch': return 'patch';
    default: return 'system';
  }
}

export interface TunnelAddresses {
  localIp: number;
  remoteIp: number;
}

export class BridgeView implements XlateBridge {
  readonly macs: MacTable;
  private byNumber = new Map<number, XlatePort>();
  private list: XlatePort[] = [];
  private seenPortsVersion = -1;

  /** `tunnels` gives the underlay addresses of tunnel ports by name (host order). */
  constructor(readonly bridge: Bridge, private readonly tunnels: ReadonlyMap<string, TunnelAddresses> = new Map(),
              macAgingMs?: number) {
    this.macs = new MacTable(macAgingMs);
    this.refresh();
  }

  get name(): string {
    return this.bridge.name;
  }

  get forwardBpdu(): boolean {
    return this.bridge.forwardBpdu;
  }

  refresh(): void {
    this.seenPortsVersion = this.bridge.portsVersion;
    this.byNumber = new Map();
    this.list = [];
    for (const p of this.bridge.ports()) {
      const t = this.tunnels.get(p.name);
      const xp: XlatePort = {
        ofport: p.ofport, name: p.name, kind: kindOf(p), tag: p.tag ? p.tag : -1,
        peer: p.peerPort ?? '', tunnelLocalIp: t ? t.localIp : 0, tunnelRemoteIp: t ? t.remoteIp : 0,
      };
      this.byNumber.set(p.ofport, xp);
      this.list.push(xp);
    }
  }

  table(tableId: number): Classifier<XlateRule> | undefined {
    const t = this.bridge.tables[tableId];
    return t !== undefined && t.size > 0 ? t : undefined;
  }

  port(ofport: number): XlatePort | undefined {
    if (this.seenPortsVersion !== this.bridge.portsVersion) this.refresh();
    return this.byNumber.get(ofport);
  }

  portList(): readonly XlatePort[] {
    if (this.seenPortsVersion !== this.bridge.portsVersion) this.refresh();
    return this.list;
  }

  addLearnedFlow(f: LearnedFlow, nowMs: number): boolean {
    return this.bridge.learnFlow(f.tableId, f.match, f.priority, f.cookie, f.actions, f.idleTimeoutS, f.hardTimeoutS, nowMs, f.flags);
  }
}
