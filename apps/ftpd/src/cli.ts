#!/usr/bin/env node
// Before any of the server's modules load: ftpd may start itself again at once with V8 flags that only take
// effect at launch (launch-flags.ts), and whatever the first process loaded would be thrown away.
import { relaunchWithLaunchFlags } from './launch-flags.js';

relaunchWithLaunchFlags();
await import('./cli-main.js');
