// `tokenrelay/bedrock` and `tokenrelay/testing` without `@aws-sdk/client-bedrock-runtime` and
// `@smithy/eventstream-codec` installed (both optional peers): the entries load, `fromBedrock`
// works, and only what needs a missing package fails, with an error that names it. Run in a child
// Node from src/ (scripts/run-from-source.mjs), with both made unresolvable by a resolve hook.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tokenrelay-without-bedrock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

writeFileSync(
  join(dir, 'hide-aws.mjs'),
  `import { registerHooks } from 'node:module';
registerHooks({
  resolve(specifier, context, next) {
    if (specifier.startsWith('@aws-sdk/') || specifier.startsWith('@smithy/')) return next('aws-is-not-installed', context);
    return next(specifier, context);
  },
});
`,
);

const body = `
  const { fromBedrock, streamBedrock } = bedrock;
  async function* events() {
    yield { messageStart: { role: 'assistant' } };
    yield { contentBlockDelta: { contentBlockIndex: 0, delta: { text: 'Hé 🙂' } } };
    yield { messageStop: { stopReason: 'end_turn' } };
  }
  const out = [];
  for await (const chunk of fromBedrock(events())) out.push(chunk.token + '|' + (chunk.finishReason ?? ''));
  const client = { send: async () => { throw new Error('never sent'); } };
  try {
    await streamBedrock(client, { modelId: 'm', messages: [] }).next();
    out.push('no error');
  } catch (error) {
    out.push(error.message);
  }
  try {
    testing.bedrockConverseWire({}, { api: 'bedrock-converse-stream', path: '/model/m/converse-stream', headers: {}, body: {} });
    out.push('no error');
  } catch (error) {
    out.push(error.message);
  }
  console.log(JSON.stringify(out));
`;
writeFileSync(join(dir, 'esm.mjs'), `import * as bedrock from 'tokenrelay/bedrock';\nimport * as testing from 'tokenrelay/testing';\n${body}`);
writeFileSync(
  join(dir, 'cjs.cjs'),
  `const bedrock = require('tokenrelay/bedrock');\nconst testing = require('tokenrelay/testing');\n(async () => {${body}})().catch((error) => { console.error(error); process.exit(1); });\n`,
);

function runWithoutAws(file: string): Promise<string> {
  const args = ['--import', join(root, 'scripts/run-from-source.mjs'), '--import', join(dir, 'hide-aws.mjs'), join(dir, file)];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: dir, timeout: 30_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${file} failed: ${stderr || error.message}`)) : resolve(stdout),
    );
  });
}

describe('tokenrelay/bedrock without the AWS packages installed', () => {
  it.each(['esm.mjs', 'cjs.cjs'])('%s: fromBedrock works; streamBedrock and the emulator name the missing package', async (file) => {
    const out = JSON.parse((await runWithoutAws(file)).trim().split('\n').pop() ?? '') as string[];
    expect(out).toEqual([
      'Hé 🙂|',
      '|stop',
      '`streamBedrock` needs @aws-sdk/client-bedrock-runtime, an optional peer dependency of tokenrelay: install it (`npm install @aws-sdk/client-bedrock-runtime`)',
      '`bedrockConverseWire` needs @smithy/eventstream-codec, an optional peer dependency of tokenrelay: install it (`npm install --save-dev @smithy/eventstream-codec`)',
    ]);
  });
});
