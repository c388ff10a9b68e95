// Type-checks every ```ts / ```typescript block of README.md and docs/*.md (docs/api/ is
// generated, and left out) as its own module, against the repository's tsconfig: its `paths`
// resolve `tokenrelay/…` to src/, so a snippet compiles only if it would as pasted into an app.
//
// A snippet that cannot be complete says so on its fence line, ```ts nocheck, and in a comment
// inside it; such opt-outs are counted and listed. Fails with file:line for each snippet that does
// not compile.
//
//   node scripts/check-snippets.mjs [--keep] [files…]    (--keep leaves .tmp/snippets/ in place)
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(root, '.tmp', 'snippets');
const args = process.argv.slice(2);
const keep = args.includes('--keep');
const named = args.filter((arg) => !arg.startsWith('--'));

const files = named.length > 0
  ? named.map((file) => resolve(file))
  : [
      join(root, 'README.md'),
      ...readdirSync(join(root, 'docs'))
        .filter((name) => name.endsWith('.md'))
        .sort()
        .map((name) => join(root, 'docs', name)),
    ];

const OPEN = /^(\s*)(`{3,}|~{3,})\s*(ts|typescript)(?:\s+(.*))?$/;

/** The ts blocks of one Markdown file: where each starts, its code, and its fence's flags. */
function snippetsOf(file) {
  const lines = readFileSync(file, 'utf8').split(/\r?\n/);
  const snippets = [];
  for (let i = 0; i < lines.length; i++) {
    const open = OPEN.exec(lines[i]);
    if (open === null) {
      // Skip over fences of other languages, so a ```ts inside them is not taken for a block.
      const other = /^(\s*)(`{3,}|~{3,})/.exec(lines[i]);
      if (other !== null) {
        const close = new RegExp(`^\\s*${other[2][0]}{${other[2].length},}\\s*$`);
        while (++i < lines.length && !close.test(lines[i]));
      }
      continue;
    }
    const [, indent, fence, , info = ''] = open;
    const close = new RegExp(`^\\s*${fence[0]}{${fence.length},}\\s*$`);
    const body = [];
    const start = i + 1;
    while (++i < lines.length && !close.test(lines[i])) {
      body.push(lines[i].startsWith(indent) ? lines[i].slice(indent.length) : lines[i].trimStart());
    }
    snippets.push({ file, line: start, code: body.join('\n'), nocheck: /\bnocheck\b/.test(info) });
  }
  return snippets;
}

const all = files.flatMap(snippetsOf);
const checked = all.filter((snippet) => !snippet.nocheck);
const skipped = all.filter((snippet) => snippet.nocheck);

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const byModule = new Map();
for (const snippet of checked) {
  const name = `${relative(root, snippet.file).replace(/[^A-Za-z0-9]+/g, '-')}-L${snippet.line}.ts`;
  // `export {}` makes every snippet a module of its own: no names shared between snippets, and
  // top-level `await` allowed, as in an ES module app.
  writeFileSync(join(work, name), `${snippet.code}\nexport {};\n`);
  byModule.set(name, snippet);
}
writeFileSync(
  join(work, 'tsconfig.json'),
  JSON.stringify(
    {
      extends: '../../tsconfig.json',
      // NestJS apps have these on (docs/servers.md says so); nothing else in the snippets needs them.
      compilerOptions: { noEmit: true, experimentalDecorators: true, emitDecoratorMetadata: true, noUnusedLocals: false },
      include: ['./*.ts'],
    },
    null,
    2,
  ),
);

// The compiler API rather than the `tsc` CLI: the CLI stops at the first syntax error of any file,
// which would hide every other snippet's type errors.
const ts = createRequire(import.meta.url)('typescript');
const configPath = join(work, 'tsconfig.json');
const config = ts.getParsedCommandLineOfConfigFile(configPath, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n')); } });
const program = ts.createProgram({ rootNames: config.fileNames, options: config.options });

const failures = new Map();
const report = (key, message) => {
  const entry = failures.get(key) ?? { where: key, messages: [] };
  failures.set(key, entry);
  entry.messages.push(message);
};
for (const diagnostic of program.getOptionsDiagnostics()) report('tsconfig', ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n    '));
for (const [name, snippet] of byModule) {
  const source = program.getSourceFile(join(work, name));
  const syntactic = program.getSyntacticDiagnostics(source);
  const diagnostics = syntactic.length > 0 ? syntactic : program.getSemanticDiagnostics(source);
  const key = `${relative(root, snippet.file)}:${snippet.line}`;
  for (const diagnostic of diagnostics) {
    const text = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n    ');
    if (diagnostic.file === undefined || diagnostic.start === undefined) {
      report(key, `TS${diagnostic.code}: ${text}`);
      continue;
    }
    const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
    // Errors in another file (src/, a .d.ts) are the snippet's too: it is what brought them in.
    const where = diagnostic.file === source
      ? `${relative(root, snippet.file)}:${snippet.line + line + 1}:${character + 1}`
      : `${relative(root, diagnostic.file.fileName)}:${line + 1}:${character + 1}`;
    report(key, `${where} TS${diagnostic.code}: ${text}`);
  }
}

if (!keep) rmSync(work, { recursive: true, force: true });
const summary = `${all.length} ts snippets in ${files.length} files: ${checked.length} type-checked, ${skipped.length} opted out (nocheck)`;
if (skipped.length > 0) {
  console.log(`opted out:\n${skipped.map((snippet) => `  ${relative(root, snippet.file)}:${snippet.line}`).join('\n')}`);
}
if (failures.size > 0) {
  console.error(`${failures.size} snippet(s) do not compile as pasted (the line is the fence's; each message gives its own):`);
  for (const { where, messages } of failures.values()) console.error(`\n${where}\n  ${messages.join('\n  ')}`);
  console.error(`\n${summary}`);
  process.exit(1);
}
console.log(`ok: ${summary}`);
