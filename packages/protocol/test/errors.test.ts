import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../src/index.js';

describe('ProtocolError', () => {
  it('carries a code, a name and the usual reply code', () => {
    const e = new ProtocolError('BAD_ARGUMENT', 'nope');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('ProtocolError');
    expect(e.message).toBe('nope');
    expect(e.code).toBe('BAD_ARGUMENT');
    expect(e.replyCode).toBe(501);
    expect(new ProtocolError('UNSUPPORTED', 'x').replyCode).toBe(504);
    expect(new ProtocolError('UNSUPPORTED_NETWORK', 'x').replyCode).toBe(522);
    expect(new ProtocolError('LINE_TOO_LONG', 'x').replyCode).toBe(500);
  });

  it('keeps a cause', () => {
    const cause = new Error('inner');
    expect(new ProtocolError('BAD_ARGUMENT', 'outer', { cause }).cause).toBe(cause);
  });

  it('isInstance recognises its own errors and rejects others', () => {
    expect(ProtocolError.isInstance(new ProtocolError('UNSUPPORTED', 'x'))).toBe(true);
    expect(ProtocolError.isInstance(new Error('x'))).toBe(false);
    expect(ProtocolError.isInstance(null)).toBe(false);
    expect(ProtocolError.isInstance(undefined)).toBe(false);
    expect(ProtocolError.isInstance('ProtocolError')).toBe(false);
    expect(ProtocolError.isInstance({ code: 'BAD_ARGUMENT', name: 'ProtocolError' })).toBe(false);
  });

  it('isInstance works across duplicate installs (Symbol.for brand)', () => {
    // An error made by "another copy" of the package: a different class, same global brand.
    class OtherCopy extends Error {}
    Object.defineProperty(OtherCopy.prototype, Symbol.for('@ftp/protocol.ProtocolError'), { value: true });
    expect(ProtocolError.isInstance(new OtherCopy('x'))).toBe(true);
  });
});
