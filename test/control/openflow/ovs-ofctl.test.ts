/**
 * Debian's own ovs-ofctl drives a running flowd over OpenFlow (control/openflow/): the
 * generated Neutron flows of every node of the reference topology go in with add-flows and
 * come back from dump-flows exactly as real Open vSwitch (the oracle, test/helpers/ovs-oracle.ts)
 * prints the same flows (durations and counters aside); del-flows --strict, mod-flows,
 * replace-flows and diff-flows leave both switches with the same flows; show, dump-tables,
 * dump-ports and dump-aggregate answer; packet-out's frame leaves the named port; malformed
 * OpenFlow gets ERROR replies (or, for a length that cannot be skipped, a closed connection),
 * counted, while ping through the bridge loses nothing.
 *
 *   of-a: of-a0 10.76.0.1 ── of-a1 ┐
 *                                  ├ of-sw: flowd br-int (of-a1 = 1, of-b1 = 2), br-tun, br-ex
 *   of-b: of-b0 10.76.0.2 ── of-b1 ┘
 *
 * Needs root, `ip netns`, ping, tcpdump and ovs-ofctl; the OVS comparisons also need the
 * oracle's daemons. Skips with the reason otherwise. Prefix of-.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { Lab, FlowdDaemon, labSkipReason, parsePing } from '../../helpers/netlab';
import { OvsOracle, ovsUnavailableReason } from '../../helpers/ovs-oracle';
import { loadTopology } from '../../../src/dvr/topology';
import { nodeConfig } from '../../../src/dvr/node-config';
import { readPcap } from '../../../src/netdev/pcap-file';
import { waitFor } from '../../helpers/wait';

const skip = labSkipReason(['ping', 'tcpdump', 'ovs-ofctl']);
const ovsSkip = skip || ovsUnavailableReason() || false;
const lab = new Lab('of-');
let d: FlowdDaemon;
let ovs: OvsOracle | null = null;
let nsA = '';
let nsB = '';

const CONFIG = `
bridges:
  - name: br-int
    ports:
      - { name: of-a1, ofport: 1 }
      - { name: of-b1, ofport: 2 }
  - name: br-tun
    ports: []
  - name: br-ex
    ports: []
`;

const mgmt = (br: string): string => `unix:${path.join(lab.dir, 'of', `${br}.mgmt`)}`;

function ofctl(args: string[], input?: string): string {
  return execFileSync('ovs-ofctl', args, { input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 20000 }).toString();
}

/** dump-flows lines without the header, durations, counters and ages; sorted. */
function normalize(dump: string): string[] {
  return dump.split('\n').filter((l) => l.startsWith(' '))
    .map((l) => l.replace(/ (duration|n_packets|n_bytes|idle_age|hard_age)=[^,]*,/g, '').trim()).sort();
}

function flowsFile(name: string, text: string): string {
  return lab.file(name, text.endsWith('\n') ? text : `${text}\n`);
}

before(async () => {
  if (skip) return;
  nsA = lab.addNs('a');
  nsB = lab.addNs('b');
  const nsSw = lab.addNs('sw');
  lab.veth('a0', nsA, 'a1', nsSw, { ipA: '10.76.0.1/24', macA: '02:76:00:00:00:01' });
  lab.veth('b0', nsB, 'b1', nsSw, { ipA: '10.76.0.2/24', macA: '02:76:00:00:00:02' });
  d = await lab.startFlowd(nsSw, 'of', CONFIG);
  if (!ovsSkip) ovs = OvsOracle.start();
});

after(async () => {
  if (ovs !== null) ovs.stop();
  await lab.cleanup();
});

