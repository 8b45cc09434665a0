/**
 * Generated DVR nodes loaded into Open vSwitch (test/helpers/ovs-oracle.ts), for the tests that
 * have OVS execute flowd's generated flows: one private ovs-vswitchd per node, the generated
 * bridges, port numbers and flows, and a check that OVS holds every generated flow (each
 * accepted, none collapsed into another).
 */
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { OvsOracle } from './ovs-oracle';
import type { Topology } from '../../src/dvr/topology';
import { DvrNodeConfig, nodeConfig } from '../../src/dvr/node-config';

export interface DvrOracleNode { o: OvsOracle; cfg: DvrNodeConfig; dp: (name: string) => number }

export class DvrOracles {
  private readonly started: OvsOracle[] = [];
  private readonly nodes = new Map<string, DvrOracleNode>();

  /** Node `name` of `t`, started once per `key`. */
  node(t: Topology, key: string, name: string): DvrOracleNode {
    const have = this.nodes.get(key);
    if (have) return have;
    const o = OvsOracle.start();
    this.started.push(o);
    const cfg = nodeConfig(t, name);
    for (const b of cfg.bridges) {
      o.addBridge(b.name, b.ports.map((p) => ({
        name: p.name, ofport: p.ofport, type: p.kind === 'patch' ? 'patch' as const : 'dummy' as const,
        peer: p.peer, tag: p.tag === 0 ? undefined : p.tag,
      })));
      o.addFlows(b.name, b.flows.map((f) => f.text).join('\n'));
      const dumped = o.dumpFlows(b.name).split('\n').filter((l) => l.includes('actions='));
      assert.equal(dumped.length, b.flows.length, `${name} ${b.name}: OVS holds every generated flow`);
    }
    const ports = o.dpPorts();
    const dp = (portName: string): number => {
      for (const [n, v] of ports) if (v.name === portName) return n;
      throw new Error(`no datapath port ${portName}`);
    };
    const n = { o, cfg, dp };
    this.nodes.set(key, n);
    return n;
  }

  /**
   * Asks each oracle's two daemons to exit through their own control sockets first (SIGTERM
   * makes ovs-vswitchd linger for seconds), then lets stop() check the PIDs and clean up.
   */
  stopAll(): void {
    for (const o of this.started) {
      try {
        o.appctl(['exit']);
        execFileSync('ovs-appctl', ['-t', `${o.dir}/ovsdb-server.ctl`, 'exit'], { stdio: 'pipe', timeout: 5000 });
      } catch { /* stop() below still kills them by PID */ }
      o.stop();
    }
  }
}
