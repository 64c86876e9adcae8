/** ftp-srv (npm), installed into its own scratch folder and run on our Node. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { npmPackage, whyNot } from '../peers.js';
import { spawnServer } from './process.js';
import type { ServerSpec } from './types.js';

const SCRIPT = `
const fs = require('node:fs');
const { FtpSrv } = require('ftp-srv');
const bunyan = require('bunyan');
const [port, lo, hi, home, user, password, cert, key] = process.argv.slice(2);
const server = new FtpSrv({
  url: 'ftp://127.0.0.1:' + port,
  pasv_url: '127.0.0.1',
  pasv_min: Number(lo),
  pasv_max: Number(hi),
  anonymous: false,
  tls: cert === '-' ? false : { key: fs.readFileSync(key), cert: fs.readFileSync(cert) },
  log: bunyan.createLogger({ name: 'ftp-srv', level: 'warn' }),
});
server.on('login', ({ username, password: given }, resolve, reject) => {
  if (username === user && given === password) resolve({ root: home });
  else reject(new Error('bad login'));
});
server.on('client-error', () => {});
server.listen();
`;

export function ftpSrv(): ServerSpec {
  let prefix = '';
  return {
    name: 'ftp-srv',
    ours: false,
    homeOnDisk: true,
    prepare: () =>
      whyNot(async () => {
        prefix = await npmPackage('ftp-srv', '4');
      }),
    async start(ctx) {
      const script = path.join(prefix, 'bench-server.cjs');
      writeFileSync(script, SCRIPT);
      const args = [script, String(ctx.port), String(ctx.passive[0]), String(ctx.passive[1]), ctx.home, ctx.user, ctx.password, ctx.tls?.cert ?? '-', ctx.tls?.key ?? '-'];
      return spawnServer(process.execPath, args, ctx.port, { env: { ...process.env, NODE_ENV: 'production' } });
    },
  };
}
