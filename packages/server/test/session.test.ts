import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Socket } from 'node:net';
import { openWriteStream } from '@ftp/vfs';
import type { TransferEvent } from '../src/index.js';
import { PASSWORD, RawClient, readAll, startServer, USER, writeAndClose } from './helpers.js';

let ctx: Awaited<ReturnType<typeof startServer>>;
let c: RawClient;

beforeEach(async () => {
  ctx = await startServer();
  c = await RawClient.connect(ctx.port);
});
afterEach(async () => {
  c.close();
  await ctx.close();
});

describe('before login', () => {
  it('greets with 220 and refuses file commands with 530', async () => {
    expect((await c.next()).code).toBe(220);
    for (const cmd of ['PWD', 'LIST', 'RETR x', 'CWD /', 'PASV', 'STAT']) expect((await c.cmd(cmd)).code, cmd).toBe(530);
  });

  it('answers SYST, FEAT, HELP, NOOP before login', async () => {
    await c.next();
    expect(await c.cmd('SYST')).toMatchObject({ code: 215, text: 'UNIX Type: L8' });
    const feat = await c.cmd('FEAT');
    expect(feat.code).toBe(211);
    for (const f of ['EPSV', 'EPRT', 'MDTM', 'SIZE', 'REST STREAM', 'UTF8', 'PASV']) expect(feat.lines).toContain(` ${f}`);
    expect(feat.lines.some((l) => l.startsWith(' MLST type*;'))).toBe(true);
    expect((await c.cmd('HELP')).code).toBe(214);
    // Without TLS (this server has none), the TLS commands are not listed as recognized.
    expect((await c.cmd('HELP')).text).not.toMatch(/\b(AUTH|PBSZ|PROT)\b/);
    expect((await c.cmd('HELP RETR')).text).toContain('RETR <path>');
    expect((await c.cmd('NOOP')).code).toBe(200);
  });

  it('refuses a wrong password with 530 without telling whether the user exists', async () => {
    await c.next();
    expect((await c.cmd('USER nobody')).code).toBe(331);
    const a = await c.cmd('PASS x');
    expect((await c.cmd('USER alice')).code).toBe(331);
    const b = await c.cmd('PASS x');
    expect(a).toEqual(b);
    expect(a.code).toBe(530);
  });

  it('PASS without USER is a bad sequence (503)', async () => {
    await c.next();
    expect((await c.cmd('PASS x')).code).toBe(503);
  });
});

