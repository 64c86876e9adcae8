// A drop box: clients may upload and list, never download. The custom provider is an ordinary
// @ftp/vfs provider with reads refused; everything else (listing, uploads, REST) comes for free.
import { FtpServer } from '@ftp/server';
import { MemoryProvider, vfsError, type ReadStreamOptions } from '@ftp/vfs';
import type { Readable } from 'node:stream';

class DropBox extends MemoryProvider {
  override async createReadStream(path: string, _options?: ReadStreamOptions): Promise<Readable> {
    throw vfsError('EACCES', 'downloads are disabled', path);
  }
}

const box = new DropBox();
export const server = new FtpServer({
  driver: { authenticate: (_s, user, pass) => (user === 'drop' && pass === 'box' ? { fs: box } : null) },
});
server.on('transfer', (t) => console.log(`${t.direction} ${t.path}: ${t.bytes} bytes, ${t.outcome}`));
const { port } = await server.listen(0, '127.0.0.1');
console.log(`ftp://drop:box@127.0.0.1:${port}`);
