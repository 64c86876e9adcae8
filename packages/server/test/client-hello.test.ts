import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { connect as tlsConnect, type SecureVersion } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { helloVersions, offeredTlsVersions, TLS12 } from '../src/client-hello.js';

/** The versions a Node TLS client with these bounds offers, as the server reads them before its handshake. */
async function offered(minVersion: SecureVersion, maxVersion: SecureVersion): Promise<{ versions: number[] | null; rest: Buffer }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, minVersion, maxVersion });
  client.on('error', () => {});
  const [socket] = await accepted;
  try {
    const versions = await offeredTlsVersions(socket, 5000);
    // What was read is put back: the handshake reads the whole ClientHello again.
    const rest = socket.read() as Buffer;
    return { versions, rest };
  } finally {
    client.destroy();
    socket.destroy();
    server.close();
  }
}

describe('the TLS versions a ClientHello offers', () => {
  it('reads supported_versions from a TLS 1.3 client, the legacy version from a TLS 1.2-only one, and puts the bytes back', async () => {
    const both = await offered('TLSv1.2', 'TLSv1.3');
    expect(both.versions).toEqual(expect.arrayContaining([0x0304, TLS12]));
    expect(helloVersions(both.rest)).toEqual(both.versions);
    const only13 = await offered('TLSv1.3', 'TLSv1.3');
    expect(only13.versions).toEqual([0x0304]);
    const only12 = await offered('TLSv1.2', 'TLSv1.2');
    expect(only12.versions).toContain(TLS12);
    expect(only12.versions).not.toContain(0x0304);
  });

  it('waits for a record that comes in pieces, and answers null for what is no ClientHello', () => {
    expect(helloVersions(Buffer.from([22, 3, 1]))).toBe('incomplete');
    expect(helloVersions(Buffer.from([22, 3, 1, 0, 50, 1, 0]))).toBe('incomplete');
    expect(helloVersions(Buffer.from('GET / HTTP/1.1\r\n'))).toBeNull();
    expect(helloVersions(Buffer.from([22, 3, 1, 0, 4, 2, 0, 0, 0]))).toBeNull();
    // A ClientHello without extensions offers its legacy version.
    const hello = Buffer.concat([Buffer.from([1, 0, 0, 0, 3, 3]), Buffer.alloc(32), Buffer.from([0, 0, 2, 0, 0x2f, 1, 0])]);
    hello.writeUIntBE(hello.length - 4, 1, 3);
    const record = Buffer.concat([Buffer.from([22, 3, 1, 0, hello.length]), hello]);
    expect(helloVersions(record)).toEqual([TLS12]);
  });

  it('never throws, whatever the bytes: every cut of a real ClientHello and random bytes behind a handshake header', async () => {
    // A 9- or 10-byte record (`16 03 01 00 04 01 00 00 00`) was read past its end, from a socket's 'readable'
    // handler: the process ended.
    expect(helloVersions(Buffer.from('160301000401000000', 'hex'))).toBeNull();
    expect(helloVersions(Buffer.from('16030300050100000100', 'hex'))).toBeNull();
    const { rest } = await offered('TLSv1.2', 'TLSv1.3');
    const record = rest.subarray(0, 5 + rest.readUInt16BE(3));
    for (let cut = 0; cut <= record.length; cut++) {
      const part = Buffer.from(record.subarray(0, cut));
      // The record's own length said to be the cut: a record that ends there.
      if (cut >= 5) part.writeUInt16BE(cut - 5, 3);
      expect(() => helloVersions(part), `cut at ${cut}`).not.toThrow();
      if (cut >= 9) {
        part.writeUIntBE(Math.max(0, cut - 9), 6, 3);
        expect(() => helloVersions(part), `cut at ${cut}, handshake length agreeing`).not.toThrow();
      }
    }
    let seed = 12345;
    const random = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
    for (let i = 0; i < 20_000; i++) {
      const length = random() % 80;
      const buf = Buffer.from([22, 3, 1, 0, length, 1, ...Array.from({ length }, random)]);
      expect(() => helloVersions(buf)).not.toThrow();
    }
  });

  it('a record too short to hold a ClientHello is no guess: the handler neither throws nor waits', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const { connect } = await import('node:net');
    const client = connect(port, '127.0.0.1');
    const [socket] = await accepted;
    try {
      client.write(Buffer.from('160301000401000000', 'hex'));
      expect(await offeredTlsVersions(socket, 5000)).toBeNull();
    } finally {
      client.destroy();
      socket.destroy();
      server.close();
    }
  });
});
