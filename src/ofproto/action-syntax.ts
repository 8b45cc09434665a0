/**
 * The `actions=` part of ovs-ofctl flow text: parse into Action[] (actions.ts) and print back
 * exactly as `ovs-ofctl dump-flows` prints (OVS 3.1 over OpenFlow 1.0 + NXM, which is what
 * ovs-ofctl speaks by default). Printing follows OVS's encoding choices, so text that went
 * through OVS and text that went through flowd read the same:
 * - set_field to a field with an OpenFlow 1.0 action prints as that action (mod_dl_src,
 *   mod_nw_dst, mod_tp_src, mod_vlan_vid, mod_nw_tos...), any other set_field as load(s);
 * - goto_table:T prints as resubmit(,T) (OVS encodes it so for OpenFlow 1.0);
 * - pop_vlan prints as strip_vlan, bare ports as output:N, CONTROLLER as CONTROLLER:65535;
 * - note bytes are zero-padded to OVS's action alignment (6, 14, 22... bytes).
 *
 * Who calls: flow-syntax.ts. Errors are FlowSyntaxError with the 1-based column in the whole
 * flow text and what was expected. Nothing here runs per packet.
 */
import { FlowSyntaxError } from '../errors';
import type { Match } from './types';
import {
  Action, SubField, LearnSpec, LearnAction, CtAction, CtNat, OFPP_IN_PORT, OFPP_CONTROLLER,
  OFPP_NORMAL, OFPP_FLOOD, OFPP_ALL, OFPP_LOCAL, OFPP_TABLE, OFPP_NONE,
  LEARN_F_SEND_FLOW_REM, LEARN_F_DELETE_LEARNED, NAT_F_PERSISTENT, NAT_F_PROTO_HASH,
  NAT_F_PROTO_RANDOM, ControllerAction, PIN_REASON_ACTION, PIN_REASON_NAMES,
} from './actions';
import { FieldDef, fieldByAnyName, fieldByName, nxmName, mfName } from './fields';
import {
  SyntaxCtx, KeyValue, PortNamer, splitKeyValues, syntaxError, parseUint, parsePort, formatPort, reservedPort,
  parseFieldImmediate, formatFieldValue, fieldPrereqsOk, matchDlType, ETH_TYPE_IP, ETH_TYPE_IPV6, DEFAULT_PRIORITY,
} from './match-syntax';
import { formatIpv4, formatMac, parseIpv4, parseMac } from '../packet/addr-text';

// ---------------------------------------------------------------------------------------------
// Subfields

/** Parses `NAME[]`, `NAME[a]` or `NAME[a..b]` (NAME an NXM/OXM name or a field name). */
export function parseSubfield(text: string, ctx: SyntaxCtx, col0: number, what: string): SubField {
  const m = /^([A-Za-z0-9_]+)\[(?:(\d+)(?:\.\.(\d+))?)?\]$/.exec(text);
  if (!m) {
    throw syntaxError(ctx, col0, what, `"${text}": expected a field like NXM_NX_REG0[] or NXM_NX_REG0[0..15]`);
  }
  const field = fieldByAnyName(m[1]);
  if (!field || field.name === 'dl_vlan' || field.name === 'tp_src' || field.name === 'tp_dst') {
    throw syntaxError(ctx, col0, what, `unknown field "${m[1]}" (expected an NXM/OXM field name)`);
  }
  const width = field.widthBits;
  if (m[2] === undefined) return { field, ofs: 0, nBits: width };
  const a = Number(m[2]);
  const b = m[3] === undefined ? a : Number(m[3]);
  if (b < a || b >= width) {
    throw syntaxError(ctx, col0 + m[1].length, what, `bits [${a}..${b}] out of range for ${width}-bit field ${m[1]}`);
  }
  return { field, ofs: a, nBits: b - a + 1 };
}

/** Prints a subfield as OVS's mf_format_subfield: `NAME[]`, `NAME[a]`, `NAME[a..b]`. */
export function formatSubfield(sf: SubField): string {
  const n = nxmName(sf.field);
  if (sf.ofs === 0 && sf.nBits === sf.field.widthBits) return `${n}[]`;
  if (sf.nBits === 1) return `${n}[${sf.ofs}]`;
  return `${n}[${sf.ofs}..${sf.ofs + sf.nBits - 1}]`;
}

/** Hex without leading zeros, "0" for zero (OVS's ds_put_hex / %#x). */
function hexU(v: bigint): string {
  return v === 0n ? '0' : `0x${v.toString(16)}`;
}

function bitsOf(v: bigint): number {
  return v.toString(2).length;
}

// ---------------------------------------------------------------------------------------------
// Parsing

interface Cx extends SyntaxCtx { readonly match?: Match }

function uintIn(kv: KeyValue, cx: Cx, max: bigint, what: string): bigint {
  const v = parseUint(kv.value);
  if (v === undefined || v > max) {
    throw syntaxError(cx, kv.valueCol, kv.key, `"${kv.value}": expected ${what}`);
  }
  return v;
}

function needValue(kv: KeyValue, cx: Cx, expected: string): void {
  if (kv.value === '') throw syntaxError(cx, kv.keyCol, kv.key, `missing value (expected ${kv.key}:${expected})`);
}

