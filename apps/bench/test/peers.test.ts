import { describe, expect, it } from 'vitest';
import { output } from '../src/peers.js';

describe('output', () => {
  it('reports a command that exits without reading a large input by its exit code, not an EPIPE crash', async () => {
    // `true` exits at once; 8 MiB does not fit in a pipe, so writing it fails with EPIPE.
    await expect(output('true', [], { input: 'x'.repeat(8 * 1024 * 1024) })).resolves.toBe('');
    await expect(output('false', [], { input: 'x'.repeat(8 * 1024 * 1024) })).rejects.toThrow(/exited 1/);
  });
});
