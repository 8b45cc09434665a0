/**
 * OpenFlow transports of one bridge: the management socket `<rundir>/<bridge>.mgmt` (and a
 * `ptcp:PORT[:IP]` listener when configured) that ovs-ofctl connects to, and the connection out
 * to a controller (`tcp:IP:PORT`) with echo keepalive and reconnect backoff.
 *
 * Who calls: control/daemon.ts starts one OfEndpoint per bridge and closes it on shutdown; tests.
 * Each connection gets a Session (session.ts); this module owns the sockets. Reading is paced:
 * after a Session handled its per-turn quota the socket is paused and resumed on the next
 * turn of the event loop (setImmediate), so datapath wakeups interleave with control work.
 * The counters (OfCounters) are per endpoint, across connections.
 *
 * Asynchronous messages go to every open connection, each Session deciding whether it wants
 * them: FLOW_REMOVED from the bridge's rule-removal listener (rules with send_flow_rem),
 * PORT_STATUS from its port listener (add/delete) and from a link-state poll (modify, once a
 * second), PACKET_IN from the datapath's queue (endpoints.ts drains it and calls packetIn).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { FlowdError } from '../../errors';
import { claimSocketPath } from '../server';
import { OfBridgeHandle } from './bridge-handle';
import { OfCounters, Session } from './session';
import { FR_DELETE, FR_HARD_TIMEOUT, FR_IDLE_TIMEOUT, PS_ADD, PS_DELETE, PS_MODIFY } from './async-msgs';
import { FF_SEND_FLOW_REM } from '../../ofproto/flow-syntax';
import type { PacketInInfo } from '../../dpif/dp-actions';

/** Controller keepalive: an echo request after this much silence; disconnect after 3 of them. */
export const ECHO_INTERVAL_MS = 5000;
export const BACKOFF_MIN_MS = 1000;
export const BACKOFF_MAX_MS = 8000;
export const LINK_POLL_MS = 1000;

export interface OfEndpointOptions {
  /** Unix socket path of the management socket ('' for none). */
  readonly mgmtPath: string;
  /** `ptcp:PORT[:IP]` ('' for none). */
  readonly listen: string;
  /** `tcp:IP:PORT` of a controller ('' for none). */
  readonly controller: string;
  readonly echoIntervalMs?: number;
  /** How often link state is polled for PORT_STATUS (default LINK_POLL_MS). */
  readonly linkPollMs?: number;
}

/** Parses `ptcp:PORT[:IP]` or `tcp:IP:PORT`. */
export function parseTarget(t: string, passive: boolean): { host: string; port: number } {
  const m = passive ? /^ptcp:(\d+)(?::([\d.]+))?$/.exec(t) : /^tcp:([\d.]+):(\d+)$/.exec(t);
  if (m === null) throw new FlowdError('E_CONFIG', `"${t}": expected ${passive ? 'ptcp:PORT[:IP]' : 'tcp:IP:PORT'}`);
  const port = Number(passive ? m[1] : m[2]);
  if (port > 65535) throw new FlowdError('E_CONFIG', `"${t}": port out of range`);
  return { host: (passive ? m[2] : m[1]) ?? '127.0.0.1', port };
}

function attach(sock: net.Socket, handle: OfBridgeHandle, counters: OfCounters, service: boolean,
                onClose: () => void): Session {
  counters.nConnections++;
  let pending = false;
  const session = new Session(handle, {
    send: (b) => { if (!sock.destroyed) sock.write(b); },
    backlog: () => sock.writableLength,
    close: () => { sock.end(); setTimeout(() => sock.destroy(), 100).unref(); },
  }, counters, service);
  const resume = (): void => {
    pending = false;
    if (session.drain()) { pending = true; setImmediate(resume); return; }
    if (!sock.destroyed) sock.resume();
  };
  sock.on('data', (chunk: Buffer) => {
    if (session.feed(chunk, Date.now()) && !pending) {
      pending = true;
      sock.pause();
      setImmediate(resume);
    }
  });
  sock.on('error', () => { /* reported through close */ });
  sock.on('close', () => { session.state = 'closed'; onClose(); });
  session.start();
  return session;
}

export class OfEndpoint {
  readonly counters = new OfCounters();
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();
  /** Every open connection (management, ptcp, controller): where async messages go. */
  private readonly sessions = new Set<Session>();
  private readonly unlisten: (() => void)[] = [];
  private linkTimer: NodeJS.Timeout | null = null;
  /** Last port state sent in PORT_STATUS, by ofport ("name up"), for the link poll. */
  private readonly portState = new Map<number, boolean>();
  private controllerSession: Session | null = null;
  private controllerSock: net.Socket | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private echoTimer: NodeJS.Timeout | null = null;
  private backoffMs = BACKOFF_MIN_MS;
  private closed = false;
  /** Controller connections made (1 + reconnects). */
  nControllerConnects = 0;
  /** Bound TCP port of the ptcp listener (0 when none). */
  listenPort = 0;

  constructor(readonly handle: OfBridgeHandle, readonly opts: OfEndpointOptions) {}

  /** Opens the listeners and starts dialling the controller. */
  async start(): Promise<void> {
    if (this.opts.mgmtPath !== '') {
      await claimSocketPath(this.opts.mgmtPath);
      await this.listenOn((s) => s.listen(this.opts.mgmtPath));
      fs.chmodSync(this.opts.mgmtPath, 0o600);
    }
    if (this.opts.listen !== '') {
      const { host, port } = parseTarget(this.opts.listen, true);
      const s = await this.listenOn((srv) => srv.listen(port, host));
      const a = s.address();
      this.listenPort = typeof a === 'object' && a !== null ? a.port : 0;
    }
    if (this.opts.controller !== '') this.connect();
    this.watchBridge();
  }

