import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Password hashes in the PHC string format with scrypt (`$scrypt$ln=15,r=8,p=1$<salt>$<hash>`, base64 without
 * padding), as `ftpd hash-password` prints them. scrypt is in Node's crypto: no native dependency to build.
 */

const KEY_LENGTH = 32;
/** 2^15 × 8 × 128 B = 32 MiB and about 50–100 ms per check here: expensive to guess, cheap enough per login. */
const DEFAULT_COST = { ln: 15, r: 8, p: 1 };

interface Parsed {
  ln: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

const FORMAT = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

/** Parses a hash string; null when it is not one `ftpd hash-password` makes. */
export function parseHash(text: string): Parsed | null {
  const m = FORMAT.exec(text);
  if (!m) return null;
  const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (ln < 10 || ln > 20 || r < 1 || p < 1) return null;
  const hash = Buffer.from(m[5]!, 'base64');
  return hash.length >= 16 ? { ln, r, p, salt: Buffer.from(m[4]!, 'base64'), hash } : null;
}

function derive(password: string, salt: Buffer, cost: { ln: number; r: number; p: number }, length: number): Promise<Buffer> {
  const N = 2 ** cost.ln;
  const options: ScryptOptions = { N, r: cost.r, p: cost.p, maxmem: 256 * N * cost.r + 1024 * 1024 };
  return new Promise((resolve, reject) => scrypt(password, salt, length, options, (err, key) => (err ? reject(err) : resolve(key))));
}

const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '');

/** Hashes a password with a fresh salt. */
export async function hashPassword(password: string, cost = DEFAULT_COST): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, cost, KEY_LENGTH);
  return `$scrypt$ln=${cost.ln},r=${cost.r},p=${cost.p}$${b64(salt)}$${b64(key)}`;
}

/** The cost parameters of a hash. */
export type ScryptCost = Pick<Parsed, 'ln' | 'r' | 'p'>;

/** Hashes no password matches, by cost, checked for unknown users so that timing does not tell who exists. */
const decoys = new Map<string, Promise<Parsed>>();
const costKey = (cost: ScryptCost): string => `${cost.ln},${cost.r},${cost.p}`;
function decoyHash(cost: ScryptCost): Promise<Parsed> {
  const key = costKey(cost);
  let decoy = decoys.get(key);
  if (decoy === undefined) decoys.set(key, (decoy = hashPassword(randomBytes(16).toString('hex'), cost).then((h) => parseHash(h)!)));
  return decoy;
}

/**
 * The cost an unknown user's check should take: the one most of `hashes` have (ftpd's default without any). A
 * decoy at the default cost while the users' hashes have another would tell, by the time an answer takes, which
 * names exist.
 */
export function decoyCostOf(hashes: Iterable<ScryptCost>): ScryptCost {
  const counts = new Map<string, { cost: ScryptCost; n: number }>();
  for (const h of hashes) {
    const key = costKey(h);
    const c = counts.get(key) ?? { cost: { ln: h.ln, r: h.r, p: h.p }, n: 0 };
    c.n++;
    counts.set(key, c);
  }
  let best: { cost: ScryptCost; n: number } | undefined;
  for (const c of counts.values()) if (best === undefined || c.n > best.n) best = c;
  return best?.cost ?? DEFAULT_COST;
}

/**
 * Whether `password` matches `hash`, in constant time; `hash` null (unknown user) costs a check at `decoyCost` and
 * fails.
 */
export async function verifyPassword(password: string, hash: Parsed | null, decoyCost: ScryptCost = DEFAULT_COST): Promise<boolean> {
  const target = hash ?? (await decoyHash(decoyCost));
  const key = await derive(password, target.salt, target, target.hash.length);
  return timingSafeEqual(key, target.hash) && hash !== null;
}
