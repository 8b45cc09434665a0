/**
 * Collects generated flows as ovs-ofctl add-flows lines, "table=T,priority=P,MATCH actions=A",
 * and hands them out in dump-flows order (table ascending, priority descending, then the order
 * they were added), so `flowctl dump-flows` of a generated bridge reads top to bottom.
 * Called by: the dvr/flows-*.ts generators; dvr/diff.ts splits the same text back.
 */

export interface FlowRow {
  readonly table: number;
  readonly priority: number;
  /** Match fields without table/priority, '' for match-all. */
  readonly match: string;
  readonly actions: string;
}

export function flowText(r: FlowRow): string {
  return `table=${r.table},priority=${r.priority}${r.match === '' ? '' : `,${r.match}`} actions=${r.actions}`;
}

export class FlowList {
  readonly rows: FlowRow[] = [];
  private readonly seen = new Set<string>();

  /** Adds a flow; an identical (table, priority, match) is added only once (the first wins). */
  add(table: number, priority: number, match: string, actions: string): void {
    const k = `${table}/${priority}/${match}`;
    if (this.seen.has(k)) return;
    this.seen.add(k);
    this.rows.push({ table, priority, match, actions });
  }

  /** Flow lines in dump-flows order. */
  texts(): string[] {
    const idx = this.rows.map((r, i) => ({ r, i }));
    idx.sort((a, b) => a.r.table - b.r.table || b.r.priority - a.r.priority || a.i - b.i);
    return idx.map((x) => flowText(x.r));
  }
}

/** Splits a generated line into its identity (table, priority, match) and its actions. */
export function splitFlow(text: string): { key: string; actions: string } {
  const k = text.indexOf(' actions=');
  if (k < 0) return { key: text, actions: '' };
  return { key: text.slice(0, k), actions: text.slice(k + ' actions='.length) };
}
