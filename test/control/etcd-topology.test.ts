/**
 * The topology in a real etcd (started by the test on loopback, test/helpers/etcd.ts): push and
 * get (control/topology-push.ts), the watched source the daemon uses (control/topology-etcd.ts)
 * with its validation, reconnect and resync, a three-member cluster losing one member, and the
 * agents' lease-bound state (control/agent-state.ts). What is asserted is what a user sees:
 * the keys in etcd (as etcdctl lists them), the flows generated for a node, the log lines.
 * Skips with the reason when etcd is not installed.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EtcdCluster, etcdSkipReason } from '../helpers/etcd';
import { EtcdClient, parseEtcdUrl } from '../../src/control/etcd-client';
import { getTopology, pushTopology } from '../../src/control/topology-push';
import { EtcdTopologySource } from '../../src/control/topology-etcd';
import { parseTopology, Topology } from '../../src/dvr/topology';
import { nodeConfig } from '../../src/dvr/node-config';
import { AgentReporter, AgentState, formatAgents, listAgents } from '../../src/control/agent-state';
import { ConfigError } from '../../src/errors';
import { waitFor } from '../helpers/wait';

const skip = etcdSkipReason();
const REF = path.resolve(__dirname, '../../../examples/topologies/reference.yaml');
const clusters: EtcdCluster[] = [];

after(async () => {
  for (const c of clusters) await c.cleanup();
});

async function cluster(base: number, n = 1): Promise<EtcdCluster> {
  const c = new EtcdCluster(base, n);
  clusters.push(c);
  await c.start();
  return c;
}

/** Every node's flows, as text, from a topology. */
function flowsOf(t: Topology): string {
  return t.nodes.map((n) => nodeConfig(t, n.name).bridges.map((b) => `${n.name}/${b.name}\n${b.flows.map((f) => f.text).sort().join('\n')}`).join('\n')).join('\n');
}

/**
 * A source and the changes/rejections it reported, with waits for the next one (`next`) and
 * for the last change to show what the test made (`until`): etcd may hand events made while a
 * member was away in one batch or in several, so a test waits for the topology it expects.
 */
function watchSource(url: string): {
  src: EtcdTopologySource; changes: Topology[]; rejects: string[];
  next: (n: number, what: 'change' | 'reject') => Promise<void>;
  until: (what: string, ok: (last: Topology) => boolean) => Promise<void>;
} {
  const src = new EtcdTopologySource(url);
  const changes: Topology[] = [];
  const rejects: string[] = [];
  const seen = (): string => `changes ${changes.length} (last ports ${changes.length === 0 ? '-' : changes[changes.length - 1].ports.map((p) => p.name).join(',')}), ` +
    `rejects ${rejects.join(' | ') || '-'}, watching ${src.watching}`;
  const next = async (n: number, what: 'change' | 'reject'): Promise<void> => {
    await waitFor(`${what} #${n}`, () => (what === 'change' ? changes.length : rejects.length) >= n, { detail: seen });
  };
  const until = async (what: string, ok: (last: Topology) => boolean): Promise<void> => {
    await waitFor(what, () => changes.length > 0 && ok(changes[changes.length - 1]), { detail: seen });
  };
  return { src, changes, rejects, next, until };
}

function portYaml(name: string, mac: string, ip: string, node: string): string {
  return `name: ${name}\nmac: ${mac}\nnetwork: A\nfixed_ips: [${ip}]\nbinding:host_id: ${node}\ndevice: tap-${name.toLowerCase()}\n`;
}

