/**
 * The one error type thrown by `@ftp/protocol`.
 *
 * Every parser and formatter in this package rejects bad input with a
 * {@link ProtocolError} and never with anything else (no `TypeError`,
 * `RangeError`…), whatever it is fed.
 *
 * @module
 */

/** Brand shared by every copy of this package, so `isInstance` works across duplicate installs. */
const BRAND: unique symbol = Symbol.for('@ftp/protocol.ProtocolError');

/**
 * Stable error codes.
 *
 * - `BAD_ARGUMENT`: the input is malformed. A server answers
 *   `501 Syntax error in parameters or arguments` (RFC 959 §4.2.1).
 * - `UNSUPPORTED`: the input is well formed but names something this package
 *   does not implement (`TYPE E`, `MODE B`). A server answers
 *   `504 Command not implemented for that parameter` (RFC 959 §4.2.1).
 * - `UNSUPPORTED_NETWORK`: EPRT or EPSV names a network protocol other than
 *   1 (IPv4) and 2 (IPv6). A server answers `522 Network protocol not
 *   supported, use (1,2)` (RFC 2428 §2, §3).
 * - `LINE_TOO_LONG`: a command line exceeded the configured maximum. The
 *   line reader reports this as an `overflow` event rather than throwing;
 *   the code exists so a caller can raise it itself. A server answers `500`.
 */
export type ProtocolErrorCode = 'BAD_ARGUMENT' | 'UNSUPPORTED' | 'UNSUPPORTED_NETWORK' | 'LINE_TOO_LONG';

const REPLY_CODES: Readonly<Record<ProtocolErrorCode, number>> = {
  BAD_ARGUMENT: 501,
  UNSUPPORTED: 504,
  UNSUPPORTED_NETWORK: 522,
  LINE_TOO_LONG: 500,
};

/**
 * Error thrown by every codec of this package on bad input.
 *
 * @example
 * ```ts
 * try {
 *   parseType('E');
 * } catch (err) {
 *   if (ProtocolError.isInstance(err)) reply(err.replyCode, err.message); // 504
 * }
 * ```
 */
export class ProtocolError extends Error {
  /** Stable, machine-readable code. */
  readonly code: ProtocolErrorCode;

  /**
   * Create an error.
   * @param code - the stable code.
   * @param message - a human-readable message, safe to send to a client
   *   (it never echoes more than a short, sanitised part of the input).
   * @param options - standard `ErrorOptions` (`cause`).
   */
  constructor(code: ProtocolErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProtocolError';
    this.code = code;
  }

  /**
   * The FTP reply code a server usually sends for this error:
   * 501 for `BAD_ARGUMENT`, 504 for `UNSUPPORTED`, 522 for `UNSUPPORTED_NETWORK`,
   * 500 for `LINE_TOO_LONG`.
   */
  get replyCode(): number {
    return REPLY_CODES[this.code];
  }

  /**
   * Whether `e` is a `ProtocolError`, even one created by another copy of
   * this package (checks a `Symbol.for` brand, not the prototype chain).
   * @param e - any value.
   */
  static isInstance(e: unknown): e is ProtocolError {
    return (
      typeof e === 'object' &&
      e !== null &&
      (e as { [BRAND]?: unknown })[BRAND] === true
    );
  }
}

Object.defineProperty(ProtocolError.prototype, BRAND, { value: true });

/** @internal Throw a `BAD_ARGUMENT` error. */
export function badArgument(message: string): never {
  throw new ProtocolError('BAD_ARGUMENT', message);
}

/** @internal Throw an `UNSUPPORTED` error. */
export function unsupported(message: string): never {
  throw new ProtocolError('UNSUPPORTED', message);
}

/** @internal Throw an `UNSUPPORTED_NETWORK` error (EPRT/EPSV, RFC 2428). */
export function unsupportedNetwork(): never {
  throw new ProtocolError('UNSUPPORTED_NETWORK', 'Network protocol not supported, use (1,2)');
}

/** @internal Assert that `value` is a string, else throw `BAD_ARGUMENT`. */
export function expectString(value: unknown, what: string): string {
  if (typeof value !== 'string') badArgument(`${what} must be a string`);
  return value;
}

/** @internal A short, printable excerpt of untrusted input for error messages. */
export function excerpt(value: string, max = 40): string {
  // eslint-disable-next-line no-control-regex
  const clean = value.slice(0, max).replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return value.length > max ? `${clean}…` : clean;
}
