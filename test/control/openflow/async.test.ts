/**
 * OpenFlow asynchronous messages (control/openflow/async-msgs.ts, session.ts, endpoint.ts, and
 * the datapath's packet-in queue): Debian's `ovs-ofctl monitor BR 65534` on flowd's management
 * socket prints the same PACKET_IN and FLOW_REMOVED text as the same monitor on real Open vSwitch
 * (test/helpers/ovs-oracle.ts) for the same flows and frame; a port added to the bridge shows as
 * PORT_STATUS; a one-shot ovs-ofctl connection (no miss_send_len) gets nothing; the packet-in
 * budget per batch drops and counts what is over it.
 *
 * In-process: a Switch with in-memory ports, its OpenFlow endpoints on a temporary rundir; no
 * root. Needs ovs-ofctl (and the oracle's daemons for the OVS comparison); skips otherwise.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, execFile, execFileSync, ChildProcess } from 'node:child_process';
import { loadConfig } from '../../../src/control/config';
import { Switch } from '../../../src/control/switch';
import { OfEndpoints } from '../../../src/control/openflow/endpoints';
import { PacketBatch } from '../../../src/netdev/batch';
import { Netdev, NetdevStats } from '../../../src/netdev/netdev';
import { OvsOracle, ovsUnavailableReason } from '../../helpers/ovs-oracle';
import { PACKET_INS_PER_BATCH } from '../../../src/dpif/packet-in-queue';
import { Bridge } from '../../../src/ofproto/bridge';
import { KEY_WORDS } from '../../../src/packet/flowkey-layout';
import { FieldDef, fieldByName, setMatchField } from '../../../src/ofproto/fields';
import type { PacketInInfo } from '../../../src/dpif/dp-actions';
import { encodeFlowRemoved, encodePacketIn, FR_IDLE_TIMEOUT } from '../../../src/control/openflow/async-msgs';
import { NXPIF_NXT_PACKET_IN, NXPIF_STANDARD } from '../../../src/control/openflow/wire';

function have(exe: string): boolean {
  try { execFileSync('sh', ['-c', `command -v ${exe}`], { stdio: 'pipe' }); return true; } catch { return false; }
}
const skip = have('ovs-ofctl') ? false : 'ovs-ofctl not found (install Debian\'s openvswitch-common)';
const ovsSkip = skip || ovsUnavailableReason() || false;

class MemPort implements Netdev {
  readonly kind = 'afpacket';
  nSent = 0;
  up = true;
  constructor(readonly name: string) {}
  recv(): number { return 0; }
  send(_b: PacketBatch, count: number): number { this.nSent += count; return count; }
  stats(_out: NetdevStats): void { /* none */ }
  close(): void { /* nothing */ }
  linkUp(): boolean { return this.up; }
}

/** UDP 10.0.0.1:1000 -> 10.0.0.2:2000, 60 bytes. */
const FRAME = '020000000002' + '020000000001' + '0800' + '4500002e00004000401126bd0a0000010a000002' +
  '03e807d0001a0000' + '00'.repeat(18);

const FLOWS = [
  'table=0,priority=10,in_port=1,udp actions=load:0x5->NXM_NX_REG1[],resubmit(,3)',
  'table=0,priority=10,in_port=1,arp actions=CONTROLLER:65535',
  'table=3,cookie=0x77,priority=5,udp actions=controller(reason=no_match,max_len=40,userdata=01.02.03),output:2',
  'table=0,priority=0 actions=drop',
];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-ofasync-'));
const children: ChildProcess[] = [];
let ovs: OvsOracle | null = null;

after(() => {
  for (const c of children) if (c.exitCode === null && c.pid !== undefined) { try { process.kill(c.pid, 'SIGTERM'); } catch { /* gone */ } }
  if (ovs !== null) ovs.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function makeSwitch(): { sw: Switch; eps: OfEndpoints; ports: Map<string, MemPort>; cfgPath: string } {
  const cfgPath = path.join(tmp, 'n.yaml');
  fs.writeFileSync(cfgPath, ['node: n', 'bridges:', '  - name: br0', '    ports:', '      - { name: p1, ofport: 1 }',
    '      - { name: p2, ofport: 2 }', '    flows: []', ''].join('\n'));
  const ports = new Map<string, MemPort>();
  const cfg = loadConfig(cfgPath);
  const sw = new Switch(cfg, { open: (_b, p) => { const n = new MemPort(p.name); ports.set(p.name, n); return { netdev: n, tunnel: null }; } },
    { nowMs: Date.now });
  const run = fs.mkdtempSync(path.join(tmp, 'run-'));
  const eps = new OfEndpoints(sw, run);
  return { sw, eps, ports, cfgPath };
}

/** ovs-ofctl without blocking the event loop (flowd's endpoint runs in this process). */
function ofctl(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ovs-ofctl', args, { timeout: 20000 }, (e, out, err) => { if (e) reject(new Error(`${e.message}\n${err}`)); else resolve(out); });
  });
}