test('add-flows of every generated Neutron bridge: dump-flows prints what OVS prints', { skip: ovsSkip }, () => {
  const o = ovs as OvsOracle;
  const topo = loadTopology(path.join(__dirname, '../../../../examples/topologies/reference.yaml'));
  let nCompared = 0;
  for (const n of topo.nodes) {
    const nc = nodeConfig(topo, n.name);
    for (const b of nc.bridges) {
      const text = b.flows.map((f) => f.text).join('\n');
      const file = flowsFile(`${n.name}-${b.name}.flows`, text);
      o.addBridge(b.name, []);
      o.addFlows(b.name, text);
      ofctl(['del-flows', mgmt(b.name)]);
      ofctl(['add-flows', mgmt(b.name), file]);
      const want = normalize(o.dumpFlows(b.name));
      const got = normalize(ofctl(['dump-flows', mgmt(b.name)]));
      assert.equal(got.length, b.flows.length, `${n.name} ${b.name}`);
      assert.deepEqual(got, want, `${n.name} ${b.name}`);
      o.vsctl(['del-br', b.name]);
      nCompared += got.length;
    }
  }
  assert.ok(nCompared > 200, `compared ${nCompared} flows`);
});

test('flows added over OpenFlow are the rules flowctl sees, and they forward', { skip }, async () => {
  ofctl(['del-flows', mgmt('br-int')]);
  ofctl(['add-flow', mgmt('br-int'), 'priority=5,in_port=1,actions=output:2']);
  ofctl(['add-flow', mgmt('br-int'), 'priority=5,in_port=2,actions=output:1']);
  const viaFlowctl = d.flowctl('dump-flows', 'br-int');
  assert.equal(viaFlowctl.status, 0, viaFlowctl.stderr);
  assert.deepEqual(normalize(viaFlowctl.stdout.split('\n').filter((l) => l !== '').map((l) => ` ${l}`).join('\n')),
    normalize(ofctl(['dump-flows', mgmt('br-int')])));
  // -w: wait for every reply (a busy machine may send the last one later than -W's 2 x RTT), at most the deadline.
  const ping = lab.run(nsA, 'ping', '-c', '3', '-i', '0.1', '-w', '30', '10.76.0.2');
  assert.equal(parsePing(ping.stdout).received, 3, ping.stdout);
  // The rules counted the traffic (the datapath credits the same rules OpenFlow dumps).
  assert.match(ofctl(['dump-flows', mgmt('br-int'), 'in_port=1']), /n_packets=[1-9]/);
});

test('del-flows --strict, mod-flows, replace-flows and diff-flows leave flowd as they leave OVS', { skip: ovsSkip }, () => {
  const o = ovs as OvsOracle;
  const base = [
    'priority=10,in_port=1,dl_dst=fa:16:3e:00:00:01 actions=output:2',
    'priority=20,in_port=1,dl_dst=fa:16:3e:00:00:01 actions=drop',
    'table=3,cookie=0x10,priority=5,ip,nw_dst=10.0.0.0/24 actions=mod_vlan_vid:3,resubmit(,4)',
    'table=3,cookie=0x20,priority=5,arp actions=NORMAL',
    'priority=0 actions=NORMAL',
  ].join('\n');
  const steps: string[][] = [
    ['del-flows', '--strict', 'priority=10,in_port=1,dl_dst=fa:16:3e:00:00:01'],
    ['mod-flows', 'table=3,ip actions=load:0x5->NXM_NX_REG0[],resubmit(,5)'],
    ['mod-flows', '--strict', 'priority=20,in_port=1,dl_dst=fa:16:3e:00:00:01 actions=output:1'],
    ['del-flows', 'cookie=0x20/-1'],
  ];
  o.addBridge('br-ex', []);
  o.addFlows('br-ex', base);
  ofctl(['del-flows', mgmt('br-ex')]);
  ofctl(['add-flows', mgmt('br-ex'), flowsFile('base.flows', base)]);
  const ovsMgmt = `unix:${o.dir}/br-ex.mgmt`;
  for (const s of steps) {
    o.ofctl([s[0], ...s.slice(1, -1), ovsMgmt, s[s.length - 1]]);
    ofctl([s[0], ...s.slice(1, -1), mgmt('br-ex'), s[s.length - 1]]);
    assert.deepEqual(normalize(ofctl(['dump-flows', mgmt('br-ex')])), normalize(o.dumpFlows('br-ex')), s.join(' '));
  }
  const next = flowsFile('next.flows', 'priority=9,in_port=1 actions=drop\npriority=1,arp actions=NORMAL\n');
  const diffBefore = spawnSync('ovs-ofctl', ['diff-flows', mgmt('br-ex'), next]).stdout.toString();
  const ovsDiff = spawnSync('ovs-ofctl', ['diff-flows', ovsMgmt, next]).stdout.toString();
  assert.deepEqual(diffBefore.split('\n').sort(), ovsDiff.split('\n').sort());
  assert.match(diffBefore, /^\+priority=9,in_port=1 actions=drop$/m);
  o.ofctl(['replace-flows', ovsMgmt, next]);
  ofctl(['replace-flows', mgmt('br-ex'), next]);
  assert.deepEqual(normalize(ofctl(['dump-flows', mgmt('br-ex')])), normalize(o.dumpFlows('br-ex')));
  const diffAfter = spawnSync('ovs-ofctl', ['diff-flows', mgmt('br-ex'), next]);
  assert.equal(diffAfter.status, 0, diffAfter.stdout.toString());
  assert.equal(diffAfter.stdout.toString(), '');
  o.vsctl(['del-br', 'br-ex']);
});