function parseLoad(kv: KeyValue, cx: Cx): Action {
  needValue(kv, cx, 'VALUE->FIELD[]');
  const arrow = kv.value.indexOf('->');
  if (arrow < 0) throw syntaxError(cx, kv.valueCol, kv.key, `"${kv.value}": expected VALUE->FIELD[]`);
  const dst = parseSubfield(kv.value.slice(arrow + 2), cx, kv.valueCol + arrow + 2, kv.key);
  const vs = kv.value.slice(0, arrow);
  const v = parseUint(vs);
  if (v === undefined) throw syntaxError(cx, kv.valueCol, kv.key, `"${vs}": expected an integer value`);
  if (bitsOf(v) > dst.nBits && v !== 0n) {
    throw syntaxError(cx, kv.valueCol, kv.key, `value ${vs} does not fit in ${dst.nBits} bits`);
  }
  return { kind: 'load', dst, value: v };
}

function parseMove(kv: KeyValue, cx: Cx): Action {
  needValue(kv, cx, 'SRC[]->DST[]');
  const arrow = kv.value.indexOf('->');
  if (arrow < 0) throw syntaxError(cx, kv.valueCol, kv.key, `"${kv.value}": expected SRC[]->DST[]`);
  const src = parseSubfield(kv.value.slice(0, arrow), cx, kv.valueCol, kv.key);
  const dst = parseSubfield(kv.value.slice(arrow + 2), cx, kv.valueCol + arrow + 2, kv.key);
  if (src.nBits !== dst.nBits) {
    throw syntaxError(cx, kv.valueCol, kv.key, `source field is ${src.nBits} bits wide but destination is ${dst.nBits} bits wide`);
  }
  return { kind: 'move', src, dst };
}

function parseSetField(kv: KeyValue, cx: Cx): Action {
  needValue(kv, cx, 'VALUE[/MASK]->FIELD');
  const arrow = kv.value.indexOf('->');
  if (arrow < 0) throw syntaxError(cx, kv.valueCol, kv.key, `"${kv.value}": expected VALUE[/MASK]->FIELD`);
  const name = kv.value.slice(arrow + 2);
  const field = fieldByAnyName(name);
  if (!field || !field.writable && field.name !== 'vlan_vid') {
    throw syntaxError(cx, kv.valueCol + arrow + 2, kv.key, `"${name}": expected a writable field name`);
  }
  if (field.name === 'dl_vlan' || field.name === 'tp_src' || field.name === 'tp_dst') {
    throw syntaxError(cx, kv.valueCol + arrow + 2, kv.key, `"${name}": expected a writable field name`);
  }
  if (field.name.startsWith('ct_')) {
    if ((cx as { inCt?: boolean }).inCt !== true) {
      throw syntaxError(cx, kv.valueCol + arrow + 2, kv.key, 'cannot set CT fields outside of ct action');
    }
  }
  const [value, mask] = parseFieldImmediate(field, kv.value.slice(0, arrow), cx, kv.valueCol);
  // OpenFlow 1.2+ (OXM): a VLAN id set must carry OFPVID_PRESENT (0x1000); OVS refuses it otherwise.
  if (field.name === 'vlan_vid' && (value & 0x1000n) === 0n) {
    throw syntaxError(cx, kv.valueCol, kv.key, `Invalid value for set field vlan_vid: ${value} (OFPBAC_BAD_SET_ARGUMENT; expected 0x1000 | VID)`);
  }
  return { kind: 'set_field', field, value, mask };
}

function parseResubmit(kv: KeyValue, cx: Cx): Action {
  if (kv.sep === '(') {
    const parts = kv.value.split(',');
    if (parts.length > 3) throw syntaxError(cx, kv.valueCol, 'resubmit', 'expected resubmit([PORT],[TABLE])');
    const ps = parts[0].trim();
    const ts = (parts[1] ?? '').trim();
    const inPort = ps === '' ? OFPP_IN_PORT : parsePort(ps, cx, kv.valueCol, 'resubmit');
    let table = 255;
    if (ts !== '') {
      const t = parseUint(ts);
      if (t === undefined || t > 254n) {
        throw syntaxError(cx, kv.valueCol + parts[0].length + 1, 'resubmit', `"${ts}": expected a table number 0..254`);
      }
      table = Number(t);
    }
    if (inPort === OFPP_IN_PORT && table === 255) {
      throw syntaxError(cx, kv.valueCol, 'resubmit', 'at least one "in_port" or "table" must be specified on resubmit');
    }
    return { kind: 'resubmit', inPort, table };
  }
  needValue(kv, cx, 'PORT');
  const inPort = parsePort(kv.value, cx, kv.valueCol, 'resubmit');
  if (inPort === OFPP_IN_PORT) {
    throw syntaxError(cx, kv.valueCol, 'resubmit', 'at least one "in_port" or "table" must be specified on resubmit');
  }
  return { kind: 'resubmit', inPort, table: 255 };
}

/**
 * controller, controller:N, controller(reason=R,max_len=N,id=I,userdata=XX.XX): the plain
 * forms (reason action, id 0, no userdata) are output:CONTROLLER, as OVS encodes them.
 */
