#!/usr/bin/env node
/**
 * `node-setup up|down|check` (scripts/provision-node.sh, the Vagrant nodes' systemd unit): the
 * set-up of one node on its own machine, lab/node-setup.ts. Exit status: 0 ok, 1 a check failed
 * or an error, 2 a NodeSetupError (bad topology, node or NIC).
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { FlowdError } from '../errors';
import {
  checkNode, DEFAULT_NS_PREFIX, DEFAULT_STATE_DIR, NodeSetupOptions, parseNicArg, setupNode, teardownNode,
} from '../lab/node-setup';

function optionsOf(a: { node: string; 'ns-prefix': string; 'state-dir': string; socket: string; nic: string[] }): NodeSetupOptions {
  return { nodeName: a.node, nsPrefix: a['ns-prefix'], stateDir: a['state-dir'], socket: a.socket, nics: a.nic.map(parseNicArg) };
}

export async function main(argv: string[]): Promise<void> {
  const common = {
    node: { type: 'string', demandOption: true, describe: 'the node of the topology this machine is' },
    topology: { type: 'string', demandOption: true, describe: 'topology file (dvr/topology.ts)' },
    'ns-prefix': { type: 'string', default: DEFAULT_NS_PREFIX, describe: 'prefix of the VM namespaces' },
    'state-dir': { type: 'string', default: DEFAULT_STATE_DIR, describe: 'where NODE.yaml (and the socket) go' },
    socket: { type: 'string', default: '', describe: 'control socket (default STATE_DIR/flowd.sock)' },
    nic: { type: 'string', array: true, default: [] as string[], describe: 'DEV=MAC: name the NIC with MAC as DEV (repeatable)' },
  } as const;
  const report = (lines: string[]): void => { process.stdout.write(lines.map((l) => `node-setup: ${l}\n`).join('')); };
  const guard = async (f: () => Promise<void> | void): Promise<void> => {
    try {
      await f();
    } catch (e) {
      process.stderr.write(`node-setup: ${(e as Error).message}\n`);
      process.exitCode = e instanceof FlowdError ? 2 : 1;
    }
  };
  await yargs(argv)
    .scriptName('node-setup')
    .command('up', 'name the NICs, plumb the VM ports of the node, write its config', common, (a) =>
      guard(() => report(setupNode(String(a.topology), optionsOf({ ...a, nic: a.nic.map(String) })))))
    .command('down', 'delete the VM namespaces of the node and its config', common, (a) =>
      guard(() => report(teardownNode(String(a.topology), optionsOf({ ...a, nic: a.nic.map(String) })))))
    .command('check', 'node-local acceptance checks', {
      ...common,
      remote: { type: 'boolean', default: true, describe: 'also ping VMs on other nodes and check the underlay' },
      external: { type: 'boolean', default: true, describe: 'also ping the upstream gateway from each VM' },
    }, (a) => guard(async () => {
      const res = await checkNode(String(a.topology), { ...optionsOf({ ...a, nic: a.nic.map(String) }), remote: a.remote, external: a.external });
      for (const r of res) process.stdout.write(`${r.pass ? 'PASS' : 'FAIL'}  ${r.name}${r.detail ? `: ${r.detail}` : ''}\n`);
      const nFail = res.filter((r) => !r.pass).length;
      process.stdout.write(`\n${res.length - nFail} passed, ${nFail} failed\n`);
      if (nFail > 0) process.exitCode = 1;
    }))
    .demandCommand(1)
    .strict()
    .help()
    .parseAsync();
}

if (require.main === module) {
  void main(hideBin(process.argv));
}