test('show, dump-tables, dump-ports and dump-aggregate answer', { skip }, () => {
  const show = ofctl(['show', mgmt('br-int')]);
  assert.match(show, /^OFPT_FEATURES_REPLY \(xid=0x\w+\): dpid:[0-9a-f]{16}\nn_tables:254, n_buffers:0\n/);
  assert.match(show, /\n 1\(of-a1\): addr:/);
  assert.match(show, /\n 2\(of-b1\): addr:/);
  assert.match(show, /\n LOCAL\(br-int\): addr:/);
  // A management connection starts with miss_send_len 0, as OVS's service connections (no async messages).
  assert.match(show, /OFPT_GET_CONFIG_REPLY \(xid=0x\w+\): frags=normal miss_send_len=0/);
  const tables = ofctl(['dump-tables', mgmt('br-int')]);
  assert.match(tables, /^OFPST_TABLE reply \(xid=0x\w+\):\n {2}table 0 \("classifier"\):\n {4}active=2, lookup=\d+, matched=\d+/);
  const ports = ofctl(['dump-ports', mgmt('br-int')]);
  assert.match(ports, /^OFPST_PORT reply \(xid=0x\w+\): 2 ports\n {2}port {2}1: rx pkts=[1-9]\d*, bytes=\d+, drop=0, errs=0/);
  const agg = ofctl(['dump-aggregate', mgmt('br-int')]);
  assert.match(agg, /NXST_AGGREGATE reply \(xid=0x\w+\): packet_count=[1-9]\d* byte_count=\d+ flow_count=2/);
});

