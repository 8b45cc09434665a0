#!/usr/bin/env node
// Regenerates the shipped captures of examples/demo/ from the packet library (run after
// `npm run build`). The captures are committed; this script documents what is in them.
'use strict';
const path = require('node:path');
const d = path.join(__dirname, '..', 'dist', 'src');
const { buildArpFrame } = require(path.join(d, 'packet/arp.js'));
const { buildIcmp4EchoFrame } = require(path.join(d, 'packet/icmp.js'));
const { buildTcp4Frame } = require(path.join(d, 'packet/tcp.js'));
const { buildUdp4Frame } = require(path.join(d, 'packet/udp.js'));
const { PcapWriter } = require(path.join(d, 'netdev/pcap-file.js'));

const VM1 = '02:00:00:00:00:01', VM2 = '02:00:00:00:00:02', VM3 = '02:00:00:00:00:03';
const ip = (s) => s.split('.').reduce((a, o) => a * 256 + Number(o), 0);
const T0 = 1764028800; // 2025-11-25 00:00:00 UTC
const out = path.join(__dirname, '..', 'examples', 'demo');

const vm1 = new PcapWriter(path.join(out, 'vm1-in.pcap'));
vm1.write(buildArpFrame({ op: 1, sha: VM1, spa: ip('10.0.0.1'), tpa: ip('10.0.0.2'), pad: true }), T0, 0);
vm1.write(buildIcmp4EchoFrame({ ethSrc: VM1, ethDst: VM2, src: '10.0.0.1', dst: '10.0.0.2', ttl: 64, echoId: 0x4242, echoSeq: 1,
  payload: new Uint8Array(32).fill(0x61) }), T0 + 1, 0);
vm1.write(buildTcp4Frame({ ethSrc: VM1, ethDst: VM3, src: '10.0.0.1', dst: '10.0.0.3', ttl: 64, sport: 40000, dport: 80,
  seq: 1000, ack: 0, flags: 0x02, window: 64240 }), T0 + 2, 0);
vm1.write(buildUdp4Frame({ ethSrc: VM1, ethDst: VM3, src: '10.0.0.1', dst: '10.0.0.3', ttl: 64, sport: 40001, dport: 53,
  payload: new Uint8Array(12) }), T0 + 3, 0);
// A frame cut inside its IPv4 header: dropped and counted as truncated_ipv4.
const cut = buildIcmp4EchoFrame({ ethSrc: VM1, ethDst: VM2, src: '10.0.0.1', dst: '10.0.0.2', echoId: 1, echoSeq: 2 });
vm1.write(cut.subarray(0, 24), T0 + 4, 0);
vm1.close();

const vm2 = new PcapWriter(path.join(out, 'vm2-in.pcap'));
vm2.write(buildArpFrame({ op: 2, sha: VM2, spa: ip('10.0.0.2'), tha: VM1, tpa: ip('10.0.0.1'), pad: true }), T0, 500000000);
vm2.write(buildIcmp4EchoFrame({ ethSrc: VM2, ethDst: VM1, src: '10.0.0.2', dst: '10.0.0.1', ttl: 64, icmpType: 0, echoId: 0x4242,
  echoSeq: 1, payload: new Uint8Array(32).fill(0x61) }), T0 + 1, 500000000);
vm2.close();
console.log(`wrote ${out}/vm1-in.pcap and vm2-in.pcap`);
