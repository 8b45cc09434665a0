/**
 * `flowctl ha status` / `ha failover` text and refusals, and the HA families of the metrics
 * endpoint (control/ha-commands.ts), on a supervisor and a sync that report fixed states.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cmdHa, haMetricFamilies } from '../../src/control/ha-commands';
import type { HaInstanceStatus, KeepalivedSupervisor } from '../../src/control/keepalived';
import type { HaCtSync, HaCtSyncStatus } from '../../src/control/ha-ct-sync';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 10);

function inst(state: HaInstanceStatus['state']): HaInstanceStatus {
  return {
    router: 'R', vrid: 212, state, sinceMs: NOW - 5000, pid: 1234, namespace: 'fl-ha-NN2-R', device: 'ha-d70c14b5',
    address: '169.254.195.82', peers: ['NN1=169.254.195.81'], advertIntMs: 100, reloads: 0,
    peerAdverts: [{ node: 'NN1', ip: '169.254.195.81', lastMs: NOW - 40, adverts: 52 }], advertWatch: '',
  };
}
function sup(state: HaInstanceStatus['state']): KeepalivedSupervisor {
  const s = { status: () => [inst(state)], failover: () => state === 'master' };
  return s as unknown as KeepalivedSupervisor;
}
function sync(c: HaCtSyncStatus): HaCtSync {
  return { status: () => [c], drops: () => new Map([['not_a_peer', 2]]) } as unknown as HaCtSync;
}
const RECEIVING: HaCtSyncStatus = {
  router: 'R', zone: 5210, role: 'receiving', local: '192.168.100.14:3781', seq: 0, pending: 0, refreshLeft: 0, datagramsSent: 0,
  connections: 3, peers: [{ node: 'NN1', ip: '192.168.100.13', lastSeq: 812, missing: 2, connections: 3, datagrams: 800, lastMs: NOW - 300, refreshRounds: 4 }],
};

test('ha status on a backup: state, last advert of each peer, the sync stream with its lag', () => {
  const text = String(cmdHa(sup('backup'), { action: 'status' }, NOW, sync(RECEIVING)));
  assert.equal(text, [
    'R  vrid 212  backup  since 12:00:05.000 (5.0 s)  ha-d70c14b5 169.254.195.82 in fl-ha-NN2-R',
    '   peers NN1=169.254.195.81  advert 100 ms  keepalived pid 1234  reloads 0',
    '   last advert: NN1 0.04 s ago (52 seen)',
    '   ct-sync zone 5210 via 192.168.100.14:3781: receiving from NN1 seq 812, lag 2 datagrams missing, 3 connections, last 0.30 s ago',
  ].join('\n'));
  const json = cmdHa(sup('backup'), { action: 'status', format: 'json' }, NOW, sync(RECEIVING)) as { last_advert: unknown; ct_sync: { peers: { missing: number }[] } }[];
  assert.deepEqual(json[0].last_advert, [{ node: 'NN1', ip: '169.254.195.81', last_ms: NOW - 40, adverts: 52 }]);
  assert.equal(json[0].ct_sync.peers[0].missing, 2);
});

test('ha status on the master: the sync line shows the sequence sent and the entries not yet sent', () => {
  const c: HaCtSyncStatus = { ...RECEIVING, role: 'sending', seq: 900, pending: 5, refreshLeft: 7, peers: [] };
  assert.match(String(cmdHa(sup('master'), { action: 'status' }, NOW, sync(c))),
    /\n {3}ct-sync zone 5210 via 192\.168\.100\.14:3781: sending seq 900, lag 12 entries \(5 pending, 7 refresh\), 3 connections$/);
});

test('ha failover refuses on a backup (not master) and for a router the node does not host', () => {
  assert.throws(() => cmdHa(sup('backup'), { action: 'failover', router: 'R' }, NOW), /R: this node is backup, not master; run failover on the master/);
  assert.throws(() => cmdHa(sup('master'), { action: 'failover', router: 'S' }, NOW), /S: no HA router of that name on this node/);
  assert.throws(() => cmdHa(null, { action: 'failover', router: 'R' }, NOW), /no HA router of that name/);
  assert.match(String(cmdHa(sup('master'), { action: 'failover', router: 'R' }, NOW)), /^R: handing mastership over \(ha- port down for 1500 ms\)$/);
});

test('metrics: flowd_ha_state is a state set per router; the sync lag and connections per router', () => {
  const fams = haMetricFamilies(sup('backup'), sync(RECEIVING));
  const st = fams.find((f) => f.name === 'flowd_ha_state')!;
  assert.deepEqual(st.samples, [
    [{ router: 'R', state: 'master' }, 0], [{ router: 'R', state: 'backup' }, 1],
    [{ router: 'R', state: 'fault' }, 0], [{ router: 'R', state: 'stopped' }, 0],
  ]);
  assert.deepEqual(fams.find((f) => f.name === 'flowd_ha_ct_sync_lag')!.samples, [[{ router: 'R', role: 'receiving' }, 2]]);
  assert.deepEqual(fams.find((f) => f.name === 'flowd_ha_ct_sync_connections')!.samples, [[{ router: 'R', role: 'receiving' }, 3]]);
  assert.deepEqual(fams.find((f) => f.name === 'flowd_ha_ct_sync_drops_total')!.samples, [[{ reason: 'not_a_peer' }, 2]]);
});
