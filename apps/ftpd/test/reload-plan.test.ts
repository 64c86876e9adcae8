import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { planReload } from '../src/config/reload-plan.js';
import { hashPassword } from '../src/passwords.js';

describe('what a reload may apply (planReload)', async () => {
  const hash = await hashPassword('pw', { ln: 10, r: 8, p: 1 });
  const config = (lines: string[]) => parseConfig([...lines, ''].join('\n'), '/etc/ftpd/ftpd.yaml', {});
  const disk = (root: string): string => `backends: { disk: { type: local, root: ${root} }, m: { type: memory } }`;

  it('users over a backend defined otherwise than the running one are refused, and the running users kept', () => {
    const running = config([disk('/srv/a'), `users: [{ name: bob, passwordHash: "${hash}", backend: m }]`]);
    const next = config([disk('/srv/b'), `users: [{ name: bob, passwordHash: "${hash}", backend: m, mounts: { /files: { backend: disk } } }]`]);
    const plan = planReload(running, next);
    expect(plan.users).toEqual({ refused: 'user "bob" uses backend "disk", which is defined otherwise than the running one' });
    expect(plan.config.users).toBe(running.users);
    expect(plan.restartNeeded).toEqual(['backends']);
  });

  it('an unchanged file changes nothing; TLS turned on waits for a restart', () => {
    const lines = [disk('/srv/a'), `users: [{ name: bob, passwordHash: "${hash}", backend: m }]`];
    expect(planReload(config(lines), config(lines))).toMatchObject({ restartNeeded: [], users: { change: { total: 1, added: 0, removed: 0, changed: 0 } }, tls: null });
    const withTls = planReload(config(lines), config([...lines, 'tls: { cert: cert.pem, key: key.pem }']));
    expect(withTls.restartNeeded).toEqual(['tls (added)']);
    expect(withTls.tls).toBe(null);
    expect(withTls.config.tls).toBe(undefined);
  });

  it('users that contradict the sections still running are refused (checked with those, not the new file\'s)', () => {
    // Workers off and a user quota in the new file: fine for the file, not for the two workers still running.
    const redis = 'backends: { r: { type: redis, url: "redis://127.0.0.1:6379/0" } }';
    const running = config([redis, 'workers: 2', 'server: { passivePortRange: 30000-30099 }', `users: [{ name: bob, passwordHash: "${hash}", backend: r }]`]);
    const next = config([redis, 'workers: 1', 'server: { passivePortRange: 30000-30099 }', `users: [{ name: bob, passwordHash: "${hash}", backend: r, quota: 5000 }]`]);
    const plan = planReload(running, next);
    expect(plan.users).toEqual({ refused: expect.stringMatching(/users\.0\.quota: a user quota is counted in memory/) });
    expect(plan.config.users).toBe(running.users);
    expect(plan.restartNeeded).toEqual(['workers']);
    // A user requiring TLS in a file that turns TLS on, while the running server has none.
    const plain = ['backends: { m: { type: memory } }', `users: [{ name: bob, passwordHash: "${hash}", backend: m }]`];
    const tlsUser = ['backends: { m: { type: memory } }', 'tls: { cert: c.pem, key: k.pem }', `users: [{ name: bob, passwordHash: "${hash}", backend: m, tlsRequired: all }]`];
    expect(planReload(config(plain), config(tlsUser)).users).toEqual({ refused: expect.stringMatching(/^tls: implicit TLS listeners and TLS requirements need/) });
  });

  it('the TLS files of the new file are the ones read again', () => {
    const lines = ['backends: { m: { type: memory } }', `users: [{ name: bob, passwordHash: "${hash}", backend: m }]`];
    const plan = planReload(config([...lines, 'tls: { cert: a.pem, key: a.key }']), config([...lines, 'tls: { cert: b.pem, key: b.key }']));
    expect(plan.tls).toEqual({ cert: '/etc/ftpd/b.pem', key: '/etc/ftpd/b.key' });
    expect(plan.restartNeeded).toEqual([]);
  });
});
