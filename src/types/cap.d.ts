/** Types for the `cap` package (libpcap binding; it ships none); only what flowd uses. */
declare module 'cap' {
  import { EventEmitter } from 'node:events';
  export class Cap extends EventEmitter {
    open(device: string, filter: string, bufSize: number, buffer: Buffer): string;
    close(): void;
    setMinBytes?(n: number): void;
    send(buffer: Buffer, nbytes?: number): void;
    on(event: 'packet', cb: (nbytes: number, truncated: boolean) => void): this;
    static deviceList(): { name: string; addresses: { addr: string }[] }[];
  }
}
