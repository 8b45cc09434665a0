/**
 * What an OpenFlow session sees of one bridge of a running switch: its tables of rules (the
 * very Bridge object flowctl and the topology change, so every way in ends in the same rules
 * and the same cache revalidation), its ports with counters, and packet-out.
 *
 * Who calls: endpoint.ts builds one per bridge from control/switch.ts; session.ts and the
 * message modules read it. Nothing here runs per packet of the datapath.
 */
import type { Bridge } from '../../ofproto/bridge';
import type { Action } from '../../ofproto/actions';
import { OFPP_TABLE, OFPP_IN_PORT, OFPP_LOCAL, OFPP_NONE, OFPP_MAX } from '../../ofproto/actions';
import type { Switch } from '../switch';
import { PacketBatch } from '../../netdev/batch';
import { OfError, OFPET_BAD_ACTION, OFPBAC_BAD_OUT_PORT, OFPBAC_BAD_TYPE } from './wire';

export interface OfPortStats {
  rxPackets: number; txPackets: number; rxBytes: number; txBytes: number;
  rxDropped: number; txDropped: number; rxErrors: number; txErrors: number;
}

export interface OfPortInfo {
  readonly ofport: number;
  readonly name: string;
  /** False for ports without a device or whose link is down (patch ports are up, as OVS shows them). */
  readonly up: boolean;
  readonly stats: OfPortStats;
}

export interface OfBridgeHandle {
  readonly bridge: Bridge;
  readonly datapathId: bigint;
  nowMs(): number;
  ports(): OfPortInfo[];
  /**
   * Runs a packet-out: `frame` with in_port `inPort` goes where `actions` say. Outputs to a port
   * leave by that port's device; output:TABLE runs the frame through the bridge's tables.
   * Throws OfError for what it cannot do.
   */
  packetOut(inPort: number, actions: readonly Action[], frame: Uint8Array): void;
}

/** FNV-1a of the bridge name, 48 bits: a stable datapath id for `show` (OVS uses a MAC). */
function dpidOf(name: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < name.length; i++) h = BigInt.asUintN(64, (h ^ BigInt(name.charCodeAt(i))) * 0x100000001b3n);
  return h & 0xffffffffffffn;
}

export class SwitchBridgeHandle implements OfBridgeHandle {
  readonly datapathId: bigint;
  private readonly batch = new PacketBatch(1);

  constructor(private readonly sw: Switch, readonly bridge: Bridge) {
    this.datapathId = dpidOf(bridge.name);
  }

  nowMs(): number { return this.sw.opts.nowMs(); }

  ports(): OfPortInfo[] {
    return this.bridge.ports().map((p) => {
      const a = this.sw.port(p.name);
      const stats: OfPortStats = { rxPackets: 0, txPackets: 0, rxBytes: 0, txBytes: 0, rxDropped: 0, txDropped: 0, rxErrors: 0, txErrors: 0 };
      if (a !== undefined) {
        const s = this.sw.portStats(a);
        stats.rxPackets = s.dpRx; stats.txPackets = s.dpTx; stats.rxBytes = s.netdev.rxBytes; stats.txBytes = s.netdev.txBytes;
        stats.rxDropped = s.netdev.rxDropped; stats.txDropped = s.dpTxDropped + s.netdev.txDropped;
        stats.rxErrors = s.netdev.rxErrors; stats.txErrors = s.netdev.txErrors;
      }
      const up = p.kind === 'patch' || (a !== undefined && (a.netdev.linkUp === undefined || a.netdev.linkUp()));
      return { ofport: p.ofport, name: p.name, up, stats };
    });
  }

  packetOut(inPort: number, actions: readonly Action[], frame: Uint8Array): void {
    for (const a of actions) {
      if (a.kind !== 'output') throw new OfError(OFPET_BAD_ACTION, OFPBAC_BAD_TYPE, `packet-out: only output actions are supported, not ${a.kind}`);
      let port = a.port;
      if (port === OFPP_IN_PORT) port = inPort;
      if (port === OFPP_TABLE) { this.runTable(inPort, frame); continue; }
      const bp = port < OFPP_MAX ? this.bridge.portByNumber(port) : undefined;
      if (bp === undefined || !this.sw.sendFrame(bp.name, frame)) {
        throw new OfError(OFPET_BAD_ACTION, OFPBAC_BAD_OUT_PORT, `packet-out: port ${port} has no device on ${this.bridge.name}`);
      }
    }
  }

  private runTable(inPort: number, frame: Uint8Array): void {
    const view = this.sw.views.get(this.bridge.name);
    const dp = view === undefined || inPort === OFPP_NONE || inPort === OFPP_LOCAL ? -1 : this.sw.ofproto.dpPort(view, inPort);
    if (dp < 0) throw new OfError(OFPET_BAD_ACTION, OFPBAC_BAD_OUT_PORT, `packet-out: output:TABLE needs an in_port with a device, not ${inPort}`);
    const b = this.batch;
    b.count = 0;
    if (b.append(frame) < 0) throw new OfError(OFPET_BAD_ACTION, OFPBAC_BAD_OUT_PORT, 'packet-out: frame too large');
    b.inPort[0] = dp;
    this.sw.run(b, 1);
  }
}
