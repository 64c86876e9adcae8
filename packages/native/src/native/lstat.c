/*
 * lstat of many names in one call, for folder listings: Node's fs.lstatSync costs ~2.5× the system call itself
 * (a request, a Stats object, a path conversion per call), which is most of a 10,000-entry listing's time. Here
 * each entry is one statx(2) and its fields go straight into a Float64Array, in Node's order and with Node's
 * values (libuv's: statx with the birth time, times in milliseconds as sec * 1e3 + nsec / 1e6).
 */
#define _GNU_SOURCE
#include "addon.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Doubles per row: dev, mode, nlink, uid, gid, rdev, blksize, ino, size, blocks, atimeMs, mtimeMs, ctimeMs, birthtimeMs. */
#define FIELDS 14

static double ms(struct statx_timestamp t) {
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void fill(double *row, const struct statx *s) {
  row[0] = (double)makedev(s->stx_dev_major, s->stx_dev_minor);
  row[1] = s->stx_mode;
  row[2] = s->stx_nlink;
  row[3] = s->stx_uid;
  row[4] = s->stx_gid;
  row[5] = (double)makedev(s->stx_rdev_major, s->stx_rdev_minor);
  row[6] = s->stx_blksize;
  row[7] = (double)s->stx_ino;
  row[8] = (double)s->stx_size;
  row[9] = (double)s->stx_blocks;
  row[10] = ms(s->stx_atime);
  row[11] = ms(s->stx_mtime);
  row[12] = ms(s->stx_ctime);
  row[13] = ms(s->stx_btime);
}

static napi_value failure(napi_env env, int64_t index, int err) {
  napi_value out, v;
  napi_create_object(env, &out);
  napi_create_int64(env, index, &v);
  napi_set_named_property(env, out, "index", v);
  napi_create_int32(env, -err, &v);
  napi_set_named_property(env, out, "errno", v);
  return out;
}

/* statx's answers that mean it cannot be used here at all (as libuv reads them): seccomp, old kernels, DVS. */
static int no_statx(int err) {
  return err == ENOSYS || err == EPERM || err == EOPNOTSUPP || err == EINVAL;
}

/*
 * lstatRows(prefix: string, names: string[], rows: Float64Array, dev?: number, ino?: number)
 *   -> null | { index, errno }
 * Row i gets the lstat of prefix + names[i]; a name that does not exist gets a mode of NaN. The first other
 * failure stops the call and is returned (errno negative, as libuv's; index -1: the prefix's folder was not the one
 * with `dev` and `ino`, -ESTALE; -ENOSYS: statx cannot be used here). Rows before it are filled.
 */
static napi_value lstat_rows(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_typedarray_type type;
  size_t length, count = 0, prefix_len = 0;
  void *data;
  uint32_t n = 0;
  bool is_array = false;
  double want_dev = -1, want_ino = -1;
  char path[PATH_MAX + 1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 || napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[1], &n) != napi_ok || napi_get_typedarray_info(env, argv[2], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_float64_array || length < (size_t)n * FIELDS ||
      (argc >= 5 && (napi_get_value_double(env, argv[3], &want_dev) != napi_ok || napi_get_value_double(env, argv[4], &want_ino) != napi_ok))) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "lstatRows(prefix: string, names: string[], rows: Float64Array of names.length * 14, dev?, ino?)");
    return NULL;
  }
  int bad = copy_path(env, argv[0], path, sizeof path, &prefix_len);
  if (bad == NOT_A_STRING) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "lstatRows: the prefix must be a string");
    return NULL;
  }
  if (bad != 0) return failure(env, 0, -bad);
  if (n == 0) {
    napi_value none;
    napi_get_null(env, &none);
    return none;
  }
  /*
   * The names are looked up relative to the prefix's folder, opened once: the path up to it is walked once, not
   * once per entry (about a sixth of each lookup on a path a few folders deep). Only a prefix that ends in '/'
   * is a folder's ("/tmp/a" + "bc" is /tmp/abc). One that is not a folder (or is not there) is looked up whole,
   * per entry, for the error fs.lstatSync would give. With `dev` and `ino`, the folder opened must be that one:
   * a folder swapped (for a link out, say) between the caller's check and this open is refused, not listed.
   */
  int folder = prefix_len > 0 && path[prefix_len - 1] == '/' ? open(path, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
  if (want_dev >= 0 && folder >= 0) {
    /* (A prefix that does not open as a folder any more is looked up whole, and fails as fs.lstatSync would.) */
    struct statx f;
    int looked = statx(folder, "", AT_EMPTY_PATH, STATX_INO, &f);
    if (looked != 0 && no_statx(errno)) {
      close(folder);
      return failure(env, 0, ENOSYS);
    }
    if (looked != 0 || (double)makedev(f.stx_dev_major, f.stx_dev_minor) != want_dev || (double)f.stx_ino != want_ino) {
      close(folder);
      return failure(env, -1, ESTALE);
    }
  }
  const char *name_at = path + prefix_len;
  napi_value result = NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value name;
    /* After the prefix: too long for it (with the prefix), or holding a NUL byte, never another, shorter path. */
    bad = napi_get_element(env, argv[1], i, &name) != napi_ok ? NOT_A_STRING : copy_path(env, name, path + prefix_len, sizeof path - prefix_len, &count);
    if (bad == NOT_A_STRING) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "lstatRows: every name must be a string");
      break;
    }
    if (bad != 0) {
      result = failure(env, i, -bad);
      break;
    }
    /* Read again after each name: a getter on the array could have detached or replaced the rows' memory. */
    if (napi_get_typedarray_info(env, argv[2], &type, &length, &data, NULL, NULL) != napi_ok || length < (size_t)n * FIELDS) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "lstatRows: rows changed while names were read");
      break;
    }
    struct statx s;
    double *row = (double *)data + (size_t)i * FIELDS;
    /* Relative to the folder (an empty name: the folder itself, as prefix + "" would be), else the whole path; so
       is an absolute name, whose prefix + name is still below the prefix ("dir/" + "/x" is dir//x). */
    int relative = folder >= 0 && name_at[0] != '/';
    int flags = AT_SYMLINK_NOFOLLOW | (relative && count == 0 ? AT_EMPTY_PATH : 0);
    if (statx(relative ? folder : AT_FDCWD, relative ? name_at : path, flags, STATX_BASIC_STATS | STATX_BTIME, &s) == 0) {
      fill(row, &s);
      continue;
    }
    int err = errno;
    if (err == ENOENT) {
      memset(row, 0, FIELDS * sizeof *row);
      row[1] = NAN; /* gone between the folder's read and now */
      continue;
    }
    result = failure(env, i, no_statx(err) ? ENOSYS : err);
    break;
  }
  if (folder >= 0) close(folder);
  if (result == NULL) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) return NULL;
    napi_get_null(env, &result);
  }
  return result;
}

int lstat_init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "lstatRows", NAPI_AUTO_LENGTH, lstat_rows, NULL, &fn) != napi_ok) return 0;
  return napi_set_named_property(env, exports, "lstatRows", fn) == napi_ok;
}