test('packet-out: the frame leaves the port the action names, byte for byte', { skip }, async () => {
  const capFile = path.join(lab.dir, 'pktout.pcap');
  const capLog = path.join(lab.dir, 'pktout.tcpdump');
  // --immediate-mode: the frame reaches the file (and -c 1 ends tcpdump) when it arrives, not
  // when libpcap's 1 s block timer fires.
  const tcpdump = lab.spawnIn(nsB, 'tcpdump', ['--immediate-mode', '-i', 'of-b0', '-c', '1', '-U', '-w', capFile, 'ether', 'src', '02:76:00:00:00:99'], capLog);
  const said = (): string => { try { return fs.readFileSync(capLog, 'utf8'); } catch { return ''; } };
  const exited = new Promise<void>((resolve) => { tcpdump.once('exit', () => resolve()); });
  // A frame sent before tcpdump opened its socket is on no capture: wait until it says so.
  await waitFor('tcpdump listening on of-b0', () => said().includes('listening on') || tcpdump.exitCode !== null, { detail: said });
  const frame = 'ffffffffffff' + '027600000099' + '88b5' + '6f66' + '00'.repeat(44);
  ofctl(['packet-out', mgmt('br-int'), `in_port=LOCAL,packet=${frame},actions=output:2`]);
  await waitFor('tcpdump to capture the frame and exit (-c 1)', () => tcpdump.exitCode !== null || tcpdump.signalCode !== null, { detail: said });
  await exited;
  const cap = await readPcap(capFile);
  assert.equal(cap.records.length, 1);
  assert.equal(Buffer.from(cap.records[0].data).toString('hex'), frame);
  const counters = await d.request('openflow', { format: 'json' }) as { bridge: string; packet_outs: number }[];
  assert.equal(counters.find((r) => r.bridge === 'br-int')?.packet_outs, 1);
});

// ---- malformed OpenFlow -------------------------------------------------------------------------

/** A raw OpenFlow 1.0 client: sends bytes, collects whole messages. */
class RawClient {
  readonly sock: net.Socket;
  private buf = Buffer.alloc(0);
  closed = false;

  constructor(p: string) {
    this.sock = net.createConnection(p);
    this.sock.on('data', (c: Buffer) => { this.buf = Buffer.concat([this.buf, c]); });
    this.sock.on('close', () => { this.closed = true; });
    this.sock.on('error', () => { /* close follows */ });
  }

  send(hex: string): void { this.sock.write(Buffer.from(hex.replace(/\s+/g, ''), 'hex')); }

  /** Waits for the next message (of `type` if given); null on timeout or close. */
  async next(type = -1, timeoutMs = 3000): Promise<Buffer | null> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      while (this.buf.length >= 8 && this.buf.length >= this.buf.readUInt16BE(2)) {
        const m = this.buf.subarray(0, this.buf.readUInt16BE(2));
        this.buf = this.buf.subarray(m.length);
        if (type < 0 || m[1] === type) return m;
      }
      if (this.closed) return null;
      await new Promise((r) => setTimeout(r, 20));
    }
    return null;
  }

  async waitClosed(timeoutMs = 3000): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }
}

const HELLO = '01000008 00000001';
/** NXT_FLOW_MOD header: vendor 0x2320 subtype 13, then cookie, command ADD, timeouts, priority, buffer, out_port, flags. */
function nxFlowMod(xid: string, matchHex: string, matchLen: number, actionsHex: string): string {
  const body = '0000000000000000' + '0000' + '0000' + '0000' + '8000' + 'ffffffff' + 'ffff' + '0000'
    + matchLen.toString(16).padStart(4, '0') + '000000000000' + (matchHex + actionsHex).replace(/\s+/g, '');
  const len = 16 + body.length / 2;
  return '0104' + len.toString(16).padStart(4, '0') + xid + '00002320' + '0000000d' + body;
}

