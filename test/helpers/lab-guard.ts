/**
 * Shared by the tests that bring the namespace lab up: the lab's names are fixed (`fl-`), so
 * there is one lab per machine. Tests skip with a reason when they cannot run, and wait until
 * no other test owns the `fl-` namespaces before bringing theirs up.
 */
import { spawnSync } from 'node:child_process';
import { nativeAvailable } from '../../src/native/io';

export function labBusy(): boolean {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').some((l) => l.startsWith('fl-'));
}

/** false when a lab test can run here, else why not; `tools` are commands it needs. */
export function labSkipReason(tools: readonly string[]): string | false {
  if (process.getuid?.() !== 0) return 'needs root (namespaces, AF_PACKET)';
  if (!nativeAvailable()) return 'native addon not built (scripts/build-native.sh)';
  for (const t of tools) if (spawnSync('which', [t]).status !== 0) return `${t} not installed`;
  return false;
}

/** How long the `fl-` namespaces must stay free before a test takes them. */
const QUIET_MS = 1000;

/**
 * Resolves when the `fl-` namespaces have been free for 1 s in a row (another lab test tears
 * down and brings up between its cases, within milliseconds: up() plumbs right after its own
 * down); rejects after `timeoutMs`. Namespace test files of one run never overlap
 * (scripts/test-serial.js), and other runs hold /work/ci/ns.lock: this is the fallback.
 */
export async function waitLabFree(timeoutMs = 600000): Promise<void> {
  let freeSince = 0;
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (labBusy()) freeSince = 0;
    else if (freeSince === 0) freeSince = Date.now();
    else if (Date.now() - freeSince >= QUIET_MS) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('fl- namespaces stay in use by another lab');
}
