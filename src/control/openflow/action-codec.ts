/**
 * OpenFlow action lists <-> flowd Actions (ofproto/actions.ts): the OpenFlow 1.0 actions, the
 * Nicira extension actions Neutron's flows use (resubmit, load, move, learn, ct with nat and
 * exec, ct_clear, note, dec_ttl, set_tunnel, output_reg, check_pkt_larger, controller and
 * controller2), and for OpenFlow
 * 1.3/1.4 the standard actions that differ (output with 32-bit ports, push/pop_vlan,
 * set_field, dec_nw_ttl).
 *
 * Who calls: of10.ts and of13.ts (flow-mods, flow stats, packet-out), tests.
 *
 * Encoding follows what Open vSwitch sends for the same actions (lib/ofp-actions.c), so that
 * `ovs-ofctl dump-flows` prints a flow read back from flowd exactly as one read back from OVS:
 * set_field of a field OpenFlow 1.0 has an action for becomes that action, any other becomes
 * NXAST_REG_LOAD (printed back as load:); goto_table becomes resubmit(,T) in 1.0; push_vlan has
 * no 1.0 encoding (mod_vlan_vid pushes). Every action is 8-byte aligned; decoding checks each
 * length before reading and throws OfError(OFPET_BAD_ACTION, ...) with the spec's code.
 */
import {
  Action, SubField, LearnSpec, CtNat, OFPP_IN_PORT, OFPP_CONTROLLER, PIN_REASON_ACTION, PIN_REASON_NAMES,
} from '../../ofproto/actions';
import { FieldDef, fieldByName } from '../../ofproto/fields';
import {
  OfError, Writer, readUintN, NX_VENDOR_ID, OFP10_VERSION, OFPET_BAD_ACTION, OFPBAC_BAD_TYPE,
  OFPBAC_BAD_LEN, OFPBAC_BAD_VENDOR, OFPBAC_BAD_VENDOR_TYPE, OFPBAC_BAD_ARGUMENT,
} from './wire';
import { decodeHeader, headerOf, wireFieldForDef, port16to32, port32to16 } from './nxm';

// OpenFlow 1.0 action types (spec s5.2.4).
const OFPAT10_OUTPUT = 0;
const OFPAT10_SET_VLAN_VID = 1;
const OFPAT10_SET_VLAN_PCP = 2;
const OFPAT10_STRIP_VLAN = 3;
const OFPAT10_SET_DL_SRC = 4;
const OFPAT10_SET_DL_DST = 5;
const OFPAT10_SET_NW_SRC = 6;
const OFPAT10_SET_NW_DST = 7;
const OFPAT10_SET_NW_TOS = 8;
const OFPAT10_SET_TP_SRC = 9;
const OFPAT10_SET_TP_DST = 10;
// OpenFlow 1.3 action types (spec s7.2.5).
const OFPAT13_OUTPUT = 0;
const OFPAT13_PUSH_VLAN = 17;
const OFPAT13_POP_VLAN = 18;
const OFPAT13_DEC_NW_TTL = 24;
const OFPAT13_SET_FIELD = 25;
const OFPAT_VENDOR = 0xffff;
// Nicira action subtypes (lib/ofp-actions.c "NX1.0+(N)").
const NXAST_RESUBMIT = 1;
const NXAST_SET_TUNNEL = 2;
const NXAST_REG_MOVE = 6;
const NXAST_REG_LOAD = 7;
const NXAST_NOTE = 8;
const NXAST_SET_TUNNEL64 = 9;
const NXAST_RESUBMIT_TABLE = 14;
const NXAST_OUTPUT_REG = 15;
const NXAST_LEARN = 16;
const NXAST_DEC_TTL = 18;
const NXAST_CONJUNCTION = 34;
const NXAST_CT = 35;
const NXAST_NAT = 36;
const NXAST_CT_CLEAR = 43;
const NXAST_CONTROLLER = 20;
const NXAST_CONTROLLER2 = 37;
// NXAST_CONTROLLER2 property types (nx_action_controller2).
const NXAC2PT_MAX_LEN = 0;
const NXAC2PT_CONTROLLER_ID = 1;
const NXAC2PT_REASON = 2;
const NXAC2PT_USERDATA = 3;
const NXAST_CHECK_PKT_LARGER = 49;

const NX_CT_F_COMMIT = 1;
const NX_CT_F_FORCE = 2;
const NX_CT_RECIRC_NONE = 0xff;
const NX_NAT_F_SRC = 1;
const NX_NAT_F_DST = 2;
const NX_NAT_RANGE_IPV4_MIN = 1;
const NX_NAT_RANGE_IPV4_MAX = 2;
const NX_NAT_RANGE_PROTO_MIN = 16;
const NX_NAT_RANGE_PROTO_MAX = 32;
const NX_LEARN_SRC_IMMEDIATE = 1 << 13;
const NX_LEARN_DST_LOAD = 1 << 11;
const NX_LEARN_DST_OUTPUT = 2 << 11;
/** Nesting limit for ct(exec(...)) inside actions (OVS allows ct only one level deep). */
const MAX_NEST = 2;

