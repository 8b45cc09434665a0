/**
 * Issue 8 item 6: the Vagrant lab, tested as far as this machine allows (it cannot boot VMs).
 *   - node-setup's pure parts: NIC renames by MAC, --nic parsing, the node config text, the
 *     underlay frame reader of `check` (exact bytes);
 *   - `vagrant validate` of the Vagrantfile for both providers (skipped without vagrant);
 *   - scripts/provision-node.sh run inside namespaces standing in for the C1 and C2 VMs
 *     (`ip netns exec fv-c1 scripts/provision-node.sh C1 reference.yaml --no-systemd ...`) and
 *     scripts/provision-upstream.sh in one standing in for the upstream VM: NICs found by MAC
 *     and renamed, flowd up with its bridges, VM namespaces made, pings across, idempotent
 *     re-run, `node-setup down`.
 * Everything made here is named `fv-`; daemons the scripts start are stopped by their PID
 * files, namespaces deleted, also when a test fails (after hook).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  NodeSetupError, nodeConfigText, parseNicArg, planNicRenames, tunnelEcho, vmNsName, wantedNics,
} from '../../src/lab/node-setup';
import { loadTopology } from '../../src/dvr/topology';
import { Lab, labSkipReason, parsePing, runAsync, RunResult, sleepMs } from '../helpers/netlab';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const TOPO = path.join(ROOT, 'examples', 'topologies', 'reference.yaml');
const NODE_SETUP = path.join(ROOT, 'dist', 'src', 'cli', 'node-setup.js');
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

// ---------------------------------------------------------------------------------------------
// Pure parts

test('NICs already named as the topology wants are not renamed', () => {
  const have = [{ name: 'eth0', mac: '52:54:00:aa:bb:cc' }, { name: 'eth1', mac: '52:54:00:00:00:11' }];
  assert.deepEqual(planNicRenames(have, [{ device: 'eth1', mac: '52:54:00:00:00:11' }]), []);
});

test('a NIC found by MAC is renamed directly when the name is free', () => {
  const have = [{ name: 'eth0', mac: '52:54:00:aa:bb:cc' }, { name: 'ens6', mac: '52:54:00:00:00:11' },
    { name: 'ens7', mac: '52:54:00:fe:00:11' }];
  assert.deepEqual(planNicRenames(have, [{ device: 'eth1', mac: '52:54:00:00:00:11' }, { device: 'ext1', mac: '52:54:00:fe:00:11' }]),
    [{ from: 'ens6', to: 'eth1' }, { from: 'ens7', to: 'ext1' }]);
});

test('two NICs swapping names go through temporary names', () => {
  const have = [{ name: 'eth1', mac: '52:54:00:fe:00:11' }, { name: 'eth2', mac: '52:54:00:00:00:11' }];
  assert.deepEqual(planNicRenames(have, [{ device: 'eth1', mac: '52:54:00:00:00:11' }, { device: 'eth2', mac: '52:54:00:fe:00:11' }]),
    [{ from: 'eth2', to: 'fdnic0' }, { from: 'eth1', to: 'fdnic1' }, { from: 'fdnic0', to: 'eth1' }, { from: 'fdnic1', to: 'eth2' }]);
});

test('a missing MAC, a name held by a NIC nobody moves, and a shared MAC are errors', () => {
  const have = [{ name: 'eth0', mac: '52:54:00:aa:bb:cc' }, { name: 'eth1', mac: '52:54:00:00:00:11' },
    { name: 'br0', mac: '52:54:00:00:00:11' }];
  assert.throws(() => planNicRenames(have, [{ device: 'eth1', mac: '52:54:00:00:00:99' }]),
    (e: Error) => e instanceof NodeSetupError && /no interface has MAC 52:54:00:00:00:99 \(wanted as eth1\)/.test(e.message));
  assert.throws(() => planNicRenames(have, [{ device: 'eth0', mac: '52:54:00:00:00:11' }]),
    /MAC 52:54:00:00:00:11 \(wanted as eth0\) is on eth1 and br0/);
  assert.throws(() => planNicRenames([{ name: 'eth0', mac: '52:54:00:aa:bb:cc' }, { name: 'ens6', mac: '52:54:00:00:00:11' }],
    [{ device: 'eth0', mac: '52:54:00:00:00:11' }]),
  /cannot name ens6 \(MAC 52:54:00:00:00:11\) eth0: eth0 is taken by an interface with MAC 52:54:00:aa:bb:cc/);
  assert.throws(() => planNicRenames(have, [{ device: 'x', mac: '52:54:00:aa:bb:cc' }, { device: 'x', mac: '52:54:00:00:00:11' }]),
    /two NICs are wanted as x/);
});

test('--nic DEV=MAC is parsed with the MAC in lower case; anything else is E_NODE_SETUP', () => {
  assert.deepEqual(parseNicArg('ext1=52:54:00:FE:00:11'), { device: 'ext1', mac: '52:54:00:fe:00:11' });
  for (const bad of ['ext1', 'ext1=52:54:00:fe:00', '=52:54:00:fe:00:11', 'averyveryverylongname=52:54:00:fe:00:11']) {
    assert.throws(() => parseNicArg(bad), (e: Error) => e instanceof NodeSetupError && e.code === 'E_NODE_SETUP', bad);
  }
});

test('the node wants its underlay NIC by the topology MAC, plus the --nic ones', () => {
  const t = loadTopology(TOPO);
  const c1 = t.nodes.find((n) => n.name === 'C1')!;
  assert.deepEqual(wantedNics(c1, [{ device: 'ext1', mac: '52:54:00:fe:00:11' }]),
    [{ device: 'eth1', mac: '52:54:00:00:00:11' }, { device: 'ext1', mac: '52:54:00:fe:00:11' }]);
  assert.throws(() => wantedNics(c1, [{ device: 'eth1', mac: '52:54:00:00:00:99' }]), /eth1 is wanted with two MACs/);
});

test('VM namespaces are <prefix><port in lower case> (fl-vm1 as in the lab); names > 15 characters are refused', () => {
  assert.equal(vmNsName('fl-', 'VM1'), 'fl-vm1');
  assert.equal(vmNsName('fv-', 'VM2'), 'fv-vm2');
  assert.throws(() => vmNsName('fl-', 'a-very-long-vm-name'), /longer than 15 characters/);
});

test('the node config is the one the lab writes: node, topology, control socket, DHCP agent names', () => {
  assert.equal(nodeConfigText('C1', '/vagrant/examples/topologies/reference.yaml', '/run/flowd/flowd.sock'),
    'node: C1\ntopology: /vagrant/examples/topologies/reference.yaml\ncontrol_socket: /run/flowd/flowd.sock\n' +
    'dhcp: { namespace_prefix: fl-, state_dir: /run/flowd/dhcp }\n');
});

// VM1 -> VM2 routed on C1 as dvr-reference.md has it, 2-byte ICMP payload.
const VXLAN_ECHO = `
  525400000012 525400000011 0800
  45000058 0000 4000 4011 0000 c0a8640b c0a8640c
  c350 12b5 0044 0000
  08000000 0003ea00
  fa163e000220 fa163f000011 0800
  45000020 0001 4000 3f01 0000 0a00010a 0a000214
  0800 0000 0001 0001 abcd`;

test('check reads a VXLAN echo on the underlay: outer MACs/IPs, VNI 1002, inner MACs/IPs, TTL 63', () => {
  assert.deepEqual(tunnelEcho(hex(VXLAN_ECHO)), {
    outerSrcMac: '52:54:00:00:00:11', outerDstMac: '52:54:00:00:00:12', outerSrcIp: '192.168.100.11', outerDstIp: '192.168.100.12',
    kind: 'vxlan', id: 1002, innerSrcMac: 'fa:16:3f:00:00:11', innerDstMac: 'fa:16:3e:00:02:20',
    innerSrcIp: '10.0.1.10', innerDstIp: '10.0.2.20', ttl: 63, icmpType: 8,
  });
});

test('check reads a GRE (key bit, 0x6558) echo with key 1002; other frames are not echoes', () => {
  const gre = hex(`
    525400000012 525400000011 0800
    45000048 0000 4000 402f 0000 c0a8640b c0a8640c
    2000 6558 000003ea
    fa163e000220 fa163f000011 0800
    45000020 0001 4000 3f01 0000 0a00010a 0a000214
    0000 0000 0001 0001 abcd`);
  const e = tunnelEcho(gre);
  assert.equal(e?.kind, 'gre');
  assert.equal(e?.id, 1002);
  assert.equal(e?.icmpType, 0);
  const noKey = gre.slice();
  noKey[34] = 0x00; // K bit clear: flowd's GRE always carries the key (RFC 2890 s2.1)
  assert.equal(tunnelEcho(noKey), null);
  assert.equal(tunnelEcho(hex(VXLAN_ECHO).subarray(0, 60)), null, 'truncated');
  const arp = hex('ffffffffffff 525400000011 0806 0001 0800 0604 0001 525400000011 c0a8640b 000000000000 c0a8640c');
  assert.equal(tunnelEcho(arp), null);
});

// ---------------------------------------------------------------------------------------------
// vagrant validate

const hasVagrant = spawnSync('sh', ['-c', 'command -v vagrant'], { stdio: 'ignore' }).status === 0;
const hasLibvirtPlugin = hasVagrant &&
  /vagrant-libvirt/.test(spawnSync('vagrant', ['plugin', 'list'], { encoding: 'utf8' }).stdout ?? '');

function vagrantValidate(env: NodeJS.ProcessEnv, dotDir: string): Promise<RunResult> {
  return runAsync('env', [...Object.entries({ ...env, VAGRANT_DOTFILE_PATH: dotDir }).map(([k, v]) => `${k}=${v ?? ''}`),
    'sh', '-c', `cd '${ROOT}' && vagrant validate`], 120000);
}

test('vagrant validate passes for libvirt, VirtualBox, the GRE topology and FLOWD_STORE=etcd', { skip: hasVagrant ? false : 'vagrant is not installed (apt-get install vagrant)' }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fv-vagrant-'));
  try {
    // VirtualBox itself is not in Debian 12; its provider validates its config only when
    // VBoxManage answers --version, so a stand-in answers that and nothing else.
    const bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'VBoxManage'), '#!/bin/sh\ncase "$*" in *--version*) echo 7.0.14r161095;; *) exit 1;; esac\n', { mode: 0o755 });
    const runs: [string, NodeJS.ProcessEnv][] = [
      ['virtualbox', { PATH: `${bin}:${process.env.PATH ?? ''}`, VAGRANT_DEFAULT_PROVIDER: 'virtualbox' }],
      ['virtualbox, reference-gre.yaml', { PATH: `${bin}:${process.env.PATH ?? ''}`, VAGRANT_DEFAULT_PROVIDER: 'virtualbox',
        FLOWD_TOPOLOGY: 'examples/topologies/reference-gre.yaml' }],
      // The topology from etcd: an etcd VM on the underlay, the nodes pointed at it (issue 20).
      ['virtualbox, FLOWD_STORE=etcd', { PATH: `${bin}:${process.env.PATH ?? ''}`, VAGRANT_DEFAULT_PROVIDER: 'virtualbox',
        FLOWD_STORE: 'etcd' }],
    ];
    if (hasLibvirtPlugin) runs.push(['libvirt', { PATH: process.env.PATH ?? '', VAGRANT_DEFAULT_PROVIDER: 'libvirt' }]);
    else runs.push(['no provider config (vagrant-libvirt is not installed)', { PATH: process.env.PATH ?? '' }]);
    const results = await Promise.all(runs.map(([, env], i) => vagrantValidate({ HOME: process.env.HOME ?? '/root', ...env },
      path.join(tmp, `dot${i}`))));
    results.forEach((r, i) => {
      assert.equal(r.status, 0, `${runs[i][0]}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /Vagrantfile validated successfully/, runs[i][0]);
    });
    // A store the Vagrantfile does not know is refused with the reason.
    const bad = await vagrantValidate({ HOME: process.env.HOME ?? '/root', PATH: `${bin}:${process.env.PATH ?? ''}`,
      VAGRANT_DEFAULT_PROVIDER: 'virtualbox', FLOWD_STORE: 'zookeeper' }, path.join(tmp, 'dot-bad'));
    assert.notEqual(bad.status, 0);
    assert.match(`${bad.stdout}${bad.stderr}`, /FLOWD_STORE=zookeeper: expected file or etcd/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Provisioning against namespaces

const skipNs = labSkipReason(['tcpdump', 'ping', 'nsenter']) ||
  (fs.existsSync(NODE_SETUP) ? false : `${NODE_SETUP} missing: run npx tsc -p .`);
const lab = new Lab('fv-');
const stateDirs: string[] = [];
const madeVmNs = ['fv-vm1', 'fv-vm2'];

async function stopByPidFile(file: string): Promise<void> {
  let pid = 0;
  try { pid = Number(fs.readFileSync(file, 'utf8').trim()); } catch { return; }
  if (!(pid > 0)) return;
  // Only a flowd (the pid file could be stale): check its command line first.
  let cmd = '';
  try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { return; }
  if (!cmd.includes('flowd.js')) return;
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  for (let i = 0; i < 50; i++) {
    try { process.kill(pid, 0); } catch { return; }
    await sleepMs(100);
  }
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
}

after(async () => {
  for (const d of stateDirs) for (const f of ['C1.pid', 'C2.pid']) await stopByPidFile(path.join(d, f));
  for (const ns of madeVmNs) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  await lab.cleanup();
});

/** fv-ul / fv-ext bridges; fv-c1, fv-c2 with NICs named fv-nic1/2 (MACs as the Vagrantfile sets them); fv-up. */
function buildStandIns(): void {
  for (const s of ['ul', 'ext']) {
    const ns = lab.addNs(s);
    lab.exec(ns, 'ip', 'link', 'add', 'br0', 'type', 'bridge');
    lab.exec(ns, 'ip', 'link', 'set', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    lab.exec(ns, 'ip', 'link', 'set', 'br0', 'up');
  }
  for (const n of ['1', '2']) {
    const ns = lab.addNs(`c${n}`);
    lab.veth('nic1', ns, `ulc${n}`, 'fv-ul', { macA: `52:54:00:00:00:1${n}` });
    lab.veth('nic2', ns, `exc${n}`, 'fv-ext', { macA: `52:54:00:fe:00:1${n}` });
    lab.exec('fv-ul', 'ip', 'link', 'set', `fv-ulc${n}`, 'master', 'br0');
    lab.exec('fv-ext', 'ip', 'link', 'set', `fv-exc${n}`, 'master', 'br0');
  }
  lab.addNs('up');
  lab.veth('upn', 'fv-up', 'exup', 'fv-ext', { macA: '52:54:00:ff:00:01' });
  lab.exec('fv-ext', 'ip', 'link', 'set', 'fv-exup', 'master', 'br0');
}

function provision(node: string, n: string): Promise<RunResult> {
  const dir = path.join(lab.dir, `state-${node}`);
  if (!stateDirs.includes(dir)) stateDirs.push(dir);
  return runAsync('ip', ['netns', 'exec', `fv-c${n}`, 'bash', path.join(ROOT, 'scripts', 'provision-node.sh'), node, TOPO,
    '--nic', `ext1=52:54:00:fe:00:1${n}`, '--ns-prefix', 'fv-', '--state-dir', dir, '--no-systemd', '--skip-setup'], 60000);
}

function linkInfo(ns: string, dev: string): { address: string; mtu: number; addrs: string[] } {
  const j = JSON.parse(lab.exec(ns, 'ip', '-j', 'addr', 'show', 'dev', dev)) as
    { address: string; mtu: number; addr_info: { family: string; local: string; prefixlen: number }[] }[];
  return { address: j[0].address, mtu: j[0].mtu, addrs: j[0].addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`) };
}

test('provision-node.sh in namespaces standing in for the C1 and C2 VMs: NICs by MAC, flowd, VM namespaces, pings', { skip: skipNs }, async () => {
  buildStandIns();
  const [r1, r2] = await Promise.all([provision('C1', '1'), provision('C2', '2')]);
  assert.equal(r1.status, 0, `C1: ${r1.stdout}${r1.stderr}`);
  assert.equal(r2.status, 0, `C2: ${r2.stdout}${r2.stderr}`);
  const s1 = path.join(lab.dir, 'state-C1');
  assert.match(r1.stdout, /node-setup: renamed fv-nic1 -> eth1\n/);
  assert.match(r1.stdout, /node-setup: renamed fv-nic2 -> ext1\n/);
  assert.match(r1.stdout, /node-setup: made fv-vm1: eth0 fa:16:3e:00:01:10 10\.0\.1\.10 <-> vm1-host\n/);
  assert.match(r1.stdout, /flowd of C1 is up \(pid \d+/);
  assert.equal(fs.readFileSync(path.join(s1, 'C1.yaml'), 'utf8'), nodeConfigText('C1', TOPO, path.join(s1, 'flowd.sock'), 'fv-', s1));

  // The daemon's bridges, as `flowctl show` printed them.
  for (const want of ['br-int:', '(vm1-host): afpacket tag=1', 'br-tun:', '(vxlan-c0a8640c): vxlan', 'br-ex:', '(ext1): afpacket']) {
    assert.ok(r1.stdout.includes(want), `show of C1 lacks ${want}:\n${r1.stdout}`);
  }
  // The node's NICs, named and addressed from the topology.
  assert.deepEqual(linkInfo('fv-c1', 'eth1'), { address: '52:54:00:00:00:11', mtu: 1500, addrs: ['192.168.100.11/24'] });
  assert.deepEqual(linkInfo('fv-c1', 'ext1'), { address: '52:54:00:fe:00:11', mtu: 1500, addrs: [] });
  assert.deepEqual(linkInfo('fv-vm1', 'eth0'), { address: 'fa:16:3e:00:01:10', mtu: 1450, addrs: ['10.0.1.10/24'] });
  assert.match(lab.exec('fv-vm1', 'ip', 'route'), /^default via 10\.0\.1\.1 dev eth0/m);
  assert.deepEqual(linkInfo('fv-vm2', 'eth0'), { address: 'fa:16:3e:00:02:20', mtu: 1450, addrs: ['10.0.2.20/24'] });

  // The upstream stand-in, by the Vagrantfile's values for it.
  const up = await runAsync('ip', ['netns', 'exec', 'fv-up', 'bash', path.join(ROOT, 'scripts', 'provision-upstream.sh'),
    '--address', '203.0.113.1/24', '--mac', '52:54:00:FF:00:01', '--skip-install']);
  assert.equal(up.status, 0, up.stderr);
  assert.equal(up.stdout, 'provision-upstream: fv-upn 52:54:00:ff:00:01 203.0.113.1/24\n');
  const upMissing = await runAsync('ip', ['netns', 'exec', 'fv-up', 'bash', path.join(ROOT, 'scripts', 'provision-upstream.sh'),
    '--address', '203.0.113.1/24', '--mac', '52:54:00:ff:00:99', '--skip-install']);
  assert.equal(upMissing.status, 1);
  assert.match(upMissing.stderr, /no interface has MAC 52:54:00:ff:00:99/);

  // East-west across the two stand-ins (routed on C1, VXLAN 1002 on the underlay).
  // -w: wait for every reply (a busy machine may send the last one later than -W's 2 x RTT), at most the deadline.
  const p = parsePing((await lab.runAsync('fv-vm1', 'ping', ['-c', '3', '-i', '0.2', '-w', '30', '10.0.2.20'])).stdout);
  assert.equal(p.received, 3, 'VM1 -> VM2 across the stand-in underlay');

  // node-setup check on C1 (the node-local half of lab check; NN is not provisioned here).
  const chk = await runAsync('ip', ['netns', 'exec', 'fv-c1', process.execPath, NODE_SETUP, 'check', '--node', 'C1',
    '--topology', TOPO, '--ns-prefix', 'fv-', '--state-dir', s1, '--no-external'], 60000);
  for (const line of [
    `PASS  flowd of C1 answers on ${path.join(s1, 'flowd.sock')} with br-int, br-tun, br-ex`,
    'PASS  VM1: fv-vm1 eth0 is fa:16:3e:00:01:10 10.0.1.10: eth0 fa:16:3e:00:01:10',
    'PASS  VM1 -> VM2 10.0.2.20 on C2: 3/3 replies',
    'PASS  C1 underlay: VM1 -> VM2 request is 52:54:00:00:00:11 -> 52:54:00:00:00:12, 192.168.100.11 -> 192.168.100.12, ' +
      'vxlan 1002, inner fa:16:3f:00:00:11 -> fa:16:3e:00:02:20, TTL 63',
    'PASS  C1 underlay: no frame with a router interface MAC as source',
  ]) assert.ok(chk.stdout.split('\n').includes(line), `check lacks "${line}":\n${chk.stdout}${chk.stderr}`);
});

test('VM1 gets an echo reply from its gateway 10.0.1.1 (router flows on the provisioned C1)', {
  skip: skipNs,
}, async () => {
  const p = parsePing((await lab.runAsync('fv-vm1', 'ping', ['-c', '2', '-i', '0.2', '-w', '30', '10.0.1.1'])).stdout);
  assert.equal(p.received, 2);
});

test('provision-node.sh again: the earlier flowd is stopped by its PID, NICs and VM namespace kept; node-setup down removes them', { skip: skipNs }, async () => {
  const s1 = path.join(lab.dir, 'state-C1');
  const oldPid = Number(fs.readFileSync(path.join(s1, 'C1.pid'), 'utf8'));
  const r = await provision('C1', '1');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`stopping the earlier flowd of C1 \\(pid ${oldPid}\\)`));
  assert.match(r.stdout, /node-setup: kept fv-vm1 \(vm1-host\)\n/);
  assert.doesNotMatch(r.stdout, /renamed|wrote/);
  const newPid = Number(fs.readFileSync(path.join(s1, 'C1.pid'), 'utf8'));
  assert.notEqual(newPid, oldPid);
  assert.throws(() => process.kill(oldPid, 0), 'the earlier daemon is gone');
  const p = parsePing((await lab.runAsync('fv-vm1', 'ping', ['-c', '3', '-i', '0.2', '-w', '30', '10.0.2.20'])).stdout);
  assert.equal(p.received, 3, 'VM1 -> VM2 through the new daemon');

  await stopByPidFile(path.join(s1, 'C1.pid'));
  const d = await runAsync('ip', ['netns', 'exec', 'fv-c1', process.execPath, NODE_SETUP, 'down', '--node', 'C1',
    '--topology', TOPO, '--ns-prefix', 'fv-', '--state-dir', s1]);
  assert.equal(d.status, 0, d.stderr);
  assert.equal(d.stdout, `node-setup: deleted vm1-host\nnode-setup: deleted namespace fv-vm1\nnode-setup: removed ${path.join(s1, 'C1.yaml')}\n`);
  assert.equal(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').some((l) => l.startsWith('fv-vm1')), false);
  assert.notEqual(lab.run('fv-c1', 'ip', 'link', 'show', 'vm1-host').status, 0, 'the host end is gone');
});

const hasAnalyze = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { stdio: 'ignore' }).status === 0;

test('the flowd@NODE unit provision-node.sh writes passes systemd-analyze verify; its environment names the node, NICs and etcd store', {
  skip: hasAnalyze ? false : 'systemd-analyze is not installed',
}, async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fv-unit-'));
  try {
    // --store: the daemon reads the topology from etcd (the Vagrant lab with FLOWD_STORE=etcd).
    const r = await runAsync('bash', [path.join(ROOT, 'scripts', 'provision-node.sh'), 'C1', TOPO, '--nic', 'ext1=52:54:00:fe:00:11',
      '--state-dir', path.join(root, 'run'), '--unit-root', root, '--store', 'etcd://192.168.100.250:2379/flowd']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const unitDir = path.join(root, 'etc', 'systemd', 'system');
    const unit = fs.readFileSync(path.join(unitDir, 'flowd@.service'), 'utf8');
    assert.match(unit, /^EnvironmentFile=\/etc\/flowd\/%i\.env$/m);
    assert.match(unit, new RegExp(`^ExecStartPre=\\S+ ${ROOT}/dist/src/cli/node-setup\\.js up \\$FLOWD_SETUP_ARGS$`, 'm'));
    assert.match(unit, new RegExp(`^ExecStart=\\S+ ${ROOT}/dist/src/cli/flowd\\.js --config ${root}/run/%i\\.yaml --pid-file ${root}/run/%i\\.pid \\$FLOWD_ARGS$`, 'm'));
    assert.equal(fs.readFileSync(path.join(root, 'etc', 'flowd', 'C1.env'), 'utf8'),
      '# written by scripts/provision-node.sh; flowd@C1 reads it\n' +
      `FLOWD_SETUP_ARGS="--node C1 --topology ${TOPO} --ns-prefix fl- --state-dir ${root}/run --socket ${root}/run/flowd.sock --nic ext1=52:54:00:fe:00:11"\n` +
      'FLOWD_ARGS="--topology etcd://192.168.100.250:2379/flowd"\n');
    fs.symlinkSync('flowd@.service', path.join(unitDir, 'flowd@C1.service'));
    const v = spawnSync('systemd-analyze', ['verify', path.join(unitDir, 'flowd@C1.service')], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stderr, '');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
