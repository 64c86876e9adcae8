import type { Redis } from 'ioredis';

/** Runs `fn` and answers the commands Redis executed on keys of `prefix` meanwhile (MONITOR shows script calls too). */
export async function commandsDuring(redis: Redis, prefix: string, fn: () => Promise<void>): Promise<string[][]> {
  const monitor = await redis.duplicate().monitor();
  const seen: string[][] = [];
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args.some((a) => a.includes(`{${prefix}}`))) seen.push(args);
  });
  try {
    await fn();
    // A marker command: once MONITOR shows it, every command before it has been seen.
    await redis.get(`{${prefix}}:marker`);
    const deadline = Date.now() + 5000;
    while (!seen.some((a) => a[1] === `{${prefix}}:marker`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  } finally {
    monitor.disconnect();
  }
  // A script's first use after Redis (re)started is EVALSHA, NOSCRIPT, then EVAL of the source: one script call.
  const commands = seen.filter((a) => a[1] !== `{${prefix}}:marker`);
  return commands.filter((a, i) => !(/^eval$/i.test(a[0] ?? '') && /^evalsha$/i.test(commands[i - 1]?.[0] ?? '')));
}
