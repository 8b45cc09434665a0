/**
 * A small etcd v3 client over etcd's gRPC-gateway JSON API (`POST /v3/kv/range`, `/v3/kv/txn`,
 * `/v3/watch`, `/v3/lease/grant`, `/v3/lease/keepalive`, `/v3/lease/revoke`), on node:http.
 * Chosen over the npm `etcd3` package: that one brings gRPC (@grpc/grpc-js, proto-loader,
 * protobufjs) for five calls that etcd 3.4 also serves as JSON; this one has no dependency.
 *
 * Called by: control/topology-etcd.ts (range + watch), control/agent-state.ts (leases),
 * control/topology-push.ts (txn), cli/flowctl.ts through those.
 *
 * Endpoints: a cluster URL names one or more members; a request that cannot reach a member
 * (connection refused/reset, timeout, 5xx) is retried once on each other member before it
 * fails, and the member that answered is tried first next time. So a three-member cluster that
 * loses one member goes on with at most one failed connect per request.
 * Keys and values are bytes in etcd; here they are UTF-8 strings (base64 on the wire). int64
 * fields (revisions, lease ids) come as decimal strings in JSON and stay strings here except
 * revisions, which fit a JS number for any etcd that has lived less than 2^53 writes.
 * Owns its sockets only for the duration of a request; a watch owns one response stream
 * until cancelled.
 */
import * as http from 'node:http';
import { FlowdError } from '../errors';

export interface EtcdEndpoint { host: string; port: number }

/** `etcd://HOST:PORT[,HOST:PORT...]/PREFIX`, parsed. */
export interface EtcdUrl { endpoints: EtcdEndpoint[]; prefix: string; text: string }

/** True when a topology source string names etcd rather than a file. */
export function isEtcdUrl(s: string): boolean {
  return s.startsWith('etcd://');
}

export function parseEtcdUrl(text: string): EtcdUrl {
  const m = /^etcd:\/\/([^/]+)(\/.*)?$/.exec(text);
  if (m === null) throw new FlowdError('E_ETCD_URL', `${text}: expected etcd://HOST:PORT[,HOST:PORT...]/PREFIX`);
  const endpoints: EtcdEndpoint[] = [];
  for (const hp of m[1].split(',')) {
    const e = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(hp);
    if (e === null || Number(e[2]) < 1 || Number(e[2]) > 65535) {
      throw new FlowdError('E_ETCD_URL', `${text}: "${hp}" is not HOST:PORT`);
    }
    endpoints.push({ host: e[1].replace(/^\[|\]$/g, ''), port: Number(e[2]) });
  }
  let prefix = m[2] ?? '/flowd';
  if (prefix === '/') throw new FlowdError('E_ETCD_URL', `${text}: the prefix must not be empty (etcd://HOST:PORT/flowd)`);
  prefix = prefix.replace(/\/+$/, '');
  return { endpoints, prefix, text };
}

export interface EtcdKv { key: string; value: string; modRevision: number; lease: string }
export interface EtcdEvent { type: 'PUT' | 'DELETE'; key: string; value: string; modRevision: number }

export type TxnOp = { put: string; value: string; lease?: string } | { del: string };

export class EtcdError extends FlowdError {
  constructor(msg: string, readonly unreachable: boolean) {
    super('E_ETCD', msg);
  }
}

interface RawKv { key?: string; value?: string; mod_revision?: string; lease?: string }
interface RawHeader { revision?: string }

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined): string => (s === undefined ? '' : Buffer.from(s, 'base64').toString('utf8'));

/** The key just past every key that starts with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: string): string {
  const b = Buffer.from(prefix, 'utf8');
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] < 0xff) {
      const out = Buffer.from(b.subarray(0, i + 1));
      out[i]++;
      return out.toString('base64');
    }
  }
  return Buffer.from([0]).toString('base64');
}

function kvOf(r: RawKv): EtcdKv {
  return { key: unb64(r.key), value: unb64(r.value), modRevision: Number(r.mod_revision ?? 0), lease: r.lease ?? '0' };
}

/** A running watch: `cancel()` ends it; its stream errors go to the watch's onError once. */
export interface EtcdWatch { cancel(): void }

const REQUEST_TIMEOUT_MS = 3000;

