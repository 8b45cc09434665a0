/**
 * Keeps the node's kernel from processing the tunnel packets flowd takes from its underlay:
 * a tc ingress filter on the underlay interface (clsact qdisc, cls_bpf in direct-action mode
 * with a classic BPF program) drops IPv4 packets to local_ip that are GRE, or UDP to the
 * VXLAN port and not a fragment. AF_PACKET taps (flowd's socket, tcpdump) run before tc
 * ingress in __netif_receive_skb_core, so flowd still gets every frame; the kernel no longer
 * runs ip_rcv, the route lookup, the raw/UDP socket delivery (and its clone per GRE packet)
 * and the drop at the sinks' full queues for each tunnel packet, which on veth underlays runs
 * in softirq on the sender's cpu (native-notes/tunnel-gso.md, measured there). The sinks
 * (underlay.ts) stay: they are what keeps ICMP unreachable away when the filter is absent.
 *
 * Who calls: netdev/underlay.ts when an Underlay opens (install) and closes (remove).
 * FLOWD_UNDERLAY_TC_DROP=0 turns it off (A/B runs). Failure to install (no tc binary, no
 * clsact/cls_bpf in the kernel, no CAP_NET_ADMIN) is not an error: the reason is returned
 * and the underlay works as without it.
 * Ownership: the filter at preference TC_PREF on the interface's ingress hook is this
 * module's; the clsact qdisc is added when missing and left in place (others may use it).
 */
import { execFileSync } from 'node:child_process';

/** The filter's preference on the ingress hook (removed by exactly this number). */
export const TC_PREF = 49001;

/** tc's cls_bpf verdicts in direct-action mode (linux/pkt_cls.h). */
const TC_ACT_SHOT = 2;
const TC_ACT_UNSPEC = 0xffffffff;

/**
 * The classic BPF program, as tc's `bytecode` text ("count,code jt jf k,..."). cls_bpf runs
 * it at ingress with the MAC header pushed back (cls_bpf_classify), so offsets count from the
 * Ethernet header (untagged: the filter is for `protocol ip`, an 802.1Q tag is out of band).
 */
export function dropProgram(localIp: number, vxlanPort: number): string {
  const ins: [number, number, number, number][] = [
    [0x20, 0, 0, 30],                  // 0: ld [30]            destination address
    [0x15, 0, 9, localIp >>> 0],       // 1: jeq local_ip ? 2 : pass
    [0x30, 0, 0, 23],                  // 2: ldb [23]           protocol
    [0x15, 6, 0, 47],                  // 3: jeq 47 ? drop : 4
    [0x15, 0, 6, 17],                  // 4: jeq 17 ? 5 : pass
    [0x28, 0, 0, 20],                  // 5: ldh [20]           flags + fragment offset
    [0x45, 4, 0, 0x3fff],              // 6: jset MF|offset ? pass : 7
    [0xb1, 0, 0, 14],                  // 7: ldxb 4*([14]&0xf)  IPv4 header length
    [0x48, 0, 0, 16],                  // 8: ldh [x+16]         UDP destination port
    [0x15, 0, 1, vxlanPort],           // 9: jeq port ? drop : pass
    [0x06, 0, 0, TC_ACT_SHOT],         // 10: drop
    [0x06, 0, 0, TC_ACT_UNSPEC],       // 11: pass (the kernel's usual path)
  ];
  return `${ins.length},${ins.map((i) => i.join(' ')).join(',')}`;
}

function tc(...args: string[]): void {
  execFileSync('tc', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 5000 });
}

function reason(e: unknown): string {
  const err = e as { stderr?: Buffer | string; message?: string };
  const text = err.stderr !== undefined ? String(err.stderr).trim() : '';
  return text !== '' ? text.split('\n')[0] : (err.message ?? String(e));
}

/** Installs the filter on `dev`; '' on success, else why not (nothing is left half-made). */
export function installTunnelDrop(dev: string, localIp: number, vxlanPort: number): string {
  if (process.env.FLOWD_UNDERLAY_TC_DROP === '0') return 'off (FLOWD_UNDERLAY_TC_DROP=0)';
  try {
    try {
      tc('qdisc', 'add', 'dev', dev, 'clsact');
    } catch (e) {
      if (!/exists|Exclusivity/i.test(reason(e))) throw e;   // already there
    }
    tc('filter', 'replace', 'dev', dev, 'ingress', 'protocol', 'ip', 'pref', String(TC_PREF), 'handle', '1',
      'bpf', 'da', 'bytecode', dropProgram(localIp, vxlanPort));
    return '';
  } catch (e) {
    return `tc: ${reason(e)}`;
  }
}

/** Removes what installTunnelDrop added to `dev` (the filter; the qdisc stays). */
export function removeTunnelDrop(dev: string): void {
  try {
    tc('filter', 'del', 'dev', dev, 'ingress', 'protocol', 'ip', 'pref', String(TC_PREF));
  } catch {
    // gone with the interface, or never installed
  }
}
