/**
 * The flowd daemon: builds the Switch for a node config over real interfaces, polls every port
 * through libuv (the native addon's uv_poll: an idle daemon sleeps), serves the control socket,
 * and shuts down cleanly on SIGTERM/SIGINT (rings unmapped, sockets and pid file removed).
 * Called by: cli/flowd.ts (the `flowd` command, loaded when the daemon runs, not for replay).
 *
 * Poll discipline: a readable port gets one batch read and run per wake; one that still has
 * frames is readable again at the next turn of the event loop (libuv's poll is level-triggered),
 * so the ready ports take turns a batch at a time, as an OVS PMD thread polls each of its rx
 * queues once per iteration. No port makes the others wait behind several of its batches: a
 * TCP stream's ACKs coming in on the underlay are not held behind the sender's data on the VM
 * port (up to 8 batches per wake before 2026-12-06, native-notes/tunnel-gso.md). The timers and
 * the control socket run between batches too.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig, BridgeConfig, NodeConfig, PortConfig } from './config';
import { DvrNodeConfig } from '../dvr/node-config';
import type { Topology } from '../dvr/topology';
import { announcementFrame, announcementsToSend } from '../dvr/announce';
import { Switch, PortFactory, OpenedPort, AttachedPort, PendingPort } from './switch';
import { commandTable } from './commands';
import { KeepalivedSupervisor } from './keepalived';
import { cmdHa, haMetricFamilies } from './ha-commands';
import { HaCtSync } from './ha-ct-sync';
import { claimSocketPath, ControlServer } from './server';
import { MetricsServer, parseListen } from './metrics';
import { OfEndpoints } from './openflow/endpoints';
import { DhcpAgent } from './dhcp-agent';
import { DEFAULT_SOCKET } from './client';
import { log } from './log';
import { openTopologySource, TopologySource } from './topology-source';
import { applyTopology, diffCounts, nodeConfigFor } from './topology-apply';
import { EtcdTopologySource } from './topology-etcd';
import { AgentReporter, AgentState } from './agent-state';
import { NetdevStats } from '../netdev/netdev';
import { GSO_SLOT_BYTES, MAX_BATCH, PacketBatch } from '../netdev/batch';
import { NativePort } from '../netdev/native-port';
import { TunnelPort, Underlay } from '../netdev/underlay';
import { FlowdError } from '../errors';
import { ipv4FromString } from '../packet/ipv4';

const TICK_MS = 100;

export interface DaemonOptions {
  config: string;
  socket: string;
  pidFile: string;
  /** HOST:PORT for the Prometheus metrics endpoint (control/metrics.ts), or '' for none. */
  metricsListen: string;
  /**
   * Where the OpenFlow management sockets `<bridge>.mgmt` go; '' for the default, the control
   * socket's path without its extension (/run/flowd/flowd.sock -> /run/flowd/flowd/; one
   * without an extension gets `.d`), so
   * daemons that share a directory for their control sockets (the lab's nodes) never share one.
   */
  runDir?: string;
  /** Topology file or etcd://HOST:PORT[,...]/PREFIX in place of the config's; '' for the config's. */
  topology: string;
  /** The node's name when there is no config file (with `topology`); '' otherwise. */
  node: string;
  /** Prefix of the namespaces keepalived of HA routers runs in (control/keepalived.ts). */
  haNsPrefix?: string;
}

export const DEFAULT_HA_NS_PREFIX = 'flowd-ha-';

