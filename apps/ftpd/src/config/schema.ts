import { z } from 'zod';
import { isPublicHost, type ServerSettings } from '@ftp/server';
import { availableParallelism } from 'node:os';
import { parseHash } from '../passwords.js';
import { looksLikeFileContent } from '../secret-text.js';
import { passiveRangeProblem } from '../workers/passive-slices.js';

/**
 * The schema of ftpd's configuration file (YAML). Field names follow `@ftp/server`'s settings, so its README is
 * the reference for every limit and security setting; this file only says what ftpd adds around them.
 */

/** A secret given inline or read from a file at start (Docker and Kubernetes secrets). */
export const secret = z.union([z.string().min(1), z.object({ fromFile: z.string().min(1) }).strict()], {
  error: 'expected the secret (not empty), or { fromFile: path }',
});

/**
 * A file or folder path. One holding a file's content instead (an `_FILE` override or `fromFile` on a path field
 * reads the file into the field) is refused without being shown: it may be a private key.
 */
const filePath = z
  .string()
  .min(1)
  .refine(
    (v) => !looksLikeFileContent(v),
    'holds file content (PEM text or several lines) where a file path is expected: give the path itself (an override ending in _FILE, or fromFile, puts the file\'s content in the field)',
  );

const port = z.number().int().min(0).max(65535);
const seconds = z.number().min(0);
const count = z.number().int().min(0);

/** `30000-30999` or `[30000, 30999]`. */
const portRange = z
  .union(
    [
      z.tuple([port, port]),
      z
        .string()
        .regex(/^\d+-\d+$/)
        .transform((s) => s.split('-').map(Number) as [number, number]),
    ],
    // A union that fails says only "Invalid input" by itself.
    { error: 'expected two ports as MIN-MAX (30000-30999) or [MIN, MAX]' },
  )
  .refine(([a, b]) => a <= b && b <= 65535, 'the first port must not be above the second, and both at most 65535');

/** What PASV may advertise: an IPv4 address, or a DNS name (looked up, and again every minute: dynamic DNS). */
const publicHost = z.string().refine(isPublicHost, 'expected an IPv4 address or a DNS name (PASV has no IPv6)');

/** Every `@ftp/server` setting an operator may set; unknown keys are refused (a typo must not pass silently). */
export const serverSettings = z
  .object({
    publicHost,
    publicHosts: z.array(z.object({ network: z.string().min(1), host: publicHost }).strict()),
    passivePortRange: portRange,
    passivePortsAdvertised: portRange,
    passiveProxyProtocol: z.boolean(),
    proxyProtocolFrom: z.array(z.string().min(1)),
    activeMode: z.boolean(),
    activeModeBounceCheck: z.boolean(),
    activeModeMinPort: port,
    passiveIpCheck: z.enum(['strict', 'off']),
    idleTimeout: seconds,
    loginTimeout: seconds,
    dataConnectTimeout: seconds,
    dataStallTimeout: seconds,
    maxLineLength: z.number().int().min(64),
    maxPipelinedCommands: z.number().int().min(1),
    maxSessions: count,
    maxSessionsPerIp: count,
    defaultTransferType: z.enum(['A', 'I']),
    modeZ: z.boolean(),
    deflateLevel: z.number().int().min(0).max(9),
    downloadRate: count,
    uploadRate: count,
    listOptions: z.boolean(),
    listMaxDepth: count,
    listSortMax: count,
    listSortBudget: count,
    maxPathDepth: count,
    maxPathLength: count,
    listMaxEntries: count,
    partialUploads: z.enum(['keep', 'discard']),
    disabledCommands: z.array(z.string().regex(/^[A-Za-z]{3,4}$/, 'expected a command verb such as MLSD')),
    siteCommands: z.boolean(),
    banner: z.string(),
    failedLoginDelay: count,
    listingBatchSize: z.number().int().min(1),
    tlsRequired: z.enum(['none', 'control', 'all']),
    tlsSessionReuse: z.boolean(),
    allowCcc: z.boolean(),
    tlsUploadRequiresCloseNotify: z.boolean(),
    reuseUploadBuffers: z.boolean(),
    sendfile: z.boolean(),
    kernelReceive: z.boolean(),
    tlsMinVersion: z.enum(['TLSv1.2', 'TLSv1.3']),
    tlsHandshakeTimeout: seconds,
    maxLoginFailures: count,
    loginFailureWindow: seconds,
    banDuration: seconds,
    banExempt: z.array(z.string().min(1)),
    maxLoginAttemptsPerSession: z.number().int().min(1),
    maxConcurrentLogins: count,
    maxConcurrentLoginsPerIp: count,
    maxConcurrentHashes: count,
    maxConcurrentHashesPerIp: count,
  })
  .partial()
  .strict() satisfies z.ZodType<Partial<ServerSettings>>;

