/*
 * trimHeap: gives the malloc heap's free pages back to the kernel (glibc's malloc_trim).
 * glibc returns freed memory on its own only from the top of a heap: after a burst of transfers (TLS, deflate,
 * SQLite, Node's buffers), free chunks between live ones keep their pages resident, measured at ~67 MB of a 90 MB
 * main heap after 30 sessions' load, for as long as the process lives. malloc_trim releases every whole free page
 * inside every arena (madvise MADV_DONTNEED), leaving the allocations where they are.
 */
#include "addon.h"

#include <stdbool.h>
/* Any C library header defines __GLIBC__ on glibc (through features.h): said here, not left to Node's headers. */
#include <stdlib.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* trimHeap() -> 1 if memory was released, else 0 (always 0 without glibc: HAS_MALLOC_TRIM says so first). */
static napi_value trim_heap(napi_env env, napi_callback_info info) {
  (void)info;
#if defined(__GLIBC__)
  return number(env, malloc_trim(0) ? 1 : 0);
#else
  return number(env, 0);
#endif
}

int heap_trim_init(napi_env env, napi_value exports) {
  napi_value fn, available;
#if defined(__GLIBC__)
  const bool has_trim = true;
#else
  const bool has_trim = false;
#endif
  if (napi_create_function(env, "trimHeap", NAPI_AUTO_LENGTH, trim_heap, NULL, &fn) != napi_ok || napi_get_boolean(env, has_trim, &available) != napi_ok) return 0;
  return napi_set_named_property(env, exports, "trimHeap", fn) == napi_ok && napi_set_named_property(env, exports, "HAS_MALLOC_TRIM", available) == napi_ok;
}
