// Compiles the addon (addon.c, values.c, sendfile.c, lstat.c, open.c, socket-queue.c, heap-trim.c) into dist/native.node with the machine's C compiler,
// against the headers of the Node that runs this script (the `node` npm package and Node's own tarballs ship them
// in include/node; Debian's are in /usr/include/node). N-API is ABI-stable, so any Node >= 22 headers do for any
// later Node.
//
// Without Linux, a C compiler or the headers, nothing is built and the package says so at runtime
// (`sendfileUnavailableReason()` and the others): transfers copy through buffers, listings and opens use `fs`.
// FTP_NATIVE_REQUIRED=1 (CI) makes a failed build fail the install instead. It replaces an addon already built only once the new one is complete.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(here, '../../dist/native.node');
const required = process.env.FTP_NATIVE_REQUIRED === '1';

function skip(reason) {
  const kept = existsSync(out) ? `; the addon built before stays (${out})` : '; transfers copy through buffers, listings and opens use fs instead';
  const message = `@ftp/native: not built (${reason})${kept}`;
  if (required) {
    console.error(`${message}, and FTP_NATIVE_REQUIRED=1`);
    process.exit(1);
  }
  console.warn(message);
  process.exit(0);
}

if (process.platform !== 'linux') skip(`the addon is for Linux; this is ${process.platform}`);

const candidates = [
  resolve(dirname(process.execPath), '../include/node'),
  process.env.npm_config_nodedir ? join(process.env.npm_config_nodedir, 'include/node') : null,
  '/usr/include/node',
  '/usr/local/include/node',
].filter((dir) => dir !== null && existsSync(join(dir, 'node_api.h')));
if (candidates.length === 0) skip("no Node headers (node_api.h) beside this Node or in /usr/include/node");

const compiler = process.env.CC || 'cc';
const partial = `${out}.${process.pid}.tmp`;
mkdirSync(dirname(out), { recursive: true });
try {
  execFileSync(compiler, ['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-Werror', `-I${candidates[0]}`, ...['addon.c', 'values.c', 'sendfile.c', 'lstat.c', 'open.c', 'socket-queue.c', 'heap-trim.c'].map((f) => join(here, f)), '-o', partial, '-lpthread', '-Wl,-z,nodelete'], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  // Renamed into place: a Node loading the addon meanwhile sees the old one or the new one, never half of one.
  renameSync(partial, out);
} catch (err) {
  rmSync(partial, { force: true });
  skip(`${compiler} failed: ${err.code ?? err.status ?? err.message}`);
}
