/**
 * Packet capture through libpcap (the `cap` package): what `flowctl capture` uses, and the
 * receive side of the `cap` port backend.
 *
 * Pitfalls measured here and handled: `cap` copies each frame into ONE buffer the caller
 * provides and crashes if that buffer is garbage-collected while the handle is open, so the
 * buffer is a field of the capture object and lives exactly as long as it. Its snap length
 * is capped at 65535, and its ring holds few frames, so bursts above ~180k pps drop: fine for
 * capture and tests, which is why the datapath uses the native AF_PACKET ring instead.
 */
import { Cap } from 'cap';

export const CAP_BUFFER_BYTES = 65535;
const CAP_RING_BYTES = 16 * 1024 * 1024;

export class CapCapture {
  private readonly cap = new Cap();
  /** Kept referenced for the lifetime of the handle (see header). */
  private readonly buffer = Buffer.alloc(CAP_BUFFER_BYTES);
  private open = false;
  nFrames = 0;
  nTruncated = 0;

  /**
   * Starts capturing on `device` with a BPF `filter` ('' for everything); `onFrame` gets a
   * view that is only valid during the call (copy what you keep). `ringBytes`: libpcap's
   * buffer (a watcher of a few frames a second needs far less than a capture).
   */
  constructor(readonly device: string, filter: string, onFrame: (frame: Uint8Array) => void, ringBytes = CAP_RING_BYTES) {
    const linkType = this.cap.open(device, filter, ringBytes, this.buffer);
    this.open = true;
    if (linkType !== 'ETHERNET') {
      this.close();
      throw new Error(`${device}: link type ${linkType} is not Ethernet`);
    }
    if (this.cap.setMinBytes) this.cap.setMinBytes(0);
    this.cap.on('packet', (nbytes: number, truncated: boolean) => {
      this.nFrames++;
      if (truncated) this.nTruncated++;
      onFrame(this.buffer.subarray(0, nbytes));
    });
  }

  /** Sends one frame through libpcap (pcap_inject). */
  send(frame: Uint8Array): void {
    this.buffer.set(frame, 0);
    this.cap.send(this.buffer, frame.length);
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.cap.close();
  }
}
