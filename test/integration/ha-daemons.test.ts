/**
 * Issue 14 through the daemon, without the shared lab: flowd for NN1 and NN2 of
 * examples/topologies/ha.yaml in h14- namespaces on one underlay segment. Each flowd starts
 * keepalived for router R behind its ha- port on br-int; VRRP crosses flowd's own HA network
 * (VXLAN VNI 0xffffff between the two nodes). Checks: exactly one master, on whose br-int alone
 * the SNAT flows are; `flowctl ha status` on both; `flowctl ha failover R` moves mastership and
 * the SNAT flows; the old master stays backup (nopreempt); SIGKILL of the master's flowd takes
 * its keepalived with it. With C2, VM2 and the upstream added: VM2's SNAT ping every 10 ms
 * resumes through the new master after SIGKILL of the master's flowd (the reply gap printed;
 * the outage as lost pings x 10 ms under 1000 ms asserted at 100 ms adverts: unlike the reply
 * gap it does not grow when the machine starves the ping process itself; with Neutron's 2 s
 * default it is printed, and replies after the kill are asserted, so they must resume through
 * the new master). States are awaited (with what was seen in the failure message), never read
 * once after a sleep: VRRP at 100 ms adverts can show two masters for an instant on a starved
 * machine, and the failover's hold ends on a timer.
 * Root, keepalived and setpriv needed; skipped with the reason otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FlowdDaemon, Lab, labSkipReason, sh, sleepMs } from '../helpers/netlab';
import { cleanupHaNamespaces, haState, startHaNodes, waitMasterAndSnat } from '../helpers/ha-netlab';
import { waitFor, waitSteady } from '../helpers/wait';

const HA = path.resolve(__dirname, '../../../examples/topologies/ha.yaml');
const skip = labSkipReason(['keepalived', 'setpriv']);

async function snatFlows(d: FlowdDaemon): Promise<number> {
  const text = String(await d.request('dump-flows', { bridge: 'br-int' }));
  return text.split('\n').filter((l) => l.includes('nat(src=203.0.113.10)')).length;
}

test('two flowd daemons elect one VRRP master over their own HA network; flowctl ha failover moves it and the SNAT flows', { skip }, async () => {
  const lab = new Lab('h14');
  const daemons: FlowdDaemon[] = [];
  try {
    const ul = lab.addNs('-ul');
    lab.exec(ul, 'ip', 'link', 'add', 'br0', 'type', 'bridge');
    lab.exec(ul, 'ip', 'link', 'set', 'br0', 'up');
    const topo = lab.file('ha.yaml', fs.readFileSync(HA, 'utf8'));
    for (const [node, ip, mac] of [['NN1', '192.168.100.13', '52:54:00:00:00:13'], ['NN2', '192.168.100.14', '52:54:00:00:00:14']]) {
      const ns = lab.addNs(`-${node.toLowerCase()}`);
      const peer = `h14u${node.slice(2)}`;
      sh('ip', 'link', 'add', 'eth1', 'netns', ns, 'address', mac, 'type', 'veth', 'peer', 'name', peer, 'netns', ul);
      lab.exec(ul, 'ip', 'link', 'set', peer, 'master', 'br0');
      lab.exec(ul, 'ip', 'link', 'set', peer, 'up');
      lab.exec(ns, 'ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth1');
      lab.exec(ns, 'ip', 'link', 'set', 'eth1', 'up');
      lab.exec(ns, 'ip', 'link', 'add', 'ext1', 'type', 'veth', 'peer', 'name', 'ext1p');
      lab.exec(ns, 'ip', 'link', 'set', 'ext1', 'up');
      lab.exec(ns, 'ip', 'link', 'set', 'ext1p', 'up');
      daemons.push(await lab.startFlowd(ns, node, `node: ${node}\ntopology: ${topo}\ndhcp: { namespace_prefix: h14-${node.toLowerCase()}-, state_dir: ${lab.dir}/dhcp-${node} }\n`, 20000, ['--ha-ns-prefix', 'h14-']));
    }
    const states = async (): Promise<string[]> => [await haState(daemons[0]), await haState(daemons[1])];
    const seen = async (): Promise<string> => (await states()).join(' ');
    await waitSteady('one master and one backup', async () => (await states()).sort().join() === 'backup,master', 1500,
      { detail: async () => `${await seen()}\n${daemons[0].log().slice(-1000)}` });
    const s1 = await states();
    const m = s1.indexOf('master');
    assert.ok((await snatFlows(daemons[m])) > 0, 'the master has the SNAT flows');
    assert.equal(await snatFlows(daemons[1 - m]), 0, 'the backup has none');
    assert.match(String(await daemons[m].request('ha', { action: 'status' })), /^R {2}vrid 212 {2}master {2}since /);

    await assert.rejects(daemons[1 - m].request('ha', { action: 'failover', router: 'R' }), /not master/);
    await daemons[m].request('ha', { action: 'failover', router: 'R' });
    const takeoverMs = await waitFor('the other node to take over', async () => (await haState(daemons[1 - m])) === 'master', { detail: seen });
    // The old master's ha- port comes back up when the hold ends (a timer): it must rejoin as
    // backup and stay so (nopreempt).
    const want = m === 0 ? 'backup,master' : 'master,backup';
    await waitFor('the old master back as backup', async () => (await haState(daemons[m])) === 'backup', { detail: seen });
    await waitSteady('the old master staying backup', async () => (await states()).join() === want, 1000, { detail: seen });
    assert.ok((await snatFlows(daemons[1 - m])) > 0);
    assert.equal(await snatFlows(daemons[m]), 0);
    process.stdout.write(`# manual failover: new master after ${takeoverMs} ms (100 ms adverts)\n`);

    // SIGKILL of the master's flowd: its keepalived dies with it (pdeathsig), the other takes over.
    const killed = daemons[1 - m];
    const st = await killed.request('ha', { action: 'status', format: 'json' });
    const kaPid = Number((st as { pid: number }[])[0].pid);
    assert.match(fs.readFileSync(`/proc/${kaPid}/cmdline`, 'utf8'), /keepalived/);
    process.kill(killed.child.pid!, 'SIGKILL');
    const killMs = await waitFor('takeover after SIGKILL of the master\'s flowd', async () => (await haState(daemons[m])) === 'master', { detail: async () => haState(daemons[m]) });
    process.stdout.write(`# SIGKILL of the master's flowd: new master after ${killMs} ms\n`);
    // Gone, or a zombie waiting for init to reap it (its parent, flowd, is dead).
    const kaState = (): string => { try { return fs.readFileSync(`/proc/${kaPid}/stat`, 'utf8').replace(/^.*\) /s, '')[0]; } catch { return 'gone'; } };
    await waitFor(`keepalived ${kaPid} to die with its flowd (pdeathsig)`, () => kaState() === 'gone' || kaState() === 'Z', { detail: kaState });

    for (const d of daemons) await d.stop();
  } finally {
    await lab.cleanup();
    cleanupHaNamespaces();
  }
});

/**
 * From `ping -D` output: the longest time without an echo reply, ms, counting the stretch from
 * the last reply to `endS` (when the ping stopped), so replies that never resume are the longest
 * gap; the longest run of requests without reply x 10 ms (the outage as lost pings tell it, as
 * lab/lab-failover.ts counts it); replies, and replies after `killS`.
 */