export class EtcdClient {
  /** Index into `endpoints` of the member that answered last. */
  private preferred = 0;
  constructor(readonly endpoints: EtcdEndpoint[], readonly timeoutMs = REQUEST_TIMEOUT_MS) {
    if (endpoints.length === 0) throw new FlowdError('E_ETCD_URL', 'no etcd endpoint');
  }

  /** Describes the endpoints for logs. */
  describe(): string {
    return this.endpoints.map((e) => `${e.host}:${e.port}`).join(',');
  }

  private requestOne(e: EtcdEndpoint, path: string, body: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const data = JSON.stringify(body);
      const req = http.request({ host: e.host, port: e.port, path, method: 'POST', timeout: this.timeoutMs,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(new EtcdError(`${e.host}:${e.port}${path}: ${err.message}`, true)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: { error?: string; message?: string } & Record<string, unknown>;
          try {
            parsed = JSON.parse(text) as typeof parsed;
          } catch {
            reject(new EtcdError(`${e.host}:${e.port}${path}: HTTP ${res.statusCode}: not JSON: ${text.slice(0, 200)}`, (res.statusCode ?? 0) >= 500));
            return;
          }
          if ((res.statusCode ?? 0) !== 200) {
            // 5xx with "etcdserver: no leader" / "request timed out" means try another member.
            reject(new EtcdError(`${e.host}:${e.port}${path}: ${parsed.message ?? parsed.error ?? `HTTP ${res.statusCode}`}`, (res.statusCode ?? 0) >= 500));
            return;
          }
          resolve(parsed);
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer in ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(new EtcdError(`${e.host}:${e.port}${path}: ${err.message}`, true)));
      req.end(data);
    });
  }

  /** POSTs `body` to `path` on the preferred member, then on each other one while unreachable. */
  async request(path: string, body: unknown): Promise<unknown> {
    let last: EtcdError | null = null;
    for (let k = 0; k < this.endpoints.length; k++) {
      const i = (this.preferred + k) % this.endpoints.length;
      try {
        const r = await this.requestOne(this.endpoints[i], path, body);
        this.preferred = i;
        return r;
      } catch (err) {
        if (!(err instanceof EtcdError) || !err.unreachable) throw err;
        last = err;
      }
    }
    throw last ?? new EtcdError('no etcd endpoint answered', true);
  }

  /** Every key under `prefix` with the store's revision at the time of the read. */
  async rangePrefix(prefix: string): Promise<{ revision: number; kvs: EtcdKv[] }> {
    const r = await this.request('/v3/kv/range', { key: b64(prefix), range_end: prefixEnd(prefix) }) as { header?: RawHeader; kvs?: RawKv[] };
    return { revision: Number(r.header?.revision ?? 0), kvs: (r.kvs ?? []).map(kvOf) };
  }

  async put(key: string, value: string, lease = '0'): Promise<number> {
    const r = await this.request('/v3/kv/put', { key: b64(key), value: b64(value), lease }) as { header?: RawHeader };
    return Number(r.header?.revision ?? 0);
  }

  async deleteKey(key: string): Promise<number> {
    const r = await this.request('/v3/kv/deleterange', { key: b64(key) }) as { header?: RawHeader };
    return Number(r.header?.revision ?? 0);
  }

  /**
   * Applies `ops` in one transaction, guarded by "no key under `guardPrefix` changed after
   * `guardRevision`" when given (so a push computed from a read does not overwrite a change
   * made since). Returns whether it applied and the revision after it.
   */
  async txn(ops: TxnOp[], guard?: { prefix: string; revision: number }): Promise<{ succeeded: boolean; revision: number }> {
    const compare = guard === undefined ? [] : [{
      key: b64(guard.prefix), range_end: prefixEnd(guard.prefix), target: 'MOD', result: 'LESS', mod_revision: String(guard.revision + 1),
    }];
    const success = ops.map((o) => ('put' in o
      ? { request_put: { key: b64(o.put), value: b64(o.value), lease: o.lease ?? '0' } }
      : { request_delete_range: { key: b64(o.del) } }));
    const r = await this.request('/v3/kv/txn', { compare, success, failure: [] }) as { header?: RawHeader; succeeded?: boolean };
    return { succeeded: r.succeeded === true, revision: Number(r.header?.revision ?? 0) };
  }