function badArg(msg: string): OfError { return new OfError(OFPET_BAD_ACTION, OFPBAC_BAD_ARGUMENT, msg); }
function badLen(msg: string): OfError { return new OfError(OFPET_BAD_ACTION, OFPBAC_BAD_LEN, msg); }

const F = (n: string): FieldDef => fieldByName(n) as FieldDef;

// ---- subfields ----------------------------------------------------------------------------------

/** The flowd field a load/move header names (OXM in_port is the 32-bit view, IP_TOS the whole byte). */
function subfieldDef(h: number): FieldDef {
  const w = decodeHeader(h);
  if (w.conv === 'port32') return F('in_port_oxm');
  if (w.conv === 'tos') return F('nw_tos');
  return w.def as FieldDef;
}

function checkSub(def: FieldDef, ofs: number, nBits: number, what: string): SubField {
  if (nBits < 1 || ofs + nBits > def.widthBits) throw badArg(`${what}: bits ${ofs}..${ofs + nBits - 1} outside ${def.name}`);
  return { field: def, ofs, nBits };
}

function subHeader(sf: SubField, oxm: boolean): number {
  const w = wireFieldForDef(sf.field, oxm);
  if (w === undefined) throw badArg(`${sf.field.name} has no NXM/OXM header`);
  return headerOf(w);
}

// ---- decoding -----------------------------------------------------------------------------------

/** Decodes the action list of `len` bytes at `off`; `version` selects 1.0 or 1.3 numbering. */
export function decodeActions(b: Uint8Array, off: number, len: number, version: number, depth = 0): Action[] {
  const out: Action[] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = off;
  const end = off + len;
  while (p < end) {
    if (end - p < 8) throw badLen('action list ends inside an action header');
    const type = dv.getUint16(p);
    const alen = dv.getUint16(p + 2);
    if (alen < 8 || alen % 8 !== 0 || alen > end - p) throw badLen(`action length ${alen}`);
    if (version === OFP10_VERSION) decodeOf10(dv, b, p, type, alen, out, version, depth);
    else decodeOf13(dv, b, p, type, alen, out, version, depth);
    p += alen;
  }
  return out;
}

function need(alen: number, n: number, what: string): void {
  if (alen !== n) throw badLen(`${what}: length ${alen}, expected ${n}`);
}

function decodeOf10(dv: DataView, b: Uint8Array, p: number, type: number, alen: number, out: Action[],
                    version: number, depth: number): void {
  switch (type) {
    case OFPAT10_OUTPUT: need(alen, 8, 'output'); out.push({ kind: 'output', port: dv.getUint16(p + 4), maxLen: dv.getUint16(p + 6) }); return;
    case OFPAT10_SET_VLAN_VID: {
      need(alen, 8, 'set_vlan_vid');
      const vid = dv.getUint16(p + 4);
      if (vid > 0xfff) throw badArg(`vlan vid ${vid}`);
      out.push({ kind: 'set_vlan_vid', vid }); return;
    }
    case OFPAT10_SET_VLAN_PCP: {
      need(alen, 8, 'set_vlan_pcp');
      const pcp = dv.getUint8(p + 4);
      if (pcp > 7) throw badArg(`vlan pcp ${pcp}`);
      out.push({ kind: 'set_vlan_pcp', pcp }); return;
    }
    case OFPAT10_STRIP_VLAN: need(alen, 8, 'strip_vlan'); out.push({ kind: 'strip_vlan', name: 'strip_vlan' }); return;
    case OFPAT10_SET_DL_SRC: case OFPAT10_SET_DL_DST:
      need(alen, 16, 'set_dl');
      out.push({ kind: type === OFPAT10_SET_DL_SRC ? 'set_dl_src' : 'set_dl_dst', mac: Number(readUintN(b, p + 4, 6)) }); return;
    case OFPAT10_SET_NW_SRC: case OFPAT10_SET_NW_DST:
      need(alen, 8, 'set_nw');
      out.push({ kind: type === OFPAT10_SET_NW_SRC ? 'set_nw_src' : 'set_nw_dst', ipv4: dv.getUint32(p + 4) }); return;
    case OFPAT10_SET_NW_TOS: {
      need(alen, 8, 'set_nw_tos');
      const tos = dv.getUint8(p + 4);
      if (tos & 3) throw badArg(`nw_tos ${tos} has ECN bits`);
      out.push({ kind: 'set_nw_tos', tos }); return;
    }
    case OFPAT10_SET_TP_SRC: case OFPAT10_SET_TP_DST:
      need(alen, 8, 'set_tp');
      out.push({ kind: type === OFPAT10_SET_TP_SRC ? 'set_tp_src' : 'set_tp_dst', port: dv.getUint16(p + 4) }); return;
    case OFPAT_VENDOR: decodeNx(dv, b, p, alen, out, version, depth); return;
    default: throw new OfError(OFPET_BAD_ACTION, OFPBAC_BAD_TYPE, `action type ${type}`);
  }
}

