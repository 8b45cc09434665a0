#!/usr/bin/env node
/**
 * `lab-bench` (scripts/bench-lab.sh): iperf3 across the flowd lab against the same topology on
 * Linux kernel forwarding, interleaved rounds (lab/lab-bench.ts), or `profile` one node's flowd.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_TOPOLOGY } from '../lab/lab';
import { BenchOptions, cleanupLive, Compare, formatTable, preflight, profileNode, ROOT, runBench } from '../lab/lab-bench';
import { KERNEL_PREFIX } from '../lab/lab-kernel';

function argValue(argv: string[], name: string, dflt: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
}

function positiveInt(argv: string[], name: string, dflt: number, min = 1): number {
  const v = Number(argValue(argv, name, String(dflt)));
  if (!Number.isInteger(v) || v < min) throw new Error(`${name}: expected an integer >= ${min}`);
  return v;
}

function compareOf(v: string): Compare {
  if (v !== 'kernel' && v !== 'port-security' && v !== 'snat' && v !== 'build') {
    throw new Error(`--compare: expected kernel, port-security, snat or build, got "${v}"`);
  }
  return v;
}

function restartOf(v: string): 'both' | 'b' {
  if (v !== 'both' && v !== 'b') throw new Error(`--restart: expected both or b, got "${v}"`);
  return v;
}

async function main(argv: string[]): Promise<void> {
  const onSignal = (sig: NodeJS.Signals): void => {
    process.stderr.write(`lab-bench: ${sig}, cleaning up\n`);
    void cleanupLive().finally(() => {
      fs.rmSync(stateDir, { recursive: true, force: true });
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  };
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-bench-'));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const print = (s: string): void => { process.stdout.write(s); };
  try {
    preflight();
    if (argv[0] === 'profile') {
      const outDir = path.resolve(argValue(argv, '--out', path.join(ROOT, 'out', 'profile')));
      const r = await profileNode(argValue(argv, '--topology', DEFAULT_TOPOLOGY), argValue(argv, '--node', 'C1'),
        positiveInt(argv, '--time', 5), outDir, stateDir, print);
      print(`profile: ${r.file}\nhottest functions by self time:\n${r.top.join('\n')}\n`);
      return;
    }
    const opts: BenchOptions = {
      topology: argValue(argv, '--topology', DEFAULT_TOPOLOGY),
      rounds: positiveInt(argv, '--rounds', 2),
      reps: positiveInt(argv, '--reps', 2),
      seconds: positiveInt(argv, '--time', 5),
      omitS: positiveInt(argv, '--omit', 1, 0), // iperf3 -O: the first second (slow start, a daemon's first stream) not counted
      from: argValue(argv, '--from', 'VM1'),
      to: argValue(argv, '--to', 'VM2'),
      stateDir,
      kernelPrefix: KERNEL_PREFIX,
      compare: compareOf(argValue(argv, '--compare', 'kernel')),
      buildB: argValue(argv, '--build-b', ''),
      restart: restartOf(argValue(argv, '--restart', 'both')),
      print,
    };
    if ((opts.compare === 'build') !== (opts.buildB !== '')) throw new Error('--compare build and --build-b DIR go together');
    print(opts.compare === 'kernel'
      ? `lab-bench: ${opts.rounds} round(s) of flowd lab then kernel baseline, ${opts.reps} x ${opts.seconds} s iperf3 per direction each\n`
      : opts.compare === 'build'
      ? `lab-bench: ${opts.rounds} round(s) of the flowd lab with this tree's daemons and with ${opts.buildB}'s, alternating, ` +
        `${opts.reps} x ${opts.seconds} s iperf3 per direction each\n`
      : opts.compare === 'snat'
      ? `lab-bench: ${opts.rounds} round(s) of one flowd lab each, SNAT and floating-IP runs alternating, ${opts.reps} x ${opts.seconds} s iperf3 per direction each\n`
      : `lab-bench: ${opts.rounds} round(s) of the flowd lab with security groups and with port security off, alternating, ` +
        `${opts.reps} x ${opts.seconds} s iperf3 per direction each\n`);
    const res = await runBench(opts);
    print(`\n${formatTable(res)}`);
    const json = argValue(argv, '--json', '');
    if (json !== '') fs.writeFileSync(json, `${JSON.stringify(res, null, 2)}\n`);
  } catch (e) {
    process.stderr.write(`lab-bench: ${(e as Error).message}\n`);
    process.exitCode = 1;
  } finally {
    await cleanupLive();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  void main(process.argv.slice(2));
}