function parseController(kv: KeyValue, cx: Cx): Action {
  let maxLen = 65535;
  let reason = PIN_REASON_ACTION;
  let controllerId = 0;
  let userdata = new Uint8Array(0);
  if (kv.sep === '(') {
    for (const it of splitKeyValues(kv.value, cx, kv.valueCol)) {
      switch (it.key) {
        case 'max_len': maxLen = Number(uintIn(it, cx, 65535n, 'a max_len 0..65535')); break;
        case 'id': controllerId = Number(uintIn(it, cx, 65535n, 'a controller id 0..65535')); break;
        case 'reason': {
          const r = PIN_REASON_NAMES.indexOf(it.value);
          if (r < 0) throw syntaxError(cx, it.valueCol, 'controller', `unknown reason "${it.value}" (expected ${PIN_REASON_NAMES.join(', ')})`);
          reason = r;
          break;
        }
        case 'userdata': {
          const hex = it.value.replace(/\./g, '');
          if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw syntaxError(cx, it.valueCol, 'controller', `"${it.value}": expected pairs of hex digits, optionally separated by "."`);
          userdata = Uint8Array.from(hex.match(/../g) as string[], (h) => parseInt(h, 16));
          break;
        }
        default: throw syntaxError(cx, it.keyCol, 'controller', `unknown controller argument "${it.key}" (expected reason=, max_len=, id=, userdata=)`);
      }
    }
  } else if (kv.value !== '') {
    maxLen = Number(uintIn(kv, cx, 65535n, 'a max_len 0..65535'));
  }
  if (reason === PIN_REASON_ACTION && controllerId === 0 && userdata.length === 0) return { kind: 'output', port: OFPP_CONTROLLER, maxLen };
  return { kind: 'controller', maxLen, reason, controllerId, userdata };
}

/** controller(...) as OVS prints it: reason, max_len, id, userdata, each only when not the default. */
function formatController(a: ControllerAction): string {
  const p: string[] = [];
  if (a.reason !== PIN_REASON_ACTION) p.push(`reason=${PIN_REASON_NAMES[a.reason] ?? String(a.reason)}`);
  if (a.maxLen !== 65535) p.push(`max_len=${a.maxLen}`);
  if (a.controllerId !== 0) p.push(`id=${a.controllerId}`);
  if (a.userdata.length > 0) p.push(`userdata=${Array.from(a.userdata, (b) => b.toString(16).padStart(2, '0')).join('.')}`);
  return `controller(${p.join(',')})`;
}

