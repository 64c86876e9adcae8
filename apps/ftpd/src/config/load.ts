import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { config, type FtpdConfig } from './schema.js';

/** A configuration that cannot be used: every problem, each naming the file, the field and what was expected. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`${file}: invalid configuration\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Path = ReadonlyArray<string | number | symbol>;

/** `users[0].backend`: how a person reads a field path. */
export function fieldPath(path: Path): string {
  let out = '';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : out === '' ? String(key) : `.${String(key)}`;
  return out || '(top level)';
}

/**
 * Environment overrides for containers: `FTPD_SERVER__IDLE_TIMEOUT=300` sets `server.idleTimeout`. Levels are
 * separated by `__`, each level in SCREAMING_SNAKE_CASE (camelCase in the file), array items by their index
 * (`FTPD_LISTENERS__0__PORT`). Values are read as YAML scalars (`300` is a number, `true` a boolean); a name ending
 * in `_FILE` reads the value from that file instead (`FTPD_USERS__0__PASSWORD_HASH_FILE=/run/secrets/alice`).
 * Variables without `__` (`FTPD_PORT`…) belong to the zero-config mode and are not read here (ftpd warns of them
 * with a configuration file). Returns the field path each variable set, so that a problem with its value names it.
 */
export function applyEnv(doc: Record<string, unknown>, env: NodeJS.ProcessEnv, problems: string[]): Override[] {
  const overrides: Override[] = [];
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('FTPD_') || !name.includes('__') || raw === undefined) continue;
    let value: unknown;
    let levels = name.slice(5).split('__');
    const last = levels[levels.length - 1]!;
    if (last.endsWith('_FILE')) {
      levels = [...levels.slice(0, -1), last.slice(0, -5)];
      try {
        value = readSecretFile(raw);
      } catch (err) {
        problems.push(`${name}: cannot read ${raw}: ${(err as Error).message}`);
        continue;
      }
    } else {
      value = parseScalar(raw);
    }
    const keys = levels.map((l) => (/^\d+$/.test(l) ? Number(l) : camel(l)));
    overrides.push({ variable: name, path: keys });
    let node: Record<string | number, unknown> = doc;
    keys.forEach((key, i) => {
      if (i === keys.length - 1) {
        node[key] = value;
        return;
      }
      const next = node[key];
      // A copy of each level on the way: a YAML alias is the very object of its anchor, so setting bob's
      // `permissions: *p` changed alice's `&p` too (an override meant for one user given to another).
      if (typeof next !== 'object' || next === null) node[key] = typeof keys[i + 1] === 'number' ? [] : {};
      else node[key] = Array.isArray(next) ? [...(next as unknown[])] : { ...(next as Record<string, unknown>) };
      node = node[key] as Record<string | number, unknown>;
    });
  }
  return overrides;
}

/** A field an environment variable set: `FTPD_SERVER__IDLE_TIMEOUT` set `server.idleTimeout`. */
export interface Override {
  variable: string;
  path: ReadonlyArray<string | number>;
}

function parseScalar(text: string): unknown {
  const doc = parseDocument(text);
  return doc.errors.length > 0 ? text : doc.toJS();
}

function camel(snake: string): string {
  return snake.toLowerCase().replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** A secret file's content, without the final newline editors and `echo` add. */
function readSecretFile(path: string): string {
  return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
}

/**
 * Replaces every `{ fromFile: path }` with the file's content (paths relative to the config file), so any
 * field, not only passwords, can come from a mounted secret.
 */
function resolveSecrets(node: unknown, base: string, path: (string | number)[], problems: string[], unread: string[]): unknown {
  if (Array.isArray(node)) return node.map((v, i) => resolveSecrets(v, base, [...path, i], problems, unread));
  if (typeof node !== 'object' || node === null) return node;
  const entries = Object.entries(node);
  if (entries.length === 1 && entries[0]![0] === 'fromFile' && typeof entries[0]![1] === 'string') {
    const file = resolve(base, entries[0]![1]);
    try {
      return readSecretFile(file);
    } catch (err) {
      problems.push(`${fieldPath(path)}: cannot read ${file}: ${(err as Error).message}`);
      unread.push(fieldPath(path));
      return node;
    }
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, resolveSecrets(v, base, [...path, k], problems, unread)]));
}

/**
 * An issue of the schema as problem lines: `users[0].passwordHash (user "bob"): expected…`, or, when an environment
 * variable brought the value, `FTPD_SERVER__IDLE_TIMOUT: server: Unrecognized key: "idleTimout"`: the file is
 * not where to look for it. A key the file and a variable both brought unrecognized is one line each.
 */
function describeIssue(issue: z.core.$ZodIssue, overrides: readonly Override[], raw: unknown): string[] {
  const where = `${fieldPath(issue.path)}${userNameOf(issue.path, raw, issue.message)}`;
  if (issue.code === 'unrecognized_keys') {
    const fromEnv = issue.keys.map((k) => ({ key: k, by: overrideOf([...issue.path, k], overrides, true) }));
    const fromFile = fromEnv.filter((k) => k.by === undefined).map((k) => k.key);
    return [
      ...fromEnv.filter((k) => k.by !== undefined).map((k) => `${k.by!.variable}: ${where}: ${unrecognized([k.key])}`),
      ...(fromFile.length > 0 ? [`${where}: ${unrecognized(fromFile)}`] : []),
    ];
  }
  const by = overrideOf(issue.path, overrides, false);
  return [`${by ? `${by.variable}: ` : ''}${where}: ${issue.message}`];
}

