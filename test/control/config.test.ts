import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/control/config';
import { ConfigError } from '../../src/errors';

const GOOD = `node: c1
bridges:
  - name: br-int
    ports:
      - { name: p1, ofport: 1 }
      - { name: p2, ofport: 2, tag: 10 }
      - { name: patch-tun, ofport: 3, type: patch, peer: patch-int }
    flows:
      - "priority=1,in_port=1 actions=output:2"
  - name: br-tun
    ports:
      - { name: patch-int, ofport: 1, type: patch, peer: patch-tun }
      - { name: vxlan-c0a8640c, ofport: 2, type: vxlan, remote_ip: 192.168.100.12, key: flow }
`;

test('a good config gives bridges, ports with defaults, and flows with their lines', () => {
  const c = parseConfig('n.yaml', GOOD);
  assert.equal(c.node, 'c1');
  assert.deepEqual(c.bridges.map((b) => b.name), ['br-int', 'br-tun']);
  const p1 = c.bridges[0].ports[0];
  assert.equal(p1.kind, 'afpacket');
  assert.equal(p1.tag, 0);
  assert.equal(c.bridges[0].ports[1].tag, 10);
  assert.deepEqual(c.bridges[0].flows, [{ text: 'priority=1,in_port=1 actions=output:2', file: 'n.yaml', line: 9 }]);
  assert.equal(c.bridges[0].forwardBpdu, false, "OVS's default");
  assert.equal(parseConfig('n.yaml', GOOD.replace('  - name: br-tun\n', '  - name: br-tun\n    forward_bpdu: true\n')).bridges[1].forwardBpdu, true);
  const vx = c.bridges[1].ports[1];
  assert.equal(vx.dstPort, 4789);
  assert.equal(vx.key, 'flow');
});

function errOf(text: string): ConfigError {
  try {
    parseConfig('bad.yaml', text);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail('expected a ConfigError');
}

test('bad configs name the file, line and field', () => {
  const cases: [string, string][] = [
    [GOOD.replace('ofport: 2, tag: 10', 'ofport: 2, tag: 5000'),
      'bad.yaml:6: bridges[0].ports[1].tag: expected an integer in 0..4095, got 5000'],
    [GOOD.replace('ofport: 2, tag', 'ofport: 1, tag'),
      'bad.yaml:6: bridges[0].ports[1].ofport: ofport 1 is used twice on bridge br-int'],
    [GOOD.replace('type: vxlan', 'type: vxlam'),
      'bad.yaml:13: bridges[1].ports[1].type: unknown port type "vxlam" (expected one of afpacket, tap, internal, vxlan, gre, patch, pcap)'],
    [GOOD.replace('remote_ip: 192.168.100.12', 'remote_ip: 192.168.100.300'),
      'bad.yaml:13: bridges[1].ports[1].remote_ip: expected an IPv4 address, got "192.168.100.300"'],
    [GOOD.replace('peer: patch-int', 'peer: patch-x'),
      'bad.yaml:7: br-int.patch-tun.peer: peer "patch-x" must be a patch port whose peer is "patch-tun"'],
    [GOOD.replace('    flows:', '    flowz:'),
      'bad.yaml:8: bridges[0].flowz: unknown field (expected one of name, ports, flows, forward_bpdu)'],
    [GOOD.replace('  - name: br-tun\n', '  - name: br-tun\n    forward_bpdu: maybe\n'),
      'bad.yaml:11: bridges[1].forward_bpdu: expected true or false'],
    [GOOD.replace('{ name: p1, ofport: 1 }', '{ name: p1 }'),
      'bad.yaml:5: bridges[0].ports[0].ofport: is required'],
    ['bridges: [ {name: x', 'bad.yaml:1: yaml:'],
  ];
  for (const [text, want] of cases) {
    const e = errOf(text);
    assert.equal(e.code, 'E_CONFIG');
    assert.ok(e.message.startsWith(want), `got: ${e.message}\nwant: ${want}`);
  }
});
