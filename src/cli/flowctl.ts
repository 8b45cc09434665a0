#!/usr/bin/env node
/**
 * flowctl: the command line of a running flowd, in the dialect of ovs-ofctl / ovs-appctl.
 * Every command but `capture` is one request on the daemon's control socket
 * (control/server.ts); the daemon does the work and returns text or JSON.
 *
 * Exit codes scripts can rely on:
 *   0 success; 1 the daemon refused the command (its code and message on stderr);
 *   2 bad usage (yargs); 3 the daemon cannot be reached; 4 a local file cannot be read.
 */
import * as fs from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DEFAULT_SOCKET, request } from '../control/client';
import { CommandArgs, JsonValue } from '../control/server';
import { FlowdError } from '../errors';
import { PcapWriter } from '../netdev/pcap-file';
import { getTopology, pushTopology } from '../control/topology-push';
import { EtcdClient, parseEtcdUrl } from '../control/etcd-client';
import { formatAgents, listAgents } from '../control/agent-state';

export const EXIT_OK = 0;
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;
export const EXIT_UNREACHABLE = 3;
export const EXIT_FILE = 4;

interface Common { socket: string; format: string }

/** The global options of any command's parsed arguments. */
function c(a: { [k: string]: unknown }): Common {
  return { socket: String(a.socket), format: String(a.format) };
}

function printResult(r: JsonValue, format: string): void {
  if (format === 'json') {
    process.stdout.write(JSON.stringify(r, null, 2) + '\n');
  } else if (typeof r === 'string') {
    process.stdout.write(r.endsWith('\n') || r === '' ? r : r + '\n');
  } else if (r !== null && r !== undefined && typeof r === 'object' && 'text' in r && typeof r.text === 'string') {
    const t = r.text;
    process.stdout.write(t.endsWith('\n') || t === '' ? t : t + '\n');
  } else if (r !== null) {
    process.stdout.write(JSON.stringify(r) + '\n');
  }
}

async function run(argv: Common, cmd: string, args: CommandArgs): Promise<void> {
  try {
    const r = await request(argv.socket, cmd, { ...args, format: argv.format });
    printResult(r, argv.format);
  } catch (e) {
    const err = e as FlowdError;
    process.stderr.write(`flowctl: ${cmd}: ${err.message}\n`);
    process.exitCode = err.code === 'E_CONNECT' || err.code === 'E_TIMEOUT' ? EXIT_UNREACHABLE : EXIT_REFUSED;
  }
}

function readFileArg(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    process.stderr.write(`flowctl: cannot read ${file}: ${(e as Error).message}\n`);
    process.exitCode = EXIT_FILE;
    return null;
  }
}

/** Runs an etcd command (no daemon involved): its errors exit 1, an unreachable etcd exits 3. */
async function etcdCommand(what: string, f: () => Promise<void>): Promise<void> {
  try {
    await f();
  } catch (e) {
    const err = e as FlowdError & { unreachable?: boolean };
    process.stderr.write(`flowctl: ${what}: ${err.message}\n`);
    process.exitCode = err.unreachable === true ? EXIT_UNREACHABLE : EXIT_REFUSED;
  }
}

function capture(port: string, file: string, filter: string, count: number, seconds: number): Promise<void> {
  // Loaded lazily: `cap` is a native module only this command needs.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { CapCapture } = require('../netdev/cap-capture') as typeof import('../netdev/cap-capture');
  const w = new PcapWriter(file);
  return new Promise((resolve) => {
    let c: InstanceType<typeof CapCapture> | null = null;
    const finish = (): void => {
      if (c !== null) c.close();
      w.close();
      process.stderr.write(`flowctl: capture: ${c ? c.nFrames : 0} frames written to ${file}\n`);
      resolve();
    };
    try {
      c = new CapCapture(port, filter, (frame) => {
        const now = Date.now();
        w.write(frame, Math.floor(now / 1000), (now % 1000) * 1e6);
        if (count > 0 && c !== null && c.nFrames >= count) finish();
      });
    } catch (e) {
      process.stderr.write(`flowctl: capture: ${port}: ${(e as Error).message}\n`);
      process.exitCode = EXIT_REFUSED;
      resolve();
      return;
    }
    if (seconds > 0) setTimeout(finish, seconds * 1000);
    process.once('SIGINT', finish);
    process.once('SIGTERM', finish);
  });
}

