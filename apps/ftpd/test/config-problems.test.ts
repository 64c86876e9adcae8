import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../src/config/load.js';

// A hash at the lowest cost parseHash takes: only its form matters here.
const HASH = '$scrypt$ln=10,r=8,p=1$+KVN+zpplU73o2kljC3nDw$qX1Csz8xA3CIXJX0Cyl7iwPMb4VJlaPiTgvVNVrvNGU';
const BASE = `backends: { m: { type: memory } }\nusers: [{ name: bob, passwordHash: "${HASH}", backend: m }]\n`;

/** The problem lines of a configuration, or [] when it is valid. */
function problems(yaml: string, env: NodeJS.ProcessEnv = {}): readonly string[] {
  try {
    parseConfig(yaml, 'ok.yaml', env);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

describe('a problem an environment override brought', () => {
  it('names the variable, not only the field (the file is not where to look)', () => {
    // It said `server: Unrecognized key: "idleTimout"`, as if the file held the typo.
    expect(problems(BASE, { FTPD_SERVER__IDLE_TIMOUT: '5' })).toEqual(['FTPD_SERVER__IDLE_TIMOUT: server: Unrecognized key: "idleTimout"']);
    expect(problems(BASE, { FTPD_SERVER__IDLE_TIMEOUT: 'soon' })).toEqual(['FTPD_SERVER__IDLE_TIMEOUT: server.idleTimeout: Invalid input: expected number, received string']);
    expect(problems(BASE, { FTPD_USERS__0__QUOTA: '-1' })).toEqual(['FTPD_USERS__0__QUOTA: users[0].quota (user "bob"): Too small: expected number to be >=0']);
    // A key several levels down: the variable made the unknown key.
    expect(problems(BASE, { FTPD_SERVR__IDLE_TIMEOUT: '5' })).toEqual(['FTPD_SERVR__IDLE_TIMEOUT: (top level): Unrecognized key: "servr"']);
  });

  it("keeps the file's own problems as they were, one line each when the file and a variable both bring an unknown key", () => {
    const yaml = `${BASE}server: { idleTimout: 5 }\n`;
    expect(problems(yaml)).toEqual(['server: Unrecognized key: "idleTimout"']);
    expect(problems(yaml, { FTPD_SERVER__LOGIN_TIMOUT: '5' })).toEqual(['FTPD_SERVER__LOGIN_TIMOUT: server: Unrecognized key: "loginTimout"', 'server: Unrecognized key: "idleTimout"']);
  });
});

describe("the schema's words", () => {
  const user = (extra: string): string => `backends: { m: { type: memory } }\nusers: [{ name: bob, passwordHash: "${HASH}", backend: m, ${extra} }]\n`;

  it('a choice between forms says the forms, where it said only "Invalid input"', () => {
    const permissions = 'users[0].permissions (user "bob"): expected all, read-only, or a list of: read, write, append, delete, rename, mkdir, rmdir, site';
    expect(problems(user('permissions: readonly'))).toEqual([`${permissions}; got "readonly"`]);
    expect(problems(user('permissions: [read, wrte]'))).toEqual([`${permissions}; unknown: "wrte"`]);
    for (const range of ['abc', '10-abc', '[1]']) {
      expect(problems(`${BASE}server: { passivePortRange: ${range} }\n`)).toEqual(['server.passivePortRange: expected two ports as MIN-MAX (30000-30999) or [MIN, MAX]']);
    }
    expect(problems(`${BASE}workers: many\n`)).toEqual(['workers: expected auto or a number from 1 to 256']);
    expect(problems(`${BASE}tls: { cert: c.pem, key: k.pem, passphrase: 5 }\n`)).toEqual(['tls.passphrase: expected the secret (not empty), or { fromFile: path }']);
  });

  it("a user's problem names the user; an empty passwordHash says it is empty", () => {
    expect(problems(`backends: { m: { type: memory } }\nusers:\n  - { name: bob, passwordHash: "${HASH}", backend: m }\n  - { name: carol, passwordHash: "", backend: m }\n`)).toEqual([
      'users[1].passwordHash (user "carol"): empty: expected an scrypt hash as `ftpd hash-password` prints it ($scrypt$ln=…)',
    ]);
  });

  it('a user named Anonymous (any case) is refused while anonymous access is on: the server matches that name in any case', () => {
    const yaml = `backends: { m: { type: memory } }\nanonymous: { backend: m }\nusers: [{ name: Anonymous, passwordHash: "${HASH}", backend: m }]\n`;
    expect(problems(yaml)).toEqual(['users[0].name: "Anonymous" is the anonymous login while anonymous access is on']);
  });
});

describe('YAML merge keys', () => {
  // Each `<<: *anchor` copies its anchor whole, which YAML's alias count does not see: 9,000 merges of a 2,000-key
  // anchor (110 KB) took 25 s and 2 GB to load, and froze a running server at its reload.
  it('are not taken: a merge is refused as the unknown key it is', () => {
    const yaml = [
      'backends: { m: { type: memory } }',
      'users:',
      `  - &common { name: alice, passwordHash: "${HASH}", backend: m }`,
      '  - { <<: *common, name: bob }',
      '',
    ].join('\n');
    expect(problems(yaml)).toContain('users[1] (user "bob"): Unrecognized key: "<<"');
  });
});

describe('an override of a value the file shares through an alias', () => {
  it('changes the one field it names, not the anchor\'s other users', () => {
    const yaml = [
      'backends: { m: { type: memory } }',
      'users:',
      `  - { name: alice, passwordHash: "${HASH}", backend: m, permissions: &p [read, write] }`,
      `  - { name: bob, passwordHash: "${HASH}", backend: m, permissions: *p }`,
      '',
    ].join('\n');
    const users = parseConfig(yaml, 'alias.yaml', { FTPD_USERS__1__PERMISSIONS__0: 'delete' }).users;
    expect(users.map((u) => [u.name, u.permissions])).toEqual([
      ['alice', ['read', 'write']],
      ['bob', ['delete', 'write']],
    ]);
  });
});
