/**
 * flowctl dump-ports and stats show a filtered VM port's firewall drops by reason (issue 13):
 * C1 of examples/topologies/security-groups.yaml in a Switch with memory ports; WEB1 sends
 * from a spoofed source, OPEN1 sends WEB1 a SYN no rule accepts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Switch } from '../../src/control/switch';
import { cmdDumpPorts, cmdStats } from '../../src/control/commands';
import { loadTopology } from '../../src/dvr/topology';
import { nodeConfig } from '../../src/dvr/node-config';
import { PacketBatch } from '../../src/netdev/batch';
import { MemNetdev } from '../dpif/helpers';

const FILE = path.join(__dirname, '../../../examples/topologies/security-groups.yaml');

function tcp(dst: string, src: string, ipSrc: number, ipDst: number, dport: number): Uint8Array {
  const mac = (m: string): number[] => m.split(':').map((x) => parseInt(x, 16));
  const f = new Uint8Array(54);
  f.set([...mac(dst), ...mac(src), 8, 0, 0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6]);
  const v = new DataView(f.buffer);
  v.setUint32(26, ipSrc); v.setUint32(30, ipDst);
  v.setUint16(34, 40000); v.setUint16(36, dport);
  f[46] = 0x50; f[47] = 0x02;
  return f;
}

test('dump-ports and stats: WEB1 firewall drops spoofed=1, no_rule=1', () => {
  const cfg = nodeConfig(loadTopology(FILE), 'C1');
  const sw = new Switch(cfg, { open: (_b, p) => (p.kind === 'afpacket' ? { netdev: new MemNetdev(p.name), tunnel: null } : null) },
    { nowMs: () => 1000 });
  const send = (port: string, f: Uint8Array): void => {
    const b = new PacketBatch(4);
    const i = b.append(f);
    b.inPort[i] = sw.port(port)!.dpPort;
    sw.datapath.processBatch(b, b.count);
  };
  send('web1-host', tcp('fa:16:3e:0a:00:01', 'fa:16:3e:00:01:10', 0x0a000163, 0x0a000214, 80));   // from 10.0.1.99
  send('open1-host', tcp('fa:16:3e:00:01:10', 'fa:16:3e:00:01:30', 0x0a00011e, 0x0a00010a, 22)); // no rule for tcp/22
  const text = String(cmdDumpPorts(sw, { bridge: 'br-int' }));
  const at = text.indexOf('(web1-host)');
  assert.ok(at >= 0, text);
  assert.match(text.slice(at), /^\(web1-host\): rx pkts=1,[^\n]*\n[^\n]*\n {11}firewall drops: spoofed=1, no_rule=1, invalid=0, killed=0\n/);
  const rows = cmdDumpPorts(sw, { bridge: 'br-int', format: 'json' }) as { port: string; firewall_drops?: Record<string, number> }[];
  assert.deepEqual(rows.find((r) => r.port === 'web1-host')!.firewall_drops, { spoofed: 1, no_rule: 1, invalid: 0, killed: 0 });
  assert.equal(rows.find((r) => r.port === 'open1-host')!.firewall_drops, undefined, 'port security off: no firewall');
  assert.match(String(cmdStats(sw, {})), /firewall br-int port 10\(web1-host\): spoofed=1, no_rule=1, invalid=0, killed=0/);
});
