/**
 * One topology applied to a running switch: this node's config generated from it
 * (dvr/node-config.ts, keeping what the previous one allocated), the difference to the config
 * the switch runs (dvr/diff.ts), and that difference applied (control/switch.ts applyDiff).
 * Whatever the source (file or etcd, control/topology-source.ts), every change goes through here.
 *
 * Called by: control/daemon.ts (each change of its topology source), bench/control.ts.
 * Throws (ConfigError, FlowdError) when this node cannot be built from the topology; then the
 * switch is untouched and the caller keeps its current config.
 */
import type { NodeConfig } from './config';
import { Topology } from '../dvr/topology';
import { DvrNodeConfig, nodeConfig } from '../dvr/node-config';
import { BridgeDiff, diffNodeConfigs } from '../dvr/diff';
import type { Switch } from './switch';

/**
 * This node's config from `topology`; `node` supplies the node name and control socket;
 * `haMasters`: the HA routers this node's keepalived is master for (their SNAT part is here).
 */
export function nodeConfigFor(node: NodeConfig, topology: Topology, previous?: DvrNodeConfig,
                              haMasters: ReadonlySet<string> = new Set()): DvrNodeConfig {
  const nc = nodeConfig(topology, node.node, previous, haMasters);
  nc.controlSocket = node.controlSocket;
  nc.openflow = node.openflow;
  return nc;
}

/** What runs beside the switch and follows the topology (the DHCP agent makes devices before the switch opens them). */
export interface ApplyHooks { beforeApply?(next: DvrNodeConfig): void; afterApply?(next: DvrNodeConfig): void }

/** Applies `topology` to `sw`, which runs `current`; returns the new config and what changed. */
export function applyTopology(sw: Switch, node: NodeConfig, current: NodeConfig, topology: Topology,
                              hooks: ApplyHooks = {}, haMasters: ReadonlySet<string> = new Set()):
                              { next: DvrNodeConfig; diffs: BridgeDiff[] } {
  const next = nodeConfigFor(node, topology, 'plan' in current ? current as DvrNodeConfig : undefined, haMasters);
  const diffs = diffNodeConfigs(current, next);
  hooks.beforeApply?.(next);
  sw.applyDiff(diffs, next);
  hooks.afterApply?.(next);
  return { next, diffs };
}

/** The counts of a diff, for the `topology_applied` log line. */
export function diffCounts(diffs: BridgeDiff[]): { [k: string]: number } {
  const sum = (f: (d: BridgeDiff) => number): number => diffs.reduce((n, d) => n + f(d), 0);
  return {
    bridges_changed: diffs.length, flows_added: sum((d) => d.addFlows.length), flows_modified: sum((d) => d.modifyFlows.length),
    flows_deleted: sum((d) => d.deleteFlows.length), ports_added: sum((d) => d.addPorts.length), ports_removed: sum((d) => d.removePorts.length),
  };
}
