/**
 * Switch.poll reads a port again while UDP GSO frames are held for a tunnel (dpif/ports.ts
 * holdTunnelOut): the super-frames of consecutive batches share outer frames and go out in
 * one send, the held frames leave within the same poll call once a read finds nothing (or
 * after HOLD_READS batches), and a port whose batch holds nothing is read once per call.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BridgeConfig, loadConfig, PortConfig } from '../../src/control/config';
import { Switch } from '../../src/control/switch';
import { GSO_SLOT_BYTES, PacketBatch, VNET_HDR_BYTES } from '../../src/netdev/batch';
import { Netdev, NetdevStats } from '../../src/netdev/netdev';
import { nativeAvailable, nativeLoadError } from '../../src/native/io';
import { MemNetdev } from '../dpif/helpers';
import { datagrams, GsoWire, innerSeqs, MSS, superFrame, UNIT, VX } from '../helpers/tunnel-gso-frames';

const skip = nativeAvailable() ? false : `native addon not built: ${nativeLoadError()}`;

/** A port whose reads return its queued batches, one per recv (super-frames with their vnet header). */
class QueuedPort implements Netdev {
  readonly kind = 'internal';
  readonly queue: Uint8Array[][] = [];
  nRecv = 0;
  constructor(readonly name: string) {}
  recv(batch: PacketBatch): number {
    this.nRecv++;
    const frames = this.queue.shift() ?? [];
    batch.count = 0;
    for (const f of frames) {
      const i = batch.append(f);
      (batch.vnet as Uint8Array).set(f.length > 1514 ? VH : NO_VH, i * VNET_HDR_BYTES);
    }
    return batch.count;
  }
  send(_b: PacketBatch, count: number): number { return count; }
  stats(_o: NetdevStats): void { /* none */ }
  close(): void { /* none */ }
}

/** The vnet header of a super-frame (superFrame's) and of a complete frame. */
const VH = superFrame(MSS, 0).vh;
const NO_VH = new Uint8Array(VNET_HDR_BYTES);

/** br0: vm (1) -> vx (2, VXLAN key 1001) and plain (3) -> p4 (4). */
function makeSwitch(): { sw: Switch; vm: QueuedPort; plain: QueuedPort; wire: GsoWire; p4: MemNetdev; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-poll-hold-'));
  fs.writeFileSync(path.join(dir, 'm.flows'), 'priority=10,in_port=1 actions=set_tunnel:1001,output:2\npriority=10,in_port=3 actions=output:4\n');
  fs.writeFileSync(path.join(dir, 'm.yaml'), [
    'node: m', 'bridges:', '  - name: br0', '    ports:', '      - { name: vm, ofport: 1 }',
    '      - { name: vx, ofport: 2, type: vxlan, remote_ip: 192.168.100.12, local_ip: 192.168.100.11, key: 1001 }',
    '      - { name: plain, ofport: 3 }', '      - { name: p4, ofport: 4 }', '    flows: m.flows', ''].join('\n'));
  const vm = new QueuedPort('vm'), plain = new QueuedPort('plain'), wire = new GsoWire('vx'), p4 = new MemNetdev('p4');
  const open = (_b: BridgeConfig, p: PortConfig): { netdev: Netdev; tunnel: typeof VX | null } =>
    p.name === 'vx' ? { netdev: wire, tunnel: VX } : { netdev: p.name === 'vm' ? vm : p.name === 'plain' ? plain : p4, tunnel: null };
  const sw = new Switch(loadConfig(path.join(dir, 'm.yaml')), { open }, { nowMs: Date.now });
  return { sw, vm, plain, wire, p4, dir };
}

const lens = (w: GsoWire): number[][] => w.calls.map((call) => call.map((s) => s.frame.length));

test('consecutive batches of a VM port share outer frames; the held ones leave when a read finds nothing', { skip }, () => {
  const { sw, vm, wire, dir } = makeSwitch();
  try {
    const batch = new PacketBatch(8, GSO_SLOT_BYTES, true);
    vm.queue.push([superFrame(30 * MSS, 0x1000).frame], [superFrame(30 * MSS, 0x1000 + 30 * MSS).frame]);
    assert.equal(sw.poll(sw.port('vm')!, batch), 2, 'two batches of one super-frame each');
    assert.equal(vm.nRecv, 3, 'read until a read found nothing');
    assert.deepEqual(lens(wire), [[42 + 44 * UNIT, 42 + 16 * UNIT]], 'both super-frames in 2 outer frames, one send');
    assert.deepEqual(innerSeqs(datagrams(wire.calls[0])), Array.from({ length: 60 }, (_, k) => 0x1000 + k * MSS));
    // One batch and nothing after it: sent within the call, as before.
    vm.queue.push([superFrame(10 * MSS, 0x1000 + 60 * MSS).frame]);
    assert.equal(sw.poll(sw.port('vm')!, batch), 1);
    assert.equal(vm.nRecv, 5);
    assert.deepEqual(lens(wire)[1], [42 + 10 * UNIT]);
    assert.equal(sw.poll(sw.port('vm')!, batch), 0);
    assert.equal(wire.calls.length, 2, 'nothing held after a call');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the reads stop after HOLD_READS batches and the held frames go out; a port without held output is read once', { skip }, () => {
  const { sw, vm, plain, wire, p4, dir } = makeSwitch();
  try {
    const batch = new PacketBatch(8, GSO_SLOT_BYTES, true);
    for (let k = 0; k < 6; k++) vm.queue.push([superFrame(11 * MSS, 0x1000 + k * 11 * MSS).frame]);
    assert.equal(sw.poll(sw.port('vm')!, batch), 4, 'four batches');
    assert.equal(vm.nRecv, 4);
    assert.deepEqual(lens(wire), [[42 + 44 * UNIT]], '4 x 11 segments: one full outer frame, sent');
    assert.equal(sw.poll(sw.port('vm')!, batch), 2, 'the rest on the next call');
    assert.deepEqual(lens(wire)[1], [42 + 22 * UNIT]);
    assert.deepEqual(innerSeqs(datagrams(wire.calls.flat())), Array.from({ length: 66 }, (_, k) => 0x1000 + k * MSS));
    const small = new Uint8Array(60);
    small.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
    small.set([0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2], 14);
    small.set([0x03, 0xe8, 0x07, 0xd0, 0, 26, 0, 0], 34); // UDP 1000 -> 2000, length 26, no checksum
    plain.queue.push([small], [small]);
    assert.equal(sw.poll(sw.port('plain')!, batch), 1, 'one batch per call');
    assert.equal(plain.nRecv, 1);
    assert.equal(p4.sent.length, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
