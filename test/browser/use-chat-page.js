// A real `useChat` page (React 19, @ai-sdk/react), bundled with esbuild for test/browser/use-chat.test.ts.
// Plain JavaScript: the repository has no React types, and tsc does not check this file.
// The chat id comes from the URL (?chat=…), so a reload resumes the same chat (`resume: true`).
import { useChat } from '@ai-sdk/react';
import { DefaultChatTransport } from 'ai';
import { createElement as h } from 'react';
import { createRoot } from 'react-dom/client';

const chatId = new URL(location.href).searchParams.get('chat') ?? 'default';
const transport = new DefaultChatTransport({ api: '/api/chat' });

function Chat() {
  const { messages, sendMessage, stop, status, error } = useChat({ id: chatId, transport, resume: true });
  const answer = messages.findLast((message) => message.role === 'assistant');
  const text = (answer?.parts ?? []).map((part) => (part.type === 'text' ? part.text : '')).join('');
  // Stop ends this response; the DELETE stops the producer, which a reload must not do.
  const onStop = () => {
    void stop();
    void fetch(`/api/chat/${encodeURIComponent(chatId)}/stream`, { method: 'DELETE' });
  };
  return h(
    'main',
    null,
    h('button', { id: 'send', onClick: () => void sendMessage({ text: 'Hi' }) }, 'Send'),
    h('button', { id: 'stop', onClick: onStop }, 'Stop'),
    h('p', { id: 'status', 'data-status': status }, status),
    h('p', { id: 'answer', 'data-message-id': answer?.id ?? '' }, text),
    h('p', { id: 'error' }, error?.message ?? ''),
  );
}

createRoot(document.getElementById('root')).render(h(Chat));
