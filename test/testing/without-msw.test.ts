// `tokenrelay/testing` without msw installed (it is an optional peer): the entry loads, the
// loopback mock provider serves, and only the msw handlers fail, with an error that names msw.
// Run in a child Node from src/ (scripts/run-from-source.mjs), with `msw` made unresolvable for
// both import and require by a resolve hook.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tokenrelay-without-msw-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

writeFileSync(
  join(dir, 'hide-msw.mjs'),
  `import { registerHooks } from 'node:module';
registerHooks({
  resolve(specifier, context, next) {
    if (specifier === 'msw' || specifier.startsWith('msw/')) return next('msw-is-not-installed', context);
    return next(specifier, context);
  },
});
`,
);

const body = `
  const { startMockProvider, openaiHandlers, anthropicHandlers } = testing;
  const provider = await startMockProvider({ script: { tokens: ['Hel', 'lo'] } });
  try {
    const response = await fetch(provider.openaiBaseURL + '/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-x', stream: true, messages: [] }),
    });
    const text = await response.text();
    if (!text.includes('"content":"lo"')) throw new Error('mock provider gave ' + text);
  } finally {
    await provider.close();
  }
  const errors = [];
  for (const handlers of [openaiHandlers, anthropicHandlers]) {
    try {
      handlers();
      errors.push('no error');
    } catch (error) {
      errors.push(error.message);
    }
  }
  console.log(JSON.stringify(errors));
`;
writeFileSync(join(dir, 'esm.mjs'), `import * as testing from 'tokenrelay/testing';\n${body}`);
writeFileSync(join(dir, 'cjs.cjs'), `const testing = require('tokenrelay/testing');\n(async () => {${body}})().catch((error) => { console.error(error); process.exit(1); });\n`);

function runWithoutMsw(file: string): Promise<string> {
  const args = ['--import', join(root, 'scripts/run-from-source.mjs'), '--import', join(dir, 'hide-msw.mjs'), join(dir, file)];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: dir, timeout: 30_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${file} failed: ${stderr || error.message}`)) : resolve(stdout),
    );
  });
}

describe('tokenrelay/testing without msw installed', () => {
  it.each(['esm.mjs', 'cjs.cjs'])('%s: startMockProvider serves; the msw handlers throw an error naming msw', async (file) => {
    const errors = JSON.parse((await runWithoutMsw(file)).trim().split('\n').pop() ?? '') as string[];
    expect(errors).toEqual([
      '`openaiHandlers` needs msw, an optional peer dependency of tokenrelay: install it (`npm install --save-dev msw`)',
      '`anthropicHandlers` needs msw, an optional peer dependency of tokenrelay: install it (`npm install --save-dev msw`)',
    ]);
  });
});
