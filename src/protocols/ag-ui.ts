import { assertInteger, describeError, HEARTBEAT_FRAME, type SSEErrorPayload } from '../sse/encoder.js';
import type { FinishReason, TokenChunk, ToolCallInfo, Usage } from '../core/types.js';
import { agUIRunFor, type AgUIRun } from './ag-ui-input.js';
import type { EncoderContext, Protocol, StreamEncoder } from './protocol.js';

/**
 * AG-UI events as Server-Sent Events (`data: <event JSON>` frames, no `event:` line), for
 * `@ag-ui/client`'s `HttpAgent`, CopilotKit and TanStack AI's `fetchServerSentEvents`:
 * `RUN_STARTED`, then `TEXT_MESSAGE_*`, `REASONING_*` and `TOOL_CALL_*` events as the chunks
 * come, then `RUN_FINISHED` or `RUN_ERROR`. The last frame of each chunk carries `id: <index>`,
 * so `Last-Event-ID` resumes as with tokenrelay's own SSE. The mapping table is in docs/protocols.md.
 */
export function agUIProtocol(options: { retryMs?: number | undefined } = {}): Protocol {
  const { retryMs } = options;
  return {
    name: 'ag-ui',
    headers: { 'Content-Type': 'text/event-stream; charset=utf-8' },
    heartbeat: HEARTBEAT_FRAME,
    encoder: (context) => new AgUIEncoder(context, retryMs),
    errorBody: (payload) => JSON.stringify(runError(payload)),
    shutdownFrame: ({ retryMs: retry, message }) =>
      `retry: ${retry}\ndata: ${JSON.stringify({ type: 'RUN_ERROR', message, code: 'shutdown' })}\n\n`,
  };
}

/** Why chunks were dropped: the reasons {@link AgUIEncoder} counts, for its one warning per stream. */
type DropReason = 'provider-executed tool call' | 'tool call without toolCall' | 'source without source' | 'unknown chunk type';

/** What is open on the wire: a text message, a reasoning message, or a tool call (by id). */
type Open = { kind: 'none' } | { kind: 'text' } | { kind: 'reasoning' } | { kind: 'tool'; id: string };

const NONE: Open = { kind: 'none' };
const TEXT: Open = { kind: 'text' };
const REASONING: Open = { kind: 'reasoning' };

/**
 * One stream's AG-UI events. One assistant message id per run (text segments after tool calls
 * continue it, and a resumed stream continues it too); one reasoning message id per run.
 */
class AgUIEncoder implements StreamEncoder {
  readonly #context: EncoderContext;
  readonly #retryMs: number | undefined;
  #run: AgUIRun | undefined;
  #messageId = '';
  #reasoningId = '';
  #open: Open = NONE;
  #usage: Usage | undefined;
  #model: string | undefined;
  #provider: string | undefined;
  #dropped: Map<DropReason, number> | undefined;

  constructor(context: EncoderContext, retryMs: number | undefined) {
    this.#context = context;
    this.#retryMs = retryMs;
  }

  open(): string {
    // RUN_STARTED waits for the first chunk (or the end): the factory, which records the
    // request's ids (readRunAgentInput), runs on the first read, after this.
    return this.#retryMs === undefined ? '' : `retry: ${this.#retryMs}\n\n`;
  }

  chunk(chunk: TokenChunk): string {
    if (chunk.usage !== undefined) this.#usage = chunk.usage;
    if (chunk.model !== undefined) this.#model = chunk.model;
    if (chunk.provider !== undefined) this.#provider = chunk.provider;
    let frames = this.#start() + this.#content(chunk);
    const reason = chunk.finishReason;
    if (reason !== undefined) frames += this.#finish(reason);
    return frames === '' ? '' : withId(frames, chunk.index);
  }

  end(): string {
    return this.#start() + this.#finish('stop');
  }

  error(error: unknown): string {
    const payload = describeError(error, this.#context.exposeErrors);
    return this.#start() + this.#closeMessage() + this.#terminal(runError(payload));
  }

  /** `RUN_STARTED`, before the first event of the stream. */
  #start(): string {
    if (this.#run !== undefined) return '';
    const run = agUIRunFor(this.#context.signal) ?? { threadId: crypto.randomUUID(), runId: crypto.randomUUID(), parentRunId: undefined };
    this.#run = run;
    this.#messageId = `${run.runId}-assistant`;
    this.#reasoningId = `${run.runId}-reasoning`;
    const started: Record<string, unknown> = { type: 'RUN_STARTED', threadId: run.threadId, runId: run.runId };
    if (run.parentRunId !== undefined) started.parentRunId = run.parentRunId;
    return frame(started);
  }

  #content(chunk: TokenChunk): string {
    switch (chunk.type) {
      case 'text':
        return chunk.token === '' ? '' : this.#switchTo(TEXT) + frame({ type: 'TEXT_MESSAGE_CONTENT', messageId: this.#messageId, delta: chunk.token });
      case 'reasoning':
        return chunk.token === '' ? '' : this.#switchTo(REASONING) + frame({ type: 'REASONING_MESSAGE_CONTENT', messageId: this.#reasoningId, delta: chunk.token });
      case 'tool-call':
        return this.#toolCall(chunk.toolCall, chunk.token);
      case 'source':
        if (chunk.source === null || typeof chunk.source !== 'object') return this.#drop('source without source');
        return frame({ type: 'CUSTOM', name: 'source', value: chunk.source });
      default:
        return this.#drop('unknown chunk type');
    }
  }

  #toolCall(toolCall: ToolCallInfo | undefined, token: string): string {
    if (toolCall === null || typeof toolCall !== 'object' || typeof toolCall.id !== 'string' || typeof toolCall.name !== 'string') {
      return this.#drop('tool call without toolCall');
    }
    // AG-UI has no tool call that the client must not answer: a server tool's call is left out.
    if (toolCall.providerExecuted === true) return this.#drop('provider-executed tool call');
    let frames = '';
    const open = this.#open;
    if (open.kind !== 'tool' || open.id !== toolCall.id) {
      frames = this.#close() + frame({ type: 'TOOL_CALL_START', toolCallId: toolCall.id, toolCallName: toolCall.name, parentMessageId: this.#messageId });
      this.#open = { kind: 'tool', id: toolCall.id };
    }
    return token === '' ? frames : frames + frame({ type: 'TOOL_CALL_ARGS', toolCallId: toolCall.id, delta: token });
  }

