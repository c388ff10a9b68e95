// A small Markdown renderer for the chat page: paragraphs, headings, fenced code blocks, inline
// code, **strong**, *emphasis*, lists and links. Safe by construction: every piece of the text
// goes through `escapeHTML`, the only tags are the renderer's own, and a link keeps its href
// only for http(s), mailto and same-site URLs. It renders an unfinished answer too (an open code
// fence runs to the end), so the page can re-render on every token.

/** The answer as HTML, for `innerHTML`. */
export function renderMarkdown(text: string): string {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const html: string[] = [];
  let paragraph: string[] = [];
  let list: { ordered: boolean; items: string[] } | undefined;

  const flushParagraph = () => {
    if (paragraph.length > 0) html.push(`<p>${paragraph.map(renderInline).join('<br>')}</p>`);
    paragraph = [];
  };
  const flushList = () => {
    if (list !== undefined) {
      const tag = list.ordered ? 'ol' : 'ul';
      html.push(`<${tag}>${list.items.map((item) => `<li>${renderInline(item)}</li>`).join('')}</${tag}>`);
    }
    list = undefined;
  };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const fence = /^\s*(`{3,}|~{3,})\s*([\w+-]*)/.exec(line);
    if (fence !== null) {
      flushParagraph();
      flushList();
      const marker = fence[1] as string;
      const code: string[] = [];
      for (i++; i < lines.length && !(lines[i] as string).trimStart().startsWith(marker); i++) code.push(lines[i] as string);
      const language = fence[2] === '' ? '' : ` class="language-${fence[2]}"`;
      html.push(`<pre><code${language}>${escapeHTML(code.join('\n'))}</code></pre>`);
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading !== null) {
      flushParagraph();
      flushList();
      const level = (heading[1] as string).length;
      html.push(`<h${level}>${renderInline(heading[2] as string)}</h${level}>`);
      continue;
    }
    const item = /^\s*(?:([-*+])|(\d{1,9})[.)])\s+(.*)$/.exec(line);
    if (item !== null) {
      flushParagraph();
      const ordered = item[2] !== undefined;
      if (list !== undefined && list.ordered !== ordered) flushList();
      list ??= { ordered, items: [] };
      list.items.push(item[3] as string);
      continue;
    }
    if (line.trim() === '') {
      flushParagraph();
      flushList();
      continue;
    }
    flushList();
    paragraph.push(line);
  }
  flushParagraph();
  flushList();
  return html.join('');
}

/** Inline Markdown: code spans and links first (their content is not parsed further), then emphasis. */
export function renderInline(text: string): string {
  let html = '';
  let rest = text;
  const inline = /`([^`]+)`|\[([^\]]+)\]\(([^)\s]+)\)/;
  for (let match = inline.exec(rest); match !== null; match = inline.exec(rest)) {
    html += renderEmphasis(rest.slice(0, match.index));
    if (match[1] !== undefined) {
      html += `<code>${escapeHTML(match[1])}</code>`;
    } else {
      const label = renderEmphasis(match[2] as string);
      const href = safeHref(match[3] as string);
      html += href === undefined ? label : `<a href="${escapeHTML(href)}" rel="noopener noreferrer" target="_blank">${label}</a>`;
    }
    rest = rest.slice(match.index + match[0].length);
  }
  return html + renderEmphasis(rest);
}

function renderEmphasis(text: string): string {
  // On escaped text: the markers are ASCII and survive escaping, and `$n` is escaped text.
  return escapeHTML(text)
    .replace(/\*\*(?=\S)(.+?)(?<=\S)\*\*/g, '<strong>$1</strong>')
    .replace(/__(?=\S)(.+?)(?<=\S)__/g, '<strong>$1</strong>')
    .replace(/(^|[^*\w])\*(?=[^\s*])([^*]*?[^\s*])\*(?!\*)/g, '$1<em>$2</em>')
    .replace(/(^|[^\w])_(?=\S)([^_]*?\S)_(?!\w)/g, '$1<em>$2</em>');
}

/** The href to keep: absolute http(s) and mailto URLs, and paths of this site; anything else is dropped. */
export function safeHref(url: string): string | undefined {
  if (/^\/(?!\/)|^#/.test(url)) return url;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' || parsed.protocol === 'mailto:' ? parsed.href : undefined;
  } catch {
    return undefined;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHTML(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char] as string);
}
