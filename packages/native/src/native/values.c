/* Values passed between JavaScript and the addon's parts, converted the same way everywhere. */
#include "addon.h"

#include <errno.h>
#include <string.h>

napi_value number(napi_env env, double value) {
  napi_value out;
  napi_create_double(env, value, &out);
  return out;
}

int copy_path(napi_env env, napi_value value, char *buf, size_t size, size_t *length) {
  size_t want = 0, copied = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &want) != napi_ok) return NOT_A_STRING;
  /* Measured before it is copied: a copy cut to fit stops at a whole character, and would pass for a shorter path
     that may exist (another file looked up, opened or overwritten under the name a caller checked). */
  if (want >= size - 1) return -ENAMETOOLONG;
  if (napi_get_value_string_utf8(env, value, buf, size, &copied) != napi_ok || copied != want) return NOT_A_STRING;
  /* A NUL byte inside would end the path early, at another one. */
  if (strlen(buf) != want) return -EINVAL;
  if (length != NULL) *length = want;
  return 0;
}
