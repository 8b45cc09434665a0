/**
 * Flow-mod semantics of a Bridge, as ovs-ofctl/OVS apply them: add replaces an identical
 * match+priority (counters reset), del strict and non-strict with cookie masks and out_port,
 * mod strict and non-strict (counters kept), replace-flows/diff-flows, timeouts, the default
 * NORMAL flow, version and change listeners.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bridge } from '../../src/ofproto/bridge';
import { formatActions } from '../../src/ofproto/action-syntax';
import { formatMatch } from '../../src/ofproto/match-syntax';

function texts(br: Bridge): string[] {
  return br.allRules().map((r) => `table=${r.tableId},${formatMatch(r.match, r.priority)} actions=${formatActions(r.actions)}`);
}

test('a new bridge holds priority=0 actions=NORMAL in table 0', () => {
  const br = new Bridge('br-int');
  assert.deepEqual(texts(br), ['table=0,priority=0 actions=NORMAL']);
  assert.deepEqual(texts(new Bridge('br-x', 0, { defaultFlow: false })), []);
});

test('add replaces an identical match+priority and resets its counters', () => {
  const br = new Bridge('br', 0, { defaultFlow: false });
  const a = br.addFlow('priority=5,in_port=1,actions=output:2', 1000);
  a.credit(3, 300, 1500);
  const b = br.addFlow('priority=5,in_port=1,actions=output:3', 2000);
  assert.notEqual(a, b);
  assert.equal(br.nRules, 1);
  assert.equal(b.nPackets, 0);
  assert.equal(b.createdMs, 2000);
  br.addFlow('priority=6,in_port=1,actions=output:4', 2000);
  assert.deepEqual(texts(br), ['table=0,priority=6,in_port=1 actions=output:4', 'table=0,priority=5,in_port=1 actions=output:3']);
});

test('del non-strict removes every rule at least as specific, in all tables', () => {
  const br = new Bridge('br', 0, { defaultFlow: false });
  br.addFlows('priority=1,in_port=1,actions=drop\npriority=2,in_port=1,ip,actions=drop\ntable=3,in_port=1,dl_vlan=5,actions=drop\npriority=1,in_port=2,actions=drop\npriority=1,actions=drop\n', 0);
  const gone = br.delFlows('in_port=1', false);
  assert.equal(gone.length, 3);
  assert.deepEqual(texts(br), ['table=0,priority=1,in_port=2 actions=drop', 'table=0,priority=1 actions=drop']);
  br.addFlow('table=4,priority=1,actions=drop', 0);
  assert.equal(br.delFlows('table=4', false).length, 1);
  assert.equal(br.delFlows(undefined, false).length, 2);
  assert.equal(br.nRules, 0);
});

test('del strict removes only the identical match and priority', () => {
  const br = new Bridge('br', 0, { defaultFlow: false });
  br.addFlows('priority=1,in_port=1,actions=drop\npriority=2,in_port=1,actions=drop\npriority=1,in_port=1,ip,actions=drop\n', 0);
  assert.equal(br.delFlows('priority=1,in_port=1', true).length, 1);
  assert.equal(br.delFlows('priority=9,in_port=1', true).length, 0);
  assert.deepEqual(texts(br), ['table=0,priority=2,in_port=1 actions=drop', 'table=0,priority=1,ip,in_port=1 actions=drop']);
});

test('del honours cookie=V/M and out_port', () => {
  const br = new Bridge('br', 0, { defaultFlow: false });
  br.addFlows('cookie=0x1234,priority=1,in_port=1,actions=output:2\ncookie=0x1299,priority=1,in_port=2,actions=output:3\ncookie=0x5634,priority=1,in_port=3,actions=output:2\n', 0);
  assert.equal(br.delFlows('cookie=0x1200/0xff00', false).length, 2);
  assert.equal(br.nRules, 1);
  br.addFlow('cookie=0x1,priority=1,in_port=4,actions=output:9', 0);
  assert.deepEqual(br.delFlows('out_port=2', false).map((r) => r.cookie), [0x5634n]);
  assert.equal(br.nRules, 1);
});

test('mod non-strict changes actions and keeps counters; strict needs the priority', () => {
  const br = new Bridge('br', 0, { defaultFlow: false });
  const [a, b] = br.addFlows('priority=1,in_port=1,actions=output:2\npriority=7,in_port=1,ip,actions=output:2\n', 0);
  a.credit(5, 500, 10);
  const changed = br.modFlows('in_port=1,actions=output:9', false, 3000);
  assert.equal(changed.length, 2);
  assert.equal(a.nPackets, 5);
  assert.equal(formatActions(b.actions), 'output:9');
  assert.equal(a.modifiedMs, 3000);
  assert.equal(br.modFlows('priority=7,in_port=1,ip,actions=drop', true, 0).length, 1);
  assert.equal(formatActions(b.actions), 'drop');
  assert.equal(formatActions(a.actions), 'output:9');
  br.modFlows('priority=1,in_port=1,reset_counts,actions=output:1', true, 0);
  assert.equal(a.nPackets, 0);
});

test('mod with cookie=V sets the cookie; with cookie=V/M it selects; no match adds (OF1.0)', () => {
  const br = new Bridge('br', 0, { defaultFlow: false });
  const [a] = br.addFlows('cookie=0x1,priority=1,in_port=1,actions=drop\n', 0);
  br.modFlows('cookie=0x2/0xff,in_port=1,actions=output:3', false, 0);
  assert.equal(formatActions(a.actions), 'drop');
  br.modFlows('cookie=0x7,in_port=1,actions=output:3', false, 0);
  assert.equal(a.cookie, 7n);
  assert.equal(formatActions(a.actions), 'output:3');
  const added = br.modFlows('priority=3,in_port=5,actions=output:1', true, 0);
  assert.equal(added.length, 1);
  assert.equal(br.nRules, 2);
});

test('expire removes rules past idle or hard timeouts (hard counts from the last add/mod)', () => {
  const br = new Bridge('br', 0, { defaultFlow: false });
  const [idle, hard, perm] = br.addFlows('idle_timeout=10,in_port=1,actions=drop\nhard_timeout=20,in_port=2,actions=drop\nin_port=3,actions=drop\n', 0);
  idle.credit(1, 60, 5000);
  assert.deepEqual(br.expire(14999), []);
  assert.deepEqual(br.expire(15000), [idle]);
  assert.deepEqual(br.expire(20000), [hard]);
  assert.equal(br.nRules, 1);
  assert.equal(br.allRules()[0], perm);
});

test('version bumps and listeners see added, removed and modified rules', () => {
  const br = new Bridge('br', 0, { defaultFlow: false });
  const seen: string[] = [];
  const off = br.onRulesChanged((c, v) => seen.push(`v${v}:+${c.added.length}-${c.removed.length}~${c.modified.length}`));
  br.addFlow('in_port=1,actions=drop', 0);
  br.addFlow('in_port=1,actions=output:2', 0);
  br.modFlows('in_port=1,actions=output:3', false, 0);
  br.delFlows('in_port=9', false);
  br.delFlows('in_port=1', false);
  off();
  br.addFlow('in_port=2,actions=drop', 0);
  assert.deepEqual(seen, ['v1:+1-0~0', 'v2:+1-1~0', 'v3:+0-0~1', 'v4:+0-1~0']);
  assert.equal(br.version, 5);
});

test('replace-flows keeps unchanged rules (and their counters), diff-flows lists differences', () => {
  const br = new Bridge('br', 0, { defaultFlow: false });
  const [keep] = br.addFlows('priority=1,in_port=1,actions=output:2\npriority=1,in_port=2,actions=output:1\ntable=5,priority=3,actions=drop\n', 0);
  keep.credit(4, 400, 1);
  const file = 'priority=1,in_port=1,actions=output:2\npriority=1,in_port=2,actions=output:7\ncookie=0x9,table=6,priority=2,ip,actions=NORMAL\n';
  assert.deepEqual(br.diffFlows(file), [
    '-priority=1,in_port=2 actions=output:1',
    '+priority=1,in_port=2 actions=output:7',
    '-table=5 priority=3 actions=drop',
    '+table=6 priority=2,ip cookie=0x9 actions=NORMAL',
  ]);
  const ch = br.replaceFlows(file, 10);
  assert.equal(ch.added.length, 2);
  assert.equal(ch.removed.length, 2);
  assert.equal(keep.nPackets, 4);
  assert.ok(br.allRules().includes(keep));
  assert.deepEqual(br.diffFlows(file), []);
});

test('importance: add sets it, mod keeps it, a re-add clears it; diff and replace compare it', () => {
  const br = new Bridge('br', 0, { defaultFlow: false });
  br.addFlow('priority=5,importance=7,ip,actions=drop', 0);
  br.addFlow('table=2,importance=65535,arp,actions=NORMAL', 0);
  const imp = (): number[] => br.allRules().map((r) => r.importance);
  assert.deepEqual(imp(), [7, 65535]);
  br.modFlows('priority=5,ip,actions=output:1', true, 10);
  assert.deepEqual(imp(), [7, 65535], 'mod-flows leaves importance');
  br.addFlow('table=2,arp,actions=NORMAL', 20);
  assert.deepEqual(imp(), [7, 0], 'an add without importance replaces the rule with importance 0');
  const file = 'priority=5,ip,importance=9,actions=output:1\ntable=2,arp,actions=NORMAL\n';
  assert.deepEqual(br.diffFlows(file), ['-priority=5,ip importance=7 actions=output:1',
    '+priority=5,ip importance=9 actions=output:1']);
  const ch = br.replaceFlows(file, 30);
  assert.equal(ch.added.length, 1, 'only the rule whose importance differs is re-added');
  assert.deepEqual(imp(), [9, 0]);
  assert.deepEqual(br.diffFlows(file), []);
  // As ovs-ofctl: importance belongs to add only.
  assert.throws(() => br.modFlows('ip,importance=3,actions=drop', false, 40), /importance is only valid for add-flow/);
  assert.throws(() => br.delFlows('importance=3', false), /importance is only valid for add-flow/);
  assert.throws(() => br.addFlow('importance=65536,actions=drop', 40), /expected an importance 0\.\.65535/);
});

test('ports: names resolve in flows, ofport 0 picks the lowest free number', () => {
  const br = new Bridge('br-tun', 0);
  br.addPort({ name: 'patch-int', ofport: 1, kind: 'patch', peerBridge: 'br-int', peerPort: 'patch-tun' });
  const vx = br.addPort({ name: 'vxlan-c0a8640c', ofport: 0, kind: 'vxlan' });
  assert.equal(vx.ofport, 2);
  br.addFlow('table=0,priority=1,in_port=vxlan-c0a8640c,actions=resubmit(,4)', 0);
  assert.equal(br.allRules()[0].match.value[0], 2);
  assert.equal(br.portName(1), 'patch-int');
  assert.throws(() => br.addPort({ name: 'x', ofport: 2, kind: 'tap' }), /already in use/);
});
