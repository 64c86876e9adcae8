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
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
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

/* Opens `root` (a path without symlinks) as a folder to resolve below: -errno when it cannot be. */
static long open_root(const char *root) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long folder = openat2_bounded(AT_FDCWD, root, &how);
  return folder >= 0 ? folder : -errno;
}

/*
 * Roots opened a moment ago, per thread (no lock: each thread that calls keeps its own), reused for up to the
 * caller's window: the root's own walk and close were two of the five system calls of a confined stat, and four of
 * an upload's nine. Within the window a root renamed or swapped for a link is still the folder it was (never a
 * folder elsewhere: what it was is what was confined); after it, the path is walked again. A few entries, the
 * oldest replaced: a server has a root per backend, rarely more than a handful.
 */
#define ROOT_SLOTS 4
struct root_slot {
  char *path;
  int fd;
  int64_t opened_ms;
};
static __thread struct root_slot root_slots[ROOT_SLOTS];

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The root's descriptor from the slots, opened again when older than `reuse_ms`; -errno when it cannot be opened. */
static long reused_root(const char *root, int64_t reuse_ms) {
  int64_t now = now_ms();
  struct root_slot *oldest = &root_slots[0];
  for (int i = 0; i < ROOT_SLOTS; i++) {
    struct root_slot *slot = &root_slots[i];
    if (slot->path != NULL && strcmp(slot->path, root) == 0) {
      if (now - slot->opened_ms < reuse_ms) return slot->fd;
      oldest = slot;
      break;
    }
    if (slot->path == NULL || slot->opened_ms < oldest->opened_ms) oldest = slot;
  }
  long folder = open_root(root);
  if (oldest->path != NULL) {
    close(oldest->fd);
    free(oldest->path);
    oldest->path = NULL;
  }
  if (folder < 0) return folder;
  char *copy = strdup(root);
  if (copy == NULL) {
    close((int)folder);
    return -ENOMEM;
  }
  oldest->path = copy;
  oldest->fd = (int)folder;
  oldest->opened_ms = now;
  return folder;
}

/* Whether the folder open as `fd` has been removed (no link to it is left). */
static int removed(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && st.st_nlink == 0;
}

/*
 * openBeneath(root: string, relative: string, flags: number, mode: number[, reuseRootMs: number]) -> fd (>= 0) or -errno.
 * `relative` is resolved below the folder `root`, which must be a path without symlinks (a realpath): one in it
 * (the root swapped for a link since it was resolved) is ELOOP, never a root elsewhere. O_CLOEXEC is always added.
 * EXDEV: the resolution would have left `root` or met an absolute symlink; EAGAIN: renames kept racing the walk.
 */
static napi_value open_beneath(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int32_t flags = 0, mode = 0, reuse_ms = 0;
  char root[PATH_MAX + 1], relative[PATH_MAX + 1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 || napi_get_value_int32(env, argv[2], &flags) != napi_ok ||
      napi_get_value_int32(env, argv[3], &mode) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "openBeneath(root: string, relative: string, flags: number, mode: number)");
    return NULL;
  }
  if (argc >= 5 && napi_get_value_int32(env, argv[4], &reuse_ms) != napi_ok) reuse_ms = 0;
  int bad = copy_path(env, argv[0], root, sizeof root, NULL);
  if (bad == 0) bad = copy_path(env, argv[1], relative, sizeof relative, NULL);
  if (bad != 0) return number(env, bad == NOT_A_STRING ? -EINVAL : bad);
  int reused = reuse_ms > 0;
  long folder = reused ? reused_root(root, reuse_ms) : open_root(root);
  if (folder < 0) return number(env, (double)folder);
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)(uint32_t)flags | O_CLOEXEC;
  /* openat2 refuses a mode without O_CREAT or O_TMPFILE (open(2) ignores it). */
  how.mode = (flags & O_CREAT) == O_CREAT || (flags & O_TMPFILE) == O_TMPFILE ? (uint64_t)(mode & 07777) : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  long fd = openat2_bounded((int)folder, relative, &how);
  int err = errno;
  if (fd < 0 && err == ENOENT && reused && removed((int)folder)) {
    /* The root was removed (and maybe made again) since it was opened: every name is missing there, and a new one
       cannot be made. The path is walked again. */
    folder = reused_root(root, 0);
    if (folder < 0) return number(env, (double)folder);
    fd = openat2_bounded((int)folder, relative, &how);
    err = errno;
  }
  if (!reused) close((int)folder);
  return number(env, fd >= 0 ? (double)fd : -err);
}

int open_init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "openBeneath", NAPI_AUTO_LENGTH, open_beneath, NULL, &fn) != napi_ok) return 0;
  if (napi_set_named_property(env, exports, "openBeneath", fn) != napi_ok) return 0;
  /* Node's fs.constants has no O_PATH, and its value differs between architectures. */
  return napi_set_named_property(env, exports, "O_PATH", number(env, O_PATH)) == napi_ok;
}
