#!/usr/bin/env node
/**
 * flowd: the daemon (`flowd --config NODE.yaml`, or `flowd --node C1 --topology etcd://H:P/PREFIX`) and its offline forms, `flowd replay` and
 * `flowd trace`, which build the same switch from the same config.
 * Exit codes: 0 ok, 1 runtime error, 2 bad usage or bad config/flows/captures.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { FlowdError } from '../errors';
import { formatReplayReport, replay } from './replay';
import { loadConfig } from '../control/config';
import { Switch } from '../control/switch';
import { cmdTrace } from '../control/commands';

function fail(e: unknown): void {
  if (e instanceof FlowdError) {
    process.stderr.write(`flowd: ${e.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`flowd: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  }
}

export async function main(argv: string[]): Promise<void> {
  await yargs(argv)
    .scriptName('flowd')
    .command('$0', 'run the daemon for one node', {
      config: { type: 'string', describe: 'node config (YAML)' },
      topology: { type: 'string', describe: 'topology FILE or etcd://HOST:PORT[,HOST:PORT...]/PREFIX (in place of the config\'s; docs/etcd.md)' },
      node: { type: 'string', describe: 'this node\'s name in the topology (without --config)' },
      socket: { type: 'string', describe: 'control socket (overrides the config)' },
      'pid-file': { type: 'string', describe: 'write the pid here' },
      'metrics-listen': { type: 'string', describe: 'HOST:PORT: serve Prometheus metrics at http://HOST:PORT/metrics' },
      rundir: { type: 'string', describe: 'directory of the OpenFlow sockets BRIDGE.mgmt (default: the control socket path without its extension)' },
      'ha-ns-prefix': { type: 'string', describe: 'prefix of the namespaces keepalived of HA routers runs in (default flowd-ha-)' },
    }, async (a) => {
      try {
        const { runDaemon } = await import('../control/daemon.js');
        await runDaemon({ config: a.config === undefined ? '' : String(a.config),
          topology: a.topology === undefined ? '' : String(a.topology), node: a.node === undefined ? '' : String(a.node), socket: a.socket === undefined ? '' : String(a.socket),
          pidFile: a['pid-file'] === undefined ? '' : String(a['pid-file']),
          metricsListen: a['metrics-listen'] === undefined ? '' : String(a['metrics-listen']),
          runDir: a.rundir === undefined ? '' : String(a.rundir),
          haNsPrefix: a['ha-ns-prefix'] === undefined ? undefined : String(a['ha-ns-prefix']) });
      } catch (e) {
        fail(e);
      }
    })
    .command('replay', 'run a config offline over pcap files', {
      config: { type: 'string', demandOption: true },
      in: { type: 'string', array: true, default: [] as string[], describe: 'PORT=FILE.pcap (repeatable)' },
      'out-dir': { type: 'string', demandOption: true },
      stats: { type: 'boolean', default: false, describe: 'also print cache statistics and megaflows' },
    }, async (a) => {
      try {
        const r = await replay({ config: String(a.config), inputs: (a.in as string[]).map(String),
          outDir: String(a['out-dir']), stats: Boolean(a.stats) });
        process.stdout.write(formatReplayReport(r, Boolean(a.stats)));
      } catch (e) {
        fail(e);
      }
    })
    .command('trace <bridge> <packet>', 'ofproto/trace offline', {
      config: { type: 'string', demandOption: true },
      'ct-next': { type: 'string', array: true, describe: 'ct_state of each recirculated pass in turn, e.g. trk,est' },
    }, (a) => {
      try {
        const cfg = loadConfig(String(a.config));
        const sw = new Switch(cfg, { open: () => null }, { nowMs: Date.now });
        const ctNext = (a['ct-next'] as string[] | undefined ?? []).map(String);
        process.stdout.write(String(cmdTrace(sw, { bridge: String(a.bridge), packet: String(a.packet), ct_next: ctNext })));
      } catch (e) {
        fail(e);
      }
    })
    .strict()
    .fail((msg, err) => {
      if (err) throw err;
      process.stderr.write(`flowd: ${msg}\n`);
      process.exit(2);
    })
    .help()
    .parseAsync();
}

if (require.main === module) {
  void main(hideBin(process.argv));
}