  // ---- asynchronous messages ------------------------------------------------------------------

  /** Subscribes to the bridge's rule removals and port changes, and polls link state each second. */
  private watchBridge(): void {
    const br = this.handle.bridge;
    this.unlisten.push(br.onRuleRemoved((rule, why) => {
      if ((rule.flags & FF_SEND_FLOW_REM) === 0 || this.sessions.size === 0) return;
      const reason = why === 'idle' ? FR_IDLE_TIMEOUT : why === 'hard' ? FR_HARD_TIMEOUT : FR_DELETE;
      const now = this.handle.nowMs();
      for (const s of this.sessions) s.flowRemoved(rule, reason, now);
    }));
    this.unlisten.push(br.onPortsChanged((p, added) => {
      if (!added) {
        const up = this.portState.get(p.ofport) ?? false;
        this.portState.delete(p.ofport);
        for (const s of this.sessions) s.portStatus(PS_DELETE, p.ofport, p.name, up);
        return;
      }
      // The switch opens the port's device right after adding it to the bridge: read its link
      // state once that synchronous step is done.
      queueMicrotask(() => {
        const up = this.portUp(p.ofport);
        this.portState.set(p.ofport, up);
        for (const s of this.sessions) s.portStatus(PS_ADD, p.ofport, p.name, up);
      });
    }));
    for (const p of this.handle.ports()) this.portState.set(p.ofport, p.up);
    this.linkTimer = setInterval(() => this.pollLinks(), this.opts.linkPollMs ?? LINK_POLL_MS);
    this.linkTimer.unref();
  }

  private portUp(ofport: number): boolean {
    for (const p of this.handle.ports()) if (p.ofport === ofport) return p.up;
    return false;
  }

  /** Link up/down since the last poll: PORT_STATUS modify (OVS polls carrier the same way). */
  pollLinks(): void {
    for (const p of this.handle.ports()) {
      const was = this.portState.get(p.ofport);
      this.portState.set(p.ofport, p.up);
      if (was === undefined || was === p.up) continue;
      for (const s of this.sessions) s.portStatus(PS_MODIFY, p.ofport, p.name, p.up);
    }
  }

  /** Open connections that get asynchronous messages (controllers; monitors that set a miss_send_len). */
  get asyncSubscribers(): number {
    let n = 0;
    for (const s of this.sessions) if (s.wantsAsync) n++;
    return n;
  }

  /** A packet-in the datapath queued for this bridge: to every connection that wants it. */
  packetIn(info: PacketInInfo, data: Uint8Array, totalLen: number): void {
    for (const s of this.sessions) s.packetIn(info, data, totalLen);
  }

  private listenOn(go: (s: net.Server) => void): Promise<net.Server> {
    return new Promise((resolve, reject) => {
      const s = net.createServer((sock) => {
        this.sockets.add(sock);
        const session = attach(sock, this.handle, this.counters, true, () => { this.sockets.delete(sock); this.sessions.delete(session); });
        this.sessions.add(session);
      });
      s.once('error', reject);
      s.once('listening', () => { s.off('error', reject); resolve(s); });
      this.servers.push(s);
      go(s);
    });
  }

  /** True while a controller connection has completed its HELLO exchange. */
  get controllerConnected(): boolean {
    return this.controllerSession !== null && this.controllerSession.state === 'open';
  }

  private connect(): void {
    if (this.closed) return;
    const { host, port } = parseTarget(this.opts.controller, false);
    const sock = net.createConnection({ host, port });
    this.controllerSock = sock;
    sock.once('connect', () => {
      this.nControllerConnects++;
      this.backoffMs = BACKOFF_MIN_MS;
      const session = attach(sock, this.handle, this.counters, false, () => { this.sessions.delete(session); this.lost(); });
      this.controllerSession = session;
      this.sessions.add(session);
      this.startEcho();
    });
    sock.once('error', () => { if (this.controllerSession === null) this.lost(); });
  }

  private startEcho(): void {
    const every = this.opts.echoIntervalMs ?? ECHO_INTERVAL_MS;
    this.echoTimer = setInterval(() => {
      const s = this.controllerSession;
      if (s === null) return;
      const silentMs = Date.now() - s.lastRxMs;
      if (silentMs > 3 * every) { s.close('controller did not answer echo requests'); return; }
      if (silentMs >= every) s.sendEcho();
    }, every);
    this.echoTimer.unref();
  }

  /** The controller connection failed or closed: retry after the backoff, doubling it up to the max. */
  private lost(): void {
    if (this.echoTimer !== null) { clearInterval(this.echoTimer); this.echoTimer = null; }
    this.controllerSession = null;
    if (this.controllerSock !== null) { this.controllerSock.destroy(); this.controllerSock = null; }
    if (this.closed || this.reconnectTimer !== null) return;
    const wait = this.backoffMs;
    this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
    this.reconnectTimer = setTimeout(() => { this.reconnectTimer = null; this.connect(); }, wait);
    this.reconnectTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const u of this.unlisten) u();
    if (this.linkTimer !== null) clearInterval(this.linkTimer);
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    if (this.echoTimer !== null) clearInterval(this.echoTimer);
    if (this.controllerSock !== null) this.controllerSock.destroy();
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    if (this.opts.mgmtPath !== '') {
      try { fs.unlinkSync(this.opts.mgmtPath); } catch { /* already gone */ }
    }
  }
}
