/** pure-ftpd from Debian's package, unpacked, with a virtual user (PureDB) mapped to the bench account. */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { debianPackage, output, whyNot } from '../peers.js';
import { spawnServer } from './process.js';
import { chownTree, ensureSystemUser, type SystemUser } from './system-user.js';
import type { ServerSpec } from './types.js';

export function pureFtpd(): ServerSpec {
  let root = '';
  let account: SystemUser | null = null;
  return {
    name: 'pure-ftpd',
    ours: false,
    homeOnDisk: true,
    prepare: () =>
      whyNot(async () => {
        root = await debianPackage('pure-ftpd', 'usr/sbin/pure-ftpd');
      }),
    async start(ctx) {
      account ??= ensureSystemUser(ctx.password);
      chownTree(ctx.home, account);
      const passwd = path.join(ctx.work, 'pureftpd.passwd');
      const db = path.join(ctx.work, 'pureftpd.pdb');
      // pure-pw would hash with argon2id at 2 s a login (deliberately slow); the bench compares servers with a fast
      // check, so the line is written by hand with an MD5-crypt hash (as the system account gets, for vsftpd).
      const hash = (await output('openssl', ['passwd', '-1', ctx.password])).trim();
      if (!hash.startsWith('$1$')) throw new Error(`openssl passwd -1 gave no MD5-crypt hash: ${JSON.stringify(hash)}`);
      writeFileSync(passwd, `${ctx.user}:${hash}:${account.uid}:${account.gid}::${ctx.home}/./::::::::::::\n`, { mode: 0o600 });
      await output(path.join(root, 'usr/bin/pure-pw'), ['mkdb', db, '-f', passwd]);
      const args = [
        '--bind', `127.0.0.1,${ctx.port}`,
        '--passiveportrange', `${ctx.passive[0]}:${ctx.passive[1]}`,
        '--login', `puredb:${db}`,
        '--noanonymous',
        '--dontresolve',
        '--maxclientsnumber', '20000',
        '--maxclientsperip', '20000',
      ];
      if (ctx.tls) {
        const cert = path.join(ctx.work, 'pure-ftpd.pem');
        writeFileSync(cert, readFileSync(ctx.tls.key, 'utf8') + readFileSync(ctx.tls.cert, 'utf8'), { mode: 0o600 });
        args.push('--tls', '1', '--certfile', cert);
      }
      return spawnServer(path.join(root, 'usr/sbin/pure-ftpd'), args, ctx.port);
    },
  };
}
