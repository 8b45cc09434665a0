/**
 * The lab check's DHCP reader (lab/lab-check-dhcp.ts dhcpOf) on literal frames: a plain OFFER,
 * the same inside VXLAN (with the outer destination), and what it refuses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dhcpOf } from '../../src/lab/lab-check-dhcp';

const hex = (s: string): number[] => s.replace(/\s+/g, '').match(/../g)!.map((x) => parseInt(x, 16));

/** Ethernet + IPv4 + UDP 67->68 + BOOTP with options 53=2 (OFFER), 54=10.0.1.4, end. */
function offer(): Uint8Array {
  const bootp = new Array<number>(236).fill(0);
  bootp[0] = 2; // op BOOTREPLY
  [10, 0, 1, 10].forEach((v, i) => { bootp[16 + i] = v; }); // yiaddr
  hex('fa163e000110').forEach((v, i) => { bootp[28 + i] = v; }); // chaddr
  const opts = [99, 130, 83, 99, 53, 1, 2, 54, 4, 10, 0, 1, 4, 255];
  const udp = [0, 67, 0, 68, 0, 8 + bootp.length + opts.length, 0, 0];
  const payload = [...udp, ...bootp, ...opts];
  const ip = [0x45, 0, 0, 20 + payload.length, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 1, 4, 255, 255, 255, 255];
  ip[2] = (20 + payload.length) >> 8; ip[3] = (20 + payload.length) & 255;
  return Uint8Array.from([...hex('fa163e000110 fa163e00ea3b 0800'), ...ip, ...payload]);
}

test('a plain OFFER: type 2, client MAC, offered address, server identifier', () => {
  assert.deepEqual(dhcpOf(offer()), { type: 2, chaddr: 'fa:16:3e:00:01:10', yiaddr: '10.0.1.10', serverId: '10.0.1.4', outerDstIp: '' });
});

test('the same OFFER inside VXLAN carries the tunnel destination', () => {
  const inner = offer();
  const udpLen = 8 + 8 + inner.length;
  const outerIp = [0x45, 0, (20 + udpLen) >> 8, (20 + udpLen) & 255, 0, 0, 0, 0, 64, 17, 0, 0, 192, 168, 100, 13, 192, 168, 100, 11];
  const frame = Uint8Array.from([...hex('525400000011 525400000013 0800'), ...outerIp,
    0xc0, 0x00, 0x12, 0xb5, udpLen >> 8, udpLen & 255, 0, 0, 0x08, 0, 0, 0, 0, 0x03, 0xe9, 0, ...inner]);
  assert.deepEqual(dhcpOf(frame), { type: 2, chaddr: 'fa:16:3e:00:01:10', yiaddr: '10.0.1.10', serverId: '10.0.1.4', outerDstIp: '192.168.100.11' });
});

test('no DHCP: another UDP port, a cut message, a bad magic cookie', () => {
  const other = offer();
  other[14 + 20 + 3] = 53; // destination port 53
  assert.equal(dhcpOf(other), null);
  assert.equal(dhcpOf(offer().subarray(0, 200)), null);
  const cookie = offer();
  cookie[14 + 20 + 8 + 236] = 98;
  assert.equal(dhcpOf(cookie), null);
});
