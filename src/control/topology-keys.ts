/**
 * The topology as etcd keys (docs/etcd.md): one key per entry of each list of the topology
 * file, so a change to one node, network, subnet, router, port or floating IP touches one key.
 *
 *   PREFIX/topology/dvr_mac_base            -> the MAC, as text (optional)
 *   PREFIX/topology/dhcp_agents_per_network -> the number (optional)
 *   PREFIX/topology/nodes/NAME              -> the node's entry, YAML (as in the file's list)
 *   PREFIX/topology/networks/NAME, subnets/NAME, routers/NAME, ports/NAME -> the same, per entry
 *   PREFIX/topology/security_groups/PROJECT/NAME -> a group's name is unique within its project
 *                                           only (every project may have a `default`)
 *   PREFIX/topology/floating_ips/IP         -> floating IPs have no name: keyed by address
 *   PREFIX/topology/fip_agent_gateways/IP   -> fg- ports (one per node per external network), likewise
 *
 * A value is the YAML of one list entry; the path after the list must equal the entry's `name`
 * (`ip` for floating IPs and fg- ports; `project/name` for groups, the project `admin` when
 * not given). The whole set is validated exactly as a file is: the parsed entries are put into
 * one topology document (lists in the file's order, entries in key order) and
 * given to dvr/topology.ts's readTopology; an error's line is mapped back to the key and the
 * line inside its value, so it reads "etcd://H:P/PREFIX/topology/ports/VM1:2: ports[VM1].mac: ...".
 *
 * Called by: control/topology-etcd.ts (daemon), control/topology-push.ts (flowctl push/get).
 * Pure: no I/O. Keys here are relative to PREFIX/topology/.
 */
import { isMap, isNode, isScalar, isSeq, Node as YNode, Pair, parseDocument, Scalar, stringify, visit, YAMLMap, YAMLSeq } from 'yaml';
import { ConfigError } from '../errors';
import { parseTopology, readTopology, Topology } from '../dvr/topology';
import { YamlReader } from './yaml-reader';
import { TOP_DHCP_KEYS } from '../dvr/dhcp-topology';
import { DEFAULT_PROJECT } from '../dvr/topology-sg';

/**
 * The lists of a topology that become one key per entry, in the order a file lists them. `id`
 * names the entry within its list; `scope`, when set, is a field that comes before it in the key
 * (with `scopeDefault` when the entry leaves it out), for ids unique only within that scope.
 */
export const TOPOLOGY_LISTS: readonly { list: string; id: string; scope?: string; scopeDefault?: string }[] = [
  { list: 'nodes', id: 'name' },
  { list: 'networks', id: 'name' },
  { list: 'subnets', id: 'name' },
  { list: 'routers', id: 'name' },
  { list: 'fip_agent_gateways', id: 'ip' },
  { list: 'security_groups', id: 'name', scope: 'project', scopeDefault: DEFAULT_PROJECT },
  { list: 'ports', id: 'name' },
  { list: 'floating_ips', id: 'ip' },
];

/** An entry's key within its list: `id`, or `scope/id` for a scoped list. */
function entryId(l: (typeof TOPOLOGY_LISTS)[number], m: { get(k: string): unknown }): string {
  const id = m.get(l.id);
  const idText = id === undefined ? '' : String(id);
  if (l.scope === undefined) return idText;
  const sc = m.get(l.scope);
  return `${sc === undefined ? l.scopeDefault ?? '' : String(sc)}/${idText}`;
}
/** Top-level scalars of a topology, one key each. */
export const TOPOLOGY_SCALARS: readonly string[] = ['dvr_mac_base', ...TOP_DHCP_KEYS];

/**
 * Key -> its value as stored, parsed: kept by a watching source between changes, so that a
 * change parses only the keys it touched (only well-formed entries enter it). `shift` is the
 * offset the node's ranges are moved by at present; `newlines` the offsets of the value's line
 * ends.
 */
export type ParsedCache = Map<string, { raw: string; node: YNode; shift: number; newlines: number[] }>;

/** The part of the etcd namespace under PREFIX that holds the topology. */
export const TOPOLOGY_DIR = 'topology/';

const ID_RE = /^[^/\s]+$/;