describe('command syntax', () => {
  beforeEach(() => c.login());

  it('500 for unknown commands, 502 for known but unimplemented ones', async () => {
    expect((await c.cmd('FROB x')).code).toBe(500);
    expect((await c.cmd('SMNT /x')).code).toBe(502);
    // RFC 1639's long addresses and RFC 2228's other security mechanisms are known commands, not unknown ones.
    for (const line of ['LPRT 4,4,127,0,0,1,2,19,136', 'LPSV', 'ADAT eA==', 'MIC eA==', 'CONF eA==', 'ENC eA==']) {
      expect((await c.cmd(line)).code, line).toBe(502);
    }
  });

  it('HELP lines its columns up, the longest verb included', async () => {
    const rows = (await c.cmd('HELP')).text.split('\n').filter((l) => l.startsWith(' '));
    expect(rows.some((r) => r.includes('XSHA256'))).toBe(true);
    const starts = (row: string): number[] => [...row.matchAll(/\S+/g)].map((m) => m.index);
    const first = starts(rows[0]!);
    for (const row of rows) expect(starts(row)).toEqual(first.slice(0, starts(row).length));
  });

  it('CWD with no argument, or an empty one, goes home (RFC 1738: tnftp sends "CWD " for ftp://host//path)', async () => {
    expect((await c.cmd('MKD cwd-home')).code).toBe(257);
    for (const line of ['CWD', 'CWD ', 'XCWD']) {
      expect((await c.cmd('CWD cwd-home')).code).toBe(250);
      expect((await c.cmd(line)).code, line).toBe(250);
      expect((await c.cmd('PWD')).text, line).toMatch(/^"\/"/);
    }
    expect((await c.cmd('RMD cwd-home')).code).toBe(250);
    // A user whose home is not the root goes back to it.
    await ctx.fs.mkdir('/homes');
    await ctx.fs.mkdir('/homes/bob');
    const other = await startServer({ fs: ctx.fs, driver: { authenticate: (_s, user, pass) => (user === USER && pass === PASSWORD ? { fs: ctx.fs, home: '/homes/bob' } : null) } });
    const d = await RawClient.connect(other.port);
    try {
      await d.login();
      expect((await d.cmd('CWD /')).code).toBe(250);
      expect((await d.cmd('CWD')).code).toBe(250);
      expect((await d.cmd('PWD')).text).toMatch(/^"\/homes\/bob"/);
    } finally {
      d.close();
      await other.close();
    }
  });

  it('501 for missing or bad arguments', async () => {
    expect((await c.cmd('MKD')).code).toBe(501);
    expect((await c.cmd('PORT 1,2,3')).code).toBe(501);
    expect((await c.cmd('EPRT |1|999.1.1.1|80|')).code).toBe(501);
    expect((await c.cmd('REST -5')).code).toBe(501);
    expect((await c.cmd('TYPE Q')).code).toBe(501);
    expect((await c.cmd('PWD extra')).code).toBe(501);
  });

  it('504 for well-formed but unsupported parameters', async () => {
    expect((await c.cmd('TYPE E')).code).toBe(504);
    expect((await c.cmd('MODE B')).code).toBe(504);
    expect((await c.cmd('STRU R')).code).toBe(504);
  });

  it('accepts TYPE A, I, L 8, MODE S, STRU F and lower-case verbs', async () => {
    for (const cmd of ['TYPE A', 'TYPE A N', 'TYPE I', 'TYPE L 8', 'MODE S', 'STRU F', 'type i']) expect((await c.cmd(cmd)).code, cmd).toBe(200);
  });

  it('answers a 1 MiB line with 500 and stays usable', async () => {
    c.send('NOOP ' + 'x'.repeat(1024 * 1024));
    expect((await c.next()).code).toBe(500);
    expect((await c.cmd('NOOP')).code).toBe(200);
  });

  it('survives garbage bytes and Telnet sequences', async () => {
    c.send(Buffer.from([0xff, 0xf4, 0xff, 0xf2, 0x00, 0x80, 0xfe, 0x0d, 0x0a]));
    const r = await c.next();
    expect([500, 501]).toContain(r.code);
    c.send(Buffer.from([0xff, 0xf4, 0xff, 0xf2]));
    expect((await c.cmd('NOOP')).code).toBe(200);
  });

  it('serves pipelined commands in order', async () => {
    c.send('NOOP\r\nPWD\r\nSYST\r\nTYPE I');
    expect((await c.next()).code).toBe(200);
    expect((await c.next()).code).toBe(257);
    expect((await c.next()).code).toBe(215);
    expect((await c.next()).code).toBe(200);
  });

  it('answers every one of 3,000 commands pipelined in one write, in order, then QUIT and FIN', async () => {
    // More than the read-ahead limit in one segment: none may be dropped (the rest waits unread).
    const lines = Array.from({ length: 3000 }, (_, i) => (i % 2 ? 'NOOP' : 'PWD'));
    c.send(lines.join('\r\n') + '\r\nQUIT\r\n');
    c.socket.end();
    const codes: number[] = [];
    for (let i = 0; i < 3001; i++) codes.push((await c.next(5000)).code);
    expect(codes.slice(0, 3000)).toEqual(lines.map((l) => (l === 'PWD' ? 257 : 200)));
    expect(codes[3000]).toBe(221);
  });

  it('answers every one of 1,500 commands ending in LF or CRLF, pipelined in one write', async () => {
    const ends = ['\n', '\r\n'];
    const lines = Array.from({ length: 1500 }, (_, i) => `${i % 2 ? 'NOOP' : 'PWD'}${ends[i % 2]}`);
    c.send(Buffer.from(lines.join('')));
    const codes: number[] = [];
    for (let i = 0; i < 1500; i++) codes.push((await c.next(5000)).code);
    expect(codes).toEqual(lines.map((l) => (l.startsWith('PWD') ? 257 : 200)));
  });

  it('a CR followed by neither LF nor NUL makes one malformed line, not two commands (RFC 854)', async () => {
    await upload(c, 'kept', 'still here');
    // A proxy or application framing by CRLF sees one SIZE here; run as two commands, the DELE would go through.
    c.send(Buffer.from('SIZE nothere\rDELE kept\r\n'));
    expect(await c.next()).toMatchObject({ code: 500, text: expect.stringContaining('CR not followed by LF') });
    expect((await c.cmd('SIZE kept')).code).toBe(213);
    // Split between writes the same (the CR waits for the byte after it).
    c.send(Buffer.from('SIZE nothere\r'));
    await new Promise((r) => setTimeout(r, 30));
    c.send(Buffer.from('DELE kept\r\n'));
    expect((await c.next()).code).toBe(500);
    expect((await c.cmd('SIZE kept')).code).toBe(213);
    // A Telnet interrupt between them changes nothing (only an ABOR's line ends there).
    c.send(Buffer.from('SIZE nothere\r\xff\xf4DELE kept\r\n', 'latin1'));
    expect((await c.next()).code).toBe(500);
    expect((await c.cmd('SIZE kept')).code).toBe(213);
    // Commands ending in a bare CR, pipelined: one line (too long here), answered once; memory stays bounded.
    c.send(Buffer.from('NOOP\rPWD\r'.repeat(1000) + '\n'));
    expect(await c.next()).toMatchObject({ code: 500, text: 'Command line too long.' });
    expect((await c.cmd('NOOP')).code).toBe(200);
  });

  it('OPTS UTF8 ON and OPTS MLST select facts', async () => {
    expect((await c.cmd('OPTS UTF8 ON')).code).toBe(200);
    // RFC 2389 §4: OPTS answers 200, 451 or 501 (not 504).
    expect((await c.cmd('OPTS UTF8 OFF')).code).toBe(200);
    expect((await c.cmd('OPTS UTF8 MAYBE')).code).toBe(501);
    expect(await c.cmd('OPTS MLST type;size;')).toMatchObject({ code: 200, text: 'MLST OPTS type;size;' });
    const feat = await c.cmd('FEAT');
    expect(feat.lines.find((l) => l.startsWith(' MLST'))).toMatch(/^ MLST type\*;size\*;modify;/);
    expect((await c.cmd('OPTS FOO')).code).toBe(501);
  });

  it('FEAT offers only facts listings give: no owner or group names (uid and gid are given)', async () => {
    const mlst = (await c.cmd('FEAT')).lines.find((l) => l.startsWith(' MLST')) ?? '';
    expect(mlst).toContain('unix.uid;');
    expect(mlst).not.toMatch(/unix\.owner|unix\.group/i);
    expect(await c.cmd('OPTS MLST unix.owner;type;')).toMatchObject({ code: 200, text: 'MLST OPTS type;' });
  });

  it('QUIT says 221 and closes', async () => {
    expect((await c.cmd('QUIT')).code).toBe(221);
    expect(await c.waitClosed()).toBe(true);
  });

  it('REIN puts OPTS MLST, OPTS HASH and MODE back to their defaults (RFC 959 §4.1.1: all parameters)', async () => {
    expect((await c.cmd('OPTS MLST type;')).code).toBe(200);
    expect((await c.cmd('OPTS HASH MD5')).code).toBe(200);
    expect((await c.cmd('REIN')).code).toBe(220);
    expect((await c.cmd(`USER ${USER}`)).code).toBe(331);
    expect((await c.cmd(`PASS ${PASSWORD}`)).code).toBe(230);
    expect((await c.cmd('MLST /')).text).toMatch(/modify=/);
    expect((await c.cmd('OPTS HASH')).text).toMatch(/SHA-256/);
  });

  it('REIN logs out', async () => {
    expect((await c.cmd('REIN')).code).toBe(220);
    expect((await c.cmd('PWD')).code).toBe(530);
  });
});

