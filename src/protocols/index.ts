import { assertOneOf } from '../core/validate.js';
import { agUIProtocol } from './ag-ui.js';
import { aiSdkProtocol } from './ai-sdk.js';
import { ndjsonFrom, ndjsonProtocol } from './ndjson.js';
import { chatCompletionsProtocol } from './openai.js';
import type { Protocol, ProtocolName } from './protocol.js';

export type { EncoderContext, Protocol, ProtocolName, StreamEncoder } from './protocol.js';

/** The options a protocol may read, besides the chunks (tokenrelay SSE reads more: see `toSSE`). */
export interface ProtocolOptions {
  /** The reconnection delay sent first as an SSE `retry` field, where the protocol is SSE. */
  retryMs?: number | undefined;
}

/** Every protocol but tokenrelay's own SSE (which `toSSE` builds from its options), by name. */
const PROTOCOLS: Partial<Record<Exclude<ProtocolName, 'tokenrelay'>, (options: ProtocolOptions) => Protocol>> = {
  'ai-sdk': (options) => aiSdkProtocol(options),
  'ag-ui': (options) => agUIProtocol(options),
  openai: (options) => chatCompletionsProtocol(options),
  ndjson: () => ndjsonProtocol(),
  'ag-ui-ndjson': () => ({ ...ndjsonFrom(agUIProtocol()), name: 'ag-ui-ndjson' }),
};

/** The protocol names an adapter's `protocol` option accepts. */
export const PROTOCOL_NAMES: readonly ProtocolName[] = ['tokenrelay', 'ai-sdk', 'ag-ui', 'openai', 'ndjson', 'ag-ui-ndjson'];

/**
 * The protocol of that name, or `undefined` for tokenrelay's own SSE. A name that is not a
 * protocol is a `TypeError`.
 */
export function protocolNamed(name: unknown, options: ProtocolOptions): Protocol | undefined {
  if (name === undefined || name === 'tokenrelay') return undefined;
  assertOneOf('protocol', name, PROTOCOL_NAMES);
  const make = PROTOCOLS[name as Exclude<ProtocolName, 'tokenrelay'>];
  if (make === undefined) throw new TypeError(`The \`protocol\` '${String(name)}' is not available in this build`);
  return make(options);
}
