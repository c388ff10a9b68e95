/**
 * Named OpenAI wire scenarios: shapes that a script cannot express, taken from what OpenAI and
 * OpenAI-compatible servers (Mistral, Perplexity, LM Studio, proxies) document or were seen to
 * send. Each one writes its frames through the emulator's writer, so `delayMs`,
 * `firstTokenDelayMs` and faults apply to them as to scripted answers.
 */

import type { MockScript } from './script.js';

type Json = Record<string, unknown>;

/** Where a scenario writes its frames, and what it needs from the emulator. */
export interface OpenAIScenarioWriter {
  /** The model to report (the script's `model`, else the request's). */
  readonly model: string;
  /** A frame that carries no content: sent without a pause, never where a fault cuts. */
  structural(data: unknown, event?: string): void;
  /** A content delta: paced by the script and counted by a fault's `afterTokens`. */
  content(data: unknown, event?: string): void;
  /** The `response` object of a Responses lifecycle event, filled in the way scripted answers are. */
  response(state: { status: string; output: unknown[]; usage: unknown; incomplete?: unknown; error?: unknown }): Json;
}

/** A named scenario of the OpenAI emulator. */
export interface OpenAIScenario {
  /** Which endpoint it answers. */
  api: 'openai-chat' | 'openai-responses';
  /** What it reproduces, and who sends it. */
  description: string;
  /** Request parameters the answer assumes (such as `n: 2`): send them so the SDK accepts the answer. */
  request?: Record<string, unknown> | undefined;
  write(writer: OpenAIScenarioWriter): void;
}

const CREATED_AT = 1_735_689_600;

/** Chat Completions chunks with a fixed id; `extra` goes on every chunk (Perplexity's citations). */
function chatFrames(writer: OpenAIScenarioWriter, id: string, model = writer.model) {
  const chunk = (choices: unknown[], extra: Json = {}): Json => ({
    id,
    object: 'chat.completion.chunk',
    created: CREATED_AT,
    model,
    choices,
    ...extra,
  });
  const choice = (delta: Json, finishReason: string | null = null, index = 0) => ({ index, delta, logprobs: null, finish_reason: finishReason });
  return { chunk, choice };
}

/** Responses events with their `sequence_number`, framed with their `event:` line as OpenAI does. */
function responsesFrames(writer: OpenAIScenarioWriter) {
  let sequence = 0;
  const make = (type: string, fields: Json): Json => ({ type, sequence_number: sequence++, ...fields });
  return {
    structural: (type: string, fields: Json) => writer.structural(make(type, fields), type),
    content: (type: string, fields: Json) => writer.content(make(type, fields), type),
  };
}

type ResponsesFrames = ReturnType<typeof responsesFrames>;

const CHAT_USAGE = {
  prompt_tokens: 18,
  completion_tokens: 24,
  total_tokens: 42,
  prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
};

const RESPONSES_USAGE = {
  input_tokens: 310,
  input_tokens_details: { cached_tokens: 128 },
  output_tokens: 96,
  output_tokens_details: { reasoning_tokens: 32 },
  total_tokens: 406,
};

/** Starts a Responses answer: `response.created` and `response.in_progress`. */
function begin(writer: OpenAIScenarioWriter, events: ResponsesFrames): void {
  events.structural('response.created', { response: writer.response({ status: 'in_progress', output: [], usage: null }) });
  events.structural('response.in_progress', { response: writer.response({ status: 'in_progress', output: [], usage: null }) });
}