const backend = z.discriminatedUnion('type', [
  z.object({ type: z.literal('memory') }).strict(),
  z
    .object({
      type: z.literal('local'),
      root: filePath,
      create: z.boolean().default(true),
      /** false for network or FUSE file systems (NFS, SMB, sshfs): see LocalProviderOptions.syncMetadata. */
      syncMetadata: z.boolean().default(true),
    })
    .strict(),
  z.object({ type: z.literal('sqlite'), file: filePath }).strict(),
  z
    .object({
      type: z.literal('s3'),
      bucket: z.string().min(1),
      /** Key prefix inside the bucket (one bucket, many filesystems). */
      prefix: z.string().default(''),
      region: z.string().min(1).optional(),
      /** For MinIO, R2, Ceph… (`http://minio:9000`). */
      endpoint: z.url().optional(),
      forcePathStyle: z.boolean().optional(),
      /** Without these, the AWS SDK's default chain (environment, profile, instance role). */
      accessKeyId: z.string().min(1).optional(),
      secretAccessKey: z.string().min(1).optional(),
      sessionToken: z.string().min(1).optional(),
      partSize: z.number().int().min(5 * 1024 * 1024).optional(),
      uploadConcurrency: z.number().int().min(1).max(64).optional(),
      /**
       * Bytes of part buffers all uploads to this backend may hold at once (the driver's default 256 MiB, at least
       * 1 MiB); beyond it, uploads wait (their data connections are not read) until parts in flight complete.
       */
      uploadMemory: z.number().int().min(1024 * 1024).optional(),
      /** Objects a folder rename may move (the driver's default 100,000); a bigger tree's RNTO is refused (550). */
      maxRenameObjects: z.number().int().min(1).optional(),
      /**
       * How long a request about names and metadata (stat, listing page, delete) may take, retries included (ms; the
       * driver's default 60,000): a store that stops answering fails the command (451) instead of holding it.
       */
      metadataTimeoutMs: z.number().int().min(100).max(3_600_000).optional(),
    })
    .strict()
    .refine((b) => (b.accessKeyId === undefined) === (b.secretAccessKey === undefined), 'accessKeyId and secretAccessKey go together'),
  z
    .object({
      type: z.literal('redis'),
      /** `redis://[:password@]host:6379/0` (or `rediss://` for TLS). */
      url: z.string().regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL'),
      /** Names this filesystem in Redis (many filesystems per Redis). */
      prefix: z.string().regex(/^[^{}]+$/, 'no braces').default('ftp'),
      chunkSize: z.number().int().min(4096).optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('sql'),
      /**
       * `postgres://user:pass@host:5432/db`, `mysql://root@host:3306/db` (or `mariadb://`), `sqlite:/var/lib/ftpd/fs.db`
       * (a relative `sqlite:` file is relative to the configuration file).
       */
      url: z.string().regex(/^(postgres(ql)?|mysql|mariadb|sqlite):/, 'expected a postgres://, mysql://, mariadb:// or sqlite: URL'),
      /** Prefix of the tables, so several filesystems share one database. */
      tablePrefix: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'letters, digits and _ only').default('ftp_'),
      /** Bytes the files may take in total (AVBL, ALLO, and uploads fail past it: 452, or 552 once the upload's 150 is sent). */
      quota: z.number().int().min(0).optional(),
      /**
       * PostgreSQL, MySQL: how long one statement may take (ms; the driver's default 60,000). A database that stops
       * answering fails the command (451) instead of holding it; the connection is closed and another opened.
       */
      queryTimeoutMs: z.number().int().min(100).max(3_600_000).optional(),
    })
    .strict(),
]);

const PERMISSIONS = ['read', 'write', 'append', 'delete', 'rename', 'mkdir', 'rmdir', 'site'] as const;
const permission = z.enum(PERMISSIONS);

