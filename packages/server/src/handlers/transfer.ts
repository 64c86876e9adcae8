import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { basename, dirname, errorCodeOf, fileSizeOf, joinPath, openReadStream, openWriteStream, type FileHandleLike, type FileStats, type UploadStream, type WriteStreamOptions } from '@ftp/vfs';
import { isInvalidData, receiveFromSocket, sendToSocket, TransferError, UPLOAD_CLOSE_WAIT_MS } from '../data/transfer.js';
import { FtpError } from '../errors.js';
import { rangesSendable, refuseUnlistableName, requirePermission, takeRange, type Session } from '../session.js';
import { refuseDataSetup, runDataCommand } from './data-command.js';

function modeName(s: Session): string {
  return s.transferType === 'A' ? 'ASCII' : 'BINARY';
}

/** RETR: streams a file (from the REST offset) to the data connection. */
export async function retr(s: Session, arg: string): Promise<void> {
  const range = takeRange(s);
  let offset = takeRestOffset(s);
  requirePermission(s, 'read');
  refuseAsciiRestart(s, offset);
  const path = s.resolveFile(arg);
  // The type or mode changed after the RANG (which checked them): a converted range is not what was asked for.
  if (range && !rangesSendable(s)) throw new FtpError(551, 'RANG needs TYPE I and MODE S; the range is cleared.');
  if (range) offset = range.start;
  let source: Readable;
  let size: number;
  /** The last byte sent (inclusive). */
  let end: number;
  if (offset === 0 && range === null) {
    // A whole-file RETR opens first: a provider that records the size at open (local disk) spares the stat.
    source = await openReadStream(s.vfs, path).catch((err: unknown) => {
      // EISDIR, or EINVAL from a provider that streams regular files only (a FIFO, a device).
      const code = errorCodeOf(err);
      throw code === 'EISDIR' || code === 'EINVAL' ? new FtpError(550, `${path}: not a plain file.`) : err;
    });
    const recorded = fileSizeOf(source);
    size = recorded ?? (await statFile(s, path, source));
    end = size - 1;
  } else {
    // With REST or a range the size is checked before the open: some backends refuse a start past the end.
    size = await statFile(s, path);
    // RFC 3659 §5.4: a restart point past the end of the file is refused.
    if (!range && offset > size) throw new FtpError(554, `Restart offset ${offset} is beyond the end of the file (${size} bytes).`);
    end = range ? Math.min(range.end, size - 1) : size - 1;
    // draft-bryan-ftp-range §4.3: a range that starts at or past the end transfers 0 octets (nothing is opened).
    source = range && offset >= size ? Readable.from([]) : await openReadStream(s.vfs, path, range ? { start: offset, end } : { start: offset });
  }
  try {
    if (!s.dataSetup) throw new FtpError(425, 'Use PORT, PASV or EPSV first.');
    const expected = Math.max(0, end + 1 - offset);
    const coding = s.coding('download');
    await runDataCommand(s, 'download', path, `Opening ${modeName(s)} mode data connection for ${basename(path)} (${expected} bytes).`, async (t) => {
      await sendToSocket(t, source, coding, { sendfile: s.settings.sendfile });
      // Storage that ends a file early (a file cut short meanwhile, a remote read that ended without an error)
      // must not pass for a complete download: the bytes sent are those stored when nothing recodes them.
      if (!coding.ascii && coding.deflateLevel === null && t.bytes < expected) {
        const short = new FtpError(451, `${path}: storage ended the file after ${t.bytes} of ${expected} bytes; transfer incomplete.`);
        throw new TransferError('local', short.message, { cause: short });
      }
    });
  } finally {
    source.destroy();
  }
}

/** The size of a plain file (550 for anything else); destroys `opened` when it fails. */
async function statFile(s: Session, path: string, opened?: Readable): Promise<number> {
  try {
    const st = await s.vfs.stat(path);
    if (!st.isFile()) throw new FtpError(550, `${path}: not a plain file.`);
    return st.size;
  } catch (err) {
    opened?.destroy();
    throw err;
  }
}

/**
 * A RANG before an upload asks to write a range in place, keeping the bytes after it (draft-bryan-ftp-range §4.3),
 * which storage here cannot do: refused (and the range cleared), rather than an upload that truncates the file.
 */