/** Normal form of a value, so equal entries give equal text (push writes only what differs). */
function entryText(js: unknown): string {
  return stringify(js, { lineWidth: 0 });
}

/** What topologyToKeys makes of a file: its keys, and what the file wrote the deprecated way. */
export interface TopologyKeys {
  /** Relative key ('ports/VM1') -> value in normal form. */
  keys: Map<string, string>;
  /** "file:line: field: deprecated ...; write ... instead" (Topology.deprecations). */
  deprecations: string[];
}

/**
 * A validated topology file -> its keys (relative, 'ports/VM1') and values, in the normal form
 * that assembleTopology reads back, with the file's deprecation messages. Throws the file's
 * ConfigError when it is invalid, or when an entry's id cannot be a key (contains '/' or white
 * space).
 */
export function topologyToKeys(file: string, text: string): TopologyKeys {
  const { deprecations } = parseTopology(file, text);
  const doc = parseDocument(text);
  const root = doc.contents as YAMLMap;
  const out = new Map<string, string>();
  for (const s of TOPOLOGY_SCALARS) {
    const n = root.get(s, true);
    if (isScalar(n)) out.set(s, String(n.value));
  }
  for (const l of TOPOLOGY_LISTS) {
    const seq = root.get(l.list, true);
    if (!isSeq(seq)) continue;
    seq.items.forEach((it, i) => {
      const m = it as YAMLMap;
      for (const f of l.scope === undefined ? [l.id] : [l.scope, l.id]) {
        const v = isMap(m) ? m.get(f) : undefined;
        if (v === undefined && f === l.scope) continue;
        const text = v === undefined ? '' : String(v);
        if (!ID_RE.test(text)) {
          throw new ConfigError(file, 0, `${l.list}[${i}].${f}`, `"${text}" cannot name an etcd key (no "/" or white space)`);
        }
      }
      out.set(`${l.list}/${entryId(l, m)}`, entryText(m.toJSON()));
    });
  }
  return { keys: out, deprecations };
}

/**
 * Known relative key? ('nodes/C1', 'security_groups/demo/web', 'dvr_mac_base'); anything else
 * under topology/ is refused.
 */
function placeOf(key: string): { list: (typeof TOPOLOGY_LISTS)[number]; id: string } | { scalar: string } | null {
  if (TOPOLOGY_SCALARS.includes(key)) return { scalar: key };
  const slash = key.indexOf('/');
  if (slash < 0) return null;
  const list = TOPOLOGY_LISTS.find((l) => l.list === key.slice(0, slash));
  const id = key.slice(slash + 1);
  if (list === undefined) return null;
  const parts = id.split('/');
  if (parts.length !== (list.scope === undefined ? 1 : 2) || !parts.every((x) => ID_RE.test(x))) return null;
  return { list, id };
}

/** Moves every range in `node` by `delta` characters. */
function shiftRanges(node: YNode, delta: number): void {
  if (delta === 0) return;
  visit(node, (_k, n) => {
    if (isNode(n) && n.range) n.range = [n.range[0] + delta, n.range[1] + delta, n.range[2] + delta];
  });
}

/**
 * Keys (relative) and values -> the topology, validated as a file is (dvr/topology.ts
 * readTopology). `source` names the place (etcd://H:P/PREFIX) in errors; every error is a
 * ConfigError naming `source/topology/KEY` and the line inside that key's value.
 *
 * How: each value is parsed on its own (once: `cache` keeps it while its text is unchanged),
 * and the parsed entries are put into one document. Their ranges are moved so that they are
 * offsets into the values laid end to end, which is the text the reader counts lines of; an
 * error's line then says which value and which line of it.
 */
