// The bench's C helpers build with the machine's cc and run: the memory warm-up before upload runs.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { nativeTool, prefault } from '../src/native-tools.js';

const run = promisify(execFile);

describe('native tools', () => {
  it('prefault touches and frees the memory asked for, and refuses a size that is no size', async () => {
    const seconds = await prefault(64);
    expect(seconds).toBeGreaterThanOrEqual(0);
    expect(seconds).toBeLessThan(30);
    const binary = await nativeTool('prefault', 'the memory warm-up');
    await expect(run(binary, ['0'])).rejects.toMatchObject({ code: 2 });
    await expect(run(binary, ['lots'])).rejects.toMatchObject({ code: 2 });
  });

  it('a tool whose source is missing fails, naming it, and is tried again on the next call', async () => {
    await expect(nativeTool('no-such-tool', 'a missing tool')).rejects.toThrow(/a missing tool \(native\/no-such-tool\.c\)/);
    await expect(nativeTool('no-such-tool', 'a missing tool')).rejects.toThrow(/no-such-tool/);
  });
});
