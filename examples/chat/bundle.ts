// Builds the chat page's script for the browser at start-up (esbuild, in memory, ~50 ms), so the
// demo needs no build step. `tokenrelay/client` resolves through tsconfig.json to src/.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** The chat page: its HTML and its script (an ES module for `<script type="module" src="/chat.js">`). */
export interface ChatPage {
  html: string;
  script: string;
}

export async function bundleChatPage(): Promise<ChatPage> {
  const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));
  const [html, result] = await Promise.all([
    readFile(here('./index.html'), 'utf8'),
    build({
      entryPoints: [here('./app.ts')],
      tsconfig: here('../../tsconfig.json'),
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      legalComments: 'none',
      logLevel: 'silent',
    }),
  ]);
  const script = result.outputFiles[0]?.text;
  if (script === undefined) throw new Error('esbuild produced no output for examples/chat/app.ts');
  return { html, script };
}
