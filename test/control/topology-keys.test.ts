/**
 * control/topology-keys.ts without etcd: a topology's keys and back. Security groups are named
 * per project (Neutron gives every project its own `default`), so their keys carry the project:
 * two projects' groups of one name are two keys, and both come back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { assembleTopology, topologyToKeys } from '../../src/control/topology-keys';
import { ConfigError } from '../../src/errors';
import { parseTopology } from '../../src/dvr/topology';
import { fipPortsPerRouter } from '../helpers/topology-gen';

const SG = path.resolve(__dirname, '../../../examples/topologies/security-groups.yaml');

/** security-groups.yaml with a `default` group declared in both of its projects. */
function twoDefaults(): string {
  const rule = '      - { direction: egress, ethertype: IPv4, protocol: any }\n';
  return fs.readFileSync(SG, 'utf8').replace('security_groups:\n',
    `security_groups:\n  - name: default\n    project: demo\n    rules:\n${rule}  - name: default\n    project: other\n    rules:\n${rule}` +
    '      - { direction: ingress, ethertype: IPv4, protocol: icmp }\n');
}

test('groups of one name in two projects are two keys, and both come back', () => {
  const { keys } = topologyToKeys('sg.yaml', twoDefaults());
  const groups = [...keys.keys()].filter((k) => k.startsWith('security_groups/')).sort();
  assert.deepEqual(groups, ['security_groups/demo/app', 'security_groups/demo/default', 'security_groups/demo/web', 'security_groups/other/default']);
  const topo = assembleTopology('etcd://127.0.0.1:2379/t', keys);
  const summary = (gs: typeof topo.securityGroups): string[] => gs.map((g) => `${g.project}/${g.name}:${g.rules.length} rules`).sort();
  assert.deepEqual(summary(topo.securityGroups), summary(parseTopology('sg.yaml', twoDefaults()).securityGroups));
  assert.deepEqual(summary(topo.securityGroups).filter((x) => x.includes('/default')), ['demo/default:1 rules', 'other/default:2 rules']);
});

test('a group key must name the value\'s project and name; a key without the project is not a topology key', () => {
  const { keys } = topologyToKeys('sg.yaml', twoDefaults());
  const value = keys.get('security_groups/other/default') as string;
  const moved = new Map(keys);
  moved.delete('security_groups/other/default');
  moved.set('security_groups/demo2/default', value);
  assert.throws(() => assembleTopology('etcd://h:1/t', moved), (e: Error) => e instanceof ConfigError &&
    /etcd:\/\/h:1\/t\/topology\/security_groups\/demo2\/default:1: name: the key names "demo2\/default" but the value's project\/name is "other\/default"/.test(e.message));
  const flat = new Map(keys);
  flat.delete('security_groups/other/default');
  flat.set('security_groups/default', value);
  assert.throws(() => assembleTopology('etcd://h:1/t', flat), /not a topology key/);
});

test('a file in a deprecated shape gives its keys as written and the deprecation messages a push prints', () => {
  const REF = path.resolve(__dirname, '../../../examples/topologies/reference.yaml');
  const text = fs.readFileSync(REF, 'utf8');
  assert.deepEqual(topologyToKeys('ref.yaml', text).deprecations, []);
  const old = topologyToKeys('ref.yaml', fipPortsPerRouter(text));
  assert.equal(old.deprecations.length, 3);
  assert.match(old.deprecations[0], /^ref\.yaml:\d+: routers\[R\]\.fip_ports\[0\]: deprecated: .*under the top-level fip_agent_gateways instead$/);
  assert.match(old.keys.get('routers/R') ?? '', /fip_ports:/);
  assert.equal(old.keys.has('fip_agent_gateways/203.0.113.11'), false);
});
