// openBeneath on real folders: what it opens, and every way out it refuses (returning null, nothing opened).
import { closeSync, constants, fstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openBeneath, openBeneathOrErrno, openBeneathUnavailableReason, openPathFlag } from '../src/index.js';

const unavailable = openBeneathUnavailableReason();
const onCI = process.env.CI === 'true';
if (unavailable !== null && !onCI) console.warn(`\n*** @ftp/native: SKIPPING the openBeneath tests: ${unavailable}.\n`);

// Elsewhere the tests below skip when it is missing, saying why (the warning above); on CI it must be there.
test.runIf(onCI)('openBeneath is available on CI (CI=true)', () => {
  expect(unavailable, 'on CI the addon must be built and the kernel have openat2').toBeNull();
});

describe.skipIf(unavailable !== null)('openBeneath', () => {
  let base = '';
  let root = '';
  const fds = (): number => readdirSync('/proc/self/fd').length;
  beforeAll(() => {
    // Its real path: the root is opened without following links, and TMPDIR may run through one.
    base = realpathSync(mkdtempSync(join(tmpdir(), 'native-open-')));
    root = join(base, 'root');
    mkdirSync(join(root, 'd'), { recursive: true });
    writeFileSync(join(root, 'd', 'f'), 'inside');
    writeFileSync(join(base, 'secret'), 'outside');
    symlinkSync('f', join(root, 'd', 'rel'));
    symlinkSync(join(root, 'd', 'f'), join(root, 'abs-inside'));
    symlinkSync('../secret', join(root, 'rel-out'));
    symlinkSync('/proc/self/root/etc/hostname', join(root, 'magic'));
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  const contents = (fd: number): string => {
    const buf = Buffer.alloc(64);
    const n = readSync(fd, buf, 0, 64, 0);
    closeSync(fd);
    return buf.toString('utf8', 0, n);
  };

  test('opens paths below the root, relative links inside it followed, close-on-exec', () => {
    expect(contents(openBeneath(root, 'd/f', constants.O_RDONLY)!)).toBe('inside');
    expect(contents(openBeneath(root, 'd/rel', constants.O_RDONLY)!)).toBe('inside');
    expect(contents(openBeneath(root, 'd/../d/f', constants.O_RDONLY)!)).toBe('inside');
    const fd = openBeneath(root, 'd/f', constants.O_RDONLY)!;
    expect(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')).toMatch(/^flags:\s*0[0-7]*2[0-7]{6}$/m); // O_CLOEXEC (02000000)
    closeSync(fd);
  });

  test('refuses every way out, and an absolute link even to inside (null: the caller checks it the careful way)', () => {
    const before = fds();
    for (const path of ['../secret', 'rel-out', 'abs-inside', 'magic', '/etc/hostname', 'd/../../secret']) {
      expect(openBeneath(root, path, constants.O_RDONLY), path).toBeNull();
    }
    expect(fds()).toBe(before);
  });

  test('null for what does not open: missing, a NUL byte, a root that is not a folder', () => {
    expect(openBeneath(root, 'nope', constants.O_RDONLY)).toBeNull();
    expect(openBeneath(root, 'd/f\u0000x', constants.O_RDONLY)).toBeNull();
    expect(openBeneath(join(root, 'd', 'f'), 'x', constants.O_RDONLY)).toBeNull();
    expect(openBeneath(join(base, 'missing'), 'x', constants.O_RDONLY)).toBeNull();
  });

  test('creates with the mode given (O_CREAT), and only below the root', () => {
    const fd = openBeneath(root, 'd/new', constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o640)!;
    expect(fd).toBeGreaterThanOrEqual(0);
    expect(fstatSync(fd).isFile()).toBe(true);
    closeSync(fd);
    expect(statSync(join(root, 'd', 'new')).mode & 0o777).toBe(0o640 & ~process.umask());
    expect(openBeneath(root, '../created-outside', constants.O_WRONLY | constants.O_CREAT, 0o644)).toBeNull();
    expect(() => statSync(join(base, 'created-outside'))).toThrow();
  });

  test('a root swapped for a link (to a folder elsewhere) opens nothing: never a root somewhere else', () => {
    const elsewhere = join(base, 'elsewhere');
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, 'f'), 'elsewhere');
    const swapped = join(base, 'swapped');
    symlinkSync(elsewhere, swapped);
    expect(openBeneath(swapped, 'f', constants.O_RDONLY)).toBeNull();
    expect(openBeneath(swapped, 'new', constants.O_WRONLY | constants.O_CREAT, 0o644)).toBeNull();
    expect(readdirSync(elsewhere)).toEqual(['f']);
    // A link anywhere in the root's own path, too.
    symlinkSync(root, join(base, 'root-link'));
    expect(openBeneath(join(base, 'root-link'), 'd/f', constants.O_RDONLY)).toBeNull();
  });

  test('a path too long only once cut inside a character opens nothing, never the shorter path', () => {
    // A relative path of 4094 bytes that exists; with '€' (3 bytes) it is 4097, past PATH_MAX (4096): a copy cut
    // to fit (4096 bytes and a NUL) would stop before the '€', at the existing file.
    const deep = join(root, 'deep');
    let rel = 'deep';
    mkdirSync(deep);
    while (rel.length < 4095 - 3 - 2 - 200) {
      rel += `/${'x'.repeat(199)}`;
      mkdirSync(join(root, rel));
    }
    const name = 'y'.repeat(4094 - 1 - rel.length);
    rel += `/${name}`;
    expect(Buffer.byteLength(rel)).toBe(4094);
    // Its absolute path is past PATH_MAX: made, and read back, relative to the root.
    const made = openBeneath(root, rel, constants.O_WRONLY | constants.O_CREAT, 0o644)!;
    writeSync(made, 'shorter');
    closeSync(made);
    expect(contents(openBeneath(root, rel, constants.O_RDONLY)!)).toBe('shorter');
    expect(openBeneath(root, `${rel}€`, constants.O_RDONLY)).toBeNull();
    expect(openBeneath(root, `${rel}€`, constants.O_WRONLY | constants.O_TRUNC)).toBeNull();
    expect(contents(openBeneath(root, rel, constants.O_RDONLY)!)).toBe('shorter');
  });

  test('openBeneathOrErrno says why nothing opened: ENOENT below the root (or a root gone), EXDEV on the way out, ENOTDIR through a file', () => {
    const { ENOENT, EXDEV, ENOTDIR } = osConstants.errno;
    const before = fds();
    expect(openBeneathOrErrno(root, 'd/missing', constants.O_RDONLY)).toBe(-ENOENT);
    expect(openBeneathOrErrno(root, 'no-folder/missing', constants.O_RDONLY)).toBe(-ENOENT);
    expect(openBeneathOrErrno(root, 'rel-out', constants.O_RDONLY)).toBe(-EXDEV);
    expect(openBeneathOrErrno(root, 'abs-inside', constants.O_RDONLY)).toBe(-EXDEV);
    expect(openBeneathOrErrno(root, 'd/f/x', constants.O_RDONLY)).toBe(-ENOTDIR);
    expect(openBeneathOrErrno(join(base, 'gone'), 'f', constants.O_RDONLY)).toBe(-ENOENT);
    expect(fds()).toBe(before);
    const fd = openBeneathOrErrno(root, 'd/f', constants.O_RDONLY)!;
    expect(fd).toBeGreaterThanOrEqual(0);
    expect(contents(fd)).toBe('inside');
  });

  test('openPathFlag (O_PATH): a FIFO is looked up without waiting for a writer; fstat works; with O_NOFOLLOW a link is itself', () => {
    const pathOnly = openPathFlag()!;
    expect(pathOnly).toBeGreaterThan(0);
    execFileSync('mkfifo', [join(root, 'd', 'pipe')]);
    try {
      const fifo = openBeneath(root, 'd/pipe', pathOnly)!;
      expect(fstatSync(fifo).isFIFO()).toBe(true);
      closeSync(fifo);
      const link = openBeneath(root, 'd/rel', pathOnly | constants.O_NOFOLLOW)!;
      expect(fstatSync(link).isSymbolicLink()).toBe(true);
      closeSync(link);
      const target = openBeneath(root, 'd/rel', pathOnly)!;
      expect(fstatSync(target).size).toBe(6);
      closeSync(target);
    } finally {
      rmSync(join(root, 'd', 'pipe'));
    }
  });

  test('FTP_NATIVE_OPEN=0 turns it off', () => {
    process.env.FTP_NATIVE_OPEN = '0';
    try {
      expect(openBeneath(root, 'd/f', constants.O_RDONLY)).toBeNull();
      expect(openBeneathOrErrno(root, 'd/f', constants.O_RDONLY)).toBeNull();
      expect(openBeneathUnavailableReason()).toMatch(/FTP_NATIVE_OPEN=0/);
    } finally {
      delete process.env.FTP_NATIVE_OPEN;
    }
  });
});
