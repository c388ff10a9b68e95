import { InvalidRequestError } from '../core/errors.js';
import { assertSignal, describeValue } from '../core/validate.js';

/** The roles of AG-UI messages. */
export type AgUIRole = 'developer' | 'system' | 'assistant' | 'user' | 'tool' | 'activity' | 'reasoning';

/** One AG-UI tool call of an assistant message: OpenAI's shape, `arguments` a JSON string. */
export interface AgUIToolCall {
  /** The call's id; the tool message that answers it carries it as `toolCallId`. */
  id: string;
  /** Always `'function'`. */
  type: 'function';
  /** Which tool, and its arguments. */
  function: {
    /** The tool's name. */
    name: string;
    /** The arguments as a JSON string. */
    arguments: string;
  };
}

/**
 * One message of an AG-UI conversation, as the client sent it: `role` and `id` are checked,
 * the rest is passed on as it came (`content` is a string, or an array of parts on user messages).
 */
export interface AgUIMessage {
  /** The message's id, as the client gave it. */
  id: string;
  /** Who wrote it. */
  role: AgUIRole;
  /** A string; on user messages also an array of parts (`{ type: 'text', text }`, images, …). */
  content?: unknown;
  /** On assistant messages: the tool calls the model made. */
  toolCalls?: AgUIToolCall[] | undefined;
  /** On tool messages: the call this message answers. */
  toolCallId?: string | undefined;
  [key: string]: unknown;
}

/** A tool the client offers the agent (a frontend tool): `parameters` is a JSON Schema. */
export interface AgUITool {
  /** The name the model calls the tool by. */
  name: string;
  /** What the tool does, for the model. */
  description: string;
  /** The JSON Schema of its arguments. */
  parameters?: unknown;
  [key: string]: unknown;
}

/** What {@link readRunAgentInput} reads from an AG-UI `RunAgentInput` request body. */
export interface RunAgentInput {
  /** The conversation; generated when the body has none. */
  threadId: string;
  /** This run; generated when the body has none. */
  runId: string;
  /** The run that started this one, when the client said. */
  parentRunId: string | undefined;
  /** The conversation so far, in AG-UI's message shapes (map them to your provider's). */
  messages: AgUIMessage[];
  /** The frontend tools the model may call; `[]` when the body has none. */
  tools: AgUITool[];
  /** `{ description, value }` items of context the client shares; `[]` when the body has none. */
  context: Array<{
    /** What the item is. */
    description: string;
    /** The item itself. */
    value: string;
  }>;
  /** The agent state the client holds, as it came. */
  state: unknown;
  /** Whatever else the client forwards (`forwardedProps`), as it came. */
  forwardedProps: unknown;
}

/** Options of {@link readRunAgentInput}. */
export interface ReadRunAgentInputOptions {
  /**
   * The signal the source factory received. When given, the `'ag-ui'` encoder of that stream
   * sends the request's `threadId` and `runId` in `RUN_STARTED` and `RUN_FINISHED`.
   * @defaultValue none (the stream's run gets ids of its own, from `crypto.randomUUID()`)
   */
  signal?: AbortSignal | undefined;
}

/** The ids a stream's `RUN_STARTED` and `RUN_FINISHED` carry. */
export interface AgUIRun {
  threadId: string;
  runId: string;
  parentRunId: string | undefined;
}

const ROLES: ReadonlySet<string> = new Set<AgUIRole>(['developer', 'system', 'assistant', 'user', 'tool', 'activity', 'reasoning']);
const runs = new WeakMap<AbortSignal, AgUIRun>();

/**
 * Reads an AG-UI `RunAgentInput` request body (what `@ag-ui/client`'s `HttpAgent`, CopilotKit
 * and TanStack AI's `fetchServerSentEvents` POST): the ids of the thread and the run, the
 * messages, the frontend tools. Pass the source factory's `signal` so that the `'ag-ui'` stream
 * answers with the request's ids. A body that is not a `RunAgentInput` throws an
 * `InvalidRequestError` (400), which the adapters answer before any stream starts.
 *
 * @example
 * ```ts
 * app.post('/agent', express.json(), sse((req, signal) => {
 *   const input = readRunAgentInput(req.body, { signal });
 *   return streamOpenAI(openai, { model: 'gpt-4o-mini', messages: toOpenAIMessages(input.messages) }, { signal });
 * }, { protocol: 'ag-ui' }));
 * ```
 */
export function readRunAgentInput(body: unknown, options: ReadRunAgentInputOptions = {}): RunAgentInput {
  if (!isRecord(body)) invalid('a RunAgentInput request body to be an object', body);
  const { threadId, runId, parentRunId, messages, tools = [], context = [], state, forwardedProps } = body;
  const run: AgUIRun = {
    threadId: optionalId('threadId', threadId),
    runId: optionalId('runId', runId),
    parentRunId: parentRunId === undefined || parentRunId === null ? undefined : id('parentRunId', parentRunId),
  };
  if (!Array.isArray(messages)) invalid('`messages` to be an array', messages);
  messages.forEach(checkMessage);
  if (!Array.isArray(tools)) invalid('`tools` to be an array', tools);
  tools.forEach(checkTool);
  if (!Array.isArray(context) || !context.every((item) => isRecord(item) && typeof item.value === 'string')) {
    invalid('`context` to be an array of `{ description, value }` objects', context);
  }
  const { signal } = options;
  if (signal !== undefined) {
    assertSignal('signal', signal);
    runs.set(signal, run);
  }
  return {
    ...run,
    messages: messages as AgUIMessage[],
    tools: tools as AgUITool[],
    context: context as RunAgentInput['context'],
    state,
    forwardedProps,
  };
}

/** @internal The run {@link readRunAgentInput} recorded for the stream of that signal. */
export function agUIRunFor(signal: AbortSignal | undefined): AgUIRun | undefined {
  return signal === undefined ? undefined : runs.get(signal);
}

function checkMessage(message: unknown, index: number): void {
  if (!isRecord(message) || typeof message.role !== 'string' || !ROLES.has(message.role)) {
    invalid(`\`messages[${index}]\` to be a message with a \`role\` of ${[...ROLES].join(', ')}`, message);
  }
  if (typeof message.id !== 'string') invalid(`\`messages[${index}].id\` to be a string`, message.id);
  const { toolCalls } = message;
  if (toolCalls === undefined || toolCalls === null) return;
  if (!Array.isArray(toolCalls) || !toolCalls.every(isToolCall)) {
    invalid(`\`messages[${index}].toolCalls\` to be an array of \`{ id, function: { name, arguments } }\``, toolCalls);
  }
}

function isToolCall(call: unknown): boolean {
  if (!isRecord(call) || typeof call.id !== 'string' || !isRecord(call.function)) return false;
  return typeof call.function.name === 'string' && typeof call.function.arguments === 'string';
}

function checkTool(tool: unknown, index: number): void {
  if (!isRecord(tool) || typeof tool.name !== 'string' || tool.name === '') {
    invalid(`\`tools[${index}]\` to be a tool with a non-empty \`name\``, tool);
  }
}

function optionalId(name: string, value: unknown): string {
  return value === undefined || value === null || value === '' ? crypto.randomUUID() : id(name, value);
}

function id(name: string, value: unknown): string {
  if (typeof value !== 'string') invalid(`\`${name}\` to be a string`, value);
  return value;
}

function invalid(expected: string, value: unknown): never {
  throw new InvalidRequestError(`Expected ${expected}, got ${describeValue(value)}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
