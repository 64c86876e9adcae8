/**
 * Command line parsing (RFC 959 §5.3.1: `<command> [<SP> <argument>]`).
 *
 * @module
 */

/** A command line split into its verb and argument. */
export interface ParsedCommand {
  /** The command verb, ASCII upper-cased (`retr` → `RETR`). Empty for a blank line. */
  verb: string;
  /** Everything after the first space, exactly (inner and trailing spaces kept); `''` when none. */
  arg: string;
}

/**
 * Split a command line into verb and argument.
 *
 * Leading spaces and tabs before the verb are skipped. The verb is the text
 * up to the first space, upper-cased in ASCII only (commands are
 * case-insensitive, RFC 959 §5.3.1). The argument is kept byte for byte
 * (file names may begin or end with spaces). Never throws: a non-string
 * gives `{ verb: '', arg: '' }`.
 *
 * @param line - one line from {@link LineReader}, without its CRLF.
 * @example
 * ```ts
 * parseCommand('stor  my file.txt ') // { verb: 'STOR', arg: ' my file.txt ' }
 * ```
 */
export function parseCommand(line: string): ParsedCommand {
  if (typeof line !== 'string') return { verb: '', arg: '' };
  let start = 0;
  while (start < line.length && (line.charCodeAt(start) === 0x20 || line.charCodeAt(start) === 0x09)) start++;
  const space = line.indexOf(' ', start);
  const verb = space === -1 ? line.slice(start) : line.slice(start, space);
  const arg = space === -1 ? '' : line.slice(space + 1);
  return { verb: asciiUpper(verb), arg };
}

/** @internal Upper-case ASCII letters only (no locale or Unicode case mapping). */
export function asciiUpper(s: string): string {
  // Clients mostly send verbs in capitals already: looking allocates nothing, replacing does.
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) return s.replace(ASCII_LOWER, (m) => m.toUpperCase());
  }
  return s;
}

const ASCII_LOWER = /[a-z]+/g;
