/**
 * A small reader over a `yaml` document that turns every problem into a ConfigError naming the
 * file, the 1-based line and the field (`ports[VM1].mac`): a LineCounter fed to parseDocument,
 * the line of a node from its range.
 *
 * Called by: control/config.ts (node configs) and dvr/topology.ts (topologies). Owns nothing;
 * errors are thrown, never collected.
 */
import { isMap, isScalar, isSeq, LineCounter, Node as YNode, parseDocument, YAMLMap, YAMLSeq } from 'yaml';
import * as ipaddr from 'ipaddr.js';
import { ConfigError } from '../errors';

export type YNodeOrNull = YNode | null | undefined;

export class YamlReader {
  readonly lc = new LineCounter();
  constructor(readonly file: string) {}

  /** Parses `text`; a YAML syntax error becomes a ConfigError with field "yaml". */
  parse(text: string): unknown {
    const doc = parseDocument(text, { lineCounter: this.lc, prettyErrors: false });
    if (doc.errors.length > 0) {
      const e = doc.errors[0];
      throw new ConfigError(this.file, this.lc.linePos(e.pos[0]).line, 'yaml', e.message.split('\n')[0]);
    }
    return doc.contents;
  }

  line(n: YNodeOrNull): number {
    const r = n && n.range;
    return r ? this.lc.linePos(r[0]).line : 0;
  }

  err(n: YNodeOrNull, field: string, msg: string): ConfigError {
    return new ConfigError(this.file, this.line(n), field, msg);
  }

  map(n: unknown, field: string, parent: YNodeOrNull): YAMLMap {
    if (!isMap(n)) throw this.err((n as YNode) ?? parent, field, 'expected a mapping');
    return n;
  }

  /** The list under `key`, or an empty list when absent (and `required` is false). */
  seq(m: YAMLMap, key: string, field: string, required = false): YAMLSeq {
    const n = m.get(key, true) as YNode | undefined;
    if (n === undefined) {
      if (required) throw this.err(m, field, 'is required');
      return new YAMLSeq();
    }
    if (!isSeq(n)) throw this.err(n, field, 'expected a list');
    return n;
  }

  node(m: YAMLMap, key: string): YNode | undefined {
    return m.get(key, true) as YNode | undefined;
  }

  has(m: YAMLMap, key: string): boolean {
    return m.has(key);
  }

  str(m: YAMLMap, key: string, field: string, def?: string): string {
    const n = this.node(m, key);
    if (n === undefined) {
      if (def !== undefined) return def;
      throw this.err(m, field, 'is required');
    }
    if (!isScalar(n) || (typeof n.value !== 'string' && typeof n.value !== 'number')) {
      throw this.err(n, field, 'expected a string');
    }
    return String(n.value);
  }

  bool(m: YAMLMap, key: string, field: string, def: boolean): boolean {
    const n = this.node(m, key);
    if (n === undefined) return def;
    if (!isScalar(n) || typeof n.value !== 'boolean') throw this.err(n, field, 'expected true or false');
    return n.value;
  }

  int(m: YAMLMap, key: string, field: string, lo: number, hi: number, def?: number): number {
    const n = this.node(m, key);
    if (n === undefined) {
      if (def !== undefined) return def;
      throw this.err(m, field, 'is required');
    }
    const v = isScalar(n) ? n.value : undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
      throw this.err(n, field, `expected an integer in ${lo}..${hi}, got ${isScalar(n) ? JSON.stringify(n.value) : 'a collection'}`);
    }
    return v;
  }

  /** A MAC address "aa:bb:cc:dd:ee:ff" (lower-cased), or `def` when absent. */
  mac(m: YAMLMap, key: string, field: string, def?: string): string {
    const s = this.str(m, key, field, def);
    if (s === def && !m.has(key)) return s;
    if (!isMacText(s)) throw this.err(this.node(m, key), field, `expected a MAC address like fa:16:3e:00:00:01, got "${s}"`);
    return s.toLowerCase();
  }

  /** A dotted-quad IPv4 address, or `def` when absent. */
  ipv4(m: YAMLMap, key: string, field: string, def?: string): string {
    const s = this.str(m, key, field, def);
    if (s === def && !m.has(key)) return s;
    return this.ipv4Text(this.node(m, key), field, s);
  }

  ipv4Text(n: YNodeOrNull, field: string, s: string): string {
    if (!ipaddr.IPv4.isValidFourPartDecimal(s)) throw this.err(n, field, `expected an IPv4 address, got "${s}"`);
    return s;
  }

  checkKeys(m: YAMLMap, allowed: readonly string[], where: string): void {
    for (const it of m.items) {
      const k = isScalar(it.key) ? String(it.key.value) : '?';
      if (!allowed.includes(k)) {
        throw this.err(it.key as YNode, `${where}.${k}`, `unknown field (expected one of ${allowed.join(', ')})`);
      }
    }
  }
}

export function isMacText(s: string): boolean {
  return /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(s);
}