function decodeOf13(dv: DataView, b: Uint8Array, p: number, type: number, alen: number, out: Action[],
                    version: number, depth: number): void {
  switch (type) {
    case OFPAT13_OUTPUT: {
      need(alen, 16, 'output');
      const port = port32to16(dv.getUint32(p + 4));
      if (port < 0) throw new OfError(OFPET_BAD_ACTION, 4, `output port ${dv.getUint32(p + 4)}`);
      out.push({ kind: 'output', port, maxLen: dv.getUint16(p + 8) }); return;
    }
    case OFPAT13_PUSH_VLAN: need(alen, 8, 'push_vlan'); out.push({ kind: 'push_vlan', ethertype: dv.getUint16(p + 4) }); return;
    case OFPAT13_POP_VLAN: need(alen, 8, 'pop_vlan'); out.push({ kind: 'strip_vlan', name: 'pop_vlan' }); return;
    case OFPAT13_DEC_NW_TTL: need(alen, 8, 'dec_nw_ttl'); out.push({ kind: 'dec_ttl' }); return;
    case OFPAT13_SET_FIELD: {
      const h = dv.getUint32(p + 4);
      const def = subfieldDef(h);
      const hasMask = (h & 0x100) !== 0;
      const n = (h & 0xff) / (hasMask ? 2 : 1);
      if (8 + (h & 0xff) > alen) throw badLen('set_field value runs past the action');
      let value = readUintN(b, p + 8, n);
      const full = (1n << BigInt(def.widthBits)) - 1n;
      let mask = hasMask ? readUintN(b, p + 8 + n, n) : full;
      if (def.name === 'in_port_oxm') { value = BigInt(port32to16(Number(value))); mask = full; }
      out.push({ kind: 'set_field', field: def, value: value & mask, mask });
      return;
    }
    case OFPAT_VENDOR: decodeNx(dv, b, p, alen, out, version, depth); return;
    default: throw new OfError(OFPET_BAD_ACTION, OFPBAC_BAD_TYPE, `action type ${type}`);
  }
}

function ofsNbits(v: number): [number, number] {
  return [v >> 6, (v & 0x3f) + 1];
}

function decodeNx(dv: DataView, b: Uint8Array, p: number, alen: number, out: Action[], version: number, depth: number): void {
  if (alen < 16) throw badLen('vendor action shorter than 16 bytes');
  if (dv.getUint32(p + 4) !== NX_VENDOR_ID) throw new OfError(OFPET_BAD_ACTION, OFPBAC_BAD_VENDOR, `vendor 0x${dv.getUint32(p + 4).toString(16)}`);
  const sub = dv.getUint16(p + 8);
  switch (sub) {
    case NXAST_RESUBMIT: need(alen, 16, 'resubmit'); out.push({ kind: 'resubmit', inPort: dv.getUint16(p + 10), table: 255 }); return;
    case NXAST_RESUBMIT_TABLE: need(alen, 16, 'resubmit'); out.push({ kind: 'resubmit', inPort: dv.getUint16(p + 10), table: dv.getUint8(p + 12) }); return;
    case NXAST_SET_TUNNEL: need(alen, 16, 'set_tunnel'); out.push({ kind: 'set_tunnel', tunId: BigInt(dv.getUint32(p + 12)), is64: false }); return;
    case NXAST_SET_TUNNEL64: need(alen, 24, 'set_tunnel64'); out.push({ kind: 'set_tunnel', tunId: dv.getBigUint64(p + 16), is64: true }); return;
    case NXAST_DEC_TTL: need(alen, 16, 'dec_ttl'); out.push({ kind: 'dec_ttl' }); return;
    case NXAST_CT_CLEAR: need(alen, 16, 'ct_clear'); out.push({ kind: 'ct_clear' }); return;
    case NXAST_NOTE: out.push({ kind: 'note', bytes: Uint8Array.from(b.subarray(p + 10, p + alen)) }); return;
    case NXAST_REG_LOAD: {
      need(alen, 24, 'load');
      const [ofs, nBits] = ofsNbits(dv.getUint16(p + 10));
      const dst = checkSub(subfieldDef(dv.getUint32(p + 12)), ofs, nBits, 'load');
      const value = dv.getBigUint64(p + 16);
      if (nBits < 64 && (value >> BigInt(nBits)) !== 0n) throw badArg(`load: value 0x${value.toString(16)} wider than ${nBits} bits`);
      out.push({ kind: 'load', dst, value }); return;
    }
    case NXAST_REG_MOVE: {
      need(alen, 24, 'move');
      const nBits = dv.getUint16(p + 10);
      const src = checkSub(subfieldDef(dv.getUint32(p + 16)), dv.getUint16(p + 12), nBits, 'move');
      const dst = checkSub(subfieldDef(dv.getUint32(p + 20)), dv.getUint16(p + 14), nBits, 'move');
      out.push({ kind: 'move', src, dst }); return;
    }
    case NXAST_OUTPUT_REG: {
      need(alen, 24, 'output_reg');
      const [ofs, nBits] = ofsNbits(dv.getUint16(p + 10));
      out.push({ kind: 'output_reg', src: checkSub(subfieldDef(dv.getUint32(p + 12)), ofs, nBits, 'output_reg'), maxLen: dv.getUint16(p + 16) });
      return;
    }
    case NXAST_CHECK_PKT_LARGER: {
      need(alen, 24, 'check_pkt_larger');
      const dst = checkSub(subfieldDef(dv.getUint32(p + 14)), dv.getUint16(p + 12), 1, 'check_pkt_larger');
      out.push({ kind: 'check_pkt_larger', pktLen: dv.getUint16(p + 10), dst }); return;
    }
    case NXAST_LEARN: out.push(decodeLearn(dv, b, p, alen)); return;
    case NXAST_CONJUNCTION: {
      // nx_action_conjunction: clause (0-based on the wire), n_clauses, id (nicira-ext.h).
      need(alen, 16, 'conjunction');
      const clause = dv.getUint8(p + 10) + 1, nClauses = dv.getUint8(p + 11);
      if (nClauses < 2 || nClauses > 64 || clause > nClauses) throw badArg(`conjunction clause ${clause}/${nClauses}`);
      out.push({ kind: 'conjunction', id: dv.getUint32(p + 12), clause, nClauses });
      return;
    }
    case NXAST_CT: out.push(decodeCt(dv, b, p, alen, version, depth)); return;
    case NXAST_NAT: throw badArg('nat outside ct');
    case NXAST_CONTROLLER: {
      // max_len(2) controller_id(2) reason(1) zero(1)
      need(alen, 16, 'controller');
      out.push(controllerAction(dv.getUint16(p + 10), dv.getUint8(p + 14), dv.getUint16(p + 12), new Uint8Array(0)));
      return;
    }
    case NXAST_CONTROLLER2: out.push(decodeController2(dv, b, p, alen)); return;
    default: throw new OfError(OFPET_BAD_ACTION, OFPBAC_BAD_VENDOR_TYPE, `Nicira action subtype ${sub}`);
  }
}

