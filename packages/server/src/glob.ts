/**
 * Wildcards in the last path segment of LIST/NLST (`NLST *.csv`, what `mget` sends). Only that segment, and
 * only `*`, `?` and `[...]`: no recursion, so a pattern costs one directory listing at most.
 *
 * Matched without regular expressions or backtracking, since the client chooses both the pattern and the names:
 * a pattern compiled to a backtracking expression (`*a*a*a*a*a*b` as `.*a.*a…`) took seconds per name, and the
 * classic wildcard walk (the last `*` takes one more character on a mismatch) costs a name's length times the
 * pattern's: `*aaa…ac` of 240 characters over 20,000 names of 250 took 2.4 s of the thread every session shares.
 * Here the pattern is a set of states advanced for all of them at once, 32 to a machine word (a bit-parallel
 * automaton): a name costs its length times one word per 32 characters of the pattern, whatever they are.
 */
export function isGlob(segment: string): boolean {
  return /[*?[]/.test(segment);
}

type Token =
  | { kind: 'char'; code: number }
  | { kind: 'any' }
  | { kind: 'star' }
  /** A bracket set: UTF-16 code unit ranges, inclusive. */
  | { kind: 'set'; negate: boolean; ranges: number[] };

/**
 * Most characters and sets (`[...]`) other than `*` a pattern may have; a longer one matches nothing (names are at
 * most 255 here).
 */
export const MAX_GLOB_CHARACTERS = 1024;

/**
 * A test for names against a wildcard segment: `*` any run, `?` any one character, `[a-z]`/`[!a-z]` a set. A name
 * that starts with a dot is matched only by a pattern that starts with one (`.*`), as the shell and glob(3) match
 * them, and proftpd and vsftpd with them: `NLST *` (what `mget *` sends) leaves out `.htaccess` and the like.
 */
export function globMatcher(segment: string): (name: string) => boolean {
  const tokens = compile(segment);
  const steps = tokens.filter((t) => t.kind !== 'star');
  if (steps.length > MAX_GLOB_CHARACTERS) return () => false;
  const automaton = new Automaton(tokens, steps);
  if (segment.charCodeAt(0) === DOT) return (name) => automaton.matches(name);
  return (name) => name.charCodeAt(0) !== DOT && automaton.matches(name);
}

const DOT = 0x2e;

function compile(segment: string): Token[] {
  const tokens: Token[] = [];
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charCodeAt(i);
    if (c === 0x2a /* * */) {
      // Two stars in a row are one: it keeps the matching linear in the pattern.
      if (tokens[tokens.length - 1]?.kind !== 'star') tokens.push({ kind: 'star' });
    } else if (c === 0x3f /* ? */) tokens.push({ kind: 'any' });
    else if (c === 0x5b /* [ */) {
      // The first character of a set (after `!` or `^`) may be `]` itself: its end is searched from the one after.
      const first = segment[i + 1] === '!' || segment[i + 1] === '^' ? i + 2 : i + 1;
      const end = segment.indexOf(']', first + 1);
      const set = end === -1 ? null : parseSet(segment.slice(i + 1, end));
      if (set === null) {
        // No set a client can have meant (unclosed, or a range out of order such as `[z-a]`): plain text, `[`
        // and all, up to its `]`.
        const stop = end === -1 ? i : end;
        for (let k = i; k <= stop; k++) tokens.push({ kind: 'char', code: segment.charCodeAt(k) });
        i = stop;
        continue;
      }
      tokens.push(set);
      i = end;
    } else tokens.push({ kind: 'char', code: c });
  }
  return tokens;
}

/** The body of a bracket set (between `[` and `]`), or null when it holds a range out of order. */
function parseSet(body: string): Token | null {
  const negate = body.startsWith('!') || body.startsWith('^');
  if (negate) body = body.slice(1);
  const ranges: number[] = [];
  for (let k = 0; k < body.length; k++) {
    const lo = body.charCodeAt(k);
    // `a-z` is a range; a `-` first or last is itself.
    if (body.charCodeAt(k + 1) === 0x2d /* - */ && k + 2 < body.length) {
      const hi = body.charCodeAt(k + 2);
      if (hi < lo) return null;
      ranges.push(lo, hi);
      k += 2;
    } else ranges.push(lo, lo);
  }
  return { kind: 'set', negate, ranges };
}

function matchesOne(token: Token, code: number): boolean {
  switch (token.kind) {
    case 'char':
      return token.code === code;
    case 'any':
      return true;
    case 'set': {
      let inside = false;
      for (let r = 0; r < token.ranges.length && !inside; r += 2) inside = code >= (token.ranges[r] as number) && code <= (token.ranges[r + 1] as number);
      return inside !== token.negate;
    }
    default:
      return false;
  }
}

