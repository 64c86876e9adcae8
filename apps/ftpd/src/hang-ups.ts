/**
 * SIGHUP for the whole life of the process. Node's default for it ends the process, and a `systemctl reload` may
 * come at any moment: while ftpd starts (systemd takes a simple service as started at once, and a deploy hook may
 * reload right after a restart), or while it stops. So the listener is installed first thing (cli.ts), hang-ups are
 * noted until a reload can be done, the one noted meanwhile is then done once, and after the server has stopped they
 * are ignored.
 */
let reload: (() => void) | null = null;
let pending = false;
let installed = false;

let ignoring = false;

function dispatch(): void {
  if (ignoring) return;
  if (reload !== null) reload();
  else pending = true;
}

/** Installs the listener (once): from now on SIGHUP never ends the process. */
export function catchHangUps(): void {
  if (installed) return;
  installed = true;
  process.on('SIGHUP', dispatch);
}

/**
 * Hands SIGHUP to `handler` from now on, and a hang-up that came before (while ftpd started) to it at once. Returns
 * what stops handing them over (the server has stopped): later ones are ignored.
 */
export function handleHangUps(handler: () => void): () => void {
  catchHangUps();
  reload = handler;
  if (pending) {
    pending = false;
    handler();
  }
  return () => {
    if (reload === handler) reload = null;
  };
}

/**
 * From now on hang-ups are ignored: the server is stopping, and a reload would only read files (or wait on them) for a
 * process about to end.
 */
export function ignoreHangUps(): void {
  catchHangUps();
  ignoring = true;
  reload = null;
  pending = false;
}