describe('directories and files', () => {
  beforeEach(() => c.login());

  it('a path deeper than maxPathDepth (128) or longer than maxPathLength (4096 bytes) gets 553, relative ones too', async () => {
    const deep = '/d'.repeat(128);
    for (let depth = 1; depth <= 128; depth++) expect((await c.cmd(`MKD ${'/d'.repeat(depth)}`)).code).toBe(257);
    expect((await c.cmd(`CWD ${deep}`)).code).toBe(250);
    const past = await c.cmd('MKD d');
    expect(past.code).toBe(553);
    expect(past.text).toMatch(/too deep/);
    expect((await c.cmd(`CWD ${deep}/d`)).code).toBe(553);
    expect((await c.cmd('CWD ..')).code).toBe(250);
    // Past 4,096 bytes (UTF-8) in 17 levels: too long, however shallow; a relative name counts from the folder it is in.
    const level = '/' + 'é'.repeat(120);
    for (let depth = 1; depth <= 16; depth++) expect((await c.cmd(`MKD ${level.repeat(depth)}`)).code).toBe(257);
    expect((await c.cmd(`CWD ${level.repeat(16)}`)).code).toBe(250);
    expect((await c.cmd(`MKD ${'y'.repeat(200)}`)).code).toBe(257);
    expect((await c.cmd(`MKD ${'y'.repeat(250)}`)).text).toMatch(/^Path too long/);
    expect((await c.cmd(`LIST ${'/x'.repeat(200)}`)).code).toBe(553);
  });

  it('PWD, MKD, CWD, CDUP, RMD with quoting of double quotes', async () => {
    expect((await c.cmd('PWD')).text).toMatch(/^"\/" /);
    expect((await c.cmd('MKD a "b"')).text).toMatch(/^"\/a ""b""" created/);
    expect((await c.cmd('MKD a "b"')).code).toBe(550);
    expect((await c.cmd('CWD a "b"')).code).toBe(250);
    expect((await c.cmd('PWD')).text).toMatch(/^"\/a ""b""" /);
    expect((await c.cmd('XPWD')).code).toBe(257);
    expect((await c.cmd('CDUP')).code).toBe(250);
    expect((await c.cmd('CWD ../../..')).code).toBe(250);
    expect((await c.cmd('PWD')).text).toMatch(/^"\/" /);
    expect((await c.cmd('CWD nowhere')).code).toBe(550);
    expect((await c.cmd('RMD a "b"')).code).toBe(250);
    expect((await c.cmd('RMD a "b"')).code).toBe(550);
  });

  it('RNFR/RNTO, DELE, SIZE, MDTM', async () => {
    await upload(c, 'f.txt', 'hello');
    expect(await c.cmd('SIZE f.txt')).toMatchObject({ code: 213, text: '5' });
    expect((await c.cmd('MDTM f.txt')).text).toMatch(/^\d{14}$/);
    expect((await c.cmd('RNTO g.txt')).code).toBe(503);
    expect((await c.cmd('RNFR missing')).code).toBe(550);
    expect((await c.cmd('RNFR f.txt')).code).toBe(350);
    expect((await c.cmd('RNTO g.txt')).code).toBe(250);
    expect((await c.cmd('SIZE f.txt')).code).toBe(550);
    expect((await c.cmd('RNFR g.txt')).code).toBe(350);
    expect((await c.cmd('NOOP')).code).toBe(200);
    expect((await c.cmd('RNTO h.txt')).code).toBe(503);
    expect((await c.cmd('MKD d')).code).toBe(257);
    // RFC 959 §5.4 lists 553, not 550, for RNTO: into a missing folder, or onto a folder.
    expect((await c.cmd('RNFR g.txt')).code).toBe(350);
    expect(await c.cmd('RNTO nodir/h.txt')).toMatchObject({ code: 553 });
    expect((await c.cmd('RNFR g.txt')).code).toBe(350);
    expect((await c.cmd('RNTO d')).code).toBe(553);
    // Onto the root: refused for what it is (it said "Cannot move a directory into itself" of a file).
    expect((await c.cmd('RNFR g.txt')).code).toBe(350);
    expect(await c.cmd('RNTO /')).toMatchObject({ code: 553, text: '/: the root cannot be replaced.' });
    expect((await c.cmd('SIZE g.txt')).code).toBe(213);
    expect((await c.cmd('SIZE d')).code).toBe(550);
    expect((await c.cmd('DELE d')).code).toBe(550);
    expect((await c.cmd('DELE g.txt')).code).toBe(250);
    expect((await c.cmd('DELE g.txt')).code).toBe(550);
  });

  it('RNTO after anything but a successful RNFR is 503: a refused RNFR, an unknown verb or a line too long forgets the source', async () => {
    await upload(c, 'a.txt', 'a');
    await upload(c, 'keep.txt', 'k');
    // Each RNFR names a.txt, then something comes between it and the RNTO onto keep.txt, which must survive.
    const between = ['RNFR missing.txt', 'RNFR', 'RNFR /', 'XYZZ', `NOOP ${'x'.repeat(5000)}`];
    for (const line of between) {
      expect((await c.cmd('RNFR a.txt')).code).toBe(350);
      expect((await c.cmd(line)).code).toBeGreaterThanOrEqual(500);
      expect({ line, code: (await c.cmd('RNTO keep.txt')).code }).toEqual({ line, code: 503 });
      expect(await c.cmd('SIZE keep.txt')).toMatchObject({ code: 213, text: '1' });
      expect(await c.cmd('SIZE a.txt')).toMatchObject({ code: 213, text: '1' });
    }
  });

  it('RNTO with a trailing slash names a folder: a file is not renamed to name/ as if it were name', async () => {
    await upload(c, 'file.txt', 'f');
    expect((await c.cmd('RNFR file.txt')).code).toBe(350);
    expect((await c.cmd('RNTO other/')).code).toBe(553);
    expect((await c.cmd('SIZE file.txt')).code).toBe(213);
    expect((await c.cmd('MKD dir')).code).toBe(257);
    expect((await c.cmd('RNFR dir')).code).toBe(350);
    expect((await c.cmd('RNTO moved/')).code).toBe(250);
    expect((await c.cmd('CWD moved')).code).toBe(250);
  });

  it('a trailing slash names a folder: RETR, STOR, APPE, STOU, DELE, SIZE, MDTM, HASH and RNFR of `file/` are refused, not taken for `file`', async () => {
    await upload(c, 'f.txt', 'hello');
    for (const line of ['SIZE f.txt/', 'MDTM f.txt/', 'DELE f.txt/', 'RNFR f.txt/', 'HASH f.txt/']) {
      expect({ line, code: (await c.cmd(line)).code }).toEqual({ line, code: 550 });
    }
    await c.cmd('EPSV');
    expect((await c.cmd('RETR f.txt/')).code).toBe(550);
    for (const line of ['STOR new.txt/', 'APPE new.txt/', 'STOU new.txt/']) {
      await c.cmd('EPSV');
      expect({ line, code: (await c.cmd(line)).code }).toEqual({ line, code: 553 });
    }
    // Nothing was made, deleted or renamed: the file is whole, and no `new.txt` exists.
    expect(await c.cmd('SIZE f.txt')).toMatchObject({ code: 213, text: '5' });
    expect((await c.cmd('SIZE new.txt')).code).toBe(550);
    // A folder with a trailing slash still works where a folder is meant.
    expect((await c.cmd('MKD d/')).code).toBe(257);
    expect((await c.cmd('CWD d/')).code).toBe(250);
    expect((await c.cmd('CDUP')).code).toBe(250);
    expect((await c.cmd('RNFR d/')).code).toBe(350);
    expect((await c.cmd('RNTO e/')).code).toBe(250);
    expect((await c.cmd('RMD e/')).code).toBe(250);
  });

  it('NUL in a path is refused', async () => {
    expect((await c.cmd('MKD a\0b')).code).toBe(501);
  });
});

