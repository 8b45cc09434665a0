/**
 * `flowctl topology push FILE --etcd URL` and `flowctl topology get --etcd URL`: a topology file
 * into etcd's keys (control/topology-keys.ts) and back.
 *
 * push validates the file as the daemon would (parseTopology), reads the keys under
 * PREFIX/topology/, and writes in one transaction only what differs: keys whose value changed
 * or that are new are put, keys the file no longer has are deleted. The transaction is guarded
 * by the revision it read (no key under the prefix modified since), so a push never overwrites
 * a change it did not see; on such a race it reads again and retries (PUSH_ATTEMPTS times).
 * A file written in a deprecated shape is pushed as written (the daemon reads it the same way and
 * logs the same messages); the messages come back in PushResult.warnings.
 * get reads the keys back, validates them as one topology and returns its YAML; a pushed file
 * read back with get gives the same keys when pushed again (nothing to write).
 *
 * Called by: cli/flowctl.ts, bench/control.ts, tests.
 */
import { ConfigError, FlowdError } from '../errors';
import { EtcdClient, EtcdError, parseEtcdUrl, TxnOp } from './etcd-client';
import { TOPOLOGY_DIR, topologyText, topologyToKeys } from './topology-keys';

const PUSH_ATTEMPTS = 3;

export interface PushResult {
  /** Relative keys written (new or changed) and deleted. */
  put: string[];
  deleted: string[];
  unchanged: number;
  /** The store's revision after the push (the read revision when nothing differed). */
  revision: number;
  /** The file's deprecation messages (file:line: field: ...; write ... instead); pushed anyway. */
  warnings: string[];
}

export async function pushTopology(url: string, file: string, text: string): Promise<PushResult> {
  const u = parseEtcdUrl(url);
  const client = new EtcdClient(u.endpoints);
  const { keys: want, deprecations } = topologyToKeys(file, text);
  const dir = `${u.prefix}/${TOPOLOGY_DIR}`;
  for (let attempt = 1; ; attempt++) {
    const cur = await client.rangePrefix(dir);
    const have = new Map(cur.kvs.map((kv) => [kv.key.slice(dir.length), kv.value]));
    const ops: TxnOp[] = [];
    const res: PushResult = { put: [], deleted: [], unchanged: 0, revision: cur.revision, warnings: deprecations };
    for (const [k, v] of want) {
      if (have.get(k) === v) { res.unchanged++; continue; }
      ops.push({ put: dir + k, value: v });
      res.put.push(k);
    }
    for (const k of have.keys()) {
      if (want.has(k)) continue;
      ops.push({ del: dir + k });
      res.deleted.push(k);
    }
    if (ops.length === 0) return res;
    let r: { succeeded: boolean; revision: number };
    try {
      r = await client.txn(ops, { prefix: dir, revision: cur.revision });
    } catch (e) {
      if (e instanceof EtcdError && /too many operations in txn/.test(e.message)) {
        throw new FlowdError('E_ETCD', `${e.message}: this push changes ${ops.length} keys in one transaction; ` +
          `start etcd with --max-txn-ops ${ops.length} or more (docs/etcd.md)`);
      }
      throw e;
    }
    if (r.succeeded) {
      res.revision = r.revision;
      return res;
    }
    if (attempt >= PUSH_ATTEMPTS) {
      throw new FlowdError('E_ETCD', `${url}: keys under ${dir} kept changing during the push (${PUSH_ATTEMPTS} attempts); nothing written`);
    }
  }
}

/** The topology in etcd as YAML (validated as a file is), with the revision it was read at. */
export async function getTopology(url: string): Promise<{ text: string; revision: number; keys: number }> {
  const u = parseEtcdUrl(url);
  const client = new EtcdClient(u.endpoints);
  const dir = `${u.prefix}/${TOPOLOGY_DIR}`;
  const cur = await client.rangePrefix(dir);
  if (cur.kvs.length === 0) throw new ConfigError(`${u.text}/${TOPOLOGY_DIR}`, 0, '(keys)', 'no topology here (push one with flowctl topology push FILE --etcd URL)');
  const entries = new Map(cur.kvs.map((kv) => [kv.key.slice(dir.length), kv.value]));
  const text = topologyText(u.text, entries);
  return { text: `# ${u.text} at revision ${cur.revision}\n${text}`, revision: cur.revision, keys: entries.size };
}
