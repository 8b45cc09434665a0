/**
 * One error hierarchy for the control plane: config files, flow syntax, control commands,
 * pcap files. Each class has a stable `code` that scripts and tests can rely on.
 * The datapath never throws per packet; it counts drops by reason (packet/stop.ts).
 */
export class FlowdError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A config or topology file is wrong: names the file, the line and the field. */
export class ConfigError extends FlowdError {
  constructor(readonly file: string, readonly line: number, readonly field: string, readonly reason: string) {
    super('E_CONFIG', `${file}:${line}: ${field}: ${reason}`);
  }
}

/**
 * A flow in ovs-ofctl syntax is wrong. `flow` is the text, `column` is 1-based.
 * When it came from a file, `file` and `line` say where.
 */
export class FlowSyntaxError extends FlowdError {
  constructor(readonly flow: string, readonly column: number, readonly field: string, msg: string,
              readonly file = '', readonly line = 0) {
    super('E_FLOW_SYNTAX',
      `${file ? `${file}:${line}: ` : ''}${field ? `${field}: ` : ''}${msg} (column ${column} of "${flow}")`);
  }
}

/** A capture file cannot be read: names the file and what is wrong. */
export class PcapError extends FlowdError {
  constructor(readonly file: string, msg: string) {
    super('E_PCAP', `${file}: ${msg}`);
  }
}

/** A control command is wrong (unknown bridge, bad arguments). */
export class CommandError extends FlowdError {
  constructor(msg: string, code = 'E_COMMAND') {
    super(code, msg);
  }
}
