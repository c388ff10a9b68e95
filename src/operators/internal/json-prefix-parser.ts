import { InvalidJSONError } from '../../core/errors.js';
import type { ToolCallInfo } from '../../core/types.js';

// What the next character may be.
const VALUE = 0;
const VALUE_OR_CLOSE = 1; // after '['
const KEY_OR_CLOSE = 2; // after '{'
const KEY = 3;
const COLON = 4;
const AFTER_VALUE = 5; // ',' or the container's closer
const END = 6; // the document is complete: whitespace only
const STRING = 7;
const ESCAPE = 8;
const UNICODE = 9;
const NUMBER = 10;
const LITERAL = 11;

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const NUMBER_SYNTAX = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

interface Frame {
  container: unknown[] | Record<string, unknown>;
  array: boolean;
  /** In an object: the key of the member being parsed. */
  key: string;
  /** Handed out in a snapshot, so it is copied before the next change. */
  shared: boolean;
}

/**
 * Parses a JSON document fed in pieces, in one pass (each character is read once), and hands
 * out snapshots of the value so far that never contradict the final value: strings grow,
 * members and elements are only added, and numbers and `true`/`false`/`null` appear only once
 * complete. Snapshots share completed subtrees and are never mutated afterwards: containers
 * still open are copied on their next change (copy-on-write along the open path).
 */
export class JSONPrefixParser {
  #mode = VALUE;
  #frames: Frame[] = [];
  #root: unknown;
  #hasRoot = false;
  #changed = false;
  #complete = false;
  #offset = 0;
  #text = '';
  #toolCall: ToolCallInfo | undefined;
  #str = '';
  #isKey = false;
  #shownLength = 0;
  #code = 0;
  #digits = 0;
  #num = '';
  #literal = '';
  #literalAt = 0;

  constructor(toolCall?: ToolCallInfo) {
    this.#toolCall = toolCall;
  }

  /** True when the value changed (or completed) since the last snapshot. */
  get changed(): boolean {
    return this.#changed;
  }

  /** True once the document is complete. */
  get complete(): boolean {
    return this.#complete;
  }

  /** True once anything but whitespace was read. */
  get started(): boolean {
    return this.#hasRoot || this.#mode !== VALUE;
  }