test('malformed OpenFlow gets ERROR replies with the right type and code, counted; forwarding goes on', { skip }, async () => {
  ofctl(['del-flows', mgmt('br-int')]);
  ofctl(['add-flow', mgmt('br-int'), 'priority=0,actions=NORMAL']);
  const sockPath = path.join(lab.dir, 'of', 'br-int.mgmt');
  // -w: ping ends when all 60 are answered (or after 60 s). With -W it gives up 2 x the
  // largest round trip after the last request, and a reply that the busy daemon sends later
  // than that counts as lost though nothing was.
  const pinging = lab.runAsync(nsA, 'ping', ['-c', '60', '-i', '0.05', '-w', '60', '10.76.0.2'], 90000);
  const c = new RawClient(sockPath);
  c.send(HELLO);
  assert.ok(await c.next(0), 'hello');
  const expectError = async (hex: string, xid: number, type: number, code: number, what: string): Promise<void> => {
    c.send(hex);
    const e = await c.next(1);
    assert.ok(e !== null, `${what}: no reply`);
    assert.equal(e.readUInt32BE(4), xid, `${what}: xid`);
    assert.deepEqual([e.readUInt16BE(8), e.readUInt16BE(10)], [type, code], what);
  };
  await expectError('017f0008 00000011', 0x11, 1, 1, 'unknown message type: OFPBRC_BAD_TYPE');
  await expectError('0104000c 00000012 00001234', 0x12, 1, 3, 'unknown vendor: OFPBRC_BAD_VENDOR');
  await expectError('01040010 00000013 00002320 000000ff', 0x13, 1, 4, 'unknown Nicira subtype: OFPBRC_BAD_SUBTYPE');
  await expectError('01090010 00000015 0000000000000000', 0x15, 1, 6, 'set_config of 16 bytes: OFPBRC_BAD_LEN');
  await expectError(nxFlowMod('00000016', '00000406 0000', 80, ''), 0x16, 1, 6, 'match_len past the message: OFPBRC_BAD_LEN');
  // NXM_OF_ETH_DST (6 bytes) cut after 2 bytes of value: NXBRC_NXM_INVALID (1,256).
  await expectError(nxFlowMod('00000017', '00000206 aabb 0000', 6, ''), 0x17, 1, 256, 'cut match field');
  // NXM_OF_IP_SRC without eth_type=0x0800: NXBRC_NXM_BAD_PREREQ (1,260).
  await expectError(nxFlowMod('00000018', '00000e04 0a000001', 8, ''), 0x18, 1, 260, 'missing prerequisite');
  // An output action of length 12 (not a multiple of 8): OFPBAC_BAD_LEN (2,1).
  await expectError(nxFlowMod('00000019', '', 0, '0000000c00020000 00000000'), 0x19, 2, 1, 'action length');
  // An action cut short (8 bytes announced as 16): OFPBAC_BAD_LEN.
  await expectError(nxFlowMod('0000001a', '', 0, 'ffff0010 00002320'), 0x1a, 2, 1, 'action runs past the message');
  // Nicira action subtype 999: OFPBAC_BAD_VENDOR_TYPE (2,3).
  await expectError(nxFlowMod('0000001b', '', 0, 'ffff0010 00002320 03e7 000000000000'), 0x1b, 2, 3, 'unknown Nicira action');
  // Unknown standard action type 99: OFPBAC_BAD_TYPE (2,0).
  await expectError(nxFlowMod('0000001c', '', 0, '00630008 00000000'), 0x1c, 2, 0, 'unknown action type');
  // The connection still works: echo.
  c.send('01020008 00000020');
  const echo = await c.next(3);
  assert.ok(echo !== null && echo.readUInt32BE(4) === 0x20, 'echo after errors');
  // A message flood: 20000 echo requests in one write, nothing read meanwhile.
  const flood = Buffer.alloc(8 * 20000);
  for (let i = 0; i < 20000; i++) flood.writeUInt32BE(0x01020008, i * 8), flood.writeUInt32BE(i + 1, i * 8 + 4);
  c.sock.write(flood);
  // A length below the header cannot be skipped: the connection is closed.
  c.send('01020004 00000099');
  assert.ok(await c.waitClosed(10000), 'closed after a length of 4');
  const r = await pinging;
  assert.equal(parsePing(r.stdout).received, 60, r.stdout);
  const rows = await d.request('openflow', { format: 'json' }) as Record<string, number | string>[];
  const br = rows.find((x) => x.bridge === 'br-int') as Record<string, number>;
  assert.equal(br.closed_bad_length, 1);
  assert.ok(br.errors_sent >= 11, JSON.stringify(br));
  assert.equal(br.error_1_256, 1);
  assert.equal(br.error_2_3, 1);
  // And the daemon still serves ovs-ofctl.
  assert.match(ofctl(['dump-flows', mgmt('br-int')]), /priority=0 actions=NORMAL/);
  assert.ok(fs.existsSync(sockPath));
});

