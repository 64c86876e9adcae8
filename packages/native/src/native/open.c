/*
 * openat2(2) with RESOLVE_BENEATH: opens a path below a folder, the kernel refusing any resolution that would leave
 * it (a "..", an absolute symlink, a symlink leading out, a /proc magic link) as it walks, race-free. A confined
 * open in one walk of the path, where realpath-then-open-then-check walks it once per component and again after.
 * Linux 5.6 and later; older kernels say ENOSYS.
 */
#define _GNU_SOURCE
#include "addon.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static napi_value number(napi_env env, double value) {
  napi_value out;
  napi_create_double(env, value, &out);
  return out;
}

/* A whole string argument, or false: wrong type, too long, or holding a NUL byte (never opened as a shorter path). */
static int path_arg(napi_env env, napi_value value, char *buf, size_t size) {
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, buf, size, &length) != napi_ok) return 0;
  return length < size - 1 && strlen(buf) == length;
}

/*
 * openBeneath(root: string, relative: string, flags: number, mode: number) -> fd (>= 0) or -errno.
 * `relative` is resolved below the folder `root` (itself resolved as given). O_CLOEXEC is always added. EXDEV:
 * the resolution would have left `root` or met an absolute symlink; EINVAL: an argument that cannot be a path.
 */
static napi_value open_beneath(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t flags = 0, mode = 0;
  char root[PATH_MAX + 1], relative[PATH_MAX + 1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 || napi_get_value_int32(env, argv[2], &flags) != napi_ok ||
      napi_get_value_int32(env, argv[3], &mode) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "openBeneath(root: string, relative: string, flags: number, mode: number)");
    return NULL;
  }
  if (!path_arg(env, argv[0], root, sizeof root) || !path_arg(env, argv[1], relative, sizeof relative)) return number(env, -EINVAL);
  int folder = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (folder < 0) return number(env, -errno);
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)(uint32_t)flags | O_CLOEXEC;
  /* openat2 refuses a mode without O_CREAT or O_TMPFILE (open(2) ignores it). */
  how.mode = (flags & O_CREAT) == O_CREAT || (flags & O_TMPFILE) == O_TMPFILE ? (uint64_t)(mode & 07777) : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  long fd;
  do {
    fd = syscall(SYS_openat2, folder, relative, &how, sizeof how);
  } while (fd < 0 && (errno == EINTR || errno == EAGAIN)); /* EAGAIN: a rename raced the walk; the kernel asks for a retry */
  int err = errno;
  close(folder);
  return number(env, fd >= 0 ? (double)fd : -err);
}

int open_init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "openBeneath", NAPI_AUTO_LENGTH, open_beneath, NULL, &fn) != napi_ok) return 0;
  return napi_set_named_property(env, exports, "openBeneath", fn) == napi_ok;
}
