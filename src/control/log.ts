/**
 * Structured log lines (one JSON object per line on stderr): time, level, event, fields.
 * Control-plane only; the datapath never logs per packet.
 */
export type LogFields = { [k: string]: string | number | boolean | null };

export function log(level: 'info' | 'warn' | 'error', event: string, fields: LogFields = {}): void {
  process.stderr.write(JSON.stringify({ ts: new Date().toISOString(), level, event, ...fields }) + '\n');
}