function parseNote(kv: KeyValue, cx: Cx): Action {
  const hex = kv.value.replace(/\./g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(hex)) {
    throw syntaxError(cx, kv.valueCol, 'note', `"${kv.value}": expected pairs of hex digits, optionally separated by "."`);
  }
  const n = hex.length / 2;
  // OVS pads the NXAST_NOTE action (10 header bytes + note) to a multiple of 8 bytes.
  const padded = n + ((8 - ((10 + n) % 8)) % 8);
  const bytes = new Uint8Array(padded);
  for (let i = 0; i < n; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return { kind: 'note', bytes };
}

function parseLearn(kv: KeyValue, cx: Cx): LearnAction {
  let table = 1;
  let priority = DEFAULT_PRIORITY;
  let idle = 0;
  let hard = 0;
  let finIdle = 0;
  let finHard = 0;
  let cookie = 0n;
  let flags = 0;
  const specs: LearnSpec[] = [];
  for (const it of splitKeyValues(kv.value, cx, kv.valueCol)) {
    const num = (max: bigint): number => Number(uintIn(it, cx, max, `an integer 0..${max}`));
    switch (it.key) {
      case 'table': table = num(254n); continue;
      case 'priority': priority = num(65535n); continue;
      case 'idle_timeout': idle = num(65535n); continue;
      case 'hard_timeout': hard = num(65535n); continue;
      case 'fin_idle_timeout': finIdle = num(65535n); continue;
      case 'fin_hard_timeout': finHard = num(65535n); continue;
      case 'cookie': cookie = uintIn(it, cx, 0xffffffffffffffffn, 'a 64-bit cookie'); continue;
      case 'send_flow_rem': flags |= LEARN_F_SEND_FLOW_REM; continue;
      case 'delete_learned': flags |= LEARN_F_DELETE_LEARNED; continue;
      case 'load': {
        needValue(it, cx, 'SRC->DST[]');
        const arrow = it.value.indexOf('->');
        if (arrow < 0) throw syntaxError(cx, it.valueCol, 'learn', `"${it.value}": expected load:SRC->DST[]`);
        const dst = parseSubfield(it.value.slice(arrow + 2), cx, it.valueCol + arrow + 2, 'learn');
        const ss = it.value.slice(0, arrow);
        const imm = parseUint(ss);
        if (imm !== undefined) {
          if (imm !== 0n && bitsOf(imm) > dst.nBits) throw syntaxError(cx, it.valueCol, 'learn', `value ${ss} does not fit in ${dst.nBits} bits`);
          specs.push({ kind: 'load_imm', dst, value: imm });
        } else {
          const src = parseSubfield(ss, cx, it.valueCol, 'learn');
          if (src.nBits !== dst.nBits) throw syntaxError(cx, it.valueCol, 'learn', `source is ${src.nBits} bits wide but destination is ${dst.nBits} bits wide`);
          specs.push({ kind: 'load_field', dst, src });
        }
        continue;
      }
      case 'output': {
        needValue(it, cx, 'FIELD[]');
        specs.push({ kind: 'output', src: parseSubfield(it.value, cx, it.valueCol, 'learn') });
        continue;
      }
      default: break;
    }
    if (it.key.includes('[')) {
      const dst = parseSubfield(it.key, cx, it.keyCol, 'learn');
      if (it.sep === '') { specs.push({ kind: 'match_field', dst, src: dst }); continue; }
      const imm = parseUint(it.value);
      if (imm !== undefined) {
        if (imm !== 0n && bitsOf(imm) > dst.nBits) throw syntaxError(cx, it.valueCol, 'learn', `value ${it.value} does not fit in ${dst.nBits} bits`);
        specs.push({ kind: 'match_imm', dst, value: imm });
      } else {
        const src = parseSubfield(it.value, cx, it.valueCol, 'learn');
        if (src.nBits !== dst.nBits) throw syntaxError(cx, it.valueCol, 'learn', `source is ${src.nBits} bits wide but destination is ${dst.nBits} bits wide`);
        specs.push({ kind: 'match_field', dst, src });
      }
      continue;
    }
    const f = fieldByName(it.key);
    if (f && it.sep !== '' && f.name !== 'dl_vlan' && f.name !== 'tp_src' && f.name !== 'tp_dst') {
      const [v] = parseFieldImmediate(f, it.value, cx, it.valueCol);
      specs.push({ kind: 'match_imm', dst: { field: f, ofs: 0, nBits: f.widthBits }, value: v });
      continue;
    }
    throw syntaxError(cx, it.keyCol, 'learn', `unknown learn argument "${it.key}" (expected table, priority, idle_timeout, hard_timeout, cookie, FIELD[]=FIELD[], FIELD=VALUE, load:SRC->DST, output:FIELD[])`);
  }
  return { kind: 'learn', table, priority, idleTimeoutS: idle, hardTimeoutS: hard,
           finIdleTimeoutS: finIdle, finHardTimeoutS: finHard, cookie, flags, specs };
}

function parseNat(kv: KeyValue, cx: Cx): CtNat {
  let kind: CtNat['kind'] = 'none';
  let ipMin = 0;
  let ipMax = 0;
  let portMin = 0;
  let portMax = 0;
  let flags = 0;
  if (kv.sep !== '(') return { kind, ipMin, ipMax, portMin, portMax, flags };
  for (const it of splitKeyValues(kv.value, cx, kv.valueCol)) {
    if (it.key === 'src' || it.key === 'dst') {
      if (kind !== 'none') throw syntaxError(cx, it.keyCol, 'nat', 'only one of "src" or "dst" may be given');
      kind = it.key;
      if (it.value === '') continue;
      const m = /^(\d+\.\d+\.\d+\.\d+)(?:-(\d+\.\d+\.\d+\.\d+))?(?::(\d+)(?:-(\d+))?)?$/.exec(it.value);
      if (!m) {
        throw syntaxError(cx, it.valueCol, 'nat', `"${it.value}": expected IP[-IP][:PORT[-PORT]]`);
      }
      const a = parseIpv4(m[1]);
      const b = m[2] !== undefined ? parseIpv4(m[2]) : a;
      if (a === undefined || b === undefined) throw syntaxError(cx, it.valueCol, 'nat', `"${it.value}": bad IPv4 address`);
      if (b < a) throw syntaxError(cx, it.valueCol, 'nat', `"${it.value}": address range must be ascending`);
      ipMin = a;
      ipMax = m[2] !== undefined ? b : 0;
      if (m[3] !== undefined) {
        portMin = Number(m[3]);
        portMax = m[4] !== undefined ? Number(m[4]) : 0;
        if (portMin > 65535 || portMax > 65535 || (portMax && portMax < portMin)) {
          throw syntaxError(cx, it.valueCol, 'nat', `"${it.value}": bad port range`);
        }
      }
    } else if (it.key === 'persistent') flags |= NAT_F_PERSISTENT;
    else if (it.key === 'hash') flags |= NAT_F_PROTO_HASH;
    else if (it.key === 'random') flags |= NAT_F_PROTO_RANDOM;
    else throw syntaxError(cx, it.keyCol, 'nat', `unknown nat argument "${it.key}" (expected src=, dst=, persistent, hash, random)`);
  }
  return { kind, ipMin, ipMax, portMin, portMax, flags };
}

function parseCt(kv: KeyValue, cx: Cx): CtAction {
  let commit = false;
  let force = false;
  let zone = 0;
  let zoneSrc: SubField | null = null;
  let table = 255;
  let nat: CtNat | null = null;
  let exec: Action[] = [];
  if (kv.sep === '(') {
    for (const it of splitKeyValues(kv.value, cx, kv.valueCol)) {
      switch (it.key) {
        case 'commit': commit = true; break;
        case 'force': force = true; commit = true; break;
        case 'table': table = Number(uintIn(it, cx, 254n, 'a table number 0..254')); break;
        case 'zone':
          if (parseUint(it.value) !== undefined) zone = Number(uintIn(it, cx, 65535n, 'a zone 0..65535'));
          else zoneSrc = parseSubfield(it.value, cx, it.valueCol, 'ct');
          break;
        case 'nat': nat = parseNat(it, cx); break;
        case 'exec': {
          const inner: Cx & { inCt: boolean } = { ...cx, inCt: true };
          exec = parseActionList(it.value, inner, it.valueCol);
          for (const a of exec) {
            const ok = (a.kind === 'set_field' && a.field.name.startsWith('ct_'))
              || (a.kind === 'load' && a.dst.field.name.startsWith('ct_'));
            if (!ok) throw syntaxError(cx, it.valueCol, 'ct', 'exec() may only set ct_mark or ct_label');
          }
          break;
        }
        default:
          throw syntaxError(cx, it.keyCol, 'ct', `unknown ct argument "${it.key}" (expected commit, force, zone=, table=, nat, exec())`);
      }
    }
  }
  return { kind: 'ct', commit, force, zone, zoneSrc, table, nat, exec };
}

function parseOne(kv: KeyValue, cx: Cx): Action {
  const key = kv.key;
  const lower = key.toLowerCase();
  switch (lower) {
    case 'output': {
      needValue(kv, cx, 'PORT');
      if (kv.value.includes('[')) return { kind: 'output_reg', src: parseSubfield(kv.value, cx, kv.valueCol, 'output'), maxLen: 0 };
      const port = parsePort(kv.value, cx, kv.valueCol, 'output');
      return { kind: 'output', port, maxLen: port === OFPP_CONTROLLER ? 65535 : 0 };
    }
    case 'controller': return parseController(kv, cx);
    case 'mod_vlan_vid': needValue(kv, cx, 'VID'); return { kind: 'set_vlan_vid', vid: Number(uintIn(kv, cx, 4095n, 'a VLAN id 0..4095')) };
    case 'mod_vlan_pcp': needValue(kv, cx, 'PCP'); return { kind: 'set_vlan_pcp', pcp: Number(uintIn(kv, cx, 7n, 'a VLAN priority 0..7')) };
    case 'push_vlan': {
      needValue(kv, cx, 'ETHERTYPE');
      const t = Number(uintIn(kv, cx, 0xffffn, 'an ethertype'));
      if (t !== 0x8100 && t !== 0x88a8) throw syntaxError(cx, kv.valueCol, key, `"${kv.value}": expected 0x8100 or 0x88a8`);
      return { kind: 'push_vlan', ethertype: t };
    }
    case 'strip_vlan': return { kind: 'strip_vlan', name: 'strip_vlan' };
    case 'pop_vlan': return { kind: 'strip_vlan', name: 'pop_vlan' };
    case 'mod_dl_src': case 'mod_dl_dst': {
      needValue(kv, cx, 'MAC');
      const mac = parseMac(kv.value);
      if (mac === undefined) throw syntaxError(cx, kv.valueCol, key, `"${kv.value}": expected a MAC address xx:xx:xx:xx:xx:xx`);
      return { kind: lower === 'mod_dl_src' ? 'set_dl_src' : 'set_dl_dst', mac };
    }
    case 'mod_nw_src': case 'mod_nw_dst': {
      needValue(kv, cx, 'IP');
      const ip = parseIpv4(kv.value);
      if (ip === undefined) throw syntaxError(cx, kv.valueCol, key, `"${kv.value}": expected an IPv4 address a.b.c.d`);
      return { kind: lower === 'mod_nw_src' ? 'set_nw_src' : 'set_nw_dst', ipv4: ip };
    }
    case 'mod_nw_tos': {
      needValue(kv, cx, 'TOS');
      const tos = Number(uintIn(kv, cx, 255n, 'a TOS value 0..255'));
      if (tos & 3) throw syntaxError(cx, kv.valueCol, key, `"${kv.value}": expected a TOS with the ECN bits (0x03) clear`);
      return { kind: 'set_nw_tos', tos };
    }
    case 'mod_tp_src': case 'mod_tp_dst':
      needValue(kv, cx, 'PORT');
      return { kind: lower === 'mod_tp_src' ? 'set_tp_src' : 'set_tp_dst', port: Number(uintIn(kv, cx, 65535n, 'a port 0..65535')) };
    case 'dec_ttl':
      if (kv.sep !== '') throw syntaxError(cx, kv.valueCol, key, 'dec_ttl with controller ids is not supported (expected bare dec_ttl)');
      return { kind: 'dec_ttl' };
    case 'set_field': return parseSetField(kv, cx);
    case 'load': return parseLoad(kv, cx);
    case 'move': return parseMove(kv, cx);
    case 'set_tunnel': case 'set_tunnel64': {
      needValue(kv, cx, 'TUN_ID');
      const v = uintIn(kv, cx, 0xffffffffffffffffn, 'a tunnel id (64 bits)');
      return { kind: 'set_tunnel', tunId: v, is64: lower === 'set_tunnel64' || v > 0xffffffffn };
    }
    case 'resubmit': return parseResubmit(kv, cx);
    case 'goto_table': {
      needValue(kv, cx, 'TABLE');
      return { kind: 'goto_table', table: Number(uintIn(kv, cx, 254n, 'a table number 0..254')) };
    }
    case 'note': return parseNote(kv, cx);
    case 'learn': return parseLearn(kv, cx);
    case 'ct': return parseCt(kv, cx);
    case 'ct_clear': return { kind: 'ct_clear' };
    case 'check_pkt_larger': return parseCheckPktLarger(kv, cx);
    case 'conjunction': return parseConjunction(kv, cx);
    case 'in_port': return { kind: 'output', port: OFPP_IN_PORT, maxLen: 0 };
    default: break;
  }
  if (kv.sep === '') {
    const r = reservedPort(key);
    if (r !== undefined && r !== OFPP_NONE) return { kind: 'output', port: r, maxLen: r === OFPP_CONTROLLER ? 65535 : 0 };
    const n = parseUint(key);
    if (n !== undefined) {
      if (n > 0xffffn) throw syntaxError(cx, kv.keyCol, 'output', `port ${key} out of range (expected 0..65535)`);
      return { kind: 'output', port: Number(n), maxLen: 0 };
    }
    if (key.startsWith('"')) return { kind: 'output', port: parsePort(key, cx, kv.keyCol, 'actions'), maxLen: 0 };
    const named = cx.resolvePort?.(key);
    if (named !== undefined) return { kind: 'output', port: named, maxLen: 0 };
  }
  throw syntaxError(cx, kv.keyCol, 'actions', `unknown action "${key}" (expected an action such as output:PORT, NORMAL, drop, mod_vlan_vid:VID, load:V->F[], resubmit(,T) or a port)`);
}

/** conjunction(ID,K/N): 1 <= K <= N, 2 <= N <= 64, ID a 32-bit integer (OVS's checks). */
function parseConjunction(kv: KeyValue, cx: Cx): Action {
  const m = /^\s*(\S+?)\s*,\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(kv.value);
  const id = m === null ? undefined : parseUint(m[1]);
  if (kv.sep !== '(' || m === null || id === undefined || id > 0xffffffffn) {
    throw syntaxError(cx, kv.valueCol, 'conjunction', `"${kv.value}": expected conjunction(ID,K/N)`);
  }
  const clause = Number(m[2]), nClauses = Number(m[3]);
  if (nClauses < 2) throw syntaxError(cx, kv.valueCol, 'conjunction', 'conjunction must have at least 2 clauses');
  if (nClauses > 64) throw syntaxError(cx, kv.valueCol, 'conjunction', 'conjunction must have at most 64 clauses');
  if (clause < 1) throw syntaxError(cx, kv.valueCol, 'conjunction', 'clause index must be positive');
  if (clause > nClauses) {
    throw syntaxError(cx, kv.valueCol, 'conjunction', 'clause index must be less than or equal to number of clauses');
  }
  return { kind: 'conjunction', id: Number(id), clause, nClauses };
}

/** check_pkt_larger(LEN)->DST, DST a one-bit subfield (OVS's NXAST_CHECK_PKT_LARGER). */
function parseCheckPktLarger(kv: KeyValue, cx: Cx): Action {
  const m = /^\s*(\d+)\s*\)->(.*)$/.exec(kv.value);
  if (kv.sep !== '(' || m === null) {
    throw syntaxError(cx, kv.valueCol, 'check_pkt_larger', 'expected check_pkt_larger(LENGTH)->DST[BIT]');
  }
  const pktLen = Number(m[1]);
  if (pktLen > 65535) throw syntaxError(cx, kv.valueCol, 'check_pkt_larger', `length ${m[1]} out of range (expected 0..65535)`);
  const dst = parseSubfield(m[2], cx, kv.valueCol + kv.value.indexOf('->') + 2, 'check_pkt_larger');
  if (dst.nBits !== 1) throw syntaxError(cx, kv.valueCol, 'check_pkt_larger', 'the destination must be a single bit, e.g. NXM_NX_REG0[0]');
  return { kind: 'check_pkt_larger', pktLen, dst };
}

