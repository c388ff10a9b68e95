import type { AnthropicMockBlock } from './anthropic-wire.js';
import type { MockScript } from './script.js';

// Ready-made Anthropic answers, one per wire shape the adapter must handle. Ids, URLs and
// encrypted fields are made up; the shapes follow Anthropic's documented and observed streams.

const text = (...deltas: string[]): AnthropicMockBlock => ({
  start: { type: 'text', text: '' },
  deltas: deltas.map((delta) => ({ type: 'text_delta', text: delta })),
});

const thinking = (...deltas: string[]): AnthropicMockBlock => ({
  start: { type: 'thinking', thinking: '', signature: '' },
  deltas: [...deltas.map((delta) => ({ type: 'thinking_delta', thinking: delta })), { type: 'signature_delta', signature: 'EqQBCkYIBxgCmock' }],
});

/** A tool call whose input streams as `input_json_delta` fragments. */
const streamedCall = (type: string, id: string, name: string, fragments: string[]): AnthropicMockBlock => ({
  start: { type, id, name, input: {} },
  deltas: fragments.map((partial_json) => ({ type: 'input_json_delta', partial_json })),
});

/** A tool call whose input arrives complete in `content_block_start`, with no delta after it. */
const wholeCall = (type: string, id: string, name: string, input: unknown, extra: Record<string, unknown> = {}): AnthropicMockBlock => ({
  start: { type, id, name, input, ...extra },
});

/** A text block whose citations arrive as `citations_delta`, each before the text it supports. */
const citedText = (parts: [citation: Record<string, unknown>, text: string][]): AnthropicMockBlock => ({
  start: { type: 'text', text: '', citations: [] },
  deltas: parts.flatMap(([citation, cited]) => [
    { type: 'citations_delta', citation },
    { type: 'text_delta', text: cited },
  ]),
});

const webResult = (url: string, title: string) => ({
  type: 'web_search_result',
  url,
  title,
  encrypted_content: 'EqMockEncryptedContent',
  page_age: 'April 2, 2026',
});

