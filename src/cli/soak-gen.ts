#!/usr/bin/env node
/**
 * `soak-gen IFNAME COUNT SEED RATE_PPS SRC_MAC DST_MAC SRC_IP DST_IP`: the soak's generator
 * process (lab/soak-gen.ts); lab/soak.ts runs it inside a namespace. Prints one JSON line.
 */
import { runSoakGen } from '../lab/soak-gen';

const [ifname, count, seed, rate, srcMac, dstMac, srcIp, dstIp] = process.argv.slice(2);
if (dstIp === undefined) {
  process.stderr.write('usage: soak-gen IFNAME COUNT SEED RATE_PPS SRC_MAC DST_MAC SRC_IP DST_IP\n');
  process.exit(2);
}
const r = runSoakGen({
  ifname, count: Number(count), seed: Number(seed), ratePps: Number(rate),
  addresses: { srcMac, dstMac, srcIp, dstIp },
});
process.stdout.write(`${JSON.stringify(r)}\n`);