function decodeLearn(dv: DataView, b: Uint8Array, p: number, alen: number): Action {
  if (alen < 32) throw badLen('learn shorter than 32 bytes');
  const specs: LearnSpec[] = [];
  let q = p + 32;
  const end = p + alen;
  const field = (what: string, nBits: number): SubField => {
    if (end - q < 6) throw badLen(`learn: ${what} cut short`);
    const sf = checkSub(subfieldDef(dv.getUint32(q)), dv.getUint16(q + 4), nBits, 'learn');
    q += 6;
    return sf;
  };
  while (end - q >= 2) {
    const h = dv.getUint16(q);
    if (h === 0) break;
    q += 2;
    const nBits = h & 0x7ff;
    const imm = (h & NX_LEARN_SRC_IMMEDIATE) !== 0;
    const dstType = (h >> 11) & 3;
    if (dstType === 3 || (dstType === 2 && imm)) throw badArg(`learn: spec header 0x${h.toString(16)}`);
    let src: SubField | null = null;
    let value = 0n;
    if (imm) {
      const n = 2 * Math.ceil(nBits / 16);
      if (end - q < n) throw badLen('learn: immediate cut short');
      value = readUintN(b, q, n);
      q += n;
    } else {
      src = field('source', nBits);
    }
    if (dstType === 2) { specs.push({ kind: 'output', src: src as SubField }); continue; }
    const dst = field('destination', nBits);
    if (dstType === 0) specs.push(src ? { kind: 'match_field', dst, src } : { kind: 'match_imm', dst, value });
    else specs.push(src ? { kind: 'load_field', dst, src } : { kind: 'load_imm', dst, value });
  }
  for (; q < end; q++) if (b[q] !== 0) throw badArg('learn: nonzero padding');
  return {
    kind: 'learn', idleTimeoutS: dv.getUint16(p + 10), hardTimeoutS: dv.getUint16(p + 12),
    priority: dv.getUint16(p + 14), cookie: dv.getBigUint64(p + 16), flags: dv.getUint16(p + 24),
    table: dv.getUint8(p + 26), finIdleTimeoutS: dv.getUint16(p + 28), finHardTimeoutS: dv.getUint16(p + 30), specs,
  };
}

