/**
 * Neutron's DHCP agent on one node: for each network the topology has this node serve
 * (dvr/dhcp.ts dhcpServices), a `<prefix>qdhcp-<network>` namespace joined to br-int by a veth
 * (the host end is the DHCP port's device, which flowd opens like a VM port; the inner end
 * `tapdhcp` carries the port's MAC, addresses and the network's MTU), and dnsmasq in it in
 * static mode, kept in the foreground and supervised by PID.
 * Called by: control/daemon.ts (prepare before a topology's ports are opened, finish after they
 * are closed, stop on shutdown); tests.
 *
 * Why flowd runs it, not the node's provisioning: the daemon is what watches the topology and
 * applies its changes, and a port change must reach dnsmasq in the same step (hosts file
 * rewritten, SIGHUP, no restart) and the DHCP port's device must exist before flowd opens it
 * and go after flowd closes it; only the daemon knows that order. Neutron's DHCP agent owns
 * the namespace, the port and dnsmasq in the same way.
 *
 * Invariants: a change of the hosts or options file is applied by writing it (to a temporary
 * name, then rename) and SIGHUP (held until dnsmasq wrote its pid file), never by a restart; a change of dnsmasq's command line (served
 * subnets, MTU) or of the port (MAC, addresses) restarts that network's service. A dnsmasq that
 * exits by itself is started again after RESTART_MIN_MS, doubling up to RESTART_MAX_MS. A
 * stopped (SIGSTOP) dnsmasq is not this module's business: it is alive.
 * The DHCP port sends DHCP replies only, and dnsmasq writes the client's neighbour entry
 * itself before each reply (it has the MAC from the request); the kernel's unicast probes of
 * those entries (5 s later, to every client that chose another agent) would only be noise on
 * the tunnels, so the port's ucast_solicit is 0.
 * Cost: set-up and tear-down run `ip` synchronously (a dozen commands for a new network), so a
 * topology change that adds or removes a served network holds the daemon's loop for that long
 * (a few hundred ms on the loaded development machine); a hosts change is a file write and a
 * signal.
 * Ownership: the namespaces, veths, files under `stateDir/<network>/` and dnsmasq processes it
 * made; stop() removes all of them.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dhcpPortCidrs, DhcpService, dhcpServices, dnsmasqArgs, dnsmasqHosts, dnsmasqOpts, DnsmasqPaths } from '../dvr/dhcp';
import type { Topology } from '../dvr/topology';
import { netnsCmd } from './netns';

export const DNSMASQ = '/usr/sbin/dnsmasq';
/** The interface of the DHCP port inside its namespace. */
export const INNER_DEVICE = 'tapdhcp';
const RESTART_MIN_MS = 1000;
const RESTART_MAX_MS = 30000;
/** How often a SIGHUP that waits for dnsmasq's pid file looks again. */
const HUP_POLL_MS = 50;

export interface DhcpAgentOptions {
  /** Prefix of the namespaces (the lab's `fl-<node>-`, '' on a real node as in Neutron). */
  nsPrefix: string;
  /** Where each network's pid, hosts, opts and leases files live. */
  stateDir: string;
  leaseS?: number;
  log: (level: 'info' | 'warn' | 'error', event: string, fields: Record<string, string | number | boolean>) => void;
}

/** One served network as it runs now. */
interface Running {
  svc: DhcpService;
  ns: string;
  paths: DnsmasqPaths;
  args: string[];
  /** MAC, addresses and MTU of the port: a change rebuilds the service. */
  portKey: string;
  hosts: string;
  opts: string;
  child: ChildProcess | null;
  stopping: boolean;
  restartMs: number;
  restartTimer: NodeJS.Timeout | null;
  /** A SIGHUP waiting for dnsmasq to write its pid file (see hup()). */
  hupTimer: NodeJS.Timeout | null;
}

