/**
 * diffNodeConfigs(): what the daemon must change to go from one generated NodeConfig to the
 * next, per bridge, so that flows and ports that did not change are not touched (a ping
 * running across the change loses nothing).
 * Called by: the daemon when the topology file changes; tests.
 *
 * A flow's identity is its table, priority and match (what `del-flows --strict` and
 * `mod-flows --strict` name); same identity with other actions is a modification. A port's
 * identity is its name; same name with another number, kind, tag, peer or tunnel end is a
 * modification (the daemon re-creates it). Bridges present on one side only come out with
 * all their ports and flows as added or removed. Order of application that keeps traffic
 * flowing: add ports, add and modify flows, delete flows, remove ports.
 */
import type { BridgeConfig, FlowLine, NodeConfig, PortConfig } from '../control/config';
import { splitFlow } from './flow-text';

export interface BridgeDiff {
  bridge: string;
  /** 'added' or 'removed' when the whole bridge comes or goes, else 'changed'. */
  state: 'added' | 'removed' | 'changed';
  addFlows: FlowLine[];
  /** New text of flows whose actions changed (apply as mod-flows --strict). */
  modifyFlows: FlowLine[];
  /**
   * Flows to remove, as their identity only ("table=T,priority=P,MATCH", no actions: what
   * del-flows --strict takes; a del-flows spec with actions is a syntax error).
   */
  deleteFlows: FlowLine[];
  addPorts: PortConfig[];
  modifyPorts: PortConfig[];
  removePorts: PortConfig[];
}

function samePort(a: PortConfig, b: PortConfig): boolean {
  return a.ofport === b.ofport && a.kind === b.kind && a.tag === b.tag && a.peer === b.peer &&
    a.remoteIp === b.remoteIp && a.localIp === b.localIp && a.key === b.key && a.dstPort === b.dstPort;
}

function emptyBridge(name: string): BridgeConfig {
  return { name, ports: [], flows: [], line: 0 };
}

function diffBridge(oldB: BridgeConfig, newB: BridgeConfig, state: BridgeDiff['state']): BridgeDiff {
  const d: BridgeDiff = { bridge: newB.name || oldB.name, state, addFlows: [], modifyFlows: [], deleteFlows: [], addPorts: [], modifyPorts: [], removePorts: [] };
  const oldFlows = new Map<string, { line: FlowLine; actions: string }>();
  for (const fl of oldB.flows) {
    const s = splitFlow(fl.text);
    oldFlows.set(s.key, { line: fl, actions: s.actions });
  }
  const newKeys = new Set<string>();
  for (const fl of newB.flows) {
    const s = splitFlow(fl.text);
    newKeys.add(s.key);
    const o = oldFlows.get(s.key);
    if (o === undefined) d.addFlows.push(fl);
    else if (o.actions !== s.actions) d.modifyFlows.push(fl);
  }
  for (const [k, o] of oldFlows) if (!newKeys.has(k)) d.deleteFlows.push({ ...o.line, text: k });

  const oldPorts = new Map(oldB.ports.map((p) => [p.name, p]));
  const newNames = new Set(newB.ports.map((p) => p.name));
  for (const p of newB.ports) {
    const o = oldPorts.get(p.name);
    if (o === undefined) d.addPorts.push(p);
    else if (!samePort(o, p)) d.modifyPorts.push(p);
  }
  for (const p of oldB.ports) if (!newNames.has(p.name)) d.removePorts.push(p);
  return d;
}

/** Per bridge (new order, then bridges only in `oldConfig`), what changes; unchanged bridges are left out. */
export function diffNodeConfigs(oldConfig: NodeConfig, newConfig: NodeConfig): BridgeDiff[] {
  const out: BridgeDiff[] = [];
  for (const nb of newConfig.bridges) {
    const ob = oldConfig.bridges.find((b) => b.name === nb.name);
    const d = diffBridge(ob ?? emptyBridge(''), nb, ob === undefined ? 'added' : 'changed');
    if (d.state === 'added' || d.addFlows.length + d.modifyFlows.length + d.deleteFlows.length +
        d.addPorts.length + d.modifyPorts.length + d.removePorts.length > 0) out.push(d);
  }
  for (const ob of oldConfig.bridges) {
    if (newConfig.bridges.some((b) => b.name === ob.name)) continue;
    const d = diffBridge(ob, emptyBridge(''), 'removed');
    d.bridge = ob.name;
    out.push(d);
  }
  return out;
}
