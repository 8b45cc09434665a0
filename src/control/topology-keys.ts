/**
 * The topology as etcd keys (docs/etcd.md): one key per entry of each list of the topology
 * file, so a change to one node, network, subnet, router, port or floating IP touches one key.
 *
 *   PREFIX/topology/dvr_mac_base            -> the MAC, as text (optional)
 *   PREFIX/topology/nodes/NAME              -> the node's entry, YAML (as in the file's list)
 *   PREFIX/topology/networks/NAME, subnets/NAME, routers/NAME, ports/NAME,
 *   PREFIX/topology/security_groups/NAME    -> the same, per entry
 *   PREFIX/topology/floating_ips/IP         -> floating IPs have no name: keyed by address
 *
 * A value is the YAML of one list entry; the last path element must equal the entry's `name`
 * (`ip` for floating IPs). The whole set is validated exactly as a file is: the entries are put
 * back into one topology document (lists in the file's order, entries in key order) and given
 * to dvr/topology.ts's parseTopology; an error's line is mapped back to the key and the line
 * inside its value, so it reads "etcd://H:P/PREFIX/topology/ports/VM1:2: ports[VM1].mac: ...".
 *
 * Called by: control/topology-etcd.ts (daemon), control/topology-push.ts (flowctl push/get).
 * Pure: no I/O. Keys here are relative to PREFIX/topology/.
 */
import { isMap, isScalar, isSeq, parseDocument, stringify, YAMLMap } from 'yaml';
import { ConfigError } from '../errors';
import { parseTopology, Topology } from '../dvr/topology';

/** The lists of a topology that become one key per entry, in the order a file lists them. */
export const TOPOLOGY_LISTS: readonly { list: string; id: string }[] = [
  { list: 'nodes', id: 'name' },
  { list: 'networks', id: 'name' },
  { list: 'subnets', id: 'name' },
  { list: 'routers', id: 'name' },
  { list: 'security_groups', id: 'name' },
  { list: 'ports', id: 'name' },
  { list: 'floating_ips', id: 'ip' },
];
/** Top-level scalars of a topology, one key each. */
export const TOPOLOGY_SCALARS: readonly string[] = ['dvr_mac_base'];

/**
 * Key -> its value as stored and in normal form, kept by a watching source between changes so
 * that only the keys that changed are parsed and re-emitted (only well-formed entries enter it).
 */
export type NormalCache = Map<string, { raw: string; norm: string }>;

/** The part of the etcd namespace under PREFIX that holds the topology. */
export const TOPOLOGY_DIR = 'topology/';

const ID_RE = /^[^/\s]+$/;

/** Normal form of a value, so equal entries give equal text (push writes only what differs). */
function entryText(js: unknown): string {
  return stringify(js, { lineWidth: 0 });
}

/**
 * A validated topology file -> its keys (relative, 'ports/VM1') and values, in the normal form
 * that assembleTopology reads back. Throws the file's ConfigError when it is invalid, or when
 * an entry's id cannot be a key (contains '/' or white space).
 */
export function topologyToKeys(file: string, text: string): Map<string, string> {
  parseTopology(file, text);
  const doc = parseDocument(text);
  const root = doc.contents as YAMLMap;
  const out = new Map<string, string>();
  for (const s of TOPOLOGY_SCALARS) {
    const n = root.get(s, true);
    if (isScalar(n)) out.set(s, String(n.value));
  }
  for (const { list, id } of TOPOLOGY_LISTS) {
    const seq = root.get(list, true);
    if (!isSeq(seq)) continue;
    seq.items.forEach((it, i) => {
      const m = it as YAMLMap;
      const v = isMap(m) ? m.get(id) : undefined;
      const idText = v === undefined ? '' : String(v);
      if (!ID_RE.test(idText)) {
        throw new ConfigError(file, 0, `${list}[${i}].${id}`, `"${idText}" cannot name an etcd key (no "/" or white space)`);
      }
      out.set(`${list}/${idText}`, entryText(m.toJSON()));
    });
  }
  return out;
}