test('push writes one key per entry in one transaction, only what differs; get gives it back', { skip }, async () => {
  const c = await cluster(24311);
  const url = c.url('et-push');
  const text = fs.readFileSync(REF, 'utf8');
  const r1 = await pushTopology(url, REF, text);
  assert.deepEqual(r1.warnings, []);
  assert.deepEqual(r1.put.sort(), ['dhcp_agents_per_network', 'dvr_mac_base',
    'fip_agent_gateways/203.0.113.11', 'fip_agent_gateways/203.0.113.12', 'fip_agent_gateways/203.0.113.13', 'floating_ips/203.0.113.50', 'networks/A', 'networks/B', 'networks/public',
    'nodes/C1', 'nodes/C2', 'nodes/NN', 'ports/VM1', 'ports/VM2', 'routers/R', 'security_groups/admin/default', 'subnets/A-v4', 'subnets/B-v4', 'subnets/public-v4']);
  const listed = spawnSync('etcdctl', ['--endpoints', `127.0.0.1:${c.clientPort(0)}`, 'get', '--prefix', '/et-push/topology/', '--keys-only'], { encoding: 'utf8' });
  if (listed.status === 0) assert.equal(listed.stdout.split('\n').filter((l) => l !== '').length, 19, listed.stdout);

  // Unchanged: nothing written, same revision.
  const r2 = await pushTopology(url, REF, text);
  assert.deepEqual([r2.put.length, r2.deleted.length, r2.unchanged, r2.revision], [0, 0, 19, r1.revision]);

  // get round-trips: same flows on every node, and pushing its output changes nothing.
  const got = await getTopology(url);
  assert.equal(flowsOf(parseTopology('got', got.text)), flowsOf(parseTopology(REF, text)));
  const r3 = await pushTopology(url, 'got.yaml', got.text);
  assert.equal(r3.put.length + r3.deleted.length, 0);

  // One port moved and one removed: two keys, one transaction (one revision step).
  const moved = text.replace('binding:host_id: C1, device: vm1-host', 'binding:host_id: C2, device: vm1-host')
    .replace(/  - \{ name: VM2,[^}]*\}\n/s, '').replace(/floating_ips:\n(  - .*\n)+/, '');
  const r4 = await pushTopology(url, 'moved.yaml', moved);
  assert.deepEqual(r4.put, ['ports/VM1']);
  assert.deepEqual(r4.deleted.sort(), ['floating_ips/203.0.113.50', 'ports/VM2']);
  assert.equal(r4.revision, r1.revision + 1, 'one transaction');

  // An invalid file is refused with the file's reason and nothing is written.
  const bad = text.replace('mac: fa:16:3e:00:01:10', 'mac: fa:16:3e:00:01');
  await assert.rejects(pushTopology(url, 'bad.yaml', bad), (e: Error) => e instanceof ConfigError && /bad\.yaml:\d+: ports\[VM1\]\.mac/.test(e.message));
  assert.equal((await getTopology(url)).revision, r4.revision);
});

