// The chat page: a conversation rendered as Markdown token by token, Stop (which stops the
// provider), Regenerate, live metrics, and a dropped connection that resumes. Bundled for the
// browser by ./bundle.ts when the Express example starts.
import { streamTokens, type ClientTokenStream } from 'tokenrelay/client';
import { describeMetrics, formatCost, type AnswerMetrics } from '../shared/answer-metrics.ts';
import type { ChatMessage } from '../shared/llm.ts';
import { renderMarkdown } from './markdown.ts';

type State = 'idle' | 'waiting' | 'streaming' | 'reconnecting' | 'done' | 'stopped' | 'error';

const element = <T extends HTMLElement>(id: string): T => {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`#${id} is missing from the page`);
  return found as T;
};

const messages = element<HTMLDivElement>('messages');
const form = element<HTMLFormElement>('prompt-form');
const prompt = element<HTMLTextAreaElement>('prompt');
const send = element<HTMLButtonElement>('send');
const stop = element<HTMLButtonElement>('stop');
const regenerate = element<HTMLButtonElement>('regenerate');
const status = element<HTMLSpanElement>('status');
const ttft = element<HTMLElement>('ttft');
const rate = element<HTMLElement>('rate');
const count = element<HTMLElement>('count');
const cost = element<HTMLElement>('cost');

/** The conversation as the provider sees it: finished turns only (a stopped answer counts, as far as it got). */
const history: ChatMessage[] = [];
/** The last answer on the page, which Regenerate replaces. */
let lastAnswer: { article: HTMLElement; inHistory: boolean } | undefined;
let current: { controller: AbortController; stream: ClientTokenStream } | undefined;

function show(state: State, text: string = state): void {
  status.dataset.state = state;
  status.textContent = text;
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = prompt.value.trim();
  if (current !== undefined || text === '') return;
  history.push({ role: 'user', content: text });
  const article = document.createElement('article');
  article.className = 'message user';
  article.textContent = text;
  messages.append(article);
  prompt.value = '';
  void ask();
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

// Asks the last question again: the last answer leaves the page and the conversation.
regenerate.addEventListener('click', () => {
  if (current !== undefined || lastAnswer === undefined) return;
  if (lastAnswer.inHistory) history.pop();
  lastAnswer.article.remove();
  lastAnswer = undefined;
  if (history.at(-1)?.role === 'user') void ask();
});

async function ask(): Promise<void> {
  const { article, content, meta } = addAnswer();
  const controller = new AbortController();
  const metrics = { sentAt: performance.now(), firstAt: undefined as number | undefined, tokens: 0 };
  const stream = streamTokens('/chat', {
    body: { messages: history },
    resume: '/chat/{id}',
    signal: controller.signal,
    reconnect: { onRetry: ({ attempt }) => show('reconnecting', attempt === 1 ? 'reconnecting…' : `reconnecting… (attempt ${attempt})`) },
    onOpen: () => show(metrics.firstAt === undefined ? 'waiting' : 'streaming'),
  });
  current = { controller, stream };
  lastAnswer = { article, inHistory: false };
  setBusy(true);
  show('waiting');
  cost.textContent = '…';
  render(metrics);
  const ticker = setInterval(() => render(metrics), 200);

  // Re-rendering the whole answer is cheap at chat sizes; once per frame is enough.
  let text = '';
  let painted = true;
  const paint = () => {
    painted = true;
    content.innerHTML = renderMarkdown(text);
  };
  let outcome: State = 'done';
  try {
    for await (const chunk of stream) {
      if (chunk.type !== 'text' || chunk.token === '') continue;
      metrics.firstAt ??= performance.now();
      metrics.tokens++;
      text += chunk.token;
      if (painted) {
        painted = false;
        requestAnimationFrame(paint);
      }
      show('streaming');
      render(metrics);
    }
  } catch (error) {
    outcome = controller.signal.aborted ? 'stopped' : 'error';
    if (outcome === 'error') meta.textContent = `error: ${error instanceof Error ? error.message : String(error)}`;
  } finally {
    clearInterval(ticker);
    paint();
    render(metrics);
    show(outcome);
    article.dataset.state = outcome;
    if (text !== '') {
      history.push({ role: 'assistant', content: text });
      lastAnswer = { article, inHistory: true };
    }
    current = undefined;
    setBusy(false);
  }
  if (stream.streamId !== undefined) await showServerMetrics(stream.streamId, meta);
}

function addAnswer(): { article: HTMLElement; content: HTMLElement; meta: HTMLElement } {
  document.getElementById('answer')?.removeAttribute('id');
  const article = document.createElement('article');
  article.className = 'message assistant';
  article.dataset.state = 'streaming';
  const content = document.createElement('div');
  content.className = 'answer';
  content.id = 'answer';
  const meta = document.createElement('div');
  meta.className = 'meta';
  article.append(content, meta);
  messages.append(article);
  return { article, content, meta };
}

function setBusy(busy: boolean): void {
  send.disabled = busy;
  stop.disabled = !busy;
  regenerate.disabled = busy || lastAnswer === undefined;
}

function render({ sentAt, firstAt, tokens }: { sentAt: number; firstAt: number | undefined; tokens: number }): void {
  const now = performance.now();
  ttft.textContent = firstAt === undefined ? `${((now - sentAt) / 1000).toFixed(1)} s…` : `${Math.round(firstAt - sentAt)} ms`;
  const seconds = firstAt === undefined ? 0 : (now - firstAt) / 1000;
  rate.textContent = seconds > 0 ? (tokens / seconds).toFixed(1) : '–';
  count.textContent = String(tokens);
}

/** What the server measured at the provider, cost included (it knows the prices), once the answer has ended. */
async function showServerMetrics(id: string, meta: HTMLElement): Promise<void> {
  try {
    const response = await fetch(`/chat/${encodeURIComponent(id)}/metrics`);
    if (!response.ok) throw new Error(`status ${response.status}`);
    const metrics = (await response.json()) as AnswerMetrics;
    cost.textContent = formatCost(metrics);
    meta.textContent = describeMetrics(metrics);
  } catch {
    cost.textContent = '–';
  }
}
