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
  /** '' or "0x..." (the firewall's rule flows carry one per security-group rule). */
  readonly cookie: string;
}

export function flowText(r: FlowRow): string {
  const c = r.cookie === '' ? '' : `cookie=${r.cookie},`;
  return `${c}table=${r.table},priority=${r.priority}${r.match === '' ? '' : `,${r.match}`} actions=${r.actions}`;
}

export class FlowList {
  readonly rows: FlowRow[] = [];
  private readonly seen = new Set<string>();

  /** Adds a flow; an identical (table, priority, match) is added only once (the first wins). */
  add(table: number, priority: number, match: string, actions: string, cookie = ''): void {
    const k = `${table}/${priority}/${match}`;
    if (this.seen.has(k)) return;
    this.seen.add(k);
    this.rows.push({ table, priority, match, actions, cookie });
  }

  /** Flow lines in dump-flows order. */
  texts(): string[] {
    const idx = this.rows.map((r, i) => ({ r, i }));
    idx.sort((a, b) => a.r.table - b.r.table || b.r.priority - a.r.priority || a.i - b.i);
    return idx.map((x) => flowText(x.r));
  }
}

/**
 * Splits a generated line into its identity (table, priority, match: what del-flows --strict
 * names) and the rest (its actions, behind the cookie when it has one, so a new cookie on the
 * same match is a modification).
 */
export function splitFlow(text: string): { key: string; actions: string } {
  let t = text;
  let cookie = '';
  const c = /^cookie=(0x[0-9a-f]+),/.exec(t);
  if (c !== null) { cookie = c[1]; t = t.slice(c[0].length); }
  const k = t.indexOf(' actions=');
  const key = k < 0 ? t : t.slice(0, k);
  const actions = k < 0 ? '' : t.slice(k + ' actions='.length);
  return { key, actions: cookie === '' ? actions : `${actions} cookie=${cookie}` };
}
