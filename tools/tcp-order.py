#!/usr/bin/env python3
"""First out-of-order arrivals of one TCP direction in a pcap (tools/lab-reorder.sh).

   tcp-order.py FILE [DPORT]   (frames plain Ethernet/IPv4/TCP or VXLAN-in-UDP-4789 of those)

A segment is "late" when its first byte is below the highest sequence seen so far and its
bytes were never seen before (so a sender's retransmission, whose bytes were seen, is not).
Prints the number of data frames, late frames and retransmitted frames, and the first late ones
with the sequence they arrived behind (relative to the first sequence in the file).
"""
import struct
import sys


def frames(path):
    with open(path, 'rb') as f:
        gh = f.read(24)
        magic = struct.unpack('<I', gh[:4])[0]
        en = '<' if magic in (0xa1b2c3d4, 0xa1b23c4d) else '>'
        while True:
            h = f.read(16)
            if len(h) < 16:
                return
            ts, tus, incl, orig = struct.unpack(en + 'IIII', h)
            yield ts + tus / 1e6, f.read(incl)


def tcp(b, dport):
    outer = 0
    if len(b) < 54 or b[12:14] != b'\x08\x00':
        return None
    ihl = (b[14] & 15) * 4
    if b[23] == 17 and struct.unpack('>H', b[14 + ihl + 2:14 + ihl + 4])[0] == 4789:
        # A UDP GSO frame (captured before the kernel cut it) holds several datagrams of
        # the first one's size: count the TCP bytes of all of them.
        outer = struct.unpack('>H', b[16:18])[0] - ihl - 8
        o = 14 + ihl + 8 + 8
        b = b[o:]
        if len(b) < 54 or b[12:14] != b'\x08\x00':
            return None
        ihl = (b[14] & 15) * 4
    if b[23] != 6:
        return None
    tl = struct.unpack('>H', b[16:18])[0]
    t = 14 + ihl
    sp, dp, seq = struct.unpack('>HHI', b[t:t + 8])
    if dport and dp != dport:
        return None
    doff = (b[t + 12] >> 4) * 4
    n = tl - ihl - doff
    dg = 8 + 14 + tl
    if outer > dg:
        full, rem = divmod(outer, dg)
        n = full * n + (rem - dg + n if rem > 0 else 0)
    return sp, seq, n


class Flow:
    def __init__(self, seq, ts):
        self.base, self.t0 = seq, ts
        self.last, self.ext = seq, 0
        self.high = 0
        self.seen = []  # [start, end) intervals, relative, merged when many
        self.nData = self.nLate = self.nRetr = 0
        self.late = []

    def add(self, seq, n, ts):
        # Unwrapped: the 32-bit sequence wraps after 4 GB (a few seconds here).
        d = (seq - self.last) & 0xffffffff
        self.ext += d - (1 << 32) if d >= 1 << 31 else d
        self.last = seq
        s = self.ext
        e = s + n
        self.nData += 1
        if s < self.high:
            if any(a <= s and e <= z for a, z in self.seen):
                self.nRetr += 1
            else:
                self.nLate += 1
                if len(self.late) < 8:
                    self.late.append(f'  late at {ts - self.t0:.6f}s: seq {s} len {n} ({-(-n // 1398)} segments) '
                                     f'behind {self.high} ({(self.high - s) // 1398} segments)')
        self.high = max(self.high, e)
        self.seen.append((s, e))
        if len(self.seen) > 64:
            self.seen.sort()
            m = [self.seen[0]]
            for a, z in self.seen[1:]:
                if a <= m[-1][1]:
                    m[-1] = (m[-1][0], max(m[-1][1], z))
                else:
                    m.append((a, z))
            self.seen = m


def main():
    path = sys.argv[1]
    dport = int(sys.argv[2]) if len(sys.argv) > 2 else 5299
    flows = {}
    for ts, b in frames(path):
        r = tcp(b, dport)
        if r is None or r[2] <= 0:
            continue
        sp, seq, n = r
        if sp not in flows:
            flows[sp] = Flow(seq, ts)
        flows[sp].add(seq, n, ts)
    if not flows:
        print(f'{path}: no data frames')
        return
    f = max(flows.values(), key=lambda x: x.nData)
    print(f'{path}: {f.nData} data frames, {f.nLate} late, {f.nRetr} retransmitted')
    for line in f.late:
        print(line)


main()
