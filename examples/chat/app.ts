// The chat page: POST the prompt, render the answer token by token, Stop, and survive a dropped
// connection. Bundled for the browser by ./bundle.ts when the Express example starts.
import { streamTokens, type ClientTokenStream } from 'tokenrelay/client';

type State = 'idle' | 'waiting' | 'streaming' | 'reconnecting' | 'done' | 'stopped' | 'error';

const element = <T extends HTMLElement>(id: string): T => {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`#${id} is missing from the page`);
  return found as T;
};

const form = element<HTMLFormElement>('prompt-form');
const prompt = element<HTMLTextAreaElement>('prompt');
const send = element<HTMLButtonElement>('send');
const stop = element<HTMLButtonElement>('stop');
const answer = element<HTMLDivElement>('answer');
const status = element<HTMLSpanElement>('status');
const ttft = element<HTMLElement>('ttft');
const rate = element<HTMLElement>('rate');
const count = element<HTMLElement>('count');

let current: { controller: AbortController; stream: ClientTokenStream } | undefined;

function show(state: State, text: string = state): void {
  status.dataset.state = state;
  status.textContent = text;
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (current === undefined) void ask(prompt.value);
});

stop.addEventListener('click', () => {
  if (current === undefined) return;
  const { controller, stream } = current;
  // Closing our connection is not enough with a relay: the answer keeps being generated for
  // `graceMs` in case we come back. Cancel tells the server to stop the provider now.
  const id = stream.streamId;
  controller.abort();
  if (id !== undefined) void fetch(`/chat/${encodeURIComponent(id)}/cancel`, { method: 'POST' }).catch(() => {});
});

async function ask(text: string): Promise<void> {
  const controller = new AbortController();
  const metrics = { sentAt: performance.now(), firstAt: undefined as number | undefined, tokens: 0 };
  const stream = streamTokens('/chat', {
    body: { messages: [{ role: 'user', content: text }] },
    resume: '/chat/{id}',
    signal: controller.signal,
    reconnect: { onRetry: ({ attempt }) => show('reconnecting', attempt === 1 ? 'reconnecting…' : `reconnecting… (attempt ${attempt})`) },
    onOpen: () => show(metrics.firstAt === undefined ? 'waiting' : 'streaming'),
  });
  current = { controller, stream };
  answer.textContent = '';
  send.disabled = true;
  stop.disabled = false;
  show('waiting');
  render(metrics);
  const ticker = setInterval(() => render(metrics), 200);
  try {
    for await (const chunk of stream) {
      if (chunk.type !== 'text' || chunk.token === '') continue;
      metrics.firstAt ??= performance.now();
      metrics.tokens++;
      answer.append(chunk.token);
      show('streaming');
      render(metrics);
    }
    show('done');
  } catch (error) {
    if (controller.signal.aborted) show('stopped');
    else show('error', `error: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    clearInterval(ticker);
    render(metrics);
    current = undefined;
    send.disabled = false;
    stop.disabled = true;
  }
}

function render({ sentAt, firstAt, tokens }: { sentAt: number; firstAt: number | undefined; tokens: number }): void {
  const now = performance.now();
  ttft.textContent = firstAt === undefined ? `${((now - sentAt) / 1000).toFixed(1)} s…` : `${Math.round(firstAt - sentAt)} ms`;
  const seconds = firstAt === undefined ? 0 : (now - firstAt) / 1000;
  rate.textContent = seconds > 0 ? (tokens / seconds).toFixed(1) : '–';
  count.textContent = String(tokens);
}
