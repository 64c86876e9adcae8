// ftpd run as a user that is not root, as production servers are: what the system refuses that user is refused when
// the client asks, before anything starts. CWD into a folder it may not search is 550 (as chdir(2) refuses it), not
// 250 and then every command in it refused; an upload it may not write is refused before the 150 (STOR 553, APPE 550),
// not with a 551 after the client began sending. Run as root, the test runs the server as nobody (65534).
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { PASSWORD, run, startFtpd, USER } from './harness.js';

const NOBODY = { uid: 65534, gid: 65534 };

const SCRIPT = String.raw`
import ftplib, io, json, sys
f = ftplib.FTP(timeout=10)
f.connect('127.0.0.1', int(sys.argv[1]))
f.login(sys.argv[2], sys.argv[3])
out = {}
def reply(key, call):
    try:
        out[key] = call()
    except ftplib.all_errors as e:
        out[key] = str(e)
reply('cwd locked', lambda: f.cwd('locked'))
reply('pwd after', f.pwd)
reply('cwd open', lambda: f.cwd('/open'))
reply('cdup', lambda: f.sendcmd('CDUP'))
reply('stor new in readonly', lambda: f.storbinary('STOR readonly/new.txt', io.BytesIO(b'new')))
reply('stor over readonly file', lambda: f.storbinary('STOR open/kept.txt', io.BytesIO(b'new')))
reply('appe readonly file', lambda: f.storbinary('APPE open/kept.txt', io.BytesIO(b'new')))
reply('stor open', lambda: f.storbinary('STOR open/new.txt', io.BytesIO(b'new')))
f.quit()
print(json.dumps(out))
`;

it('as a user that is not root: CWD into a folder it may not search is 550, an upload it may not write is refused before its 150', async () => {
  const root = process.getuid?.() === 0;
  const s = await startFtpd([], {}, root ? { runAs: NOBODY } : {});
  try {
    const owned = async (path: string): Promise<void> => {
      if (root) await chown(path, NOBODY.uid, NOBODY.gid);
    };
    for (const folder of ['locked', 'readonly', 'open']) {
      await mkdir(join(s.root, folder));
      await owned(join(s.root, folder));
    }
    await writeFile(join(s.root, 'open/kept.txt'), 'kept');
    await owned(join(s.root, 'open/kept.txt'));
    await chmod(join(s.root, 'open/kept.txt'), 0o444);
    await chmod(join(s.root, 'readonly'), 0o555);
    // Readable, not searchable: LIST of it would work, nothing inside can be reached.
    await chmod(join(s.root, 'locked'), 0o644);
    const { stdout } = await run('python3', ['-c', SCRIPT, String(s.port), USER, PASSWORD]);
    const out = JSON.parse(stdout) as Record<string, string>;
    expect(out['cwd locked']).toMatch(/^550 .*Permission denied/);
    expect(out['pwd after']).toBe('/');
    expect(out['cwd open']).toMatch(/^250 /);
    expect(out['cdup']).toMatch(/^250 /);
    // 553 and 550 are said before any 150 (after one, the refusal could only be 551).
    expect(out['stor new in readonly']).toMatch(/^553 .*Permission denied/);
    expect(out['stor over readonly file']).toMatch(/^553 .*Permission denied/);
    expect(out['appe readonly file']).toMatch(/^550 .*Permission denied/);
    expect(out['stor open']).toMatch(/^226 /);
    expect(await readFile(join(s.root, 'open/kept.txt'), 'utf8')).toBe('kept');
    expect(await readFile(join(s.root, 'open/new.txt'), 'utf8')).toBe('new');
  } finally {
    await chmod(join(s.root, 'locked'), 0o755).catch(() => undefined);
    expect(await s.stop()).toBe(0);
  }
});
