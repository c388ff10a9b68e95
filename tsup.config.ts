import { defineConfig } from 'tsup';

/** One entry per subpath in package.json `exports`; the keys are the file names in dist/. */
export const entries = {
  index: 'src/index.ts',
  openai: 'src/providers/openai.ts',
  anthropic: 'src/providers/anthropic.ts',
  node: 'src/servers/node.ts',
  express: 'src/servers/express.ts',
  hono: 'src/servers/hono.ts',
  web: 'src/servers/web.ts',
  ws: 'src/servers/ws.ts',
  client: 'src/client/index.ts',
  redis: 'src/relay/redis-store.ts',
  store: 'src/relay/store-entry.ts',
  relay: 'src/relay/relay-entry.ts',
  protocols: 'src/protocols/protocols-entry.ts',
  sse: 'src/sse/sse-entry.ts',
  prometheus: 'src/observability/prometheus.ts',
  otel: 'src/observability/otel.ts',
  testing: 'src/testing/index.ts',
  nestjs: 'src/servers/nestjs.ts',
  koa: 'src/servers/koa.ts',
  fastify: 'src/servers/fastify.ts',
  langchain: 'src/providers/langchain.ts',
  'ai-sdk': 'src/providers/ai-sdk.ts',
  mistral: 'src/providers/mistral/index.ts',
  bedrock: 'src/providers/bedrock/index.ts',
  google: 'src/providers/google/index.ts',
};

export default defineConfig({
  entry: entries,
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: false,
  target: 'node20',
  platform: 'neutral',
  splitting: true,
  treeshake: true,
  external: [/^node:/, 'openai', '@anthropic-ai/sdk', 'msw', /^msw\//, 'express', 'hono', /^hono\//, 'ws', 'ioredis', 'prom-client', /^@opentelemetry\//, '@google/genai', '@mistralai/mistralai', /^@aws-sdk\//, /^@smithy\//, 'ai', /^ai\//, /^@ai-sdk\//, /^@langchain\//, 'fastify', /^fastify\//, 'koa', /^@nestjs\//, 'rxjs', /^rxjs\//, 'eventsource-parser', /^eventsource-parser\//],
});