function refuseRangedUpload(s: Session): void {
  // 501: the one refusal of a parameter RFC 959 §5.4 lists for STOR (504 is not among them).
  if (takeRange(s) !== null) throw new FtpError(501, 'RANG is supported with RETR and HASH only; the range is cleared.');
}

/** STOR: replaces a file, or with REST writes from the offset keeping the bytes before it. */
export function stor(s: Session, arg: string): Promise<void> {
  refuseRangedUpload(s);
  const offset = takeRestOffset(s);
  requirePermission(s, 'write');
  if (offset > 0) requirePermission(s, 'append');
  refuseAsciiRestart(s, offset);
  return store(s, s.resolveFile(arg, 553), offset > 0 ? { start: offset } : {});
}

/** APPE: appends, creating the file when missing. */
export function appe(s: Session, arg: string): Promise<void> {
  refuseRangedUpload(s);
  takeRestOffset(s);
  requirePermission(s, 'append');
  return store(s, s.resolveFile(arg, 553), { append: true });
}

/** STOU (RFC 1123 §4.1.2.9): stores under a name that does not exist yet, told in the 150 reply. */
export async function stou(s: Session, arg: string): Promise<void> {
  refuseRangedUpload(s);
  takeRestOffset(s);
  requirePermission(s, 'write');
  // The name it picks is new: store() refuses it if it holds a line break.
  const wanted = arg.trim() ? s.resolveFile(arg, 553) : joinPath(s.cwd, 'ftp-upload');
  let path = wanted;
  for (let i = 0; (await exists(s, path)) && i < 16; i++) path = `${wanted}.${randomBytes(4).toString('hex')}`;
  if (await exists(s, path)) throw new FtpError(450, 'Could not find a unique file name.');
  // RFC 1123 §4.1.2.9: the reply gives the name the file is stored under, one the client can use as it is: its name
  // alone in the working folder (as every server says it), its whole path elsewhere (`STOU dir/name`).
  return store(s, path, {}, `FILE: ${dirname(path) === s.cwd ? basename(path) : path}`);
}

/** Lookup failures that refuse an upload's name itself (see {@link store}). */
const NAME_REFUSALS: ReadonlySet<string> = new Set(['ENAMETOOLONG', 'EACCES', 'EPERM', 'ELOOP']);

