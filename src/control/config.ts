/**
 * The node config file (YAML): bridges, their ports with OpenFlow port numbers, and the
 * flows each bridge starts with. Read by the daemon (flowd --config) and by flowd replay
 * and flowd trace, so all three build the same switch.
 *
 *   node: c1                       # optional, the daemon's name in logs
 *   control_socket: /run/flowd.sock  # <dir>/<bridge>.mgmt are the OpenFlow sockets
 *   openflow:                        # optional, per bridge
 *     br0: { listen: "ptcp:6634:127.0.0.1", controller: "tcp:127.0.0.1:6633" }
 *   bridges:
 *     - name: br0
 *       ports:
 *         - { name: p1, ofport: 1 }                      # type afpacket is the default
 *         - { name: p2, ofport: 2, tag: 10 }             # access port of VLAN 10 (NORMAL)
 *         - { name: patch-tun, ofport: 3, type: patch, peer: patch-int }
 *         - { name: vxlan-c0a8640c, ofport: 4, type: vxlan, remote_ip: 192.168.100.12,
 *             local_ip: 192.168.100.11, key: flow }
 *       flows: br0.flows               # ovs-ofctl syntax, relative to this file
 *       forward_bpdu: false            # NORMAL forwards IEEE/Cisco reserved multicast (OVS's other-config)
 *       # or: flows: ["priority=1,in_port=1 actions=output:2", ...]
 *
 * or, for a DVR node, the bridges come from a topology (dvr/):
 *   node: C1
 *   topology: reference.yaml          # the daemon watches it and applies changes
 *   dhcp:                             # the DHCP agent (control/dhcp-agent.ts), topology only
 *     enabled: true                   # default true: serve what the topology gives this node
 *     namespace_prefix: ""            # qdhcp-<network> namespaces get it in front (the lab's fl-nn-)
 *     state_dir: /run/flowd/dhcp      # dnsmasq's files, one directory per network
 *   # or: topology: etcd://127.0.0.1:2379/flowd   (docs/etcd.md)
 *
 * Either form may tune the datapath's exact-match cache (dpif/emc.ts), read once at start:
 *   datapath:
 *     emc_insert_inv_prob: 100   # OVS's other_config:emc-insert-inv-prob: insert 1 miss in N, 0 = EMC off
 *     emc_lookup: auto           # auto: skipped while the megaflow cache alone is faster (flowd's
 *                                #   probe); always: looked up for every frame, as OVS does
 *
 * Every error is a ConfigError naming the file, the line and the field.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isSeq, isScalar, Node as YNode, YAMLMap } from 'yaml';
import { YamlReader } from './yaml-reader';
import { ConfigError } from '../errors';
import { EMC_DEFAULT_INSERT_INV_PROB } from '../dpif/emc';

export const PORT_KINDS = ['afpacket', 'tap', 'internal', 'vxlan', 'gre', 'patch', 'pcap'] as const;
export type PortKind = typeof PORT_KINDS[number];

export interface PortConfig {
  name: string;
  ofport: number;
  kind: PortKind;
  /** Access VLAN for NORMAL (OVS's `tag`), 0 for a trunk port. */
  tag: number;
  /** Patch ports: the name of the peer port (on another bridge). */
  peer: string;
  /** Tunnel ports. */
  remoteIp: string;
  localIp: string;
  /** 'flow' or a fixed key/VNI. */
  key: 'flow' | number;
  dstPort: number;
  /** Where the port is declared, for later errors. */
  line: number;
}

export interface FlowLine {
  text: string;
  file: string;
  line: number;
}

export interface BridgeConfig {
  name: string;
  ports: PortConfig[];
  flows: FlowLine[];
  line: number;
  /** NORMAL forwards frames to reserved multicast addresses (STP, LLDP, ...); OVS's default is false. */
  forwardBpdu?: boolean;
}

