/*
 * unackedBytes: what a TCP socket holds that the peer has not acknowledged yet (ioctl SIOCOUTQ: write_seq - snd_una).
 * A download to a slow client sits in a send buffer the kernel grew to megabytes: the server hands it nothing new for
 * minutes while the client reads on, and only this count, shrinking as the client's window opens, shows it moving.
 */
#define _GNU_SOURCE
#include "addon.h"

#include <errno.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>

/* unackedBytes(fd: number) -> bytes (>= 0) or -errno. */
static napi_value unacked_bytes(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "unackedBytes(fd: number)");
    return NULL;
  }
  int queued = 0;
  if (ioctl(fd, SIOCOUTQ, &queued) != 0) return number(env, -errno);
  return number(env, queued);
}

int socket_queue_init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "unackedBytes", NAPI_AUTO_LENGTH, unacked_bytes, NULL, &fn) != napi_ok) return 0;
  return napi_set_named_property(env, exports, "unackedBytes", fn) == napi_ok;
}
