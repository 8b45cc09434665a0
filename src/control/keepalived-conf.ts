/**
 * keepalived.conf for one HA router on one node, configured as Neutron configures it
 * (l3-ha.md; neutron/agent/linux/keepalived.py): one vrrp_instance VR_<vrid> on the router's
 * ha- device, `state BACKUP` and `nopreempt` everywhere with the same priority 50, so the
 * first node to win the election keeps mastership until it fails and a returning node takes
 * nothing back; the primary VIP 169.254.0.<vrid>/24 on the ha- device (the master holds it).
 * The router's own addresses (qg-, sg-) are not keepalived's business here: they live in
 * flowd's flows, which the daemon installs on becoming master (dvr/ha.ts).
 *
 * Differences from Neutron, and why:
 * - `notify_fifo`: keepalived writes each state change of the instance ("INSTANCE "VR_n"
 *   MASTER 50") into a FIFO flowd reads (control/keepalived.ts), instead of a separate
 *   neutron-keepalived-state-change process watching the VIP.
 * - advert intervals below 1 s need VRRPv3 (RFC 5798: centiseconds); keepalived would round a
 *   VRRPv2 interval up to 1 s, so such routers get `version 3`.
 * - the peers are listed as `unicast_peer` with the ha- port's own address as source: VRRP
 *   then travels as unicast over the HA network (no multicast flooding through br-tun) and
 *   each node reports the adverts of each named peer.
 * Called by: control/keepalived.ts. Pure.
 */
import { HaRouter } from '../dvr/ha';

export const KEEPALIVED_PRIORITY = 50;
/** Neutron's garp_master_delay (s): flowd sends its own gratuitous ARPs on becoming master. */
export const GARP_MASTER_DELAY_S = 60;

export interface KeepalivedPaths {
  /** FIFO keepalived writes state changes to. */
  notifyFifo: string;
}

function advertText(ms: number): string {
  return ms % 1000 === 0 ? String(ms / 1000) : (ms / 1000).toFixed(2);
}

/** The config text of `hr`'s instance on node `node` (must be one of its l3 agents). */
export function keepalivedConf(hr: HaRouter, node: string, advertIntMs: number, paths: KeepalivedPaths): string {
  const me = hr.ports.find((p) => p.node === node);
  if (me === undefined) throw new Error(`node ${node} is not an l3 agent of router ${hr.router.name}`);
  const peers = hr.ports.filter((p) => p !== me);
  const lines = [
    `# flowd: router ${hr.router.name} on node ${node} (generated; do not edit)`,
    'global_defs {',
    `    router_id flowd-${node}`,
    `    notify_fifo ${paths.notifyFifo}`,
    '}',
    `vrrp_instance VR_${hr.vrid} {`,
    '    state BACKUP',
    `    interface ${hr.device}`,
    `    virtual_router_id ${hr.vrid}`,
    `    priority ${KEEPALIVED_PRIORITY}`,
    `    garp_master_delay ${GARP_MASTER_DELAY_S}`,
    '    nopreempt',
    `    advert_int ${advertText(advertIntMs)}`,
  ];
  if (advertIntMs % 1000 !== 0) lines.push('    version 3');
  lines.push(
    `    unicast_src_ip ${me.ip}`,
    '    unicast_peer {',
    ...peers.map((p) => `        ${p.ip}`),
    '    }',
    '    track_interface {',
    `        ${hr.device}`,
    '    }',
    '    virtual_ipaddress {',
    `        ${hr.vip} dev ${hr.device}`,
    '    }',
    '}',
    '');
  return lines.join('\n');
}

export type VrrpState = 'master' | 'backup' | 'fault' | 'stopped';

/**
 * One line keepalived writes to its notify FIFO ("INSTANCE "VR_7" MASTER 50"), or null for
 * lines about anything else (groups, the process itself).
 */
export function parseNotifyLine(line: string): { vrid: number; state: VrrpState } | null {
  const m = /^INSTANCE "VR_(\d+)" (MASTER|BACKUP|FAULT|STOP)\b/.exec(line.trim());
  if (m === null) return null;
  const state: VrrpState = m[2] === 'MASTER' ? 'master' : m[2] === 'BACKUP' ? 'backup' : m[2] === 'FAULT' ? 'fault' : 'stopped';
  return { vrid: Number(m[1]), state };
}
