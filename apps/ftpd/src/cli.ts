#!/usr/bin/env node
// Before any of the server's modules load: ftpd may start itself again at once with V8 flags that only take
// effect at launch (launch-flags.ts), and whatever the first process loaded would be thrown away.
import { relaunchWithLaunchFlags } from './launch-flags.js';
import { unsupportedNode } from './node-version.js';

// Said plainly, before a module that an older Node cannot load fails with an error about node:sqlite.
const tooOld = unsupportedNode(process.versions.node);
if (tooOld !== null) {
  process.stderr.write(`${tooOld}\n`);
  process.exit(1);
}
relaunchWithLaunchFlags();
// Before anything slow: a SIGHUP while ftpd loads and starts must not end it (see hang-ups.ts).
(await import('./hang-ups.js')).catchHangUps();
await import('./cli-main.js');