/** A message item streamed as text deltas, with annotations sent after the text they cite. */
function message(
  events: ResponsesFrames,
  outputIndex: number,
  id: string,
  deltas: readonly string[],
  annotations: readonly Json[] = [],
  status = 'completed',
): Json {
  const at = { item_id: id, output_index: outputIndex, content_index: 0 };
  const text = deltas.join('');
  events.structural('response.output_item.added', {
    output_index: outputIndex,
    item: { id, type: 'message', status: 'in_progress', content: [], role: 'assistant' },
  });
  events.structural('response.content_part.added', { ...at, part: { type: 'output_text', annotations: [], logprobs: [], text: '' } });
  for (const delta of deltas) events.content('response.output_text.delta', { ...at, delta, logprobs: [] });
  for (const [index, annotation] of annotations.entries()) {
    events.structural('response.output_text.annotation.added', { ...at, annotation_index: index, annotation });
  }
  events.structural('response.output_text.done', { ...at, text, logprobs: [] });
  const part = { type: 'output_text', annotations, logprobs: [], text };
  events.structural('response.content_part.done', { ...at, part });
  const item = { id, type: 'message', status, content: [part], role: 'assistant' };
  events.structural('response.output_item.done', { output_index: outputIndex, item });
  return item;
}

/** A reasoning item with one summary part per entry of `parts`, each streamed as deltas. */
function reasoning(events: ResponsesFrames, outputIndex: number, id: string, parts: readonly (readonly string[])[]): Json {
  events.structural('response.output_item.added', { output_index: outputIndex, item: { id, type: 'reasoning', summary: [] } });
  const summary: Json[] = [];
  for (const [summaryIndex, deltas] of parts.entries()) {
    const at = { item_id: id, output_index: outputIndex, summary_index: summaryIndex };
    const text = deltas.join('');
    events.structural('response.reasoning_summary_part.added', { ...at, part: { type: 'summary_text', text: '' } });
    for (const delta of deltas) events.content('response.reasoning_summary_text.delta', { ...at, delta });
    events.structural('response.reasoning_summary_text.done', { ...at, text });
    events.structural('response.reasoning_summary_part.done', { ...at, part: { type: 'summary_text', text } });
    summary.push({ type: 'summary_text', text });
  }
  const item = { id, type: 'reasoning', summary };
  events.structural('response.output_item.done', { output_index: outputIndex, item });
  return item;
}

/** A function call; `deltas: []` sends none (LM Studio), `argumentsDone: false` skips `*.arguments.done`. */
function functionCall(
  events: ResponsesFrames,
  outputIndex: number,
  call: { id: string; callId: string; name: string; deltas: readonly string[]; complete: string; argumentsDone?: boolean },
): Json {
  const at = { item_id: call.id, output_index: outputIndex };
  const added = { id: call.id, type: 'function_call', status: 'in_progress', arguments: '', call_id: call.callId, name: call.name };
  events.structural('response.output_item.added', { output_index: outputIndex, item: added });
  for (const delta of call.deltas) events.content('response.function_call_arguments.delta', { ...at, delta });
  if (call.argumentsDone !== false) events.structural('response.function_call_arguments.done', { ...at, arguments: call.complete });
  const item = { ...added, status: 'completed', arguments: call.complete };
  events.structural('response.output_item.done', { output_index: outputIndex, item });
  return item;
}

/** An item that arrives whole: `added` in progress, optional progress events, then `done`. */
function wholeItem(events: ResponsesFrames, outputIndex: number, added: Json, done: Json, progress: readonly string[] = []): Json {
  events.structural('response.output_item.added', { output_index: outputIndex, item: added });
  for (const type of progress) events.structural(type, { item_id: added['id'], output_index: outputIndex });
  events.structural('response.output_item.done', { output_index: outputIndex, item: done });
  return done;
}

function complete(writer: OpenAIScenarioWriter, events: ResponsesFrames, output: unknown[]): void {
  events.structural('response.completed', { response: writer.response({ status: 'completed', output, usage: RESPONSES_USAGE }) });
}

const WEB_CITATIONS = [
  { type: 'url_citation', start_index: 0, end_index: 38, url: 'https://tides.example.org/brest', title: 'Tide tables for Brest' },
  { type: 'url_citation', start_index: 39, end_index: 71, url: 'https://sea.example.com/spring-tides', title: 'Spring tides explained' },
  // The same page cited again for a later sentence: one source, not two.
  { type: 'url_citation', start_index: 72, end_index: 96, url: 'https://tides.example.org/brest', title: 'Tide tables for Brest' },
];

