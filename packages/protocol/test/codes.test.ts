import { describe, expect, it } from 'vitest';
import { ReplyCode } from '../src/index.js';
import type { ReplyCodeValue } from '../src/index.js';

describe('ReplyCode', () => {
  it('has the RFC 959 values', () => {
    expect(ReplyCode.ServiceReady).toBe(220);
    expect(ReplyCode.PathCreated).toBe(257);
    expect(ReplyCode.FileActionPending).toBe(350);
    expect(ReplyCode.SyntaxErrorInArguments).toBe(501);
    expect(ReplyCode.ParameterNotImplemented).toBe(504);
    expect(ReplyCode.FileNameNotAllowed).toBe(553);
  });

  it('uses the RFC 2228 / 4217 / 2428 / 3659 codes', () => {
    expect(ReplyCode.AuthOk).toBe(234);
    expect(ReplyCode.PolicyRequiresSecure).toBe(534);
    expect(ReplyCode.ProtectionLevelNotSupported).toBe(536);
    expect(ReplyCode.NetworkProtocolNotSupported).toBe(522);
    expect(ReplyCode.EnteringExtendedPassiveMode).toBe(229);
    expect(ReplyCode.InvalidRestParameter).toBe(554);
  });

  it('every code is a distinct 3-digit number', () => {
    const values: ReplyCodeValue[] = Object.values(ReplyCode);
    expect(new Set(values).size).toBe(values.length);
    for (const v of values) {
      expect(v).toBeGreaterThanOrEqual(100);
      expect(v).toBeLessThan(700);
    }
  });
});
