// Type declarations for @xmpp/xml 0.14, which ships no types.
// Only what this project uses is declared; see node_modules/ltx/lib/Element.js.

declare module '@xmpp/xml' {
  export type Attrs = Record<string, string | number | undefined | null>;
  export type Node = Element | string;

  export class Element {
    constructor(name: string, attrs?: Attrs);
    name: string;
    attrs: Record<string, string>;
    children: Node[];
    parent: Element | null;
    is(name: string, xmlns?: string): boolean;
    getName(): string;
    getNS(): string | undefined;
    getAttr(name: string, xmlns?: string): string | undefined;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildElements(): Element[];
    getChildByAttr(attr: string, val: string, xmlns?: string, recursive?: boolean): Element | undefined;
    getChildText(name: string, xmlns?: string): string | null;
    getText(): string;
    text(): string;
    text(val: string): this;
    attr(name: string): string | undefined;
    attr(name: string, value: string | number | null | undefined): this;
    c(name: string, attrs?: Attrs): Element;
    cnode<T extends Element>(child: T): T;
    t(text: string): this;
    up(): Element;
    root(): Element;
    append(...nodes: Node[]): this;
    prepend(...nodes: Node[]): this;
    remove(el: Element | string, xmlns?: string): this;
    toString(): string;
    write(writer: (s: string) => void): void;
  }

  export class XMLError extends Error {}

  export class Parser {
    constructor();
    root: Element | null;
    cursor: Element | null;
    on(event: 'start', fn: (el: Element) => void): this;
    on(event: 'element', fn: (el: Element) => void): this;
    on(event: 'end', fn: (el: Element) => void): this;
    on(event: 'error', fn: (err: Error) => void): this;
    removeAllListeners(event?: string): this;
    write(data: string): void;
    end(data?: string): void;
  }

  export function createElement(name: string, attrs?: Attrs | null, ...children: (Node | Node[] | null | undefined | false)[]): Element;
  export function xml(name: string, attrs?: Attrs | null, ...children: (Node | Node[] | null | undefined | false)[]): Element;
  export function escapeXML(s: string): string;
  export function unescapeXML(s: string): string;
  export function escapeXMLText(s: string): string;
  export function unescapeXMLText(s: string): string;

  export default xml;
}

declare module '@xmpp/xml/lib/parse.js' {
  import type { Element } from '@xmpp/xml';
  export default function parse(data: string): Element;
}
