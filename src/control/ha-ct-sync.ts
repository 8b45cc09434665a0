/**
 * Conntrack sync of HA routers between their l3 agents (issue 14 item 3): the node that is
 * VRRP master of a router streams the SNAT connections of the router's conntrack zone to the
 * other l3 agents of the router, which write them into their own conntrack; after a failover
 * the new master finds each established connection with the master's NAT mapping, so the
 * connection keeps its external address and port.
 * Called by: control/daemon.ts (update() on start, on each topology change and each VRRP state
 * change; status() for `flowctl ha status` and the metrics; close() on exit); tests.
 * Control plane only: the datapath's part is the journal of dpif/conntrack.ts.
 *
 * Wiring:
 * - Transport: one UDP socket per node on its underlay address (the topology's local_ip),
 *   port ha_conntrack_sync_port (dvr/topology-ha.ts, default 3781), to the other l3 agents' local_ip. The underlay is as
 *   trusted as the tunnels it carries; datagrams from an address that is not an l3 agent of
 *   the router they name are dropped and counted.
 * - Streams: one per HA router, named by the router's conntrack zone in the header (the
 *   zones are the same on every node: dvr/ns-plan.ts routerZones). Protocol: dpif/ct-sync.ts.
 * - Master of router R: the zone is watched by conntrack; every `tickMs` the journal is
 *   drained into the sender (each record re-read from the table, so a burst of changes of one
 *   connection sends its latest state once), its datagrams go to every peer; a refresh round
 *   runs on becoming master, on a backup's request, every `refreshEveryMs`, and when the
 *   journal overflowed; a heartbeat goes out when nothing else did for `heartbeatMs`.
 * - Backup of R: one receiver per sending peer writes into conntrack (importConn/removeConn).
 *   A node that stops being master of R flushes R's zone: the new master's first refresh
 *   round gives it the table that counts from then on.
 * - `ha_conntrack_sync: false` in the topology turns it all off (as Neutron without
 *   conntrackd): no socket, no journal, and a failover breaks connections whose external
 *   port the new master cannot reproduce.
 * Owns: the socket and timer (close() releases them); not the conntrack table.
 */
import * as dgram from 'node:dgram';
import { Conntrack, CtConnRecord } from '../dpif/conntrack';
import {
  CT_SYNC_DROP_NAMES, CT_SYNC_HEADER_BYTES, CtSyncReceiver, CtSyncSender, ctSyncStream, MSG_RESYNC_REQUEST,
} from '../dpif/ct-sync';
import { haRoutersOn } from '../dvr/ha';
import { routerZones } from '../dvr/ns-plan';
import { Topology } from '../dvr/topology';
import { LogFields } from './log';


export interface HaCtSyncOptions {
  node: string;
  /** The datapath's conntrack table (made on first use). */
  conntrack: () => Conntrack;
  /** UDP port; default the topology's ha_conntrack_sync_port. */
  port?: number;
  nowMs?: () => number;
  tickMs?: number;
  refreshEveryMs?: number;
  heartbeatMs?: number;
  log?: (level: 'info' | 'warn' | 'error', event: string, fields: LogFields) => void;
}

/** What a backup knows of one peer's stream. */
export interface HaCtSyncPeerStatus {
  node: string;
  ip: string;
  /** Highest sequence number received; 0 before any. */
  lastSeq: number;
  /** Datagrams missing in the sequence since the last complete refresh round (the lag). */
  missing: number;
  /** Connections the stream holds in this node's conntrack. */
  connections: number;
  datagrams: number;
  /** When the last datagram arrived (ms since the epoch), 0 for never. */
  lastMs: number;
  refreshRounds: number;
}

export interface HaCtSyncStatus {
  router: string;
  zone: number;
  /** sending (master), receiving (backup). */
  role: 'sending' | 'receiving';
  local: string;
  /** Sender side: last sequence number sent, changes not yet sent, refresh entries left. */
  seq: number;
  pending: number;
  refreshLeft: number;
  datagramsSent: number;
  /** Live connections of the zone in this node's conntrack. */
  connections: number;
  peers: HaCtSyncPeerStatus[];
}

interface Receiving {
  node: string;
  ip: string;
  rx: CtSyncReceiver;
}

interface RouterSync {
  name: string;
  zone: number;
  /** Peer underlay address -> node name. */
  peers: Map<string, string>;
  sender: CtSyncSender | null;
  lastSendMs: number;
  lastRoundMs: number;
  receivers: Map<string, Receiving>;
}

