/**
 * Issue 14 through the daemon, without the shared lab: flowd for NN1 and NN2 of
 * examples/topologies/ha.yaml in h14- namespaces on one underlay segment. Each flowd starts
 * keepalived for router R behind its ha- port on br-int; VRRP crosses flowd's own HA network
 * (VXLAN VNI 0xffffff between the two nodes). Checks: exactly one master, on whose br-int alone
 * the SNAT flows are; `flowctl ha status` on both; `flowctl ha failover R` moves mastership and
 * the SNAT flows; the old master stays backup (nopreempt); SIGTERM removes the namespaces.
 * Root, keepalived and setpriv needed; skipped with the reason otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FlowdDaemon, Lab, labSkipReason, sh, sleepMs } from '../helpers/netlab';

const HA = path.resolve(__dirname, '../../../examples/topologies/ha.yaml');
const skip = labSkipReason(['keepalived', 'setpriv']);

async function haState(d: FlowdDaemon): Promise<string> {
  const r = await d.request('ha', { action: 'status', format: 'json' });
  assert.ok(Array.isArray(r) && r.length === 1, JSON.stringify(r));
  const x = r[0] as { router: string; state: string };
  assert.equal(x.router, 'R');
  return x.state;
}

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
      daemons.push(await lab.startFlowd(ns, node, `node: ${node}\ntopology: ${topo}\n`, 20000, ['--ha-ns-prefix', 'h14-']));
    }
    const states = async (): Promise<string[]> => [await haState(daemons[0]), await haState(daemons[1])];
    const t0 = Date.now();
    while (!(await states()).includes('master')) {
      if (Date.now() - t0 > 10000) assert.fail(`no master: ${(await states()).join(' ')}\n${daemons[0].log()}`);
      await sleepMs(50);
    }
    await sleepMs(1500);
    const s1 = await states();
    assert.deepEqual([...s1].sort(), ['backup', 'master'], s1.join(' '));
    const m = s1.indexOf('master');
    assert.ok((await snatFlows(daemons[m])) > 0, 'the master has the SNAT flows');
    assert.equal(await snatFlows(daemons[1 - m]), 0, 'the backup has none');
    assert.match(String(await daemons[m].request('ha', { action: 'status' })), /^R {2}vrid 212 {2}master {2}since /);

    await assert.rejects(daemons[1 - m].request('ha', { action: 'failover', router: 'R' }), /not master/);
    await daemons[m].request('ha', { action: 'failover', router: 'R' });
    const t1 = Date.now();
    while ((await haState(daemons[1 - m])) !== 'master') {
      if (Date.now() - t1 > 5000) assert.fail(`no takeover: ${(await states()).join(' ')}`);
      await sleepMs(20);
    }
    const takeoverMs = Date.now() - t1;
    await sleepMs(2500);   // the old master's ha- port is back up: it must stay backup
    assert.deepEqual(await states(), m === 0 ? ['backup', 'master'] : ['master', 'backup']);
    assert.ok((await snatFlows(daemons[1 - m])) > 0);
    assert.equal(await snatFlows(daemons[m]), 0);
    process.stdout.write(`# manual failover: new master after ${takeoverMs} ms (100 ms adverts)\n`);

    // SIGKILL of the master's flowd: its keepalived dies with it (pdeathsig), the other takes over.
    const killed = daemons[1 - m];
    const st = await killed.request('ha', { action: 'status', format: 'json' });
    const kaPid = Number((st as { pid: number }[])[0].pid);
    assert.match(fs.readFileSync(`/proc/${kaPid}/cmdline`, 'utf8'), /keepalived/);
    process.kill(killed.child.pid!, 'SIGKILL');
    const t2 = Date.now();
    while ((await haState(daemons[m])) !== 'master') {
      if (Date.now() - t2 > 5000) assert.fail('no takeover after SIGKILL');
      await sleepMs(20);
    }
    process.stdout.write(`# SIGKILL of the master's flowd: new master after ${Date.now() - t2} ms\n`);
    await sleepMs(500);
    // Gone, or a zombie waiting for init to reap it (its parent, flowd, is dead).
    let kaState = 'gone';
    try { kaState = fs.readFileSync(`/proc/${kaPid}/stat`, 'utf8').replace(/^.*\) /s, '')[0]; } catch { /* gone */ }
    assert.ok(kaState === 'gone' || kaState === 'Z', `keepalived ${kaPid} outlived its flowd (state ${kaState})`);

    for (const d of daemons) await d.stop();
  } finally {
    await lab.cleanup();
    for (const ns of ['h14-NN1-R', 'h14-NN2-R']) spawnDel(ns);
  }
});

function spawnDel(ns: string): void {
  try { sh('ip', 'netns', 'del', ns); } catch { /* gone */ }
}
