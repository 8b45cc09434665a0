/**
 * netdev/underlay-tc.ts on a real interface (root): with the tc ingress filter on fn-uva, GRE
 * and UDP-to-4789 packets for its address still reach an AF_PACKET socket on it (the tap runs
 * before tc ingress) but never the kernel's IP input (IpInReceives does not move, no ICMP
 * unreachable), while UDP to another port does; removing the filter restores the kernel path.
 * Namespaces fn-ua / fn-ub (this file's own names), removed also on failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { cleanup, rootSkipReason, run } from './netns';
import { dropProgram } from '../../src/netdev/underlay-tc';

const skip = rootSkipReason(true) || (spawnSync('tc', ['-V']).status !== 0 ? 'tc (iproute2) missing' : false) ||
  (spawnSync('python3', ['-V']).status !== 0 ? 'python3 missing (sends the raw GRE packets)' : false);
const A = 'fn-ua';
const B = 'fn-ub';
const ROOT = path.resolve(__dirname, '..', '..', '..');
const TC_JS = JSON.stringify(path.join(ROOT, 'dist', 'src', 'netdev', 'underlay-tc.js'));

test('dropProgram: twelve instructions, local address and VXLAN port in place', () => {
  const p = dropProgram(0x0a630001, 4789).split(',');
  assert.equal(p[0], '12');
  assert.equal(p.length, 13);
  assert.equal(p[2], `21 0 9 ${0x0a630001}`);
  assert.equal(p[10], '21 0 1 4789');
});

function counter(name: string): number {
  const out = run('ip', 'netns', 'exec', A, 'nstat', '-az', name);
  const m = new RegExp(`${name}\\s+(\\d+)`).exec(out);
  return m ? Number(m[1]) : 0;
}

/** Sends 3 UDP to 4789, 1 UDP to 4790 and 5 GRE packets from B; returns the frames A's AF_PACKET socket saw. */
function exchange(): { ipIn: number; seen: number } {
  const send = `
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for p in (4789, 4789, 4789, 4790): u.sendto(b'x' * 20, ('10.99.7.1', p))
g = socket.socket(socket.AF_INET, socket.SOCK_RAW, 47)
for i in range(5): g.sendto(b'\\x00\\x00\\x65\\x58' + b'y' * 30, ('10.99.7.1', 0))`;
  // The child (in A) opens its socket first, then has B send, then reads what the tap saw.
  const child = `
    const io = require(${JSON.stringify(path.join(ROOT, 'dist', 'src', 'native', 'io.js'))}).loadNativeIo();
    const { execFileSync } = require('node:child_process');
    const h = io.packetOpen('fn-uva', 64, false);
    execFileSync('ip', ['netns', 'exec', '${B}', 'python3', '-c', process.env.SEND]);
    setTimeout(() => {
      const buf = new Uint8Array(64 * 2048), off = new Uint32Array(64), len = new Uint32Array(64);
      let seen = 0;
      for (let i = 0; i < 4; i++) {
        const n = io.recv(h, buf, 2048, 128, 64, off, len);
        for (let k = 0; k < n; k++) {
          const o = off[k];
          if (buf[o + 12] === 8 && buf[o + 13] === 0 && buf[o + 26] === 10 && buf[o + 29] === 2) seen++;
        }
      }
      process.stdout.write(String(seen) + '\\n');
      io.close(h);
    }, 300);`;
  const before = counter('IpInReceives');
  const proc = spawnSync('ip', ['netns', 'exec', A, process.execPath, '-e', child],
    { encoding: 'utf8', env: { ...process.env, SEND: send }, timeout: 20000 });
  const lines = proc.stdout.trim().split('\n');
  assert.match(lines[lines.length - 1], /^\d+$/, proc.stderr);
  return { ipIn: counter('IpInReceives') - before, seen: Number(lines[lines.length - 1]) };
}

test('tc ingress filter: tunnel packets reach the AF_PACKET tap, not the kernel IP input', { skip }, () => {
  cleanup([], [A, B]);
  try {
    run('ip', 'netns', 'add', A);
    run('ip', 'netns', 'add', B);
    run('ip', 'link', 'add', 'fn-uva', 'netns', A, 'type', 'veth', 'peer', 'name', 'fn-uvb', 'netns', B);
    run('ip', '-n', A, 'addr', 'add', '10.99.7.1/24', 'dev', 'fn-uva');
    run('ip', '-n', B, 'addr', 'add', '10.99.7.2/24', 'dev', 'fn-uvb');
    run('ip', '-n', A, 'link', 'set', 'fn-uva', 'up');
    run('ip', '-n', B, 'link', 'set', 'fn-uvb', 'up');
    run('ip', '-n', B, 'neigh', 'replace', '10.99.7.1', 'lladdr',
      run('ip', 'netns', 'exec', A, 'cat', '/sys/class/net/fn-uva/address').trim(), 'dev', 'fn-uvb', 'nud', 'permanent');
  } catch (e) {
    cleanup([], [A, B]);
    throw e;
  }
  try {
    const install = spawnSync('ip', ['netns', 'exec', A, process.execPath, '-e',
      `process.stdout.write(JSON.stringify(require(${TC_JS}).installTunnelDrop('fn-uva', 0x0a630701, 4789)))`],
    { encoding: 'utf8' });
    assert.equal(install.stdout, '""', `installed: ${install.stdout} ${install.stderr}`);
    const on = exchange();
    assert.equal(on.seen, 9, 'the tap saw all nine packets');
    assert.equal(on.ipIn, 1, 'only the UDP packet to port 4790 reached IP input');
    spawnSync('ip', ['netns', 'exec', A, process.execPath, '-e',
      `require(${TC_JS}).removeTunnelDrop('fn-uva')`]);
    const off = exchange();
    assert.equal(off.seen, 9);
    assert.equal(off.ipIn, 9, 'without the filter every packet reaches IP input');
  } finally {
    cleanup([], [A, B]);
  }
});
