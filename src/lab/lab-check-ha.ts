/**
 * The lab's checks for HA routers (issue 14), on the external wires of their l3 agents:
 * exactly one router is master; exactly one node answers ARP for the router's gateway (qg-)
 * address, and it is the master; SNAT from a VM without floating IP walks out through the
 * master (the translated request leaves the master's external link, none leaves a backup's);
 * a floating IP of a port on a dvr_no_external node (served centrally) answers the upstream's
 * pings through the master only.
 * Called by: lab/lab.ts (check, status), lab/lab-failover.ts (mastersOf), test/integration/ha-lab.test.ts.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Topology } from '../dvr/topology';
import { capturesReady, CheckResult, startCapture, stopCaptures } from './lab-check';
import { arpOf } from './lab-check-ns';
import { fipBinding } from '../dvr/ns-plan';
import { request } from '../control/client';
import { alive, EXT_NS, LabState, pidOf, UP_NS, vmNs } from './lab-state';
import { framesOf, ping } from './ping';

/** The external segment's end of a node's physical interface (lab.ts plumb). */
function extPeer(node: string): string {
  return `ex-${node.toLowerCase()}`.slice(0, 15);
}

function ipv4At(b: Uint8Array, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

/** Nodes whose flowd reports itself master of `router`. */
export async function mastersOf(st: LabState, router: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of st.daemons) {
    if (!alive(pidOf(d.pidFile))) continue;
    try {
      const r = await request(d.socket, 'ha', { action: 'status', format: 'json' }, 2000);
      if (Array.isArray(r) && r.some((x) => x !== null && typeof x === 'object' && !Array.isArray(x) && x.router === router && x.state === 'master')) out.push(d.node);
    } catch { /* not answering: not a master we can see */ }
  }
  return out;
}

export async function runHaChecks(t: Topology, st: LabState): Promise<CheckResult[]> {
  const res: CheckResult[] = [];
  for (const r of t.routers) {
    if (!r.ha.ha || r.gateway === null) continue;
    const masters = await mastersOf(st, r.name);
    res.push({ name: `HA router ${r.name}: exactly one master among ${r.ha.l3Agents.join(', ')}`, pass: masters.length === 1,
      detail: `master ${masters.join(', ') || 'none'}` });
    const gw = r.gateway;
    const upstream = t.subnets.find((s) => s.network === gw.network)!.gatewayIp;

    // ARP for the qg- address from the upstream, captured on every l3 agent's external link.
    // The upstream forgets its neighbours only once every capture records, so the ping's ARP
    // request (and nothing learned in between) is what the captures see.
    const caps = r.ha.l3Agents.map((n) => ({ node: n, cap: startCapture(EXT_NS, extPeer(n), path.join(st.stateDir, `ha-arp-${n}.pcap`)) }));
    await capturesReady(caps.map((c) => c.cap));
    spawnSync('ip', ['netns', 'exec', UP_NS, 'ip', 'neigh', 'flush', 'all']);
    const pa = ping(UP_NS, gw.ip, 1);
    const answered: string[] = [];
    let nRequests = 0;
    await stopCaptures(caps.map((c) => c.cap));
    for (const c of caps) {
      const frames = fs.existsSync(c.cap.file) ? await framesOf(c.cap.file) : [];
      const arps = frames.map(arpOf).filter((a) => a !== null);
      nRequests += arps.filter((a) => a.op === 1 && a.tpa === gw.ip).length;
      if (arps.some((a) => a.op === 2 && a.spa === gw.ip && a.sha === gw.mac)) answered.push(c.node);
    }
    res.push({ name: `HA router ${r.name}: exactly one node answers ARP for its gateway ${gw.ip}, the master`,
      pass: answered.length === 1 && masters.length === 1 && answered[0] === masters[0],
      detail: `answered by ${answered.join(', ') || 'nobody'} (${nRequests} requests seen on the l3 agents' links, ping ${pa.received}/${pa.sent})` });

    // Central floating IPs: the echo replies leave only the master's external link.
    for (const f of t.floatingIps) {
      const b = fipBinding(t, f.ip, f.port);
      if (b === null || b.router !== r || t.nodes.find((n) => n.name === b.port.node)?.agentMode !== 'dvr_no_external') continue;
      const caps3 = r.ha.l3Agents.map((n) => ({ node: n, cap: startCapture(EXT_NS, extPeer(n), path.join(st.stateDir, `ha-fip-${n}.pcap`)) }));
      await capturesReady(caps3.map((c) => c.cap));
      const pf = ping(UP_NS, f.ip, 3);
      const via: string[] = [];
      await stopCaptures(caps3.map((c) => c.cap));
      for (const c of caps3) {
        const frames = fs.existsSync(c.cap.file) ? await framesOf(c.cap.file) : [];
        const n = frames.filter((x) => x.length >= 35 && x[12] === 0x08 && x[13] === 0x00 && x[23] === 1 && x[34] === 0 &&
          ipv4At(x, 26) === f.ip && ipv4At(x, 30) === upstream).length;
        if (n > 0) via.push(`${c.node} (${n})`);
      }
      res.push({ name: `HA router ${r.name}: central floating IP ${f.ip} (${b.port.name} on dvr_no_external ${b.port.node}) answers through the master`,
        pass: pf.received === pf.sent && via.length === 1 && masters.length === 1 && via[0].startsWith(`${masters[0]} `),
        detail: `${pf.received}/${pf.sent} replies; echo replies on ${via.join(', ') || 'no external link'}` });
    }

    // SNAT through the master: ICMP from the qg- address leaves only the master's external link.
    const vm = t.ports.find((p) => p.node !== '' && !t.floatingIps.some((f) => f.port === p.name) &&
      r.interfaces.some((i) => p.fixedIps.some((f) => f.subnet === i.subnet)));
    if (vm === undefined) continue;
    const caps2 = r.ha.l3Agents.map((n) => ({ node: n, cap: startCapture(EXT_NS, extPeer(n), path.join(st.stateDir, `ha-snat-${n}.pcap`)) }));
    await capturesReady(caps2.map((c) => c.cap));
    const p = ping(vmNs(vm), upstream, 3);
    const out: string[] = [];
    await stopCaptures(caps2.map((c) => c.cap));
    for (const c of caps2) {
      const frames = fs.existsSync(c.cap.file) ? await framesOf(c.cap.file) : [];
      const n = frames.filter((f) => f.length >= 34 && f[12] === 0x08 && f[13] === 0x00 && f[23] === 1 &&
        ipv4At(f, 26) === gw.ip && ipv4At(f, 30) === upstream).length;
      if (n > 0) out.push(`${c.node} (${n})`);
    }
    res.push({ name: `HA router ${r.name}: SNAT ${vm.name} -> ${upstream} leaves through the master as ${gw.ip}`,
      pass: p.received === p.sent && out.length === 1 && masters.length === 1 && out[0].startsWith(`${masters[0]} `),
      detail: `${p.received}/${p.sent} replies; translated requests on ${out.join(', ') || 'no external link'}` });
  }
  return res;
}
