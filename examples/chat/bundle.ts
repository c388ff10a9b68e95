// Builds the demo's two pages for the browser at start-up (esbuild, in memory, in parallel), so
// the demo needs no build step: the chat page (./app.ts, ~50 ms) and the `useChat` page
// (../use-chat/app.tsx with React and @ai-sdk/react, a few hundred ms). `tokenrelay/client`
// resolves through tsconfig.json to src/.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** A page: its HTML and its script (an ES module for `<script type="module" src="…">`). */
export interface ChatPage {
  html: string;
  script: string;
}

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

/** The chat page, on `tokenrelay/client`. */
export function bundleChatPage(): Promise<ChatPage> {
  return bundlePage('./index.html', './app.ts');
}

/** The same chat on the Vercel AI SDK's `useChat` (React), against the demo's `protocol: 'ai-sdk'` routes. */
export function bundleUseChatPage(): Promise<ChatPage> {
  return bundlePage('../use-chat/index.html', '../use-chat/app.tsx');
}

async function bundlePage(htmlFile: string, entry: string): Promise<ChatPage> {
  const [html, result] = await Promise.all([
    readFile(here(htmlFile), 'utf8'),
    build({
      entryPoints: [here(entry)],
      tsconfig: here('../../tsconfig.json'),
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      define: { 'process.env.NODE_ENV': '"production"' },
      minify: true,
      legalComments: 'none',
      logLevel: 'silent',
    }),
  ]);
  const script = result.outputFiles[0]?.text;
  if (script === undefined) throw new Error(`esbuild produced no output for ${entry}`);
  return { html, script };
}