/** What is wrong with a user's `permissions`, said with the words it may hold (a failed union says "Invalid input"). */
function permissionsError(input: unknown): string {
  const expected = `expected all, read-only, or a list of: ${PERMISSIONS.join(', ')}`;
  if (!Array.isArray(input)) return `${expected}; got ${JSON.stringify(input)}`;
  const unknown = input.filter((p) => !(PERMISSIONS as readonly unknown[]).includes(p));
  return `${expected}; unknown: ${unknown.map((p) => JSON.stringify(p)).join(', ')}`;
}

const user = z
  .object({
    name: z.string().min(1).max(256).regex(/^[^\s:]+$/, 'no spaces or colons'),
    /** An scrypt hash made by `ftpd hash-password` (or `{ fromFile: path }`, resolved before validation). */
    passwordHash: z.string().refine((h) => parseHash(h) !== null, {
      error: (issue) => `${issue.input === '' ? 'empty: ' : ''}expected an scrypt hash as \`ftpd hash-password\` prints it ($scrypt$ln=…)`,
    }),
    backend: z.string().min(1),
    /** The sub-tree of the backend the user sees as `/` (a chroot). Default `/`. */
    home: z.string().startsWith('/').default('/'),
    /** What the user may do: a list of permissions, or `all` (the default), or `read-only`. */
    permissions: z.union([z.literal('all'), z.literal('read-only'), z.array(permission)], { error: (issue) => permissionsError(issue.input) }).default('all'),
    /** Bytes per second for all of the user's sessions together; 0 is unlimited. */
    downloadRate: count.default(0),
    uploadRate: count.default(0),
    /** Virtual folders: `{ /archive: { backend: s3, home: /alice } }` shows that backend's sub-tree at /archive. */
    mounts: z
      .record(
        z.string().regex(/^\/.*[^/]$/, 'a mount point is an absolute path other than / (no trailing slash)'),
        z.object({ backend: z.string().min(1), home: z.string().startsWith('/').default('/') }).strict(),
      )
      .default({}),
    /** Bytes the user's files may take in total (over their whole tree, mounts included); none by default. */
    quota: z.number().int().min(0).optional(),
    /** Raises the server's `tlsRequired` for this user. */
    tlsRequired: z.enum(['none', 'control', 'all']).optional(),
  })
  .strict();

