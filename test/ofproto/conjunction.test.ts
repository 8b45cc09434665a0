/**
 * Conjunctive matches (issue 22): `conjunction(id,k/n)` clause flows and `conj_id=` flows in the
 * classifier with Open vSwitch's semantics, their syntax and printing, and a differential check
 * against OVS 3.1 (test/helpers/ovs-oracle.ts; skipped with the reason when OVS is missing).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Bridge } from '../../src/ofproto/bridge';
import { Ofproto } from '../../src/ofproto/ofproto';
import { BridgeView } from '../../src/ofproto/bridge-view';
import { traceFields } from '../../src/ofproto/trace';
import { formatDpActions } from '../../src/dpif/dp-actions';
import { dumpFlows } from '../../src/ofproto/dump';
import { parseFlow } from '../../src/ofproto/flow-syntax';
import { FlowSyntaxError } from '../../src/errors';
import { OvsOracle, ovsUnavailableReason } from '../helpers/ovs-oracle';

const PORTS = ['p1', 'p2', 'p3', 'p4'];

function setup(flows: string): { of: Ofproto; br: Bridge } {
  const br = new Bridge('br0', 0, { defaultFlow: false });
  PORTS.forEach((name, i) => br.addPort({ name, ofport: i + 1, kind: 'dummy' }));
  br.addFlows(flows, 0);
  const of = new Ofproto();
  of.addBridge(new BridgeView(br));
  return { of, br };
}

/** Output port names of a trace of `packet`, in order ("" for a drop). */
function outPorts(of: Ofproto, packet: string): string {
  const t = traceFields(of, 'br0', packet, 0);
  const a = formatDpActions(t.result.actions);
  if (a.startsWith('drop')) return '';
  return a.split(',').filter((x) => /^\d+$/.test(x)).map((x) => of.dpPortInfo(Number(x))?.port.name).join(',');
}

const TWO_CLAUSES = [
  'priority=100,ip,nw_src=10.0.0.1,actions=conjunction(7,1/2)',
  'priority=100,ip,nw_src=10.0.0.2,actions=conjunction(7,1/2)',
  'priority=100,tcp,tp_dst=80,actions=conjunction(7,2/2)',
  'priority=100,tcp,tp_dst=443,actions=conjunction(7,2/2)',
  'priority=100,conj_id=7,ip,actions=output:p2',
  'priority=50,ip,actions=output:p3',
].join('\n');

test('conjunction: a packet matching one flow of every clause takes the conj_id flow', () => {
  const { of } = setup(TWO_CLAUSES);
  assert.equal(outPorts(of, 'in_port=1,tcp,nw_src=10.0.0.1,tp_dst=80'), 'p2');
  assert.equal(outPorts(of, 'in_port=1,tcp,nw_src=10.0.0.2,tp_dst=443'), 'p2');
  const t = traceFields(of, 'br0', 'in_port=1,tcp,nw_src=10.0.0.1,tp_dst=443', 0).text;
  assert.match(t, /^ 0\. conj_id=7,ip, priority 100$/m);
});

test('conjunction: one clause missing falls to the next hard rule', () => {
  const { of } = setup(TWO_CLAUSES);
  assert.equal(outPorts(of, 'in_port=1,tcp,nw_src=10.0.0.3,tp_dst=80'), 'p3');
  assert.equal(outPorts(of, 'in_port=1,tcp,nw_src=10.0.0.1,tp_dst=22'), 'p3');
});

test('conjunction: the megaflow holds what every clause looked at, and no conj_id', () => {
  const { of } = setup(TWO_CLAUSES);
  const t = traceFields(of, 'br0', 'in_port=1,tcp,nw_src=10.0.0.1,tp_dst=80', 0).text;
  const mf = /^Megaflow: (.*)$/m.exec(t)?.[1] ?? '';
  assert.match(mf, /nw_src=10\.0\.0\.1/);
  assert.match(mf, /tp_dst=80/);
  assert.doesNotMatch(mf, /conj_id/);
});

test('conjunction: a hard rule of higher priority wins over a complete conjunction', () => {
  const { of } = setup(`${TWO_CLAUSES}\npriority=200,tcp,tp_dst=80,actions=output:p4`);
  assert.equal(outPorts(of, 'in_port=1,tcp,nw_src=10.0.0.1,tp_dst=80'), 'p4');
});