export interface NodeConfig {
  file: string;
  node: string;
  controlSocket: string;
  bridges: BridgeConfig[];
  /**
   * A topology file (dvr/topology.ts) this node takes its bridges, ports and flows from,
   * resolved against the config's directory; '' when the config lists bridges itself.
   */
  topology?: string;
  /**
   * OpenFlow per bridge beyond the management socket every bridge has
   * (control/openflow/endpoint.ts): a `ptcp:PORT[:IP]` listener and/or a `tcp:IP:PORT`
   * controller to connect out to.
   */
  openflow?: Record<string, OpenflowBridgeConfig>;
  /** The DHCP agent's settings (topology configs only). */
  dhcp?: DhcpAgentConfig;
  /** The datapath's cache settings; absent: the defaults (dpif/emc.ts). */
  datapath?: DatapathConfig;
}

/** `datapath:` of the node config: the exact-match cache's insertion and lookup policies. */
export interface DatapathConfig {
  /** Insert one EMC miss in this many; 1 = every miss, 0 = EMC off (OVS: emc-insert-inv-prob). */
  emcInsertInvProb: number;
  /** 'auto': flowd's measured bypass (dpif/emc.ts, "Lookup policy"); 'always': OVS's behaviour. */
  emcLookup: 'auto' | 'always';
}

export interface OpenflowBridgeConfig {
  listen: string;
  controller: string;
}

export interface DhcpAgentConfig { enabled: boolean; namespacePrefix: string; stateDir: string }
export const DEFAULT_DHCP_STATE_DIR = '/run/flowd/dhcp';

const OFPP_MAX = 0xff00;

function readPort(r: YamlReader, n: unknown, where: string, parent: YNode): PortConfig {
  const m = r.map(n, where, parent);
  r.checkKeys(m, ['name', 'ofport', 'type', 'tag', 'peer', 'remote_ip', 'local_ip', 'key', 'dst_port'], where);
  const name = r.str(m, 'name', `${where}.name`);
  if (!/^[A-Za-z0-9_.:-]{1,15}$/.test(name)) {
    throw r.err(m.get('name', true) as YNode, `${where}.name`,
      `"${name}" is not a valid interface name (1-15 of letters, digits, _ . : -)`);
  }
  const kindText = r.str(m, 'type', `${where}.type`, 'afpacket');
  if (!(PORT_KINDS as readonly string[]).includes(kindText)) {
    throw r.err(m.get('type', true) as YNode, `${where}.type`,
      `unknown port type "${kindText}" (expected one of ${PORT_KINDS.join(', ')})`);
  }
  const kind = kindText as PortKind;
  const p: PortConfig = {
    name,
    ofport: r.int(m, 'ofport', `${where}.ofport`, 1, OFPP_MAX - 1),
    kind,
    tag: r.int(m, 'tag', `${where}.tag`, 0, 4095, 0),
    peer: r.str(m, 'peer', `${where}.peer`, ''),
    remoteIp: r.ipv4(m, 'remote_ip', `${where}.remote_ip`, ''),
    localIp: r.ipv4(m, 'local_ip', `${where}.local_ip`, ''),
    key: 'flow',
    dstPort: r.int(m, 'dst_port', `${where}.dst_port`, 1, 65535, kind === 'vxlan' ? 4789 : 0),
    line: r.line(m),
  };
  const keyNode = m.get('key', true) as YNode | undefined;
  if (keyNode !== undefined) {
    const v = isScalar(keyNode) ? keyNode.value : undefined;
    if (v === 'flow') p.key = 'flow';
    else if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff) p.key = v;
    else throw r.err(keyNode, `${where}.key`, 'expected "flow" or an integer key/VNI');
  }
  if (kind === 'patch' && p.peer === '') throw r.err(m, `${where}.peer`, 'a patch port needs a peer');
  if ((kind === 'vxlan' || kind === 'gre') && p.remoteIp === '') {
    throw r.err(m, `${where}.remote_ip`, `a ${kind} port needs remote_ip`);
  }
  return p;
}

function readFlows(r: YamlReader, m: YAMLMap, where: string): FlowLine[] {
  const n = m.get('flows', true) as YNode | undefined;
  if (n === undefined) return [];
  if (isScalar(n) && typeof n.value === 'string') {
    const file = path.resolve(path.dirname(r.file), n.value);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw r.err(n, `${where}.flows`, `cannot read flows file ${file}: ${(e as Error).message}`);
    }
    return flowLines(file, text);
  }
  if (isSeq(n)) {
    return n.items.map((it, i) => {
      if (!isScalar(it) || typeof it.value !== 'string') {
        throw r.err(it as YNode, `${where}.flows[${i}]`, 'expected a flow string');
      }
      return { text: it.value, file: r.file, line: r.line(it as YNode) };
    });
  }
  throw r.err(n, `${where}.flows`, 'expected a file name or a list of flows');
}