const SCENARIOS = {
  text: { tokens: ['Hé', 'llo ', '🙂🚀', ' 漢字'], usage: { inputTokens: 9, outputTokens: 4 } },
  thinking: {
    reasoning: ['Let me', ' count: 6×7.'],
    tokens: ['42'],
    usage: { inputTokens: 20, outputTokens: 9, reasoningTokens: 6 },
  },
  'redacted-thinking': {
    anthropic: {
      content: [{ start: { type: 'redacted_thinking', data: 'EmwKAhgBEgy3mockRedacted' } }, thinking('Fine.'), text('Done', '.')],
    },
  },
  'multiple-blocks': {
    anthropic: {
      content: [
        text('First I look it up.'),
        streamedCall('tool_use', 'toolu_01A', 'lookup', ['{"term":', '"tide"}']),
        text('Then', ' I convert it.'),
        streamedCall('tool_use', 'toolu_01B', 'convert', ['{"unit":"m"}']),
      ],
    },
  },
  'parallel-tool-calls': {
    toolCalls: [
      { id: 'toolu_01Weather', name: 'get_weather', arguments: ['', '{"city":', ' "Paris"}'] },
      { id: 'toolu_01Time', name: 'get_time', arguments: ['{"tz"', ':"CET"}'] },
    ],
    tokens: [],
  },
  'tool-input-whole': {
    anthropic: { content: [text('Looking.'), wholeCall('tool_use', 'toolu_01Whole', 'lookup', { term: 'tide', limit: 3 })] },
  },
  'tool-input-empty': { anthropic: { content: [wholeCall('tool_use', 'toolu_01Empty', 'get_time', {})] } },
  'tool-input-empty-delta': { anthropic: { content: [streamedCall('tool_use', 'toolu_01Blank', 'get_time', [''])] } },
  'programmatic-tool-calling': {
    anthropic: {
      delivery: 'message-start',
      content: [
        text('I will query both regions.'),
        wholeCall('server_tool_use', 'srvtoolu_01Code', 'code_execution', { code: 'r = [query(x) for x in "ab"]' }),
        wholeCall('tool_use', 'toolu_01Query', 'query', { region: 'a' }, { caller: { type: 'code_execution_20250825', tool_id: 'srvtoolu_01Code' } }),
        wholeCall('tool_use', 'toolu_02Query', 'query', { region: 'b' }, { caller: { type: 'code_execution_20250825', tool_id: 'srvtoolu_01Code' } }),
      ],
    },
    usage: { inputTokens: 300, outputTokens: 80 },
  },
  'web-search': {
    anthropic: {
      serverToolUse: { web_search_requests: 1, web_fetch_requests: 0 },
      content: [
        text("I'll search."),
        streamedCall('server_tool_use', 'srvtoolu_01Search', 'web_search', ['{"query', '": "tide times brest"}']),
        {
          start: {
            type: 'web_search_tool_result',
            tool_use_id: 'srvtoolu_01Search',
            content: [webResult('https://tides.example/brest', 'Brest tides'), webResult('https://ports.example/brest', 'Port of Brest')],
          },
        },
        citedText([
          [
            {
              type: 'web_search_result_location',
              url: 'https://tides.example/brest',
              title: 'Brest tides',
              cited_text: 'High tide 06:12, low tide 12:30.',
              encrypted_index: 'EoCMock1',
            },
            'High tide is at 06:12.',
          ],
        ]),
      ],
    },
    usage: { inputTokens: 2100, outputTokens: 60 },
  },
  'web-search-error': {
    anthropic: {
      serverToolUse: { web_search_requests: 1, web_fetch_requests: 0 },
      content: [
        wholeCall('server_tool_use', 'srvtoolu_01Fail', 'web_search', { query: 'tides' }),
        {
          start: {
            type: 'web_search_tool_result',
            tool_use_id: 'srvtoolu_01Fail',
            content: { type: 'web_search_tool_result_error', error_code: 'max_uses_exceeded' },
          },
        },
        text('The search failed.'),
      ],
    },
  },
  'web-fetch': {
    anthropic: {
      serverToolUse: { web_search_requests: 0, web_fetch_requests: 1 },
      content: [
        wholeCall('server_tool_use', 'srvtoolu_01Fetch', 'web_fetch', { url: 'https://docs.example/tides' }),
        {
          start: {
            type: 'web_fetch_tool_result',
            tool_use_id: 'srvtoolu_01Fetch',
            content: {
              type: 'web_fetch_result',
              url: 'https://docs.example/tides',
              retrieved_at: '2026-04-02T10:00:00Z',
              content: { type: 'document', title: 'Tides explained', citations: null, source: { type: 'text', media_type: 'text/plain', data: 'Tides are…' } },
            },
          },
        },
        text('The page says', ' tides follow the moon.'),
      ],
    },
  },
  'code-execution': {
    anthropic: {
      content: [
        streamedCall('server_tool_use', 'srvtoolu_01Exec', 'code_execution', ['{"code":"print(', '6*7)"}']),
        {
          start: {
            type: 'code_execution_tool_result',
            tool_use_id: 'srvtoolu_01Exec',
            content: { type: 'code_execution_result', stdout: '42\n', stderr: '', return_code: 0, content: [] },
          },
        },
        text('It prints 42.'),
      ],
    },
  },
  'mcp-tool': {
    anthropic: {
      content: [
        wholeCall('mcp_tool_use', 'mcptoolu_01Roll', 'roll_dice', { sides: 6 }, { server_name: 'dice' }),
        { start: { type: 'mcp_tool_result', tool_use_id: 'mcptoolu_01Roll', is_error: false, content: [{ type: 'text', text: '4' }] } },
        text('You rolled a 4.'),
      ],
    },
  },
  'document-citations': {
    anthropic: {
      content: [
        citedText([
          [
            { type: 'char_location', cited_text: 'The sky is blue.', document_index: 0, document_title: 'Sky facts', start_char_index: 0, end_char_index: 16, file_id: null },
            'The sky is blue',
          ],
          [
            { type: 'page_location', cited_text: 'Grass is green.', document_index: 1, document_title: 'Plants.pdf', start_page_number: 2, end_page_number: 3, file_id: null },
            ' and grass is green',
          ],
          [
            { type: 'content_block_location', cited_text: 'Snow is white.', document_index: 2, document_title: null, start_block_index: 0, end_block_index: 1, file_id: null },
            ', snow white.',
          ],
        ]),
      ],
    },
  },
  'search-result-citations': {
    anthropic: {
      content: [
        citedText([
          [
            {
              type: 'search_result_location',
              source: 'https://kb.example/articles/42',
              title: 'Reset a password',
              cited_text: 'Open Settings, then Security.',
              search_result_index: 0,
              start_block_index: 0,
              end_block_index: 1,
            },
            'Open Settings › Security.',
          ],
        ]),
      ],
    },
  },
  'pause-turn': {
    anthropic: {
      stopReason: 'pause_turn',
      serverToolUse: { web_search_requests: 1, web_fetch_requests: 0 },
      content: [text('Searching…'), streamedCall('server_tool_use', 'srvtoolu_01Long', 'web_search', ['{"query":"long"}'])],
    },
  },
  'max-tokens': { tokens: ['The answer is', ' cut'], finishReason: 'length' },
  refusal: { tokens: ['I can’t help with that.'], finishReason: 'content-filter' },
  'prompt-cache': { tokens: ['Cached', ' answer'], usage: { inputTokens: 5000, outputTokens: 2, cachedInputTokens: 4800 } },
  'error-event': { tokens: ['Partial', ' answer', ' lost'], fault: { kind: 'error-event', afterTokens: 2 } },
} satisfies Record<string, MockScript>;

/** The name of a scenario in {@link anthropicScenarios}. */
export type AnthropicScenarioName = keyof typeof SCENARIOS;

/**
 * Anthropic answers covering every shape of the Messages stream that tokenrelay maps: text,
 * thinking and redacted thinking, several content blocks, tool inputs that stream, arrive whole
 * or are empty, a whole message in `message_start` (programmatic tool calling), server tools
 * (web search, web fetch, code execution) and MCP tools with their results, every citation
 * type, each stop reason, prompt-cache usage, and the in-band `error` event. Each is a
 * `MockScript` for any handler of `tokenrelay/testing`.
 *
 * @example
 * ```ts
 * const server = setupServer(...anthropicHandlers(anthropicScenarios['web-search']));
 * ```
 */
export const anthropicScenarios: Readonly<Record<AnthropicScenarioName, MockScript>> = SCENARIOS;
