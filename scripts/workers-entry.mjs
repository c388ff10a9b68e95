// The Worker that scripts/workers-smoke.mjs bundles and runs in workerd (Cloudflare Workers'
// runtime): the `openai` SDK against the mock provider, through `tokenrelay/web`. Each stream's
// end is logged (`tokenrelay-smoke onFinish <outcome>`) so the smoke test can check it.
import OpenAI from 'openai';
import { streamTokens } from 'tokenrelay/client';
import { streamOpenAI } from 'tokenrelay/openai';
import { toResponse } from 'tokenrelay/web';

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    const openai = new OpenAI({ apiKey: 'sk-test', baseURL: env.PROVIDER_URL, maxRetries: 0 });
    const params = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };
    if (pathname === '/chat') {
      return toResponse((signal) => streamOpenAI(openai, params, { signal }), {
        request,
        monitor: { onFinish: (metrics) => console.log(`tokenrelay-smoke onFinish ${metrics.outcome}`) },
      });
    }
    if (pathname === '/client') {
      // tokenrelay/client inside the Worker, reading this Worker's own answer.
      const here = (url, init) => this.fetch(new Request(url, init), env);
      let text = '';
      for await (const chunk of streamTokens(new URL('/chat', request.url).href, { fetch: here })) text += chunk.token;
      return new Response(text);
    }
    return new Response('not found', { status: 404 });
  },
};
