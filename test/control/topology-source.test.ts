/**
 * The file topology source (control/topology-source.ts): the same contract as the etcd one
 * (test/control/etcd-topology.test.ts): a valid edit arrives as a topology, an invalid one as a
 * rejection naming file:line: field, and the next good edit arrives again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openTopologySource } from '../../src/control/topology-source';
import { Topology } from '../../src/dvr/topology';
import { waitFor } from '../helpers/wait';

const REF = path.resolve(__dirname, '../../../examples/topologies/reference.yaml');

const until = (what: string, ok: () => boolean): Promise<number> => waitFor(what, ok);

test('file source: edits arrive validated; a bad edit is rejected with file:line: field', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-tsrc-'));
  const file = path.join(dir, 't.yaml');
  const text = fs.readFileSync(REF, 'utf8');
  fs.writeFileSync(file, text);
  const src = openTopologySource(file);
  try {
    assert.deepEqual((await src.load()).ports.map((p) => p.node), ['C1', 'C2']);
    const changes: Topology[] = [];
    const rejects: string[] = [];
    src.watch({ onChange: (t) => changes.push(t), onReject: (e) => rejects.push(e.message) });
    await new Promise((r) => setTimeout(r, 300));
    fs.writeFileSync(file, text.replace('binding:host_id: C1, device: vm1-host', 'binding:host_id: C2, device: vm1-host'));
    await until('change', () => changes.length === 1);
    assert.deepEqual(changes[0].ports.map((p) => p.node), ['C2', 'C2']);
    await new Promise((r) => setTimeout(r, 300));
    fs.writeFileSync(file, text.replace('mac: fa:16:3e:00:01:10', 'mac: fa:16:3e:00:01'));
    await until('reject', () => rejects.length === 1);
    assert.match(rejects[0], new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+: ports\\[VM1\\]\\.mac: `));
    await new Promise((r) => setTimeout(r, 300));
    fs.writeFileSync(file, text);
    await until('change after the fix', () => changes.length === 2);
  } finally {
    src.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