/** Splits a flows file (ovs-ofctl add-flows format) into lines: no blanks, no comments. */
export function flowLines(file: string, text: string): FlowLine[] {
  const out: FlowLine[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i].trim();
    if (t === '' || t.startsWith('#')) continue;
    out.push({ text: t, file, line: i + 1 });
  }
  return out;
}

/** Parses config text; `file` names it in errors and anchors relative paths. */
export function parseConfig(file: string, text: string, topologyOverride = ''): NodeConfig {
  const r = new YamlReader(file);
  const root = r.map(r.parse(text), '(top level)', null);
  r.checkKeys(root, ['node', 'control_socket', 'bridges', 'topology', 'openflow', 'dhcp', 'datapath'], '(top level)');
  const cfg: NodeConfig = {
    file,
    node: r.str(root, 'node', 'node', path.basename(file).replace(/\.[^.]*$/, '')),
    controlSocket: r.str(root, 'control_socket', 'control_socket', ''),
    bridges: [],
  };
  if (root.get('datapath', true) !== undefined) cfg.datapath = readDatapath(r, root);
  const of = root.get('openflow', true) as YNode | undefined;
  if (of !== undefined) {
    const om = r.map(of, 'openflow', root);
    cfg.openflow = {};
    for (const it of om.items) {
      const br = String(isScalar(it.key) ? it.key.value : it.key);
      const bm = r.map(it.value as YNode, `openflow.${br}`, om);
      r.checkKeys(bm, ['listen', 'controller'], `openflow.${br}`);
      const listen = r.str(bm, 'listen', `openflow.${br}.listen`, '');
      const controller = r.str(bm, 'controller', `openflow.${br}.controller`, '');
      if (listen !== '' && !/^ptcp:\d+(:[\d.]+)?$/.test(listen)) throw r.err(bm.get('listen', true) as YNode, `openflow.${br}.listen`, 'expected ptcp:PORT[:IP]');
      if (controller !== '' && !/^tcp:[\d.]+:\d+$/.test(controller)) throw r.err(bm.get('controller', true) as YNode, `openflow.${br}.controller`, 'expected tcp:IP:PORT');
      cfg.openflow[br] = { listen, controller };
    }
  }
  const topo = topologyOverride !== '' ? topologyOverride : r.str(root, 'topology', 'topology', '');
  if (topo === '' && root.get('dhcp', true) !== undefined) throw r.err(root.get('dhcp', true) as YNode, 'dhcp', 'the DHCP agent serves what a "topology" gives this node');
  if (topo !== '') {
    if (root.get('bridges', true) !== undefined) {
      throw r.err(root.get('bridges', true) as YNode, 'bridges', 'a node config takes its bridges from "topology" or lists them, not both');
    }
    if (root.get('node', true) === undefined) throw r.err(root, 'node', 'is required with "topology" (which node of it this is)');
    // An etcd URL (control/topology-etcd.ts) stays as it is; a file is relative to the config
    // (to the working directory when given on the command line).
    cfg.topology = topo.startsWith('etcd://') ? topo
      : path.resolve(topologyOverride !== '' ? process.cwd() : path.dirname(file), topo);
    cfg.dhcp = readDhcp(r, root);
    return cfg;
  }
  const bs = root.get('bridges', true) as YNode | undefined;
  if (!isSeq(bs)) throw r.err(bs ?? root, 'bridges', 'expected a list of bridges');
  const portNames = new Map<string, string>();
  for (let bi = 0; bi < bs.items.length; bi++) {
    const where = `bridges[${bi}]`;
    const m = r.map(bs.items[bi], where, bs);
    r.checkKeys(m, ['name', 'ports', 'flows', 'forward_bpdu'], where);
    const name = r.str(m, 'name', `${where}.name`);
    if (cfg.bridges.some((b) => b.name === name)) {
      throw r.err(m.get('name', true) as YNode, `${where}.name`, `bridge "${name}" is defined twice`);
    }
    const ps = m.get('ports', true) as YNode | undefined;
    if (ps !== undefined && !isSeq(ps)) throw r.err(ps, `${where}.ports`, 'expected a list of ports');
    const ports: PortConfig[] = [];
    for (let pi = 0; ps !== undefined && isSeq(ps) && pi < ps.items.length; pi++) {
      const pw = `${where}.ports[${pi}]`;
      const p = readPort(r, ps.items[pi], pw, ps);
      const node = (ps.items[pi] as YAMLMap);
      const prev = portNames.get(p.name);
      if (prev !== undefined) throw r.err(node.get('name', true) as YNode, `${pw}.name`, `port "${p.name}" is already used by ${prev}`);
      if (ports.some((q) => q.ofport === p.ofport)) {
        throw r.err(node.get('ofport', true) as YNode, `${pw}.ofport`, `ofport ${p.ofport} is used twice on bridge ${name}`);
      }
      portNames.set(p.name, `bridge ${name}`);
      ports.push(p);
    }
    cfg.bridges.push({
      name, ports, flows: readFlows(r, m, where), line: r.line(m),
      forwardBpdu: r.bool(m, 'forward_bpdu', `${where}.forward_bpdu`, false),
    });
  }
  // Patch peers must name a patch port on another bridge that points back.
  for (const b of cfg.bridges) {
    for (const p of b.ports) {
      if (p.kind !== 'patch') continue;
      const peerBridge = cfg.bridges.find((x) => x.ports.some((q) => q.name === p.peer));
      const peer = peerBridge?.ports.find((q) => q.name === p.peer);
      if (peer === undefined || peer.kind !== 'patch' || peer.peer !== p.name) {
        throw new ConfigError(file, p.line, `${b.name}.${p.name}.peer`,
          `peer "${p.peer}" must be a patch port whose peer is "${p.name}"`);
      }
    }
  }
  return cfg;
}

