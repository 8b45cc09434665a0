/**
 * Issue 14 item 3 through the daemons: an established TCP connection through SNAT keeps its
 * external address and port, and keeps moving data, after SIGKILL of the master's flowd.
 * examples/topologies/ha.yaml with C2 (VM2 and a VM3 added on network B), NN1, NN2 and the
 * upstream 203.0.113.1 in h14- namespaces. VM3 first holds 203.0.113.10:40000 (an idle
 * connection from its port 40000), so VM2's connection from its port 40000 is SNATed to
 * another port P: a new master can only reproduce P from the master's conntrack.
 * Checked on the upstream's wire (tcpdump) and by the server's byte count per connection:
 * with the sync (the default) VM2's frames leave as 203.0.113.10:P after the failover and P's
 * byte count grows; with `ha_conntrack_sync: false` they leave as :40000 and P's count
 * stops (the same checks fail: shown by asserting the opposite).
 * Root, keepalived, setpriv and tcpdump needed; skipped with the reason otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Lab, labSkipReason, sleepMs } from '../helpers/netlab';
import { cleanupHaNamespaces, haState, startHaNodes, waitMasterAndSnat } from '../helpers/ha-netlab';
import { startCapture, stopCapture } from '../../src/lab/lab-check';
import { framesOf } from '../../src/lab/ping';
import { TcpStreamClient, TcpStreamServer } from '../../src/lab/tcp-stream';
import { waitFor, waitSteady } from '../helpers/wait';

const HA = path.resolve(__dirname, '../../../examples/topologies/ha.yaml');
const skip = labSkipReason(['keepalived', 'setpriv', 'tcpdump']);
const GW = '203.0.113.10';
const SERVER_PORT = 5001;

/** TCP source ports of frames from the gateway address to the server port. */
function gwSourcePorts(frames: Uint8Array[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const f of frames) {
    if (f.length < 54 || f[12] !== 0x08 || f[13] !== 0x00 || f[23] !== 6) continue;
    if (`${f[26]}.${f[27]}.${f[28]}.${f[29]}` !== GW) continue;
    const l4 = 14 + (f[14] & 0x0f) * 4;
    if (((f[l4 + 2] << 8) | f[l4 + 3]) !== SERVER_PORT) continue;
    const sp = (f[l4] << 8) | f[l4 + 1];
    out.set(sp, (out.get(sp) ?? 0) + 1);
  }
  return out;
}

