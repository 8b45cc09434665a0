/**
 * keepalived configuration of an HA router (issue 14 item 2): Neutron's settings (state
 * BACKUP, nopreempt, equal priority 50, VIP 169.254.0.<vrid>/24 on the ha- device), VRRPv3
 * for sub-second adverts, unicast peers on the HA network, and the notify FIFO lines flowd reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseTopology } from '../../src/dvr/topology';
import { haRouters } from '../../src/dvr/ha';
import { keepalivedConf, parseNotifyLine } from '../../src/control/keepalived-conf';

const HA = fs.readFileSync(path.join(__dirname, '../../../examples/topologies/ha.yaml'), 'utf8');

test('ha.yaml: NN1\'s keepalived.conf for router R, as Neutron writes it, with 100 ms VRRPv3 adverts', () => {
  const t = parseTopology('ha.yaml', HA);
  const [h] = haRouters(t);
  assert.equal(keepalivedConf(h, 'NN1', t.ha.advertIntMs, { notifyFifo: '/run/flowd/NN1/ha/R.fifo' }), [
    '# flowd: router R on node NN1 (generated; do not edit)',
    'global_defs {',
    '    router_id flowd-NN1',
    '    notify_fifo /run/flowd/NN1/ha/R.fifo',
    '}',
    'vrrp_instance VR_212 {',
    '    state BACKUP',
    '    interface ha-d70c14b5',
    '    virtual_router_id 212',
    '    priority 50',
    '    garp_master_delay 60',
    '    nopreempt',
    '    advert_int 0.10',
    '    version 3',
    '    unicast_src_ip 169.254.195.81',
    '    unicast_peer {',
    '        169.254.195.82',
    '    }',
    '    track_interface {',
    '        ha-d70c14b5',
    '    }',
    '    virtual_ipaddress {',
    '        169.254.0.212/24 dev ha-d70c14b5',
    '    }',
    '}',
    ''].join('\n'));
});

test('Neutron\'s 2 s default stays VRRPv2; a third agent is a second unicast peer', () => {
  const t = parseTopology('ha.yaml', HA.replace('ha_vrrp_advert_int: 0.1\n', '')
    .replace('  - name: NN2\n', '  - name: NN3\n    agent_mode: dvr_snat\n    local_ip: 192.168.100.15\n  - name: NN2\n')
    .replace('l3_agents: [NN1, NN2]', 'l3_agents: [NN1, NN2, NN3]'));
  const [h] = haRouters(t);
  const conf = keepalivedConf(h, 'NN2', t.ha.advertIntMs, { notifyFifo: '/f' });
  assert.match(conf, /\n {4}advert_int 2\n {4}unicast_src_ip 169\.254\.195\.82\n/);
  assert.match(conf, /unicast_peer \{\n {8}169\.254\.195\.81\n {8}169\.254\.195\.83\n {4}\}/);
  assert.throws(() => keepalivedConf(h, 'C1', 2000, { notifyFifo: '/f' }), /node C1 is not an l3 agent of router R/);
});

test('notify FIFO lines: instance states, anything else ignored', () => {
  assert.deepEqual(parseNotifyLine('INSTANCE "VR_212" MASTER 50'), { vrid: 212, state: 'master' });
  assert.deepEqual(parseNotifyLine('INSTANCE "VR_7" BACKUP 50\n'), { vrid: 7, state: 'backup' });
  assert.deepEqual(parseNotifyLine('INSTANCE "VR_7" FAULT 0'), { vrid: 7, state: 'fault' });
  assert.deepEqual(parseNotifyLine('INSTANCE "VR_7" STOP 0'), { vrid: 7, state: 'stopped' });
  assert.equal(parseNotifyLine('GROUP "G1" MASTER 0'), null);
  assert.equal(parseNotifyLine('INSTANCE "other" MASTER 50'), null);
});