function hexBytes(h: string): Uint8Array {
  return Uint8Array.from(h.match(/../g) as string[], (x) => parseInt(x, 16));
}

function inject(sw: Switch, frameHex: string, n = 1): void {
  const b = new PacketBatch(Math.max(n, 1));
  const p1 = sw.port('p1');
  assert.ok(p1 !== undefined);
  for (let k = 0; k < n; k++) { const i = b.append(hexBytes(frameHex)); b.inPort[i] = p1.dpPort; }
  sw.run(b, b.count);
}

let lastText = (): string => '';
/** What the last monitor started printed (for assertion messages). */
function lastOut(): string { return lastText(); }

/** `ovs-ofctl monitor TARGET 65534` with its output collected. */
/**
 * `ovs-ofctl monitor TARGET 65534 EXTRA...`, its output collected. `ready()`: its set-up is
 * over. The monitor sends its set-up requests (miss_send_len, packet-in format) each with a
 * barrier and drops whatever else arrives while it waits for the barrier's reply, so an
 * asynchronous message sent before then is lost on its side (not the switch's). It opens its
 * unixctl socket (OVS_RUNDIR/ovs-ofctl.PID.ctl) once the last reply came: that is the signal.
 */
function monitor(target: string, extra: string[] = []): { child: ChildProcess; out: () => string; ready: () => boolean } {
  let text = '';
  // monitor opens a unixctl socket in OVS_RUNDIR: a private one.
  const child = spawn('ovs-ofctl', ['monitor', target, '65534', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OVS_RUNDIR: tmp } });
  children.push(child);
  child.stdout?.on('data', (c: Buffer) => { text += c.toString(); });
  child.stderr?.on('data', (c: Buffer) => { text += c.toString(); });
  lastText = () => text;
  return { child, out: () => text, ready: () => fs.existsSync(path.join(tmp, `ovs-ofctl.${child.pid}.ctl`)) };
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

/** Monitor output as messages, durations blanked. */
function messages(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const l = line.replace(/duration[=:]?[0-9.]+s/g, 'duration=Xs');
    if (/^[A-Z]/.test(l) || out.length === 0) out.push(l); else out[out.length - 1] += `\n${l}`;
  }
  return out;
}

function stop(c: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (c.exitCode !== null || c.pid === undefined) { resolve(); return; }
    c.once('exit', () => resolve());
    process.kill(c.pid, 'SIGTERM');
  });
}