async function upload(client: RawClient, name: string, data: string | Buffer, verb = 'STOR'): Promise<void> {
  const socket = await client.passive();
  client.send(`${verb} ${name}`);
  expect((await client.next()).code).toBe(150);
  await writeAndClose(socket, data);
  expect((await client.next()).code).toBe(226);
}

async function download(client: RawClient, command: string): Promise<Buffer> {
  const socket = await client.passive();
  client.send(command);
  const r = await client.next();
  if (r.code !== 150) throw new Error(`${command}: ${r.code} ${r.text}`);
  const data = await readAll(socket);
  expect((await client.next()).code).toBe(226);
  return data;
}

describe('transfers', () => {
  beforeEach(() => c.login());

  it('a session starts in ASCII (RFC 959 §3.1.1.1): clients that rely on it send no TYPE A', async () => {
    await upload(c, 'text.txt', 'one\r\ntwo\r\n');
    expect((await download(c, 'RETR text.txt')).toString()).toBe('one\r\ntwo\r\n');
    expect((await c.cmd('TYPE I')).code).toBe(200);
    expect((await download(c, 'RETR text.txt')).toString()).toBe('one\ntwo\n');
  });

  it('STOR into a folder that is missing, or is a file, gets 553 before any 150 (RFC 959 §5.4 lists no 550 for it), APPE 550', async () => {
    await upload(c, 'plain', 'p');
    const socket = await c.passive();
    expect(await c.cmd('STOR nodir/x/f.txt')).toMatchObject({ code: 553, text: '/nodir/x: No such directory.' });
    expect((await c.cmd('APPE nodir/f.txt')).code).toBe(550);
    expect(await c.cmd('STOR plain/f.txt')).toMatchObject({ code: 553, text: '/plain: Not a directory.' });
    // The data connection set up is still there for a STOR that can be served.
    c.send('STOR ok.txt');
    expect((await c.next()).code).toBe(150);
    await writeAndClose(socket, 'ok');
    expect((await c.next()).code).toBe(226);
  });

  it('STOR then RETR round-trips bytes, and 425 without a data connection', async () => {
    expect((await c.cmd('TYPE I')).code).toBe(200);
    const data = Buffer.from(Array.from({ length: 70000 }, (_, i) => i % 251));
    await upload(c, 'bin', data);
    expect((await download(c, 'RETR bin')).equals(data)).toBe(true);
    expect((await c.cmd('RETR bin')).code).toBe(425);
    expect((await c.cmd('RETR missing')).code).toBe(550);
  });

  it('REST resumes a download and an upload; APPE appends', async () => {
    // Resuming is for TYPE I (refused in TYPE A: type-a-downloads.test.ts).
    expect((await c.cmd('TYPE I')).code).toBe(200);
    await upload(c, 'r', '0123456789');
    expect((await c.cmd('REST 4')).code).toBe(350);
    expect((await download(c, 'RETR r')).toString()).toBe('456789');
    expect((await c.cmd('REST 6')).code).toBe(350);
    await upload(c, 'r', 'abc');
    expect((await download(c, 'RETR r')).toString()).toBe('012345abc');
    await upload(c, 'r', 'XY', 'APPE');
    expect((await download(c, 'RETR r')).toString()).toBe('012345abcXY');
    expect((await c.cmd('REST 100')).code).toBe(350);
    const socket = await c.passive();
    expect((await c.cmd('RETR r')).code).toBe(554);
    socket.destroy();
    // An upload past the end is refused too, before its 150, rather than padded with zeros; the file is unchanged.
    expect((await c.cmd('REST 100')).code).toBe(350);
    const past = await c.cmd('STOR r');
    expect(past.code).toBe(554);
    expect(past.text).toContain('beyond the end of the file (11 bytes)');
    expect((await c.cmd('REST 5')).code).toBe(350);
    expect((await c.cmd('STOR new-file')).code).toBe(554);
    expect((await download(c, 'RETR r')).toString()).toBe('012345abcXY');
    // Resuming exactly at the end still appends.
    expect((await c.cmd('REST 11')).code).toBe(350);
    await upload(c, 'r', '!');
    expect((await download(c, 'RETR r')).toString()).toBe('012345abcXY!');
    // A REST that fails clears the one before it: the download starts at 0, not at 5.
    expect((await c.cmd('REST 5')).code).toBe(350);
    expect((await c.cmd('REST five')).code).toBe(501);
    expect((await download(c, 'RETR r')).toString()).toBe('012345abcXY!');
  });

  /** A file made on the storage itself (FTP refuses to create names with a line break: see below). */
  async function store(path: string, body: string): Promise<void> {
    const w = await openWriteStream(ctx.fs, path);
    await new Promise<void>((r) => w.end(body, () => r()));
  }

  it('a name holding a CR, sent as CR NUL (as lftp does), is that name and not its first part', async () => {
    await upload(c, 'a', 'first');
    await store('/a\rb', 'second');
    expect((await download(c, 'RETR a')).toString()).toBe('first');
    expect((await download(c, 'RETR a\r\0b')).toString()).toBe('second');
    expect((await c.cmd('DELE a\r\0b')).code).toBe(250);
    expect((await download(c, 'RETR a')).toString()).toBe('first');
    expect((await c.cmd('SIZE a\r\0b')).code).toBe(550);
  });

  it('a CR NUL split between two writes is still a CR inside the name', async () => {
    await upload(c, 'x', 'keep me');
    await store('/x\ry', 'delete me');
    c.send(Buffer.from('DELE x\r'));
    await new Promise((r) => setTimeout(r, 30));
    c.send(Buffer.from('\0y\r\n'));
    expect((await c.next()).code).toBe(250);
    expect((await download(c, 'RETR x')).toString()).toBe('keep me');
    expect((await c.cmd('SIZE x\r\0y')).code).toBe(550);
  });

  it('a new name with a line break is refused (listings could not show it), and nothing is made', async () => {
    // RFC 959 §5.4: 553 for STOR, STOU and RNTO; 550 for MKD and APPE.
    await upload(c, 'f', 'x');
    const data = await c.passive();
    data.on('error', () => undefined);
    for (const [cmd, code] of [['MKD d\r\0e', 550], ['STOR s\r\0t', 553], ['APPE s\r\0t', 550], ['STOU u\r\0v', 553]] as const) {
      expect([cmd, (await c.cmd(cmd)).code]).toEqual([cmd, code]);
    }
    data.destroy();
    expect((await c.cmd('RNFR f')).code).toBe(350);
    expect(await c.cmd('RNTO g\r\0h')).toMatchObject({ code: 553, text: expect.stringContaining('line break') });
    expect((await c.retrieve('NLST')).toString()).toBe('f\r\n');
  });

  it('a file already stored under a name with a CR can still be replaced and appended to', async () => {
    await store('/o\rld', 'one');
    await upload(c, 'o\r\0ld', 'two');
    expect((await c.cmd('APPE o\r\0ld')).code).toBe(425); // past the name check: no data connection set up
    expect((await download(c, 'RETR o\r\0ld')).toString()).toBe('two');
  });

  it('COMB refuses a target name with a line break, and removes no part', async () => {
    await upload(c, 'p1', 'a');
    await upload(c, 'p2', 'b');
    expect((await c.cmd('COMB "t\r\0u" "p1" "p2"')).code).toBe(550);
    expect((await c.cmd('SIZE p1')).code).toBe(213);
  });

  it('TYPE A converts line endings both ways', async () => {
    expect((await c.cmd('TYPE A')).code).toBe(200);
    await upload(c, 't.txt', 'one\r\ntwo\r\n');
    expect((await c.cmd('TYPE I')).code).toBe(200);
    expect((await download(c, 'RETR t.txt')).toString()).toBe('one\ntwo\n');
    expect((await c.cmd('TYPE A')).code).toBe(200);
    expect((await download(c, 'RETR t.txt')).toString()).toBe('one\r\ntwo\r\n');
  });

  it('STOU stores under a new name given in the 150 reply', async () => {
    await upload(c, 'u', 'first');
    const socket = await c.passive();
    c.send('STOU u');
    const r = await c.next();
    expect(r.code).toBe(150);
    const name = /FILE: (.+)$/.exec(r.text)?.[1];
    expect(name).toBeDefined();
    expect(name).not.toBe('u');
    await writeAndClose(socket, 'second');
    expect((await c.next()).code).toBe(226);
    expect((await download(c, `RETR ${name}`)).toString()).toBe('second');
    expect((await download(c, 'RETR u')).toString()).toBe('first');
  });

  it('STOU into another folder says the whole path of the new file (it said its name alone)', async () => {
    expect((await c.cmd('MKD stou-dir')).code).toBe(257);
    await upload(c, 'stou-dir/u', 'first');
    const socket = await c.passive();
    c.send('STOU stou-dir/u');
    const r = await c.next();
    expect(r.code).toBe(150);
    const name = /FILE: (.+)$/.exec(r.text)?.[1];
    expect(name).toMatch(/^\/stou-dir\/u\.[0-9a-f]{8}$/);
    await writeAndClose(socket, 'second');
    expect((await c.next()).code).toBe(226);
    expect((await download(c, `RETR ${name}`)).toString()).toBe('second');
  });

  it('LIST, NLST, MLSD and MLST describe entries', async () => {
    await upload(c, 'a file.txt', '12345');
    expect((await c.cmd('MKD sub')).code).toBe(257);
    const list = (await download(c, 'LIST -la')).toString();
    expect(list).toMatch(/^-[rwx-]{9}\s+1 \S+\s+\S+\s+5 \w{3} [ \d]\d (\d\d:\d\d| \d{4}) a file\.txt\r$/m);
    expect(list).toMatch(/^d[rwx-]{9} .* sub\r$/m);
    expect((await download(c, 'NLST')).toString().split('\r\n').filter(Boolean).sort()).toEqual(['a file.txt', 'sub']);
    expect((await download(c, 'NLST sub')).toString()).toBe('');
    const mlsd = (await download(c, 'MLSD')).toString();
    expect(mlsd).toMatch(/^type=file;size=5;modify=\d{14}(\.\d{3})?;perm=\w+;.* a file\.txt\r$/m);
    expect(mlsd).toMatch(/^type=dir;.* sub\r$/m);
    const mlst = await c.cmd('MLST a file.txt');
    expect(mlst.code).toBe(250);
    expect(mlst.lines[1]).toMatch(/^ type=file;size=5;.* \/a file\.txt$/);
    expect((await c.cmd('MLST nope')).code).toBe(550);
    // The root cannot be removed or renamed: its perm offers neither (a folder below it does).
    const root = await c.cmd('MLST /');
    expect(root.lines[1]).toMatch(/;perm=[a-z]*;/);
    expect(root.lines[1]).not.toMatch(/;perm=[a-z]*[df][a-z]*;/);
    expect((await c.cmd('RMD /')).code).toBe(550);
    expect((await c.cmd('MLST sub')).lines[1]).toMatch(/;perm=[a-z]*d[a-z]*;/);
    const socket = await c.passive();
    expect((await c.cmd('MLSD a file.txt')).code).toBe(501);
    socket.destroy();
  });

  it('STAT reports status and lists a path over the control connection', async () => {
    await upload(c, 'x', 'x');
    const st = await c.cmd('STAT');
    expect(st.code).toBe(211);
    expect(st.text).toContain('Logged in as alice');
    const sp = await c.cmd('STAT /');
    expect(sp.code).toBe(213);
    expect(sp.text).toMatch(/ x$/m);
  });

  it('STAT of a missing path, or of a pattern matching nothing, answers 450 (RFC 959 §5.4 lists no 550 for it); LIST and NLST keep 550', async () => {
    await upload(c, 'x', 'x');
    for (const command of ['STAT nope', 'STAT -la nope', 'STAT *.zip', 'STAT nope/x']) {
      expect((await c.cmd(command)).code, command).toBe(450);
    }
    // lftp sends a listing refused with a 4xx again and again, curl takes one for an empty listing; and the commands
    // whose replies do list 550 keep it.
    const socket = await c.passive();
    for (const command of ['LIST nope', 'NLST nope', 'LIST *.zip', 'MLSD nope', 'MLST nope', 'RETR nope', 'SIZE nope', 'MDTM nope', 'DELE nope', 'CWD nope']) {
      expect((await c.cmd(command)).code, command).toBe(550);
    }
    c.send('NLST');
    expect((await c.next()).code).toBe(150);
    expect((await readAll(socket)).toString()).toBe('x\r\n');
    expect((await c.next()).code).toBe(226);
    expect((await c.cmd('STAT x')).code).toBe(213);
  });

  /** A RETR of a file of `mib` MiB in progress, its data connection not read: the server waits on the socket. */
  async function blockedDownload(mib: number): Promise<Socket> {
    await upload(c, 'big', Buffer.alloc(mib * 1024 * 1024, 7));
    const socket = await c.passive();
    socket.pause();
    c.send('RETR big');
    expect((await c.next()).code).toBe(150);
    await new Promise((r) => setTimeout(r, 150));
    return socket;
  }

  it('ABOR with no transfer answers 225; during a download 426 then 226', async () => {
    expect((await c.cmd('ABOR')).code).toBe(225);
    await blockedDownload(8);
    c.send(Buffer.from([0xff, 0xf4, 0xff, 0xf2]));
    c.send('ABOR');
    expect(await c.next()).toMatchObject({ code: 426, text: 'Transfer aborted.' });
    expect((await c.next()).code).toBe(226);
    expect((await c.cmd('NOOP')).code).toBe(200);
    expect((await download(c, 'RETR big')).length).toBe(8 * 1024 * 1024);
  });

  it('ABOR whose LF was lost as TCP urgent data (as ftplib sends it) still aborts', async () => {
    await blockedDownload(8);
    c.send(Buffer.from('ABOR\r'));
    expect(await c.next()).toMatchObject({ code: 426, text: 'Transfer aborted.' });
    expect((await c.next()).code).toBe(226);
    c.send(Buffer.from('\nNOOP\r\n'));
    expect((await c.next()).code).toBe(200);
  });

  it('ABOR cuts a download the client is not reading with a reset: what the kernel held is not delivered after the 226', async () => {
    const socket = await blockedDownload(32);
    c.send('ABOR');
    expect((await c.next()).code).toBe(426);
    expect((await c.next()).code).toBe(226);
    // Read what is left: a graceful close would deliver all the server had queued, then end cleanly.
    let bytes = 0;
    socket.on('data', (b: Buffer) => (bytes += b.length));
    const ending = await new Promise<string>((resolve) => {
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      socket.once('end', () => resolve('end'));
      socket.resume();
    });
    expect(ending).toBe('ECONNRESET');
    expect(bytes).toBeLessThan(32 * 1024 * 1024);
    expect((await c.cmd('NOOP')).code).toBe(200);
  });

  it('an urgent-data ABOR that lost its LF, with the next command right behind it, runs both', async () => {
    await blockedDownload(8);
    c.send(Buffer.from('ABOR\rNOOP\r\n'));
    expect(await c.next()).toMatchObject({ code: 426, text: 'Transfer aborted.' });
    expect((await c.next()).code).toBe(226);
    expect((await c.next()).code).toBe(200);
  });

  it('a client vanishing mid-upload leaves other sessions unharmed', async () => {
    const other = await RawClient.connect(ctx.port);
    await other.login();
    const socket = await c.passive();
    c.send('STOR partial');
    expect((await c.next()).code).toBe(150);
    socket.write(Buffer.alloc(100000, 1));
    await new Promise((r) => setTimeout(r, 50));
    socket.destroy();
    c.close();
    expect((await other.cmd('NOOP')).code).toBe(200);
    await upload(other, 'ok', 'fine');
    expect((await download(other, 'RETR ok')).toString()).toBe('fine');
    other.close();
  });
});

