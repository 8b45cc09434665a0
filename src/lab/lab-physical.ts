/**
 * The lab's physical networks: one segment per physical network (a Linux bridge in its own
 * namespace, like the underlay fl-ul) joining the device every node plugs into that network's
 * bridge (physical_interfaces). The external network's physical network keeps its own segment
 * fl-ext with the upstream host (lab.ts); every other physical network gets `fl-pn-<physnet>`
 * with the bridge `pnbr` (no VLAN filtering, the default: 802.1Q frames of every VID cross it as they are,
 * the way a trunk between hypervisors carries them) and one port `pn-<node>` per node.
 *
 * Called by: lab/lab.ts (plumb), lab/lab-check-physical.ts and lab/lab-check-ns.ts (where to
 * capture). Owns the namespaces it makes (recorded in the lab state, deleted by `lab down`).
 */
import type { Topology, TopoNode } from '../dvr/topology';
import { LabState, nodeNs, PREFIX } from './lab-state';
import { ipIn, newNamespace, vethBetween } from './shell';

export const PHYS_BRIDGE = 'pnbr';

/** The physical network of the topology's router:external network, '' when there is none. */
export function externalPhysnet(t: Topology): string {
  return t.networks.find((n) => n.external)?.physicalNetwork ?? '';
}

/** The device node `n` plugs into the bridge of `physnet`, '' when none. */
export function physicalDevice(n: TopoNode, physnet: string): string {
  const br = n.bridgeMappings.get(physnet);
  return br === undefined ? '' : n.physicalInterfaces.get(br) ?? '';
}

export function physNs(physnet: string): string {
  return `${PREFIX}pn-${physnet.toLowerCase()}`;
}

function peerName(n: TopoNode): string {
  return `pn-${n.name.toLowerCase()}`.slice(0, 15);
}

/** Physical networks other than the external one that some node has a device on, in first-seen order. */
export function labPhysnets(t: Topology): string[] {
  const ext = externalPhysnet(t);
  const out: string[] = [];
  for (const n of t.nodes) {
    for (const physnet of n.bridgeMappings.keys()) {
      if (physnet !== ext && !out.includes(physnet) && physicalDevice(n, physnet) !== '') out.push(physnet);
    }
  }
  return out;
}

/** Makes the segment of every lab physical network and plugs each node's device into it. */
export function plumbPhysical(t: Topology, st: LabState): void {
  for (const physnet of labPhysnets(t)) {
    const ns = physNs(physnet);
    newNamespace(ns);
    st.namespaces.push(ns);
    ipIn(ns, 'link', 'add', PHYS_BRIDGE, 'up', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    for (const n of t.nodes) {
      const dev = physicalDevice(n, physnet);
      if (dev === '') continue;
      vethBetween(nodeNs(n), dev, ns, peerName(n));
      ipIn(ns, 'link', 'set', peerName(n), 'master', PHYS_BRIDGE);
    }
  }
}
