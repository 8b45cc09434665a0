/**
 * Supervision of keepalived for the HA routers of one node (issue 14 item 2): one keepalived
 * per HA router, in a network namespace of its own attached to br-int through the router's
 * ha- port, as Neutron runs it in the router's namespace.
 * Called by: control/daemon.ts (sync on start and on each topology change, failover and status
 * for flowctl, stop on exit); test/control/keepalived.test.ts. Control plane only.
 *
 * Per router R on node N (l3 agent of R):
 * - namespace `<nsPrefix><N>-<R>` with `lo` and the ha- device (the router's ha- port: its
 *   MAC and address on the HA network, dvr/ha.ts); the other end of the veth, with the same
 *   name, stays in the node's namespace (`nodeNs`, '' = this process's) where flowd attaches
 *   it to br-int like a VM port;
 * - in `<runDir>/<R>/`: keepalived.conf (control/keepalived-conf.ts), the notify FIFO,
 *   keepalived's pid files;
 * - keepalived runs in the foreground as this process's child, under `setpriv --pdeathsig
 *   KILL`, so it dies with flowd (a SIGKILLed flowd must not leave a master behind that can
 *   no longer forward); a keepalived of a previous flowd, found by its pid file, is killed
 *   before a new one starts;
 * - state changes arrive on the FIFO (`INSTANCE "VR_n" MASTER 50`) and go to `onState` at
 *   once; a child that exits is reported as state `stopped` and restarted after a second.
 * Config changes reach keepalived as SIGHUP, at most one per 3 x advert interval per router
 * (Neutron's throttle: a storm of reloads made two masters); changes inside the window are
 * folded into one SIGHUP at its end; a change before a new keepalived's first FIFO report
 * waits for that report (until its handler is installed, SIGHUP would kill it).
 * Adverts seen: a libpcap watcher (netdev/cap-capture.ts, filter `ip proto 112`) on the host
 * end of each ha- device sees every VRRP advert the instance sends and every one flowd
 * delivers to it from the peers; status() reports, per peer, when its last advert arrived
 * (only when the host end is in this process's namespace; otherwise the reason is shown).
 * Manual failover (`flowctl ha failover R`): the master's ha- device inside its namespace is
 * set down, keepalived goes to FAULT (track_interface) and a backup takes over after the
 * master-down interval; the device comes back up after `holdMs` and that keepalived rejoins
 * as BACKUP (nopreempt: it takes nothing back).
 * Owns: the namespaces, veths, files and child processes it made; stop() removes them all.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { HaRouter, haRoutersOn } from '../dvr/ha';
import { Topology } from '../dvr/topology';
import { keepalivedConf, parseNotifyLine, VrrpState } from './keepalived-conf';
import { LogFields } from './log';
import type { CapCapture } from '../netdev/cap-capture';

/** libpcap buffer of an advert watcher: adverts are ~60-byte frames a few times a second. */
const ADVERT_WATCH_RING_BYTES = 256 * 1024;

export interface KeepalivedSupervisorOptions {
  node: string;
  /** Directory for per-router files (created). */
  runDir: string;
  /** Prefix of the namespaces it creates. */
  nsPrefix: string;
  /** Namespace the host ends of the ha- veths go to ('' = this process's). */
  nodeNs?: string;
  keepalived?: string;
  onState: (router: string, state: VrrpState) => void;
  log?: (level: 'info' | 'warn' | 'error', event: string, fields: LogFields) => void;
}

export interface HaInstanceStatus {
  router: string;
  vrid: number;
  state: VrrpState;
  /** When the state last changed (ms since the epoch). */
  sinceMs: number;
  pid: number;
  namespace: string;
  device: string;
  address: string;
  peers: string[];
  advertIntMs: number;
  reloads: number;
  /** Per peer: its last advert seen on the ha- port (0 = none yet). */
  peerAdverts: { node: string; ip: string; lastMs: number; adverts: number }[];
  /** Why adverts are not watched ('' when they are). */
  advertWatch: string;
}

interface Instance {
  hr: HaRouter;
  ns: string;
  dir: string;
  conf: string;
  advertIntMs: number;
  child: ChildProcess | null;
  fifo: net.Socket | null;
  state: VrrpState;
  sinceMs: number;
  lastHupMs: number;
  hupTimer: NodeJS.Timeout | null;
  /** The running child has written to the FIFO: keepalived has its SIGHUP handler installed. */
  heard: boolean;
  /** A reload came before that: sent when the child is first heard. */
  hupDeferred: boolean;
  restartTimer: NodeJS.Timeout | null;
  reloads: number;
  stopping: boolean;
  /** Last advert (ms) and count per source address, from the watcher. */
  adverts: Map<string, { lastMs: number; n: number }>;
  watcher: CapCapture | null;
  watchError: string;
}

