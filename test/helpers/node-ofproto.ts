/**
 * A node's generated bridges (dvr/node-config.ts) in an Ofproto, with patch peers, VLAN tags and
 * tunnel ends, as the daemon's Switch builds them but without ports to open: what the flow
 * walks and the OVS-oracle comparisons trace. Test-only.
 */
import type { NodeConfig } from '../../src/control/config';
import { Bridge } from '../../src/ofproto/bridge';
import { Ofproto, TunnelEnds } from '../../src/ofproto/ofproto';
import { BridgeView } from '../../src/ofproto/bridge-view';
import { ipv4FromString } from '../../src/packet/ipv4';

export function ofprotoOfNode(cfg: NodeConfig): Ofproto {
  const op = new Ofproto();
  for (const bc of cfg.bridges) {
    const b = new Bridge(bc.name, 0, { defaultFlow: false });
    for (const p of bc.ports) {
      const peerBridge = p.kind === 'patch' ? cfg.bridges.find((x) => x.ports.some((q) => q.name === p.peer))!.name : undefined;
      b.addPort({ name: p.name, ofport: p.ofport, kind: p.kind, tag: p.tag === 0 ? undefined : p.tag,
                  peerBridge, peerPort: p.kind === 'patch' ? p.peer : undefined });
    }
    b.addFlows(bc.flows.map((f) => f.text).join('\n'), 0, bc.flows[0].file);
    const tunnels = new Map<string, TunnelEnds>(bc.ports.filter((p) => p.remoteIp !== '')
      .map((p) => [p.name, { localIp: ipv4FromString(p.localIp), remoteIp: ipv4FromString(p.remoteIp) }]));
    op.addBridge(new BridgeView(b, tunnels));
  }
  return op;
}