test('conjunction: a complete conjunction without a conj_id flow falls back to hard rules', () => {
  const { of } = setup(TWO_CLAUSES.replace('priority=100,conj_id=7,ip,actions=output:p2\n', ''));
  assert.equal(outPorts(of, 'in_port=1,tcp,nw_src=10.0.0.1,tp_dst=80'), 'p3');
});

test('conjunction: a clause hides nothing behind it: a lower-priority identical match still counts', () => {
  // OVS: when no conjunction completes, a soft match gives way to the next rule of its exact match.
  const { of } = setup([
    'priority=100,ip,nw_src=10.0.0.1,actions=conjunction(1,1/2)',
    'priority=100,udp,actions=conjunction(1,2/2)',
    'priority=90,ip,nw_src=10.0.0.1,actions=output:p4',
    'priority=10,ip,actions=output:p3',
    'priority=100,conj_id=1,ip,actions=output:p2',
  ].join('\n'));
  assert.equal(outPorts(of, 'in_port=1,tcp,nw_src=10.0.0.1'), 'p4');
  assert.equal(outPorts(of, 'in_port=1,udp,nw_src=10.0.0.1'), 'p2');
});

test('conjunction: one flow may be a clause of several conjunctions', () => {
  const { of } = setup([
    'priority=10,ip,nw_src=10.0.0.1,actions=conjunction(1,1/2),conjunction(2,1/2)',
    'priority=10,tcp,actions=conjunction(1,2/2)',
    'priority=10,udp,actions=conjunction(2,2/2)',
    'priority=10,conj_id=1,ip,actions=output:p2',
    'priority=10,conj_id=2,ip,actions=output:p3',
  ].join('\n'));
  assert.equal(outPorts(of, 'in_port=1,tcp,nw_src=10.0.0.1'), 'p2');
  assert.equal(outPorts(of, 'in_port=1,udp,nw_src=10.0.0.1'), 'p3');
  assert.equal(outPorts(of, 'in_port=1,icmp,nw_src=10.0.0.1'), '');
});

test('conjunction: mod-flows that turns a clause into a plain flow changes the lookup', () => {
  const { of, br } = setup(TWO_CLAUSES);
  br.modFlows('priority=100,tcp,tp_dst=80,actions=output:p4', true, 1);
  assert.equal(outPorts(of, 'in_port=1,tcp,nw_src=10.0.0.1,tp_dst=80'), 'p4');
  br.modFlows('priority=100,tcp,tp_dst=80,actions=conjunction(7,2/2)', true, 2);
  assert.equal(outPorts(of, 'in_port=1,tcp,nw_src=10.0.0.1,tp_dst=80'), 'p2');
});

test('conjunction syntax: dump-flows prints conjunction(id,k/n) and conj_id as OVS', () => {
  const { br } = setup('priority=1,conj_id=0x10,ip,actions=drop\npriority=2,ip,actions=conjunction( 4294967295, 1/64 )');
  const lines = dumpFlows(br, 0).map((l) => l.replace(/^.*idle_age=\d+, /, ''));
  assert.deepEqual(lines, ['priority=2,ip actions=conjunction(4294967295,1/64)', 'priority=1,conj_id=16,ip actions=drop']);
});