test('the watched source: changes arrive as validated topologies, bad values refused with the key and field', { skip }, async () => {
  const c = await cluster(24321);
  const url = c.url('et-watch');
  await pushTopology(url, REF, fs.readFileSync(REF, 'utf8'));
  const { src, changes, rejects, next } = watchSource(url);
  const t0 = await src.load();
  assert.deepEqual(t0.ports.map((p) => p.name), ['VM1', 'VM2']);
  src.watch({ onChange: (t) => changes.push(t), onReject: (e) => rejects.push(e.message) });
  const kv = new EtcdClient(parseEtcdUrl(url).endpoints);
  try {
    // Added.
    await kv.put('/et-watch/topology/ports/VM3', portYaml('VM3', 'fa:16:3e:00:01:30', '10.0.1.30', 'C2'));
    await next(1, 'change');
    assert.deepEqual(changes[0].ports.map((p) => `${p.name}@${p.node}`), ['VM1@C1', 'VM2@C2', 'VM3@C2']);
    // Moved.
    await kv.put('/et-watch/topology/ports/VM3', portYaml('VM3', 'fa:16:3e:00:01:30', '10.0.1.30', 'C1'));
    await next(2, 'change');
    assert.equal(changes[1].ports.find((p) => p.name === 'VM3')?.node, 'C1');
    // Bad MAC: refused, with the key, the field and the reason.
    await kv.put('/et-watch/topology/ports/VM3', portYaml('VM3', 'fa:16:3e:00:01', '10.0.1.30', 'C1'));
    await next(1, 'reject');
    assert.match(rejects[0], /^etcd:\/\/127\.0\.0\.1:24321\/et-watch\/topology\/ports\/VM3:2: ports\[VM3\]\.mac: /);
    // A duplicate IP across keys names the second entry.
    await kv.put('/et-watch/topology/ports/VM3', portYaml('VM3', 'fa:16:3e:00:01:30', '10.0.1.10', 'C1'));
    await next(2, 'reject');
    assert.match(rejects[1], /ports\/VM3:4: ports\[VM3\]\.fixed_ips\[0\]: IP 10\.0\.1\.10 is already used by/);
    // A key whose name disagrees with its value.
    await kv.put('/et-watch/topology/ports/VM4', portYaml('VM5', 'fa:16:3e:00:01:40', '10.0.1.40', 'C1'));
    await next(3, 'reject');
    assert.match(rejects[2], /ports\/VM4:1: name: the key names "VM4" but the value's name is "VM5"/);
    // Fixed: the next change is whole again.
    await kv.deleteKey('/et-watch/topology/ports/VM4');
    await kv.put('/et-watch/topology/ports/VM3', portYaml('VM3', 'fa:16:3e:00:01:30', '10.0.1.30', 'C1'));
    await next(3, 'change');
    // Removed.
    await kv.deleteKey('/et-watch/topology/ports/VM3');
    await next(4, 'change');
    assert.deepEqual(changes[3].ports.map((p) => p.name), ['VM1', 'VM2']);
  } finally {
    src.close();
  }
});

test('etcd stopped and restarted: the source reconnects and resyncs from the revision it had', { skip, timeout: 60000 }, async (t) => {
  const c = await cluster(24331, 3);
  // The source talks to member 0 only, so stopping it cuts the source off while the cluster writes on.
  const only0 = `etcd://127.0.0.1:${c.clientPort(0)}/et-fault`;
  const all = c.url('et-fault');
  await pushTopology(all, REF, fs.readFileSync(REF, 'utf8'));
  const { src, changes, until } = watchSource(only0);
  // A source left open keeps re-creating its watch: the file would never end after a failure.
  t.after(() => src.close());
  await src.load();
  const rev0 = src.revision;
  src.watch({ onChange: (t) => changes.push(t), onReject: () => undefined });
  await waitFor('the source watching member 0', () => src.watching);
  await c.stopMember(0);
  await waitFor('the source to see member 0 gone', () => !src.watching);
  const kv = new EtcdClient(parseEtcdUrl(all).endpoints);
  await kv.put('/et-fault/topology/ports/VM3', portYaml('VM3', 'fa:16:3e:00:01:30', '10.0.1.30', 'C1'));
  await kv.deleteKey('/et-fault/topology/ports/VM2');
  assert.equal(changes.length, 0, 'nothing arrives while the member is down');
  c.startMember(0);
  // The restarted member may replay the two changes as one batch or two: wait for both.
  await until('both changes made meanwhile applied (ports VM1, VM3)', (t) => t.ports.map((p) => p.name).join() === 'VM1,VM3');
  assert.ok(src.revision >= rev0 + 2);
  src.close();
});

test('three members, one lost: the source moves to another member and changes keep coming', { skip, timeout: 60000 }, async (t) => {
  const c = await cluster(24341, 3);
  const url = c.url('et-three');
  await pushTopology(url, REF, fs.readFileSync(REF, 'utf8'));
  const { src, changes, rejects, next } = watchSource(url);
  t.after(() => src.close());
  await src.load();
  src.watch({ onChange: (t) => changes.push(t), onReject: (e) => rejects.push(e.message) });
  await waitFor('the source watching a member', () => src.watching);
  await c.stopMember(0, 'SIGKILL');
  // When member 0 led, the two left elect a leader first; a write meanwhile fails after the
  // client's timeout on both (what a user's push would see): the test writes once they have one.
  await c.waitReady();
  const kv = new EtcdClient(parseEtcdUrl(url).endpoints);
  await kv.put('/et-three/topology/ports/VM3', portYaml('VM3', 'fa:16:3e:00:01:30', '10.0.1.30', 'C1'));
  await next(1, 'change');
  assert.deepEqual(changes[0].ports.map((p) => p.name), ['VM1', 'VM2', 'VM3']);
  // And a push through the URL naming the dead member still works.
  const r = await pushTopology(url, REF, fs.readFileSync(REF, 'utf8'));
  assert.deepEqual(r.deleted, ['ports/VM3']);
  await next(2, 'change');
  assert.equal(rejects.length, 0);
  src.close();
});

test('agent state: a lease-bound key per daemon, listed alive, gone when it stops', { skip, timeout: 30000 }, async () => {
  const c = await cluster(24351);
  const url = parseEtcdUrl(c.url('et-agents'));
  const client = new EtcdClient(url.endpoints);
  const state = (node: string): AgentState => ({
    node, alive: true, agent_mode: 'dvr', local_ip: '192.168.100.11', version: '0.1.0', pid: process.pid,
    started_at: new Date().toISOString(), reported_at: new Date().toISOString(), topology_revision: 7,
    counters: { bridges: 2, ports: 5, flows: 40, rx_packets: 3, tx_packets: 4, drops: 0 },
  });
  const a = new AgentReporter(client, url.prefix, 'C1', () => state('C1'));
  const b = new AgentReporter(client, url.prefix, 'C2', () => state('C2'));
  await a.report();
  await b.report();
  const agents = await listAgents(client, url.prefix);
  assert.deepEqual(agents.map((x) => x.node), ['C1', 'C2']);
  const table = formatAgents(agents, Date.now());
  assert.match(table, /^C1 +yes +dvr +192\.168\.100\.11 +0\.1\.0 +7 +0s ago +5 +40 +3 +4 +0$/m);
  const lease = (await client.rangePrefix(`${url.prefix}/agents/C1`)).kvs[0].lease;
  assert.notEqual(lease, '0', 'the key is bound to a lease');
  await a.stop();
  assert.deepEqual((await listAgents(client, url.prefix)).map((x) => x.node), ['C2'], 'a stopped agent disappears at once');
  await b.stop();
});
