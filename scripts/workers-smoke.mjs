// Runs in the unpacked package's directory (scripts/check-package.mjs copies it there): bundles
// scripts/workers-entry.mjs with esbuild as a Worker would be deployed, runs it in workerd through
// Miniflare, and checks the answer, the client inside the Worker, and that a client that leaves
// closes the provider request.
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import { startMockProvider } from 'tokenrelay/testing';

const fail = (message) => {
  throw new Error(`Workers (workerd): ${message}`);
};
const words = (count) => Array.from({ length: count }, (_, index) => `w${index} `);

const bundle = await build({
  entryPoints: ['workers-entry.mjs'],
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  mainFields: ['module', 'main'],
  conditions: ['workerd', 'worker', 'browser', 'import'],
  write: false,
  logLevel: 'error',
});
const provider = await startMockProvider({ script: { tokens: ['Hello', ', ', 'world'] } });
const workerd = JSON.parse(readFileSync(new URL(import.meta.resolve('workerd/package.json')), 'utf8')).version;
const timeout = (ms) => new Promise((resolve) => setTimeout(() => resolve(undefined), ms));
const WARNING = /enable_request_signal/;
try {
  // workerd tells a Worker that its client left only through request.signal, and only with this
  // flag (no compatibility date enables it). Without it the body is never cancelled either: the
  // runtime drops the Worker's subrequests, tokenrelay hears nothing and warns once instead.
  for (const flags of [['enable_request_signal'], []]) {
    const logs = [];
    let logged = () => {};
    const mf = new Miniflare({
      modules: true,
      script: bundle.outputFiles[0].text,
      // workerd refuses dates newer than its build; this one is older than every version we pin.
      compatibilityDate: '2026-04-01',
      compatibilityFlags: flags,
      bindings: { PROVIDER_URL: provider.openaiBaseURL },
      handleStructuredLogs: ({ level, message }) => {
        logs.push({ level, message });
        logged();
      },
    });
    const label = flags.length === 0 ? 'no compatibility flag' : flags.join(', ');
    const until = async (predicate, ms) => {
      const deadline = performance.now() + ms;
      while (!predicate() && performance.now() < deadline) {
        await Promise.race([new Promise((resolve) => (logged = resolve)), timeout(50)]);
      }
      return predicate();
    };
    try {
      provider.setScript({ tokens: ['Hello', ', ', 'world'] });
      provider.clear();
      const text = await (await mf.dispatchFetch('http://worker/client')).text();
      if (text !== 'Hello, world') fail(`${label}: the client in the Worker read ${JSON.stringify(text)}`);

      // A client that leaves after three tokens: the Worker's provider request must close.
      provider.setScript({ tokens: words(400), delayMs: 5 });
      const controller = new AbortController();
      const response = await mf.dispatchFetch('http://worker/chat', { signal: controller.signal });
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      for (let tokens = 0; tokens < 3; ) {
        const { done, value } = await reader.read();
        if (done) fail(`${label}: the answer ended before three tokens`);
        tokens += (decoder.decode(value, { stream: true }).match(/event: token/g) ?? []).length;
      }
      const leftAt = performance.now();
      controller.abort();
      const request = await provider.request(2);
      const ended = await Promise.race([request.ended, timeout(5000)]);
      if (ended === undefined) fail(`${label}: the provider request was still open 5 s after the client left`);
      if (ended.end !== 'client-closed') fail(`${label}: the provider request ended as ${ended.end}, not client-closed`);
      const finishes = () => logs.filter((log) => log.message.includes('tokenrelay-smoke onFinish'));
      const warnings = () => logs.filter((log) => WARNING.test(log.message) && log.level === 'warn');
      if (flags.length > 0) {
        if (!(await until(() => finishes().length >= 2, 5000))) {
          fail(`${label}: onFinish was not reported after the client left (logs: ${JSON.stringify(finishes())})`);
        }
        const outcomes = finishes().map((log) => log.message.split(' ').pop());
        // The answer the client in the Worker read completed; the one whose client left was aborted.
        if (outcomes.at(-1) !== 'aborted') fail(`${label}: onFinish reported ${outcomes.join(', ')}, not aborted last`);
        if (warnings().length > 0) fail(`${label}: warned although the flag is set`);
        console.log(
          `  ok: Workers (workerd ${workerd}, Miniflare, ${label}): toResponse + streamOpenAI, streamTokens in the Worker; ` +
            `a client that left closed the provider request in ${(ended.endedAt - leftAt).toFixed(1)} ms, onFinish reported 'aborted'`,
        );
      } else {
        await timeout(500);
        if (warnings().length !== 1) fail(`${label}: expected one enable_request_signal warning, got ${warnings().length}`);
        if (finishes().some((log) => log.message.endsWith('aborted'))) fail(`${label}: onFinish reported 'aborted' unexpectedly`);
        console.log(
          `  ok: Workers (workerd ${workerd}, Miniflare, ${label}): the runtime closed the provider request in ` +
            `${(ended.endedAt - leftAt).toFixed(1)} ms but told the Worker nothing (no onFinish); warned once about enable_request_signal`,
        );
      }
    } finally {
      await mf.dispose();
    }
  }
} finally {
  await provider.close();
}