  /** Closes what is open unless it is already `next`, and opens `next` (a text or a reasoning message). */
  #switchTo(next: Open): string {
    if (this.#open === next) return '';
    const frames = this.#close();
    this.#open = next;
    if (next === TEXT) return frames + frame({ type: 'TEXT_MESSAGE_START', messageId: this.#messageId, role: 'assistant' });
    const messageId = this.#reasoningId;
    return frames + frame({ type: 'REASONING_START', messageId }) + frame({ type: 'REASONING_MESSAGE_START', messageId, role: 'reasoning' });
  }

  /** The end events of whatever is open. */
  #close(): string {
    const open = this.#open;
    if (open.kind === 'tool') {
      this.#open = NONE;
      return frame({ type: 'TOOL_CALL_END', toolCallId: open.id });
    }
    return this.#closeMessage();
  }

  /** Ends an open text or reasoning message; a tool call stays open (its arguments may be cut). */
  #closeMessage(): string {
    const open = this.#open;
    if (open === TEXT) {
      this.#open = NONE;
      return frame({ type: 'TEXT_MESSAGE_END', messageId: this.#messageId });
    }
    if (open === REASONING) {
      this.#open = NONE;
      const messageId = this.#reasoningId;
      return frame({ type: 'REASONING_MESSAGE_END', messageId }) + frame({ type: 'REASONING_END', messageId });
    }
    return '';
  }

  #finish(reason: FinishReason): string {
    if (reason === 'error' || reason === 'aborted' || reason === 'timeout') {
      const code = reason === 'error' ? 'provider' : reason;
      const message = reason === 'error' ? 'The provider ended the answer with an error' : `The stream ended: ${reason}`;
      return this.#closeMessage() + this.#terminal({ type: 'RUN_ERROR', message, code });
    }
    const run = this.#run as AgUIRun;
    const finished: Record<string, unknown> = { type: 'RUN_FINISHED', threadId: run.threadId, runId: run.runId, metadata: { finishReason: reason } };
    return this.#close() + this.#terminal(finished);
  }

  /** The last event (`RUN_FINISHED` or `RUN_ERROR`), with the usage known so far; reports dropped chunks once. */
  #terminal(event: Record<string, unknown>): string {
    const usage = this.#usage;
    if (usage !== undefined) event.usage = [tokenUsage(usage, this.#model, this.#provider)];
    this.#warnDropped();
    return frame(event);
  }

  #drop(reason: DropReason): string {
    const dropped = (this.#dropped ??= new Map());
    dropped.set(reason, (dropped.get(reason) ?? 0) + 1);
    return '';
  }

  #warnDropped(): void {
    const dropped = this.#dropped;
    if (dropped === undefined) return;
    this.#dropped = undefined;
    const counts = [...dropped].map(([reason, count]) => `${count} ${reason}${count === 1 ? '' : 's'}`).join(', ');
    try {
      console.warn(`tokenrelay: the 'ag-ui' protocol dropped chunks it cannot express: ${counts} (see docs/protocols.md)`);
    } catch {
      // A console that throws has nowhere left to report to.
    }
  }
}

function runError(payload: SSEErrorPayload): { type: 'RUN_ERROR'; message: string; code: string } {
  return { type: 'RUN_ERROR', message: payload.message, code: payload.code };
}

/** AG-UI's `TokenUsage`: the same accounting as ours (cached and reasoning tokens are parts of the totals). */
function tokenUsage(usage: Usage, model: string | undefined, provider: string | undefined): Record<string, unknown> {
  const entry: Record<string, unknown> = {};
  if (provider !== undefined) entry.provider = provider;
  if (model !== undefined) entry.model = model;
  entry.inputTokens = usage.inputTokens;
  entry.outputTokens = usage.outputTokens;
  entry.totalTokens = usage.inputTokens + usage.outputTokens;
  if (usage.reasoningTokens !== undefined) entry.reasoningTokens = usage.reasoningTokens;
  if (usage.cachedInputTokens !== undefined) entry.cachedInputTokens = usage.cachedInputTokens;
  return entry;
}

// JSON.stringify escapes every control character, so one `data:` line always holds the event.
function frame(event: Record<string, unknown>): string {
  return `data: ${JSON.stringify(event)}\n\n`;
}

/**
 * Puts `id: <index>` on the last frame of a chunk's frames only: TanStack AI drops a second
 * event with an id it has seen, and `Last-Event-ID` must mean "every event of this chunk arrived".
 */
function withId(frames: string, index: number): string {
  // Event JSON holds no raw line break, so a blank line only ever ends a frame.
  const boundary = frames.lastIndexOf('\n\n', frames.length - 3);
  const last = boundary === -1 ? 0 : boundary + 2;
  return `${frames.slice(0, last)}id: ${assertInteger('index', index)}\n${frames.slice(last)}`;
}
