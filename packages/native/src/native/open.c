/*
 * openat2(2) with RESOLVE_BENEATH: opens a path below a folder, the kernel refusing any resolution that would leave
 * it (a "..", an absolute symlink, a symlink leading out, a /proc magic link) as it walks, and checking that what it
 * found is below the folder when the walk ends (a folder moved out meanwhile: EXDEV; a ".." raced by a rename:
 * EAGAIN). A confined open in one walk of the path, where realpath-then-open-then-check walks it once per component and again after. Linux 5.6
 * and later; older kernels say ENOSYS, some sandboxes EPERM.
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

/* Tries a few times on EINTR and EAGAIN (a rename raced the walk; or a lease: never waited out on this thread). */
static long openat2_bounded(int dir, const char *path, struct open_how *how) {
  long fd = -1;
  for (int attempt = 0; attempt < 4; attempt++) {
    fd = syscall(SYS_openat2, dir, path, how, sizeof *how);
    if (fd >= 0 || (errno != EINTR && errno != EAGAIN)) break;
  }
  return fd;
}

/*
 * openBeneath(root: string, relative: string, flags: number, mode: number) -> fd (>= 0) or -errno.
 * `relative` is resolved below the folder `root`, which must be a path without symlinks (a realpath): one in it
 * (the root swapped for a link since it was resolved) is ELOOP, never a root elsewhere. O_CLOEXEC is always added.
 * EXDEV: the resolution would have left `root` or met an absolute symlink; EAGAIN: renames kept racing the walk.
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
  int bad = copy_path(env, argv[0], root, sizeof root, NULL);
  if (bad == 0) bad = copy_path(env, argv[1], relative, sizeof relative, NULL);
  if (bad != 0) return number(env, bad == NOT_A_STRING ? -EINVAL : bad);
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long folder = openat2_bounded(AT_FDCWD, root, &how);
  if (folder < 0) return number(env, -errno);
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)(uint32_t)flags | O_CLOEXEC;
  /* openat2 refuses a mode without O_CREAT or O_TMPFILE (open(2) ignores it). */
  how.mode = (flags & O_CREAT) == O_CREAT || (flags & O_TMPFILE) == O_TMPFILE ? (uint64_t)(mode & 07777) : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  long fd = openat2_bounded((int)folder, relative, &how);
  int err = errno;
  close((int)folder);
  return number(env, fd >= 0 ? (double)fd : -err);
}

int open_init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "openBeneath", NAPI_AUTO_LENGTH, open_beneath, NULL, &fn) != napi_ok) return 0;
  if (napi_set_named_property(env, exports, "openBeneath", fn) != napi_ok) return 0;
  /* Node's fs.constants has no O_PATH, and its value differs between architectures. */
  return napi_set_named_property(env, exports, "O_PATH", number(env, O_PATH)) == napi_ok;
}
