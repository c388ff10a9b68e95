import type { SourceInfo } from '../core/types.js';

/** A Responses output item or an annotation, read by shape: servers differ in what they fill in. */
type Fields = Record<string, unknown>;

/** A Responses output item that is a tool call, as a TokenChunk carries it. */
export interface CallItem {
  /** The id the application answers with (`call_id`, or the item `id` where there is none). */
  id: string;
  name: string;
  /** The complete input: JSON for every item except `custom_tool_call` (its free-form input). */
  input: string;
  /** Set when the item only reports a call the provider already ran (a hosted tool). */
  providerExecuted: boolean;
  /** Set for items whose input streams in deltas (`function_call`, `custom_tool_call`). */
  streamed: boolean;
}

type Describe = (item: Fields) => Omit<CallItem, 'providerExecuted' | 'streamed'>;

const byCallId = (name: string, input: (item: Fields) => unknown): Describe => (item) => ({
  id: text(item['call_id']),
  name,
  input: json(input(item)),
});

const byItemId = (name: string | undefined, input: (item: Fields) => unknown): Describe => (item) => ({
  id: text(item['id']),
  name: name ?? text(item['name']),
  input: json(input(item)),
});

/** Items whose input arrives in deltas, then whole in `*.done` and `output_item.done`. */
const STREAMED_CALLS: Record<string, Describe> = {
  function_call: (item) => ({ id: text(item['call_id']), name: text(item['name']), input: json(item['arguments']) }),
  custom_tool_call: (item) => ({ id: text(item['call_id']), name: text(item['name']), input: text(item['input']) }),
};

/** Items the application must act on: they arrive whole in `output_item.done`. */
const ACTION_CALLS: Record<string, Describe> = {
  local_shell_call: byCallId('local_shell', (item) => item['action']),
  shell_call: byCallId('shell', (item) => item['action']),
  apply_patch_call: byCallId('apply_patch', (item) => item['operation']),
  // Answered with an `mcp_approval_response` whose `approval_request_id` is this item's id.
  mcp_approval_request: byItemId(undefined, (item) => item['arguments']),
};

/** Tools the provider runs itself: relayed so a UI can show them, never run by the application. */
const HOSTED_CALLS: Record<string, Describe> = {
  web_search_call: byItemId('web_search', (item) => item['action'] ?? {}),
  file_search_call: byItemId('file_search', (item) => ({ queries: item['queries'] ?? [] })),
  code_interpreter_call: byItemId('code_interpreter', (item) => ({ code: item['code'] ?? '', container_id: item['container_id'] })),
  mcp_call: byItemId(undefined, (item) => item['arguments']),
  // The generated image (`result`, base64) is output, not input: it never goes into a token.
  image_generation_call: byItemId('image_generation', (item) =>
    typeof item['revised_prompt'] === 'string' ? { revised_prompt: item['revised_prompt'] } : {},
  ),
};

/** The tool call an output item stands for, or `undefined` for items that are not calls. */
export function describeCallItem(item: unknown): CallItem | undefined {
  if (item === null || typeof item !== 'object') return undefined;
  const fields = item as Fields;
  const type = fields['type'];
  if (typeof type !== 'string') return undefined;
  const streamed = STREAMED_CALLS[type];
  if (streamed !== undefined) return { ...streamed(fields), providerExecuted: false, streamed: true };
  const action = ACTION_CALLS[type];
  if (action !== undefined) return { ...action(fields), providerExecuted: false, streamed: false };
  const hosted = HOSTED_CALLS[type];
  return hosted === undefined ? undefined : { ...hosted(fields), providerExecuted: true, streamed: false };
}

/** A citation from a Responses annotation; `file_path` (a file the model wrote) is not one. */
export function annotationSource(annotation: unknown): SourceInfo | undefined {
  if (annotation === null || typeof annotation !== 'object') return undefined;
  const fields = annotation as Fields;
  switch (fields['type']) {
    case 'url_citation':
      return source(fields['url'], fields['title']);
    case 'file_citation':
    case 'container_file_citation':
      return source(undefined, fields['filename']);
    default:
      return undefined;
  }
}

/** The citations of a finished `message` item, for servers that send no `annotation.added` events. */
export function messageSources(item: unknown): SourceInfo[] {
  const content = (item as Fields | null)?.['content'];
  if (!Array.isArray(content)) return [];
  const sources: SourceInfo[] = [];
  for (const part of content as unknown[]) {
    const annotations = (part as Fields | null)?.['annotations'];
    if (!Array.isArray(annotations)) continue;
    for (const annotation of annotations as unknown[]) {
      const found = annotationSource(annotation);
      if (found !== undefined) sources.push(found);
    }
  }
  return sources;
}

/** `{ url?, title? }` with only the fields that are non-empty strings; `undefined` when neither is. */
export function source(url: unknown, title: unknown): SourceInfo | undefined {
  const info: SourceInfo = {};
  if (typeof url === 'string' && url !== '') info.url = url;
  if (typeof title === 'string' && title !== '') info.title = title;
  return info.url === undefined && info.title === undefined ? undefined : info;
}

/** Tool input as JSON text: strings are already JSON (the wire sends arguments as text). */
export function json(value: unknown): string {
  if (typeof value === 'string') return value;
  return value === undefined || value === null ? '' : JSON.stringify(value);
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}
