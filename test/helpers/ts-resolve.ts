// Loaded with `node --import` by child processes that run the sources directly: Node strips the
// types of `.ts` files but does not map the `./x.js` specifiers of src/ (written for the bundler)
// to the `./x.ts` files that exist. This hook does, for files under src/ only.
import { existsSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { fileURLToPath } from 'node:url';

const src = new URL('../../src/', import.meta.url).href;

registerHooks({
  resolve(specifier, context, nextResolve) {
    const parent = context.parentURL;
    if (parent?.startsWith(src) === true && specifier.startsWith('.') && specifier.endsWith('.js')) {
      const url = new URL(specifier, parent);
      const typescript = new URL(url.href.replace(/\.js$/, '.ts'));
      if (!existsSync(fileURLToPath(url)) && existsSync(fileURLToPath(typescript))) {
        return nextResolve(typescript.href, context);
      }
    }
    return nextResolve(specifier, context);
  },
});
