/**
 * keepalived supervised by flowd (issue 14 item 2), with Debian's keepalived in namespaces:
 * two nodes' supervisors (NN1, NN2 of ha.yaml) each start keepalived for router R in a
 * namespace of its own behind the router's ha- device; the two ha- host ends share a
 * segment (a bridge per node joined by a veth, standing in for br-int and the HA network).
 * Checks: exactly one master, announced through the notify FIFO; a manual failover moves it
 * and the old master comes back as backup (nopreempt); config changes reach keepalived as
 * throttled SIGHUPs (a burst is one reload); the survivor takes over when a keepalived stops;
 * stop() removes the namespaces. Needs root, keepalived, setpriv; skips otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseTopology } from '../../src/dvr/topology';
import { haDeviceName } from '../../src/dvr/ha';
import { KeepalivedSupervisor } from '../../src/control/keepalived';
import { VrrpState } from '../../src/control/keepalived-conf';
import { Lab, labSkipReason, sleepMs } from '../helpers/netlab';

const HA = fs.readFileSync(path.join(__dirname, '../../../examples/topologies/ha.yaml'), 'utf8');
const skip = labSkipReason(['keepalived', 'setpriv']);

async function until(what: string, ok: () => boolean, timeoutMs = 10000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleepMs(20);
  }
}

test('keepalived for router R on NN1 and NN2: one master, manual failover, throttled reloads, takeover', { skip }, async () => {
  const lab = new Lab('h14');
  const sups: KeepalivedSupervisor[] = [];
  try {
    const n1 = lab.addNs('-n1');
    const n2 = lab.addNs('-n2');
    lab.veth('-l1', n1, '-l2', n2);
    const topo = parseTopology('ha.yaml', HA);
    const dev = haDeviceName('R');
    const states: Record<string, VrrpState[]> = { NN1: [], NN2: [] };
    for (const [node, ns] of [['NN1', n1], ['NN2', n2]]) {
      const s = new KeepalivedSupervisor({
        node, runDir: path.join(lab.dir, node), nsPrefix: 'h14-', nodeNs: ns,
        onState: (router, st) => { assert.equal(router, 'R'); states[node].push(st); },
      });
      sups.push(s);
      s.sync(topo);
      lab.exec(ns, 'ip', 'link', 'add', 'br0', 'type', 'bridge');
      lab.exec(ns, 'ip', 'link', 'set', dev, 'master', 'br0');
      lab.exec(ns, 'ip', 'link', 'set', ns === n1 ? 'h14-l1' : 'h14-l2', 'master', 'br0');
      lab.exec(ns, 'ip', 'link', 'set', 'br0', 'up');
    }
    const masters = (): string[] => sups.flatMap((s, i) => (s.masters().has('R') ? [i === 0 ? 'NN1' : 'NN2'] : []));
    await until('a master', () => masters().length === 1);
    await sleepMs(1000);   // settle: still exactly one
    assert.equal(masters().length, 1);
    const first = masters()[0];
    const mi = first === 'NN1' ? 0 : 1;
    const st = sups[mi].status()[0];
    assert.deepEqual({ router: st.router, vrid: st.vrid, state: st.state, namespace: st.namespace, device: st.device },
      { router: 'R', vrid: 212, state: 'master', namespace: `h14-${first}-R`, device: dev });
    // The master holds the VIP on its ha- device; the backup does not.
    assert.match(lab.exec(`h14-${first}-R`, 'ip', '-o', 'addr', 'show', 'dev', dev), /169\.254\.0\.212\/24/);
    const other = first === 'NN1' ? 'NN2' : 'NN1';
    assert.doesNotMatch(lab.exec(`h14-${other}-R`, 'ip', '-o', 'addr', 'show', 'dev', dev), /169\.254\.0\.212/);

    // Manual failover: the other node becomes master; the old one returns as backup and stays so.
    assert.equal(sups[1 - mi].failover('R'), false, 'a backup has nothing to hand over');
    assert.equal(sups[mi].failover('R', 800), true);
    await until('the other node to be master', () => masters().join() === other);
    await sleepMs(2000);
    assert.equal(masters().join(), other);
    assert.equal(sups[mi].status()[0].state, 'backup');
    assert.ok(states[first].includes('fault'), `states of ${first}: ${states[first].join(' ')}`);

    // A burst of config changes is one SIGHUP now and at most one more after 3 x advert_int.
    const before = sups[mi].status()[0].reloads;
    for (let i = 0; i < 5; i++) sups[mi].sync(parseTopology('ha.yaml', HA.replace('ha_vrrp_advert_int: 0.1', `ha_vrrp_advert_int: 0.1${i % 2 === 0 ? '1' : ''}`)));
    await sleepMs(700);
    const reloads = sups[mi].status()[0].reloads - before;
    assert.ok(reloads >= 1 && reloads <= 2, `reloads ${reloads}`);
    sups[mi].sync(topo);
    await sleepMs(700);
    await until('one master after the reloads', () => masters().length === 1);

    // The master's keepalived stops: the survivor takes over.
    const mNow = masters()[0] === 'NN1' ? 0 : 1;
    sups[mNow].stop();
    await until('takeover', () => sups[1 - mNow].masters().has('R'));
    assert.equal(fs.existsSync(`/run/netns/h14-${mNow === 0 ? 'NN1' : 'NN2'}-R`), false);
  } finally {
    for (const s of sups) s.stop();
    await lab.cleanup();
  }
});
