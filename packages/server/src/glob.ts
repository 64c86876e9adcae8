/**
 * Wildcards in the last path segment of LIST/NLST (`NLST *.csv`, what `mget` sends). Only that segment, and
 * only `*`, `?` and `[...]`: no recursion, so a pattern costs one directory listing at most.
 *
 * Matched without regular expressions: a pattern compiled to a backtracking expression (`*a*a*a*a*a*b` as
 * `.*a.*a…`) took seconds per name, and the client chooses the pattern. Here a name costs at most its length
 * times the pattern's, and compiling a pattern costs its length.
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

/** A test for names against a wildcard segment: `*` any run, `?` any one character, `[a-z]`/`[!a-z]` a set. */
export function globMatcher(segment: string): (name: string) => boolean {
  const tokens = compile(segment);
  return (name) => matches(tokens, name);
}

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

/**
 * The classic wildcard walk: on a mismatch, only the last `*` seen takes one more character. Every other way to
 * split the name is covered by that one, so nothing earlier is ever revisited.
 */
function matches(tokens: readonly Token[], name: string): boolean {
  let t = 0;
  let n = 0;
  let star = -1;
  let starAt = 0;
  while (n < name.length) {
    const token = tokens[t];
    if (token !== undefined && token.kind === 'star') {
      star = t++;
      starAt = n;
    } else if (token !== undefined && matchesOne(token, name.charCodeAt(n))) {
      t++;
      n++;
    } else if (star !== -1) {
      t = star + 1;
      n = ++starAt;
    } else return false;
  }
  while (tokens[t]?.kind === 'star') t++;
  return t === tokens.length;
}
