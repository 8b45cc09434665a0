/**
 * Every generated flow of every node of the example topologies parses: with the project's
 * parser (src/ofproto/flow-syntax.ts), and with Open vSwitch's own
 * `ovs-ofctl parse-flows` when it is installed. The generated NodeConfig also survives the
 * node config loader (control/config.ts), so the daemon can read it back from a file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseConfig } from '../../src/control/config';
import { loadTopology } from '../../src/dvr/topology';
import { DvrNodeConfig, nodeConfig } from '../../src/dvr/node-config';
import { parseFlow } from '../../src/ofproto/flow-syntax';

const DIR = path.join(__dirname, '../../../examples/topologies');
const FILES = ['reference.yaml', 'reference-gre.yaml', 'two-tenants.yaml'];

function allConfigs(): DvrNodeConfig[] {
  const out: DvrNodeConfig[] = [];
  for (const f of FILES) {
    const t = loadTopology(path.join(DIR, f));
    for (const n of t.nodes) out.push(nodeConfig(t, n.name));
  }
  return out;
}

function hasOfctl(): boolean {
  try { execFileSync('sh', ['-c', 'command -v ovs-ofctl'], { stdio: 'pipe' }); return true; } catch { return false; }
}

test('every generated flow parses with ovs-ofctl parse-flows', { skip: hasOfctl() ? false : 'ovs-ofctl not installed' }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-dvr-parse-'));
  try {
    for (const c of allConfigs()) {
      for (const b of c.bridges) {
        const f = path.join(dir, `${c.node}-${b.name}.flows`);
        fs.writeFileSync(f, `${b.flows.map((x) => x.text).join('\n')}\n`);
        const out = execFileSync('ovs-ofctl', ['parse-flows', f], { stdio: 'pipe' }).toString();
        const parsed = out.split('\n').filter((l) => l.includes('actions='));
        assert.equal(parsed.length, b.flows.length, `${c.node} ${b.name}`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('every generated flow parses with the project parser (src/ofproto/flow-syntax.ts)', () => {
  let n = 0;
  for (const c of allConfigs()) {
    for (const b of c.bridges) {
      for (const f of b.flows) {
        assert.doesNotThrow(() => parseFlow(f.text), `${f.file}:${f.line}: ${f.text}`);
        n++;
      }
    }
  }
  assert.ok(n > 100, `only ${n} flows generated`);
});

function yamlOf(c: DvrNodeConfig): string {
  const lines = [`node: ${c.node}`, 'bridges:'];
  for (const b of c.bridges) {
    lines.push(`  - name: ${b.name}`, '    ports:');
    for (const p of b.ports) {
      const kv = [`name: ${p.name}`, `ofport: ${p.ofport}`, `type: ${p.kind}`];
      if (p.tag) kv.push(`tag: ${p.tag}`);
      if (p.peer) kv.push(`peer: ${p.peer}`);
      if (p.remoteIp) kv.push(`remote_ip: ${p.remoteIp}`, `local_ip: ${p.localIp}`, `key: ${p.key}`);
      lines.push(`      - { ${kv.join(', ')} }`);
    }
    lines.push('    flows:');
    for (const f of b.flows) lines.push(`      - ${JSON.stringify(f.text)}`);
  }
  return `${lines.join('\n')}\n`;
}

test('generated node configs pass the node config loader (patch peers, names, port numbers)', () => {
  for (const c of allConfigs()) {
    const back = parseConfig(`${c.node}.yaml`, yamlOf(c));
    assert.deepEqual(back.bridges.map((b) => [b.name, b.ports.map((p) => [p.name, p.ofport, p.kind, p.tag, p.peer, p.remoteIp, p.localIp, p.key, p.dstPort])]),
      c.bridges.map((b) => [b.name, b.ports.map((p) => [p.name, p.ofport, p.kind, p.tag, p.peer, p.remoteIp, p.localIp, p.key, p.dstPort])]));
    assert.deepEqual(back.bridges.map((b) => b.flows.map((f) => f.text)), c.bridges.map((b) => b.flows.map((f) => f.text)));
  }
});