export function assembleTopology(source: string, entries: Map<string, string>, cache: ParsedCache = new Map()): Topology {
  const where = (k: string): string => `${source}/${TOPOLOGY_DIR}${k}`;
  const r = new YamlReader(source);
  const perList = new Map<string, YNode[]>();
  const scalars: [string, YNode][] = [];
  /** [first offset, key, first line] of each value, in the order laid out. */
  const spans: [number, string, number][] = [];
  let offset = 0;
  let line = 1;
  r.lc.addNewLine(0); // a LineCounter holds the start of every line, the first one included
  for (const key of [...entries.keys()].sort()) {
    const value = entries.get(key) as string;
    const p = placeOf(key);
    if (p === null) {
      throw new ConfigError(where(key), 0, '(key)',
        `not a topology key (expected dvr_mac_base or LIST/ID with LIST one of ${TOPOLOGY_LISTS.map((l) => l.list).join(', ')})`);
    }
    let c = cache.get(key);
    if (c === undefined || c.raw !== value) {
      const doc = parseDocument(value);
      if (doc.errors.length > 0) throw new ConfigError(where(key), doc.errors[0].linePos?.[0].line ?? 1, 'yaml', doc.errors[0].message.split('\n')[0]);
      const node = doc.contents;
      if ('scalar' in p) {
        if (!isScalar(node)) throw new ConfigError(where(key), 1, p.scalar, 'expected a single value');
      } else {
        if (!isMap(node)) throw new ConfigError(where(key), 1, '(value)', `expected a mapping (one ${p.list} entry)`);
        const got = entryId(p.list, node);
        if (node.get(p.list.id) === undefined || got !== p.id) {
          const field = p.list.scope === undefined ? p.list.id : `${p.list.scope}/${p.list.id}`;
          throw new ConfigError(where(key), 1, p.list.id, `the key names "${p.id}" but the value's ${field} is "${got}"`);
        }
      }
      const newlines: number[] = [];
      for (let i = value.indexOf('\n'); i >= 0; i = value.indexOf('\n', i + 1)) newlines.push(i);
      if (node === null) throw new ConfigError(where(key), 1, '(value)', 'empty');
      c = { raw: value, node, shift: 0, newlines };
      cache.set(key, c);
    }
    shiftRanges(c.node, offset - c.shift);
    c.shift = offset;
    spans.push([offset, key, line]);
    for (const nl of c.newlines) r.lc.addNewLine(offset + nl + 1);
    // Each value is laid out followed by a line end of its own.
    const len = value.length + 1;
    if (c.newlines.length === 0 || c.newlines[c.newlines.length - 1] !== value.length - 1) r.lc.addNewLine(offset + len);
    line += c.newlines.length + (c.newlines.length === 0 || c.newlines[c.newlines.length - 1] !== value.length - 1 ? 1 : 0);
    offset += len;
    if ('scalar' in p) scalars.push([p.scalar, c.node]);
    else {
      const items = perList.get(p.list.list) ?? [];
      items.push(c.node);
      perList.set(p.list.list, items);
    }
  }
  for (const k of cache.keys()) if (!entries.has(k)) cache.delete(k);
  const root = new YAMLMap();
  for (const [k, n] of scalars) root.items.push(new Pair(new Scalar(k), n));
  for (const { list } of TOPOLOGY_LISTS) {
    const items = perList.get(list);
    if (items === undefined) continue;
    const seq = new YAMLSeq();
    seq.items.push(...items);
    root.items.push(new Pair(new Scalar(list), seq));
  }
  try {
    return readTopology(r, root);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    if (e.line === 0) throw new ConfigError(`${source}/${TOPOLOGY_DIR}`, 0, e.field, e.reason);
    let span = spans[0];
    for (const sp of spans) if (sp[2] <= e.line) span = sp;
    throw new ConfigError(where(span[1]), e.line - span[2] + 1, e.field, e.reason);
  }
}

/** The topology in `entries` as one YAML document (what `flowctl topology get` prints). */
export function topologyText(source: string, entries: Map<string, string>): string {
  assembleTopology(source, entries);
  const out: { [k: string]: unknown } = {};
  const lists = new Map<string, unknown[]>();
  for (const key of [...entries.keys()].sort()) {
    const p = placeOf(key) as NonNullable<ReturnType<typeof placeOf>>;
    const js = parseDocument(entries.get(key) as string).toJS() as unknown;
    if ('scalar' in p) out[p.scalar] = js;
    else {
      const items = lists.get(p.list.list) ?? [];
      items.push(js);
      lists.set(p.list.list, items);
    }
  }
  for (const { list } of TOPOLOGY_LISTS) if (lists.has(list)) out[list] = lists.get(list);
  return stringify(out, { lineWidth: 0 });
}
