/** Types for the `pcap-parser` package (it ships none); only what flowd uses. */
declare module 'pcap-parser' {
  import { EventEmitter } from 'node:events';
  import { Readable } from 'node:stream';
  export interface GlobalHeader {
    magicNumber: number;
    majorVersion: number;
    minorVersion: number;
    gmtOffset: number;
    timestampAccuracy: number;
    snapshotLength: number;
    linkLayerType: number;
  }
  export interface PacketHeader {
    timestampSeconds: number;
    timestampMicroseconds: number;
    capturedLength: number;
    originalLength: number;
  }
  export interface Packet {
    header: PacketHeader;
    data: Buffer;
  }
  export interface Parser extends EventEmitter {
    on(event: 'globalHeader', cb: (h: GlobalHeader) => void): this;
    on(event: 'packetHeader', cb: (h: PacketHeader) => void): this;
    on(event: 'packet', cb: (p: Packet) => void): this;
    on(event: 'error', cb: (e: Error) => void): this;
    on(event: 'end', cb: () => void): this;
  }
  export function parse(input: string | Readable): Parser;
}
