// What the docs say a class is ("`X` (extends `Y`", "`X` (a `Y`, not a `Z`", "`X` is a `Y`")
// must be what the code says: each claim about two classes the package or the platform exports
// is checked against the prototype chain.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as client from 'tokenrelay/client';
import * as core from 'tokenrelay';
import * as protocols from 'tokenrelay/protocols';
import * as relay from 'tokenrelay/relay';

const root = new URL('../../', import.meta.url);
const files = ['README.md', ...readdirSync(new URL('docs/', root)).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)];
const classes = new Map<string, unknown>(
  [...Object.entries(globalThis), ...Object.entries(core), ...Object.entries(relay), ...Object.entries(protocols), ...Object.entries(client)].filter(
    ([name, value]) => typeof value === 'function' && /^[A-Z]/.test(name),
  ),
);
for (const name of ['Error', 'TypeError', 'SyntaxError', 'RangeError']) classes.set(name, (globalThis as Record<string, unknown>)[name]);

interface Claim {
  file: string;
  subject: string;
  parent: string;
  holds: boolean;
}

const claims: Claim[] = [];
const patterns = [
  /`(?<subject>\w+)` \((?:extends|an?) `(?<parent>\w+)`(?:, not an? `(?<not>\w+)`)?/g,
  /`(?<subject>\w+)` (?:extends|is an?(?: subclass of)?) `(?<parent>\w+)`/g,
];
for (const file of files) {
  const text = readFileSync(new URL(file, root), 'utf8').replace(/\s*\n\s*/g, ' ');
  for (const pattern of patterns) {
    for (const match of text.matchAll(pattern)) {
      const { subject = '', parent = '', not } = match.groups ?? {};
      if (!classes.has(subject)) continue;
      if (classes.has(parent)) claims.push({ file, subject, parent, holds: true });
      if (not !== undefined && classes.has(not)) claims.push({ file, subject, parent: not, holds: false });
    }
  }
}

function inherits(subject: unknown, parent: unknown): boolean {
  const target = (parent as { prototype: object }).prototype;
  for (let proto = Object.getPrototypeOf((subject as { prototype: object }).prototype); proto !== null; proto = Object.getPrototypeOf(proto)) {
    if (proto === target) return true;
  }
  return false;
}

describe('class claims in README.md and docs/', () => {
  it('finds the claims (the check is not vacuous)', () => {
    expect(claims.map((claim) => claim.subject)).toContain('InvalidJSONError');
  });

  it.each(claims.map((claim) => [`${claim.file}: ${claim.subject} ${claim.holds ? 'is' : 'is not'} a ${claim.parent}`, claim] as const))(
    '%s',
    (_title, claim) => {
      expect(inherits(classes.get(claim.subject), classes.get(claim.parent))).toBe(claim.holds);
    },
  );
});