function parseActionList(text: string, cx: Cx, base: number): Action[] {
  const items = splitKeyValues(text, cx, base);
  const out: Action[] = [];
  for (const kv of items) {
    if (kv.key === 'drop') {
      if (items.length !== 1) {
        throw syntaxError(cx, kv.keyCol, 'actions', '"drop" must not be accompanied by any other action or instruction');
      }
      return [];
    }
    out.push(parseOne(kv, cx));
  }
  return out;
}

/**
 * Parses the text after `actions=` (which starts at 0-based column `base` of the whole flow).
 * With `match`, checks what ovs-ofctl checks against it: set_field/load/move fields need their
 * prerequisites in the match, ct needs ip or ipv6 ("actions are invalid with specified match").
 * An empty text is an error; "drop" is the empty list.
 */
export function parseActions(text: string, ctx: SyntaxCtx, base = 0, match?: Match): Action[] {
  const cx: Cx = { ...ctx, match };
  if (text.trim() === '') throw syntaxError(ctx, base, 'actions', 'missing actions (expected actions=ACTION[,ACTION...] or actions=drop)');
  const acts = parseActionList(text, cx, base);
  checkConjunctionAlone(acts, ctx, base);
  if (match) checkActionsAgainstMatch(acts, match, ctx, base);
  return acts;
}

