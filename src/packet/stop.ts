/**
 * Why flow-key extraction (packet/flowkey.ts) or a header check stopped.
 *
 * Who uses it: packet/flowkey.ts returns one per frame; packet/vxlan.ts and packet/gre.ts
 * validators return one; netdev/ tunnel decap and dpif/ count drops per reason in a
 * Uint32Array of N_STOP counters indexed by the code, and print them with STOP_NAMES.
 *
 * Two kinds, split at FIRST_DROP:
 * - "Stop but forward" (Ok .. FIRST_DROP-1): the frame is well formed as far as flowd
 *   understands it; the key is valid up to the last layer parsed and the frame goes through
 *   the pipeline like any other. Examples: an ethertype flowd does not parse (the key has
 *   L2 fields only), an IPv4/IPv6 fragment with a nonzero offset (no L4 fields, as OVS).
 * - "Malformed -> drop" (FIRST_DROP ..): a header is cut or violates its RFC; the key holds
 *   the layers before the bad one, and the datapath drops the frame and counts the reason.
 * isDrop() is the one test callers use; never compare against individual codes for that.
 *
 * Invariant: codes are dense 0 .. N_STOP-1 and STOP_NAMES[code] is the counter name
 * (snake_case, stable: scripts and tests read them).
 */
export enum Stop {
  /** The whole frame was understood (or the L4 protocol is one flowd does not parse). */
  Ok = 0,
  /** Ethertype not parsed beyond L2 (including 802.3 length frames without SNAP). */
  UnknownEthertype,
  /** 802.1ad/QinQ: the outer tag was parsed; the inner tag and the rest pass as payload. */
  QinqInner,
  /** ARP/RARP whose hardware/protocol is not Ethernet/IPv4: only dl_type is in the key. */
  ArpNotEthIpv4,
  /** IPv4 or IPv6 fragment with a nonzero offset: L3 fields only, no L4 fields. */
  LaterFragment,

  // ---- malformed: drop ----
  /** The frame has no bytes at all. */
  ZeroLength,
  /** Shorter than the 14-byte Ethernet header. */
  TruncatedEth,
  /** An 802.1Q/802.1ad TPID with fewer than 4 bytes after it. */
  TruncatedVlan,
  /** 802.3 length frame shorter than its Length field says (IEEE 802.3 s3.2.6). */
  TruncatedLlc,
  /** ARP shorter than its 28-byte Ethernet/IPv4 body. */
  TruncatedArp,
  /** Fewer than 20 bytes for the IPv4 header, or fewer than IHL*4 bytes. */
  TruncatedIpv4,
  /** IPv4 header whose version nibble is not 4. */
  BadIpv4Version,
  /** IPv4 IHL below 5 (RFC 791 s3.1: minimum 5 words). */
  BadIhl,
  /** IPv4 total length smaller than the header or larger than the frame. */
  BadIpv4TotalLength,
  /** Fragment whose offset*8 + payload exceeds 65535 bytes (RFC 791 / RFC 8200 s4.5). */
  BadFragment,
  /** Fewer than 40 bytes for the IPv6 header, or an extension header cut. */
  TruncatedIpv6,
  /** IPv6 header whose version nibble is not 6. */
  BadIpv6Version,
  /** IPv6 payload length larger than the frame. */
  BadIpv6PayloadLength,
  /** An IPv6 extension header out of place (hop-by-hop not first, RFC 8200 s4.3). */
  BadIpv6ExtHeader,
  /** TCP header cut (fewer than 20 bytes, or fewer than data offset * 4). */
  TruncatedTcp,
  /** TCP data offset below 5 words (RFC 793 s3.1). */
  BadTcpOffset,
  /** UDP header cut (fewer than 8 bytes). */
  TruncatedUdp,
  /** UDP length field below 8 or beyond the IP payload (RFC 768). */
  BadUdpLength,
  /** ICMPv4 shorter than its 8-byte header. */
  TruncatedIcmp,
  /** ICMPv6 shorter than its 8-byte header. */
  TruncatedIcmpv6,
  /** SCTP shorter than its 12-byte common header. */
  TruncatedSctp,
  /** VXLAN (UDP port 4789) shorter than its 8-byte header. */
  TruncatedVxlan,
  /** VXLAN without the I flag (RFC 7348 s5). */
  BadVxlanFlags,
  /** GRE (IP protocol 47) shorter than its header with the optional fields its flags announce. */
  TruncatedGre,
  /** GRE with routing present or reserved bits 4-5 set (RFC 2784 s2.5, RFC 2890 s2). */
  BadGreFlags,
  /** GRE version not 0 (RFC 2784 s2.5.1). */
  BadGreVersion,
}

/** First code that means "malformed, drop". */
export const FIRST_DROP = Stop.ZeroLength;

/** Number of codes; size of a per-reason counter array. */
export const N_STOP = Stop.BadGreVersion + 1;

/** Counter names, indexed by code. */
export const STOP_NAMES: readonly string[] = [
  'ok',
  'unknown_ethertype',
  'qinq_inner',
  'arp_not_eth_ipv4',
  'later_fragment',
  'zero_length',
  'truncated_eth',
  'truncated_vlan',
  'truncated_llc',
  'truncated_arp',
  'truncated_ipv4',
  'bad_ipv4_version',
  'bad_ihl',
  'bad_ipv4_total_length',
  'bad_fragment',
  'truncated_ipv6',
  'bad_ipv6_version',
  'bad_ipv6_payload_length',
  'bad_ipv6_ext_header',
  'truncated_tcp',
  'bad_tcp_offset',
  'truncated_udp',
  'bad_udp_length',
  'truncated_icmp',
  'truncated_icmpv6',
  'truncated_sctp',
  'truncated_vxlan',
  'bad_vxlan_flags',
  'truncated_gre',
  'bad_gre_flags',
  'bad_gre_version',
];

/** True when `stop` means the frame is malformed and must be dropped. */
export function isDrop(stop: Stop): boolean {
  return stop >= FIRST_DROP;
}
