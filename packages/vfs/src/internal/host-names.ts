/**
 * Host paths whose names are not UTF-8, for the local disk.
 *
 * Inside the provider a host path is a string in which a byte that is not part of valid UTF-8 is a byte escape
 * (U+DC00 + the byte, see `@ftp/protocol`'s `byte-escapes`). Node reads a name the kernel gives as UTF-8 and
 * replaces what is not with U+FFFD, and writes a string as UTF-8 (a lone surrogate as U+FFFD), so such a name
 * can neither be listed nor opened through plain strings. These helpers hand `fs` the bytes of a path that holds
 * escapes ({@link hostArg}), and read names back as bytes, decoded with escapes, when a string result shows a
 * U+FFFD.
 *
 * Names that are valid UTF-8 (nearly all) stay plain strings on the way in and out: one regex test per path and
 * one `indexOf` per name returned are all they cost. A valid name may hold U+FFFD itself; it is read again as
 * bytes, and decodes to the same string.
 *
 * @module
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { decodeEscaped, encodeEscaped, hasByteEscapes } from '@ftp/protocol';
import { VfsError } from '../errors.js';

/** What Node puts for bytes it cannot read as UTF-8. */
const REPLACEMENT = '\uFFFD';

/**
 * What to hand `fs` for host path `p`: `p` itself, or its bytes when it holds byte escapes.
 * @throws VfsError EINVAL for escapes whose bytes spell valid UTF-8 (`'\udcc3\udca9'` for `é`): no decoding gives
 *   them, and they would reach the file of the UTF-8 name under a second spelling, which a check by name (a
 *   server's permissions, say) would not recognise.
 */
export function hostArg(p: string): string | Buffer {
  if (!hasByteEscapes(p)) return p;
  const bytes = encodeEscaped(p);
  if (decodeEscaped(bytes) !== p) throw new VfsError('EINVAL', 'EINVAL: byte escapes that spell valid UTF-8');
  return bytes;
}

/** Whether Node may have replaced bytes of `name` (it holds U+FFFD): its bytes must be read to know. */
export function mayBeReplaced(name: string): boolean {
  return name.indexOf(REPLACEMENT) !== -1;
}

function anyReplaced(names: string[]): boolean {
  for (const n of names) if (n.indexOf(REPLACEMENT) !== -1) return true;
  return false;
}

/** realpath(3) of `p` (`fs.realpathSync.native`), with escapes both ways. */
export function realpathSync(p: string): string {
  const arg = hostArg(p);
  if (typeof arg === 'string') {
    const real = fs.realpathSync.native(arg);
    if (!mayBeReplaced(real)) return real;
  }
  return decodeEscaped(fs.realpathSync.native(arg, 'buffer'));
}

/** realpath(3) in the thread pool: one call, where `fs.promises.realpath` lstats every component in turn. */
export async function realpath(p: string): Promise<string> {
  const arg = hostArg(p);
  if (typeof arg === 'string') {
    const real = await new Promise<string>((resolve, reject) => fs.realpath.native(arg, (err, r) => (err ? reject(err) : resolve(r))));
    if (!mayBeReplaced(real)) return real;
  }
  return decodeEscaped(await new Promise<Buffer>((resolve, reject) => fs.realpath.native(arg, 'buffer', (err, r) => (err ? reject(err) : resolve(r)))));
}

/** The target of link `p`, with escapes both ways. */
export function readlinkSync(p: string): string {
  const arg = hostArg(p);
  if (typeof arg === 'string') {
    const target = fs.readlinkSync(arg);
    if (!mayBeReplaced(target)) return target;
  }
  return decodeEscaped(fs.readlinkSync(arg, 'buffer'));
}

/** {@link readlinkSync} in the thread pool. */
export async function readlink(p: string): Promise<string> {
  const arg = hostArg(p);
  if (typeof arg === 'string') {
    const target = await fsp.readlink(arg);
    if (!mayBeReplaced(target)) return target;
  }
  return decodeEscaped(await fsp.readlink(arg, 'buffer'));
}

/** The names in folder `p`, with escapes both ways; read again as bytes only when a name shows U+FFFD. */
export function readdirSync(p: string): string[] {
  const arg = hostArg(p);
  const names = fs.readdirSync(arg);
  if (!anyReplaced(names)) return names;
  return fs.readdirSync(arg, 'buffer').map((b) => decodeEscaped(b));
}

/** {@link readdirSync} in the thread pool. */
export async function readdir(p: string): Promise<string[]> {
  const arg = hostArg(p);
  const names = await fsp.readdir(arg);
  if (!anyReplaced(names)) return names;
  return (await fsp.readdir(arg, 'buffer')).map((b) => decodeEscaped(b));
}

/** A directory entry's name and type. */
export interface HostDirent {
  name: string;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

/** `readdirSync(p, { withFileTypes: true })`, with escapes both ways. */
export function readdirTypedSync(p: string): HostDirent[] {
  const arg = hostArg(p);
  const entries = fs.readdirSync(arg, { withFileTypes: true });
  if (!entries.some((d) => mayBeReplaced(d.name))) return entries;
  return decodedDirents(fs.readdirSync(arg, { withFileTypes: true, encoding: 'buffer' }));
}

/** {@link readdirTypedSync} in the thread pool. */
export async function readdirTyped(p: string): Promise<HostDirent[]> {
  const arg = hostArg(p);
  const entries = await fsp.readdir(arg, { withFileTypes: true });
  if (!entries.some((d) => mayBeReplaced(d.name))) return entries;
  return decodedDirents(await fsp.readdir(arg, { withFileTypes: true, encoding: 'buffer' }));
}

function decodedDirents(entries: fs.Dirent<Buffer>[]): HostDirent[] {
  return entries.map((d) => ({ name: decodeEscaped(d.name), isDirectory: () => d.isDirectory(), isSymbolicLink: () => d.isSymbolicLink() }));
}

/**
 * The first folder a recursive `mkdir` of `target` created, from what `fs.mkdir` returned (`created`, a string in
 * which Node replaced bytes that are not UTF-8): the same number of components of `target`, which has the escapes.
 */
export function firstCreated(target: string, created: string): string {
  if (!mayBeReplaced(created)) return created;
  const depth = created.split('/').length;
  return target.split('/').slice(0, depth).join('/');
}