const configShape = z
  .object({
    listeners: z
      .array(z.object({ host: z.string().min(1).default('127.0.0.1'), port, implicitTls: z.boolean().default(false), publicHost: publicHost.optional(), proxyProtocol: z.boolean().default(false) }).strict())
      .min(1)
      .default([{ host: '127.0.0.1', port: 2121, implicitTls: false, proxyProtocol: false }]),
    /** PEM files, read at start and again on SIGHUP. */
    tls: z
      .object({
        cert: filePath,
        key: filePath,
        passphrase: secret.optional(),
        /** OpenSSL cipher list; default: forward-secret AEAD suites only (the server's DEFAULT_TLS_CIPHERS). */
        ciphers: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
    backends: z.record(z.string().regex(/^[\w.-]+$/, 'letters, digits, _ . - only'), backend),
    users: z.array(user).default([]),
    /** Read-only access for `anonymous` (and `ftp`, by RFC 1635 custom) to a backend's sub-tree. */
    anonymous: z.object({ backend: z.string().min(1), home: z.string().startsWith('/').default('/') }).strict().optional(),
    server: serverSettings.default({}),
    /** Where failed logins and bans are kept: this process (default) or Redis, shared by several ftpd instances. */
    bans: z
      .object({
        type: z.literal('redis'),
        url: z.string().regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL'),
        prefix: z.string().min(1).default('ftpd:ban'),
        /** Milliseconds each ban check may take before it is skipped (fail open); the store's default is 1,500. */
        timeoutMs: z.number().positive().max(60_000).optional(),
      })
      .strict()
      .optional(),
    /** Prometheus metrics (`/metrics`) and a health check (`/healthz`) over HTTP; off unless given. */
    metrics: z.object({ host: z.string().min(1).default('127.0.0.1'), port }).strict().optional(),
    /**
     * Worker processes serving the listeners together (the kernel spreads connections, `SO_REUSEPORT`): 1 (the
     * default) runs one process; `auto` one per CPU. Limits and bans hold for all of them together. Backends and
     * settings that live in one process's memory (memory and SQLite backends, user quotas and rates) need 1.
     */
    workers: z.union([z.literal('auto'), z.number().int().min(1).max(256)], { error: 'expected auto or a number from 1 to 256' }).default(1),
    /** Seconds running transfers get to finish at SIGTERM/SIGINT before clients get 421. */
    shutdownGrace: seconds.default(30),
    log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).strict().default({ level: 'info' }),
  })
  .strict();

/** The configuration file's schema: each section, then the sections together ({@link configProblems}). */
export const config = configShape.superRefine((c, ctx) => {
  for (const { path, message } of configProblems(c)) ctx.addIssue({ code: 'custom', path, message });
});

/** A validated configuration, defaults filled in. */
export type FtpdConfig = z.infer<typeof config>;
/** One backend's settings. */
export type BackendConfig = z.infer<typeof backend>;
/** One user. */
export type UserConfig = z.infer<typeof user>;

/** A problem of a configuration as a whole (sections that must agree), at its field path. */
export interface ConfigProblem {
  path: (string | number)[];
  message: string;
}

/**
 * What makes a configuration's sections disagree (a user on an unknown backend, TLS required without TLS files,
 * per-user state with several workers…). The schema refuses a file with any; a reload (SIGHUP) asks it of the
 * configuration it would run: the running sections with the new users, since it changes no other.
 */
export function configProblems(c: z.infer<typeof configShape>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const names = Object.keys(c.backends);
  const known = (name: string, path: (string | number)[]): void => {
    if (!names.includes(name)) problems.push({ path, message: `unknown backend "${name}" (defined: ${names.join(', ') || 'none'})` });
  };
  const seen = new Set<string>();
  c.users.forEach((u, i) => {
    known(u.backend, ['users', i, 'backend']);
    for (const [at, m] of Object.entries(u.mounts)) known(m.backend, ['users', i, 'mounts', at, 'backend']);
    if (seen.has(u.name)) problems.push({ path: ['users', i, 'name'], message: `user "${u.name}" is defined twice` });
    seen.add(u.name);
    // The server matches the anonymous names in any case: `Anonymous` could never log in either.
    if (c.anonymous && ['anonymous', 'ftp'].includes(u.name.toLowerCase())) {
      problems.push({ path: ['users', i, 'name'], message: `"${u.name}" is the anonymous login while anonymous access is on` });
    }
  });
  if (c.anonymous) known(c.anonymous.backend, ['anonymous', 'backend']);
  // Two listeners on one address and port (port 0: any free one each, so never the same).
  const listening = new Set<string>();
  c.listeners.forEach((l, i) => {
    const where = `${l.host}:${l.port}`;
    if (l.port !== 0 && listening.has(where)) problems.push({ path: ['listeners', i], message: `${where} is listed twice` });
    listening.add(where);
  });
  const needsTls = c.listeners.some((l) => l.implicitTls) || (c.server.tlsRequired ?? 'none') !== 'none' || c.users.some((u) => (u.tlsRequired ?? 'none') !== 'none');
  if (needsTls && !c.tls) problems.push({ path: ['tls'], message: 'implicit TLS listeners and TLS requirements need tls.cert and tls.key' });
  if (c.workers !== 1) {
    const workers = c.workers === 'auto' ? availableParallelism() : c.workers;
    const tooFewPorts = passiveRangeProblem(c.server.passivePortRange, workers);
    if (tooFewPorts) problems.push({ path: ['server', 'passivePortRange'], message: `${tooFewPorts}${c.workers === 'auto' ? ' (auto: one per CPU of this machine)' : ''}` });
    // Each worker would hold its own copy: files, quotas or rates would silently differ between sessions.
    const why = 'lives in one process; it needs workers: 1';
    for (const [name, b] of Object.entries(c.backends)) {
      const local = b.type === 'memory' || b.type === 'sqlite' || (b.type === 'sql' && b.url.startsWith('sqlite:'));
      if (local) problems.push({ path: ['backends', name], message: `a ${b.type === 'sql' ? 'SQLite (sql)' : b.type} backend ${why}` });
    }
    c.users.forEach((u, i) => {
      if (u.quota !== undefined) problems.push({ path: ['users', i, 'quota'], message: `a user quota is counted in memory and ${why}` });
      if (u.downloadRate > 0 || u.uploadRate > 0) problems.push({ path: ['users', i], message: `a per-user rate ${why}` });
    });
  }
  if (c.users.length === 0 && !c.anonymous) problems.push({ path: ['users'], message: 'no user and no anonymous access: nobody could log in' });
  return problems;
}