describe('data connection setup', () => {
  beforeEach(() => c.login());

  it('PASV advertises an IPv4 address and port', async () => {
    const r = await c.cmd('PASV');
    expect(r.code).toBe(227);
    expect(r.text).toMatch(/\(127,0,0,1,\d+,\d+\)/);
  });

  it('EPSV ALL forbids PASV, PORT and EPRT', async () => {
    expect((await c.cmd('EPSV ALL')).code).toBe(200);
    expect((await c.cmd('PASV')).code).toBe(503);
    expect((await c.cmd('PORT 127,0,0,1,200,0')).code).toBe(503);
    expect((await c.cmd('EPRT |1|127.0.0.1|51200|')).code).toBe(503);
    expect((await c.cmd('EPSV')).code).toBe(229);
    expect((await c.cmd('EPSV 2')).code).toBe(522);
    // On IPv4 only protocol 1 works, whatever the number asked for.
    expect(await c.cmd('EPSV 3')).toMatchObject({ code: 522, text: expect.stringContaining('(1)') });
  });

  it('refuses PORT to another address or a privileged port', async () => {
    expect((await c.cmd('PORT 127,0,0,2,200,0')).code).toBe(500);
    expect((await c.cmd('PORT 127,0,0,1,0,21')).code).toBe(500);
    expect((await c.cmd('EPRT |1|127.0.0.2|51200|')).code).toBe(500);
    expect((await c.cmd('EPRT |1|127.0.0.1|51200|')).code).toBe(200);
  });
});

