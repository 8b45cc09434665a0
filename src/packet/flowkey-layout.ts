/**
 * The flow key: a fixed layout of 32-bit words, host order, one key per packet.
 *
 * Who uses it: packet/flowkey.ts fills it from a frame; ofproto/ matches rules against it
 * (a match is a value/mask pair of the same layout); dpif/ hashes and compares it in the
 * exact-match and megaflow caches. Every layer indexes keys as `keys[base + W_*]` with
 * `base = i * KEY_WORDS`, so a batch of keys is one Uint32Array.
 *
 * Layout choices:
 * - Words that a frame (plus its in_port and tunnel metadata) determines come first,
 *   [0, PACKET_WORDS). Pipeline state that is zero when a frame enters the datapath
 *   (ct_*, metadata, registers) comes after, so the ingress caches may hash a prefix.
 * - Small fields share a word, as OVS packs them; masks are bitwise, so the classifier
 *   never needs to know where one field ends.
 * - As in OVS's struct flow, ARP reuses nw_proto (op), nw_src (spa) and nw_dst (tpa),
 *   ICMP type/code live in tp_src/tp_dst, and IPv6 neighbour discovery's source/target
 *   link-layer addresses (nd_sll, nd_tll) live in arp_sha/arp_tha. The field table in ofproto/fields.ts names them.
 * - MACs are split as hi = top 16 bits, lo = low 32 bits.
 * - vlan_tci follows OVS: 0 means untagged; a tagged frame has the CFI bit (0x1000) set,
 *   so VLAN 0 with priority 0 is 0x1000, not 0.
 */

export const W_IN_PORT = 0;
export const W_RECIRC_ID = 1;
export const W_TUN_ID_HI = 2;
export const W_TUN_ID_LO = 3;
export const W_TUN_SRC = 4;
export const W_TUN_DST = 5;
export const W_DL_DST_HI = 6;
export const W_DL_DST_LO = 7;
export const W_DL_SRC_HI = 8;
export const W_DL_SRC_LO = 9;
/** vlan_tci << 16 | dl_type */
export const W_VLAN_DLTYPE = 10;
/** IPv4 source, or ARP spa */
export const W_NW_SRC = 11;
/** IPv4 destination, or ARP tpa */
export const W_NW_DST = 12;
/** nw_proto << 24 | nw_tos << 16 | nw_ttl << 8 | nw_frag; ARP op goes in nw_proto */
export const W_NW_MISC = 13;
/** tp_src << 16 | tp_dst; ICMP type in tp_src, code in tp_dst */
export const W_TP = 14;
/** TCP flags, low 12 bits */
export const W_TCP_FLAGS = 15;
export const W_ARP_SHA_HI = 16;
export const W_ARP_SHA_LO = 17;
export const W_ARP_THA_HI = 18;
export const W_ARP_THA_LO = 19;
/** IPv6 source, 4 words, most significant first */
export const W_IPV6_SRC = 20;
/** IPv6 destination, 4 words, most significant first */
export const W_IPV6_DST = 24;
/** IPv6 ND target (ICMPv6 NS/NA), 4 words, most significant first; nd_sll/nd_tll use arp_sha/tha. */
export const W_ND_TARGET = 28;
/** IPv6 flow label, low 20 bits */
export const W_IPV6_LABEL = 32;
/** Words a frame determines at ingress (with in_port and tunnel metadata). */
export const PACKET_WORDS = 33;
export const W_CT_STATE = 33;
export const W_CT_ZONE = 34;
export const W_CT_MARK = 35;
export const W_METADATA_HI = 36;
export const W_METADATA_LO = 37;
/** reg0..reg15 at W_REG0 + n */
export const W_REG0 = 38;
export const N_REGS = 16;
/** conj_id: set only while the classifier looks up a completed conjunction (ofproto/classifier.ts). */
export const W_CONJ_ID = 54;
export const KEY_WORDS = 55;

/** nw_frag bits, as OVS's FLOW_NW_FRAG_* */
export const NW_FRAG_ANY = 1;
export const NW_FRAG_LATER = 2;

/** vlan_tci CFI bit: set on every tagged frame (OVS's VLAN_CFI). */
export const VLAN_CFI = 0x1000;