function readDhcp(r: YamlReader, root: YAMLMap): DhcpAgentConfig {
  const n = root.get('dhcp', true) as YNode | undefined;
  const m = r.map(n ?? new YAMLMap(), 'dhcp', root);
  r.checkKeys(m, ['enabled', 'namespace_prefix', 'state_dir'], 'dhcp');
  const prefix = r.str(m, 'namespace_prefix', 'dhcp.namespace_prefix', '');
  if (!/^[A-Za-z0-9_.-]{0,40}$/.test(prefix)) throw r.err(r.node(m, 'namespace_prefix'), 'dhcp.namespace_prefix', `"${prefix}" is not usable in a namespace name`);
  return {
    enabled: r.bool(m, 'enabled', 'dhcp.enabled', true),
    namespacePrefix: prefix,
    stateDir: path.resolve(path.dirname(r.file), r.str(m, 'state_dir', 'dhcp.state_dir', DEFAULT_DHCP_STATE_DIR)),
  };
}

function readDatapath(r: YamlReader, root: YAMLMap): DatapathConfig {
  const m = r.map(root.get('datapath', true), 'datapath', root);
  r.checkKeys(m, ['emc_insert_inv_prob', 'emc_lookup'], 'datapath');
  const lookup = r.str(m, 'emc_lookup', 'datapath.emc_lookup', 'auto');
  if (lookup !== 'auto' && lookup !== 'always') {
    throw r.err(r.node(m, 'emc_lookup'), 'datapath.emc_lookup', `"${lookup}" is not a lookup policy (expected auto or always)`);
  }
  return {
    emcInsertInvProb: r.int(m, 'emc_insert_inv_prob', 'datapath.emc_insert_inv_prob', 0, 0xffffffff, EMC_DEFAULT_INSERT_INV_PROB),
    emcLookup: lookup,
  };
}

/** `topologyOverride` (flowd --topology): the topology file or etcd URL, in place of the config's. */
export function loadConfig(file: string, topologyOverride = ''): NodeConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, 0, '(file)', `cannot read: ${(e as Error).message}`);
  }
  return parseConfig(file, text, topologyOverride);
}
