/**
 * Client side of the control socket (control/server.ts): one request, one reply.
 * Used by flowctl and by tests.
 */
import * as net from 'node:net';
import { CommandArgs, JsonValue } from './server';
import { FlowdError } from '../errors';

export const DEFAULT_SOCKET = '/run/flowd/flowd.sock';

/** Sends `cmd` with `args`; resolves to the result or rejects with a FlowdError carrying the daemon's code. */
export function request(socketPath: string, cmd: string, args: CommandArgs, timeoutMs = 30000): Promise<JsonValue> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(socketPath);
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new FlowdError('E_TIMEOUT', `no reply from ${socketPath} within ${timeoutMs} ms`));
    }, timeoutMs);
    s.setEncoding('utf8');
    s.on('connect', () => s.write(JSON.stringify({ id: 1, cmd, args }) + '\n'));
    s.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      s.end();
      let rep: { ok?: boolean; result?: JsonValue; code?: string; error?: string };
      try {
        rep = JSON.parse(buf.slice(0, nl)) as typeof rep;
      } catch {
        reject(new FlowdError('E_PROTOCOL', 'daemon sent a reply that is not JSON'));
        return;
      }
      if (rep.ok === true) resolve(rep.result ?? null);
      else reject(new FlowdError(rep.code ?? 'E_UNKNOWN', rep.error ?? 'error'));
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new FlowdError('E_CONNECT', `cannot reach flowd at ${socketPath}: ${e.code ?? e.message}`));
    });
  });
}
