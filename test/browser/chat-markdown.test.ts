// The chat page's Markdown renderer (examples/chat/markdown.ts), which both demo pages use: what
// it renders, and that no text can become markup (runs in Node; the pages are tested in Chromium).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { renderMarkdown, safeHref } from '../../examples/chat/markdown.ts';

describe('renderMarkdown', () => {
  it.each([
    ['plain text', 'Hello world', '<p>Hello world</p>'],
    ['lines of a paragraph', 'one\ntwo', '<p>one<br>two</p>'],
    ['paragraphs', 'one\n\ntwo', '<p>one</p><p>two</p>'],
    ['strong and emphasis', '**bold**, __bold__, *em* and _em_', '<p><strong>bold</strong>, <strong>bold</strong>, <em>em</em> and <em>em</em></p>'],
    ['snake_case stays', 'a snake_case_name and 2*3*4', '<p>a snake_case_name and 2*3*4</p>'],
    ['inline code, not parsed further', 'run `a **b** <c>`', '<p>run <code>a **b** &lt;c&gt;</code></p>'],
    ['a heading', '## Title *x*', '<h2>Title <em>x</em></h2>'],
    ['an unordered list', '- a\n* b\n+ c', '<ul><li>a</li><li>b</li><li>c</li></ul>'],
    ['an ordered list', '1. a\n2) b', '<ol><li>a</li><li>b</li></ol>'],
    ['a list after a paragraph', 'intro\n- a', '<p>intro</p><ul><li>a</li></ul>'],
    ['a fenced code block', '```ts\nconst a = 1 < 2;\n```\nafter', '<pre><code class="language-ts">const a = 1 &lt; 2;</code></pre><p>after</p>'],
    ['a code block still open (streaming)', 'see:\n```\nline *1*', '<p>see:</p><pre><code>line *1*</code></pre>'],
    ['a safe link', '[docs](https://example.com/a?b=1&c=2)', '<p><a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer" target="_blank">docs</a></p>'],
    ['a relative link', '[home](/)', '<p><a href="/" rel="noopener noreferrer" target="_blank">home</a></p>'],
    ['a javascript: link keeps its text only', '[x](javascript:alert(1))', '<p>x)</p>'],
    ['a data: link keeps its text only', '[x](data:text/html,hi)', '<p>x</p>'],
    ['HTML is text', '<script>alert(1)</script> <img src=x onerror=alert(1)>', '<p>&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt;</p>'],
    ['quotes are escaped', `"a" 'b'`, '<p>&quot;a&quot; &#39;b&#39;</p>'],
  ])('%s', (_name, markdown, html) => {
    expect(renderMarkdown(markdown)).toBe(html);
  });

  it('never lets text become a tag or an attribute', () => {
    const pieces = fc.constantFrom('<', '>', '"', "'", '&', '*', '_', '`', '[', ']', '(', ')', '\n', '- ', '1. ', '```', '#', ' ', 'a', 'script', 'javascript:', 'on', '=', 'http://x');
    fc.assert(
      fc.property(fc.array(pieces, { maxLength: 60 }), (parts) => {
        const html = renderMarkdown(parts.join(''));
        // Every tag is one of the renderer's own; every attribute is one it writes.
        for (const [tag] of html.matchAll(/<[^>]*>/g)) {
          expect(tag).toMatch(/^<\/?(p|br|strong|em|code|pre|ul|ol|li|h[1-6])>$|^<code class="language-[\w+-]+">$|^<a href="[^"<>]*" rel="noopener noreferrer" target="_blank">$|^<\/a>$/);
        }
        for (const [, href] of html.matchAll(/href="([^"]*)"/g)) expect(href).toMatch(/^(https?:|mailto:|\/(?!\/)|#)/);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('safeHref', () => {
  it.each([
    ['https://example.com/', 'https://example.com/'],
    ['http://example.com', 'http://example.com/'],
    ['mailto:a@example.com', 'mailto:a@example.com'],
    ['/docs', '/docs'],
    ['#top', '#top'],
    ['//evil.example', undefined],
    ['javascript:alert(1)', undefined],
    ['JaVaScRiPt:alert(1)', undefined],
    ['vbscript:x', undefined],
    ['data:text/html,x', undefined],
    ['docs/page', undefined],
  ])('%s', (url, expected) => {
    expect(safeHref(url)).toBe(expected);
  });
});
