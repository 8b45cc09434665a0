/**
 * The DHCP agent's reload of a dnsmasq that has only just been started: a hosts change that
 * comes while `ip netns exec`, setpriv or dnsmasq's own start still run must reach dnsmasq as
 * one SIGHUP once it can take it (its pid file is written), not kill it (SIGHUP's default
 * action) and leave the network without DHCP until the restart a second later.
 * The agent runs in a child node process inside a namespace of this test, so the DHCP port's
 * device and the qdhcp namespace are the test's own. Root, dnsmasq; skipped otherwise. Prefix dz-.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Lab, labSkipReason, runAsync } from '../helpers/netlab';

const skip = labSkipReason(['dnsmasq']);

const TOPO = `
nodes:
  - { name: N1, agent_mode: dvr_snat, local_ip: 192.0.2.1 }
networks:
  - { name: A, network_type: vxlan, segmentation_id: 1001 }
subnets:
  - { name: A-v4, network: A, cidr: 10.19.1.0/24, gateway_ip: 10.19.1.1 }
ports:
  - { name: VM1, mac: "fa:16:3e:19:00:10", network: A, fixed_ips: [10.19.1.10], binding:host_id: N1, device: dz-v1h }
`;
const VM2 = '  - { name: VM2, mac: "fa:16:3e:19:00:20", network: A, fixed_ips: [10.19.1.20], binding:host_id: N1, device: dz-v2h }\n';

test('a hosts change right after dnsmasq started: one SIGHUP once its pid file is written, dnsmasq never restarted', { skip, timeout: 60000 }, async () => {
  const lab = new Lab('dz-');
  try {
    const ns = lab.addNs('n1');
    const stateDir = path.join(lab.dir, 'dhcp');
    const root = path.join(__dirname, '../../..');
    // In the namespace: prepare, and at once prepare again with VM2 added (a hosts change);
    // then wait for dnsmasq to settle and print what the agent logged and the pid file says.
    const script = `
      const { DhcpAgent } = require(${JSON.stringify(path.join(root, 'dist/src/control/dhcp-agent.js'))});
      const { parseTopology } = require(${JSON.stringify(path.join(root, 'dist/src/dvr/topology.js'))});
      const fs = require('node:fs');
      const events = [];
      const agent = new DhcpAgent({ nsPrefix: 'dz-n1-', stateDir: ${JSON.stringify(stateDir)},
        log: (level, event, fields) => events.push({ event, fields }) });
      const topo = ${JSON.stringify(TOPO)};
      agent.prepare(parseTopology('t.yaml', topo), 'N1');
      agent.prepare(parseTopology('t.yaml', topo + ${JSON.stringify(VM2)}), 'N1');
      const pidFile = ${JSON.stringify(path.join(stateDir, 'A', 'pid'))};
      const t0 = Date.now();
      const look = () => {
        const pid = fs.existsSync(pidFile) ? fs.readFileSync(pidFile, 'utf8').trim() : '';
        if ((pid !== '' && Date.now() - t0 > 1500) || Date.now() - t0 > 20000) {
          let alive = false;
          try { process.kill(Number(pid), 0); alive = pid !== ''; } catch {}
          const hosts = fs.readFileSync(${JSON.stringify(path.join(stateDir, 'A', 'host'))}, 'utf8');
          agent.stop();
          process.stdout.write(JSON.stringify({ events, pid, alive, hosts }));
          return;
        }
        setTimeout(look, 50);
      };
      look();`;
    const r = await runAsync('ip', ['netns', 'exec', ns, process.execPath, '-e', script], 40000);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { events: { event: string; fields: Record<string, unknown> }[]; pid: string; alive: boolean; hosts: string };
    const seen = out.events.map((e) => `${e.event} ${JSON.stringify(e.fields)}`).join('\n');
    assert.deepEqual(out.events.filter((e) => e.event === 'dhcp_dnsmasq_exited'), [], `dnsmasq survived the reload:\n${seen}`);
    assert.deepEqual(out.events.map((e) => e.event), ['dhcp_up', 'dhcp_reloaded', 'dhcp_down'], seen);
    const upPid = out.events[0].fields.pid;
    assert.equal(out.pid, String(upPid), 'the dnsmasq started first is the one running');
    assert.equal(out.alive, true, 'and it runs');
    assert.match(out.hosts, /fa:16:3e:19:00:20,host-10-19-1-20\.openstacklocal,10\.19\.1\.20/);
    assert.equal(fs.existsSync('/run/netns/dz-n1-qdhcp-A'), false, 'stop() removed the qdhcp namespace');
  } finally {
    await lab.cleanup();
    if (fs.existsSync('/run/netns/dz-n1-qdhcp-A')) await runAsync('ip', ['netns', 'del', 'dz-n1-qdhcp-A']);
  }
});
