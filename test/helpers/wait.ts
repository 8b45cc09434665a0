/**
 * Waiting for what a user would see, for tests that watch daemons, etcd, keepalived or the
 * wire: poll a condition until it holds. Not a test itself.
 * Called by: test/control (etcd-topology, keepalived, topology-source, openflow/ovs-ofctl) and
 * test/integration (etcd-daemon, lab-etcd, ha-daemons, ha-ct-sync, ha-lab, dvr-lab,
 * vxlan-kernel, gre-two-daemons) tests.
 *
 * Why a poll and not a sleep: a fixed sleep followed by an assertion states how fast a busy
 * machine is (CI runs two test files at once on two cores, next to whatever else runs), and
 * goes red when it is slower. The deadline here only turns a condition that never comes into
 * a failure that names what was awaited (and, through `detail`, what was seen instead) before
 * the runner's own timeout does; it is generous (WAIT_MS) because reaching it means "broken",
 * never "slow". How fast something happens is measured in benchmarks, or printed by the test
 * (waitFor returns the ms it took), never asserted.
 */
import * as fs from 'node:fs';

/** Deadline of a wait unless the caller names one: far above any healthy run on a busy machine. */
export const WAIT_MS = 30000;

export interface WaitOptions {
  /** Give up after this long (ms); default WAIT_MS. */
  timeoutMs?: number;
  /** Time between two probes (ms); default 20. */
  pollMs?: number;
  /** What was seen instead, added to the failure message. */
  detail?: () => string | Promise<string>;
}

/**
 * Probes `ok` until it returns true; resolves with the ms that took. Rejects, naming `what`,
 * when `timeoutMs` passes first. `ok` may be async (a request to a daemon); a probe that throws
 * fails the wait at once (a broken probe is not a slow condition).
 */
export async function waitFor(what: string, ok: () => boolean | Promise<boolean>, opts: WaitOptions = {}): Promise<number> {
  const timeoutMs = opts.timeoutMs ?? WAIT_MS;
  const t0 = Date.now();
  for (;;) {
    if (await ok()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) {
      const seen = opts.detail === undefined ? '' : `; seen: ${await opts.detail()}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${seen}`);
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 20));
  }
}

/**
 * Waits until `ok` has held for `forMs` on end (every probe true): "it settled and stays so",
 * where a single look after a sleep would race a transient (two VRRP masters for one advert
 * interval, a route being replaced). Resolves with the ms until it first held.
 */
export async function waitSteady(what: string, ok: () => boolean | Promise<boolean>, forMs: number, opts: WaitOptions = {}): Promise<number> {
  const timeoutMs = opts.timeoutMs ?? WAIT_MS;
  const t0 = Date.now();
  let since = -1;
  for (;;) {
    const now = Date.now();
    if (await ok()) {
      if (since < 0) since = now;
      if (now - since >= forMs) return since - t0;
    } else {
      since = -1;
    }
    if (now - t0 > timeoutMs) {
      const seen = opts.detail === undefined ? '' : `; seen: ${await opts.detail()}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} to hold for ${forMs} ms${seen}`);
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 20));
  }
}

/**
 * Waits until `file` contains `text`: a tool that says when it is ready (tcpdump's "listening
 * on" in the log a test gave it), where a sleep would guess. The file's tail goes into the
 * failure message.
 */
export function waitForText(what: string, file: string, text: string, opts: WaitOptions = {}): Promise<number> {
  const read = (): string => { try { return fs.readFileSync(file, 'utf8'); } catch { return ''; } };
  return waitFor(what, () => read().includes(text), { detail: () => read().slice(-500) || `${file} empty`, ...opts });
}
