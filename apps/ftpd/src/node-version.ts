/**
 * The oldest Node.js ftpd runs on: `@platformatic/vfs`, under every backend, loads `node:sqlite` when it is
 * imported, and that module needs no flag from Node 22.13 on. Older Nodes failed with "No such built-in module:
 * node:sqlite", even for `ftpd --version`.
 */
export const MIN_NODE_VERSION = '22.13.0';

/** Why ftpd cannot run on Node `version` (`process.versions.node`), or null when it can. */
export function unsupportedNode(version: string): string | null {
  const [major = 0, minor = 0] = version.split('.').map((n) => Number.parseInt(n, 10));
  const [minMajor, minMinor] = MIN_NODE_VERSION.split('.').map(Number) as [number, number];
  if (major > minMajor || (major === minMajor && minor >= minMinor)) return null;
  return `ftpd needs Node.js ${MIN_NODE_VERSION} or later; this is Node.js ${version}. Install a newer Node (https://nodejs.org), or run it with \`npx -y node@24 …/cli.js\`.`;
}
