import type { Usage } from '../core/types.js';
import type { AnthropicMockMessage } from './anthropic-wire.js';
import type { GoogleMockAnswer } from './google-wire.js';
import type { OpenAIScenarioName } from './openai-scenarios.js';
import type { MistralScenarioName } from './mistral-scenarios.js';

/** A tool call the mock provider makes, with its JSON arguments split into streamed fragments. */
export interface MockToolCall {
  /**
   * The call's id.
   * @defaultValue `'call_<n>'` for OpenAI, `'toolu_<n>'` for Anthropic
   */
  id?: string | undefined;
  /** The tool's name. */
  name: string;
  /** The arguments as streamed fragments (their concatenation is the JSON text). */
  arguments: string[];
}

/** Something that goes wrong on purpose. `afterTokens` counts content deltas already sent. */
export type MockFault =
  | {
      /** Answer with an HTTP error before any stream starts. */
      kind: 'http-error';
      /** The HTTP status, e.g. `429`. */
      status: number;
      /** The provider's error type, e.g. `'rate_limit_error'`. */
      type?: string | undefined;
      /** The error message in the body. */
      message?: string | undefined;
      /** Extra response headers, e.g. `{ 'retry-after': '2' }`. */
      headers?: Record<string, string> | undefined;
    }
  | {
      /** Send the provider's in-band error event, then end the stream. */
      kind: 'error-event';
      /** How many tokens are sent first. */
      afterTokens: number;
      /** @defaultValue `'server_error'` (OpenAI) / `'overloaded_error'` (Anthropic) */
      type?: string | undefined;
      /** The error message in the event. */
      message?: string | undefined;
    }
  | {
      /** Destroy the connection abruptly. */
      kind: 'reset';
      /** How many tokens are sent first. */
      afterTokens: number;
    }
  | {
      /** Stop sending anything but keep the connection open (until the client gives up). */
      kind: 'stall';
      /** How many tokens are sent first. */
      afterTokens: number;
    };

/**
 * What the mock provider answers. Everything is optional: the default is a short text answer.
 *
 * @example
 * ```ts
 * const script: MockScript = { tokens: ['Hel', 'lo'], delayMs: 5, usage: { inputTokens: 3, outputTokens: 2 } };
 * ```
 */
export interface MockScript {
  /**
   * The text deltas of the answer, sent in order.
   * @defaultValue `DEFAULT_MOCK_TOKENS`
   */
  tokens?: string[] | undefined;
  /** Reasoning deltas sent before the text (OpenAI Responses reasoning summary, Anthropic thinking). */
  reasoning?: string[] | undefined;
  /** Tool calls sent after the text. */
  toolCalls?: MockToolCall[] | undefined;
  /** Refusal deltas (OpenAI Chat Completions `delta.refusal`; Responses `response.refusal.delta`). */
  refusal?: string[] | undefined;
  /**
   * Why the answer ends, in tokenrelay's terms; each emulator sends the provider's own value.
   * @defaultValue `'tool-calls'` when `toolCalls` are given, else `'stop'`
   */
  finishReason?: 'stop' | 'length' | 'tool-calls' | 'content-filter' | undefined;
  /**
   * Token counts the provider reports.
   * @defaultValue `{ inputTokens: 12, outputTokens: <number of deltas> }`
   */
  usage?: Usage | undefined;
  /**
   * The model name the provider reports.
   * @defaultValue the request's `model`
   */
  model?: string | undefined;
  /**
   * Pause before each content delta, in ms.
   * @defaultValue `0`
   */
  delayMs?: number | undefined;
  /**
   * Pause before the first content delta, in ms (instead of `delayMs`).
   * @defaultValue `delayMs`
   */
  firstTokenDelayMs?: number | undefined;
  /** A fault to inject. */
  fault?: MockFault | undefined;
  /**
   * Anthropic only: the answer as Anthropic content blocks in the API's own shapes (server tools,
   * citations, redacted thinking, inputs that arrive whole…), sent instead of `tokens`,
   * `reasoning` and `toolCalls`. Other emulators ignore it.
   * @defaultValue built from `tokens`, `reasoning` and `toolCalls`
   */
  anthropic?: AnthropicMockMessage | undefined;
  /**
   * OpenAI only: answer with a named scenario of the emulator (see `OPENAI_SCENARIOS`: compatible
   * servers' shapes, hosted tools, citations…) instead of `tokens`, `reasoning`, `toolCalls` and
   * `refusal`; pacing and faults still apply. Other emulators ignore it.
   * @defaultValue built from the script's fields
   */
  openaiScenario?: OpenAIScenarioName | undefined;
  /**
   * Mistral only: answer with a named scenario of the emulator (see `mistralScenarios`: whole tool
   * calls, `model_length`, magistral thinking parts…) instead of the script's content fields; pacing
   * and faults still apply. Other emulators ignore it.
   * @defaultValue built from the script's fields
   */
  mistralScenario?: MistralScenarioName | undefined;
  /**
   * Google only: the answer as Gemini `GenerateContentResponse` objects in the API's own shapes
   * (grounding, blocked prompts, code execution, calls without ids…), sent instead of `tokens`,
   * `reasoning` and `toolCalls`; pacing and faults still apply. See `googleScenarios`. Other
   * emulators ignore it.
   * @defaultValue built from `tokens`, `reasoning` and `toolCalls`
   */
  google?: GoogleMockAnswer | undefined;
}

/** The request the mock provider received, as a script function sees it. */
export interface MockRequest {
  /** Which wire format the request asked for. */
  api: 'openai-chat' | 'openai-responses' | 'anthropic-messages' | 'mistral-chat' | 'google-generate-content' | 'bedrock-converse-stream';
  /** The URL path, e.g. `/v1/chat/completions`. */
  path: string;
  /** Request headers, lower-cased names. */
  headers: Record<string, string>;
  /** The parsed JSON body. */
  body: Record<string, unknown>;
}

/** A fixed script, or a function that picks one per request. */
export type MockScriptInput = MockScript | ((request: MockRequest) => MockScript | Promise<MockScript>);

/** One SSE frame of a wire response, with the pause to take before sending it. */
export interface WireFrame {
  /** The complete frame text, ending with its blank line. */
  text: string;
  /**
   * The frame's bytes, for a binary wire (Bedrock's event stream): sent instead of `text`, which
   * then only renders the frame readably.
   * @defaultValue `text`, UTF-8 encoded
   */
  bytes?: Uint8Array | undefined;
  /** Pause before sending this frame, in ms. */
  delayMs: number;
}

/** A provider's HTTP answer, byte-exact, as an emulator builds it from a script. */
export interface WireResponse {
  /** The HTTP status. */
  status: number;
  /** The response headers. */
  headers: Record<string, string>;
  /** A complete non-streamed body (error answers). */
  body?: string | undefined;
  /** The SSE frames of a streamed answer. */
  frames?: WireFrame[] | undefined;
  /**
   * What happens after the last frame: a clean end, a reset connection, or silence.
   * @defaultValue `'close'`
   */
  end?: 'close' | 'reset' | 'stall' | undefined;
}

/** Default answer of the mock provider. */
export const DEFAULT_MOCK_TOKENS: readonly string[] = [
  'Hello',
  '!',
  ' This',
  ' answer',
  ' comes',
  ' from',
  ' the',
  ' tokenrelay',
  ' mock',
  ' provider',
  '.',
];
