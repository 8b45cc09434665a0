/**
 * nodeConfig(): a topology and a node name -> the NodeConfig the daemon loads (the same shape
 * control/config.ts reads from a node file): bridges br-int, br-tun and the mapped physical
 * bridges (br-ex, br-vlan, ...) of the physical networks the node needs, with patch ports, VM ports,
 * tunnel ports and flows. Flow lines are named "<generated:NODE:BRIDGE>" with 1-based line
 * numbers in dump-flows order.
 * Called by: the daemon and the lab (through the topology file), tests.
 *
 * Passing the node's previous DvrNodeConfig keeps its local VLANs and OpenFlow port numbers
 * for everything still there, so diffNodeConfigs() (dvr/diff.ts) finds only what changed.
 */
import type { BridgeConfig, FlowLine, NodeConfig, PortConfig } from '../control/config';
import { Announcement, announcements } from './announce';
import { intFlows } from './flows-int';
import { physFlows } from './flows-physical';
import { nsPlan } from './ns-plan';
import { tunFlows } from './flows-tun';
import { BR_INT, BR_TUN, intPatchName, NodePlan, PATCH_INT, PATCH_TUN, phyPatchName, planNode, PlanMemory } from './node-plan';
import { Topology } from './topology';

export interface DvrNodeConfig extends NodeConfig {
  /** network name -> local VLAN on this node. */
  localVlans: Map<string, number>;
  /** The plan the config was made from (tests and the lab read it). */
  plan: NodePlan;
  /**
   * ARP announcements for the external network (dvr/announce.ts): after applying a diff the
   * daemon sends announcementsToSend(old.announcements, new.announcements).
   */
  announcements: Announcement[];
}

const VXLAN_UDP_PORT = 4789;

function port(name: string, ofport: number, over: Partial<PortConfig>): PortConfig {
  return { name, ofport, kind: 'afpacket', tag: 0, peer: '', remoteIp: '', localIp: '', key: 'flow', dstPort: 0, line: 0, ...over };
}

function lines(node: string, bridge: string, texts: string[]): FlowLine[] {
  const file = `<generated:${node}:${bridge}>`;
  return texts.map((text, i) => ({ text, file, line: i + 1 }));
}

function memoryOf(prev: DvrNodeConfig | undefined): PlanMemory | undefined {
  if (prev === undefined) return undefined;
  const ofports = new Map<string, Map<string, number>>();
  for (const b of prev.bridges) ofports.set(b.name, new Map(b.ports.map((p) => [p.name, p.ofport])));
  return { localVlans: prev.localVlans, ofports };
}

/** `haMasters`: the HA routers this node is VRRP master for (their SNAT part is installed here). */
export function nodeConfig(topology: Topology, nodeName: string, previous?: DvrNodeConfig,
                           haMasters: ReadonlySet<string> = new Set()): DvrNodeConfig {
  const plan = planNode(topology, nodeName, memoryOf(previous), haMasters);
  const n = plan.node.name;
  const intPorts = plan.ofports.get(BR_INT)!;
  const tunPorts = plan.ofports.get(BR_TUN)!;

  const brInt: BridgeConfig = { name: BR_INT, ports: [], flows: lines(n, BR_INT, intFlows(plan)), line: 0 };
  brInt.ports.push(port(PATCH_TUN, intPorts.get(PATCH_TUN)!, { kind: 'patch', peer: PATCH_INT }));
  for (const ph of plan.physicals) {
    brInt.ports.push(port(intPatchName(ph.bridge), ph.intOfport, { kind: 'patch', peer: phyPatchName(ph.bridge) }));
  }
  for (const lp of plan.localPorts) brInt.ports.push(port(lp.port.device, lp.ofport, { tag: lp.lv, line: lp.port.line }));

  const brTun: BridgeConfig = { name: BR_TUN, ports: [], flows: lines(n, BR_TUN, tunFlows(plan)), line: 0 };
  brTun.ports.push(port(PATCH_INT, tunPorts.get(PATCH_INT)!, { kind: 'patch', peer: PATCH_TUN }));
  for (const t of plan.tunnels) {
    brTun.ports.push(port(t.name, t.ofport, {
      kind: t.type, remoteIp: t.remote.localIp, localIp: plan.node.localIp, key: 'flow',
      dstPort: t.type === 'vxlan' ? VXLAN_UDP_PORT : 0, line: t.remote.line,
    }));
  }

  const bridges = [brInt, brTun];
  const ns = nsPlan(plan);
  for (const ph of plan.physicals) {
    const b = ph.bridge;
    const brPhys: BridgeConfig = { name: b, ports: [], flows: lines(n, b, physFlows(plan, ph, ns)), line: 0 };
    brPhys.ports.push(port(phyPatchName(b), ph.phyOfport, { kind: 'patch', peer: intPatchName(b) }));
    if (ph.device !== '') brPhys.ports.push(port(ph.device, plan.ofports.get(b)!.get(ph.device)!, {}));
    bridges.push(brPhys);
  }
  return { file: topology.file, node: n, controlSocket: '', bridges, localVlans: plan.localVlans, plan,
    announcements: announcements(plan, ns) };
}
