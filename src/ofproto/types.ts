/**
 * Shared shapes of the ofproto layer, so rule storage (bridge.ts, by flow-mods) and the
 * classifier (classifier.ts) agree without importing each other's internals.
 *
 * A Match is a value/mask pair over the flow-key layout (packet/flowkey-layout.ts):
 * a key K matches when (K[w] & mask[w]) === value[w] for every word w.
 * Invariant: value[w] & ~mask[w] === 0 (parsers normalise; the classifier relies on it).
 */
export interface Match {
  readonly value: Uint32Array; // KEY_WORDS
  readonly mask: Uint32Array;  // KEY_WORDS
}

/**
 * One `conjunction(id,k/n)` action of a rule: the rule is clause `clause` (0-based, k - 1) of
 * the `nClauses`-clause conjunctive match `id` (OVS's struct cls_conjunction).
 */
export interface ConjClause {
  readonly id: number;
  readonly clause: number;
  readonly nClauses: number;
}

/** What the classifier needs of a rule. Rules with equal match and priority are "identical". */
export interface ClassifierRule {
  readonly match: Match;
  readonly priority: number;
  /**
   * The rule's conjunction clauses when its actions are conjunction(...) (with maybe notes), so
   * the rule is a "soft" match that the classifier never returns; absent or null otherwise.
   * May change between lookups (mod-flows replaces actions); the classifier reads it per lookup.
   */
  readonly conj?: readonly ConjClause[] | null;
}
