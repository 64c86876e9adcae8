/* The module: sendfile(2) for downloads (sendfile.c) and batched lstat for listings (lstat.c). */
#include "addon.h"

NAPI_MODULE_INIT() {
  if (!sendfile_init(env, exports) || !lstat_init(env, exports)) return NULL;
  return exports;
}
