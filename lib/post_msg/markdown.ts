// Markdown for post_msg (post_msg.md §14): the body in XEP-0393 message styling, and an XHTML-IM html (XEP-0071)
// rendered by markdown-it and held to xhtml.ts's whitelist. Never a 400: what falls outside is left out of the html.
// DIFF: Prosody's mod_post_msg sends text as given.

import MarkdownIt, { type Token } from 'markdown-it';
import { buildXhtmlIm } from './xhtml.js';

/** Links and images only with the schemes the whitelist takes; anything else stays text. */
const SAFE_LINK = /^(https?:|xmpp:|mailto:)/i;

function createRenderer(): InstanceType<typeof MarkdownIt> {
  // No raw HTML (escaped as text), XHTML output for the XML parser, a newline is a line break (chat).
  const md = new MarkdownIt('default', { html: false, xhtmlOut: true, breaks: true, linkify: false });
  // No element for these in XHTML-IM's modules: tables and rules are left to the body text.
  md.disable(['table', 'hr']);
  md.validateLink = (url) => SAFE_LINK.test(url.trim());
  // XEP-0071 has no <s>: the whitelist's own strike-through span.
  md.renderer.rules.s_open = () => '<span style="text-decoration: line-through">';
  md.renderer.rules.s_close = () => '</span>';
  return md;
}

const md = createRenderer();

/** The html field for a Markdown text, or undefined when nothing of it fits the whitelist. */
export function markdownToHtml(src: string): string | undefined {
  let html: string;
  try {
    html = md.render(src).trim();
  } catch {
    return undefined;
  }
  if (html === '') return undefined;
  const checked = buildXhtmlIm(html);
  // What the whitelist refuses is left out (§14): the message keeps its styled body.
  return checked.ok && checked.value !== undefined ? html : undefined;
}

/** The body for a Markdown text: XEP-0393 styling (`*b*`, `_i_`, `` `c` ``, ``` fences, `~s~`, `text (url)`). */
export function markdownToStyled(src: string): string {
  let tokens: Token[];
  try {
    tokens = md.parse(src, {});
  } catch {
    return src;
  }
  const out: string[] = [];
  const lists: Array<{ ordered: boolean; n: number }> = [];
  let quote = 0;
  const prefix = (): string => '> '.repeat(quote);
  for (const t of tokens) {
    switch (t.type) {
      case 'paragraph_open':
      case 'heading_open':
        if (!(lists.length > 0 && out.at(-1)?.endsWith(' '))) out.push(prefix());
        if (t.type === 'heading_open') out.push('*');
        break;
      case 'heading_close':
        out.push('*\n\n');
        break;
      case 'paragraph_close':
        out.push(lists.length > 0 ? '\n' : '\n\n');
        break;
      case 'inline':
        out.push(inlineText(t.children ?? []).replace(/\n/g, `\n${prefix()}`));
        break;
      case 'fence':
      case 'code_block':
        out.push(`${prefix()}\`\`\`\n${t.content}\`\`\`\n\n`);
        break;
      case 'blockquote_open':
        quote++;
        break;
      case 'blockquote_close':
        quote--;
        break;
      case 'bullet_list_open':
      case 'ordered_list_open':
        lists.push({ ordered: t.type === 'ordered_list_open', n: Number(t.attrGet('start') ?? 1) });
        break;
      case 'bullet_list_close':
      case 'ordered_list_close':
        lists.pop();
        if (lists.length === 0) out.push('\n');
        break;
      case 'list_item_open': {
        const list = lists.at(-1)!;
        out.push(`${prefix()}${'  '.repeat(lists.length - 1)}${list.ordered ? `${list.n++}. ` : '• '}`);
        break;
      }
      case 'hr':
        out.push(`${prefix()}───\n\n`);
        break;
      default:
        break;
    }
  }
  const text = out.join('').replace(/\n{3,}/g, '\n\n').trim();
  return text === '' ? src : text;
}

function inlineText(children: Token[]): string {
  let s = '';
  const links: string[] = [];
  for (const c of children) {
    switch (c.type) {
      case 'text':
        s += c.content;
        break;
      case 'code_inline':
        s += `\`${c.content}\``;
        break;
      case 'strong_open':
      case 'strong_close':
        s += '*';
        break;
      case 'em_open':
      case 'em_close':
        s += '_';
        break;
      case 's_open':
      case 's_close':
        s += '~';
        break;
      case 'softbreak':
      case 'hardbreak':
        s += '\n';
        break;
      case 'link_open':
        links.push(String(c.attrGet('href') ?? ''));
        break;
      case 'link_close': {
        const href = links.pop() ?? '';
        if (href !== '' && !s.endsWith(href)) s += ` (${href})`;
        break;
      }
      case 'image': {
        const src = String(c.attrGet('src') ?? '');
        s += `${c.content}${src ? ` (${src})` : ''}`;
        break;
      }
      default:
        s += c.content;
    }
  }
  return s;
}