/** Known relative key? ('nodes/C1', 'dvr_mac_base'); anything else under topology/ is refused. */
function placeOf(key: string): { list: string; id: string; idField: string } | { scalar: string } | null {
  if (TOPOLOGY_SCALARS.includes(key)) return { scalar: key };
  const slash = key.indexOf('/');
  if (slash < 0) return null;
  const list = TOPOLOGY_LISTS.find((l) => l.list === key.slice(0, slash));
  const id = key.slice(slash + 1);
  if (list === undefined || !ID_RE.test(id)) return null;
  return { list: list.list, id, idField: list.id };
}

/**
 * Keys (relative) and values -> the topology, validated as a file is. `source` names the place
 * (etcd://H:P/PREFIX) in errors; every error is a ConfigError naming `source/topology/KEY` and
 * the line inside that key's value.
 */
export function assembleTopology(source: string, entries: Map<string, string>, cache?: NormalCache): { topology: Topology; text: string } {
  const where = (k: string): string => `${source}/${TOPOLOGY_DIR}${k}`;
  const perList = new Map<string, { key: string; value: string }[]>();
  const scalars: string[] = [];
  for (const key of [...entries.keys()].sort()) {
    const value = entries.get(key) as string;
    const p = placeOf(key);
    if (p === null) {
      throw new ConfigError(where(key), 0, '(key)',
        `not a topology key (expected dvr_mac_base or LIST/ID with LIST one of ${TOPOLOGY_LISTS.map((l) => l.list).join(', ')})`);
    }
    if ('scalar' in p) {
      if (!/^[0-9A-Fa-f:]+$/.test(value.trim())) throw new ConfigError(where(key), 1, p.scalar, `expected a MAC address, got "${value.trim()}"`);
      scalars.push(`${p.scalar}: "${value.trim()}"`);
      continue;
    }
    const cached = cache?.get(key);
    if (cached !== undefined && cached.raw === value) {
      const list = perList.get(p.list) ?? [];
      list.push({ key, value: cached.norm });
      perList.set(p.list, list);
      continue;
    }
    const doc = parseDocument(value);
    if (doc.errors.length > 0) throw new ConfigError(where(key), doc.errors[0].linePos?.[0].line ?? 1, 'yaml', doc.errors[0].message.split('\n')[0]);
    if (!isMap(doc.contents)) throw new ConfigError(where(key), 1, '(value)', `expected a mapping (one ${p.list} entry)`);
    const idv = doc.contents.get(p.idField);
    if (idv === undefined || String(idv) !== p.id) {
      throw new ConfigError(where(key), 1, p.idField, `the key names "${p.id}" but the value's ${p.idField} is "${idv === undefined ? '' : String(idv)}"`);
    }
    // Normal form: a value is re-emitted from its data, so its text cannot break out of its entry.
    const norm = entryText(doc.contents.toJSON());
    cache?.set(key, { raw: value, norm });
    const list = perList.get(p.list) ?? [];
    list.push({ key, value: norm });
    perList.set(p.list, list);
  }
  if (cache !== undefined) for (const k of cache.keys()) if (!entries.has(k)) cache.delete(k);
  // One document; lineOwner[l] = [key, first line of that key's value] for each 1-based line l.
  const lines: string[] = [...scalars];
  const lineOwner: ([string, number] | null)[] = [null, ...scalars.map((s): [string, number] => [s.slice(0, s.indexOf(':')), 0])];
  for (const { list } of TOPOLOGY_LISTS) {
    const items = perList.get(list);
    if (items === undefined) continue;
    lines.push(`${list}:`);
    lineOwner.push(null);
    for (const it of items) {
      const vLines = it.value.replace(/\n$/, '').split('\n');
      const first = lines.length + 1;
      vLines.forEach((l, i) => {
        lines.push((i === 0 ? '  - ' : '    ') + l);
        lineOwner.push([it.key, first]);
      });
    }
  }
  const text = lines.join('\n') + '\n';
  try {
    return { topology: parseTopology(source, text), text };
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const owner = lineOwner[e.line] ?? null;
    if (owner === null) throw new ConfigError(`${source}/${TOPOLOGY_DIR}`, 0, e.field, e.reason);
    throw new ConfigError(where(owner[0]), owner[1] === 0 ? 1 : e.line - owner[1] + 1, e.field, e.reason);
  }
}
