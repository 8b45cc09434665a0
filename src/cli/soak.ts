#!/usr/bin/env node
/**
 * `npm run soak [-- --frames N --rate PPS --seed S --tcp-seconds T]`: the soak of lab/soak.ts.
 * Exit status 0 when nothing crashed, every frame is accounted for and no valid control request
 * went unanswered; 1 otherwise (or on a set-up error).
 */
import { formatSoakReport, runSoak } from '../lab/soak';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name}: expected a number >= 0`);
  return v;
}

async function main(): Promise<void> {
  const print = (l: string): void => { process.stdout.write(`${l}\n`); };
  const frames = arg('--frames', 5_000_000);
  const r = await runSoak({ framesPerWire: frames, ratePps: arg('--rate', 200_000), seed: arg('--seed', 1),
    tcpSeconds: arg('--tcp-seconds', 5), print });
  process.stdout.write(formatSoakReport(r));
  const ok = r.crashes === 0 && r.wires.every((w) => w.matches) && r.control.unanswered === 0;
  process.exitCode = ok ? 0 : 1;
}

main().catch((e: Error) => {
  process.stderr.write(`soak: ${e.message}\n`);
  process.exitCode = 1;
});
