/**
 * One TCP flow's super-frames through two flowd nodes over a real veth (root): the sending
 * node's PortTable and Underlay (UDP GSO frames shared by the super-frames of a pass, sent
 * with sendmmsg on AF_PACKET), the kernel carrying them whole across the veth, the receiving
 * node's Underlay (recv: frames kept whole, decapsulated, coalesced into output batches of
 * 1-2 slots so that coalesce resumes mid-frame). The super-frames delivered must carry the
 * stream in sequence order, byte for byte. The pattern is the lab's (a 64 KB super-frame, a
 * 7526-byte tail ending in 536 bytes, the next 64 KB; native-notes/tunnel-gso.md, p14d), in
 * one pass, across passes, and with the 8 held outer frames filling. One process, one CPU at
 * a time: kernel reordering across CPUs (p14c) cannot happen here.
 * Namespace p14d-to (this file's own), removed also on failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { cleanup, rootSkipReason, run } from './netns';

const skip = rootSkipReason(true);
const NS = 'p14d-to';
const MSS = 1398, FULL = 46 * MSS, TAIL = 5 * MSS + 536;

test('a flow\'s super-frames cross two flowd nodes over a veth in sequence order', { skip }, () => {
  cleanup([], [NS]);
  try {
    run('ip', 'netns', 'add', NS);
    run('ip', '-n', NS, 'link', 'add', 'p14d-toa', 'type', 'veth', 'peer', 'name', 'p14d-tob');
    for (const l of ['p14d-toa', 'p14d-tob']) {
      run('ip', 'netns', 'exec', NS, 'sysctl', '-qw', `net.ipv6.conf.${l}.disable_ipv6=1`);
      run('ip', '-n', NS, 'link', 'set', l, 'up');
    }
    run('ip', '-n', NS, 'link', 'set', 'lo', 'up');
    run('ip', '-n', NS, 'addr', 'add', '10.99.9.1/24', 'dev', 'p14d-toa');
    run('ip', '-n', NS, 'addr', 'add', '10.99.9.2/24', 'dev', 'p14d-tob');
    const macB = run('ip', 'netns', 'exec', NS, 'cat', '/sys/class/net/p14d-tob/address').trim();
    run('ip', '-n', NS, 'neigh', 'replace', '10.99.9.2', 'lladdr', macB, 'dev', 'p14d-toa', 'nud', 'permanent');
    const passes = [[FULL, TAIL, FULL], [FULL, TAIL], [FULL],
      [FULL, TAIL, FULL, FULL, TAIL, FULL, FULL, FULL, FULL, TAIL, FULL]];
    const total = passes.flat().reduce((a, b) => a + b, 0);
    const child = path.join(__dirname, 'tunnel-order-child.js');
    for (const cap of [1, 2]) {
      const proc = spawnSync('ip', ['netns', 'exec', NS, process.execPath, child, JSON.stringify(passes), String(cap),
        'p14d-toa', 'p14d-tob', '10.99.9.1', '10.99.9.2'], { encoding: 'utf8', timeout: 60000 });
      const lines = proc.stdout.trim().split('\n');
      const r = JSON.parse(lines[lines.length - 1] || '{}') as { total: number; got: [number, number, number, boolean][] };
      assert.equal(r.total, total, proc.stderr);
      let next = 0;
      r.got.forEach(([seq, len, gso, ok], k) => {
        assert.equal(seq, next, `${cap} slots: delivered frame ${k} starts at ${seq}, expected ${next}: ${JSON.stringify(r.got)}`);
        assert.ok(ok, `${cap} slots: frame ${k}'s payload is the stream's`);
        if (len > MSS) assert.equal(gso, MSS, 'a coalesced super-frame');
        next += len;
      });
      assert.equal(next, total, `${cap} slots: the whole stream arrived`);
      assert.ok(r.got.length < passes.flat().length * 4, `coalesced into super-frames (${r.got.length} frames)`);
    }
  } finally {
    cleanup([], [NS]);
  }
});
