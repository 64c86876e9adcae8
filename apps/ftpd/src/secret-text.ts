/**
 * Guards against printing secret material in errors. A field meant to hold a file's path can end up holding the
 * file itself (an `_FILE` override or `fromFile` on a path field reads the file into the field), and an error about
 * that "path" (ENOENT, open '…') would then print a private key to the terminal and into the log.
 */

const PEM_BLOCK = /-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(?:-----END [A-Z0-9 ]+-----|$)/g;

/** Whether a value meant to be a path holds a file's content instead: PEM text, or several lines. */
export function looksLikeFileContent(value: string): boolean {
  return value.includes('-----BEGIN ') || /[\r\n]/.test(value);
}

/** The text with every PEM block (complete or cut short) replaced by a placeholder. */
export function withoutPem(text: string): string {
  return text.replace(PEM_BLOCK, '[PEM text not shown]');
}
