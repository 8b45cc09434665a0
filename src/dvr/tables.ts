/**
 * Table numbers of the generated flows: Neutron's OVS-agent numbers for br-tun and br-int,
 * and flowd's own router tables, picked where Neutron's br-int has nothing (it uses 0-4,
 * 23-25, 30-31, 59-62, 71-94). docs/dvr-tables.md describes every table and priority.
 * Called by: the dvr/flows-*.ts generators and their tests.
 */

/** br-tun (Neutron: neutron/plugins/ml2/drivers/openvswitch/agent/common/constants.py). */
export const TUN_PATCH_LV_TO_TUN = 0;
export const TUN_DVR_PROCESS = 1;
export const TUN_PATCH_LV_TO_TUN_2 = 2;
export const TUN_GRE_TO_LV = 3;
export const TUN_VXLAN_TO_LV = 4;
export const TUN_DVR_NOT_LEARN = 9;
export const TUN_LEARN_FROM_TUN = 10;
export const TUN_UCAST_TO_TUN = 20;
export const TUN_ARP_RESPONDER = 21;
export const TUN_FLOOD_TO_TUN = 22;
export const LEARN_HARD_TIMEOUT_S = 300;

/** br-int (Neutron). */
export const INT_LOCAL_SWITCHING = 0;
export const INT_DVR_TO_SRC_MAC = 1;
export const INT_DVR_TO_SRC_MAC_PHYSICAL = 2;
export const INT_ARP_DVR_MAC_TO_DST_MAC = 3;
export const INT_ARP_DVR_MAC_TO_DST_MAC_PHYSICAL = 4;
export const INT_TRANSIENT = 60;

/**
 * br-int, Neutron's OVS firewall driver (neutron-lib ovs_constants; neutron-firewall.md):
 * reg5 holds the VM port's OpenFlow port, reg6 its network's local VLAN, which is also the
 * conntrack zone; reg7 the conj_id that accepted a remote-group rule.
 */
export const INT_BASE_EGRESS = 71;
export const INT_RULES_EGRESS = 72;
export const INT_ACCEPT_OR_INGRESS = 73;
export const INT_BASE_INGRESS = 81;
export const INT_RULES_INGRESS = 82;
export const INT_ACCEPTED_EGRESS = 91;
export const INT_ACCEPTED_INGRESS = 92;
export const INT_DROPPED = 93;
export const INT_ACCEPTED_EGRESS_NORMAL = 94;
export const REG_PORT = 5;
export const REG_NET = 6;
export const REG_REMOTE_GROUP = 7;

/** br-int, flowd's own: the distributed router (what Neutron's qrouter- namespace does). */
/** Routing: gateway ARP, ICMP echo to router IPs, TTL check, connected and default routes. */
export const INT_FLOWD_ROUTE = 40;
/** Neighbours: destination IP on the egress network -> destination MAC, then deliver. */
export const INT_FLOWD_NEIGH = 41;
/**
 * SNAT on the dvr_snat node (what Neutron's snat- namespace does): traffic of a tenant subnet
 * for the outside, from the router's default route or arriving at an sg- MAC over a tunnel,
 * is source-NATed (conntrack, zone per router) to the router's gateway IP, or statelessly to
 * the floating IP of a dvr_no_external VM served centrally, and leaves through br-ex.
 */
export const INT_FLOWD_SNAT = 45;
/** Learns the upstream gateway's MAC from its ARP (only when the topology does not give it). */
export const INT_FLOWD_UPSTREAM_LEARN = 48;
/** The learned upstream MAC: sets dl_dst and outputs to the external bridge. */
export const INT_FLOWD_UPSTREAM = 49;
/**
 * External ingress (what Neutron's fip- namespace and snat- namespace's qg- port do): frames
 * from the external network, tagged with its local VLAN: ARP for the router's external
 * addresses (qg- IP, fg- IP, floating IPs), ICMP echo to them, replies to SNAT (to conntrack,
 * then table 51), floating-IP DNAT; the rest goes on to table 60 as before.
 */
export const INT_FLOWD_EXT_IN = 50;
/** After conntrack de-NATed a reply to the gateway IP: route it back to the inner host. */
export const INT_FLOWD_SNAT_REPLY = 51;

/**
 * Physical bridges (br-ex, br-vlan, ...; Neutron's constants, dvr-reference.md "Physical
 * networks"): table 0 sends br-int's frames to DVR processing and the wire's to table 3;
 * DVR_PROCESS_PHYSICAL keeps the gateway MAC off the wire; LOCAL_VLAN_TRANSLATION turns the
 * local VLAN into the network's VID (or untagged) and drops anything else from br-int;
 * DVR_NOT_LEARN_PHYSICAL hands frames from other nodes' DVR MACs to br-int without learning.
 */
export const PHYS_LOCAL_SWITCHING = 0;
export const PHYS_DVR_PROCESS = 1;
export const PHYS_LOCAL_VLAN_TRANSLATION = 2;
export const PHYS_DVR_NOT_LEARN = 3;

/**
 * The physical bridge (br-ex), flowd's own: Neutron's physical bridges use table 0 (and 1-3
 * for DVR on VLAN networks); flowd's external MTU check uses table 0 priority 5 and table 70.
 * Frames from the external network to an address this node serves (a floating IP, the qg-
 * address) are measured first: longer than the tenant network's MTU (plus 14 bytes of Ethernet)
 * means ICMP "fragmentation needed" back to the sender from that address (DF), or a counted
 * drop (no DF), before any NAT, so the error quotes what the sender sent.
 */
export const EX_FLOWD_MTU = 70;
export const PRIO_EX_MTU = 5;

/** Priorities of flowd's router tables (longest prefix first: 200 + 2 * prefix length). */
export const PRIO_ROUTER_ARP = 500;
export const PRIO_ROUTER_ECHO = 400;
export const PRIO_ROUTER_LOCAL_DROP = 390;
export const PRIO_ROUTER_TTL = 300;
export const PRIO_ROUTE_BASE = 200;
/** Source route of a VM with a floating IP on this node: above the default route, below every connected route. */
export const PRIO_ROUTE_FIP = 201;
export function routePriority(prefixLen: number): number {
  return PRIO_ROUTE_BASE + 2 * prefixLen;
}
export const PRIO_ROUTER_UNREACHABLE = 1;
