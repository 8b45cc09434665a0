/**
 * A minimal in-memory bridge for translation tests (the shapes of ofproto/ofproto.ts): tables of
 * Rule in Classifiers, ports with kinds/tags/patch peers, a MAC table, flows added from
 * ovs-ofctl text through flow-syntax.ts. Test-only; the daemon uses bridge.ts.
 */
import { Classifier } from '../../src/ofproto/classifier';
import { Rule } from '../../src/ofproto/rule';
import { MacTable } from '../../src/ofproto/normal';
import { parseFlowsFile } from '../../src/ofproto/flow-syntax';
import type { LearnedFlow, XlateBridge, XlatePort, XlatePortKind } from '../../src/ofproto/ofproto';

export interface PortSpec {
  readonly ofport: number;
  readonly name: string;
  readonly kind?: XlatePortKind;
  readonly tag?: number;
  readonly peer?: string;
  readonly tunnelLocalIp?: number;
  readonly tunnelRemoteIp?: number;
}

export class TestBridge implements XlateBridge {
  readonly macs: MacTable;
  forwardBpdu = false;
  private readonly tables: Classifier<Rule>[] = [];
  private readonly ports: XlatePort[] = [];

  constructor(readonly name: string, ports: readonly PortSpec[], agingMs?: number) {
    this.macs = new MacTable(agingMs);
    for (const p of ports) {
      this.ports.push({
        ofport: p.ofport, name: p.name, kind: p.kind ?? 'system', tag: p.tag ?? -1, peer: p.peer ?? '',
        tunnelLocalIp: p.tunnelLocalIp ?? 0, tunnelRemoteIp: p.tunnelRemoteIp ?? 0,
      });
    }
  }

  table(id: number): Classifier<Rule> | undefined { return this.tables[id]; }
  port(ofport: number): XlatePort | undefined { return this.ports.find((p) => p.ofport === ofport); }
  portList(): readonly XlatePort[] { return this.ports; }

  private tableFor(id: number): Classifier<Rule> {
    let t = this.tables[id];
    if (t === undefined) { t = new Classifier<Rule>(); this.tables[id] = t; }
    return t;
  }

  addRule(r: Rule): void { this.tableFor(r.tableId).insert(r); }

  addLearnedFlow(f: LearnedFlow, nowMs: number): boolean {
    this.tableFor(f.tableId).insert(new Rule(f.tableId, f.match, f.priority, f.cookie, f.actions,
      f.idleTimeoutS, f.hardTimeoutS, 0, nowMs));
    return true;
  }

  /** Adds flows in ovs-ofctl add-flows syntax (port names resolve to this bridge's ports). */
  addFlows(text: string, nowMs = 0): Rule[] {
    const specs = parseFlowsFile(text, 'test', {
      resolvePort: (n) => this.ports.find((p) => p.name === n)?.ofport,
    });
    const out: Rule[] = [];
    for (const s of specs) {
      const t = s.tableId === 255 ? 0 : s.tableId;
      const r = new Rule(t, s.match, s.priority, s.cookie, s.actions, s.idleTimeoutS, s.hardTimeoutS, s.flags, nowMs);
      this.addRule(r);
      out.push(r);
    }
    return out;
  }

  allRules(): Rule[] {
    const out: Rule[] = [];
    for (const t of this.tables) if (t !== undefined) out.push(...t.rules());
    return out;
  }
}
