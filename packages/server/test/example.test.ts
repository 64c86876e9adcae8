import { Readable, Writable } from 'node:stream';
import { Client } from 'basic-ftp';
import { afterAll, expect, it } from 'vitest';

// The README's example, run as written: it must keep working.
const { server } = await import('../examples/drop-box.js');

afterAll(() => server.close());

it('the drop-box example accepts uploads and lists them, but refuses downloads with 550', async () => {
  const client = new Client(10000);
  await client.access({ host: '127.0.0.1', port: server.address!.port, user: 'drop', password: 'box' });
  await client.uploadFrom(Readable.from([Buffer.from('report')]), 'report.txt');
  expect((await client.list()).map((e) => [e.name, e.size])).toEqual([['report.txt', 6]]);
  await expect(client.downloadTo(new Writable({ write: (_c, _e, cb) => cb() }), 'report.txt')).rejects.toThrow(/550/);
  client.close();
});