function run(cmd: string, args: string[]): { ok: boolean; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { ok: r.status === 0, err: (r.stderr ?? '').trim() || (r.error?.message ?? '') };
}

function must(cmd: string, args: string[]): void {
  const r = run(cmd, args);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')}: ${r.err}`);
}

export class KeepalivedSupervisor {
  private readonly instances = new Map<string, Instance>();
  private readonly keepalived: string;
  private readonly nodeNs: string;

  constructor(private readonly opts: KeepalivedSupervisorOptions) {
    this.keepalived = opts.keepalived ?? 'keepalived';
    this.nodeNs = opts.nodeNs ?? '';
  }

  private log(level: 'info' | 'warn' | 'error', event: string, fields: LogFields): void {
    this.opts.log?.(level, event, fields);
  }

  /** `ip` in the node's namespace. */
  private nodeIp(args: string[]): string[] {
    return this.nodeNs === '' ? args : ['netns', 'exec', this.nodeNs, 'ip', ...args];
  }

  /** Namespace name of router `router` on this node. */
  namespaceOf(router: string): string {
    return `${this.opts.nsPrefix}${this.opts.node}-${router}`;
  }

  /**
   * Makes the running instances match `topo`: starts routers new to this node, stops those
   * gone, rewrites changed configs and signals them (throttled). The namespaces and ha-
   * devices exist when this returns, so the caller can attach the ha- ports right after.
   */
  sync(topo: Topology): void {
    const want = new Map(haRoutersOn(topo, this.opts.node).map((h) => [h.router.name, h]));
    for (const [name, inst] of this.instances) if (!want.has(name)) this.remove(inst);
    for (const [name, hr] of want) {
      const inst = this.instances.get(name);
      const conf = keepalivedConf(hr, this.opts.node, topo.ha.advertIntMs, { notifyFifo: this.fifoPath(name) });
      if (inst === undefined) { this.add(hr, conf, topo.ha.advertIntMs); continue; }
      inst.hr = hr;
      inst.advertIntMs = topo.ha.advertIntMs;
      if (inst.conf !== conf) {
        inst.conf = conf;
        fs.writeFileSync(path.join(inst.dir, 'keepalived.conf'), conf);
        this.reload(inst);
      }
    }
  }

  private fifoPath(router: string): string {
    return path.join(this.opts.runDir, router, 'notify.fifo');
  }

  private add(hr: HaRouter, conf: string, advertIntMs: number): void {
    const name = hr.router.name;
    const dir = path.join(this.opts.runDir, name);
    fs.mkdirSync(dir, { recursive: true });
    const inst: Instance = {
      hr, ns: this.namespaceOf(name), dir, conf, advertIntMs, child: null, fifo: null, state: 'backup', sinceMs: Date.now(),
      lastHupMs: 0, hupTimer: null, heard: false, hupDeferred: false, restartTimer: null, reloads: 0, stopping: false,
      adverts: new Map(), watcher: null, watchError: '',
    };
    this.instances.set(name, inst);
    this.killStale(inst);
    this.plumb(inst);
    this.watchAdverts(inst);
    fs.writeFileSync(path.join(dir, 'keepalived.conf'), conf);
    this.openFifo(inst);
    this.start(inst);
  }

  /** A keepalived left by a previous flowd (its pid file names it) must not keep the VIP. */
  private killStale(inst: Instance): void {
    for (const f of ['keepalived.pid', 'vrrp.pid']) {
      const p = path.join(inst.dir, f);
      let pid = 0;
      try { pid = Number(fs.readFileSync(p, 'utf8').trim()); } catch { continue; }
      let cmd = '';
      try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { /* gone */ }
      if (pid > 0 && cmd.includes('keepalived') && cmd.includes(inst.dir)) {
        try { process.kill(pid, 'SIGKILL'); this.log('warn', 'keepalived_stale_killed', { router: inst.hr.router.name, pid }); } catch { /* gone */ }
      }
      try { fs.unlinkSync(p); } catch { /* gone */ }
    }
  }

