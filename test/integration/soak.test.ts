/**
 * A short run of the soak (lab/soak.ts; `npm run soak` runs 5 million frames per wire): garbage
 * on a VM port and on the underlay, a ping and a TCP stream across, the control socket fuzzed.
 * No crash, every frame the kernel handed over is accounted for (received or refused by
 * reason), no valid control request unanswered, pings cross during the flood and none is lost
 * after it, RSS growth bounded.
 * Root, ip netns, ping, iperf3 and the native addon; skipped with the reason otherwise. Prefix sk-.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSoakReport, runSoak } from '../../src/lab/soak';
import { labSkipReason } from '../helpers/netlab';
import { nativeAvailable } from '../../src/native/io';

const skip = labSkipReason(['ping', 'iperf3']) || (nativeAvailable() ? false : 'the native addon is not built');

test('soak (short): no crash, every frame accounted, control answered, pings cross', { skip, timeout: 180000 }, async () => {
  const r = await runSoak({ framesPerWire: 200_000, ratePps: 100_000, seed: 7, tcpSeconds: 3, print: (l) => console.log(l) });
  console.log(formatSoakReport(r));
  assert.equal(r.crashes, 0);
  for (const w of r.wires) assert.ok(w.matches, `${w.wire}: ${JSON.stringify(w)}`);
  for (const w of r.wires) assert.ok(w.generated > 150_000, `${w.wire} generated ${w.generated}`);
  assert.ok(Object.keys(r.datapathDrops).length >= 5, `drops by several reasons: ${JSON.stringify(r.datapathDrops)}`);
  assert.equal(r.control.unanswered, 0);
  assert.equal(r.control.okReplies, r.control.requests);
  assert.ok(r.control.errorReplies >= r.control.garbageLines, 'every garbage line got an error reply');
  // Beside the flood, the ping shares rings that overflow (how many of its echoes go with them
  // depends on how long the flood lasts on this machine): some must cross. After it, none is lost.
  assert.ok(r.pingsSent > 100 && r.pingsLost < r.pingsSent, `pings ${r.pingsLost}/${r.pingsSent} lost during the flood`);
  assert.equal(r.pingsAfterLost, 0, `pings after the flood: ${r.pingsAfterLost}/${r.pingsAfterSent} lost`);
  assert.equal(r.pingsAfterSent, 20);
  assert.ok(r.tcpBpsBefore > 0 && r.tcpBpsDuring > 0, 'the TCP stream crossed before and during');
  assert.ok(r.rssEndBytes < r.rssStartBytes + 256e6, `RSS ${r.rssStartBytes} -> ${r.rssEndBytes}`);
});
