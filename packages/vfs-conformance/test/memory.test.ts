import { MemoryProvider } from '@ftp/vfs';
import type { FsProvider } from '@ftp/vfs';
import { describeProvider } from '../src/index.js';

describeProvider('MemoryProvider', () => new MemoryProvider(), { contentInMemory: true });

/**
 * Only the core of the contract (no capability, no lstat, no symlinks): every transfer and listing goes through the
 * fallbacks of @ftp/vfs (file handles, readdir + stat). Also exercises `skip`.
 */
function coreOnly(): FsProvider {
  const m = new MemoryProvider();
  return {
    stat: (p) => m.stat(p),
    readdir: (p) => m.readdir(p),
    mkdir: (p, o) => m.mkdir(p, o),
    rmdir: (p) => m.rmdir(p),
    unlink: (p) => m.unlink(p),
    rename: (a, b) => m.rename(a, b),
    open: (p, f, mode) => m.open(p, f, mode),
  };
}

describeProvider('core-only provider (fallback paths)', coreOnly, {
  contentInMemory: true,
  largeFileBytes: 16 * 1024 * 1024,
  skip: [
    'space: exercising the skip option (this provider has no space capability anyway)',
    // Its uploads are the file-handle fallback of openWriteStream: two handles of one file write in place, as two
    // descriptors of one disk file do, and nothing in the fallback can keep two uploads apart (the providers must).
    'concurrent-writers: uploads through file handles write in place and interleave; keeping writers apart is the provider streams\' job',
  ],
});