function decodeNat(dv: DataView, p: number, alen: number): CtNat {
  const flags = dv.getUint16(p + 12);
  const present = dv.getUint16(p + 14);
  let q = p + 16;
  const take = (n: number): number => {
    if (q + n > p + alen) throw badLen('nat: range cut short');
    const v = n === 4 ? dv.getUint32(q) : dv.getUint16(q);
    q += n;
    return v;
  };
  const ipMin = present & NX_NAT_RANGE_IPV4_MIN ? take(4) : 0;
  const ipMax = present & NX_NAT_RANGE_IPV4_MAX ? take(4) : 0;
  if (present & 12) throw badArg('nat: IPv6 ranges are not supported');
  const portMin = present & NX_NAT_RANGE_PROTO_MIN ? take(2) : 0;
  const portMax = present & NX_NAT_RANGE_PROTO_MAX ? take(2) : 0;
  const kind = flags & NX_NAT_F_SRC ? 'src' : flags & NX_NAT_F_DST ? 'dst' : 'none';
  return { kind, ipMin, ipMax, portMin, portMax, flags: (flags >> 2) & 7 };
}

function decodeCt(dv: DataView, b: Uint8Array, p: number, alen: number, version: number, depth: number): Action {
  if (alen < 24) throw badLen('ct shorter than 24 bytes');
  if (depth >= MAX_NEST) throw badArg('ct nested too deep');
  const flags = dv.getUint16(p + 10);
  const zoneHdr = dv.getUint32(p + 12);
  let zone = 0;
  let zoneSrc: SubField | null = null;
  if (zoneHdr) {
    const [ofs, nBits] = ofsNbits(dv.getUint16(p + 16));
    zoneSrc = checkSub(subfieldDef(zoneHdr), ofs, nBits, 'ct zone');
  } else {
    zone = dv.getUint16(p + 16);
  }
  const table = dv.getUint8(p + 18);
  let nat: CtNat | null = null;
  const exec: Action[] = [];
  let q = p + 24;
  while (q < p + alen) {
    if (p + alen - q < 16) throw badLen('ct: nested action cut short');
    const t = dv.getUint16(q);
    const l = dv.getUint16(q + 2);
    if (l < 16 || l % 8 !== 0 || q + l > p + alen) throw badLen(`ct: nested action length ${l}`);
    if (t === OFPAT_VENDOR && dv.getUint32(q + 4) === NX_VENDOR_ID && dv.getUint16(q + 8) === NXAST_NAT) {
      nat = decodeNat(dv, q, l);
    } else {
      const inner = decodeActions(b, q, l, version, depth + 1);
      for (const a of inner) {
        const ok = (a.kind === 'load' || a.kind === 'set_field') &&
          ((a.kind === 'load' ? a.dst.field.name : a.field.name) === 'ct_mark');
        if (!ok) throw badArg('ct: exec takes only loads of ct_mark');
        exec.push(a);
      }
    }
    q += l;
  }
  return {
    kind: 'ct', commit: (flags & NX_CT_F_COMMIT) !== 0, force: (flags & NX_CT_F_FORCE) !== 0, zone, zoneSrc,
    table: table === NX_CT_RECIRC_NONE ? 255 : table, nat, exec,
  };
}

/** The plain form (reason action, id 0, no userdata) is output:CONTROLLER, as ovs-ofctl parses it. */
function controllerAction(maxLen: number, reason: number, controllerId: number, userdata: Uint8Array): Action {
  if (reason === PIN_REASON_ACTION && controllerId === 0 && userdata.length === 0) return { kind: 'output', port: OFPP_CONTROLLER, maxLen };
  return { kind: 'controller', maxLen, reason, controllerId, userdata };
}

/** nx_action_controller2: header(16) then properties type(2) len(2) value, each padded to 8. */
function decodeController2(dv: DataView, b: Uint8Array, p: number, alen: number): Action {
  let maxLen = 65535, reason = PIN_REASON_ACTION, id = 0;
  let userdata = new Uint8Array(0);
  for (let q = p + 16; q < p + alen;) {
    if (p + alen - q < 4) throw badLen('controller2 property cut short');
    const t = dv.getUint16(q);
    const l = dv.getUint16(q + 2);
    if (l < 4 || q + l > p + alen) throw badLen(`controller2 property length ${l}`);
    switch (t) {
      // 16-bit properties: OVS writes length 8 (value and two zero bytes); 6 is accepted too.
      case NXAC2PT_MAX_LEN: if (l !== 6 && l !== 8) throw badLen('controller2 max_len'); maxLen = dv.getUint16(q + 4); break;
      case NXAC2PT_CONTROLLER_ID: if (l !== 6 && l !== 8) throw badLen('controller2 id'); id = dv.getUint16(q + 4); break;
      case NXAC2PT_REASON: if (l !== 5) throw badLen('controller2 reason'); reason = dv.getUint8(q + 4); break;
      case NXAC2PT_USERDATA: userdata = Uint8Array.from(b.subarray(q + 4, q + l)); break;
      default: throw badArg(`controller2 property ${t} (pause and meter_id are not supported)`);
    }
    q += (l + 7) & ~7;
  }
  if (reason >= PIN_REASON_NAMES.length) throw badArg(`controller reason ${reason}`);
  return controllerAction(maxLen, reason, id, userdata);
}

// ---- encoding -----------------------------------------------------------------------------------