test('ovs-ofctl monitor prints the same PACKET_IN and FLOW_REMOVED from flowd as from Open vSwitch', { skip: ovsSkip }, async () => {
  const { sw, eps, cfgPath } = makeSwitch();
  await eps.sync(loadConfig(cfgPath));
  const ep = eps.byBridge.get('br0');
  assert.ok(ep !== undefined);
  const target = `unix:${ep.opts.mgmtPath}`;
  const o = OvsOracle.start();
  ovs = o;
  o.addBridge('br0', [{ name: 'p1', ofport: 1 }, { name: 'p2', ofport: 2 }]);
  const ovsTarget = `unix:${o.dir}/br0.mgmt`;
  const flowsFile = path.join(tmp, 'f.flows');
  fs.writeFileSync(flowsFile, `${FLOWS.join('\n')}\ntable=5,priority=7,send_flow_rem,ip,nw_dst=10.9.0.0/16 actions=drop\n`);
  try {
    for (const t of [target, ovsTarget]) {
      await ofctl('del-flows', t);
      await ofctl('add-flows', t, flowsFile);
    }
    // The controller actions read back as OVS prints them (NXAST_CONTROLLER2 with userdata).
    const dump = async (t: string): Promise<string[]> => (await ofctl('dump-flows', t)).split('\n').filter((l) => l.startsWith(' '))
      .map((l) => l.replace(/ (duration|n_packets|n_bytes|idle_age|hard_age)=[^,]*,/g, '').trim()).sort();
    assert.deepEqual(await dump(target), await dump(ovsTarget));
    // Each monitor form: OpenFlow 1.0, 1.0 asking for NXM (monitor keeps the 1.0 flow format), 1.3, 1.4.
    const forms = [[], ['-F', 'nxm'], ['-O', 'OpenFlow13'], ['-O', 'OpenFlow14']];
    const mons = forms.map((f) => ({ f, flowd: monitor(target, f), ovs: monitor(ovsTarget, f) }));
    assert.ok(await until(() => ep.asyncSubscribers === forms.length && mons.every((m) => m.flowd.ready() && m.ovs.ready()), 10000),
      `the monitors subscribed on flowd and Open vSwitch: ${lastOut()}`);
    inject(sw, FRAME);
    o.appctl(['netdev-dummy/receive', 'p1', FRAME]);
    for (const t of [target, ovsTarget]) await ofctl('del-flows', t, 'table=5,ip,nw_dst=10.9.0.0/16');
    assert.ok(await until(() => mons.every((m) => m.flowd.out().includes('FLOW_REMOVED') && m.ovs.out().includes('FLOW_REMOVED')), 5000),
      mons.map((m) => `${m.f.join(' ')}: flowd:\n${m.flowd.out()}\nOVS:\n${m.ovs.out()}`).join('\n'));
    for (const m of mons) {
      const got = messages(m.flowd.out());
      assert.deepEqual(got, messages(m.ovs.out()), `monitor ${m.f.join(' ')}`);
      assert.match(got.join('\n'), /userdata=01\.02\.03/);
    }
    const got = messages(mons[0].flowd.out());
    // max_len=40 does not cut the frame: nothing is buffered, so the whole packet goes up (as OVS).
    assert.match(got.join('\n'), /table_id=3 cookie=0x77 total_len=60 reg1=0x5,in_port=1 \(via no_match\) data_len=60 \(unbuffered\)/);
    await Promise.all(mons.flatMap((m) => [stop(m.flowd.child), stop(m.ovs.child)]));
    assert.equal(ep.counters.nPacketIns, forms.length);
    assert.equal(ep.counters.nFlowRemoved, forms.length);
  } finally {
    await eps.close();
  }
});

test('OpenFlow 1.3 monitor: table-miss packet-in (no_match), hard-timeout FLOW_REMOVED, PORT_STATUS add/modify/delete', { skip }, async () => {
  const { sw, eps, cfgPath, ports } = makeSwitch();
  const cfg = loadConfig(cfgPath);
  await eps.sync(cfg);
  const ep = eps.byBridge.get('br0');
  assert.ok(ep !== undefined);
  const target = `unix:${ep.opts.mgmtPath}`;
  let m: ReturnType<typeof monitor> | null = null;
  try {
  await ofctl('del-flows', target);
  await ofctl('-O', 'OpenFlow13', 'add-flow', target, 'priority=0 actions=CONTROLLER:65535');
  await ofctl('-O', 'OpenFlow13', 'add-flow', target, 'table=1,priority=1,hard_timeout=1,send_flow_rem,cookie=0x9,tcp actions=drop');
  // A one-shot connection never gets asynchronous messages.
  assert.equal(ep.asyncSubscribers, 0);
  const mon = monitor(target, ['-O', 'OpenFlow13']);
  m = mon;
    assert.ok(await until(() => ep.asyncSubscribers === 1 && mon.ready(), 10000), `the monitor subscribed: ${lastOut()}`);
    inject(sw, FRAME);
    sw.expireRules(Date.now() + 1500);
    const bc = cfg.bridges[0];
    sw.addPort(bc, { ...bc.ports[0], name: 'p3', ofport: 3 });
    await new Promise((r) => setImmediate(r));
    (ports.get('p3') as MemPort).up = false;
    ep.pollLinks();
    sw.removePort('br0', 'p3');
    assert.ok(await until(() => (mon.out().match(/PORT_STATUS/g) ?? []).length >= 3, 5000), mon.out());
    const text = mon.out();
    // ovs-ofctl monitor asks for NXT_PACKET_IN2 on every version; a table-miss rule's packet-in says no_match in 1.3.
    assert.match(text, /NXT_PACKET_IN2 \(OF1\.3\) \(xid=0x0\): cookie=0x0 total_len=60 in_port=1 \(via no_match\) data_len=60 \(unbuffered\)/);
    assert.match(text, /OFPT_FLOW_REMOVED \(OF1\.3\) \(xid=0x0\):.*priority=1,tcp reason=hard/);
    assert.match(text, /OFPT_PORT_STATUS \(OF1\.3\) \(xid=0x0\): ADD: 3\(p3\): addr:00:00:00:00:00:00\n\s+config:\s+0\n\s+state:\s+0\n/);
    assert.match(text, /OFPT_PORT_STATUS \(OF1\.3\) \(xid=0x0\): MOD: 3\(p3\)[^]*state:\s+LINK_DOWN/);
    assert.match(text, /OFPT_PORT_STATUS \(OF1\.3\) \(xid=0x0\): DEL: 3\(p3\)/);
    assert.equal(ep.counters.nPortStatus, 3);
  } finally {
    if (m !== null) await stop(m.child);
    await eps.close();
  }
});