test('OpenFlow 1.4 --bundle add-flows: dump-flows -O OpenFlow14 prints what OVS prints', { skip: ovsSkip }, () => {
  const o = ovs as OvsOracle;
  const topo = loadTopology(path.join(__dirname, '../../../../examples/topologies/reference.yaml'));
  const nc = nodeConfig(topo, 'NN');
  for (const b of nc.bridges) {
    const file = flowsFile(`bundle-${b.name}.flows`, b.flows.map((f) => f.text).join('\n'));
    o.addBridge(b.name, []);
    o.ofctl(['--bundle', 'add-flows', `unix:${o.dir}/${b.name}.mgmt`, file]);
    ofctl(['del-flows', mgmt(b.name)]);
    ofctl(['--bundle', 'add-flows', mgmt(b.name), file]);
    for (const v of ['OpenFlow13', 'OpenFlow14']) {
      const want = normalize(o.ofctl(['-O', v, 'dump-flows', `unix:${o.dir}/${b.name}.mgmt`]));
      const got = normalize(ofctl(['-O', v, 'dump-flows', mgmt(b.name)]));
      assert.equal(got.length, b.flows.length, `${b.name} ${v}`);
      assert.deepEqual(got, want, `${b.name} ${v}`);
    }
    o.vsctl(['del-br', b.name]);
  }
});

test('importance over OpenFlow 1.4: add sets it, mod keeps it, re-add and replace-flows change it, as on OVS', { skip: ovsSkip }, () => {
  const o = ovs as OvsOracle;
  o.addBridge('br-ex', []);
  const ovsMgmt = `unix:${o.dir}/br-ex.mgmt`;
  ofctl(['del-flows', mgmt('br-ex')]);
  const file = flowsFile('importance.flows', 'priority=5,ip,importance=9 actions=output:1\ntable=2,arp actions=NORMAL\n');
  const steps: string[][] = [
    ['-O', 'OpenFlow14', 'add-flow', 'priority=5,importance=7,idle_timeout=50,send_flow_rem,ip actions=drop'],
    ['-O', 'OpenFlow14', 'add-flow', 'table=2,importance=65535,arp actions=NORMAL'],
    ['-O', 'OpenFlow14', 'mod-flows', 'priority=5,ip actions=output:1'],
    // OpenFlow 1.3's flow_mod has no importance field: ovs-ofctl sends none.
    ['-O', 'OpenFlow13', 'add-flow', 'priority=6,importance=8,tcp actions=drop'],
    ['-O', 'OpenFlow14', 'add-flow', 'table=2,arp actions=NORMAL'],
    ['-O', 'OpenFlow14', 'replace-flows', file],
  ];
  for (const s of steps) {
    o.ofctl([...s.slice(0, -1), ovsMgmt, s[s.length - 1]]);
    ofctl([...s.slice(0, -1), mgmt('br-ex'), s[s.length - 1]]);
    const want = normalize(o.ofctl(['-O', 'OpenFlow14', 'dump-flows', ovsMgmt]));
    assert.deepEqual(normalize(ofctl(['-O', 'OpenFlow14', 'dump-flows', mgmt('br-ex')])), want, s.join(' '));
  }
  assert.match(normalize(ofctl(['-O', 'OpenFlow14', 'dump-flows', mgmt('br-ex')])).join('\n'), /importance=9, priority=5,ip/);
  const other = flowsFile('importance-2.flows', 'priority=5,ip,importance=3 actions=output:1\ntable=2,arp actions=NORMAL\n');
  const diff = spawnSync('ovs-ofctl', ['-O', 'OpenFlow14', 'diff-flows', mgmt('br-ex'), other]).stdout.toString();
  assert.equal(diff, spawnSync('ovs-ofctl', ['-O', 'OpenFlow14', 'diff-flows', ovsMgmt, other]).stdout.toString());
  assert.match(diff, /^-priority=5,ip importance=9 actions=output:1\n\+priority=5,ip importance=3 actions=output:1\n$/);
  o.vsctl(['del-br', 'br-ex']);
});