export async function main(args: string[]): Promise<void> {
  await yargs(args)
    .scriptName('flowctl')
    .usage('$0 [--socket PATH] COMMAND ...')
    .option('socket', { type: 'string', default: process.env.FLOWD_SOCKET ?? DEFAULT_SOCKET, describe: 'control socket of the daemon' })
    .option('format', { choices: ['text', 'json'], default: 'text', describe: 'output of dump commands' })
    .command('show', 'bridges and their ports', {}, (a) => run(c(a), 'show', {}))
    .command('dump-ports <bridge> [port]', 'rx/tx/drop counters per port', {}, (a) =>
      run(c(a), 'dump-ports', { bridge: String(a.bridge), port: a.port === undefined ? null : String(a.port) }))
    .command('dump-flows <bridge> [match]', 'the rules of a bridge, as ovs-ofctl prints them', {
      names: { type: 'boolean', default: false, describe: 'ports by name, as ovs-ofctl --names' },
    }, (a) =>
      run(c(a), 'dump-flows', { bridge: String(a.bridge), match: a.match === undefined ? '' : String(a.match), names: Boolean(a.names) }))
    .command('add-flow <bridge> <flow>', 'add (or replace) one rule', {}, (a) =>
      run(c(a), 'add-flow', { bridge: String(a.bridge), flow: String(a.flow) }))
    .command('add-flows <bridge> <file>', 'add the rules of a flows file', {}, (a) => {
      const text = readFileArg(String(a.file));
      return text === null ? undefined : run(c(a), 'add-flows', { bridge: String(a.bridge), file: String(a.file), text });
    })
    .command('del-flows <bridge> [match]', 'delete rules (all, or those matching)', { strict: { type: 'boolean', default: false } }, (a) =>
      run(c(a), 'del-flows', { bridge: String(a.bridge), match: a.match === undefined ? '' : String(a.match), strict: Boolean(a.strict) }))
    .command('mod-flows <bridge> <flow>', 'change the actions of matching rules', { strict: { type: 'boolean', default: false } }, (a) =>
      run(c(a), 'mod-flows', { bridge: String(a.bridge), flow: String(a.flow), strict: Boolean(a.strict) }))
    .command('replace-flows <bridge> <file>', 'make the bridge hold exactly the rules of a file', {}, (a) => {
      const text = readFileArg(String(a.file));
      return text === null ? undefined : run(c(a), 'replace-flows', { bridge: String(a.bridge), file: String(a.file), text });
    })
    .command('diff-flows <bridge> <file>', 'differences between a file and the bridge', {}, (a) => {
      const text = readFileArg(String(a.file));
      return text === null ? undefined : run(c(a), 'diff-flows', { bridge: String(a.bridge), file: String(a.file), text });
    })
    .command('trace <bridge> <packet>', 'trace a packet (fields or hex bytes) through the pipeline', {
      'ct-next': { type: 'string', array: true, describe: 'ct_state of each recirculated pass in turn, e.g. trk,est (as ofproto/trace)' },
    }, (a) =>
      run(c(a), 'trace', { bridge: String(a.bridge), packet: String(a.packet), ct_next: (a['ct-next'] as string[] | undefined ?? []).map(String) }))
    .command('dump-cache', 'megaflow and exact-match cache entries', {}, (a) => run(c(a), 'dump-cache', {}))
    .command('stats', 'datapath statistics (hits per cache level, upcalls, ns/packet)', {}, (a) => run(c(a), 'stats', {}))
    .command('openflow', 'OpenFlow endpoints per bridge: sockets and counters (connections, errors sent, closes)', {}, (a) => run(c(a), 'openflow', {}))
    .command('conntrack [action]', 'connection tracking: list, flush, stats, limits (--limit M sets the zone\'s limit, 0 = none)', {
      zone: { type: 'number' },
      limit: { type: 'number', describe: 'with limits: set the limit of --zone N (or the default zone limit without --zone)' },
    }, (a) =>
      run(c(a), 'conntrack', {
        action: a.action === undefined ? 'list' : String(a.action),
        zone: a.zone === undefined ? null : Number(a.zone),
        limit: a.limit === undefined ? null : Number(a.limit),
      }))
    .command('ha <action> [router]', 'HA routers: status (state, VRID, since, peers), failover ROUTER (hand mastership to a backup)', {}, (a) =>
      run(c(a), 'ha', { action: String(a.action), router: a.router === undefined ? '' : String(a.router) }))
    .command('capture <port> [filter]', 'capture frames of an interface into a pcap file (libpcap)', {
      w: { type: 'string', demandOption: true, describe: 'output pcap file' },
      count: { alias: 'c', type: 'number', default: 0, describe: 'stop after N frames' },
      seconds: { type: 'number', default: 0, describe: 'stop after S seconds' },
    }, (a) => capture(String(a.port), String(a.w), a.filter === undefined ? '' : String(a.filter), Number(a.count), Number(a.seconds)))
    .command('topology <action> [file]', 'the topology in etcd: push FILE (validated, one transaction, only keys that differ) or get (YAML)', {
      etcd: { type: 'string', demandOption: true, describe: 'etcd://HOST:PORT[,HOST:PORT...]/PREFIX' },
    }, (a) => etcdCommand(`topology ${String(a.action)}`, async () => {
      const url = String(a.etcd);
      if (a.action === 'get') {
        const r = await getTopology(url);
        process.stdout.write(r.text);
      } else if (a.action === 'push') {
        if (a.file === undefined) throw new FlowdError('E_ARGS', 'push needs a FILE');
        const text = readFileArg(String(a.file));
        if (text === null) return;
        const r = await pushTopology(url, String(a.file), text);
        for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
        const res = { revision: r.revision, put: r.put, deleted: r.deleted, unchanged: r.unchanged, warnings: r.warnings };
        if (String(a.format) === 'json') process.stdout.write(JSON.stringify(res, null, 2) + '\n');
        else process.stdout.write(`pushed ${a.file} to ${url}: ${r.put.length} put, ${r.deleted.length} deleted, ${r.unchanged} unchanged, revision ${r.revision}\n` +
          r.put.map((k) => `  put ${k}\n`).join('') + r.deleted.map((k) => `  deleted ${k}\n`).join(''));
      } else {
        throw new FlowdError('E_ARGS', `unknown action "${String(a.action)}" (expected push or get)`);
      }
    }))
    .command('agents', 'the flowd agents reporting to etcd, with their liveness', {
      etcd: { type: 'string', demandOption: true, describe: 'etcd://HOST:PORT[,HOST:PORT...]/PREFIX' },
    }, (a) => etcdCommand('agents', async () => {
      const u = parseEtcdUrl(String(a.etcd));
      const agents = await listAgents(new EtcdClient(u.endpoints), u.prefix);
      if (String(a.format) === 'json') process.stdout.write(JSON.stringify(agents, null, 2) + '\n');
      else process.stdout.write(formatAgents(agents, Date.now()));
    }))
    .demandCommand(1, 'a command is required')
    .strict()
    .fail((msg, err, y) => {
      if (err) throw err;
      process.stderr.write(`${y.help() && ''}flowctl: ${msg}\n`);
      process.exit(EXIT_USAGE);
    })
    .help()
    .parseAsync();
}

if (require.main === module) {
  void main(hideBin(process.argv));
}