for (const sync of [true, false]) {
  test(`TCP through SNAT after SIGKILL of the master's flowd ${sync ? 'keeps its external port and keeps moving (conntrack sync on)' : 'breaks without the sync (ha_conntrack_sync: false)'}`, { skip }, async () => {
    const lab = new Lab('h14');
    const servers: TcpStreamServer[] = [];
    const clients: TcpStreamClient[] = [];
    try {
      let text = fs.readFileSync(HA, 'utf8').replace('floating_ips:',
        '  - { name: VM3, mac: fa:16:3e:00:02:30, network: B, fixed_ips: [10.0.2.30],\n      binding:host_id: C2, device: vm3-host }\nfloating_ips:');
      if (!sync) text = text.replace('ha_vrrp_advert_int: 0.1\n', 'ha_vrrp_advert_int: 0.1\nha_conntrack_sync: false\n');
      const topo = lab.file('ha.yaml', text);
      const vm2 = lab.addNs('-vm2');
      const vm3 = lab.addNs('-vm3');
      const { up, nn } = await startHaNodes(lab, topo, [
        { ns: vm2, host: 'vm2-host', mac: 'fa:16:3e:00:02:20', ip: '10.0.2.20' },
        { ns: vm3, host: 'vm3-host', mac: 'fa:16:3e:00:02:30', ip: '10.0.2.30' }]);
      const m = await waitMasterAndSnat(lab, nn, vm2);

      const server = new TcpStreamServer(up, '203.0.113.1', SERVER_PORT);
      servers.push(server);
      await server.ready;
      const holder = new TcpStreamClient(vm3, '203.0.113.1', SERVER_PORT, 40000, 0);
      clients.push(holder);
      await holder.connected;
      const stream = new TcpStreamClient(vm2, '203.0.113.1', SERVER_PORT, 40000, 10);
      clients.push(stream);
      await stream.connected;
      await waitFor('the server to see both connections, VM2\'s moving', () => {
        const b = server.bytes();
        return b[`${GW}:40000`] !== undefined && Object.entries(b).some(([k, n]) => k !== `${GW}:40000` && n > 0);
      }, { detail: () => JSON.stringify(server.bytes()) });
      const conns = Object.keys(server.bytes());
      assert.ok(conns.includes(`${GW}:40000`), conns.join(' '));
      const ext = conns.find((k) => k !== `${GW}:40000`);
      assert.ok(ext !== undefined && ext.startsWith(`${GW}:`), `VM2's connection is SNATed to another port: ${conns.join(' ')}`);
      const extPort = Number(ext.split(':')[1]);
      const status = async (): Promise<string> => String(await nn[1 - m].request('ha', { action: 'status' }));
      if (sync) {
        await waitFor('the backup holding both connections from the sync stream, none missing',
          async () => /ct-sync zone \d+ via 192\.168\.100\.1[34]:3781: receiving from NN[12] seq \d+, lag 0 datagrams missing, [2-9] connections/.test(await status()),
          { detail: status });
      }
      const statusBefore = await status();
      process.stdout.write(`# backup's ha status before the failover:\n${statusBefore.split('\n').map((l) => `#   ${l}`).join('\n')}\n`);

      process.kill(nn[m].child.pid!, 'SIGKILL');
      await waitFor('takeover after SIGKILL of the master\'s flowd', async () => (await haState(nn[1 - m])) === 'master', { detail: () => haState(nn[1 - m]) });
      let b0 = 0;
      let b1 = 0;
      let ports = new Map<number, number>();
      if (sync) {
        // TCP retransmits with backoff (0.2, 0.6, 1.4 s after the loss): wait until the stream
        // moves again on its external port, then capture while it sends another 10 kB.
        const moved = server.bytes()[ext] ?? 0;
        await waitFor(`the stream moving again on ${ext}`, () => (server.bytes()[ext] ?? 0) > moved, { detail: () => JSON.stringify(server.bytes()) });
        const cap = startCapture(up, 'eth0', path.join(lab.dir, 'up.pcap'));
        await cap.ready;
        b0 = server.bytes()[ext] ?? 0;
        await waitFor(`10 kB more on ${ext}`, () => (server.bytes()[ext] ?? 0) - b0 > 10000, { detail: () => JSON.stringify(server.bytes()) });
        b1 = server.bytes()[ext] ?? 0;
        await stopCapture(cap);
        ports = gwSourcePorts(await framesOf(cap.file));
      } else {
        // Without the sync nothing reaches ext again; VM2's retransmissions (with backoff) leave
        // as :40000. The count taken once the server's reports (every 50 ms) settle, then
        // captures in rounds until one shows them.
        let prev = -1;
        await waitSteady(`the server's count on ${ext} settled`, () => {
          const n = server.bytes()[ext] ?? 0;
          const same = n === prev;
          prev = n;
          return same;
        }, 1000);
        b0 = server.bytes()[ext] ?? 0;
        let round = 0;
        await waitFor(`VM2's frames leaving as ${GW}:40000`, async () => {
          const cap = startCapture(up, 'eth0', path.join(lab.dir, `up${round++}.pcap`));
          await cap.ready;
          await sleepMs(1500);
          await stopCapture(cap);
          for (const [p, n] of gwSourcePorts(await framesOf(cap.file))) ports.set(p, (ports.get(p) ?? 0) + n);
          return (ports.get(40000) ?? 0) > 0;
        }, { detail: () => [...ports].map(([p, n]) => `${GW}:${p} x${n}`).join(', ') || 'none' });
        b1 = server.bytes()[ext] ?? 0;
      }
      const seen = [...ports].map(([p, n]) => `${GW}:${p} x${n}`).join(', ') || 'none';
      process.stdout.write(`# sync ${sync ? 'on' : 'off'}: VM2's connection is ${GW}:${extPort}; after the failover the server got ${b1 - b0} bytes on it while captured; ` +
        `on the upstream wire: ${seen}\n`);
      if (sync) {
        // Each of the 10 kB went in segments from the external port (a busy sender may coalesce some).
        assert.ok((ports.get(extPort) ?? 0) >= 5, `frames from ${ext} on the wire: ${seen}`);
        assert.equal(ports.get(40000) ?? 0, 0, `no frames from ${GW}:40000 (VM3 is idle): ${seen}`);
        assert.equal(stream.state, 'connected');
      } else {
        assert.equal(b1 - b0, 0, `without sync nothing reaches ${ext}`);
        assert.equal(ports.get(extPort) ?? 0, 0, seen);
        assert.ok((ports.get(40000) ?? 0) > 0, `the new master maps VM2 to ${GW}:40000: ${seen}`);
      }
    } finally {
      for (const c of clients) c.stop();
      for (const s of servers) s.stop();
      await lab.cleanup();
      cleanupHaNamespaces();
    }
  });
}
