/**
 * The firewall's flows in flowd's whole datapath with real conntrack (issue 13): C1's
 * generated br-int of examples/topologies/security-groups.yaml, every port a memory port.
 * OPEN1 (port security off) opens TCP to WEB1's port 80 and pings it; return traffic passes
 * with no rule for it; a spoofed source is dropped. Then the tcp/80 rule is deleted from the
 * topology and the diff applied as the daemon applies it: the established stream stops at its
 * next packet (ct_mark 0x1) while the ping, accepted by another rule, goes on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PacketBatch } from '../../src/netdev/batch';
import { Bridge } from '../../src/ofproto/bridge';
import { parseTopology } from '../../src/dvr/topology';
import { nodeConfig } from '../../src/dvr/node-config';
import { diffNodeConfigs } from '../../src/dvr/diff';
import { firewallDropsByPort } from '../../src/dvr/firewall-drops';
import { bridgeWorld, BridgeWorld as World, toHex } from '../dpif/helpers';

const FILE = path.join(__dirname, '../../../examples/topologies/security-groups.yaml');
const SG = fs.readFileSync(FILE, 'utf8');
const WEB1 = [0xfa, 0x16, 0x3e, 0x00, 0x01, 0x10];
const OPEN1 = [0xfa, 0x16, 0x3e, 0x00, 0x01, 0x30];
const IP_WEB1 = 0x0a00010a;
const IP_OPEN1 = 0x0a00011e;

/** C1's br-int; patch ports stand as plain ports (what leaves on them is what reaches the tunnels). */
function world(): World {
  const cfg = nodeConfig(parseTopology(FILE, SG), 'C1');
  const bc = cfg.bridges[0];
  const br = new Bridge(bc.name, 0, { defaultFlow: false });
  for (const p of bc.ports) br.addPort({ name: p.name, ofport: p.ofport, kind: 'afpacket', tag: p.tag === 0 ? undefined : p.tag });
  br.addFlows(bc.flows.map((f) => f.text).join('\n'), 0, bc.flows[0].file);
  return bridgeWorld(br);
}

/** Sends one frame in on `port`; returns the ports it left on. */
function send(w: World, port: string, frame: Uint8Array): string[] {
  const b = new PacketBatch(32);
  const i = b.append(frame);
  b.inPort[i] = w.dpNo.get(port)!;
  w.dp.processBatch(b, b.count);
  const out: string[] = [];
  for (const [name, m] of w.nd) {
    for (const f of m.sent) {
      // Toward patch-tun (a trunk here) NORMAL adds the network's VLAN tag (1 for network A).
      const h = toHex(f).replace(/^(.{24})8100(0001)/, '$1');
      assert.equal(h, toHex(frame), `an L2 firewall changes no byte (${name})`);
      out.push(name);
    }
    m.sent.length = 0;
  }
  return out.sort();
}

/** An Ethernet + IPv4 frame (checksums are not checked on this path). */
function frame(dst: number[], src: number[], ipSrc: number, ipDst: number, proto: number, l4: number[]): Uint8Array {
  const f = new Uint8Array(34 + l4.length);
  f.set([...dst, ...src, 8, 0, 0x45, 0, 0, 20 + l4.length, 0, 1, 0x40, 0, 64, proto]);
  const v = new DataView(f.buffer);
  v.setUint32(26, ipSrc); v.setUint32(30, ipDst);
  f.set(l4, 34);
  return f;
}
const tcp = (dst: number[], src: number[], ipSrc: number, ipDst: number, sp: number, dpt: number, flags: number): Uint8Array =>
  frame(dst, src, ipSrc, ipDst, 6, [sp >> 8, sp & 255, dpt >> 8, dpt & 255, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, flags, 0xfa, 0xf0, 0, 0, 0, 0]);
const echo = (dst: number[], src: number[], ipSrc: number, ipDst: number, type: number): Uint8Array =>
  frame(dst, src, ipSrc, ipDst, 1, [type, 0, 0, 0, 0, 1, 0, 1]);

test('security groups in the datapath: allowed TCP and return traffic pass, spoofing drops, a deleted rule kills its connections only', () => {
  const w = world();
  // OPEN1 -> WEB1 tcp/80: the web group's rule accepts it on WEB1's ingress.
  assert.deepEqual(send(w, 'open1-host', tcp(WEB1, OPEN1, IP_OPEN1, IP_WEB1, 40000, 80, 0x02)), ['web1-host']);
  // WEB1's SYN-ACK: no egress rule needed for a reply (web allows all egress anyway; the reply
  // is accepted by table 72's +est+rpl flow), and OPEN1 (unfiltered) gets it by NORMAL.
  const synack = send(w, 'web1-host', tcp(OPEN1, WEB1, IP_WEB1, IP_OPEN1, 80, 40000, 0x12));
  assert.ok(synack.includes('open1-host'), synack.join(' '));
  assert.deepEqual(send(w, 'open1-host', tcp(WEB1, OPEN1, IP_OPEN1, IP_WEB1, 40000, 80, 0x10)), ['web1-host']);
  // tcp/22 has no rule: dropped on WEB1's ingress.
  assert.deepEqual(send(w, 'open1-host', tcp(WEB1, OPEN1, IP_OPEN1, IP_WEB1, 40001, 22, 0x02)), []);
  // ICMP from 10.0.0.0/16: the second rule.
  assert.deepEqual(send(w, 'open1-host', echo(WEB1, OPEN1, IP_OPEN1, IP_WEB1, 8)), ['web1-host']);
  // WEB1 sending from another source IP: dropped at its own port, nothing reaches patch-tun.
  assert.deepEqual(send(w, 'web1-host', tcp(OPEN1, WEB1, 0x0a000163, IP_OPEN1, 80, 40000, 0x12)), []);

  // Delete the tcp/80 rule, apply the diff as the daemon does.
  const rule = '      - { direction: ingress, ethertype: IPv4, protocol: tcp, port_range_min: 80, port_range_max: 80 }\n';
  assert.ok(SG.includes(rule));
  const before = nodeConfig(parseTopology(FILE, SG), 'C1');
  const after = nodeConfig(parseTopology(FILE, SG.replace(rule, '')), 'C1', before);
  const d = diffNodeConfigs(before, after).find((x) => x.bridge === 'br-int')!;
  assert.equal(d.addFlows.length + d.modifyFlows.length, 0);
  for (const f of d.deleteFlows) w.br.delFlows(f.text, true);
  // The established stream stops at its next packet (marked), and stays stopped (ct_mark=0x1).
  assert.deepEqual(send(w, 'open1-host', tcp(WEB1, OPEN1, IP_OPEN1, IP_WEB1, 40000, 80, 0x10)), []);
  assert.match(w.dp.conntrack.list(1, 1000).find((l) => l.includes('dport=80'))!, /,mark=1,/);
  assert.deepEqual(send(w, 'open1-host', tcp(WEB1, OPEN1, IP_OPEN1, IP_WEB1, 40000, 80, 0x10)), []);
  // The ping's connection, accepted by the ICMP rule, goes on.
  assert.deepEqual(send(w, 'open1-host', echo(WEB1, OPEN1, IP_OPEN1, IP_WEB1, 8)), ['web1-host']);
  // WEB1's drops by reason (what flowctl dump-ports and stats show): one spoofed frame, one
  // SYN no rule accepts, two packets of the killed stream.
  assert.deepEqual(firewallDropsByPort(w.br.allRules()).get(10), { spoofed: 1, no_rule: 1, invalid: 0, killed: 2 });
});
