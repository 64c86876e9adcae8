/**
 * Wildcards in the last path segment of LIST/NLST (`NLST *.csv`, what `mget` sends). Only that segment, and
 * only `*`, `?` and `[...]`: no recursion, so a pattern costs one directory listing at most.
 */
export function isGlob(segment: string): boolean {
  return /[*?[]/.test(segment);
}

/** Compiles a wildcard segment to an anchored regular expression. */
export function globToRegExp(segment: string): RegExp {
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i] as string;
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '[') {
      const end = segment.indexOf(']', i + 2);
      if (end === -1) {
        out += '\\[';
        continue;
      }
      let body = segment.slice(i + 1, end);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      const set = `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      if (!isValidSet(set)) {
        // A set the client cannot have meant (a range out of order, `[z-a]`): its `[` is an ordinary character.
        out += '\\[';
        continue;
      }
      out += set;
      i = end;
    } else out += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${out}$`, 's');
}

function isValidSet(set: string): boolean {
  try {
    new RegExp(set);
    return true;
  } catch {
    return false;
  }
}