async function store(s: Session, path: string, options: WriteStreamOptions, preliminary?: string): Promise<void> {
  if (path === '/') throw new FtpError(550, '/: Is a directory.');
  // A name storage refuses as such (too long, in a folder that cannot be searched, a loop of links) is answered now,
  // before a 150 the client would begin sending on; any other failure to look it up is left to the open, as ever.
  const st = await s.vfs.stat(path).catch((err: unknown) => {
    if (NAME_REFUSALS.has(errorCodeOf(err))) throw err;
    return null;
  });
  if (st?.isDirectory()) throw new FtpError(550, `${path}: Is a directory.`);
  // A FIFO, a device or a socket is refused now, before a 150 the client would begin sending on (after it, RFC 959
  // leaves only 551 for this). The open below still checks, for one that appears meanwhile.
  if (st && !st.isFile()) throw new FtpError(550, `${path}: not a plain file.`);
  // As for RETR (RFC 3659 §5.4, RFC 1123 §4.1.3.4): a restart point past the end is refused, not filled with zeros.
  const size = st?.size ?? 0;
  const pastEnd = options.start !== undefined && options.start > size;
  // A file another transfer holds is refused now (450), before a 150 the client would begin sending on: refused after
  // it (451), clients that saw their data go out resume with REST or APPE onto whatever the file holds by then.
  // Before the restart point's refusal: the size of a file being written is in flux. The ask holds a free file for
  // this upload until it opens (the session named as its owner), so that a second upload asking meanwhile is refused
  // too (both told 150 at the same moment, the second would be refused at its open, after its 150): only for an
  // upload that goes on to its 150, so what refuses it before then is checked first.
  // A new file is asked about too: two uploads of one new name announced at once are held apart by it. `st` is
  // handed on, so the provider need not look the file up again.
  // Whether the ask below takes a hold for this upload (see giveBack below).
  let holding = Boolean(s.dataSetup) && !pastEnd;
  if (s.dataSetup) {
    if (!pastEnd) refuseDataSetup(s);
    if ((await s.vfs.uploadBusy?.(path, options, pastEnd ? false : s, st)) === true) {
      throw new FtpError(450, `${path}: File busy (another transfer of it is under way), try again later.`);
    }
  }
  // The hold taken above goes with the upload's open; an upload that never opened its file (refused before its 150,
  // its data connection never came, refused at its first byte by a quota) gives it back before its final reply, or
  // other sessions' uploads of the file would be refused (450) until it expires: a client retrying at once on a new
  // connection, say. `opened` is set from the data command's callback (a holder: TypeScript does not see a variable
  // set there).
  const opened: { upload: UploadStream | null } = { upload: null };
  /** Gives the hold back (once) unless the upload opened its file, which took the hold itself; nothing to wait for if not. */
  const giveBack = (): Promise<void> | undefined => {
    if (!holding) return undefined;
    holding = false;
    if (opened.upload !== null && opened.upload.untouched !== true) return undefined;
    return s.vfs.releaseUploadHold?.(path, s).catch(() => undefined);
  };
  try {
    if (pastEnd) {
      throw new FtpError(554, `Restart offset ${options.start} is beyond the end of the file (${size} bytes).`);
    }
    // A new file needs its folder: refused now, not after a 150 the client has begun sending on (RFC 959 §4.2 has
    // no 550 after the preliminary reply; curl reported a broken pipe).
    if (st === null) {
      // A file that exists keeps its name, whatever it is; a new one may not hold a line break (see resolveNew).
      refuseUnlistableName(path);
      await requireFolder(s, dirname(path));
    }
    // The file system's own refusal (no write permission for the server's user, a read-only mount), where storage can
    // tell without opening: said now too, rather than as a 551 after the 150.
    await s.vfs.checkUpload?.(path, options, st);
    if (!s.dataSetup) throw new FtpError(425, 'Use PORT, PASV or EPSV first.');
    // The file is opened only once the data connection is up, so a client that never connects truncates nothing.
    const fresh = options.start === undefined && options.append !== true;
    // What arrived of an interrupted upload stays (APPE and REST uploads always: earlier bytes go with them). Storage
    // written in place keeps it by itself; storage that shows only complete uploads is told to store it.
    const keep = !fresh || s.settings.partialUploads === 'keep';
    const wholeOnly = s.vfs.uploadsVisibleWhenComplete === true;
    await runDataCommand(s, 'upload', path, preliminary ?? `Opening ${modeName(s)} mode data connection for ${basename(path)}.`, async (t) => {
      const upload = await openWriteStream(s.vfs, path, options).catch(async (err: unknown) => {
        // EINVAL from a provider that writes regular files only (a FIFO, a device); any other EINVAL stays as it is.
        if (errorCodeOf(err) !== 'EINVAL') throw err;
        const st = await s.vfs.stat(path).catch(() => null);
        throw st !== null && !st.isFile() ? new FtpError(550, `${path}: not a plain file.`) : err;
      });
      opened.upload = upload;
      try {
        await receiveFromSocket(t, upload, s.coding('upload'), {
          reuseBuffers: s.settings.reuseUploadBuffers,
          kernelReceive: s.settings.kernelReceive,
          waitForStorage: !wholeOnly,
          keepPartial: wholeOnly && keep,
          // The next command may be a resume of this file: it must find the partial upload stored, not overtake it.
          storeWaitMs: Math.max(UPLOAD_CLOSE_WAIT_MS, s.settings.dataStallTimeout * 1000),
        });
      } catch (err) {
        // An upload that never opened its file (opened at its first byte, refused there or ended before it) left it
        // as it was: deleting the path would delete the old file it never replaced.
        const untouched = upload.untouched === true;
        // MODE Z data that did not inflate, or whose stream the connection ended inside, wrote bytes that may not be
        // the client's (see isInvalidData): they go, whatever partialUploads says. Storage that shows only complete
        // uploads dropped them itself.
        if (isInvalidData(err)) {
          // A file that did not exist before (STOR, or an APPE creating it) goes; one that did is cut back to its size.
          if (!wholeOnly && !untouched) await discardUpload(s, path, fresh || st === null ? null : (options.start ?? size));
          throw err;
        }
        // Only a whole-file upload can be discarded: APPE and REST would take earlier bytes with them. A provider
        // whose uploads show only when complete kept the previous version: deleting the path would lose it.
        if (!keep && !wholeOnly && !untouched) {
          await s.vfs.unlink(path).catch(() => undefined);
        }
        throw err;
      }
    }, giveBack);
  } finally {
    // Refused before its data command began (a missing folder, a restart point past the end).
    await giveBack();
  }
}