/** zod's words for keys not in the schema. */
function unrecognized(keys: readonly string[]): string {
  return `Unrecognized key${keys.length > 1 ? 's' : ''}: ${keys.map((k) => JSON.stringify(k)).join(', ')}`;
}

/**
 * The variable that set the value at `path`, or one inside it; `inside` also counts one that set a field under
 * `path` (a key it made: `FTPD_SERVER__FOO__BAR` made `server.foo`).
 */
function overrideOf(path: Path, overrides: readonly Override[], inside: boolean): Override | undefined {
  const startsWith = (long: Path, short: Path): boolean => short.length <= long.length && short.every((k, i) => String(k) === String(long[i]));
  return overrides.findLast((o) => startsWith(path, o.path) || (inside && startsWith(o.path, path)));
}

/** ` (user "bob")` for a path in the users' list, so that a problem of the 87th user says whose it is. */
function userNameOf(path: Path, raw: unknown, message: string): string {
  if (path[0] !== 'users' || typeof path[1] !== 'number') return '';
  const name = ((raw as { users?: unknown }).users as Array<{ name?: unknown }> | undefined)?.[path[1]]?.name;
  return typeof name === 'string' && name !== '' && !message.includes(JSON.stringify(name)) ? ` (user ${JSON.stringify(name)})` : '';
}

/**
 * Reads, overrides (environment), resolves secrets in and validates a configuration file. Throws a
 * {@link ConfigError} listing every problem; relative paths in the result are resolved against the file's folder.
 */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): FtpdConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${(err as Error).message}`]);
  }
  return parseConfig(text, file, env);
}

/**
 * How many alias expansions (yaml counts an alias by the size of what it repeats) a file may use. yaml's default,
 * 100, refused 150 users sharing one `*common` anchor; this allows thousands while an alias bomb still stops early.
 */
const MAX_ALIAS_COUNT = 10_000;

/** {@link loadConfig} for text already read; `file` names it in errors and anchors relative paths. */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): FtpdConfig {
  // No YAML 1.1 merge keys (`<<: *common`): each merge copies its anchor whole, which the alias count does not see
  // (a 110 KB file of 9,000 merges of a 2,000-key anchor took 25 s and 2 GB to load, and froze a server at reload).
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const first = (e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
        return e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}: ${first}` : first;
      }),
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {};
  } catch (err) {
    // yaml's guard against alias bombs (a few lines that expand to gigabytes): a problem of the file, said in one line.
    throw new ConfigError(file, [`cannot expand the file's YAML aliases: ${(err as Error).message.split('\n')[0]}`]);
  }
  if (typeof raw !== 'object' || Array.isArray(raw) || raw === null) throw new ConfigError(file, ['(top level): expected a mapping of sections (listeners, backends, users…)']);
  const problems: string[] = [];
  const base = dirname(resolve(file));
  const overrides = applyEnv(raw as Record<string, unknown>, env, problems);
  // A secret file that cannot be read is one problem: the schema's complaint about the { fromFile } left in its place would repeat it.
  const unread: string[] = [];
  const resolved = resolveSecrets(raw, base, [], problems, unread);
  const result = config.safeParse(resolved);
  if (!result.success) problems.push(...result.error.issues.filter((i) => !unread.includes(fieldPath(i.path))).flatMap((i) => describeIssue(i, overrides, resolved)));
  if (problems.length > 0 || !result.success) throw new ConfigError(file, problems);
  return anchorPaths(result.data, base);
}

/**
 * Makes the file paths of a configuration absolute, relative to the config file's folder: under systemd the
 * working directory is `/`. Every path a configuration holds: a local root, a SQLite file (sqlite backend or
 * `sqlite:` URL), the TLS files (`fromFile` secrets are read relative to it already).
 */
function anchorPaths(c: FtpdConfig, base: string): FtpdConfig {
  const backends = Object.fromEntries(
    Object.entries(c.backends).map(([name, b]) => {
      switch (b.type) {
        case 'local':
          return [name, { ...b, root: resolve(base, b.root) }];
        case 'sqlite':
          return [name, { ...b, file: resolve(base, b.file) }];
        case 'sql':
          return [name, { ...b, url: anchorSqliteUrl(b.url, base) }];
        default:
          return [name, b];
      }
    }),
  );
  const tls = c.tls ? { ...c.tls, cert: resolve(base, c.tls.cert), key: resolve(base, c.tls.key) } : undefined;
  return { ...c, backends, ...(tls ? { tls } : {}) };
}

/**
 * A `sqlite:` URL with its file made absolute (`sqlite:fs.db` → `sqlite:/etc/ftpd/fs.db`); other URLs, and
 * `sqlite::memory:`, as they are. The forms are driver-sql's: `sqlite:rel.db`, `sqlite:/abs.db`, `sqlite:///abs.db`.
 */
export function anchorSqliteUrl(url: string, base: string): string {
  if (!url.startsWith('sqlite:')) return url;
  let rest = url.slice('sqlite:'.length);
  if (rest.startsWith('//')) rest = rest.slice(2);
  if (rest === '' || rest === ':memory:' || rest.startsWith('/')) return url;
  return `sqlite:${encodeURI(resolve(base, decodeURIComponent(rest)))}`;
}
