/**
 * Hostile-input-safe XML for WS-Discovery datagrams and SOAP responses.
 *
 * Everything a camera (or anything on the LAN pretending to be one) sends is parsed here.
 * A document with a DOCTYPE or an ENTITY declaration is refused outright, entity processing
 * is off (so `&xxe;` stays literal text), nesting is bounded and the caller bounds the size
 * before calling. Namespace prefixes are stripped: cameras disagree about prefixes, and the
 * element local names of the few messages Tether reads are unambiguous.
 */
import { createRequire } from 'node:module';
import type * as FastXmlParser from 'fast-xml-parser';

/** Refused input: not XML, or XML Tether will not parse (DOCTYPE, too deep, too big). */
export class XmlError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'XmlError';
  }
}

/** A parsed element: child elements by local name, attributes as `@_name`, text as `#text`. */
export type XmlNode = Readonly<Record<string, unknown>>;

const PARSER_OPTIONS: FastXmlParser.X2jOptions = {
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  maxNestedTags: 64,
};

/**
 * The parser, made the first time a document arrives: fast-xml-parser costs ~7 MiB of RSS, and
 * an agent loads this handler whether or not any discovery uses it (issue 15).
 */
let parser: FastXmlParser.XMLParser | undefined;
function xmlParser(): FastXmlParser.XMLParser {
  parser ??= new (createRequire(import.meta.url)('fast-xml-parser') as typeof FastXmlParser).XMLParser(PARSER_OPTIONS);
  return parser;
}

const FORBIDDEN = /<!DOCTYPE|<!ENTITY/i;

/** Parses `text` (already size-bounded by the caller) or throws XmlError. */
export function parseXml(text: string, maxBytes: number): XmlNode {
  if (text.length > maxBytes) throw new XmlError(`document larger than ${maxBytes} bytes`);
  if (FORBIDDEN.test(text)) throw new XmlError('DOCTYPE and ENTITY declarations are not accepted');
  let parsed: unknown;
  try {
    parsed = xmlParser().parse(text, true);
  } catch (error) {
    throw new XmlError(`malformed XML: ${(error as Error).message}`, { cause: error });
  }
  if (!isNode(parsed)) throw new XmlError('not an XML document');
  return parsed;
}

export function isNode(value: unknown): value is XmlNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** All children called `name` (a single child and a repeated one look different after parsing). */
export function children(node: unknown, name: string): unknown[] {
  if (!isNode(node)) return [];
  const value = node[name];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** The first child called `name`, or undefined. */
export function child(node: unknown, name: string): unknown {
  return children(node, name)[0];
}

/** Follows a path of local names, taking the first child at each step. */
export function path(node: unknown, ...names: string[]): unknown {
  let current = node;
  for (const name of names) current = child(current, name);
  return current;
}

/** The text content of an element (`<a>x</a>` or `<a attr="1">x</a>`), or undefined. */
export function text(node: unknown): string | undefined {
  if (typeof node === 'string') return node;
  if (typeof node === 'number' || typeof node === 'boolean') return String(node);
  if (isNode(node)) {
    const t = node['#text'];
    if (typeof t === 'string' || typeof t === 'number') return String(t);
    // An element with attributes and no text.
    return Object.keys(node).every((k) => k.startsWith('@_')) ? '' : undefined;
  }
  return undefined;
}

/** An attribute of an element, by local name. */
export function attribute(node: unknown, name: string): string | undefined {
  if (!isNode(node)) return undefined;
  const value = node[`@_${name}`];
  return typeof value === 'string' ? unescapeXml(value) : undefined;
}

/** Escapes text for an XML element or attribute value. */
export function escapeXml(value: string): string {
  return value.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] ?? c);
}

/**
 * Undoes the five predefined entities and numeric character references, which
 * `processEntities: false` leaves in place. Never expands anything else.
 */
export function unescapeXml(value: string): string {
  return value.replace(/&(lt|gt|amp|apos|quot|#\d{1,7}|#x[0-9a-fA-F]{1,6});/g, (whole, name: string) => {
    switch (name) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'apos':
        return "'";
      case 'quot':
        return '"';
      default: {
        const code = name.startsWith('#x') ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
        return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
      }
    }
  });
}

/** Text of an element with the predefined entities decoded, trimmed; undefined if absent. */
export function textValue(node: unknown): string | undefined {
  const t = text(node);
  return t === undefined ? undefined : unescapeXml(t).trim();
}