/** conjunction may share a rule only with other conjunctions and notes (OVS's rule). */
function checkConjunctionAlone(acts: readonly Action[], ctx: SyntaxCtx, base: number): void {
  if (!acts.some((a) => a.kind === 'conjunction')) return;
  const other = acts.find((a) => a.kind !== 'conjunction' && a.kind !== 'note');
  if (other === undefined) return;
  const name = formatAction(other).split(/[:(]/)[0];
  throw syntaxError(ctx, base, 'actions', `"conjunction" actions may be used along with "note" but not any other kind of action (such as the "${name}" action used here)`);
}

function checkActionsAgainstMatch(acts: readonly Action[], match: Match, ctx: SyntaxCtx, base: number): void {
  const bad = (why: string): FlowSyntaxError =>
    syntaxError(ctx, base, 'actions', `${why}: actions are invalid with specified match (OFPBAC_MATCH_INCONSISTENT)`);
  for (const a of acts) {
    switch (a.kind) {
      case 'set_field':
        if (!fieldPrereqsOk(a.field, match)) throw bad(`set_field ${mfName(a.field)} lacks correct prerequisites`);
        break;
      case 'load':
        if (!fieldPrereqsOk(a.dst.field, match)) throw bad(`load to ${mfName(a.dst.field)} lacks correct prerequisites`);
        break;
      case 'move':
        if (!fieldPrereqsOk(a.src.field, match)) throw bad(`source field ${mfName(a.src.field)} lacks correct prerequisites`);
        if (!fieldPrereqsOk(a.dst.field, match)) throw bad(`destination field ${mfName(a.dst.field)} lacks correct prerequisites`);
        break;
      case 'ct': {
        const t = matchDlType(match);
        if (t !== ETH_TYPE_IP && t !== ETH_TYPE_IPV6) throw bad('ct needs ip or ipv6 in the match');
        break;
      }
      case 'learn':
        for (const s of a.specs) {
          if ((s.kind === 'match_field' || s.kind === 'load_field' || s.kind === 'output')
              && !fieldPrereqsOk(s.src.field, match)) {
            throw bad(`source field ${mfName(s.src.field)} lacks correct prerequisites`);
          }
        }
        break;
      default: break;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Printing

function formatOutputPort(port: number, maxLen: number, namer?: PortNamer): string {
  switch (port) {
    case OFPP_IN_PORT: return 'IN_PORT';
    case OFPP_NORMAL: return 'NORMAL';
    case OFPP_FLOOD: return 'FLOOD';
    case OFPP_ALL: return 'ALL';
    case OFPP_LOCAL: return 'LOCAL';
    case OFPP_TABLE: return 'TABLE';
    case OFPP_CONTROLLER: return `CONTROLLER:${maxLen}`;
    default: return `output:${formatPort(port, namer)}`;
  }
}

/** set_field as OVS encodes it for OpenFlow 1.0 + NXM: a legacy action or reg loads. */
function formatSetField(a: { field: FieldDef; value: bigint; mask: bigint }): string {
  const f = a.field;
  const full = (1n << BigInt(f.widthBits)) - 1n;
  const keyFull = (1n << BigInt(f.keyBits)) - 1n;
  const mask = (a.mask & keyFull) === keyFull ? full : a.mask;
  if ((mask & full) === full) {
    switch (f.name) {
      case 'dl_src': return `mod_dl_src:${formatMac(a.value)}`;
      case 'dl_dst': return `mod_dl_dst:${formatMac(a.value)}`;
      case 'nw_src': return `mod_nw_src:${formatIpv4(Number(a.value))}`;
      case 'nw_dst': return `mod_nw_dst:${formatIpv4(Number(a.value))}`;
      case 'ip_dscp': return `mod_nw_tos:${Number(a.value) << 2}`;
      case 'nw_tos': return `mod_nw_tos:${Number(a.value) & 0xfc}`;
      case 'tcp_src': case 'udp_src': case 'sctp_src': return `mod_tp_src:${a.value}`;
      case 'tcp_dst': case 'udp_dst': case 'sctp_dst': return `mod_tp_dst:${a.value}`;
      case 'vlan_vid': return `mod_vlan_vid:${Number(a.value) & 0xfff}`;
      case 'dl_vlan_pcp': return `mod_vlan_pcp:${a.value}`;
      default: break;
    }
  }
  // One NXAST_REG_LOAD per contiguous run of mask bits, each at most 64 bits, low bits first.
  const loads: string[] = [];
  let bit = 0;
  const width = f.widthBits;
  while (bit < width) {
    if (((mask >> BigInt(bit)) & 1n) === 0n) { bit++; continue; }
    let end = bit;
    while (end < width && ((mask >> BigInt(end)) & 1n) === 1n && end - bit < 64) end++;
    const n = end - bit;
    const v = (a.value >> BigInt(bit)) & ((1n << BigInt(n)) - 1n);
    loads.push(`load:${hexU(v)}->${formatSubfield({ field: f, ofs: bit, nBits: n })}`);
    bit = end;
  }
  return loads.join(',');
}

function formatLearn(a: LearnAction, namer?: PortNamer): string {
  let s = `learn(table=${a.table}`;
  if (a.idleTimeoutS) s += `,idle_timeout=${a.idleTimeoutS}`;
  if (a.hardTimeoutS) s += `,hard_timeout=${a.hardTimeoutS}`;
  if (a.finIdleTimeoutS) s += `,fin_idle_timeout=${a.finIdleTimeoutS}`;
  if (a.finHardTimeoutS) s += `,fin_hard_timeout=${a.finHardTimeoutS}`;
  if (a.priority !== DEFAULT_PRIORITY) s += `,priority=${a.priority}`;
  if (a.flags & LEARN_F_SEND_FLOW_REM) s += ',send_flow_rem';
  if (a.flags & LEARN_F_DELETE_LEARNED) s += ',delete_learned';
  if (a.cookie) s += `,cookie=${hexU(a.cookie)}`;
  for (const sp of a.specs) {
    s += ',';
    switch (sp.kind) {
      case 'match_imm':
        if (sp.dst.ofs === 0 && sp.dst.nBits === sp.dst.field.widthBits) {
          s += `${mfName(sp.dst.field)}=${formatFieldValue(sp.dst.field, sp.value, namer)}`;
        } else {
          s += `${formatSubfield(sp.dst)}=${hexU(sp.value)}`;
        }
        break;
      case 'match_field':
        s += formatSubfield(sp.dst);
        if (sp.src.field !== sp.dst.field || sp.src.ofs !== sp.dst.ofs) s += `=${formatSubfield(sp.src)}`;
        break;
      case 'load_imm': s += `load:${hexU(sp.value)}->${formatSubfield(sp.dst)}`; break;
      case 'load_field': s += `load:${formatSubfield(sp.src)}->${formatSubfield(sp.dst)}`; break;
      case 'output': s += `output:${formatSubfield(sp.src)}`; break;
    }
  }
  return `${s})`;
}

function formatNat(n: CtNat): string {
  if (n.kind === 'none') return 'nat';
  let s = `nat(${n.kind}`;
  if (n.ipMin) {
    s += `=${formatIpv4(n.ipMin)}`;
    if (n.ipMax && n.ipMax !== n.ipMin) s += `-${formatIpv4(n.ipMax)}`;
    if (n.portMin) {
      s += `:${n.portMin}`;
      if (n.portMax && n.portMax !== n.portMin) s += `-${n.portMax}`;
    }
    if (n.flags & NAT_F_PERSISTENT) s += ',persistent';
    if (n.flags & NAT_F_PROTO_HASH) s += ',hash';
    if (n.flags & NAT_F_PROTO_RANDOM) s += ',random';
  }
  return `${s})`;
}

function formatCt(a: CtAction, namer?: PortNamer): string {
  const parts: string[] = [];
  if (a.commit) parts.push('commit');
  if (a.force) parts.push('force');
  if (a.table !== 255) parts.push(`table=${a.table}`);
  if (a.zoneSrc) parts.push(`zone=${formatSubfield(a.zoneSrc)}`);
  else if (a.zone) parts.push(`zone=${a.zone}`);
  if (a.nat) parts.push(formatNat(a.nat));
  if (a.exec.length) parts.push(`exec(${formatActions(a.exec, namer)})`);
  return `ct(${parts.join(',')})`;
}

/** Prints one action as ovs-ofctl dump-flows does. */
export function formatAction(a: Action, namer?: PortNamer): string {
  switch (a.kind) {
    case 'output': return formatOutputPort(a.port, a.maxLen, namer);
    case 'output_reg': return `output:${formatSubfield(a.src)}`;
    case 'set_vlan_vid': return `mod_vlan_vid:${a.vid}`;
    case 'set_vlan_pcp': return `mod_vlan_pcp:${a.pcp}`;
    case 'push_vlan': return `push_vlan:0x${a.ethertype.toString(16)}`;
    case 'strip_vlan': return 'strip_vlan';
    case 'set_dl_src': return `mod_dl_src:${formatMac(a.mac)}`;
    case 'set_dl_dst': return `mod_dl_dst:${formatMac(a.mac)}`;
    case 'set_nw_src': return `mod_nw_src:${formatIpv4(a.ipv4)}`;
    case 'set_nw_dst': return `mod_nw_dst:${formatIpv4(a.ipv4)}`;
    case 'set_nw_tos': return `mod_nw_tos:${a.tos}`;
    case 'set_tp_src': return `mod_tp_src:${a.port}`;
    case 'set_tp_dst': return `mod_tp_dst:${a.port}`;
    case 'dec_ttl': return 'dec_ttl';
    case 'set_field': return formatSetField(a);
    case 'load': return `load:${hexU(a.value)}->${formatSubfield(a.dst)}`;
    case 'move': return `move:${formatSubfield(a.src)}->${formatSubfield(a.dst)}`;
    case 'set_tunnel': return a.is64 || a.tunId > 0xffffffffn ? `set_tunnel64:${hexU(a.tunId)}` : `set_tunnel:${hexU(a.tunId)}`;
    case 'resubmit':
      if (a.table === 255) return `resubmit:${formatPort(a.inPort, namer)}`;
      return `resubmit(${a.inPort === OFPP_IN_PORT ? '' : formatPort(a.inPort, namer)},${a.table})`;
    case 'goto_table': return `resubmit(,${a.table})`;
    case 'controller': return formatController(a);
    case 'note': return `note:${Array.from(a.bytes, (b) => b.toString(16).padStart(2, '0')).join('.')}`;
    case 'learn': return formatLearn(a, namer);
    case 'ct': return formatCt(a, namer);
    case 'check_pkt_larger': return `check_pkt_larger(${a.pktLen})->${formatSubfield(a.dst)}`;
    case 'ct_clear': return 'ct_clear';
    case 'conjunction': return `conjunction(${a.id},${a.clause}/${a.nClauses})`;
  }
}

/** Prints an action list as ovs-ofctl dump-flows does ("drop" for none). */
export function formatActions(acts: readonly Action[], namer?: PortNamer): string {
  if (acts.length === 0) return 'drop';
  return acts.map((a) => formatAction(a, namer)).join(',');
}

/** Exposed for tests and trace: IPv6 printing shared with match-syntax. */