export class HaCtSync {
  private readonly routers = new Map<string, RouterSync>();
  private readonly byZone = new Map<number, RouterSync>();
  private sock: dgram.Socket | null = null;
  private bound = false;
  private localIp = '';
  private timer: NodeJS.Timeout | null = null;
  private port = 0;
  private readonly now: () => number;
  /** Datagrams refused before the protocol saw them: unknown_stream, not_a_peer, while_master. */
  private readonly linkDrops = new Map<string, number>();
  nSendErrors = 0;

  constructor(private readonly opts: HaCtSyncOptions) {
    this.now = opts.nowMs ?? Date.now;
  }

  private log(level: 'info' | 'warn' | 'error', event: string, fields: LogFields): void {
    this.opts.log?.(level, event, fields);
  }

  private drop(reason: string): void {
    this.linkDrops.set(reason, (this.linkDrops.get(reason) ?? 0) + 1);
  }

  /** Refused datagrams by reason: the link's and every receiver's (dpif/ct-sync.ts). */
  drops(): Map<string, number> {
    const out = new Map(this.linkDrops);
    for (const rs of this.routers.values()) {
      for (const r of rs.receivers.values()) {
        for (let i = 0; i < CT_SYNC_DROP_NAMES.length; i++) {
          if (r.rx.drops[i] > 0) out.set(CT_SYNC_DROP_NAMES[i], (out.get(CT_SYNC_DROP_NAMES[i]) ?? 0) + r.rx.drops[i]);
        }
      }
    }
    return out;
  }

  /** Makes the streams match `topo` and the routers this node is master of now (`masters`). */
  update(topo: Topology, masters: ReadonlySet<string>): void {
    const zones = routerZones(topo);
    const me = topo.nodes.find((n) => n.name === this.opts.node);
    const want = me === undefined || !topo.ha.ctSync ? [] : haRoutersOn(topo, me.name).filter((h) => h.router.gateway !== null);
    const names = new Set(want.map((h) => h.router.name));
    for (const [name, rs] of this.routers) if (!names.has(name) || zones.get(name) !== rs.zone) this.forget(rs);
    if (want.length === 0) { this.closeSocket(); return; }
    this.open(me!.localIp, this.opts.port ?? topo.ha.ctSyncPort);
    for (const h of want) {
      const name = h.router.name;
      const peers = new Map<string, string>();
      for (const n of h.router.ha.l3Agents) {
        if (n === me!.name) continue;
        const node = topo.nodes.find((x) => x.name === n);
        if (node !== undefined) peers.set(node.localIp, n);
      }
      let rs = this.routers.get(name);
      if (rs === undefined) {
        rs = { name, zone: zones.get(name)!, peers, sender: null, lastSendMs: 0, lastRoundMs: 0, receivers: new Map() };
        this.routers.set(name, rs);
        this.byZone.set(rs.zone, rs);
      }
      rs.peers = peers;
      const master = masters.has(name);
      if (master && rs.sender === null) this.becomeMaster(rs);
      else if (!master && rs.sender !== null) this.becomeBackup(rs);
    }
  }

  private becomeMaster(rs: RouterSync): void {
    const ct = this.opts.conntrack();
    ct.watchZone(rs.zone, true);
    const zone = rs.zone;
    rs.sender = new CtSyncSender(() => ct.zoneEntries(zone, this.now()), {
      epoch: (Math.random() * 0x100000000) >>> 0, stream: zone,
    });
    rs.receivers.clear();
    rs.sender.startRound();
    rs.lastRoundMs = this.now();
    this.log('info', 'ct_sync_sending', { router: rs.name, zone, peers: [...rs.peers.values()].join(',') });
    this.tick();
  }

  private becomeBackup(rs: RouterSync): void {
    const ct = this.opts.conntrack();
    ct.watchZone(rs.zone, false);
    rs.sender = null;
    // The new master's first round gives this node the table (see the header).
    const n = ct.flush(rs.zone);
    this.log('info', 'ct_sync_receiving', { router: rs.name, zone: rs.zone, flushed: n });
  }

  private forget(rs: RouterSync): void {
    if (rs.sender !== null) this.opts.conntrack().watchZone(rs.zone, false);
    this.routers.delete(rs.name);
    if (this.byZone.get(rs.zone) === rs) this.byZone.delete(rs.zone);
  }

  private open(localIp: string, port: number): void {
    if (this.sock !== null && this.localIp === localIp && this.port === port) return;
    this.closeSocket();
    this.localIp = localIp;
    this.port = port;
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    sock.on('error', (e) => this.log('warn', 'ct_sync_socket_error', { error: e.message, local: `${localIp}:${this.port}` }));
    sock.on('message', (msg, rinfo) => this.receive(msg, rinfo.address, rinfo.port));
    sock.bind(this.port, localIp, () => { this.bound = true; });
    this.sock = sock;
    const tickMs = this.opts.tickMs ?? 50;
    this.timer = setInterval(() => this.tick(), tickMs);
    this.timer.unref();
  }