  /** Grants a lease of `ttlS` seconds; returns its id. */
  async leaseGrant(ttlS: number): Promise<string> {
    const r = await this.request('/v3/lease/grant', { TTL: String(ttlS) }) as { ID?: string };
    if (r.ID === undefined) throw new EtcdError('lease grant: no ID in the answer', false);
    return r.ID;
  }

  /** Renews lease `id`; returns its remaining TTL in seconds (0 or less: the lease is gone). */
  async leaseKeepAlive(id: string): Promise<number> {
    const r = await this.request('/v3/lease/keepalive', { ID: id }) as { result?: { TTL?: string } };
    return Number(r.result?.TTL ?? 0);
  }

  async leaseRevoke(id: string): Promise<void> {
    await this.request('/v3/lease/revoke', { ID: id });
  }

  /**
   * Watches every key under `prefix` from `startRevision` on the preferred member (then the
   * next one per call). `onEvents` gets each batch of events with the revision of its header,
   * in order; `onError` is called once when the stream ends for any reason other than
   * cancel() (member gone, compaction: then `compacted` is the compact revision), after which
   * the watch is dead and the caller starts another (from the revision it applied last + 1).
   * `onCreated` is called when etcd has accepted the watch.
   */
  watchPrefix(prefix: string, startRevision: number, h: {
    onCreated: () => void;
    onEvents: (events: EtcdEvent[], revision: number) => void;
    onError: (err: EtcdError, compacted: number) => void;
  }): EtcdWatch {
    const e = this.endpoints[this.preferred];
    let done = false;
    const fail = (err: EtcdError, compacted = 0): void => {
      if (done) return;
      done = true;
      req.destroy();
      // Next watch (or request) starts on another member.
      if (err.unreachable) this.preferred = (this.preferred + 1) % this.endpoints.length;
      h.onError(err, compacted);
    };
    const data = JSON.stringify({ create_request: { key: b64(prefix), range_end: prefixEnd(prefix), start_revision: String(startRevision) } });
    const req = http.request({ host: e.host, port: e.port, path: '/v3/watch', method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      if (res.statusCode !== 200) {
        fail(new EtcdError(`${e.host}:${e.port}/v3/watch: HTTP ${res.statusCode}`, true));
        return;
      }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while (!done && (nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line === '') continue;
          let msg: { result?: { header?: RawHeader; created?: boolean; canceled?: boolean; compact_revision?: string;
            cancel_reason?: string; events?: { type?: string; kv?: RawKv }[] }; error?: { message?: string } };
          try {
            msg = JSON.parse(line) as typeof msg;
          } catch {
            fail(new EtcdError(`${e.host}:${e.port}/v3/watch: not JSON: ${line.slice(0, 200)}`, true));
            return;
          }
          if (msg.error !== undefined) {
            fail(new EtcdError(`${e.host}:${e.port}/v3/watch: ${msg.error.message ?? 'error'}`, true));
            return;
          }
          const r = msg.result ?? {};
          if (r.canceled === true || Number(r.compact_revision ?? 0) > 0) {
            fail(new EtcdError(`${e.host}:${e.port}/v3/watch: cancelled: ${r.cancel_reason ?? `revision compacted at ${r.compact_revision}`}`, false),
              Number(r.compact_revision ?? 0));
            return;
          }
          if (r.created === true) h.onCreated();
          const evs = r.events ?? [];
          if (evs.length > 0) {
            h.onEvents(evs.map((ev) => ({
              type: ev.type === 'DELETE' ? 'DELETE' : 'PUT', key: unb64(ev.kv?.key), value: unb64(ev.kv?.value),
              modRevision: Number(ev.kv?.mod_revision ?? 0),
            })), Number(r.header?.revision ?? 0));
          }
        }
      });
      res.on('error', (err) => fail(new EtcdError(`${e.host}:${e.port}/v3/watch: ${err.message}`, true)));
      res.on('end', () => fail(new EtcdError(`${e.host}:${e.port}/v3/watch: stream ended`, true)));
    });
    req.on('error', (err) => fail(new EtcdError(`${e.host}:${e.port}/v3/watch: ${err.message}`, true)));
    req.end(data);
    return { cancel: () => { done = true; req.destroy(); } };
  }
}
