/**
 * extractKey must not allocate per call (DESIGN.md "Hot path habits"). This reads the source
 * of the per-packet functions and rejects the constructs that allocate in V8: object or array
 * literals, `new`, closures, subarray/slice, spreads, template strings and string building.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Repository root from dist/test/packet. */
const ROOT = join(__dirname, '..', '..', '..');

/** Bodies of the named top-level functions in a TypeScript file. */
function functionBodies(file: string, names: string[]): Map<string, string> {
  const src = readFileSync(join(ROOT, file), 'utf8');
  const out = new Map<string, string>();
  for (const name of names) {
    const start = src.search(new RegExp(`function ${name}\\(`));
    assert.ok(start >= 0, `${name} not found in ${file}`);
    // The body starts at the "{" after the signature's return type, "): Stop {".
    const sig = /\)\s*:\s*\w+\s*\{/g;
    sig.lastIndex = start;
    const m = sig.exec(src);
    assert.ok(m !== null, `${name}: no body`);
    const i = m.index + m[0].length - 1;
    let depth = 0;
    let j = i;
    for (; j < src.length; j++) {
      if (src[j] === '{') depth++;
      else if (src[j] === '}' && --depth === 0) break;
    }
    // Drop comments so prose cannot trip the checks.
    out.set(name, src.slice(i + 1, j).replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, ''));
  }
  return out;
}

const FORBIDDEN: [RegExp, string][] = [
  [/\bnew\s/, 'new'],
  [/=>/, 'closure'],
  [/\bfunction\b/, 'nested function'],
  [/\.(subarray|slice|map|filter|forEach|concat|from|of)\(/, 'allocating method'],
  [/\.\.\./, 'spread'],
  [/`/, 'template string'],
  [/[=(,:]\s*\{/, 'object literal'],
  [/[=(,]\s*\[/, 'array literal'],
  [/\bthrow\b/, 'throw'],
];

test('extractKey and the functions it calls per packet contain no allocating constructs', () => {
  const bodies = [
    ...functionBodies('src/packet/flowkey.ts', ['extractKey', 'extractIpv4', 'extractIpv6', 'extractL4', 'extractArp']),
    ...functionBodies('src/packet/ipv6.ts', ['ipv6Walk']),
    ...functionBodies('src/packet/vxlan.ts', ['checkVxlan']),
    ...functionBodies('src/packet/gre.ts', ['checkGre', 'greHeaderLen']),
  ];
  assert.equal(bodies.length, 9);
  for (const [name, body] of bodies) {
    assert.ok(body.length > 50, `${name}: empty body extracted`);
    for (const [re, what] of FORBIDDEN) assert.doesNotMatch(body, re, `${name} has a ${what}`);
  }
});