  /** Namespace, veth pair (host end in the node's namespace), address, MAC, links up. */
  private plumb(inst: Instance): void {
    const dev = inst.hr.device;
    const me = inst.hr.ports.find((p) => p.node === this.opts.node)!;
    if (run('ip', ['netns', 'pids', inst.ns]).ok) run('ip', ['netns', 'del', inst.ns]);
    run('ip', this.nodeIp(['link', 'del', dev]));
    must('ip', ['netns', 'add', inst.ns]);
    const tmp = `hat${process.pid % 100000}`;
    must('ip', this.nodeIp(['link', 'add', dev, 'type', 'veth', 'peer', 'name', tmp, 'netns', inst.ns]));
    const inNs = (args: string[]): void => must('ip', ['-n', inst.ns, ...args]);
    inNs(['link', 'set', tmp, 'name', dev]);
    inNs(['link', 'set', dev, 'address', me.mac]);
    inNs(['addr', 'add', `${me.ip}/${me.prefixLen}`, 'dev', dev]);
    inNs(['link', 'set', 'lo', 'up']);
    inNs(['link', 'set', dev, 'up']);
    must('ip', this.nodeIp(['link', 'set', dev, 'up']));
  }

  /** VRRP adverts on the host end of the ha- device, by source address (see the header). */
  private watchAdverts(inst: Instance): void {
    if (this.nodeNs !== '') { inst.watchError = 'ha- device in another namespace'; return; }
    try {
      const { CapCapture: Cap } = require('../netdev/cap-capture') as typeof import('../netdev/cap-capture');
      inst.watcher = new Cap(inst.hr.device, 'ip proto 112', (f) => {
        // Ethernet + IPv4 (RFC 791: source address at IP offset 12); VRRP is IP protocol 112.
        if (f.length < 34 || f[12] !== 0x08 || f[13] !== 0x00 || f[23] !== 112) return;
        const ip = `${f[26]}.${f[27]}.${f[28]}.${f[29]}`;
        const a = inst.adverts.get(ip);
        if (a === undefined) inst.adverts.set(ip, { lastMs: Date.now(), n: 1 });
        else { a.lastMs = Date.now(); a.n++; }
      }, ADVERT_WATCH_RING_BYTES);
    } catch (e) {
      inst.watchError = (e as Error).message;
      this.log('warn', 'vrrp_advert_watch_failed', { router: inst.hr.router.name, error: inst.watchError });
    }
  }

