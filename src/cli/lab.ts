#!/usr/bin/env node
/**
 * `lab` (scripts/lab.sh): up [--store file|etcd] [--etcd-members 1|3] [TOPOLOGY] | status | check | failover | down for the namespace lab of
 * lab/lab.ts. Exit status: 0 ok, 1 a ping or check failed (or an error), 2 bad usage.
 */
import { check, DEFAULT_TOPOLOGY, down, status, up } from '../lab/lab';
import { failover } from '../lab/lab-failover';

async function main(argv: string[]): Promise<void> {
  const cmd = argv[0] ?? 'up';
  try {
    if (cmd === 'up') {
      const rest = argv.slice(1);
      const opt = (name: string): string | undefined => {
        const i = rest.indexOf(name);
        if (i < 0) return undefined;
        const v = rest[i + 1];
        rest.splice(i, 2);
        return v;
      };
      const storeText = opt('--store') ?? 'file';
      const members = Number(opt('--etcd-members') ?? '1');
      if ((storeText !== 'file' && storeText !== 'etcd') || !(members === 1 || members === 3) || rest.length > 1) {
        process.stderr.write('usage: lab up [--store file|etcd] [--etcd-members 1|3] [TOPOLOGY]\n');
        process.exitCode = 2;
        return;
      }
      const { pings } = await up(rest[0] ?? DEFAULT_TOPOLOGY, undefined, undefined, { store: storeText, etcdMembers: members });
      if (pings.some((p) => p.received !== p.sent)) process.exitCode = 1;
    } else if (cmd === 'down') {
      const done = await down();
      process.stdout.write(done.length === 0 ? 'flowd lab: nothing to remove\n' : `${done.join('\n')}\n`);
    } else if (cmd === 'status') {
      process.stdout.write(await status());
    } else if (cmd === 'check') {
      const res = await check();
      for (const r of res) process.stdout.write(`${r.pass ? 'PASS' : 'FAIL'}  ${r.name}${r.detail ? `: ${r.detail}` : ''}\n`);
      const nFail = res.filter((r) => !r.pass).length;
      process.stdout.write(`\n${res.length - nFail} passed, ${nFail} failed\n`);
      if (nFail > 0) process.exitCode = 1;
    } else if (cmd === 'failover') {
      const r = await failover();
      if (r.events.some((e) => e.mastersAfter.length !== 1)) process.exitCode = 1;
    } else {
      process.stderr.write('usage: lab [up [--store file|etcd] [--etcd-members 1|3] [TOPOLOGY] | status | check | failover | down]\n');
      process.exitCode = 2;
    }
  } catch (e) {
    process.stderr.write(`lab ${cmd}: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2));
}