function outage(out: string, endS: number, killS: number): { gapMs: number; lostMs: number; received: number; after: number } {
  const replies = [...out.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)/gm)].map((x) => ({ t: Number(x[1]), seq: Number(x[2]) }));
  const times = replies.map((r) => r.t);
  let g = 0;
  for (let i = 1; i < times.length; i++) g = Math.max(g, (times[i] - times[i - 1]) * 1000);
  if (times.length > 0) g = Math.max(g, (endS - times[times.length - 1]) * 1000);
  const sent = Number(/(\d+) packets transmitted/.exec(out)?.[1] ?? 0);
  const answered = new Set(replies.map((r) => r.seq));
  let run = 0;
  let longest = 0;
  for (let seq = 1; seq <= sent; seq++) {
    run = answered.has(seq) ? 0 : run + 1;
    longest = Math.max(longest, run);
  }
  return { gapMs: Math.round(g), lostMs: longest * 10, received: times.length, after: times.filter((t) => t > killS).length };
}

for (const [label, advert] of [['100 ms adverts (ha.yaml)', 'ha_vrrp_advert_int: 0.1'], ['Neutron\'s 2 s default', '']] as const) {
  test(`SNAT ping VM2 -> upstream every 10 ms through NN1/NN2 survives SIGKILL of the master's flowd: ${label}`, { skip }, async () => {
    const lab = new Lab('h14');
    try {
      const text = fs.readFileSync(HA, 'utf8').replace('ha_vrrp_advert_int: 0.1\n', advert === '' ? '' : `${advert}\n`);
      const topo = lab.file('ha.yaml', text);
      const vm2 = lab.addNs('-vm2');
      const { nn } = await startHaNodes(lab, topo, [{ ns: vm2, host: 'vm2-host', mac: 'fa:16:3e:00:02:20', ip: '10.0.2.20' }]);
      const m = await waitMasterAndSnat(lab, nn, vm2);
      const seconds = advert === '' ? 14 : 5;
      const ping = lab.runAsync(vm2, 'ping', ['-D', '-n', '-i', '0.01', '-w', String(seconds), '203.0.113.1'], 60000);
      await sleepMs(1500);
      const killS = Date.now() / 1000;
      process.kill(nn[m].child.pid!, 'SIGKILL');
      const r = await ping;
      const g = outage(r.stdout, Date.now() / 1000, killS);
      process.stdout.write(`# ${label}: SIGKILL of NN${m + 1}'s flowd (master): SNAT ping gap ${g.gapMs} ms, ${g.lostMs} ms of pings lost, ` +
        `${g.received} replies, ${g.after} after the kill\n`);
      assert.equal(await haState(nn[1 - m]), 'master');
      // Replies resumed through the new master (the old one is dead): a steady run of them after the kill.
      assert.ok(g.after >= 20, `${g.after} replies after the kill: ${r.stdout.slice(-300)}`);
      if (advert !== '') assert.ok(g.lostMs < 1000, `${g.lostMs} ms of pings lost (reply gap ${g.gapMs} ms)`);
    } finally {
      await lab.cleanup();
      cleanupHaNamespaces();
    }
  });
}
