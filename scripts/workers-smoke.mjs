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
const mf = new Miniflare({
  modules: true,
  script: bundle.outputFiles[0].text,
  // workerd refuses dates newer than its build; this one is older than every version we pin.
  compatibilityDate: '2026-04-01',
  bindings: { PROVIDER_URL: provider.openaiBaseURL },
});
try {
  const text = await (await mf.dispatchFetch('http://worker/client')).text();
  if (text !== 'Hello, world') fail(`the client in the Worker read ${JSON.stringify(text)}`);

  // A client that leaves after three tokens: the Worker must close its provider request.
  provider.setScript({ tokens: words(400), delayMs: 5 });
  const controller = new AbortController();
  const response = await mf.dispatchFetch('http://worker/chat', { signal: controller.signal });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (let tokens = 0; tokens < 3; ) {
    const { done, value } = await reader.read();
    if (done) fail('the answer ended before three tokens');
    tokens += (decoder.decode(value, { stream: true }).match(/event: token/g) ?? []).length;
  }
  const leftAt = performance.now();
  controller.abort();
  const request = await provider.request(2);
  const ended = await Promise.race([request.ended, new Promise((resolve) => setTimeout(() => resolve(undefined), 2000))]);
  if (ended === undefined) fail('the provider request was still open 2 s after the client left');
  if (ended.end !== 'client-closed') fail(`the provider request ended as ${ended.end}, not client-closed`);
  console.log(
    `  ok: Workers (workerd ${workerd}, Miniflare): toResponse + streamOpenAI, streamTokens in the Worker; ` +
      `a client that left closed the provider request in ${(ended.endedAt - leftAt).toFixed(1)} ms`,
  );
} finally {
  await mf.dispose();
  await provider.close();
}