/** Every named scenario of the OpenAI emulator, by name. */
export const OPENAI_SCENARIOS = {
  'chat-content-parts': {
    api: 'openai-chat',
    description:
      "Mistral's magistral models: `delta.content` is an array of typed parts (`thinking` parts holding text parts, `text` parts, an unknown `reference` part), mixed with plain string content; usage on the last chunk.",
    write(writer) {
      const { chunk, choice } = chatFrames(writer, 'cmpl-0b5a1e2f9c8d4e7a', 'magistral-medium-2509');
      const thinking = (text: string) => ({ type: 'thinking', thinking: [{ type: 'text', text }] });
      writer.structural(chunk([choice({ role: 'assistant', content: '' })]));
      writer.content(chunk([choice({ content: [thinking('The user says hi.')] })]));
      writer.content(chunk([choice({ content: [thinking(' A short greeting fits.')] })]));
      writer.content(chunk([choice({ content: [{ type: 'text', text: 'Hello' }] })]));
      writer.content(chunk([choice({ content: [{ type: 'reference', reference_ids: [1] }] })]));
      writer.content(chunk([choice({ content: [{ type: 'text', text: ' there,' }, { type: 'text', text: ' friend' }] })]));
      writer.content(chunk([choice({ content: '!' })]));
      writer.structural(chunk([choice({ content: '' }, 'stop')], { usage: CHAT_USAGE }));
      writer.structural('[DONE]');
    },
  },
  'chat-citations': {
    api: 'openai-chat',
    description:
      'Perplexity-style servers: every chunk repeats `citations` (URLs) and `search_results` ({ title, url, date }); the list grows during the answer.',
    write(writer) {
      const { chunk, choice } = chatFrames(writer, '6f1d1c1e-3b7e-4c1a-9a53-2f0d8d1c7a10', 'sonar');
      const first = { title: 'Tide tables for Brest', url: 'https://tides.example.org/brest', date: '2025-03-01' };
      const second = { title: 'Spring tides explained', url: 'https://sea.example.com/spring-tides', date: null };
      const early = { citations: [first.url], search_results: [first] };
      const late = { citations: [first.url, second.url], search_results: [first, second] };
      writer.content(chunk([choice({ role: 'assistant', content: 'High tide in Brest' })], early));
      writer.content(chunk([choice({ content: ' is at 06:12 [1]' })], early));
      writer.content(chunk([choice({ content: ', a spring tide [2].' })], late));
      writer.structural(
        chunk([choice({ content: '' }, 'stop')], { ...late, usage: { ...CHAT_USAGE, search_context_size: 'low', citation_tokens: 410 } }),
      );
      writer.structural('[DONE]');
    },
  },
  'chat-search-annotations': {
    api: 'openai-chat',
    description: "OpenAI's search models (`gpt-4o-search-preview`): `url_citation` annotations arrive in a delta after the text.",
    write(writer) {
      const { chunk, choice } = chatFrames(writer, 'chatcmpl-search0001', 'gpt-4o-search-preview');
      const annotations = WEB_CITATIONS.slice(0, 2).map(({ type, ...citation }) => ({ type, url_citation: citation }));
      writer.structural(chunk([choice({ role: 'assistant', content: '', refusal: null })]));
      writer.content(chunk([choice({ content: 'High tide in Brest is at 06:12' })]));
      writer.content(chunk([choice({ content: ', a spring tide.' })]));
      writer.structural(chunk([choice({ annotations })]));
      writer.structural(chunk([choice({}, 'stop')]));
      writer.structural(chunk([], { usage: CHAT_USAGE }));
      writer.structural('[DONE]');
    },
  },
  'chat-reasoning-content': {
    api: 'openai-chat',
    description: 'DeepSeek, vLLM, Ollama, OpenRouter: the reasoning streams in `delta.reasoning_content` (or `delta.reasoning`) before the answer.',
    write(writer) {
      const { chunk, choice } = chatFrames(writer, 'chatcmpl-reasoning01', 'deepseek-reasoner');
      writer.structural(chunk([choice({ role: 'assistant', content: null, reasoning_content: '' })]));
      writer.content(chunk([choice({ content: null, reasoning_content: 'Two plus two' })]));
      writer.content(chunk([choice({ content: null, reasoning_content: ' is four.' })]));
      writer.content(chunk([choice({ content: '4', reasoning_content: null })]));
      writer.structural(chunk([choice({ content: '' }, 'stop')], { usage: CHAT_USAGE }));
      writer.structural('[DONE]');
    },
  },
  'chat-tool-calls-whole': {
    api: 'openai-chat',
    description: 'Ollama and Gemini-compatible servers: two parallel tool calls, each with its id, name and complete arguments in one delta.',
    write(writer) {
      const { chunk, choice } = chatFrames(writer, 'chatcmpl-whole0001');
      const call = (index: number, id: string, name: string, args: string) => ({ index, id, type: 'function', function: { name, arguments: args } });
      writer.structural(chunk([choice({ role: 'assistant', content: '' })]));
      writer.content(
        chunk([choice({ tool_calls: [call(0, 'call_weather', 'get_weather', '{"city":"Brest"}'), call(1, 'call_tide', 'get_tide', '{"port":"Brest","day":"today"}')] })]),
      );
      writer.structural(chunk([choice({}, 'tool_calls')], { usage: CHAT_USAGE }));
      writer.structural('[DONE]');
    },
  },
  'chat-usage-only-final': {
    api: 'openai-chat',
    description: 'The usage arrives alone on a last chunk with `choices: []` (and `usage: null` before), whatever the request asked.',
    write(writer) {
      const { chunk, choice } = chatFrames(writer, 'chatcmpl-usage00001');
      const usage = { ...CHAT_USAGE, prompt_tokens_details: { cached_tokens: 16, audio_tokens: 0 } };
      writer.structural(chunk([choice({ role: 'assistant', content: '' })], { usage: null }));
      writer.content(chunk([choice({ content: 'Short' })], { usage: null }));
      writer.content(chunk([choice({ content: ' answer.' })], { usage: null }));
      writer.structural(chunk([choice({}, 'length')], { usage: null }));
      writer.structural(chunk([], { usage }));
      writer.structural('[DONE]');
    },
  },
  'chat-n-choices': {
    api: 'openai-chat',
    description: 'A request with `n: 2`: the two choices interleave and finish differently; tokenrelay relays only choice 0.',
    request: { n: 2 },
    write(writer) {
      const { chunk, choice } = chatFrames(writer, 'chatcmpl-twochoices');
      writer.structural(chunk([choice({ role: 'assistant', content: '' }, null, 0), choice({ role: 'assistant', content: '' }, null, 1)]));
      writer.content(chunk([choice({ content: 'First' }, null, 0)]));
      writer.content(chunk([choice({ content: 'Second' }, null, 1)]));
      writer.content(chunk([choice({ content: ' answer.' }, null, 0)]));
      writer.content(
        chunk([choice({ tool_calls: [{ index: 0, id: 'call_other', type: 'function', function: { name: 'f', arguments: '{}' } }] }, null, 1)]),
      );
      writer.structural(chunk([choice({}, 'tool_calls', 1)]));
      writer.structural(chunk([choice({}, 'stop', 0)]));
      writer.structural(chunk([], { usage: CHAT_USAGE }));
      writer.structural('[DONE]');
    },
  },
  'chat-no-role': {
    api: 'openai-chat',
    description:
      'A compatible server that never sends `delta.role`: tokenrelay relays it; `chat.completions.stream()` rejects it at the end ("missing role for choice 0").',
    write(writer) {
      const { chunk, choice } = chatFrames(writer, 'chatcmpl-norole0001', 'local-model');
      writer.content(chunk([choice({ content: 'No' })]));
      writer.content(chunk([choice({ content: ' role.' })]));
      writer.structural(chunk([choice({}, 'stop')]));
      writer.structural('[DONE]');
    },
  },
  'responses-arguments-in-done': {
    api: 'openai-responses',
    description: 'LM Studio: a function call without any `.delta` event; its arguments come whole in `response.function_call_arguments.done`.',
    write(writer) {
      const events = responsesFrames(writer);
      begin(writer, events);
      const item = functionCall(events, 0, { id: 'fc_lmstudio01', callId: 'call_lm1', name: 'get_weather', deltas: [], complete: '{"city":"Brest"}' });
      complete(writer, events, [item]);
    },
  },
  'responses-arguments-in-item': {
    api: 'openai-responses',
    description: 'A function call whose arguments only come in the finished item of `response.output_item.done` (no `.delta`, no `.done`).',
    write(writer) {
      const events = responsesFrames(writer);
      begin(writer, events);
      const first = functionCall(events, 0, {
        id: 'fc_itemonly01',
        callId: 'call_item1',
        name: 'get_tide',
        deltas: [],
        complete: '{"port":"Brest"}',
        argumentsDone: false,
      });
      // A second call streams normally: its deltas, `.done` and item must not repeat the arguments.
      const second = functionCall(events, 1, { id: 'fc_itemonly02', callId: 'call_item2', name: 'get_time', deltas: ['{"tz":', '"CET"}'], complete: '{"tz":"CET"}' });
      complete(writer, events, [first, second]);
    },
  },
  'responses-action-items': {
    api: 'openai-responses',
    description:
      'Items the application must act on: `local_shell_call`, `shell_call` (its command streamed in `shell_call_command.*`), `apply_patch_call`, `mcp_approval_request`, and a `custom_tool_call` whose input comes only in `custom_tool_call_input.done`.',
    write(writer) {
      const events = responsesFrames(writer);
      begin(writer, events);
      const output: Json[] = [];
      const localAction = { type: 'exec', command: ['ls', '-la'], env: {}, timeout_ms: 10_000, user: null, working_directory: '/srv' };
      output.push(
        wholeItem(
          events,
          0,
          { id: 'lsh_01', type: 'local_shell_call', call_id: 'call_lsh1', status: 'in_progress', action: localAction },
          { id: 'lsh_01', type: 'local_shell_call', call_id: 'call_lsh1', status: 'completed', action: localAction },
        ),
      );
      const shellAt = { item_id: 'sh_01', output_index: 1, command_index: 0 };
      const shell = (commands: string[], status: string) => ({
        id: 'sh_01',
        type: 'shell_call',
        call_id: 'call_sh1',
        status,
        environment: null,
        action: { commands, max_output_length: null, timeout_ms: null },
      });
      events.structural('response.output_item.added', { output_index: 1, item: shell([], 'in_progress') });
      events.structural('response.shell_call_command.added', { ...shellAt, command: '' });
      events.content('response.shell_call_command.delta', { ...shellAt, delta: 'git ' });
      events.content('response.shell_call_command.delta', { ...shellAt, delta: 'status' });
      events.structural('response.shell_call_command.done', { ...shellAt, command: 'git status' });
      const shellDone = shell(['git status'], 'completed');
      events.structural('response.output_item.done', { output_index: 1, item: shellDone });
      output.push(shellDone);
      const operation = { type: 'update_file', path: 'src/tide.ts', diff: '@@ -1 +1 @@\n-old\n+new\n' };
      output.push(
        wholeItem(
          events,
          2,
          { id: 'apc_01', type: 'apply_patch_call', call_id: 'call_apc1', status: 'in_progress', operation },
          { id: 'apc_01', type: 'apply_patch_call', call_id: 'call_apc1', status: 'completed', operation },
        ),
      );
      const approval = { id: 'mcpr_01', type: 'mcp_approval_request', server_label: 'tides', name: 'book_slot', arguments: '{"port":"Brest"}' };
      output.push(wholeItem(events, 3, approval, approval));
      const custom = { id: 'ctc_01', type: 'custom_tool_call', call_id: 'call_ctc1', name: 'run_sql', input: '' };
      events.structural('response.output_item.added', { output_index: 4, item: custom });
      events.structural('response.custom_tool_call_input.done', { item_id: 'ctc_01', output_index: 4, input: 'SELECT 1' });
      const customDone = { ...custom, input: 'SELECT 1' };
      events.structural('response.output_item.done', { output_index: 4, item: customDone });
      output.push(customDone);
      complete(writer, events, output);
    },
  },
  'responses-web-search': {
    api: 'openai-responses',
    description:
      'The hosted web search: a `web_search_call` with its progress events, then a message whose `url_citation` annotations arrive in `response.output_text.annotation.added` (one page cited twice).',
    write(writer) {
      const events = responsesFrames(writer);
      begin(writer, events);
      const search = { id: 'ws_01', type: 'web_search_call', status: 'in_progress' };
      const action = { type: 'search', query: 'high tide Brest today', sources: [{ type: 'url', url: 'https://tides.example.org/brest' }] };
      const searched = wholeItem(events, 0, search, { ...search, status: 'completed', action }, [
        'response.web_search_call.in_progress',
        'response.web_search_call.searching',
        'response.web_search_call.completed',
      ]);
      const text = ['High tide in Brest is at 06:12 today.', ' It is a spring tide, higher than usual.', ' Low tide follows at 12:30.'];
      const answer = message(events, 1, 'msg_websearch01', text, WEB_CITATIONS);
      complete(writer, events, [searched, answer]);
    },
  },
  'responses-hosted-tools': {
    api: 'openai-responses',
    description:
      'Tools the provider runs itself: `file_search_call` (and a `file_citation`), `code_interpreter_call` (code streamed), `mcp_list_tools`, `mcp_call` (arguments streamed), `image_generation_call` (a partial image), each with its progress events.',
    write(writer) {
      const events = responsesFrames(writer);
      begin(writer, events);
      const output: Json[] = [];
      const fileSearch = { id: 'fs_01', type: 'file_search_call', status: 'in_progress', queries: [] as string[], results: null };
      output.push(
        wholeItem(events, 0, fileSearch, { ...fileSearch, status: 'completed', queries: ['tide tables'] }, [
          'response.file_search_call.in_progress',
          'response.file_search_call.searching',
          'response.file_search_call.completed',
        ]),
      );
      const interpreter = { id: 'ci_01', type: 'code_interpreter_call', status: 'in_progress', code: '', container_id: 'cntr_01', outputs: null };
      events.structural('response.output_item.added', { output_index: 1, item: interpreter });
      events.structural('response.code_interpreter_call.in_progress', { item_id: 'ci_01', output_index: 1 });
      events.content('response.code_interpreter_call_code.delta', { item_id: 'ci_01', output_index: 1, delta: 'print(6 * ' });
      events.content('response.code_interpreter_call_code.delta', { item_id: 'ci_01', output_index: 1, delta: '7)' });
      events.structural('response.code_interpreter_call_code.done', { item_id: 'ci_01', output_index: 1, code: 'print(6 * 7)' });
      events.structural('response.code_interpreter_call.interpreting', { item_id: 'ci_01', output_index: 1 });
      events.structural('response.code_interpreter_call.completed', { item_id: 'ci_01', output_index: 1 });
      const interpreted = { ...interpreter, status: 'completed', code: 'print(6 * 7)', outputs: [{ type: 'logs', logs: '42\n' }] };
      events.structural('response.output_item.done', { output_index: 1, item: interpreted });
      output.push(interpreted);
      const listTools = { id: 'mcpl_01', type: 'mcp_list_tools', server_label: 'tides', tools: [] as unknown[] };
      const listed = { ...listTools, tools: [{ name: 'lookup', input_schema: { type: 'object' } }] };
      output.push(wholeItem(events, 2, listTools, listed, ['response.mcp_list_tools.in_progress', 'response.mcp_list_tools.completed']));
      const mcp = { id: 'mcp_01', type: 'mcp_call', server_label: 'tides', name: 'lookup', arguments: '', status: 'in_progress' };
      events.structural('response.output_item.added', { output_index: 3, item: mcp });
      events.structural('response.mcp_call.in_progress', { item_id: 'mcp_01', output_index: 3 });
      events.content('response.mcp_call_arguments.delta', { item_id: 'mcp_01', output_index: 3, delta: '{"port":' });
      events.content('response.mcp_call_arguments.delta', { item_id: 'mcp_01', output_index: 3, delta: '"Brest"}' });
      events.structural('response.mcp_call_arguments.done', { item_id: 'mcp_01', output_index: 3, arguments: '{"port":"Brest"}' });
      events.structural('response.mcp_call.completed', { item_id: 'mcp_01', output_index: 3 });
      const called = { ...mcp, arguments: '{"port":"Brest"}', status: 'completed', output: '06:12' };
      events.structural('response.output_item.done', { output_index: 3, item: called });
      output.push(called);
      const image = { id: 'ig_01', type: 'image_generation_call', status: 'in_progress', result: null };
      events.structural('response.output_item.added', { output_index: 4, item: image });
      events.structural('response.image_generation_call.in_progress', { item_id: 'ig_01', output_index: 4 });
      events.structural('response.image_generation_call.generating', { item_id: 'ig_01', output_index: 4 });
      events.structural('response.image_generation_call.partial_image', {
        item_id: 'ig_01',
        output_index: 4,
        partial_image_index: 0,
        partial_image_b64: 'iVBORw0KGgo=',
      });
      events.structural('response.image_generation_call.completed', { item_id: 'ig_01', output_index: 4 });
      const imaged = { ...image, status: 'completed', result: 'iVBORw0KGgoAAAANSUhEUg==', revised_prompt: 'A tide chart of Brest' };
      events.structural('response.output_item.done', { output_index: 4, item: imaged });
      output.push(imaged);
      const citation = { type: 'file_citation', file_id: 'file-tides01', filename: 'tides-2025.pdf', index: 22 };
      output.push(message(events, 5, 'msg_hosted01', ['The answer is 42;', ' high tide is at 06:12.'], [citation]));
      complete(writer, events, output);
    },
  },
  'responses-multiple-items': {
    api: 'openai-responses',
    description: 'Several output items in one response: reasoning with two summary parts, a message, a function call, a second message, a second function call.',
    write(writer) {
      const events = responsesFrames(writer);
      begin(writer, events);
      const output = [
        reasoning(events, 0, 'rs_multi01', [['**Plan**', ' look up the tide'], ['**Then**', ' the weather']]),
        message(events, 1, 'msg_multi01', ['Let me', ' check.']),
        functionCall(events, 2, { id: 'fc_multi01', callId: 'call_m1', name: 'get_tide', deltas: ['{"port":', '"Brest"}'], complete: '{"port":"Brest"}' }),
        message(events, 3, 'msg_multi02', [' And the', ' weather.']),
        functionCall(events, 4, { id: 'fc_multi02', callId: 'call_m2', name: 'get_weather', deltas: ['{"city":"Brest"}'], complete: '{"city":"Brest"}' }),
      ];
      complete(writer, events, output);
    },
  },
  'responses-incomplete': {
    api: 'openai-responses',
    description: '`response.incomplete` with `max_output_tokens`: the message item ends `incomplete`.',
    write(writer) {
      const events = responsesFrames(writer);
      begin(writer, events);
      const output = [reasoning(events, 0, 'rs_incomplete01', [['Long', ' plan']]), message(events, 1, 'msg_incomplete01', ['The first', ' part of'], [], 'incomplete')];
      const response = writer.response({ status: 'incomplete', output, usage: RESPONSES_USAGE, incomplete: { reason: 'max_output_tokens' } });
      events.structural('response.incomplete', { response });
    },
  },
  'responses-failed': {
    api: 'openai-responses',
    description: '`response.failed` after some text, with `response.error` `{ code: "server_error", message }`.',
    write(writer) {
      const events = responsesFrames(writer);
      begin(writer, events);
      const at = { item_id: 'msg_failed01', output_index: 0, content_index: 0 };
      events.structural('response.output_item.added', {
        output_index: 0,
        item: { id: 'msg_failed01', type: 'message', status: 'in_progress', content: [], role: 'assistant' },
      });
      events.structural('response.content_part.added', { ...at, part: { type: 'output_text', annotations: [], logprobs: [], text: '' } });
      events.content('response.output_text.delta', { ...at, delta: 'Partial', logprobs: [] });
      const error = { code: 'server_error', message: 'The model failed to generate a response.' };
      events.structural('response.failed', { response: writer.response({ status: 'failed', output: [], usage: null, error }) });
    },
  },
  'responses-error-event': {
    api: 'openai-responses',
    description: 'An `error` event mid-stream in the nested form first-party servers send (`{ type: "error", error: { type, code, message } }`).',
    write(writer) {
      const events = responsesFrames(writer);
      begin(writer, events);
      const at = { item_id: 'msg_error01', output_index: 0, content_index: 0 };
      events.structural('response.output_item.added', {
        output_index: 0,
        item: { id: 'msg_error01', type: 'message', status: 'in_progress', content: [], role: 'assistant' },
      });
      events.structural('response.content_part.added', { ...at, part: { type: 'output_text', annotations: [], logprobs: [], text: '' } });
      events.content('response.output_text.delta', { ...at, delta: 'Partial', logprobs: [] });
      events.structural('error', {
        error: { type: 'invalid_request_error', code: 'context_length_exceeded', message: 'Your input exceeds the context window.', param: 'input' },
      });
    },
  },
  'responses-identity-changed': {
    api: 'openai-responses',
    description:
      'A proxy that rewrites response ids: `response.completed` carries another id than `response.created`. tokenrelay relays it; `responses.stream()` rejects it ("Lifecycle response identity changed").',
    write(writer) {
      const events = responsesFrames(writer);
      begin(writer, events);
      const answer = message(events, 0, 'msg_identity01', ['Same', ' answer.']);
      const response = { ...writer.response({ status: 'completed', output: [answer], usage: RESPONSES_USAGE }), id: 'resp_rewritten_by_proxy' };
      events.structural('response.completed', { response });
    },
  },
  'responses-unknown-event': {
    api: 'openai-responses',
    description:
      'An event type this SDK version does not know (a newer API revision or a vendor extension): tokenrelay ignores it; `responses.stream()` rejects the stream ("Unhandled response stream event").',
    write(writer) {
      const events = responsesFrames(writer);
      begin(writer, events);
      events.structural('response.vendor_extension.progress', { progress: 0.5 });
      const answer = message(events, 0, 'msg_unknown01', ['Still', ' relayed.']);
      complete(writer, events, [answer]);
    },
  },
} satisfies Record<string, OpenAIScenario>;

/** The name of a scenario of the OpenAI emulator. */
export type OpenAIScenarioName = keyof typeof OPENAI_SCENARIOS;

/**
 * Each named scenario as a script, ready for `openaiHandlers` or `startMockProvider`.
 *
 * @example
 * ```ts
 * const server = setupServer(...openaiHandlers(openaiScenarios['chat-citations']));
 * ```
 */
export const openaiScenarios = Object.fromEntries(
  Object.keys(OPENAI_SCENARIOS).map((name) => [name, { openaiScenario: name as OpenAIScenarioName }]),
) as Record<OpenAIScenarioName, MockScript>;
