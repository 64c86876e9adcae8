/** Every workload, in the order a run takes them (memory last: it restarts the server). */
import { ftpsRetr, ftpsStor, retr, stor } from './bulk.js';
import { clients } from './clients.js';
import { files } from './files.js';
import { idle } from './idle.js';
import { listing } from './listing.js';
import { logins } from './logins.js';
import type { Workload } from './types.js';

export const WORKLOADS: Workload[] = [retr, stor, ftpsRetr, ftpsStor, files, listing, logins, clients, idle(1000), idle(10_000, { oursOnly: true, runs: 1 })];

/** Workloads that depend on the storage backend: the only ones run for ours on non-default backends. */
export const BACKEND_WORKLOADS = new Set(['retr', 'stor', 'ftps-retr', 'ftps-stor', 'files', 'list']);