  /** The value so far. It is never mutated afterwards. */
  snapshot(): unknown {
    for (const frame of this.#frames) frame.shared = true;
    this.#changed = false;
    return this.#root;
  }

  /** Reads more text; throws {@link InvalidJSONError} as soon as it cannot be JSON. */
  push(text: string): void {
    const length = text.length;
    this.#text = text;
    for (let i = 0; i < length; i++) {
      const c = text.charCodeAt(i);
      switch (this.#mode) {
        case STRING: {
          let j = i;
          let d = c;
          while (d !== 0x22 && d !== 0x5c && d >= 0x20 && ++j < length) d = text.charCodeAt(j);
          if (j > i) this.#str += text.slice(i, j);
          i = j;
          if (j === length) break;
          if (d === 0x22) this.#endString();
          else if (d === 0x5c) this.#mode = ESCAPE;
          else this.#fail(i, 'Bad control character in string literal');
          break;
        }
        case ESCAPE: {
          if (c === 0x75) {
            this.#mode = UNICODE;
            this.#code = 0;
            this.#digits = 0;
            break;
          }
          const escaped = ESCAPES[text[i] as string];
          if (escaped === undefined) this.#fail(i, 'Bad escaped character');
          this.#str += escaped;
          this.#mode = STRING;
          break;
        }
        case UNICODE: {
          const digit = hexValue(c);
          if (digit < 0) this.#fail(i, 'Bad Unicode escape');
          this.#code = this.#code * 16 + digit;
          if (++this.#digits === 4) {
            this.#str += String.fromCharCode(this.#code);
            this.#mode = STRING;
          }
          break;
        }
        case NUMBER:
          if ((c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x2b || c === 0x65 || c === 0x45) {
            this.#num += text[i];
            break;
          }
          this.#endNumber(i);
          i--; // the character after a number belongs to what follows
          break;
        case LITERAL:
          if (c !== this.#literal.charCodeAt(this.#literalAt)) this.#fail(i);
          if (++this.#literalAt === this.#literal.length) {
            this.#place(this.#literal === 'true' ? true : this.#literal === 'false' ? false : null);
            this.#endValue();
          }
          break;
        default:
          if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) this.#structural(c, i);
      }
    }
    this.#offset += length;
    this.#text = '';
    if (!this.#isKey && (this.#mode === STRING || this.#mode === ESCAPE || this.#mode === UNICODE)) this.#showString();
  }

  /** Marks the end of the text; throws {@link InvalidJSONError} unless the document is complete. */
  end(): void {
    if (this.#mode === NUMBER) this.#endNumber(0);
    if (!this.#complete) this.#fail(0, 'Unexpected end of JSON input');
  }

  #structural(c: number, i: number): void {
    const mode = this.#mode;
    const top = this.#frames[this.#frames.length - 1];
    if (mode === VALUE || (mode === VALUE_OR_CLOSE && c !== 0x5d)) this.#startValue(c, i);
    else if ((mode === KEY_OR_CLOSE || mode === KEY) && c === 0x22) this.#startString(true);
    else if (mode === COLON && c === 0x3a) this.#mode = VALUE;
    else if (mode === AFTER_VALUE && c === 0x2c) this.#mode = top?.array === true ? VALUE : KEY;
    else if (c === (top?.array === true ? 0x5d : 0x7d) && (mode === AFTER_VALUE || mode === VALUE_OR_CLOSE || mode === KEY_OR_CLOSE)) {
      this.#frames.pop();
      this.#endValue();
    } else this.#fail(i);
  }

  #startValue(c: number, i: number): void {
    if (c === 0x22) this.#startString(false);
    else if (c === 0x7b || c === 0x5b) {
      const array = c === 0x5b;
      const container = array ? [] : {};
      this.#place(container);
      this.#frames.push({ container, array, key: '', shared: false });
      this.#mode = array ? VALUE_OR_CLOSE : KEY_OR_CLOSE;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      this.#num = String.fromCharCode(c);
      this.#mode = NUMBER;
    } else if (c === 0x74 || c === 0x66 || c === 0x6e) {
      this.#literal = c === 0x74 ? 'true' : c === 0x66 ? 'false' : 'null';
      this.#literalAt = 1;
      this.#mode = LITERAL;
    } else this.#fail(i);
  }

  #startString(isKey: boolean): void {
    this.#str = '';
    this.#isKey = isKey;
    this.#mode = STRING;
    if (isKey) return;
    this.#shownLength = 0;
    this.#place('');
  }

  #endString(): void {
    if (this.#isKey) {
      (this.#frames[this.#frames.length - 1] as Frame).key = this.#str;
      this.#isKey = false;
      this.#mode = COLON;
      return;
    }
    // Already shown whole (or still the empty string placed at the opening quote): unchanged.
    if (this.#shownLength !== this.#str.length) this.#replace(this.#str);
    this.#endValue();
  }

  // A partial string is shown up to its last complete character: a lone high surrogate may
  // still get its pair.
  #showString(): void {
    const str = this.#str;
    let length = str.length;
    const last = str.charCodeAt(length - 1);
    if (last >= 0xd800 && last <= 0xdbff) length--;
    if (length === this.#shownLength) return;
    this.#shownLength = length;
    this.#replace(length === str.length ? str : str.slice(0, length));
  }

  #endNumber(i: number): void {
    if (!NUMBER_SYNTAX.test(this.#num)) this.#fail(i, `Invalid number ${JSON.stringify(this.#num)}`);
    this.#place(Number(this.#num));
    this.#endValue();
  }

  #endValue(): void {
    if (this.#frames.length > 0) {
      this.#mode = AFTER_VALUE;
      return;
    }
    this.#mode = END;
    this.#complete = true;
    this.#changed = true;
  }

  /** Adds a value at the current position: a new element, member, or the root. */
  #place(value: unknown): void {
    const depth = this.#frames.length - 1;
    if (depth < 0) {
      this.#root = value;
      this.#hasRoot = true;
    } else {
      const top = this.#writable(depth);
      if (top.array) (top.container as unknown[]).push(value);
      else setMember(top.container as Record<string, unknown>, top.key, value);
    }
    this.#changed = true;
  }

  /** Replaces the value at the current position (a string that grew). */
  #replace(value: unknown): void {
    const depth = this.#frames.length - 1;
    if (depth < 0) this.#root = value;
    else this.#setChild(this.#writable(depth), value);
    this.#changed = true;
  }

  #writable(depth: number): Frame {
    const frame = this.#frames[depth] as Frame;
    if (!frame.shared) return frame;
    frame.shared = false;
    frame.container = frame.array ? (frame.container as unknown[]).slice() : { ...frame.container };
    if (depth === 0) this.#root = frame.container;
    else this.#setChild(this.#writable(depth - 1), frame.container);
    return frame;
  }

  // The value being parsed is always the last element of an array, or the member at `key`.
  #setChild(parent: Frame, value: unknown): void {
    if (parent.array) {
      const array = parent.container as unknown[];
      array[array.length - 1] = value;
    } else setMember(parent.container as Record<string, unknown>, parent.key, value);
  }

  #fail(i: number, reason?: string): never {
    const position = this.#offset + i;
    const char = this.#text[i];
    const message =
      reason ??
      (this.#mode === END ? `Unexpected ${JSON.stringify(char)} after the end of the JSON document` : `Unexpected character ${JSON.stringify(char)}`);
    const where = this.#toolCall === undefined ? '' : ` in the arguments of tool call "${this.#toolCall.name}"`;
    throw new InvalidJSONError(`${message} at position ${position}${where}`, position, this.#toolCall);
  }
}

// `obj['__proto__'] = v` would set the prototype; JSON.parse makes it an own member.
function setMember(object: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
  else object[key] = value;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}