const VERSION = (() => {
  try {
    return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

/** True when `pid` is a live process running flowd (not a recycled pid of something else). */
function isLiveFlowd(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('flowd');
  } catch {
    return false;
  }
}

/**
 * Refuses to start when `pidFile` names a running flowd; a pid file left by a daemon that died
 * (SIGKILL, a crash, a reboot) is stale and is overwritten later.
 */
function checkPidFile(pidFile: string): void {
  if (pidFile === '') return;
  let text = '';
  try {
    text = fs.readFileSync(pidFile, 'utf8');
  } catch {
    return;
  }
  const pid = Number(text.trim());
  if (isLiveFlowd(pid)) throw new FlowdError('E_RUNNING', `${pidFile}: flowd is already running as pid ${pid}`);
  log('warn', 'stale_pid_file', { file: pidFile, pid: text.trim() });
}

/** The interface that holds `ip` in this namespace (for a tunnel's underlay). */
function interfaceWithAddress(ip: string): string {
  const out = execFileSync('ip', ['-j', '-4', 'addr', 'show'], { encoding: 'utf8' });
  const links = JSON.parse(out) as { ifname: string; addr_info?: { local: string }[] }[];
  for (const l of links) if ((l.addr_info ?? []).some((a) => a.local === ip)) return l.ifname;
  throw new FlowdError('E_UNDERLAY', `no interface holds local_ip ${ip}`);
}

class RealPorts implements PortFactory {
  readonly underlays = new Map<string, Underlay>();

  open(_b: BridgeConfig, p: PortConfig): OpenedPort | null {
    switch (p.kind) {
      case 'afpacket': return { netdev: NativePort.afpacket(p.name), tunnel: null };
      case 'tap': return { netdev: NativePort.tap(p.name, true), tunnel: null };
      case 'internal': return { netdev: NativePort.tap(p.name, true, 'internal'), tunnel: null };
      case 'vxlan':
      case 'gre': {
        if (p.localIp === '') throw new FlowdError('E_CONFIG', `${p.name}: a tunnel port needs local_ip`);
        let u = this.underlays.get(p.localIp);
        if (u === undefined) {
          u = new Underlay(interfaceWithAddress(p.localIp), p.localIp, p.kind === 'vxlan' ? p.dstPort : 4789);
          this.underlays.set(p.localIp, u);
        }
        const t = u.addPort(p.name, p.kind, p.remoteIp);
        return {
          netdev: t,
          tunnel: {
            kind: p.kind, localIp: u.localIp, remoteIp: ipv4FromString(p.remoteIp), srcMac: u.srcMac,
            nextHopMac: 0, dstPort: p.kind === 'vxlan' ? p.dstPort : 0, ttl: 64, tos: 0,
          },
        };
      }
      default:
        throw new FlowdError('E_CONFIG', `${p.name}: port type ${p.kind} cannot run in the daemon`);
    }
  }
}

/** The node config file, or with --node and --topology alone, a config naming just those. */
function readNodeConfig(opts: DaemonOptions): NodeConfig {
  if (opts.config !== '') return loadConfig(opts.config, opts.topology);
  if (opts.node === '' || opts.topology === '') {
    throw new FlowdError('E_USAGE', 'give --config FILE, or --node NAME with --topology FILE|etcd://HOST:PORT/PREFIX');
  }
  const topology = opts.topology.startsWith('etcd://') ? opts.topology : path.resolve(opts.topology);
  return { file: '(command line)', node: opts.node, controlSocket: '', bridges: [], topology };
}

export async function runDaemon(opts: DaemonOptions): Promise<void> {
  const tStartMs = Date.now();
  checkPidFile(opts.pidFile);
  const metricsAt = opts.metricsListen === '' ? null : parseListen(opts.metricsListen);
  const file = readNodeConfig(opts);
  const socketPath = opts.socket || file.controlSocket || DEFAULT_SOCKET;
  // Before any port is opened: a second daemon for the same node must not touch the first's.
  await claimSocketPath(socketPath);
  const source: TopologySource | null = file.topology === undefined ? null : openTopologySource(file.topology);
  let topo: Topology | null = source === null ? null : await source.load();
  // Deprecated shapes still read (e.g. per-router fip_ports): each names file:line:field and the fix.
  for (const d of topo?.deprecations ?? []) log('warn', 'topology_deprecated', { message: d });
  // keepalived per HA router; its ha- devices must exist before the switch opens its ports.
  // A state change regenerates the node's config with the new masters and applies the diff.
  let haChanged: () => void = () => undefined;
  const ha = topo === null ? null : new KeepalivedSupervisor({
    node: file.node, runDir: path.join(path.dirname(socketPath), `${file.node}-ha`),
    nsPrefix: opts.haNsPrefix ?? DEFAULT_HA_NS_PREFIX,
    onState: () => setImmediate(() => haChanged()), log,
  });
  if (ha !== null && topo !== null) ha.sync(topo);
  let current: NodeConfig = topo === null ? file : nodeConfigFor(file, topo, undefined, ha?.masters());
  // The DHCP agent makes its ports' devices before the switch opens them (control/dhcp-agent.ts).
  const dhcp = file.dhcp !== undefined && file.dhcp.enabled
    ? new DhcpAgent({ nsPrefix: file.dhcp.namespacePrefix, stateDir: file.dhcp.stateDir, log })
    : null;
  const topoOf = (c: NodeConfig): DvrNodeConfig['plan']['topo'] | null => ('plan' in c ? (c as DvrNodeConfig).plan.topo : null);
  const syncDhcp = (c: NodeConfig, step: 'prepare' | 'finish'): void => {
    const t = topoOf(c);
    if (dhcp === null || t === null) return;
    try {
      if (step === 'prepare') dhcp.prepare(t, c.node);
      else dhcp.finish(t, c.node);
    } catch (e) {
      log('error', 'dhcp_failed', { step, error: (e as Error).message });
    }
  };
  syncDhcp(current, 'prepare');
  const ports = new RealPorts();
  const batch = new PacketBatch();
  // Native ports read into 64 KB slots with offload metadata, so TCP super-frames cross the
  // switch whole (netdev/batch.ts, native-notes/veth-offloads.md): 256 x 64 KB = 17 MB.
  const gsoBatch = new PacketBatch(MAX_BATCH, GSO_SLOT_BYTES, true);
  // Misses over the upcall budget wait in the datapath's queue for the next batch; when no batch
  // comes, they run on the next turn of the event loop (after the other ports' wakeups).
  let queuedRunScheduled = false;
  const runQueued = (): void => {
    queuedRunScheduled = false;
    sw.datapath.runQueuedMisses();
    scheduleQueued();
  };
  const scheduleQueued = (): void => {
    if (!queuedRunScheduled && sw.datapath.queuedMisses > 0) {
      queuedRunScheduled = true;
      setImmediate(runQueued);
    }
  };
  const drain = (a: AttachedPort): void => {
    sw.poll(a, a.netdev instanceof NativePort ? gsoBatch : batch);
    scheduleQueued();
  };
  const polledUnderlays = new Set<Underlay>();
  const onAttach = (a: AttachedPort): void => {
    if (a.netdev instanceof TunnelPort) {
      a.netdev.dpPort = a.dpPort;
      const u = a.netdev.underlay;
      if (!polledUnderlays.has(u)) {
        polledUnderlays.add(u);
        // Into the 64 KB slots too: the underlay coalesces TCP segments back into super-frames.
        u.onReadable(() => {
          const n = u.recv(gsoBatch);
          if (n > 0) sw.run(gsoBatch, n);
          scheduleQueued();
        });
      }
    } else if (a.netdev.onReadable !== undefined) {
      a.netdev.onReadable(() => drain(a));
    }
  };
  // A port whose device is missing waits (logged once); the tick attaches it when it appears.
  const onPending = (p: PendingPort): void => log('warn', 'port_device_missing', { port: p.config.name, bridge: p.bridge, error: p.error });
  const sw: Switch = new Switch(current, ports, { nowMs: Date.now, onAttach, onPending });
  // Conntrack sync of the HA routers' SNAT zones, master -> backups (control/ha-ct-sync.ts).
  const ctSync = ha === null ? null : new HaCtSync({ node: file.node, conntrack: () => sw.datapath.conntrack, log });
  if (ctSync !== null && topo !== null) ctSync.update(topo, ha!.masters());
  // OpenFlow per bridge on <rundir>/<bridge>.mgmt.
  const sockBase = socketPath.replace(/\.[^./]*$/, '');
  const runDir = opts.runDir || (sockBase === socketPath ? `${socketPath}.d` : sockBase);
  fs.mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const openflow = new OfEndpoints(sw, runDir);
  /** Gratuitous ARPs (and upstream ARP requests) for external addresses this node now serves. */
  const announce = (prev: NodeConfig | null, next: NodeConfig): void => {
    const before = prev !== null && 'announcements' in prev ? (prev as DvrNodeConfig).announcements : undefined;
    if (!('announcements' in next)) return;
    for (const a of announcementsToSend(before, (next as DvrNodeConfig).announcements)) {
      const sent = sw.sendFrame(a.device, announcementFrame(a));
      log(sent ? 'info' : 'warn', 'announce', { kind: a.kind, ip: a.kind === 'garp' ? a.senderIp : a.targetIp, device: a.device, why: a.why, sent });
    }
  };
  announce(null, current);
  // Every topology source ends here: validated by the source, then generated, diffed, applied.
  // An HA state change regenerates from the same topology with the new masters (dvr/ha.ts).
  const etcd = source instanceof EtcdTopologySource ? source : null;
  let appliedRevision = etcd === null ? 0 : etcd.revision;
  const applyNext = (topology: Topology, event: string, fields: Record<string, string>): void => {
    const t0 = process.hrtime.bigint();
    const { next, diffs } = applyTopology(sw, file, current, topology, {
      beforeApply: (n) => syncDhcp(n, 'prepare'), afterApply: (n) => syncDhcp(n, 'finish'),
    }, ha?.masters());
    void openflow.sync(next).catch((e: Error) => log('error', 'openflow_failed', { error: e.message }));
    announce(current, next);
    current = next;
    // validate_ms: the etcd source's validation of this change (before apply_ms; docs/etcd.md).
    const validated: Record<string, number> = etcd !== null && event === 'topology_applied' ? { validate_ms: etcd.validateMs } : {};
    log('info', event, { ...fields, ...validated, apply_ms: Number(process.hrtime.bigint() - t0) / 1e6, ...diffCounts(diffs) });
  };
  haChanged = (): void => {
    if (ha === null || topo === null) return;
    try {
      applyNext(topo, 'ha_applied', { masters: [...ha.masters()].join(',') });
      ctSync?.update(topo, ha.masters());
    } catch (e) {
      log('error', 'ha_apply_failed', { error: (e as Error).message });
    }
  };
  if (source !== null) {
    source.watch({
      onChange: (topology, origin) => {
        try {
          // keepalived's ha- devices first: the switch opens them as ports in the diff.
          if (ha !== null) ha.sync(topology);
          applyNext(topology, 'topology_applied', { source: origin });
          topo = topology;
          if (ha !== null) ctSync?.update(topology, ha.masters());
          if (etcd !== null) appliedRevision = etcd.revision;
        } catch (e) {
          // A topology this node cannot be built from is refused like an invalid one.
          log('error', 'topology_rejected', { source: origin, error: (e as Error).message });
        }
      },
      // A bad topology is reported and ignored: the node keeps forwarding with what it had.
      onReject: (e, origin) => log('error', 'topology_rejected', { source: origin, error: e.message }),
    });
  }
  const tick = setInterval(() => {
    const now = Date.now();
    sw.expireRules(now);
    for (const u of ports.underlays.values()) u.tick(now);
    if (sw.pending.size > 0) {
      for (const a of sw.retryPending()) log('info', 'port_attached', { port: a.config.name, bridge: a.bridge, dp_port: a.dpPort });
    }
  }, TICK_MS);
  fs.mkdirSync(path.dirname(socketPath), { recursive: true });
  const handlers = commandTable(sw);
  handlers.set('openflow', (a) => openflow.report(a.format === 'json'));
  handlers.set('ha', (a) => cmdHa(ha, a, Date.now(), ctSync));
  const server = new ControlServer(socketPath, handlers);
  // The OpenFlow sockets open before the control socket answers, so a client that saw the
  // daemon answer finds them (and the pid file follows the control socket as before).
  await openflow.sync(current);
  await server.listen();
  const metrics = metricsAt === null ? null : new MetricsServer(sw, metricsAt.host, metricsAt.port, () => haMetricFamilies(ha, ctSync));
  const metricsPort = metrics === null ? 0 : await metrics.listen();
  if (opts.pidFile) fs.writeFileSync(opts.pidFile, `${process.pid}\n`);
  log('info', 'started', {
    node: file.node, socket: socketPath, bridges: current.bridges.length, ports: sw.attached.size,
    underlays: [...ports.underlays.values()].map((u) => u.describe()).join('; '),
    metrics: metrics === null ? '' : `${metricsAt?.host}:${metricsPort}`, start_ms: Date.now() - tStartMs,
    topology: source === null ? '' : source.name, topology_revision: appliedRevision,
  });
  // With the topology in etcd, the agent reports its state there too (control/agent-state.ts).
  const startedAt = new Date().toISOString();
  const agentState = (): AgentState => {
    const st = new NetdevStats();
    let rx = 0;
    let tx = 0;
    for (const a of sw.attached.values()) {
      st.rxPackets = 0;
      st.txPackets = 0;
      a.netdev.stats(st);
      rx += st.rxPackets;
      tx += st.txPackets;
    }
    let flows = 0;
    for (const b of sw.bridges.values()) flows += b.nRules;
    const plan = 'plan' in current ? (current as DvrNodeConfig).plan : null;
    return {
      node: file.node, alive: true, agent_mode: plan?.node.agentMode ?? '', local_ip: plan?.node.localIp ?? '',
      version: VERSION, pid: process.pid, started_at: startedAt, reported_at: new Date().toISOString(),
      topology_revision: appliedRevision,
      counters: { bridges: sw.bridges.size, ports: sw.attached.size, flows, rx_packets: rx, tx_packets: tx,
        drops: Object.values(sw.datapath.drops()).reduce((n, v) => n + v, 0) },
    };
  };
  const reporter = etcd === null ? null : new AgentReporter(etcd.client, etcd.url.prefix, file.node, agentState);
  reporter?.start();
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    clearInterval(tick);
    source?.close();
    if (reporter !== null) await reporter.stop();
    await server.close();
    await openflow.close();
    try { fs.rmdirSync(runDir); } catch { /* not empty (someone else's files) or already gone */ }
    if (metrics !== null) await metrics.close();
    sw.close();
    dhcp?.stop();
    ctSync?.close();
    ha?.stop();
    for (const u of ports.underlays.values()) u.close();
    if (opts.pidFile) {
      try { fs.unlinkSync(opts.pidFile); } catch { /* already gone */ }
    }
    log('info', 'stopped', { signal });
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
