/**
 * Generated DVR topologies of any size, as topology-file text: N nodes (the last one dvr_snat),
 * R distributed routers with two tenant networks (VXLAN) each, P VM ports spread over the
 * networks and bound round the nodes. Deterministic: the same sizes give the same text.
 *
 * Used by: bench/control.ts (100 nodes, 1,000 ports, 100 routers), test/control/topology-apply
 * (small sizes, random port changes on top). fipPortsPerRouter (the old fg- shape of a file) is
 * used by test/dvr/north-south-flows and test/control/topology-keys. Not a test itself.
 *
 * A port entry is one line (`portEntry`), so a caller can add, rebind or drop one port in the
 * text, or put the same entry (without the list's "- ") under an etcd key.
 */

export interface GenSizes { nodes: number; routers: number; ports: number }

const hex2 = (n: number): string => (n & 0xff).toString(16).padStart(2, '0');
const pad = (n: number, w: number): string => String(n).padStart(w, '0');

/** `fa:16:3e:KIND:..:..`: kind 1 router interfaces, 3 VM ports. */
export function genMac(kind: number, n: number): string {
  return `fa:16:3e:${hex2(kind)}:${hex2(n >> 8)}:${hex2(n)}`;
}

export function nodeName(n: number): string {
  return `N${pad(n, 3)}`;
}

export function portName(i: number): string {
  return `p${pad(i, 4)}`;
}

/** Node a port is bound to in the generated topology (1-based node numbers, a stride of 7). */
export function homeNode(s: GenSizes, i: number): string {
  return nodeName(((i * 7) % s.nodes) + 1);
}

/** Port i's entry as a flow mapping (one line); `node` binds it ('' leaves it unbound). */
export function portEntry(s: GenSizes, i: number, node: string): string {
  const nNets = 2 * s.routers;
  const net = i % nNets;
  const host = 10 + Math.floor(i / nNets);
  const binding = node === '' ? '' : `, "binding:host_id": ${node}, device: tap${pad(i, 4)}`;
  return `{ name: ${portName(i)}, mac: "${genMac(3, i)}", network: net${pad(net, 3)}, ` +
    `fixed_ips: [10.${1 + (net >> 7)}.${net & 127}.${host}]${binding} }`;
}

/**
 * The topology text; `bound(i)` says where port i is bound (default: homeNode; '' unbound;
 * null leaves the port out), for callers that change ports. Port indexes may exceed
 * `s.ports - 1` through `extra`.
 */
export function generateTopology(s: GenSizes, bound: (i: number) => string | null = (i) => homeNode(s, i), extra: number[] = []): string {
  const out: string[] = ['nodes:'];
  for (let n = 1; n <= s.nodes; n++) {
    out.push(`  - { name: ${nodeName(n)}, agent_mode: ${n === s.nodes ? 'dvr_snat' : 'dvr'}, local_ip: 10.200.${n >> 8}.${n & 255}, ` +
      `underlay: { device: eth1, mac: "52:54:00:00:${hex2(n >> 8)}:${hex2(n)}" } }`);
  }
  out.push('networks:');
  for (let k = 0; k < 2 * s.routers; k++) out.push(`  - { name: net${pad(k, 3)}, network_type: vxlan, segmentation_id: ${2000 + k} }`);
  out.push('subnets:');
  for (let k = 0; k < 2 * s.routers; k++) {
    const p = `10.${1 + (k >> 7)}.${k & 127}`;
    out.push(`  - { name: sub${pad(k, 3)}, network: net${pad(k, 3)}, cidr: ${p}.0/24, gateway_ip: ${p}.1 }`);
  }
  out.push('routers:');
  for (let r = 0; r < s.routers; r++) {
    out.push(`  - name: r${pad(r, 3)}`, '    distributed: true', '    interfaces:');
    for (const k of [2 * r, 2 * r + 1]) out.push(`      - { subnet: sub${pad(k, 3)}, mac: "${genMac(1, k)}" }`);
  }
  out.push('ports:');
  const all = [...Array.from({ length: s.ports }, (_, i) => i), ...extra];
  for (const i of all) {
    const node = bound(i);
    if (node !== null) out.push(`  - ${portEntry(s, i, node)}`);
  }
  return out.join('\n') + '\n';
}

/** A topology text with its fg- ports written the old way: per router (`routers[R].fip_ports`). */
export function fipPortsPerRouter(text: string): string {
  return text.replace(/^fip_agent_gateways:.*\n((  - .*\n)+)/m, (_m, body: string) =>
    `    fip_ports:\n${body.replace(/^  - \{ node: (\w+), network: public, /gm, '      - { node: $1, ')}`);
}