test('a bundle with one flow flowd refuses adds none of its flows', { skip }, () => {
  ofctl(['del-flows', mgmt('br-tun')]);
  ofctl(['add-flow', mgmt('br-tun'), 'priority=1,actions=drop']);
  const before = normalize(ofctl(['dump-flows', mgmt('br-tun')]));
  // set_queue is an action flowd does not implement: the bundle must fail as a whole.
  const file = flowsFile('bad-bundle.flows', [
    'table=1,priority=10,in_port=1 actions=output:2',
    'table=1,priority=11,in_port=2 actions=output:1',
    'table=2,priority=5,ip actions=set_queue:3,output:1',
    'table=3,priority=5,arp actions=NORMAL',
  ].join('\n'));
  const r = spawnSync('ovs-ofctl', ['--bundle', 'add-flows', mgmt('br-tun'), file]);
  assert.notEqual(r.status, 0, 'ovs-ofctl reports the failed bundle');
  assert.match(r.stderr.toString(), /OFPBAC_BAD_TYPE|OFPBFC_MSG_FAILED|BAD_TYPE/);
  assert.deepEqual(normalize(ofctl(['dump-flows', mgmt('br-tun')])), before);
  // The same file without the refused flow goes in whole.
  const good = flowsFile('good-bundle.flows', fs.readFileSync(file, 'utf8').split('\n').filter((l) => !l.includes('set_queue')).join('\n'));
  ofctl(['--bundle', 'add-flows', mgmt('br-tun'), good]);
  assert.equal(normalize(ofctl(['dump-flows', mgmt('br-tun')])).length, 4);
});

test('OpenFlow 1.3 show, dump-ports and mod/del with cookie masks', { skip }, () => {
  const show = ofctl(['-O', 'OpenFlow13', 'show', mgmt('br-int')]);
  assert.match(show, /^OFPT_FEATURES_REPLY \(OF1.3\) \(xid=0x\w+\): dpid:[0-9a-f]{16}\nn_tables:254, n_buffers:0\n/);
  assert.match(show, /OFPST_PORT_DESC reply \(OF1.3\)[^]*\n 1\(of-a1\): addr:[^]*\n 2\(of-b1\): addr:[^]*\n LOCAL\(br-int\): addr:/);
  assert.match(ofctl(['-O', 'OpenFlow14', 'dump-ports', mgmt('br-int'), '1']), /^OFPST_PORT reply \(OF1.4\) \(xid=0x\w+\): 1 ports\n {2}port {2}1: rx pkts=\d+/);
  ofctl(['-O', 'OpenFlow13', 'add-flow', mgmt('br-ex'), 'table=7,cookie=0x1234,priority=3,tcp,tp_dst=80 actions=goto_table:9']);
  ofctl(['-O', 'OpenFlow13', 'add-flow', mgmt('br-ex'), 'table=7,cookie=0x5678,priority=3,udp actions=drop']);
  ofctl(['-O', 'OpenFlow13', 'mod-flows', mgmt('br-ex'), 'table=7,cookie=0x1234/-1 actions=output:3']);
  ofctl(['-O', 'OpenFlow13', 'del-flows', mgmt('br-ex'), 'table=7,cookie=0x5678/0xffff']);
  const dump = normalize(ofctl(['-O', 'OpenFlow13', 'dump-flows', mgmt('br-ex'), 'table=7']));
  assert.deepEqual(dump, ['cookie=0x1234, table=7, priority=3,tcp,tp_dst=80 actions=output:3']);
});
