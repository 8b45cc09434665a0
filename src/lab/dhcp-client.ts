/**
 * The lab VMs' DHCP client: busybox udhcpc in the VM's namespace with a small script that
 * applies the lease (address, MTU, default route or, when the server sent classless static
 * routes (option 121), those routes instead, as RFC 3442 s3 asks) and records it in a lease
 * file, with the DNS servers (option 6) and the server identifier (option 54: which agent's
 * dnsmasq gave it).
 * Called by: lab/lab.ts (VM set-up, status), lab/lab-check-dhcp.ts, the DHCP integration test.
 * Owns the script and lease files it is told to write; runs udhcpc to completion (-q), so no
 * client process outlives a call.
 */
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const BUSYBOX = '/usr/bin/busybox';

/** A lease as udhcpc handed it to the script. */
export interface Lease {
  ip: string; subnet: string; router: string; mtu: number; serverId: string; leaseS: number;
  /** Option 6, in the server's order. */
  dns: string[];
  /** Option 121 as "destination/len via nexthop", in the server's order. */
  staticRoutes: string[];
}

const SCRIPT = `#!/bin/sh
# udhcpc event script of the flowd lab (lab/dhcp-client.ts): applies and records a lease.
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$subnet" dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    if [ -n "$staticroutes" ]; then
      set -- $staticroutes
      while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
    elif [ -n "$router" ]; then
      ip route replace default via "$router" dev "$interface"
    fi
    printf 'ip=%s\\nsubnet=%s\\nrouter=%s\\nmtu=%s\\nserverid=%s\\nlease=%s\\ndns=%s\\nroutes=%s\\n' \\
      "$ip" "$subnet" "$router" "$mtu" "$serverid" "$lease" "$dns" "$staticroutes" > "$FLOWD_LEASE_FILE.tmp"
    mv "$FLOWD_LEASE_FILE.tmp" "$FLOWD_LEASE_FILE" ;;
esac
exit 0
`;

/** Writes the event script into `dir` and returns its path. */
export function writeClientScript(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'udhcpc.sh');
  fs.writeFileSync(file, SCRIPT, { mode: 0o755 });
  return file;
}

/** udhcpc's $staticroutes ("dst gw dst gw ...") as "dst via gw" strings. */
function pairs(words: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < words.length; i += 2) out.push(`${words[i]} via ${words[i + 1]}`);
  return out;
}

export function readLease(file: string): Lease | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const kv = new Map(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  return {
    ip: kv.get('ip') ?? '', subnet: kv.get('subnet') ?? '', router: kv.get('router') ?? '',
    mtu: Number(kv.get('mtu') || 0), serverId: kv.get('serverid') ?? '', leaseS: Number(kv.get('lease') || 0),
    dns: (kv.get('dns') ?? '').split(' ').filter((x) => x !== ''),
    staticRoutes: pairs((kv.get('routes') ?? '').split(' ').filter((x) => x !== '')),
  };
}

/**
 * One DHCP exchange from `iface` in namespace `ns` (DISCOVER, OFFER, REQUEST, ACK): returns the
 * lease, or null when no server offered within `tries` DISCOVERs one second apart.
 */
export function obtainLease(ns: string, iface: string, script: string, leaseFile: string, tries = 3): Lease | null {
  fs.rmSync(leaseFile, { force: true });
  const r = spawnSync('ip', udhcpcArgs(ns, iface, script, tries), { encoding: 'utf8', env: { ...process.env, FLOWD_LEASE_FILE: leaseFile }, timeout: (tries + 5) * 1000 });
  if (r.status !== 0) return null;
  return readLease(leaseFile);
}

/** obtainLease() without blocking: VMs in different namespaces take their leases side by side. */
export function obtainLeaseAsync(ns: string, iface: string, script: string, leaseFile: string, tries = 3): Promise<Lease | null> {
  fs.rmSync(leaseFile, { force: true });
  return new Promise((resolve) => {
    execFile('ip', udhcpcArgs(ns, iface, script, tries), { encoding: 'utf8', env: { ...process.env, FLOWD_LEASE_FILE: leaseFile }, timeout: (tries + 5) * 1000 },
      (e) => resolve(e === null ? readLease(leaseFile) : null));
  });
}

function udhcpcArgs(ns: string, iface: string, script: string, tries: number): string[] {
  return ['netns', 'exec', ns, BUSYBOX, 'udhcpc', '-f', '-q', '-n', '-i', iface, '-t', String(tries), '-T', '1',
    '-A', '1', '-O', 'mtu', '-O', 'staticroutes', '-s', script];
}
