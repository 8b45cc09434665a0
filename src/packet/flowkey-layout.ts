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

/**
 * The layout as a const enum: TypeScript writes each use as a literal number, so hot loops
 * (dpif/stages.ts, emc.ts, flow-hash.ts, flowkey.ts's common parse) index keys with constants.
 * An imported `const` is not one at run time: in the CommonJS that tsc emits it is a property
 * load from the exporting module's object at every use (measured: the extract stage 12 %
 * faster with literals for its ten key words). The W_* names below are the same numbers, for
 * code where a load does not matter.
 */
export const enum W {
  IN_PORT = 0,
  RECIRC_ID = 1,
  TUN_ID_HI = 2,
  TUN_ID_LO = 3,
  TUN_SRC = 4,
  TUN_DST = 5,
  DL_DST_HI = 6,
  DL_DST_LO = 7,
  DL_SRC_HI = 8,
  DL_SRC_LO = 9,
  VLAN_DLTYPE = 10,
  NW_SRC = 11,
  NW_DST = 12,
  NW_MISC = 13,
  TP = 14,
  TCP_FLAGS = 15,
  ARP_SHA_HI = 16,
  ARP_SHA_LO = 17,
  ARP_THA_HI = 18,
  ARP_THA_LO = 19,
  IPV6_SRC = 20,
  IPV6_DST = 24,
  ND_TARGET = 28,
  IPV6_LABEL = 32,
  PACKET_WORDS = 33,
  CT_STATE = 33,
  CT_ZONE = 34,
  CT_MARK = 35,
  METADATA_HI = 36,
  METADATA_LO = 37,
  REG0 = 38,
  CONJ_ID = 54,
  KEY_WORDS = 55,
}

export const W_IN_PORT = W.IN_PORT;
export const W_RECIRC_ID = W.RECIRC_ID;
export const W_TUN_ID_HI = W.TUN_ID_HI;
export const W_TUN_ID_LO = W.TUN_ID_LO;
export const W_TUN_SRC = W.TUN_SRC;
export const W_TUN_DST = W.TUN_DST;
export const W_DL_DST_HI = W.DL_DST_HI;
export const W_DL_DST_LO = W.DL_DST_LO;
export const W_DL_SRC_HI = W.DL_SRC_HI;
export const W_DL_SRC_LO = W.DL_SRC_LO;
/** vlan_tci << 16 | dl_type */
export const W_VLAN_DLTYPE = W.VLAN_DLTYPE;
/** IPv4 source, or ARP spa */
export const W_NW_SRC = W.NW_SRC;
/** IPv4 destination, or ARP tpa */
export const W_NW_DST = W.NW_DST;
/** nw_proto << 24 | nw_tos << 16 | nw_ttl << 8 | nw_frag; ARP op goes in nw_proto */
export const W_NW_MISC = W.NW_MISC;
/** tp_src << 16 | tp_dst; ICMP type in tp_src, code in tp_dst */
export const W_TP = W.TP;
/** TCP flags, low 12 bits */
export const W_TCP_FLAGS = W.TCP_FLAGS;
export const W_ARP_SHA_HI = W.ARP_SHA_HI;
export const W_ARP_SHA_LO = W.ARP_SHA_LO;
export const W_ARP_THA_HI = W.ARP_THA_HI;
export const W_ARP_THA_LO = W.ARP_THA_LO;
/** IPv6 source, 4 words, most significant first */
export const W_IPV6_SRC = W.IPV6_SRC;
/** IPv6 destination, 4 words, most significant first */
export const W_IPV6_DST = W.IPV6_DST;
/** IPv6 ND target (ICMPv6 NS/NA), 4 words, most significant first; nd_sll/nd_tll use arp_sha/tha. */
export const W_ND_TARGET = W.ND_TARGET;
/** IPv6 flow label, low 20 bits */
export const W_IPV6_LABEL = W.IPV6_LABEL;
/** Words a frame determines at ingress (with in_port and tunnel metadata). */
export const PACKET_WORDS = W.PACKET_WORDS;
export const W_CT_STATE = W.CT_STATE;
export const W_CT_ZONE = W.CT_ZONE;
export const W_CT_MARK = W.CT_MARK;
export const W_METADATA_HI = W.METADATA_HI;
export const W_METADATA_LO = W.METADATA_LO;
/** reg0..reg15 at W_REG0 + n */
export const W_REG0 = W.REG0;
export const N_REGS = 16;
/** conj_id: set only while the classifier looks up a completed conjunction (ofproto/classifier.ts). */
export const W_CONJ_ID = W.CONJ_ID;
export const KEY_WORDS = W.KEY_WORDS;

/** nw_frag bits, as OVS's FLOW_NW_FRAG_* */
export const NW_FRAG_ANY = 1;
export const NW_FRAG_LATER = 2;

/** vlan_tci CFI bit: set on every tagged frame (OVS's VLAN_CFI). */
export const VLAN_CFI = 0x1000;
