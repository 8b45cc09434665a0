#!/usr/bin/env node
/**
 * `sg-probe listen PORT... | connect IP PORT WAIT_MS | stream IP PORT SECONDS | send IFNAME HEX...`:
 * the security-group checks' probe process (lab/sg-probe.ts); lab/lab-check-sg.ts runs it
 * inside a VM's namespace. Prints JSON lines.
 */
import { connect, listen, sendFrames, stream } from '../lab/sg-probe';

const [mode, ...args] = process.argv.slice(2);
const usage = (): never => {
  process.stderr.write('usage: sg-probe listen PORT... | connect IP PORT WAIT_MS | stream IP PORT SECONDS | send IFNAME HEX...\n');
  process.exit(2);
};
if (mode === 'listen' && args.length > 0) listen(args.map(Number));
else if (mode === 'connect' && args.length === 3) connect(args[0], Number(args[1]), Number(args[2]));
else if (mode === 'stream' && args.length === 3) stream(args[0], Number(args[1]), Number(args[2]));
else if (mode === 'send' && args.length >= 2) sendFrames(args[0], args.slice(1));
else usage();
