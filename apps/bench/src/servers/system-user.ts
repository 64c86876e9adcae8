/**
 * vsftpd and pure-ftpd log their users in as system accounts, so the bench makes one (root only) and gives it
 * the fresh home folders.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

export const SYSTEM_USER = 'ftpbench';

export interface SystemUser {
  uid: number;
  gid: number;
}

/** Makes (or finds) the bench account with the given password; throws why it cannot. */
export function ensureSystemUser(password: string): SystemUser {
  if (process.getuid?.() !== 0) throw new Error('needs root (it runs as root and logs users in as system accounts)');
  try {
    execFileSync('id', ['-u', SYSTEM_USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/bin/bash', SYSTEM_USER], { stdio: 'ignore' });
  }
  // MD5-crypt: a fast check, like the other servers' (Debian's default yescrypt is deliberately slow).
  execFileSync('chpasswd', ['--crypt-method', 'MD5'], { input: `${SYSTEM_USER}:${password}\n` });
  const uid = Number(execFileSync('id', ['-u', SYSTEM_USER]).toString().trim());
  const gid = Number(execFileSync('id', ['-g', SYSTEM_USER]).toString().trim());
  return { uid, gid };
}

/** Hands a folder tree to the account (bounded: the bench's trees are a few levels deep). */
export function chownTree(dir: string, user: SystemUser, depth = 3): void {
  chownSync(dir, user.uid, user.gid);
  if (depth === 0) return;
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) chownTree(p, user, depth - 1);
    else chownSync(p, user.uid, user.gid);
  }
}
