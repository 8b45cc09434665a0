/**
 * The learn action (OVS's NXAST_LEARN, lib/learn.c): builds a flow from the packet being
 * translated and hands it to the bridge to install.
 *
 * Who calls: ofproto/xlate.ts. Neutron's br-tun table 10 is the main user:
 *   learn(table=20,hard_timeout=300,priority=1,cookie=..,NXM_OF_VLAN_TCI[0..11],
 *         NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],
 *         load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[])
 *
 * Megaflow: every packet bit a spec copies is un-wildcarded (`wc`), since the learned flow
 * depends on it; immediates read nothing.
 */
import type { Action, LearnAction } from './actions';
import { LEARN_F_SEND_FLOW_REM } from './actions';
import { FF_SEND_FLOW_REM } from './flow-syntax';
import { readSubfield, writeSubfield } from './fields';
import type { LearnedFlow } from './ofproto';
import { KEY_WORDS } from '../packet/flowkey-layout';

function unwildcard(f: { readonly field: Parameters<typeof writeSubfield>[0]; readonly ofs: number; readonly nBits: number },
                    wc: Uint32Array): void {
  writeSubfield(f.field, f.ofs, f.nBits, wc, 0, (1n << BigInt(f.nBits)) - 1n);
}

/** Builds the flow `a` learns from the key `flow`; ORs the bits it read into `wc`. */
export function buildLearnedFlow(a: LearnAction, flow: Uint32Array, wc: Uint32Array): LearnedFlow {
  const value = new Uint32Array(KEY_WORDS);
  const mask = new Uint32Array(KEY_WORDS);
  const actions: Action[] = [];
  const ones = (n: number): bigint => (1n << BigInt(n)) - 1n;
  for (const s of a.specs) {
    switch (s.kind) {
      case 'match_field': {
        const v = readSubfield(s.src.field, s.src.ofs, s.src.nBits, flow, 0);
        unwildcard(s.src, wc);
        writeSubfield(s.dst.field, s.dst.ofs, s.dst.nBits, value, 0, v);
        writeSubfield(s.dst.field, s.dst.ofs, s.dst.nBits, mask, 0, ones(s.dst.nBits));
        break;
      }
      case 'match_imm':
        writeSubfield(s.dst.field, s.dst.ofs, s.dst.nBits, value, 0, s.value & ones(s.dst.nBits));
        writeSubfield(s.dst.field, s.dst.ofs, s.dst.nBits, mask, 0, ones(s.dst.nBits));
        break;
      case 'load_field': {
        const v = readSubfield(s.src.field, s.src.ofs, s.src.nBits, flow, 0);
        unwildcard(s.src, wc);
        actions.push({ kind: 'load', dst: s.dst, value: v });
        break;
      }
      case 'load_imm':
        actions.push({ kind: 'load', dst: s.dst, value: s.value & ones(s.dst.nBits) });
        break;
      case 'output': {
        const port = Number(readSubfield(s.src.field, s.src.ofs, s.src.nBits, flow, 0));
        unwildcard(s.src, wc);
        actions.push({ kind: 'output', port, maxLen: 0 });
        break;
      }
    }
  }
  // Normalise: value bits outside the mask are never set (types.ts invariant).
  for (let w = 0; w < KEY_WORDS; w++) value[w] = (value[w] & mask[w]) >>> 0;
  return {
    tableId: a.table, priority: a.priority, match: { value, mask }, actions,
    idleTimeoutS: a.idleTimeoutS, hardTimeoutS: a.hardTimeoutS, cookie: a.cookie,
    flags: (a.flags & LEARN_F_SEND_FLOW_REM) !== 0 ? FF_SEND_FLOW_REM : 0,
  };
}