/** Code units below this have a transition mask each, computed when the pattern is compiled. */
const TABLE_CODES = 128;

/**
 * The pattern's positions as states: state i is "the first i non-star tokens matched", and a `*` after token i
 * lets state i take any character and stay. For each character, every state moves on at once:
 * `next = ((now << 1) & accepts(char)) | (now & loops)`, in words of 32 states.
 */
class Automaton {
  readonly #words: number;
  readonly #steps: readonly Token[];
  /** States with a `*` loop. */
  readonly #loops: Int32Array;
  /** The accepting state's word and bit. */
  readonly #lastWord: number;
  readonly #lastBit: number;
  /** Masks of the states a code unit below {@link TABLE_CODES} can enter, `#words` per code unit. */
  readonly #table: Int32Array;
  /**
   * The code units from {@link TABLE_CODES} up, cut where any token's answer changes (a character of the pattern, a
   * set's range ends): each piece starts at `#starts[i]` and has one mask, `#words` at `i * #words` in `#pieces`. A
   * name's other characters (say, 85 different CJK ones) then cost a binary search, never a pass over the pattern.
   */
  readonly #starts: number[];
  readonly #pieces: Int32Array;
  #now: Int32Array;
  #next: Int32Array;

  constructor(tokens: readonly Token[], steps: readonly Token[]) {
    const states = steps.length + 1;
    this.#words = Math.ceil(states / 32);
    this.#steps = steps;
    this.#loops = new Int32Array(this.#words);
    let state = 0;
    for (const token of tokens) {
      if (token.kind === 'star') this.#loops[state >>> 5]! |= 1 << (state & 31);
      else state++;
    }
    this.#lastWord = steps.length >>> 5;
    this.#lastBit = 1 << (steps.length & 31);
    this.#table = new Int32Array(TABLE_CODES * this.#words);
    for (let code = 0; code < TABLE_CODES; code++) this.#fill(code, this.#table, code * this.#words);
    const cuts = new Set<number>([TABLE_CODES]);
    const cut = (lo: number, hi: number): void => {
      if (hi < TABLE_CODES) return;
      cuts.add(Math.max(lo, TABLE_CODES));
      cuts.add(hi + 1);
    };
    for (const token of steps) {
      if (token.kind === 'char') cut(token.code, token.code);
      else if (token.kind === 'set') for (let r = 0; r < token.ranges.length; r += 2) cut(token.ranges[r] as number, token.ranges[r + 1] as number);
    }
    this.#starts = [...cuts].sort((a, b) => a - b);
    this.#pieces = new Int32Array(this.#starts.length * this.#words);
    this.#starts.forEach((start, i) => this.#fill(start, this.#pieces, i * this.#words));
    this.#now = new Int32Array(this.#words);
    this.#next = new Int32Array(this.#words);
  }

  /** Sets in `into` (from `at`) the states `code` can enter: state i when the i-th non-star token takes it. */
  #fill(code: number, into: Int32Array, at: number): void {
    for (let i = 0; i < this.#steps.length; i++) {
      if (matchesOne(this.#steps[i] as Token, code)) into[at + ((i + 1) >>> 5)]! |= 1 << ((i + 1) & 31);
    }
  }

  /** Where the masks of a code unit at or above {@link TABLE_CODES} start in `#pieces`. */
  #pieceOf(code: number): number {
    const starts = this.#starts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if ((starts[mid] as number) <= code) lo = mid;
      else hi = mid - 1;
    }
    return lo * this.#words;
  }

  matches(name: string): boolean {
    const words = this.#words;
    let now = this.#now;
    let next = this.#next;
    now.fill(0);
    now[0] = 1;
    const loops = this.#loops;
    for (let n = 0; n < name.length; n++) {
      const code = name.charCodeAt(n);
      const ascii = code < TABLE_CODES;
      const masks = ascii ? this.#table : this.#pieces;
      const at = ascii ? code * words : this.#pieceOf(code);
      let carry = 0;
      let alive = 0;
      for (let w = 0; w < words; w++) {
        const d = now[w] as number;
        const v = (((d << 1) | carry) & (masks[at + w] as number)) | (d & (loops[w] as number));
        carry = d >>> 31;
        next[w] = v;
        alive |= v;
      }
      if (alive === 0) return false;
      const swap = now;
      now = next;
      next = swap;
    }
    return ((now[this.#lastWord] as number) & this.#lastBit) !== 0;
  }
}