  private send(b: Uint8Array, ip: string, port = this.port): void {
    if (this.sock === null || !this.bound) return;
    this.sock.send(b, port, ip, (e) => { if (e) this.nSendErrors++; });
  }

  private receive(msg: Buffer, from: string, fromPort: number): void {
    const b = new Uint8Array(msg.buffer, msg.byteOffset, msg.length);
    const rs = this.byZone.get(ctSyncStream(b));
    if (rs === undefined) { this.drop('unknown_stream'); return; }
    const node = rs.peers.get(from);
    if (node === undefined) { this.drop('not_a_peer'); return; }
    if (b.length >= CT_SYNC_HEADER_BYTES && b[3] === MSG_RESYNC_REQUEST) {
      if (rs.sender !== null && rs.sender.receive(b)) rs.lastRoundMs = this.now();
      return;
    }
    // Two masters (a partition): each keeps its own table until VRRP settles.
    if (rs.sender !== null) { this.drop('while_master'); return; }
    let r = rs.receivers.get(from);
    if (r === undefined) {
      const ct = this.opts.conntrack();
      const now = this.now;
      r = { node, ip: from, rx: new CtSyncReceiver({
        upsert: (e: CtConnRecord) => { ct.importConn(e, now()); },
        remove: (e: CtConnRecord) => { ct.removeConn(e); },
      }) };
      rs.receivers.set(from, r);
    }
    const ask = r.rx.receive(b, this.now());
    if (ask !== null) this.send(ask, from, fromPort);
  }

  /** Drains the journal into the senders and sends what they have (the timer calls it). */
  tick(): void {
    if (this.routers.size === 0) return;
    const now = this.now();
    let anySender = false;
    for (const rs of this.routers.values()) if (rs.sender !== null) anySender = true;
    if (anySender) {
      const ct = this.opts.conntrack();
      const lost = ct.drainJournal((op, src, dst, ports, pz) => {
        const rs = this.byZone.get(pz & 0xffff);
        if (rs === undefined || rs.sender === null) return;
        const live = op === 1 ? ct.syncEntryOf(src, dst, ports, pz, now) : null;
        if (live !== null) { rs.sender.note(live, false); return; }
        if (op === 1) return; // gone since: its delete record follows
        rs.sender.note({
          zone: pz & 0xffff, proto: pz >>> 16, tcpState: 0, flags: 0, expiresInMs: 0,
          origSrc: src >>> 0, origDst: dst >>> 0, origSport: ports >>> 16, origDport: ports & 0xffff,
          replySrc: 0, replyDst: 0, replySport: 0, replyDport: 0,
        }, true);
      });
      for (const rs of this.routers.values()) {
        const s = rs.sender;
        if (s === null) continue;
        const refreshEvery = this.opts.refreshEveryMs ?? 30000;
        if ((lost || now - rs.lastRoundMs >= refreshEvery) && !s.refreshing) { s.startRound(); rs.lastRoundMs = now; }
        const ds = s.tick();
        if (ds.length === 0 && now - rs.lastSendMs >= (this.opts.heartbeatMs ?? 1000)) ds.push(s.heartbeat());
        if (ds.length === 0) continue;
        rs.lastSendMs = now;
        for (const ip of rs.peers.keys()) for (const d of ds) this.send(d, ip);
      }
    }
  }

  status(): HaCtSyncStatus[] {
    const ct = this.routers.size === 0 ? null : this.opts.conntrack();
    return [...this.routers.values()].map((rs) => ({
      router: rs.name, zone: rs.zone, role: rs.sender !== null ? 'sending' : 'receiving',
      local: `${this.localIp}:${this.port}`,
      seq: rs.sender?.lastSeq ?? 0, pending: rs.sender?.nPending ?? 0, refreshLeft: rs.sender?.nRoundLeft ?? 0,
      datagramsSent: rs.sender?.nDatagrams ?? 0,
      connections: ct === null ? 0 : ct.zoneConnections(rs.zone),
      peers: [...rs.receivers.values()].map((r) => ({
        node: r.node, ip: r.ip, lastSeq: r.rx.lastSeq, missing: r.rx.nMissing, connections: r.rx.size,
        datagrams: r.rx.nDatagrams, lastMs: r.rx.lastReceiveMs, refreshRounds: r.rx.nRoundsCompleted,
      })),
    }));
  }

  private closeSocket(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.sock !== null) { try { this.sock.close(); } catch { /* closed */ } }
    this.sock = null;
    this.bound = false;
  }

  close(): void {
    for (const rs of [...this.routers.values()]) this.forget(rs);
    this.closeSocket();
  }
}