function nxBegin(w: Writer, sub: number): number {
  const at = w.len;
  w.u16(OFPAT_VENDOR).u16(0).u32(NX_VENDOR_ID).u16(sub);
  return at;
}

function nxEnd(w: Writer, at: number): void {
  w.pad(at, 8);
  w.patch16(at + 2, w.len - at);
}

function encodeLoad(w: Writer, sf: SubField, value: bigint, oxm: boolean): void {
  if (sf.nBits > 64) throw badArg(`load of ${sf.nBits} bits does not fit NXAST_REG_LOAD`);
  const at = nxBegin(w, NXAST_REG_LOAD);
  w.u16((sf.ofs << 6) | (sf.nBits - 1)).u32(subHeader(sf, oxm)).u64(value);
  nxEnd(w, at);
}

/** OpenFlow 1.0 actions for a whole-field set_field, as OVS's set_field_to_legacy_openflow. */
function legacySetField(w: Writer, a: Extract<Action, { kind: 'set_field' }>): boolean {
  const full = (1n << BigInt(a.field.widthBits)) - 1n;
  if (a.mask !== full) return false;
  const v = a.value;
  switch (a.field.name) {
    case 'vlan_vid': case 'dl_vlan': w.u16(OFPAT10_SET_VLAN_VID).u16(8).u16(Number(v & 0xfffn)).u16(0); return true;
    case 'dl_vlan_pcp': w.u16(OFPAT10_SET_VLAN_PCP).u16(8).u8(Number(v)).zeros(3); return true;
    case 'dl_src': case 'dl_dst': w.u16(a.field.name === 'dl_src' ? OFPAT10_SET_DL_SRC : OFPAT10_SET_DL_DST).u16(16).uintN(v, 6).zeros(6); return true;
    case 'nw_src': case 'nw_dst': w.u16(a.field.name === 'nw_src' ? OFPAT10_SET_NW_SRC : OFPAT10_SET_NW_DST).u16(8).u32(Number(v)); return true;
    case 'ip_dscp': w.u16(OFPAT10_SET_NW_TOS).u16(8).u8(Number(v) << 2).zeros(3); return true;
    case 'tcp_src': case 'udp_src': case 'tp_src': w.u16(OFPAT10_SET_TP_SRC).u16(8).u16(Number(v)).u16(0); return true;
    case 'tcp_dst': case 'udp_dst': case 'tp_dst': w.u16(OFPAT10_SET_TP_DST).u16(8).u16(Number(v)).u16(0); return true;
    default: return false;
  }
}

/** A masked set_field as loads of each run of 1-bits of the mask (what NXAST_REG_LOAD can say). */
function setFieldAsLoads(w: Writer, a: Extract<Action, { kind: 'set_field' }>, oxm: boolean): void {
  let ofs = 0;
  while (ofs < a.field.widthBits) {
    if (((a.mask >> BigInt(ofs)) & 1n) === 0n) { ofs++; continue; }
    let n = 0;
    while (ofs + n < a.field.widthBits && n < 64 && ((a.mask >> BigInt(ofs + n)) & 1n) === 1n) n++;
    encodeLoad(w, { field: a.field, ofs, nBits: n }, (a.value >> BigInt(ofs)) & ((1n << BigInt(n)) - 1n), oxm);
    ofs += n;
  }
}

