/**
 * The OpenFlow endpoints of a whole switch: one OfEndpoint per bridge, kept in step with the
 * bridges as the topology changes (a bridge added gets its `<rundir>/<bridge>.mgmt`, a bridge
 * removed loses it). Who calls: control/daemon.ts (sync at start and after each applied topology
 * diff, close at shutdown) and control/commands.ts (the `openflow` counters command).
 * It also drains the datapath's packet-in queue (dpif/packet-in-queue.ts), at most
 * PACKET_INS_PER_TURN per turn of the event loop, handing each to its bridge's endpoint.
 */
import * as path from 'node:path';
import type { Switch } from '../switch';
import type { NodeConfig } from '../config';
import type { JsonValue } from '../server';
import { OfEndpoint } from './endpoint';
import { SwitchBridgeHandle } from './bridge-handle';

/** Packet-ins turned into messages per turn of the event loop (then datapath work goes first). */
export const PACKET_INS_PER_TURN = 256;

export class OfEndpoints {
  readonly byBridge = new Map<string, OfEndpoint>();

  private drainScheduled = false;

  constructor(private readonly sw: Switch, readonly runDir: string) {
    const q = sw.datapath.packetIns;
    q.onReady = () => this.scheduleDrain();
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      const left = this.sw.datapath.packetIns.drain((info, data, total) => {
        this.byBridge.get(info.bridge)?.packetIn(info, data, total);
      }, PACKET_INS_PER_TURN);
      if (left > 0) this.scheduleDrain();
    });
  }

  /** Opens endpoints for bridges that have none, closes those of bridges that are gone. */
  async sync(cfg: NodeConfig): Promise<void> {
    for (const [name, ep] of this.byBridge) {
      if (!this.sw.bridges.has(name)) { this.byBridge.delete(name); await ep.close(); }
    }
    for (const [name, br] of this.sw.bridges) {
      if (this.byBridge.has(name)) continue;
      const extra = cfg.openflow?.[name];
      const ep = new OfEndpoint(new SwitchBridgeHandle(this.sw, br), {
        mgmtPath: path.join(this.runDir, `${name}.mgmt`),
        listen: extra?.listen ?? '', controller: extra?.controller ?? '',
      });
      this.byBridge.set(name, ep);
      await ep.start();
    }
  }

  /** The `openflow` control command: per bridge, the socket, the controller state and the counters. */
  report(json: boolean): JsonValue {
    const rows: { [k: string]: JsonValue }[] = [];
    for (const [name, ep] of this.byBridge) {
      rows.push({
        bridge: name, mgmt: ep.opts.mgmtPath, listen: ep.opts.listen, listen_port: ep.listenPort,
        controller: ep.opts.controller, controller_connected: ep.controllerConnected,
        controller_connects: ep.nControllerConnects, async_subscribers: ep.asyncSubscribers, ...ep.counters.toJson(),
        packet_ins_queued: this.sw.datapath.packetIns.nQueued,
        packet_ins_dropped: this.sw.datapath.packetIns.nDroppedBatch + this.sw.datapath.packetIns.nDroppedFull,
      });
    }
    if (json) return rows;
    return rows.map((r) => Object.entries(r).filter(([, v]) => v !== '').map(([k, v]) => `${k}=${String(v)}`).join(' ')).join('\n');
  }

  async close(): Promise<void> {
    this.sw.datapath.packetIns.onReady = null;
    const all = [...this.byBridge.values()];
    this.byBridge.clear();
    await Promise.all(all.map((e) => e.close()));
  }
}
