/**
 * etcd URLs (control/etcd-client.ts parseEtcdUrl) and node configs naming one (control/config.ts):
 * no etcd needed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEtcdUrl, prefixEnd } from '../../src/control/etcd-client';
import { parseConfig } from '../../src/control/config';

test('etcd URLs: members and prefix; bad ones named', () => {
  const u = parseEtcdUrl('etcd://10.0.0.5:2379,10.0.0.6:2379/flowd/');
  assert.deepEqual(u.endpoints, [{ host: '10.0.0.5', port: 2379 }, { host: '10.0.0.6', port: 2379 }]);
  assert.equal(u.prefix, '/flowd');
  assert.equal(parseEtcdUrl('etcd://localhost:2379').prefix, '/flowd');
  assert.throws(() => parseEtcdUrl('etcd://10.0.0.5/flowd'), /"10\.0\.0\.5" is not HOST:PORT/);
  assert.throws(() => parseEtcdUrl('etcd://10.0.0.5:99999/flowd'), /not HOST:PORT/);
  assert.throws(() => parseEtcdUrl('etcd://10.0.0.5:2379/'), /prefix must not be empty/);
  assert.equal(Buffer.from(prefixEnd('/flowd/topology/'), 'base64').toString(), '/flowd/topology0');
});

test('a node config may name an etcd URL as its topology (kept as is), or have it given on the command line', () => {
  const c = parseConfig('/etc/flowd/c1.yaml', 'node: C1\ntopology: etcd://127.0.0.1:2379/flowd\n');
  assert.equal(c.topology, 'etcd://127.0.0.1:2379/flowd');
  const f = parseConfig('/etc/flowd/c1.yaml', 'node: C1\ntopology: ref.yaml\n');
  assert.equal(f.topology, '/etc/flowd/ref.yaml');
  const o = parseConfig('/etc/flowd/c1.yaml', 'node: C1\ncontrol_socket: /run/c1.sock\n', 'etcd://127.0.0.1:2379/x');
  assert.equal(o.topology, 'etcd://127.0.0.1:2379/x');
  assert.throws(() => parseConfig('/etc/flowd/c1.yaml', 'control_socket: /run/c1.sock\n', 'etcd://127.0.0.1:2379/x'), /node: is required with "topology"/);
});
