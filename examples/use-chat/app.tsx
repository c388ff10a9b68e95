// The demo's chat on the Vercel AI SDK: React, `useChat` of @ai-sdk/react and the
// `DefaultChatTransport` of `ai`, against the demo's `protocol: 'ai-sdk'` routes (POST /api/chat,
// GET /api/chat/:chatId/stream to resume, DELETE to stop; docs/protocols.md). Bundled by
// ../chat/bundle.ts when the demo starts. Written with `createElement` rather than JSX, so tsc
// checks it with the repository's settings (see ./react.d.ts).
import { useChat } from '@ai-sdk/react';
import { DefaultChatTransport, type UIMessage } from 'ai';
import { createElement as h, StrictMode, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { describeMetrics, type AnswerMetrics } from '../shared/answer-metrics.ts';
import { renderMarkdown } from '../chat/markdown.ts';

/** What tokenrelay's 'ai-sdk' encoder puts in `finish.messageMetadata` (docs/protocols.md). */
interface Metadata {
  usage?: { inputTokens: number; outputTokens: number };
  ttftMs?: number;
  model?: string;
}

type ChatMessage = UIMessage<Metadata>;

// The chat id is in the URL, so a reload resumes the answer in flight (`resume: true`).
const url = new URL(location.href);
const chatId = url.searchParams.get('chat') ?? crypto.randomUUID();
if (!url.searchParams.has('chat')) {
  url.searchParams.set('chat', chatId);
  history.replaceState(null, '', url);
}
const api = `/api/chat/${encodeURIComponent(chatId)}`;
const transport = new DefaultChatTransport<ChatMessage>({ api: '/api/chat' });

function Chat() {
  const [input, setInput] = useState('Why stream LLM answers token by token?');
  const [serverMetrics, setServerMetrics] = useState<Record<string, string>>({});
  const { messages, sendMessage, regenerate, stop, status, error } = useChat<ChatMessage>({
    id: chatId,
    transport,
    resume: true,
    // What the server measured at the provider (cost included): it knows the prices.
    onFinish: ({ message }) => {
      void fetch(`${api}/metrics`)
        .then((response) => (response.ok ? (response.json() as Promise<AnswerMetrics>) : undefined))
        .then((metrics) => metrics && setServerMetrics((shown) => ({ ...shown, [message.id]: describeMetrics(metrics) })))
        .catch(() => {});
    },
  });
  const busy = status === 'submitted' || status === 'streaming';
  const lastAssistant = messages.findLast((message) => message.role === 'assistant');

  const submit = (event: Event) => {
    event.preventDefault();
    const text = input.trim();
    if (busy || text === '') return;
    void sendMessage({ text });
    setInput('');
  };
  // stop() closes this response; the relay would keep the provider running for a reload to
  // resume, so Stop also tells the server it means it.
  const onStop = () => {
    void stop();
    void fetch(`${api}/stream`, { method: 'DELETE' }).catch(() => {});
  };

  return h(
    'main',
    null,
    h('header', null, h('h1', null, 'tokenrelay chat, with useChat'), h('a', { href: '/' }, '← the tokenrelay/client page')),
    h(
      'div',
      { id: 'messages', 'aria-live': 'polite' },
      ...messages.map((message) => renderMessage(message, message === lastAssistant, serverMetrics[message.id])),
    ),
    h(
      'form',
      { id: 'prompt-form', onSubmit: submit },
      h('textarea', { id: 'prompt', value: input, onChange: (event: Event) => setInput((event.target as HTMLTextAreaElement).value) }),
      h('button', { id: 'send', type: 'submit', disabled: busy }, 'Send'),
      h('button', { id: 'stop', type: 'button', disabled: !busy, onClick: onStop }, 'Stop'),
      h('button', { id: 'regenerate', type: 'button', disabled: busy || lastAssistant === undefined, onClick: () => void regenerate() }, 'Regenerate'),
    ),
    h('p', null, 'status: ', h('span', { id: 'status', 'data-status': status }, status)),
    h('p', { id: 'error' }, error?.message ?? ''),
  );
}

function renderMessage(message: ChatMessage, last: boolean, measured: string | undefined) {
  const text = message.parts.map((part) => (part.type === 'text' ? part.text : '')).join('');
  if (message.role === 'user') return h('article', { key: message.id, className: 'message user' }, text);
  const { ttftMs, usage, model } = message.metadata ?? {};
  // Until the server's figures come: what the finish part carried.
  const carried = [model, ttftMs === undefined ? undefined : `first token ${Math.round(ttftMs)} ms`, usage && `${usage.outputTokens} tokens`];
  return h(
    'article',
    { key: message.id, className: 'message assistant' },
    // renderMarkdown escapes every piece of the text: its HTML has only its own tags.
    h('div', { className: 'answer', id: last ? 'answer' : undefined, 'data-message-id': message.id, dangerouslySetInnerHTML: { __html: renderMarkdown(text) } }),
    h('div', { className: 'meta' }, measured ?? carried.filter(Boolean).join(' · ')),
  );
}

createRoot(document.getElementById('root') as HTMLElement).render(h(StrictMode, {}, h(Chat, {})));
