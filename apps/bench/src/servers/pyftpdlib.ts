/** pyftpdlib from Debian's package, unpacked, on the system's /usr/bin/python3 (Debian's, with its modules). */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { debianPackage, output, whyNot } from '../peers.js';
import { spawnServer } from './process.js';
import type { ServerSpec } from './types.js';

const PYTHON = '/usr/bin/python3';

// TLS_FTPHandler needs pyOpenSSL; without it the server runs plain only and the FTPS workloads fail for it, loudly.
const SCRIPT = `
import logging, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.servers import FTPServer
port, lo, hi, home, user, password, cert, key = sys.argv[1:9]
logging.basicConfig(level=logging.WARNING)
authorizer = DummyAuthorizer()
authorizer.add_user(user, password, home, perm='elradfmwMT')
try:
    if cert == '-':
        raise ImportError('plain only')
    from pyftpdlib.handlers import TLS_FTPHandler as Handler
    Handler.certfile = cert
    Handler.keyfile = key
    Handler.tls_control_required = False
    Handler.tls_data_required = False
except ImportError:
    from pyftpdlib.handlers import FTPHandler as Handler
Handler.authorizer = authorizer
Handler.passive_ports = range(int(lo), int(hi) + 1)
server = FTPServer(('127.0.0.1', int(port)), Handler)
server.max_cons = 0
server.max_cons_per_ip = 0
server.serve_forever(handle_exit=True)
`;

export function pyftpdlib(): ServerSpec {
  let pythonPath = '';
  return {
    name: 'pyftpdlib',
    ours: false,
    homeOnDisk: true,
    prepare: () =>
      whyNot(async () => {
        const root = await debianPackage('python3-pyftpdlib', 'usr/lib/python3/dist-packages/pyftpdlib/__init__.py');
        pythonPath = path.join(root, 'usr/lib/python3/dist-packages');
        await output(PYTHON, ['-c', 'import pyftpdlib'], { env: { ...process.env, PYTHONPATH: pythonPath } });
      }),
    async start(ctx) {
      const script = path.join(ctx.work, 'pyftpdlib-server.py');
      writeFileSync(script, SCRIPT);
      const args = [script, String(ctx.port), String(ctx.passive[0]), String(ctx.passive[1]), ctx.home, ctx.user, ctx.password, ctx.tls?.cert ?? '-', ctx.tls?.key ?? '-'];
      return spawnServer(PYTHON, args, ctx.port, { env: { ...process.env, PYTHONPATH: pythonPath } });
    },
  };
}
