#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { parseOptions, startFtpd, USAGE, UsageError } from './index.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function makeLogger(level: string): Logger {
  // Pretty for a person at a terminal, JSON lines for log collectors.
  if (process.stdout.isTTY) return pino({ level }, pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' }));
  return pino({ level });
}

async function main(): Promise<number> {
  let options;
  try {
    options = parseOptions(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`ftpd: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  if (options === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (options === 'version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const logger = makeLogger(options.logLevel);
  const ftpd = await startFtpd(options, logger).catch((err: NodeJS.ErrnoException) => {
    const why = err.code === 'EADDRINUSE' ? `port ${options.port} is in use` : err.code === 'EACCES' ? `no permission to listen on port ${options.port}` : err.message;
    logger.fatal({ err }, `cannot start: ${why}`);
    process.stderr.write(`ftpd: cannot start: ${why}\n`);
    return null;
  });
  if (!ftpd) return 1;
  const { address } = ftpd;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const shown = options.passwordGenerated ? options.password : '(as given)';
  process.stderr.write(
    `ftpd ${version()} serving ${options.root} on ftp://${host}:${address.port}\n` +
      (ftpd.implicitAddress ? `  implicit FTPS on ftps://${host}:${ftpd.implicitAddress.port}\n` : '') +
      `  user: ${options.user}\n  password: ${shown}\n`,
  );
  logger.info({ port: address.port, host: address.address, root: options.root, user: options.user }, 'ready');
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal }, 'shutting down');
      void ftpd.close(5000).then(resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  logger.info('stopped');
  logger.flush?.();
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`ftpd: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