describe('a client that half-closes the control connection', () => {
  it('gets the replies to the commands it sent before its FIN, then the connection ends', async () => {
    // A failed login is answered after a delay: the FIN arrives while the PASS is still being served.
    const slow = await startServer({ settings: { failedLoginDelay: 200 } });
    const client = await RawClient.connect(slow.port);
    try {
      expect((await client.next()).code).toBe(220);
      client.send('USER nobody\r\nPASS wrong\r\nNOOP');
      client.socket.end();
      const codes = [];
      for (let i = 0; i < 3; i++) codes.push((await client.next(3000)).code);
      expect(codes).toEqual([331, 530, 200]);
      expect(await client.waitClosed()).toBe(true);
      const start = Date.now();
      while (slow.server.sessionCount > 0 && Date.now() - start < 3000) await new Promise((r) => setTimeout(r, 20));
      expect(slow.server.sessionCount).toBe(0);
    } finally {
      client.close();
      await slow.close();
    }
  });

  it('gets the whole of a download it started, and its 226', async () => {
    await c.login();
    await upload(c, 'big', Buffer.alloc(4 * 1024 * 1024, 7));
    const socket = await c.passive();
    socket.pause();
    c.send('RETR big');
    expect((await c.next()).code).toBe(150);
    c.socket.end();
    const data = await readAll(socket.resume());
    expect(data.length).toBe(4 * 1024 * 1024);
    expect((await c.next(3000)).code).toBe(226);
    expect(await c.waitClosed()).toBe(true);
  });
});