  private openFifo(inst: Instance): void {
    const f = this.fifoPath(inst.hr.router.name);
    try { fs.unlinkSync(f); } catch { /* none */ }
    must('mkfifo', ['-m', '600', f]);
    // Read-write, so the open does not wait for keepalived and no EOF comes when it restarts.
    const fd = fs.openSync(f, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    const sock = new net.Socket({ fd, readable: true, writable: false });
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = parseNotifyLine(line);
        if (m === null || m.vrid !== inst.hr.vrid) continue;
        if (!inst.heard) {
          inst.heard = true;
          if (inst.hupDeferred) { inst.hupDeferred = false; this.reload(inst); }
        }
        this.setState(inst, m.state);
      }
    });
    sock.on('error', (e) => this.log('warn', 'keepalived_fifo_error', { router: inst.hr.router.name, error: e.message }));
    inst.fifo = sock;
  }

  private setState(inst: Instance, state: VrrpState): void {
    if (state === inst.state) return;
    inst.state = state;
    inst.sinceMs = Date.now();
    this.log('info', 'ha_state', { router: inst.hr.router.name, vrid: inst.hr.vrid, state });
    this.opts.onState(inst.hr.router.name, state);
  }

  private start(inst: Instance): void {
    const args = ['netns', 'exec', inst.ns, 'setpriv', '--pdeathsig', 'KILL', this.keepalived,
      '--dont-fork', '--log-console', '--vrrp', '-f', path.join(inst.dir, 'keepalived.conf'),
      '-p', path.join(inst.dir, 'keepalived.pid'), '-r', path.join(inst.dir, 'vrrp.pid')];
    const child = spawn('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    // A fresh keepalived reads the config as it is now: a reload deferred for the last one is moot.
    inst.heard = false;
    inst.hupDeferred = false;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', () => { /* keepalived's console log: drained, states come by the FIFO */ });
    inst.child = child;
    this.log('info', 'keepalived_started', { router: inst.hr.router.name, pid: child.pid ?? 0, namespace: inst.ns });
    child.on('exit', (code, signal) => {
      if (inst.child !== child) return;
      inst.child = null;
      this.setState(inst, 'stopped');
      if (inst.stopping) return;
      this.log('warn', 'keepalived_exited', { router: inst.hr.router.name, code, signal });
      inst.restartTimer = setTimeout(() => { inst.restartTimer = null; if (!inst.stopping) this.start(inst); }, 1000);
    });
  }

  /**
   * SIGHUP, at most one per 3 x advert interval; later requests fold into one at the window's
   * end. Not before the child was heard on the FIFO: until keepalived installs its handler
   * (while `ip netns exec` and setpriv run, and early in its start) SIGHUP's default action
   * would kill it; a reload asked for then is sent once it reports its first state.
   */
  private reload(inst: Instance): void {
    if (inst.hupTimer !== null) return;
    const windowMs = 3 * inst.advertIntMs;
    const wait = inst.lastHupMs + windowMs - Date.now();
    const hup = (): void => {
      inst.hupTimer = null;
      if (!inst.heard) {
        inst.hupDeferred = true;
        return;
      }
      inst.lastHupMs = Date.now();
      inst.reloads++;
      if (inst.child?.pid !== undefined) this.signalKeepalived(inst, 'SIGHUP');
      this.log('info', 'keepalived_reload', { router: inst.hr.router.name, reloads: inst.reloads });
    };
    if (wait <= 0) hup();
    else inst.hupTimer = setTimeout(hup, wait);
  }

  /** The keepalived main process is `ip netns exec`'s pid (it execs setpriv, which execs keepalived). */
  private signalKeepalived(inst: Instance, sig: NodeJS.Signals): void {
    try { inst.child?.kill(sig); } catch { /* exited */ }
  }

  /** Hands mastership of `router` away (see the header); false when this node is not its master. */
  failover(router: string, holdMs?: number): boolean {
    const inst = this.instances.get(router);
    if (inst === undefined || inst.state !== 'master') return false;
    const dev = inst.hr.device;
    must('ip', ['-n', inst.ns, 'link', 'set', dev, 'down']);
    const hold = holdMs ?? 5 * inst.advertIntMs + 1000;
    setTimeout(() => {
      if (this.instances.get(router) === inst) run('ip', ['-n', inst.ns, 'link', 'set', dev, 'up']);
    }, hold);
    this.log('info', 'ha_failover', { router, hold_ms: hold });
    return true;
  }

  status(): HaInstanceStatus[] {
    return [...this.instances.values()].map((i) => ({
      router: i.hr.router.name, vrid: i.hr.vrid, state: i.state, sinceMs: i.sinceMs, pid: i.child?.pid ?? 0,
      namespace: i.ns, device: i.hr.device, address: i.hr.ports.find((p) => p.node === this.opts.node)!.ip,
      peers: i.hr.ports.filter((p) => p.node !== this.opts.node).map((p) => `${p.node}=${p.ip}`),
      advertIntMs: i.advertIntMs, reloads: i.reloads,
      peerAdverts: i.hr.ports.filter((p) => p.node !== this.opts.node).map((p) => {
        const a = i.adverts.get(p.ip);
        return { node: p.node, ip: p.ip, lastMs: a?.lastMs ?? 0, adverts: a?.n ?? 0 };
      }),
      advertWatch: i.watchError,
    }));
  }

  /** The routers this node is master for now. */
  masters(): Set<string> {
    return new Set([...this.instances.values()].filter((i) => i.state === 'master').map((i) => i.hr.router.name));
  }

  private remove(inst: Instance): void {
    inst.stopping = true;
    if (inst.hupTimer !== null) clearTimeout(inst.hupTimer);
    if (inst.restartTimer !== null) clearTimeout(inst.restartTimer);
    this.signalKeepalived(inst, 'SIGTERM');
    inst.fifo?.destroy();
    inst.watcher?.close();
    run('ip', ['netns', 'del', inst.ns]);
    run('ip', this.nodeIp(['link', 'del', inst.hr.device]));
    this.instances.delete(inst.hr.router.name);
    if (inst.state === 'master') this.opts.onState(inst.hr.router.name, 'stopped');
  }

  /** Stops every keepalived and removes the namespaces and devices. */
  stop(): void {
    for (const inst of [...this.instances.values()]) this.remove(inst);
  }
}
