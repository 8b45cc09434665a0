/**
 * control/topology-apply.ts (issue 20): a topology change is applied to a running switch as a
 * diff (only the flows and ports that changed). Property: after any sequence of port changes
 * (added, moved between nodes, unbound, removed; several at once, as etcd events of one moment
 * arrive), every node's switch shows the same dump-flows and ports as a switch started afresh
 * from a full regeneration of that node's config from the same topology (with the same local
 * VLAN and port-number memory, which a fresh start of the daemon would not have: that is
 * what keeps numbers stable across changes). Random sequences from fixed seeds; each step
 * also checks the diff touched only part of the flows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyTopology, nodeConfigFor } from '../../src/control/topology-apply';
import { NodeConfig } from '../../src/control/config';
import { Switch } from '../../src/control/switch';
import { DvrNodeConfig } from '../../src/dvr/node-config';
import { parseTopology, Topology } from '../../src/dvr/topology';
import { dumpFlows } from '../../src/ofproto/dump';
import { GenSizes, generateTopology, homeNode, nodeName } from '../helpers/topology-gen';
import { rng } from '../helpers/rng';

const SIZES: GenSizes = { nodes: 5, routers: 3, ports: 18 };
/** Port indexes the steps may add beyond the generated ones. */
const EXTRA = 8;

/** What a user of dump-flows and show sees of a switch, without the statistics that age. */
function view(sw: Switch): string {
  const out: string[] = [];
  for (const [name, br] of [...sw.bridges].sort((a, b) => a[0].localeCompare(b[0]))) {
    out.push(`bridge ${name}`);
    for (const p of br.ports()) out.push(`  port ${p.ofport} ${p.name} ${p.kind} tag=${p.tag ?? ''} peer=${p.peerBridge ?? ''}/${p.peerPort ?? ''}`);
    const flows = dumpFlows(br, 0).map((l) => l.replace(/duration=[^,]*, /, '').replace(/idle_age=\d+, /, '').replace(/hard_age=\d+, /, ''));
    // Rules of equal table and priority have no order between them (OpenFlow); sort to compare.
    out.push(...flows.sort().map((f) => `  ${f}`));
  }
  return out.join('\n');
}

const nFlows = (c: NodeConfig): number => c.bridges.reduce((n, b) => n + b.flows.length, 0);

interface Running { node: NodeConfig; sw: Switch; current: DvrNodeConfig }

function runSequence(seed: number, steps: number): { changes: number; flowsTouched: number; flowsTotal: number } {
  const rand = rng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
  const nodes = Array.from({ length: SIZES.nodes }, (_, k) => nodeName(k + 1));
  /** Port index -> binding ('' unbound); absent = not in the topology. */
  const bound = new Map<number, string>();
  for (let i = 0; i < SIZES.ports; i++) bound.set(i, homeNode(SIZES, i));
  const extra = Array.from({ length: EXTRA }, (_, k) => SIZES.ports + k);
  const topologyNow = (k: number): Topology =>
    parseTopology(`step${k}.yaml`, generateTopology(SIZES, (i) => bound.get(i) ?? null, extra));

  const first = topologyNow(0);
  const running: Running[] = nodes.map((n) => {
    const node: NodeConfig = { file: '-', node: n, controlSocket: '', bridges: [] };
    const current = nodeConfigFor(node, first);
    return { node, current, sw: new Switch(current, { open: () => null }, { nowMs: () => 0 }) };
  });
  let flowsTouched = 0;
  let flowsTotal = 0;
  let changes = 0;
  for (let k = 1; k <= steps; k++) {
    // One to three port changes at once.
    const what: string[] = [];
    for (let c = 1 + Math.floor(rand() * 3); c > 0; c--) {
      const present = [...bound.keys()];
      const absent = [...extra, ...Array.from({ length: SIZES.ports }, (_, i) => i)].filter((i) => !bound.has(i));
      const r = rand();
      if ((r < 0.3 || present.length < 4) && absent.length > 0) {
        const i = pick(absent);
        bound.set(i, pick(nodes));
        what.push(`add p${i}@${bound.get(i)}`);
      } else if (r < 0.75) {
        const i = pick(present);
        const to = rand() < 0.15 ? '' : pick(nodes.filter((n) => n !== bound.get(i)));
        bound.set(i, to);
        what.push(`move p${i}->${to || '(unbound)'}`);
      } else {
        const i = pick(present);
        bound.delete(i);
        what.push(`remove p${i}`);
      }
    }
    const topo = topologyNow(k);
    // The fresh side reads its own copy: nothing computed for `topo` may leak into it.
    const again = topologyNow(k);
    for (const r of running) {
      const before = r.current;
      const { next, diffs } = applyTopology(r.sw, r.node, r.current, topo);
      r.current = next;
      const fresh = new Switch(nodeConfigFor(r.node, again, before), { open: () => null }, { nowMs: () => 0 });
      assert.equal(view(r.sw), view(fresh), `seed ${seed} step ${k} (${what.join(', ')}), node ${r.node.node}: incremental != fresh`);
      fresh.close();
      flowsTouched += diffs.reduce((n, d) => n + d.addFlows.length + d.modifyFlows.length + d.deleteFlows.length, 0);
      flowsTotal += nFlows(next);
      changes++;
    }
  }
  for (const r of running) r.sw.close();
  return { changes, flowsTouched, flowsTotal };
}

test('port changes applied as diffs give every node the dump-flows and ports of a fresh full apply (random sequences)', () => {
  let touched = 0;
  let total = 0;
  for (const seed of [1, 2, 3]) {
    const r = runSequence(seed, 15);
    touched += r.flowsTouched;
    total += r.flowsTotal;
  }
  // The diffs are partial: over all steps and nodes, far fewer flows change than exist.
  assert.ok(touched > 0, 'the sequences changed flows');
  assert.ok(touched < total / 4, `diffs touched ${touched} of ${total} flows`);
});

test('a port that goes away and comes back on another node ends as a fresh apply would make it', () => {
  const nodes = [nodeName(1), nodeName(2)];
  const moved = 3;
  const text = (where: string | null): string => generateTopology(SIZES, (i) => (i === moved ? where : homeNode(SIZES, i)));
  for (const n of nodes) {
    const node: NodeConfig = { file: '-', node: n, controlSocket: '', bridges: [] };
    let current = nodeConfigFor(node, parseTopology('a.yaml', text(homeNode(SIZES, moved))));
    const sw = new Switch(current, { open: () => null }, { nowMs: () => 0 });
    for (const where of [null, nodes[0], '', nodes[1], null]) {
      const topo = parseTopology('b.yaml', text(where));
      const before = current;
      current = applyTopology(sw, node, current, topo).next;
      const fresh = new Switch(nodeConfigFor(node, topo, before), { open: () => null }, { nowMs: () => 0 });
      assert.equal(view(sw), view(fresh), `${n}: p${moved} -> ${where}`);
      fresh.close();
    }
    sw.close();
  }
});