function encodeOne(w: Writer, a: Action, version: number): void {
  const of10 = version === OFP10_VERSION;
  const oxm = !of10;
  switch (a.kind) {
    case 'output':
      if (of10) w.u16(OFPAT10_OUTPUT).u16(8).u16(a.port).u16(a.maxLen);
      else w.u16(OFPAT13_OUTPUT).u16(16).u32(port16to32(a.port)).u16(a.maxLen).zeros(6);
      return;
    case 'output_reg': {
      const at = nxBegin(w, NXAST_OUTPUT_REG);
      w.u16((a.src.ofs << 6) | (a.src.nBits - 1)).u32(subHeader(a.src, oxm)).u16(a.maxLen).zeros(6);
      nxEnd(w, at); return;
    }
    case 'set_vlan_vid':
      if (of10) w.u16(OFPAT10_SET_VLAN_VID).u16(8).u16(a.vid).u16(0);
      else w.u16(OFPAT13_SET_FIELD).u16(16).u32(0x80000c02).u16(a.vid | 0x1000).zeros(6);
      return;
    case 'set_vlan_pcp':
      if (of10) w.u16(OFPAT10_SET_VLAN_PCP).u16(8).u8(a.pcp).zeros(3);
      else w.u16(OFPAT13_SET_FIELD).u16(16).u32(0x80000e01).u8(a.pcp).zeros(7);
      return;
    case 'push_vlan':
      if (!of10) w.u16(OFPAT13_PUSH_VLAN).u16(8).u16(a.ethertype).u16(0);
      return;
    case 'strip_vlan':
      if (of10) w.u16(OFPAT10_STRIP_VLAN).u16(8).u32(0); else w.u16(OFPAT13_POP_VLAN).u16(8).u32(0);
      return;
    case 'set_dl_src': case 'set_dl_dst':
      if (of10) w.u16(a.kind === 'set_dl_src' ? OFPAT10_SET_DL_SRC : OFPAT10_SET_DL_DST).u16(16).uintN(BigInt(a.mac), 6).zeros(6);
      else encodeOne(w, { kind: 'set_field', field: F(a.kind === 'set_dl_src' ? 'dl_src' : 'dl_dst'), value: BigInt(a.mac), mask: (1n << 48n) - 1n }, version);
      return;
    case 'set_nw_src': case 'set_nw_dst':
      if (of10) w.u16(a.kind === 'set_nw_src' ? OFPAT10_SET_NW_SRC : OFPAT10_SET_NW_DST).u16(8).u32(a.ipv4);
      else encodeOne(w, { kind: 'set_field', field: F(a.kind === 'set_nw_src' ? 'nw_src' : 'nw_dst'), value: BigInt(a.ipv4), mask: 0xffffffffn }, version);
      return;
    case 'set_nw_tos':
      if (of10) w.u16(OFPAT10_SET_NW_TOS).u16(8).u8(a.tos).zeros(3);
      else encodeOne(w, { kind: 'set_field', field: F('ip_dscp'), value: BigInt(a.tos >> 2), mask: 0x3fn }, version);
      return;
    case 'set_tp_src': case 'set_tp_dst':
      if (of10) w.u16(a.kind === 'set_tp_src' ? OFPAT10_SET_TP_SRC : OFPAT10_SET_TP_DST).u16(8).u16(a.port).u16(0);
      else throw badArg(`${a.kind} has no OpenFlow 1.3 encoding without the protocol`);
      return;
    case 'dec_ttl':
      if (of10) { const at = nxBegin(w, NXAST_DEC_TTL); nxEnd(w, at); } else w.u16(OFPAT13_DEC_NW_TTL).u16(8).u32(0);
      return;
    case 'set_field':
      if (of10) {
        if (!legacySetField(w, a)) setFieldAsLoads(w, a, oxm);
      } else {
        const wfld = wireFieldForDef(a.field, true);
        const full = (1n << BigInt(a.field.widthBits)) - 1n;
        if (wfld === undefined || a.mask !== full || wfld.conv !== 'none') { setFieldAsLoads(w, a, oxm); return; }
        const at = w.len;
        w.u16(OFPAT13_SET_FIELD).u16(0).u32(headerOf(wfld)).uintN(a.value, wfld.bytes);
        w.pad(at, 8);
        w.patch16(at + 2, w.len - at);
      }
      return;
    case 'load': encodeLoad(w, a.dst, a.value, oxm); return;
    case 'move': {
      const at = nxBegin(w, NXAST_REG_MOVE);
      w.u16(a.src.nBits).u16(a.src.ofs).u16(a.dst.ofs).u32(subHeader(a.src, oxm)).u32(subHeader(a.dst, oxm));
      nxEnd(w, at); return;
    }
    case 'set_tunnel': {
      if (!a.is64 && a.tunId <= 0xffffffffn) {
        const at = nxBegin(w, NXAST_SET_TUNNEL); w.u16(0).u32(Number(a.tunId)); nxEnd(w, at);
      } else {
        const at = nxBegin(w, NXAST_SET_TUNNEL64); w.zeros(6).u64(a.tunId); nxEnd(w, at);
      }
      return;
    }
    case 'resubmit': {
      if (a.inPort !== OFPP_IN_PORT && a.table === 255) {
        const at = nxBegin(w, NXAST_RESUBMIT); w.u16(a.inPort); nxEnd(w, at);
      } else {
        const at = nxBegin(w, NXAST_RESUBMIT_TABLE); w.u16(a.inPort).u8(a.table).zeros(3); nxEnd(w, at);
      }
      return;
    }
    case 'goto_table': {
      // OpenFlow 1.0 has no instructions: OVS sends goto_table as resubmit(,T) there.
      const at = nxBegin(w, NXAST_RESUBMIT_TABLE); w.u16(OFPP_IN_PORT).u8(a.table).zeros(3); nxEnd(w, at);
      return;
    }
    case 'note': {
      const at = nxBegin(w, NXAST_NOTE); w.bytes(a.bytes); if (w.len - at < 16) w.zeros(16 - (w.len - at)); nxEnd(w, at);
      return;
    }
    case 'ct_clear': { const at = nxBegin(w, NXAST_CT_CLEAR); nxEnd(w, at); return; }
    case 'controller': {
      // As OVS: NXAST_CONTROLLER unless there is userdata, then NXAST_CONTROLLER2 with the
      // properties that differ from their defaults.
      if (a.userdata.length === 0) {
        const at = nxBegin(w, NXAST_CONTROLLER); w.u16(a.maxLen).u16(a.controllerId).u8(a.reason).u8(0); nxEnd(w, at);
        return;
      }
      const at = nxBegin(w, NXAST_CONTROLLER2);
      w.zeros(6);
      const prop = (t: number, put: () => void): void => { const s = w.len; w.u16(t).u16(0); put(); w.patch16(s + 2, w.len - s); w.pad(s, 8); };
      if (a.maxLen !== 65535) prop(NXAC2PT_MAX_LEN, () => { w.u16(a.maxLen).u16(0); });
      if (a.controllerId !== 0) prop(NXAC2PT_CONTROLLER_ID, () => { w.u16(a.controllerId).u16(0); });
      if (a.reason !== PIN_REASON_ACTION) prop(NXAC2PT_REASON, () => { w.u8(a.reason); });
      prop(NXAC2PT_USERDATA, () => { w.bytes(a.userdata); });
      nxEnd(w, at);
      return;
    }
    case 'check_pkt_larger': {
      const at = nxBegin(w, NXAST_CHECK_PKT_LARGER);
      w.u16(a.pktLen).u16(a.dst.ofs).u32(subHeader(a.dst, oxm));
      nxEnd(w, at); return;
    }
    case 'learn': encodeLearn(w, a, oxm); return;
    case 'conjunction': {
      const at = nxBegin(w, NXAST_CONJUNCTION); w.u8(a.clause - 1).u8(a.nClauses).u32(a.id); nxEnd(w, at);
      return;
    }
    case 'ct': {
      const at = nxBegin(w, NXAST_CT);
      w.u16((a.commit ? NX_CT_F_COMMIT : 0) | (a.force ? NX_CT_F_FORCE : 0));
      if (a.zoneSrc) w.u32(subHeader(a.zoneSrc, oxm)).u16((a.zoneSrc.ofs << 6) | (a.zoneSrc.nBits - 1));
      else w.u32(0).u16(a.zone);
      w.u8(a.table === 255 ? NX_CT_RECIRC_NONE : a.table).zeros(3).u16(0);
      if (a.nat) encodeNat(w, a.nat);
      for (const e of a.exec) encodeOne(w, e, version);
      w.patch16(at + 2, w.len - at);
      return;
    }
    default: {
      const never: never = a;
      throw badArg(`cannot encode ${(never as Action).kind}`);
    }
  }
}

