/* The parts of the addon, each registering its functions on the module's exports (addon.c). */
#ifndef FTP_NATIVE_ADDON_H
#define FTP_NATIVE_ADDON_H
#define NAPI_VERSION 8
#include <node_api.h>

/* values.c: a JavaScript number. */
napi_value number(napi_env env, double value);

/* copy_path's answer for a value that is not a string. */
#define NOT_A_STRING 1
/*
 * values.c: a path string into `buf` (`size` bytes, room for a path shorter than size - 1 bytes and its NUL), its
 * length in `length` when given: 0, -ENAMETOOLONG (measured before the copy), -EINVAL (a NUL byte inside), or
 * NOT_A_STRING.
 */
int copy_path(napi_env env, napi_value value, char *buf, size_t size, size_t *length);

/* sendfile.c: trySend, start, receive, cancel, states. False if it could not set up (out of memory). */
int sendfile_init(napi_env env, napi_value exports);
/* lstat.c: lstatRows. */
int lstat_init(napi_env env, napi_value exports);
/* open.c: openBeneath, O_PATH. */
int open_init(napi_env env, napi_value exports);
/* socket-queue.c: unackedBytes. */
int socket_queue_init(napi_env env, napi_value exports);
/* heap-trim.c: trimHeap. */
int heap_trim_init(napi_env env, napi_value exports);

#endif
