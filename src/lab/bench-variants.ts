/**
 * The two topologies of lab-bench's security-group comparison (`--compare port-security`),
 * made from one topology file's text: both run every node with firewall_driver openvswitch;
 *   filtered:   every VM port in one group per project (BENCH_GROUP) that accepts TCP to the
 *               iperf3 port and ICMP (lab up's pings) and lets everything out, so each frame of
 *               the stream walks Neutron's tables 60-94 with conntrack in both directions;
 *   unfiltered: every VM port with port_security_enabled false (no groups, no anti-spoofing).
 * Called by: lab/lab-bench.ts. Pure text transforms (yaml Document); the rest of the file
 * (comments, order, other keys) is kept.
 */
import { isMap, isSeq, parseDocument, YAMLMap } from 'yaml';

export const BENCH_GROUP = 'bench-iperf';

type Variant = 'filtered' | 'unfiltered';

function projectOf(p: YAMLMap): string {
  const v = p.get('project');
  return typeof v === 'string' ? v : 'admin';
}

/** `text` (a topology file) as the comparison's `variant`, allowing TCP to `iperfPort`. */
export function benchTopology(text: string, variant: Variant, iperfPort: number): string {
  const doc = parseDocument(text);
  const nodes = doc.get('nodes', true);
  if (isSeq(nodes)) for (const n of nodes.items) if (isMap(n)) n.set('firewall_driver', 'openvswitch');
  const ports = doc.get('ports', true);
  const projects = new Set<string>();
  if (isSeq(ports)) {
    for (const p of ports.items) {
      if (!isMap(p)) continue;
      p.delete('allowed_address_pairs');
      projects.add(projectOf(p));
      if (variant === 'filtered') {
        p.delete('port_security_enabled');
        p.set('security_groups', doc.createNode([BENCH_GROUP], { flow: true }));
      } else {
        p.set('port_security_enabled', false);
        p.set('security_groups', doc.createNode([], { flow: true }));
      }
    }
  }
  if (variant === 'filtered') {
    const groups = [...projects].map((project) => ({
      name: BENCH_GROUP, project,
      rules: [
        { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', port_range_min: iperfPort, port_range_max: iperfPort },
        { direction: 'ingress', ethertype: 'IPv4', protocol: 'icmp' },
        { direction: 'egress', ethertype: 'IPv4' },
        { direction: 'egress', ethertype: 'IPv6' },
      ],
    }));
    const existing = doc.get('security_groups', true);
    if (isSeq(existing)) for (const g of groups) existing.add(doc.createNode(g));
    else doc.set('security_groups', doc.createNode(groups));
  }
  return doc.toString();
}
