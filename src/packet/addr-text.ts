/**
 * IPv4 and MAC addresses as text: the one parser and printer of each, used everywhere an
 * address is read from or written as text (flow syntax, dumps, conntrack listings, topology
 * files, builders). Addresses in numbers are host order: IPv4 as 32 bits (a uint32, or the same
 * bits as an int32, which the printer accepts alike), a MAC as 48 bits.
 *
 * Called by: ofproto/match-syntax.ts (flow syntax), dpif/dp-actions.ts, dpif/dump.ts and
 * dpif/conntrack.ts (dumps), dvr/addr.ts (topology), packet/ipv4.ts and packet/ethernet.ts
 * (builders' string forms). Control path only: these allocate strings.
 */

/** A dotted-quad IPv4 address as an unsigned number, or undefined (RFC 791's a.b.c.d). */
export function parseIpv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const b = Number(m[i]);
    if (b > 255) return undefined;
    v = v * 256 + b;
  }
  return v;
}

/** `a` (uint32 or int32 bits) as a dotted quad. */
export function formatIpv4(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
}

/** A MAC address `xx:xx:xx:xx:xx:xx` (1 or 2 hex digits a byte) as a 48-bit number, or undefined. */
export function parseMac(s: string): number | undefined {
  const m = /^([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})$/.exec(s);
  if (!m) return undefined;
  let v = 0;
  for (let i = 1; i <= 6; i++) v = v * 256 + parseInt(m[i], 16);
  return v;
}

/** A 48-bit MAC as `xx:xx:xx:xx:xx:xx`. */
export function formatMac(v: number | bigint): string {
  const n = typeof v === 'bigint' ? Number(v & 0xffffffffffffn) : v;
  return formatMacHiLo(Math.floor(n / 0x100000000) & 0xffff, n >>> 0);
}

/** A MAC kept as its top 16 bits and low 32 bits (the flow key's layout) as text. */
export function formatMacHiLo(hi: number, lo: number): string {
  const h = (x: number): string => (x < 16 ? '0' : '') + x.toString(16);
  return `${h((hi >>> 8) & 0xff)}:${h(hi & 0xff)}:${h(lo >>> 24)}:${h((lo >>> 16) & 0xff)}:${h((lo >>> 8) & 0xff)}:${h(lo & 0xff)}`;
}
