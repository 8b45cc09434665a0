/**
 * OpenFlow actions as flowd stores them in a rule: a tagged union, one variant per action
 * ovs-ofctl knows that flowd supports. action-syntax.ts parses and prints them (as
 * `ovs-ofctl dump-flows` does); xlate.ts executes them on a flow key and packet.
 *
 * Conventions:
 * - Ports are OpenFlow 1.0 port numbers, as OVS's ofp_port_t; reserved ports use the OFPP_*
 *   constants below (IN_PORT, NORMAL, FLOOD, ...). A port name in flow text is resolved to its
 *   number when the flow is parsed (ovs-ofctl does the same).
 * - MAC addresses are numbers (48 bits fit a double exactly); IPv4 addresses are unsigned
 *   32-bit numbers; wider values (tun_id, metadata, IPv6, load immediates) are bigints.
 * - An empty action list is "drop".
 * - Rules share their action arrays read-only: never mutate an Action after parsing.
 */
import type { FieldDef } from './fields';
import type { CtNatRange } from '../dpif/conntrack';

/** OpenFlow 1.0 reserved port numbers (OVS's OFPP_*). */
export const OFPP_MAX = 0xff00;
export const OFPP_UNSET = 0xfff7;
export const OFPP_IN_PORT = 0xfff8;
export const OFPP_TABLE = 0xfff9;
export const OFPP_NORMAL = 0xfffa;
export const OFPP_FLOOD = 0xfffb;
export const OFPP_ALL = 0xfffc;
export const OFPP_CONTROLLER = 0xfffd;
export const OFPP_LOCAL = 0xfffe;
export const OFPP_NONE = 0xffff;

/** A field, or bits [ofs, ofs+nBits) of it: `NXM_NX_REG0[3..5]`, `NXM_OF_ETH_DST[]`. */
export interface SubField {
  readonly field: FieldDef;
  readonly ofs: number;
  readonly nBits: number;
}

export interface OutputAction { readonly kind: 'output'; readonly port: number; readonly maxLen: number }
/** output:NXM_OF_IN_PORT[] (port number read from a field), as learn specs and Neutron use. */
export interface OutputRegAction { readonly kind: 'output_reg'; readonly src: SubField; readonly maxLen: number }
export interface SetVlanVidAction { readonly kind: 'set_vlan_vid'; readonly vid: number }
export interface SetVlanPcpAction { readonly kind: 'set_vlan_pcp'; readonly pcp: number }
export interface PushVlanAction { readonly kind: 'push_vlan'; readonly ethertype: number }
/** strip_vlan and pop_vlan are the same action; `name` keeps the spelling for printing. */
export interface StripVlanAction { readonly kind: 'strip_vlan'; readonly name: 'strip_vlan' | 'pop_vlan' }
export interface SetDlAction { readonly kind: 'set_dl_src' | 'set_dl_dst'; readonly mac: number }
export interface SetNwAction { readonly kind: 'set_nw_src' | 'set_nw_dst'; readonly ipv4: number }
export interface SetNwTosAction { readonly kind: 'set_nw_tos'; readonly tos: number }
export interface SetTpAction { readonly kind: 'set_tp_src' | 'set_tp_dst'; readonly port: number }
export interface DecTtlAction { readonly kind: 'dec_ttl' }
/** set_field:V[/M]->F (OpenFlow 1.2+). `mask` is all ones of the field when none was given. */
export interface SetFieldAction {
  readonly kind: 'set_field'; readonly field: FieldDef; readonly value: bigint; readonly mask: bigint;
}
/** load:V->F[a..b] (NXAST_REG_LOAD). */
export interface LoadAction { readonly kind: 'load'; readonly dst: SubField; readonly value: bigint }
/** move:F[a..b]->G[c..d] (NXAST_REG_MOVE); both sides have the same nBits. */
export interface MoveAction { readonly kind: 'move'; readonly src: SubField; readonly dst: SubField }
/** set_tunnel:V (32-bit form) or set_tunnel64:V. */
export interface SetTunnelAction { readonly kind: 'set_tunnel'; readonly tunId: bigint; readonly is64: boolean }
/**
 * resubmit(P,T) / resubmit:P / resubmit(,T). `inPort` OFPP_IN_PORT means "keep in_port";
 * `table` 255 means "the current table".
 */
export interface ResubmitAction { readonly kind: 'resubmit'; readonly inPort: number; readonly table: number }
/** goto_table:T (OpenFlow 1.1+ instruction; only forward, executed last). */
export interface GotoTableAction { readonly kind: 'goto_table'; readonly table: number }
/**
 * check_pkt_larger(LEN)->DST: writes 1 to the one-bit DST when the frame is longer than LEN
 * bytes (Ethernet header included, FCS not), else 0. The length is not in the flow key, so
 * translation forks: see xlate.ts.
 */
