import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { accepts, spawnServer } from '../src/servers/process.js';

/** A loopback listener that greets like an FTP server, on a port the kernel picks. */
async function fakeServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.end('220 somebody else\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('spawnServer', () => {
  it('refuses a port that another server already answers on, instead of measuring that server', async () => {
    const other = await fakeServer();
    try {
      expect(await accepts(other.port)).toBe(true);
      // The command would greet nowhere: were the port not checked, the other server's 220 would pass for its own.
      await expect(spawnServer(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], other.port)).rejects.toThrow(/already in use/);
    } finally {
      await other.close();
    }
    expect(await accepts(other.port)).toBe(false);
  });
});