test('packet-ins over the per-batch budget are dropped and counted, forwarding goes on', { skip }, async () => {
  const { sw, eps, cfgPath, ports } = makeSwitch();
  await eps.sync(loadConfig(cfgPath));
  const ep = eps.byBridge.get('br0');
  assert.ok(ep !== undefined);
  const target = `unix:${ep.opts.mgmtPath}`;
  let m: ReturnType<typeof monitor> | null = null;
  try {
    await ofctl('del-flows', target);
    await ofctl('add-flow', target, 'priority=1 actions=controller,output:2');
    const mon = monitor(target);
    m = mon;
    assert.ok(await until(() => ep.asyncSubscribers === 1 && mon.ready(), 10000), `the monitor subscribed: ${lastOut()}`);
    const n = PACKET_INS_PER_BATCH + 36;
    inject(sw, FRAME, n);
    inject(sw, FRAME, n);
    const q = sw.datapath.packetIns;
    assert.equal(q.nQueued, 2 * PACKET_INS_PER_BATCH);
    assert.equal(q.nDroppedBatch, 2 * 36);
    assert.equal((ports.get('p2') as MemPort).nSent, 2 * n, 'every frame was forwarded');
    assert.ok(await until(() => ep.counters.nPacketIns === q.nQueued, 5000), `${ep.counters.nPacketIns} of ${q.nQueued}`);
    const mm = m;
    assert.ok(await until(() => (mm.out().match(/NXT_PACKET_IN2/g) ?? []).length === q.nQueued, 5000));
  } finally {
    if (m !== null) await stop(m.child);
    await eps.close();
  }
});

test('NXT_FLOW_REMOVED, NXT_PACKET_IN and the OpenFlow 1.0 PACKET_IN read back with ovs-ofctl ofp-parse', { skip }, async () => {
  const br = new Bridge('br0', 0, { defaultFlow: false });
  const rule = br.addFlow('table=4,cookie=0x21,priority=9,send_flow_rem,idle_timeout=30,tcp,nw_src=10.1.0.0/16,tp_dst=22 actions=drop', 1000);
  rule.credit(3, 180, 2000);
  const flow = new Uint32Array(KEY_WORDS);
  setMatchField(fieldByName('in_port') as FieldDef, flow, new Uint32Array(KEY_WORDS), 7n, 0xffffn);
  setMatchField(fieldByName('metadata') as FieldDef, flow, new Uint32Array(KEY_WORDS), 0xabn, 0xffffffffffffffffn);
  const info: PacketInInfo = { bridge: 'br0', tableId: 2, cookie: 0x5n, reason: 1, tableMiss: false, controllerId: 0, userdata: new Uint8Array(0), flow };
  const data = hexBytes(FRAME);
  const file = path.join(tmp, 'msgs.bin');
  fs.writeFileSync(file, Buffer.concat([
    encodeFlowRemoved(1, true, rule, FR_IDLE_TIMEOUT, 3500),
    encodePacketIn(1, NXPIF_NXT_PACKET_IN, info, data, data.length),
    encodePacketIn(1, NXPIF_STANDARD, info, data, data.length),
  ]));
  const text = await ofctl('ofp-parse', file);
  const msgs = messages(text);
  assert.equal(msgs.length, 3, text);
  assert.equal(msgs[0], 'NXT_FLOW_REMOVED (xid=0x0): priority=9,tcp,nw_src=10.1.0.0/16,tp_dst=22 reason=idle table_id=4 cookie:0x21 duration=Xs idle30 pkts3 bytes180');
  assert.match(msgs[1], /^NXT_PACKET_IN \(xid=0x0\): table_id=2 cookie=0x5 total_len=60 metadata=0xab,in_port=7 \(via action\) data_len=60 \(unbuffered\)\nudp,.*tp_src=1000,tp_dst=2000/);
  assert.match(msgs[2], /^OFPT_PACKET_IN \(xid=0x0\): total_len=60 in_port=7 \(via action\) data_len=60 \(unbuffered\)\nudp,/);
});
