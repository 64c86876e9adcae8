/* The module: sendfile(2) for downloads (sendfile.c), batched lstat for listings (lstat.c), confined opens (open.c),
 * a socket's unacknowledged bytes (socket-queue.c),
 * the malloc heap's free pages given back (heap-trim.c). */
#include "addon.h"

NAPI_MODULE_INIT() {
  if (!sendfile_init(env, exports) || !lstat_init(env, exports) || !open_init(env, exports) || !socket_queue_init(env, exports) || !heap_trim_init(env, exports)) return NULL;
  return exports;
}
