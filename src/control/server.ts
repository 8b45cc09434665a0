/**
 * The daemon's control socket: a unix stream socket (mode 0600) speaking JSON lines.
 *
 * Request:  {"id": 1, "cmd": "dump-flows", "args": {"bridge": "br-int"}}\n
 * Reply:    {"id": 1, "ok": true, "result": ...}\n   or   {"id": 1, "ok": false, "code": "E_...", "error": "..."}\n
 *
 * Who calls it: flowctl (control/client.ts), tests. The handlers run on the daemon's event
 * loop between datapath batches, so a handler must not block for long; a long job yields.
 * Garbage (a line that is not JSON, an unknown command, bad arguments, a line longer than
 * MAX_LINE_BYTES) gets an error reply and the connection stays open; nothing a client sends
 * can throw out of this module, so forwarding never stops because of a client.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { FlowdError } from '../errors';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };
export type CommandArgs = { [k: string]: JsonValue };
export type CommandHandler = (args: CommandArgs) => JsonValue | Promise<JsonValue>;

export interface ControlRequest {
  id: JsonValue;
  cmd: string;
  args: CommandArgs;
}

export const MAX_LINE_BYTES = 16 * 1024 * 1024;
/** How long listen() waits for a connection to an existing socket file before calling it stale. */
const STALE_PROBE_MS = 500;

/** True when something accepts a connection on unix socket `path` within STALE_PROBE_MS. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(path);
    const done = (v: boolean): void => { clearTimeout(t); s.destroy(); resolve(v); };
    const t = setTimeout(() => done(false), STALE_PROBE_MS);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * Makes `path` free for a new control socket: a socket file nobody answers on (left by a daemon
 * that was killed) is removed; one a live daemon serves is an error (E_IN_USE).
 */
export async function claimSocketPath(path: string): Promise<void> {
  let isSocket = false;
  try {
    isSocket = fs.statSync(path).isSocket();
  } catch {
    return;
  }
  if (!isSocket) return;
  if (await answers(path)) throw new FlowdError('E_IN_USE', `${path}: a running daemon serves this control socket`);
  fs.unlinkSync(path);
}

export class ControlServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** Requests answered with an error (bad JSON, unknown command, handler error). */
  nErrors = 0;
  nRequests = 0;
  /** Lines over MAX_LINE_BYTES (answered E_TOO_LONG once each, then skipped to their end). */
  nTooLong = 0;

  constructor(readonly path: string, private readonly handlers: ReadonlyMap<string, CommandHandler>) {
    this.server = net.createServer((s) => this.onConnection(s));
  }

  /**
   * Listens; the socket is made mode 0600. A socket file nobody answers on (left by a daemon
   * that was killed) is replaced; one a live daemon still serves is an error (E_IN_USE), so a
   * second daemon never steals the first one's socket.
   */
  async listen(): Promise<void> {
    await claimSocketPath(this.path);
    return new Promise((resolve, reject) => {
      const oldMask = process.umask(0o177);
      this.server.once('error', (e) => {
        process.umask(oldMask);
        reject(e);
      });
      this.server.listen(this.path, () => {
        process.umask(oldMask);
        fs.chmodSync(this.path, 0o600);
        resolve();
      });
    });
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    if (!this.server.listening) return Promise.resolve();
    return new Promise((resolve) => this.server.close(() => {
      try {
        fs.unlinkSync(this.path);
      } catch {
        // already gone
      }
      resolve();
    }));
  }

  /**
   * Splits the byte stream into lines in one pass over each chunk (a line's pieces are joined
   * once, when its newline arrives), so a multi-megabyte line costs its length, not its length
   * squared. A line over MAX_LINE_BYTES gets one E_TOO_LONG reply and is skipped up to its end.
   */
  private onConnection(s: net.Socket): void {
    this.sockets.add(s);
    let parts: string[] = [];
    let partChars = 0;
    let skipping = false;
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => {
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf('\n', start);
        if (nl < 0) {
          if (skipping || start === chunk.length) return;
          parts.push(chunk.slice(start));
          partChars += chunk.length - start;
          if (partChars > MAX_LINE_BYTES) {
            parts = [];
            partChars = 0;
            skipping = true;
            this.nTooLong++;
            this.reply(s, null, { ok: false, code: 'E_TOO_LONG', error: `request longer than ${MAX_LINE_BYTES} bytes` });
          }
          return;
        }
        if (skipping) {
          skipping = false;
        } else {
          parts.push(chunk.slice(start, nl));
          const line = parts.length === 1 ? parts[0] : parts.join('');
          parts = [];
          partChars = 0;
          if (line.trim() !== '') void this.handleLine(s, line);
        }
        start = nl + 1;
      }
    });
    s.on('error', () => s.destroy());
    s.on('close', () => this.sockets.delete(s));
  }

  private async handleLine(s: net.Socket, line: string): Promise<void> {
    this.nRequests++;
    let req: ControlRequest;
    try {
      req = parseRequest(line);
    } catch (e) {
      this.reply(s, null, { ok: false, code: 'E_BAD_REQUEST', error: (e as Error).message });
      return;
    }
    const h = this.handlers.get(req.cmd);
    if (h === undefined) {
      this.reply(s, req.id, { ok: false, code: 'E_UNKNOWN_COMMAND', error: `unknown command "${req.cmd}"` });
      return;
    }
    try {
      const result = await h(req.args);
      this.reply(s, req.id, { ok: true, result });
    } catch (e) {
      const code = e instanceof FlowdError ? e.code : 'E_INTERNAL';
      this.reply(s, req.id, { ok: false, code, error: (e as Error).message });
    }
  }

  private reply(s: net.Socket, id: JsonValue, body: { [k: string]: JsonValue }): void {
    if (body.ok === false) this.nErrors++;
    if (!s.destroyed) s.write(JSON.stringify({ id, ...body }) + '\n');
  }
}

/** Parses one request line; throws a plain Error with a reason on garbage. */
export function parseRequest(line: string): ControlRequest {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new Error('request is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('request must be a JSON object');
  const o = v as { [k: string]: unknown };
  if (typeof o.cmd !== 'string') throw new Error('request needs a string "cmd"');
  const args = o.args ?? {};
  if (typeof args !== 'object' || args === null || Array.isArray(args)) throw new Error('"args" must be an object');
  return { id: (o.id ?? null) as JsonValue, cmd: o.cmd, args: args as CommandArgs };
}