/**
 * Undoes what a failed upload wrote: cuts the file back to `keep` bytes (what it held before an APPE or a REST +
 * STOR), or deletes it (a new upload). A file that cannot be cut back (storage without `truncate`, or a truncate
 * that failed) is left as it is: deleting it would take the bytes it held before the upload with it, and the client
 * was told the upload failed.
 */
async function discardUpload(s: Session, path: string, keep: number | null): Promise<void> {
  if (keep === null) {
    await s.vfs.unlink(path).catch(() => undefined);
    return;
  }
  const handle = (await s.vfs.open(path, 'r+').catch(() => null)) as FileHandleLike | null;
  let failure: unknown = handle === null ? 'it could not be opened' : 'its storage cannot truncate';
  try {
    if (handle !== null && typeof handle.truncate === 'function') {
      failure = await handle.truncate(keep).then(() => null, (err: unknown) => err);
    }
  } finally {
    await handle?.close().catch(() => undefined);
  }
  if (failure !== null) s.log.warn({ err: failure, path, keep }, 'a failed upload could not be undone: the file keeps the bytes it received');
}

/**
 * Throws 550 when `folder` is missing or is a file. Any other failure to look it up is left to the open that
 * follows, which reports it as before.
 */
async function requireFolder(s: Session, folder: string): Promise<void> {
  // The root always is one, and a session uploading many new files into one folder checks it once (a lookup is a
  // round trip on S3 or SQL): a folder removed since is then reported by the open, after the 150, as before.
  if (folder === '/' || checkedFolders.get(s) === folder) return;
  let st: FileStats;
  try {
    st = await s.vfs.stat(folder);
  } catch (err) {
    const code = errorCodeOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new FtpError(550, `${folder}: No such directory.`);
    return;
  }
  if (!st.isDirectory()) throw new FtpError(550, `${folder}: Not a directory.`);
  checkedFolders.set(s, folder);
}

/** The folder each uploading session last found to exist (see {@link requireFolder}); idle sessions hold none. */
const checkedFolders = new WeakMap<Session, string>();

/** ABOR (RFC 959 §4.1.3): the transfer ends with 426, then ABOR itself is answered 226. */
export async function abor(s: Session): Promise<void> {
  const t = s.transfer;
  if (t) {
    t.stop('aborted');
    await t.done;
    return s.reply(226, 'Abort successful.');
  }
  // A HASH stops with its own reply (426) before this one: the handler answers before it lets ABOR go on. A data
  // connection set up meanwhile (PASV before the HASH) is closed too, as ABOR says.
  const stopped = s.stopWork();
  if (stopped) {
    await stopped;
    s.setDataSetup(null);
    return s.reply(226, 'Abort successful.');
  }
  if (s.dataSetup) {
    s.setDataSetup(null);
    return s.reply(226, 'Data connection closed.');
  }
  return s.reply(225, 'No transfer to abort.');
}

function takeRestOffset(s: Session): number {
  const offset = s.restOffset;
  s.restOffset = 0;
  return offset;
}

/**
 * A restart point for RETR or STOR in TYPE A is refused. RFC 3659 §5 counts it in octets of the data stream, which in
 * TYPE A is the file converted (LF sent as CRLF), while clients resuming a text file commonly send their local file's
 * size: neither reading can be trusted, and seeking either way corrupts the result without an error (the client
 * holding `line1<CR><LF>`, 7 octets, got `ine2…`). vsftpd and pure-ftpd refuse so too. 554: RFC 1123 §4.1.3.4's
 * reply for a command after REST whose file cannot be repositioned as specified (as for a point past the end).
 */
function refuseAsciiRestart(s: Session, offset: number): void {
  if (offset > 0 && s.transferType === 'A') {
    throw new FtpError(554, `Restart offset ${offset} refused in ASCII mode (TYPE A): resume in TYPE I.`);
  }
}

/** Whether `path` (resolved) names anything in the user's storage. */
export async function exists(s: Session, path: string): Promise<boolean> {
  try {
    await s.vfs.stat(path);
    return true;
  } catch {
    return false;
  }
}