function run(cmd: string, ...args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${(r.stderr || r.error?.message || '').trim()}`);
}

/** A child that exited stays a zombie until the event loop reaps it: that counts as gone. */
function aliveNotZombie(pid: number): boolean {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Kills a dnsmasq left in `ns` by an earlier daemon that did not stop it (killed before its
 * parent-death signal was set): deleting the name would leave it serving in a nameless namespace.
 */
function reapDnsmasqIn(ns: string): void {
  const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
  if (r.status !== 0) return;
  for (const pid of r.stdout.split('\n').map(Number).filter((p) => p > 0)) {
    let comm = '';
    try { comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { continue; }
    if (comm !== 'dnsmasq') continue;
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
}

function writeAtomic(file: string, text: string): void {
  fs.writeFileSync(`${file}.tmp`, text);
  fs.renameSync(`${file}.tmp`, file);
}

export class DhcpAgent {
  private readonly running = new Map<string, Running>();

  constructor(private readonly opts: DhcpAgentOptions) {}

  /** Namespace of `network` on this node. */
  nsOf(network: string): string {
    return `${this.opts.nsPrefix}qdhcp-${network}`;
  }

  /**
   * Brings new and changed services of `topo` up before the switch opens their ports: new
   * networks get namespace, veth and dnsmasq; changed files are rewritten and signalled.
   */
  prepare(topo: Topology, nodeName: string): void {
    for (const svc of dhcpServices(topo, nodeName)) {
      const cur = this.running.get(svc.network);
      const next = this.plan(topo, svc);
      if (cur !== undefined && (cur.portKey !== next.portKey || cur.svc.port.device !== svc.port.device)) {
        this.teardown(cur);
        this.running.delete(svc.network);
      } else if (cur !== undefined) {
        this.update(cur, next);
        continue;
      }
      this.bringUp(next);
      this.running.set(svc.network, next);
    }
  }

  /** Removes services `topo` no longer gives this node (after the switch closed their ports). */
  finish(topo: Topology, nodeName: string): void {
    const keep = new Set(dhcpServices(topo, nodeName).map((s) => s.network));
    for (const [net, r] of this.running) {
      if (keep.has(net)) continue;
      this.teardown(r);
      this.running.delete(net);
    }
  }

  stop(): void {
    for (const r of this.running.values()) this.teardown(r);
    this.running.clear();
  }

  private plan(topo: Topology, svc: DhcpService): Running {
    const dir = path.join(this.opts.stateDir, svc.network);
    const paths: DnsmasqPaths = { pid: path.join(dir, 'pid'), hosts: path.join(dir, 'host'), opts: path.join(dir, 'opts'), leases: path.join(dir, 'leases') };
    return {
      svc, ns: this.nsOf(svc.network), paths,
      args: dnsmasqArgs(svc, INNER_DEVICE, paths, this.opts.leaseS),
      portKey: `${svc.port.mac} ${dhcpPortCidrs(svc).join(' ')} ${svc.mtuBytes}`,
      hosts: dnsmasqHosts(topo, svc), opts: dnsmasqOpts(svc),
      child: null, stopping: false, restartMs: RESTART_MIN_MS, restartTimer: null, hupTimer: null,
    };
  }

  private bringUp(r: Running): void {
    const { ns, svc } = r;
    const dev = svc.port.device;
    const tmp = `${dev.slice(0, 11)}-tmp`;
    reapDnsmasqIn(ns);
    netnsCmd('del', ns);
    if (!netnsCmd('add', ns)) throw new Error(`ip netns add ${ns} failed`);
    spawnSync('ip', ['link', 'del', dev], { stdio: 'ignore' });
    run('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
    run('ip', 'netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1');
    run('ip', 'netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.default.disable_ipv6=1');
    run('ip', 'link', 'add', dev, 'mtu', String(svc.mtuBytes), 'type', 'veth', 'peer', 'name', tmp, 'mtu', String(svc.mtuBytes));
    spawnSync('sysctl', ['-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`], { stdio: 'ignore' });
    run('ip', 'link', 'set', tmp, 'netns', ns);
    run('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', tmp, 'name', INNER_DEVICE);
    run('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', INNER_DEVICE, 'address', svc.port.mac);
    // No unicast reachability probes from the DHCP port: see the header.
    run('ip', 'netns', 'exec', ns, 'sysctl', '-qw', `net.ipv4.neigh.${INNER_DEVICE}.ucast_solicit=0`);
    for (const c of dhcpPortCidrs(svc)) run('ip', 'netns', 'exec', ns, 'ip', 'addr', 'add', c, 'dev', INNER_DEVICE);
    run('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', INNER_DEVICE, 'up');
    run('ip', 'link', 'set', dev, 'up');
    fs.mkdirSync(path.dirname(r.paths.hosts), { recursive: true });
    writeAtomic(r.paths.hosts, r.hosts);
    writeAtomic(r.paths.opts, r.opts);
    this.startDnsmasq(r);
    this.opts.log('info', 'dhcp_up', { network: svc.network, ns, device: dev, mac: svc.port.mac, ips: dhcpPortCidrs(svc).join(' '), pid: r.child?.pid ?? 0 });
  }

  private startDnsmasq(r: Running): void {
    r.restartTimer = null;
    // `ip netns exec` execs setpriv, which execs dnsmasq: the child's PID is dnsmasq's, and it
    // gets SIGKILL when flowd dies (a SIGKILLed daemon leaves no dnsmasq behind; as keepalived)
    // as long as dnsmasq changes no credential (dvr/dhcp.ts dnsmasqArgs: --user/--group root).
    const child = spawn('ip', ['netns', 'exec', r.ns, 'setpriv', '--pdeathsig', 'KILL', DNSMASQ, ...r.args],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    r.child = child;
    let tail = '';
    child.stderr?.on('data', (b: Buffer) => { tail = (tail + b.toString()).slice(-400); });
    child.on('exit', (code, signal) => {
      if (r.child !== child) return;
      r.child = null;
      if (r.stopping) return;
      this.opts.log('warn', 'dhcp_dnsmasq_exited', { network: r.svc.network, code: code ?? -1, signal: signal ?? '', restart_ms: r.restartMs, stderr: tail.trim().split('\n').slice(-2).join(' | ') });
      r.restartTimer = setTimeout(() => this.startDnsmasq(r), r.restartMs);
      r.restartMs = Math.min(r.restartMs * 2, RESTART_MAX_MS);
    });
  }

  /** Same port: new files are written and dnsmasq rereads them; a new command line restarts it. */
  private update(cur: Running, next: Running): void {
    cur.svc = next.svc;
    if (cur.args.join('\0') !== next.args.join('\0')) {
      cur.args = next.args;
      cur.hosts = next.hosts;
      cur.opts = next.opts;
      writeAtomic(cur.paths.hosts, cur.hosts);
      writeAtomic(cur.paths.opts, cur.opts);
      this.killDnsmasq(cur);
      cur.stopping = false;
      this.startDnsmasq(cur);
      this.opts.log('info', 'dhcp_restarted', { network: cur.svc.network, why: 'command line changed', pid: cur.child?.pid ?? 0 });
      return;
    }
    if (cur.hosts === next.hosts && cur.opts === next.opts) return;
    cur.hosts = next.hosts;
    cur.opts = next.opts;
    writeAtomic(cur.paths.hosts, cur.hosts);
    writeAtomic(cur.paths.opts, cur.opts);
    const pid = cur.child?.pid ?? 0;
    this.hup(cur);
    this.opts.log('info', 'dhcp_reloaded', { network: cur.svc.network, pid, hosts: cur.hosts.split('\n').length - 1 });
  }

  /**
   * SIGHUP to dnsmasq, once its pid file names it: dnsmasq installs its handler before it writes
   * that file, and until then (while `ip netns exec` and setpriv run, or early in its start)
   * SIGHUP's default action would kill it. Meanwhile the signal waits, polled every
   * HUP_POLL_MS; a dnsmasq started again meanwhile reads the new files itself.
   */
  private hup(r: Running): void {
    const pid = r.child?.pid ?? 0;
    if (pid <= 0 || r.hupTimer !== null) return;
    let written = '';
    try { written = fs.readFileSync(r.paths.pid, 'utf8').trim(); } catch { /* not yet */ }
    if (written === String(pid)) {
      try { process.kill(pid, 'SIGHUP'); } catch { /* exited: the restart reads the files */ }
      return;
    }
    r.hupTimer = setTimeout(() => {
      r.hupTimer = null;
      if (r.child?.pid === pid) this.hup(r);
    }, HUP_POLL_MS);
  }

  private killDnsmasq(r: Running): void {
    r.stopping = true;
    if (r.restartTimer !== null) clearTimeout(r.restartTimer);
    r.restartTimer = null;
    if (r.hupTimer !== null) clearTimeout(r.hupTimer);
    r.hupTimer = null;
    const pid = r.child?.pid ?? 0;
    r.child = null;
    if (pid <= 0) return;
    try {
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGTERM');
    } catch { /* already gone */ }
    // Wait (bounded) so a restart never finds the old one still bound to the interface.
    for (let i = 0; i < 50; i++) {
      if (!aliveNotZombie(pid)) return;
      spawnSync('sleep', ['0.02']);
    }
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }

  private teardown(r: Running): void {
    this.killDnsmasq(r);
    spawnSync('ip', ['link', 'del', r.svc.port.device], { stdio: 'ignore' });
    netnsCmd('del', r.ns);
    fs.rmSync(path.dirname(r.paths.hosts), { recursive: true, force: true });
    this.opts.log('info', 'dhcp_down', { network: r.svc.network, ns: r.ns });
  }
}
