// Lets Node (>= 22.18, which strips TypeScript types) run the examples and benchmarks straight
// from src/: `tokenrelay` and `tokenrelay/<subpath>` resolve through tsconfig.json `paths`, as
// they do for tsc and vitest, and the `.js` imports inside src/ resolve to their `.ts` files.
//   node --import ./scripts/run-from-source.mjs examples/express.ts
import { existsSync, readFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { paths } = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8')).compilerOptions;
const entries = new Map(Object.entries(paths).map(([name, [target]]) => [name, pathToFileURL(join(root, target)).href]));
const sourceRoot = pathToFileURL(join(root, 'src')).href;

registerHooks({
  resolve(specifier, context, next) {
    const entry = entries.get(specifier);
    if (entry !== undefined) return { url: entry, shortCircuit: true };
    if (specifier.startsWith('.') && specifier.endsWith('.js') && context.parentURL?.startsWith(sourceRoot)) {
      const typescript = new URL(specifier.slice(0, -3) + '.ts', context.parentURL);
      if (existsSync(fileURLToPath(typescript))) return { url: typescript.href, shortCircuit: true };
    }
    return next(specifier, context);
  },
});