test('conjunction syntax: OVS refusals, with its messages', () => {
  const refuse = (actions: string, msg: RegExp): void => {
    assert.throws(() => parseFlow(`ip,actions=${actions}`), (e: unknown) => e instanceof FlowSyntaxError && msg.test(e.message));
  };
  refuse('conjunction(1,1/1)', /at least 2 clauses/);
  refuse('conjunction(1,1/65)', /at most 64 clauses/);
  refuse('conjunction(1,0/2)', /clause index must be positive/);
  refuse('conjunction(1,3/2)', /less than or equal to number of clauses/);
  refuse('conjunction(1,1/2),output:1', /may be used along with "note" but not any other kind of action \(such as the "output"/);
  refuse('conjunction(x,1/2)', /expected conjunction\(ID,K\/N\)/);
  assert.equal(parseFlow('ip,actions=note:01,conjunction(1,1/2)').actions.length, 2);
});

// ---- differential against Open vSwitch -------------------------------------------------------

const skip = ovsUnavailableReason();
let oracle: OvsOracle | null = null;
after(() => { oracle?.stop(); });

const SRC = ['10.0.0.1', '10.0.0.2', '10.0.0.3'];
const DST_PORTS = [22, 80, 443];

/** A random table of clause flows over nw_src, tp_dst and in_port, conj_id flows and hard flows. */
const arbConjFlows = fc.record({
  prio: fc.array(fc.constantFrom(10, 20, 30), { minLength: 6, maxLength: 6 }),
  srcs: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 2, maxLength: 2 }),
  dports: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 2, maxLength: 2 }),
  inPort: fc.integer({ min: 1, max: 2 }),
  three: fc.boolean(),
  hardPrio: fc.constantFrom(5, 15, 25, 35),
  shadowPrio: fc.constantFrom(6, 16, 26),
  withConjFlow2: fc.boolean(),
}).map((r) => {
  const n = r.three ? 3 : 2;
  const f: string[] = [];
  for (const s of r.srcs) f.push(`priority=${r.prio[0]},ip,nw_src=${SRC[s]},actions=conjunction(1,1/${n})`);
  for (const d of r.dports) f.push(`priority=${r.prio[0]},tcp,tp_dst=${DST_PORTS[d]},actions=conjunction(1,2/${n}),conjunction(2,1/2)`);
  if (r.three) f.push(`priority=${r.prio[0]},in_port=${r.inPort},actions=conjunction(1,3/3)`);
  f.push(`priority=${r.prio[1]},ip,nw_src=${SRC[r.srcs[1]]},actions=conjunction(2,2/2)`);
  f.push(`priority=${r.prio[0]},conj_id=1,ip,actions=output:2`);
  if (r.withConjFlow2) f.push(`priority=${r.prio[1]},conj_id=2,tcp,actions=output:3`);
  f.push(`priority=${r.hardPrio},tcp,tp_dst=${DST_PORTS[r.dports[0]]},actions=output:4`);
  f.push(`priority=${r.shadowPrio},ip,nw_src=${SRC[r.srcs[0]]},actions=output:3,output:4`);
  f.push('priority=1,ip,actions=output:1');
  // Keep (match, priority) unique, as a flow table does (a later duplicate replaces the earlier).
  return [...new Map(f.map((x) => [x.replace(/actions=.*/, ''), x])).values()].join('\n');
});

test('conjunction: flowd takes the same rule and output ports as OVS on random tables', { skip: skip ?? false }, () => {
  oracle = OvsOracle.start();
  oracle.addBridge('br0', PORTS.map((name, i) => ({ name, ofport: i + 1 })));
  const sets = fc.sample(arbConjFlows, { seed: 2222, numRuns: 25 });
  const packets: string[] = [];
  for (const inp of [1, 2]) for (const s of SRC) for (const d of DST_PORTS) packets.push(`in_port=${inp},tcp,nw_src=${s},tp_dst=${d}`);
  packets.push('in_port=1,udp,nw_src=10.0.0.1,udp_dst=80');
  let nConj = 0, n = 0;
  const bad: string[] = [];
  for (const flows of sets) {
    oracle.replaceFlows('br0', flows);
    const { of } = setup(flows);
    for (const p of packets) {
      const o = oracle.trace('br0', p);
      const f = traceFields(of, 'br0', p, 0);
      const rule = (raw: string): string => /^ 0\. (.*)$/m.exec(raw)?.[1] ?? '';
      const ovsPorts = o.datapathActions === 'drop' ? '' : o.datapathActions.split(',')
        .map((x) => oracle?.dpPorts().get(Number(x))?.name).join(',');
      n++;
      if (rule(o.raw).startsWith('conj_id=')) nConj++;
      if (rule(o.raw) !== rule(f.text) || ovsPorts !== outPorts(of, p)) {
        bad.push(`${p}\n  ovs:   ${rule(o.raw)} -> ${ovsPorts}\n  flowd: ${rule(f.text)} -> ${outPorts(of, p)}\n${flows}`);
      }
    }
  }
  assert.deepEqual(bad.slice(0, 3), []);
  assert.ok(n >= 400, `traced ${n}`);
  assert.ok(nConj >= 50, `only ${nConj} traces took a conj_id flow`);
});
