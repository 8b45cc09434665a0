/**
 * The Open vSwitch oracle for differential tests: a private ovsdb-server + ovs-vswitchd
 * (`--enable-dummy=override --disable-system`) in a fresh temporary directory, with bridges of
 * `datapath_type=dummy` and ports of `type=dummy` (or `patch`), driven through unix sockets only.
 *
 * Who uses it: test/ofproto/ovs-diff*.test.ts. Everything is synchronous (execFileSync): a test
 * loads flows, traces packets, and compares with flowd.
 *
 * Ownership: the oracle owns the two daemons it started (by the PIDs in its pid files) and the
 * temporary directory; stop() kills exactly those PIDs (after checking their command line names
 * the directory) and removes the directory. stop() also runs at process exit if a test forgot.
 * The daemons run in the foreground as children of the test process under `setpriv --pdeathsig
 * KILL`, so a test process that is killed (no exit hook runs) takes them with it.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

/** Why the oracle cannot run here, or null when it can. */
export function ovsUnavailableReason(): string | null {
  for (const exe of ['ovsdb-tool', 'ovsdb-server', 'ovs-vswitchd', 'ovs-vsctl', 'ovs-ofctl', 'ovs-appctl']) {
    try {
      execFileSync('sh', ['-c', `command -v ${exe}`], { stdio: 'pipe' });
    } catch {
      return `${exe} not found (install Debian's openvswitch-switch)`;
    }
  }
  if (!fs.existsSync(SCHEMA)) return `${SCHEMA} missing`;
  return null;
}

export interface OvsPort {
  readonly name: string;
  readonly ofport: number;
  /** 'dummy' (default) or 'patch' with `peer`. */
  readonly type?: 'dummy' | 'patch';
  readonly peer?: string;
  /** Access-port VLAN tag (ovsdb Port.tag), for NORMAL. */
  readonly tag?: number;
}

/** The parts of `ovs-appctl ofproto/trace` output a test compares. */
export interface OvsTrace {
  readonly raw: string;
  /** Text after "Final flow: " ("unchanged" when OVS printed that). */
  readonly finalFlow: string;
  /** Text after "Megaflow: ". */
  readonly megaflow: string;
  /** Text after the first "Datapath actions: ". */
  readonly datapathActions: string;
  /**
   * Every pass's datapath actions in order: the first, then one per recirculation the trace
   * resumed (ct(table=N): with --ct-next's state, else trk|new). Recirculation ids read
   * `recirc(N)`: they number a daemon's frozen states, which earlier traces share.
   */
  readonly datapathPasses: string[];
}

export class OvsOracle {
  private stopped = false;
  private readonly env: NodeJS.ProcessEnv;
  private readonly exitHook = (): void => this.stop();
  /** Datapath port number -> "bridge:ofport", refreshed by dpPorts(). */
  private dpMap: Map<number, { bridge: string; ofport: number; name: string }> | null = null;

  private constructor(readonly dir: string) {
    this.env = { ...process.env, OVS_RUNDIR: dir, OVS_DBDIR: dir, OVS_LOGDIR: dir, OVS_SYSCONFDIR: dir };
    process.on('exit', this.exitHook);
  }

  /** Starts the daemons; throws (after cleaning up) when they do not come up. */
  static start(): OvsOracle {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-ovs-'));
    const o = new OvsOracle(dir);
    try {
      o.run('ovsdb-tool', ['create', `${dir}/conf.db`, SCHEMA]);
      o.daemon('ovsdb-server', [`${dir}/conf.db`, `--remote=punix:${dir}/db.sock`,
        `--pidfile=${dir}/ovsdb-server.pid`, `--unixctl=${dir}/ovsdb-server.ctl`,
        `--log-file=${dir}/ovsdb-server.log`, '--no-chdir'], `${dir}/db.sock`);
      o.vsctl(['--no-wait', 'init']);
      o.daemon('ovs-vswitchd', [`unix:${dir}/db.sock`, '--enable-dummy=override', '--disable-system',
        `--pidfile=${dir}/ovs-vswitchd.pid`, `--unixctl=${dir}/ovs-vswitchd.ctl`,
        `--log-file=${dir}/ovs-vswitchd.log`, '--no-chdir'], `${dir}/ovs-vswitchd.ctl`);
    } catch (e) {
      o.stop();
      throw e;
    }
    return o;
  }

  /**
   * Starts `exe` in the foreground as this process's child, dying with it (parent-death signal),
   * and waits up to 10 s for `ready` (its socket) to exist; throws with its log's tail otherwise.
   */
  private daemon(exe: string, args: string[], ready: string): void {
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', exe, ...args], { env: this.env, stdio: 'ignore' });
    child.unref();
    const deadline = Date.now() + 10000;
    while (!fs.existsSync(ready)) {
      if (Date.now() > deadline || child.exitCode !== null) {
        let log = '';
        try { log = fs.readFileSync(path.join(this.dir, `${exe}.log`), 'utf8').slice(-500); } catch { /* none yet */ }
        throw new Error(`${exe} did not come up (no ${ready} within 10 s): ${log}`);
      }
      execFileSync('sleep', ['0.02']);
    }
  }

  private run(exe: string, args: string[], input?: string): string {
    return execFileSync(exe, args, { env: this.env, input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 20000 }).toString();
  }