function encodeNat(w: Writer, n: CtNat): void {
  const at = nxBegin(w, NXAST_NAT);
  let present = 0;
  if (n.ipMin) present |= NX_NAT_RANGE_IPV4_MIN;
  if (n.ipMax) present |= NX_NAT_RANGE_IPV4_MAX;
  if (n.portMin) present |= NX_NAT_RANGE_PROTO_MIN;
  if (n.portMax) present |= NX_NAT_RANGE_PROTO_MAX;
  const kind = n.kind === 'src' ? NX_NAT_F_SRC : n.kind === 'dst' ? NX_NAT_F_DST : 0;
  w.u16(0).u16(kind | (n.flags << 2)).u16(present);
  if (n.ipMin) w.u32(n.ipMin);
  if (n.ipMax) w.u32(n.ipMax);
  if (n.portMin) w.u16(n.portMin);
  if (n.portMax) w.u16(n.portMax);
  nxEnd(w, at);
}

function encodeLearn(w: Writer, a: Extract<Action, { kind: 'learn' }>, oxm: boolean): void {
  const at = nxBegin(w, NXAST_LEARN);
  w.u16(a.idleTimeoutS).u16(a.hardTimeoutS).u16(a.priority).u64(a.cookie).u16(a.flags).u8(a.table).u8(0)
    .u16(a.finIdleTimeoutS).u16(a.finHardTimeoutS);
  const sub = (sf: SubField): void => { w.u32(subHeader(sf, oxm)).u16(sf.ofs); };
  const imm = (v: bigint, nBits: number): void => { w.uintN(v, 2 * Math.ceil(nBits / 16)); };
  for (const s of a.specs) {
    switch (s.kind) {
      case 'match_field': w.u16(s.dst.nBits); sub(s.src); sub(s.dst); break;
      case 'match_imm': w.u16(NX_LEARN_SRC_IMMEDIATE | s.dst.nBits); imm(s.value, s.dst.nBits); sub(s.dst); break;
      case 'load_field': w.u16(NX_LEARN_DST_LOAD | s.dst.nBits); sub(s.src); sub(s.dst); break;
      case 'load_imm': w.u16(NX_LEARN_SRC_IMMEDIATE | NX_LEARN_DST_LOAD | s.dst.nBits); imm(s.value, s.dst.nBits); sub(s.dst); break;
      case 'output': w.u16(NX_LEARN_DST_OUTPUT | s.src.nBits); sub(s.src); break;
    }
  }
  nxEnd(w, at);
}

/** Appends the encoding of `actions` for `version`; returns the bytes written. */
export function encodeActions(w: Writer, actions: readonly Action[], version: number): number {
  const start = w.len;
  for (const a of actions) encodeOne(w, a, version);
  return w.len - start;
}
