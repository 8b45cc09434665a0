/**
 * A port whose device does not exist yet (a VM's veth plugged after its port was configured)
 * waits in its bridge, as Open vSwitch keeps an interface with "could not open network device":
 * the switch starts, `show` prints the error, a topology diff adding such a port applies, and
 * the port forwards once its device appears (Switch.retryPending, the daemon's tick).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BridgeConfig, loadConfig, PortConfig } from '../../src/control/config';
import { Switch } from '../../src/control/switch';
import { cmdShow } from '../../src/control/commands';
import { MemNetdev } from '../dpif/helpers';
import { PacketBatch } from '../../src/netdev/batch';

function frame(): Uint8Array {
  const f = new Uint8Array(60);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00], 0);
  f.set([0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2], 14);
  f.set([0x03, 0xe8, 0x07, 0xd0, 0, 26, 0, 0], 34); // UDP 1000 -> 2000, length 26, no checksum
  return f;
}

function makeSwitch(present: Set<string>): { sw: Switch; devs: Map<string, MemNetdev>; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-pending-'));
  fs.writeFileSync(path.join(dir, 'm.flows'), 'priority=10,in_port=p1 actions=output:p2\n');
  fs.writeFileSync(path.join(dir, 'm.yaml'), [
    'node: m', 'bridges:', '  - name: br0', '    ports:', '      - { name: p1, ofport: 1 }', '      - { name: p2, ofport: 2 }',
    '    flows: m.flows', ''].join('\n'));
  const devs = new Map<string, MemNetdev>();
  const open = (_b: BridgeConfig, p: PortConfig): { netdev: MemNetdev; tunnel: null } => {
    if (!present.has(p.name)) {
      throw Object.assign(new Error(`afpacket ${p.name}: if_nametoindex failed: ENODEV (No such device)`), { code: 'ENODEV' });
    }
    const n = new MemNetdev(p.name);
    devs.set(p.name, n);
    return { netdev: n, tunnel: null };
  };
  const sw = new Switch(loadConfig(path.join(dir, 'm.yaml')), { open }, { nowMs: Date.now });
  return { sw, devs, dir };
}

test('a port whose device is missing waits with OVS\'s error, then forwards once the device appears', () => {
  const present = new Set(['p1']);
  const { sw, devs, dir } = makeSwitch(present);
  try {
    assert.deepEqual([...sw.pending.keys()], ['p2']);
    assert.match(String(cmdShow(sw)), /2\(p2\): afpacket error="could not open network device p2 \(No such device\)"/);
    // Still missing: a retry attaches nothing and keeps the one pending entry.
    assert.deepEqual(sw.retryPending(), []);
    assert.equal(sw.pending.size, 1);
    present.add('p2');
    const attached = sw.retryPending();
    assert.deepEqual(attached.map((a) => a.config.name), ['p2']);
    assert.equal(sw.pending.size, 0);
    assert.match(String(cmdShow(sw)), /2\(p2\): afpacket dp_port=\d+/);
    // The flow in_port=p1 -> p2 now reaches p2's device.
    const b = new PacketBatch(4);
    const i = b.append(frame());
    b.inPort[i] = sw.port('p1')!.dpPort;
    sw.run(b, b.count);
    assert.equal(devs.get('p2')!.sent.length, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a topology diff adding a port whose device is missing applies; removing it clears the wait', () => {
  const present = new Set(['p1', 'p2']);
  const { sw, dir } = makeSwitch(present);
  try {
    const next = { ...sw.config, bridges: sw.config.bridges.map((b) => ({ ...b, ports: [...b.ports, { ...b.ports[1], name: 'p3', ofport: 3 }] })) };
    const bc = next.bridges[0];
    sw.applyDiff([{ bridge: 'br0', state: 'changed', addPorts: [bc.ports[2]], modifyPorts: [], removePorts: [],
      addFlows: [], modifyFlows: [], deleteFlows: [] }], next);
    assert.deepEqual([...sw.pending.keys()], ['p3']);
    assert.match(String(cmdShow(sw)), /3\(p3\): afpacket error="could not open network device p3/);
    sw.removePort('br0', 'p3');
    assert.equal(sw.pending.size, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
