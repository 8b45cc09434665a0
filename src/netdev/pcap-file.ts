/**
 * Capture files: read with the `pcap-parser` package, write classic pcap.
 *
 * Reading accepts the classic format in both byte orders, with microsecond timestamps
 * (magic 0xa1b2c3d4) or nanosecond timestamps (magic 0xa1b23c4d). pcap-parser knows only
 * the microsecond magic, so a nanosecond file is handed to it with the magic rewritten and
 * its "microseconds" field read back as nanoseconds. pcapng, unknown magics, a file cut in
 * the middle of a record, or a record longer than the snap length are rejected with a
 * PcapError that names the file and what is wrong. Only Ethernet (linktype 1) is accepted,
 * since every port of flowd carries Ethernet frames.
 *
 * Writing produces little-endian, microsecond, version 2.4, linktype 1: what tcpdump writes.
 */
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import * as pcapParser from 'pcap-parser';
import { PcapError } from '../errors';

export interface PcapRecord {
  tsSec: number;
  tsNsec: number;
  /** Bytes as captured (may be shorter than origLen when the capture was snapped). */
  data: Uint8Array;
  origLen: number;
}

export interface PcapContents {
  nanosecond: boolean;
  snapLen: number;
  linkType: number;
  records: PcapRecord[];
}

const MAGIC_US_LE = 'd4c3b2a1';
const MAGIC_US_BE = 'a1b2c3d4';
const MAGIC_NS_LE = '4d3cb2a1';
const MAGIC_NS_BE = 'a1b23c4d';
const MAGIC_PCAPNG = '0a0d0d0a';
export const LINKTYPE_ETHERNET = 1;
const GLOBAL_HEADER_BYTES = 24;
const RECORD_HEADER_BYTES = 16;
/** Largest record accepted regardless of the file's snap length (tcpdump's own maximum). */
const MAX_RECORD_BYTES = 262144;

/** Checks the global header before handing the bytes to pcap-parser. */
function classify(file: string, bytes: Buffer): { nanosecond: boolean } {
  if (bytes.length < GLOBAL_HEADER_BYTES) {
    throw new PcapError(file, `too short for a pcap global header (${bytes.length} of 24 bytes)`);
  }
  const magic = bytes.toString('hex', 0, 4);
  if (magic === MAGIC_PCAPNG) {
    throw new PcapError(file, 'is a pcapng file; flowd reads classic pcap only ' +
      '(convert it with: editcap -F pcap IN OUT)');
  }
  if (magic === MAGIC_US_LE || magic === MAGIC_US_BE) return { nanosecond: false };
  if (magic === MAGIC_NS_LE || magic === MAGIC_NS_BE) return { nanosecond: true };
  throw new PcapError(file, `not a pcap file (magic number 0x${magic})`);
}

/** Reads a whole capture file into memory. */
export function readPcap(file: string): Promise<PcapContents> {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    return Promise.reject(new PcapError(file, `cannot read: ${(e as Error).message}`));
  }
  return parsePcapBytes(file, bytes);
}

/** Parses capture bytes already in memory; `file` names them in errors. */
export function parsePcapBytes(file: string, bytes: Buffer): Promise<PcapContents> {
  let kind: { nanosecond: boolean };
  try {
    kind = classify(file, bytes);
  } catch (e) {
    return Promise.reject(e);
  }
  let input = bytes;
  if (kind.nanosecond) {
    input = Buffer.from(bytes);
    const le = bytes.toString('hex', 0, 4) === MAGIC_NS_LE;
    Buffer.from(le ? MAGIC_US_LE : MAGIC_US_BE, 'hex').copy(input, 0);
  }
  const out: PcapContents = { nanosecond: kind.nanosecond, snapLen: 0, linkType: 0, records: [] };
  return new Promise((resolve, reject) => {
    let failed: PcapError | null = null;
    let consumed = GLOBAL_HEADER_BYTES;
    const parser = pcapParser.parse(Readable.from([input]));
    const fail = (msg: string): void => {
      if (failed === null) failed = new PcapError(file, msg);
    };
    parser.on('globalHeader', (h: pcapParser.GlobalHeader) => {
      out.snapLen = h.snapshotLength;
      out.linkType = h.linkLayerType;
      if (h.linkLayerType !== LINKTYPE_ETHERNET) {
        fail(`link type ${h.linkLayerType} is not Ethernet (1)`);
      }
    });
    parser.on('packetHeader', (h: pcapParser.PacketHeader) => {
      const limit = Math.max(out.snapLen, 65535);
      if (h.capturedLength > MAX_RECORD_BYTES || h.capturedLength > limit) {
        fail(`record ${out.records.length + 1} at byte ${consumed} claims ` +
          `${h.capturedLength} bytes, more than the snap length ${out.snapLen}: file is corrupt`);
      }
    });
    parser.on('packet', (p: pcapParser.Packet) => {
      consumed += RECORD_HEADER_BYTES + p.data.length;
      if (failed !== null) return;
      out.records.push({
        tsSec: p.header.timestampSeconds,
        tsNsec: kind.nanosecond ? p.header.timestampMicroseconds
          : p.header.timestampMicroseconds * 1000,
        data: new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.length),
        origLen: p.header.originalLength,
      });
    });
    parser.on('error', (e: Error) => fail(e.message));
    parser.on('end', () => {
      if (failed === null && consumed !== bytes.length) {
        fail(`truncated: record ${out.records.length + 1} at byte ${consumed} is cut short ` +
          `(file has ${bytes.length} bytes)`);
      }
      if (failed !== null) reject(failed);
      else resolve(out);
    });
  });
}

/** Classic pcap writer; frames are appended in order and flushed on close(). */
export class PcapWriter {
  private readonly chunks: Buffer[] = [];
  private closed = false;

  constructor(readonly file: string, readonly snapLen = MAX_RECORD_BYTES) {
    const h = Buffer.alloc(GLOBAL_HEADER_BYTES);
    h.writeUInt32LE(0xa1b2c3d4, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeInt32LE(0, 8);
    h.writeUInt32LE(0, 12);
    h.writeUInt32LE(snapLen, 16);
    h.writeUInt32LE(LINKTYPE_ETHERNET, 20);
    this.chunks.push(h);
  }

  /** Appends a copy of `frame` with the given timestamp. */
  write(frame: Uint8Array, tsSec: number, tsNsec: number): void {
    const capLen = Math.min(frame.length, this.snapLen);
    const r = Buffer.alloc(RECORD_HEADER_BYTES + capLen);
    r.writeUInt32LE(tsSec >>> 0, 0);
    r.writeUInt32LE(Math.floor(tsNsec / 1000), 4);
    r.writeUInt32LE(capLen, 8);
    r.writeUInt32LE(frame.length, 12);
    r.set(frame.subarray(0, capLen), RECORD_HEADER_BYTES);
    this.chunks.push(r);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.writeFileSync(this.file, Buffer.concat(this.chunks));
    this.chunks.length = 0;
  }
}
