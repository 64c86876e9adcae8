/** vsftpd from Debian's package, unpacked (not installed: it conflicts with pure-ftpd). */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { debianPackage, whyNot } from '../peers.js';
import { spawnServer } from './process.js';
import { chownTree, ensureSystemUser, SYSTEM_USER, type SystemUser } from './system-user.js';
import type { ServerSpec } from './types.js';

export function vsftpd(): ServerSpec {
  let binary = '';
  let account: SystemUser | null = null;
  return {
    name: 'vsftpd',
    ours: false,
    homeOnDisk: true,
    prepare: () =>
      whyNot(async () => {
        binary = path.join(await debianPackage('vsftpd', 'usr/sbin/vsftpd'), 'usr/sbin/vsftpd');
      }),
    async start(ctx) {
      account ??= ensureSystemUser(ctx.password);
      chownTree(ctx.home, account);
      // vsftpd changes to the account's home before local_root, so the account's home must exist.
      execFileSync('usermod', ['--home', ctx.home, SYSTEM_USER], { stdio: 'ignore' });
      const empty = path.join(ctx.work, 'empty');
      mkdirSync(empty, { recursive: true, mode: 0o755 });
      const conf = path.join(ctx.work, 'vsftpd.conf');
      // Settings a production install would use, minus logging (every server here runs with logs off or at warn).
      const lines = [
        'listen=YES',
        'listen_ipv6=NO',
        'listen_address=127.0.0.1',
        `listen_port=${ctx.port}`,
        'background=NO',
        'anonymous_enable=NO',
        'local_enable=YES',
        'write_enable=YES',
        'local_umask=022',
        `local_root=${ctx.home}`,
        'pasv_enable=YES',
        `pasv_min_port=${ctx.passive[0]}`,
        `pasv_max_port=${ctx.passive[1]}`,
        'max_clients=0',
        'max_per_ip=0',
        'pam_service_name=other',
        'userlist_enable=NO',
        'check_shell=NO',
        `secure_chroot_dir=${empty}`,
        'seccomp_sandbox=NO',
        'isolate=NO',
        'isolate_network=NO',
        'xferlog_enable=NO',
        'dirmessage_enable=NO',
        'idle_session_timeout=900',
      ];
      if (ctx.tls) {
        lines.push('ssl_enable=YES', `rsa_cert_file=${ctx.tls.cert}`, `rsa_private_key_file=${ctx.tls.key}`);
        lines.push('force_local_logins_ssl=NO', 'force_local_data_ssl=NO', 'require_ssl_reuse=NO', 'ssl_ciphers=HIGH');
      }
      writeFileSync(conf, `${lines.join('\n')}\n`);
      return spawnServer(binary, [conf], ctx.port);
    },
  };
}

export { SYSTEM_USER };