describe('a vanished client', () => {
  it('a client that closes the control connection during a stalled upload is let go at the data stall timeout', async () => {
    const slow = await startServer({ settings: { dataStallTimeout: 1 } });
    const events: TransferEvent[] = [];
    slow.server.on('transfer', (e) => events.push(e));
    const client = await RawClient.connect(slow.port);
    try {
      await client.login();
      const socket = await client.passive();
      client.send('STOR hanging');
      expect((await client.next()).code).toBe(150);
      socket.write('some bytes, then silence');
      socket.on('data', () => undefined);
      await new Promise((r) => setTimeout(r, 50));
      client.close();
      // The FIN alone ends nothing: the upload it started may still be coming (the connection is half-open).
      await new Promise((r) => setTimeout(r, 300));
      expect(slow.server.sessionCount).toBe(1);
      // The silent data connection is given up after the stall timeout, and the session with it.
      const start = Date.now();
      while (slow.server.sessionCount > 0 && Date.now() - start < 4000) await new Promise((r) => setTimeout(r, 20));
      expect(slow.server.sessionCount).toBe(0);
      expect(await new Promise((r) => (socket.destroyed ? r(true) : socket.once('close', () => r(true))))).toBe(true);
      expect(events.map((e) => e.outcome)).not.toContain('ok');
      expect(events.length).toBe(1);
    } finally {
      client.close();
      await slow.close();
    }
  });
});