export interface CheckPktLargerAction { readonly kind: 'check_pkt_larger'; readonly pktLen: number; readonly dst: SubField }
export interface NoteAction { readonly kind: 'note'; readonly bytes: Uint8Array }

/** One spec inside learn(...). */
export type LearnSpec =
  /** Match the learned flow's field `dst` against `src`'s value in the packet (or an immediate). */
  | { readonly kind: 'match_field'; readonly dst: SubField; readonly src: SubField }
  | { readonly kind: 'match_imm'; readonly dst: SubField; readonly value: bigint }
  /** load:SRC->DST in the learned flow's actions: copy of the packet's bits, or an immediate. */
  | { readonly kind: 'load_field'; readonly dst: SubField; readonly src: SubField }
  | { readonly kind: 'load_imm'; readonly dst: SubField; readonly value: bigint }
  /** output:SRC in the learned flow's actions, the port number taken from the packet. */
  | { readonly kind: 'output'; readonly src: SubField };

export interface LearnAction {
  readonly kind: 'learn';
  readonly table: number;
  readonly priority: number;
  readonly idleTimeoutS: number;
  readonly hardTimeoutS: number;
  readonly finIdleTimeoutS: number;
  readonly finHardTimeoutS: number;
  readonly cookie: bigint;
  /** send_flow_rem, delete_learned, write_result... as OVS's NX_LEARN_F_* bits. */
  readonly flags: number;
  readonly specs: readonly LearnSpec[];
}
export const LEARN_F_SEND_FLOW_REM = 1;
export const LEARN_F_DELETE_LEARNED = 2;

/**
 * nat(...) inside ct(...): the datapath's range (dpif/conntrack.ts CtNatRange) and OVS's flags.
 * An absent range means "nat" alone (reuse the committed NAT).
 */
export interface CtNat extends CtNatRange {
  /** random, hash, persistent as OVS's NX_NAT_F_* bits beyond src/dst. */
  readonly flags: number;
}
export const NAT_F_PERSISTENT = 1;
export const NAT_F_PROTO_HASH = 2;
export const NAT_F_PROTO_RANDOM = 4;

export interface CtAction {
  readonly kind: 'ct';
  readonly commit: boolean;
  readonly force: boolean;
  /** Immediate zone (zone=N); `zoneSrc` instead when the zone is read from a field. */
  readonly zone: number;
  readonly zoneSrc: SubField | null;
  /** Recirculate to this table after conntrack; 255 = no recirculation. */
  readonly table: number;
  readonly nat: CtNat | null;
  /** exec(...) actions: set_field / load to ct_mark / ct_label. */
  readonly exec: readonly Action[];
}
export interface CtClearAction { readonly kind: 'ct_clear' }
/**
 * conjunction(id,k/n): the rule is clause k (1-based here as in the text) of conjunctive match
 * `id` of n clauses. Only conjunction and note actions may share a rule with it (as OVS); such a
 * rule is never executed, the classifier treats it as a soft match (classifier.ts).
 */
export interface ConjunctionAction {
  readonly kind: 'conjunction'; readonly id: number; readonly clause: number; readonly nClauses: number;
}

/**
 * controller(reason=R,max_len=N,id=I,userdata=XX.XX): a packet-in with more than a max_len
 * (the plain form is an OutputAction to OFPP_CONTROLLER). `reason` is an OpenFlow packet-in
 * reason (PIN_REASON_*), `controllerId` selects connections that set that id (0 by default).
 */
export interface ControllerAction {
  readonly kind: 'controller'; readonly maxLen: number; readonly reason: number;
  readonly controllerId: number; readonly userdata: Uint8Array;
}
/** OpenFlow packet-in reasons (1.0/1.3 numbers; 1.4 adds action_set, group, packet_out). */
export const PIN_REASON_NO_MATCH = 0;
export const PIN_REASON_ACTION = 1;
export const PIN_REASON_INVALID_TTL = 2;
export const PIN_REASON_NAMES: readonly string[] = ['no_match', 'action', 'invalid_ttl', 'action_set', 'group', 'packet_out'];

export type Action =
  | OutputAction | ControllerAction | OutputRegAction | SetVlanVidAction | SetVlanPcpAction | PushVlanAction
  | StripVlanAction | SetDlAction | SetNwAction | SetNwTosAction | SetTpAction | DecTtlAction
  | SetFieldAction | LoadAction | MoveAction | SetTunnelAction | ResubmitAction
  | GotoTableAction | NoteAction | LearnAction | CtAction | CtClearAction | CheckPktLargerAction
  | ConjunctionAction;

export type ActionKind = Action['kind'];