  vsctl(args: string[]): string {
    return this.run('ovs-vsctl', [`--db=unix:${this.dir}/db.sock`, '--timeout=10', ...args]);
  }

  appctl(args: string[]): string {
    return this.run('ovs-appctl', ['-t', `${this.dir}/ovs-vswitchd.ctl`, ...args]);
  }

  ofctl(args: string[], input?: string): string {
    return this.run('ovs-ofctl', args, input);
  }

  private mgmt(bridge: string): string {
    return `unix:${this.dir}/${bridge}.mgmt`;
  }

  /** Adds a dummy-datapath bridge with the given ports (fail_mode=secure: no default flow). */
  addBridge(bridge: string, ports: readonly OvsPort[], failMode: 'secure' | 'standalone' = 'secure'): void {
    const args = ['add-br', bridge, '--', 'set', 'bridge', bridge, 'datapath_type=dummy', `fail_mode=${failMode}`];
    for (const p of ports) {
      args.push('--', 'add-port', bridge, p.name);
      if (p.tag !== undefined) args.push(`tag=${p.tag}`);
      args.push('--', 'set', 'interface', p.name, `type=${p.type ?? 'dummy'}`, `ofport_request=${p.ofport}`);
      if (p.type === 'patch') args.push(`options:peer=${p.peer ?? ''}`);
    }
    this.vsctl(args);
    this.dpMap = null;
  }

  /** Replaces all flows of `bridge` by `flows` (one per line, ovs-ofctl syntax). */
  replaceFlows(bridge: string, flows: string): void {
    this.ofctl(['del-flows', this.mgmt(bridge)]);
    this.addFlows(bridge, flows);
  }

  addFlows(bridge: string, flows: string): void {
    const f = path.join(this.dir, 'flows.txt');
    fs.writeFileSync(f, flows.endsWith('\n') ? flows : `${flows}\n`);
    this.ofctl(['add-flows', this.mgmt(bridge), f]);
  }

  dumpFlows(bridge: string): string {
    return this.ofctl(['dump-flows', this.mgmt(bridge)]);
  }

  /** `ovs-appctl ofproto/trace BRIDGE FLOW`, parsed. */
  trace(bridge: string, flow: string): OvsTrace {
    const raw = this.appctl(['ofproto/trace', bridge, flow]);
    return parseOvsTrace(raw);
  }

  /** Datapath port number -> bridge, OpenFlow port and name (from `dpif/show`). */
  dpPorts(): Map<number, { bridge: string; ofport: number; name: string }> {
    if (this.dpMap !== null) return this.dpMap;
    const m = new Map<number, { bridge: string; ofport: number; name: string }>();
    let bridge = '';
    for (const line of this.appctl(['dpif/show']).split('\n')) {
      const b = /^\s{2}(\S+):$/.exec(line);
      if (b) { bridge = b[1]; continue; }
      // "    p1 1/2: (dummy)"  -> name p1, ofport 1, dp port 2
      const p = /^\s{4}(\S+) (\d+|\S+)\/(\d+):/.exec(line);
      if (p && /^\d+$/.test(p[2])) m.set(Number(p[3]), { bridge, ofport: Number(p[2]), name: p[1] });
    }
    this.dpMap = m;
    return m;
  }

  /** Kills the daemons this oracle started (by PID) and removes its directory. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    process.removeListener('exit', this.exitHook);
    for (const name of ['ovs-vswitchd', 'ovsdb-server']) {
      const pidFile = path.join(this.dir, `${name}.pid`);
      let pid = 0;
      try { pid = Number(fs.readFileSync(pidFile, 'utf8').trim()); } catch { continue; }
      if (!(pid > 0)) continue;
      let cmd = '';
      try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { continue; }
      if (!cmd.includes(this.dir)) continue; // not ours: never kill it
      try { process.kill(pid, 'SIGTERM'); } catch { /* already gone */ }
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline && running(pid)) {
        execFileSync('sleep', ['0.05']);
      }
      if (running(pid)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Whether `pid` still runs: a daemon that exited stays a zombie until this process (its parent)
 * reaps it, which libuv does only when the event loop turns, not inside stop()'s wait.
 */
function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Pulls "Final flow", "Megaflow" and "Datapath actions" out of ofproto/trace text. */
export function parseOvsTrace(raw: string): OvsTrace {
  const pick = (label: string): string => {
    const m = new RegExp(`^${label}: (.*)$`, 'm').exec(raw);
    return m ? m[1].trim() : '';
  };
  const datapathPasses = [...raw.matchAll(/^Datapath actions: (.*)$/gm)]
    .map((m) => m[1].trim().replace(/recirc\(0x[0-9a-f]+\)/g, 'recirc(N)'));
  return { raw, finalFlow: pick('Final flow'), megaflow: pick('Megaflow'), datapathActions: pick('Datapath actions'), datapathPasses };
}

/** Splits an OVS flow string ("a=1,b=2,ip,...") into a map of field -> value ('' for flags). */
export function parseFlowFields(s: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of s.split(',')) {
    if (part === '') continue;
    const i = part.indexOf('=');
    if (i < 0) m.set(part, ''); else m.set(part.slice(0, i), part.slice(i + 1));
  }
  return m;
}
