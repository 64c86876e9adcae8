/* The parts of the addon, each registering its functions on the module's exports (addon.c). */
#ifndef FTP_NATIVE_ADDON_H
#define FTP_NATIVE_ADDON_H
#define NAPI_VERSION 8
#include <node_api.h>

/* sendfile.c: trySend, start, cancel, states. False if it could not set up (out of memory). */
int sendfile_init(napi_env env, napi_value exports);
/* lstat.c: lstatRows. */
int lstat_init(napi_env env, napi_value exports);
/* open.c: openBeneath. */
int open_init(napi_env env, napi_value exports);

#endif
