import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { CommandHandler, ControlServer } from '../../src/control/server';
import { request } from '../../src/control/client';
import { CommandError } from '../../src/errors';

function rawExchange(sock: string, lines: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(sock);
    let buf = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.write(lines.join('\n') + '\n'));
    s.on('data', (c: string) => {
      buf += c;
      const got = buf.split('\n').filter((l) => l !== '');
      if (got.length >= lines.length) {
        s.end();
        resolve(got);
      }
    });
    s.on('error', reject);
  });
}

test('control socket: mode 0600, replies, and error replies for garbage without stopping', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-ctl-'));
  const sock = path.join(dir, 'c.sock');
  let counter = 0;
  const handlers = new Map<string, CommandHandler>([
    ['ping', () => ++counter],
    ['fail', () => { throw new CommandError('no such bridge "brX"', 'E_NO_BRIDGE'); }],
  ]);
  const srv = new ControlServer(sock, handlers);
  await srv.listen();
  try {
    assert.equal(fs.statSync(sock).mode & 0o777, 0o600);
    assert.equal(await request(sock, 'ping', {}), 1);
    await assert.rejects(request(sock, 'fail', {}), (e: unknown) =>
      (e as CommandError).code === 'E_NO_BRIDGE' && /no such bridge/.test((e as Error).message));
    const replies = await rawExchange(sock, ['{nope', '[1,2]', '{"cmd":"frobnicate"}', '{"id":7,"cmd":"ping"}']);
    assert.deepEqual(replies.map((l) => JSON.parse(l)), [
      { id: null, ok: false, code: 'E_BAD_REQUEST', error: 'request is not JSON' },
      { id: null, ok: false, code: 'E_BAD_REQUEST', error: 'request must be a JSON object' },
      { id: null, ok: false, code: 'E_UNKNOWN_COMMAND', error: 'unknown command "frobnicate"' },
      { id: 7, ok: true, result: 2 },
    ]);
    assert.equal(srv.nErrors, 4);
  } finally {
    await srv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(fs.existsSync(sock), false);
});

test('control socket: a line over the limit gets one E_TOO_LONG and is skipped to its end; the connection goes on', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-ctl-'));
  const sock = path.join(dir, 'c.sock');
  const srv = new ControlServer(sock, new Map<string, CommandHandler>([['ping', () => 'pong']]));
  await srv.listen();
  try {
    const replies = await new Promise<string[]>((resolve, reject) => {
      const s = net.createConnection(sock);
      let buf = '';
      s.setEncoding('utf8');
      s.on('data', (c: string) => {
        buf += c;
        const got = buf.split('\n').filter((l) => l !== '');
        if (got.length >= 2) { s.end(); resolve(got); }
      });
      s.on('error', reject);
      s.on('connect', async () => {
        // 17 MiB in 1 MiB writes, the newline in the last one, then a good request.
        const mib = 'y'.repeat(1024 * 1024);
        for (let k = 0; k < 17; k++) {
          if (!s.write(mib)) await new Promise((r) => s.once('drain', r));
        }
        s.write('tail of the long line\n{"id":3,"cmd":"ping"}\n');
      });
    });
    assert.deepEqual(replies.map((l) => JSON.parse(l)), [
      { id: null, ok: false, code: 'E_TOO_LONG', error: `request longer than ${16 * 1024 * 1024} bytes` },
      { id: 3, ok: true, result: 'pong' },
    ]);
    assert.equal(srv.nTooLong, 1);
  } finally {
    await srv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
