/**
 * The OpenFlow endpoints of a whole switch: one OfEndpoint per bridge, kept in step with the
 * bridges as the topology changes (a bridge added gets its `<rundir>/<bridge>.mgmt`, a bridge
 * removed loses it). Who calls: cli/daemon.ts (sync at start and after each applied topology
 * diff, close at shutdown) and control/commands.ts (the `openflow` counters command).
 */
import * as path from 'node:path';
import type { Switch } from '../switch';
import type { NodeConfig } from '../config';
import type { JsonValue } from '../server';
import { OfEndpoint } from './endpoint';
import { SwitchBridgeHandle } from './bridge-handle';

export class OfEndpoints {
  readonly byBridge = new Map<string, OfEndpoint>();

  constructor(private readonly sw: Switch, readonly runDir: string) {}

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
        controller_connects: ep.nControllerConnects, ...ep.counters.toJson(),
      });
    }
    if (json) return rows;
    return rows.map((r) => Object.entries(r).filter(([, v]) => v !== '').map(([k, v]) => `${k}=${String(v)}`).join(' ')).join('\n');
  }

  async close(): Promise<void> {
    const all = [...this.byBridge.values()];
    this.byBridge.clear();
    await Promise.all(all.map((e) => e.close()));
  }
}
