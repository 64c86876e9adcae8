/*
 * sendfile(2) from a file to a TCP socket for Node, without copying the file through JavaScript buffers.
 *
 * Node has no sendfile: a download reads the file into a buffer (a thread-pool round trip) and writes it to the
 * socket (another copy). This module gives two ways to move the bytes in the kernel instead:
 *
 *   trySend   on the calling (main) thread, until the socket's send buffer is full, the count is reached or the
 *             file ends. The socket is non-blocking (libuv made it so), so this never waits for the client; it
 *             can wait for the disk on a file that is not in the page cache, which is why callers use it for
 *             small files or the first bytes only.
 *   start     the rest, on one of a few threads of this module's own (never libuv's thread pool, whose four
 *             threads every file operation of the server shares: a slow client must not hold one). Each thread
 *             waits on its own epoll instance for its sockets to take more (libuv's own epoll already watches the
 *             same descriptors for reading; a second epoll instance is independent of it).
 *
 * Both descriptors are duplicated when a background send starts and closed when it ends: JavaScript may close its
 * own descriptors meanwhile (a client's reset, ABOR) and the numbers may be reused at once by another open, which
 * must never receive this file. The socket itself stays open until the send is cancelled or ends; callers cancel
 * when their socket closes.
 *
 * Each Node environment that loads the module (the main thread, every worker thread) has an owner: its threadsafe
 * function and the Float64Arrays its sends report to. When that environment is torn down (a worker thread ends, the
 * process exits) its sends end quietly and nothing of it is touched again. The library itself is linked with
 * -z nodelete (build.mjs): Node unloads an addon with the worker thread that loaded it, and these threads run on.
 */
#define _GNU_SOURCE
#include "addon.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

/* States a send ends in (also trySend's result; negative values are -errno). */
enum { SENT_ALL = 0, WOULD_BLOCK = 1, AT_EOF = 2, CANCELLED = 3, BUDGET_USED = 4 };

/*
 * One sendfile call moves at most this much: a thread serving many sockets turns to the next one between calls. The
 * file's side is read inside the call, so on a slow disk this bounds how long one cold file holds the others up.
 */
#define STEP (256 << 10)
/* A socket that keeps taking bytes yields its thread after this much, so that others are not starved. */
#define TURN (2 << 20)
/*
 * Sends and receives have threads of their own: a receive's write can wait on a slow disk (the kernel throttles
 * writers when too much is waiting to be written back), which must not hold up the downloads of other sessions.
 */
#define SEND_THREADS 2
#define RECEIVE_THREADS 2
#define THREADS (SEND_THREADS + RECEIVE_THREADS)

/*
 * An upload's receive (`receive`) runs on the same threads the other way round: read from the socket into the thread's
 * own buffer, written to the file at once. One small buffer reused by one thread stays in that core's cache, where
 * Node's path (a read into a buffer on the event loop's thread, a write of it from a thread-pool thread) moves every
 * byte between cores through memory: about twice the CPU per GiB.
 */
#define RECV_STEP (256 << 10)

/* One per environment; freed when the environment and all its jobs are done with it. */
typedef struct owner {
  pthread_mutex_t lock; /* held while a thread of this module uses the environment's memory or function */
  int alive;            /* under lock: cleared when the environment is torn down */
  int refs;             /* atomic: the instance data's, the clean-up hook's, and one per job */
  napi_threadsafe_function done;
} owner;

typedef struct job {
  struct job *next;  /* on the thread's active list (or the incoming one) */
  struct job *next_ready;
  int on_ready;
  double id;
  int sock, file;
  int receive;  /* a receive (socket to file) rather than a send */
  int file_failed; /* the error in `result` is the file's (a receive's write), not the socket's */
  int64_t offset, left; /* left < 0: until end of file; a receive's offset < 0: write(2) at the end (O_APPEND) */
  double sent;
  int armed;   /* registered with the thread's epoll */
  int result;  /* one of the states, or -errno */
  double *progress; /* JavaScript's Float64Array: bytes sent (written) so far; a receive's [1]: 1 while writing */
  napi_ref progress_ref, callback_ref;
  owner *owner;
} job;

typedef struct worker {
  pthread_mutex_t lock;
  job *incoming;        /* new jobs, under lock */
  double *cancels;      /* ids to cancel, under lock */
  size_t ncancels, capcancels;
  int sweep;            /* under lock: an environment went away, end its jobs */
  int epoll, wake;
  job *active;          /* the thread's own */
  job *ready;           /* the thread's own: jobs that used their turn and still can send */
  char *buffer;         /* a receive thread's own: what its receives read into, RECV_STEP bytes */
} worker;

static worker workers[THREADS];
static pthread_once_t started_once = PTHREAD_ONCE_INIT;
static int started_ok = 0;
static pthread_mutex_t ids_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t next_seq = 1;

/* Sends until the count, the end of the file, a full send buffer, an error or `budget` bytes. */
static int pump(int sock, int file, int64_t *offset, int64_t *left, double *sent, int64_t budget) {
  while (*left != 0) {
    if (budget <= 0) return BUDGET_USED; /* the socket may still take more */
    size_t want = STEP;
    if (*left > 0 && *left < (int64_t)want) want = (size_t)*left;
    if (budget < (int64_t)want) want = (size_t)budget;
    off_t off = (off_t)*offset;
    ssize_t n = sendfile(sock, file, &off, want);
    if (n > 0) {
      *offset += n;
      if (*left > 0) *left -= n;
      *sent += (double)n;
      budget -= n;
      continue;
    }
    if (n == 0) return AT_EOF;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return WOULD_BLOCK;
    return -errno;
  }
  return SENT_ALL;
}

/* Tells JavaScript whether a receive is inside a write to its file (a storage stall is then not the client's). */
static void mark_writing(job *j, double on) {
  pthread_mutex_lock(&j->owner->lock);
  if (j->owner->alive) j->progress[1] = on;
  pthread_mutex_unlock(&j->owner->lock);
}

/*
 * Reads the socket and writes what came to the file, until the socket has nothing more for now, its end, an error
 * (a failed write sets file_failed) or `budget` bytes. `sent` counts what reached the file.
 */
static int pump_receive(job *j, char *buffer, int64_t budget) {
  for (;;) {
    if (budget <= 0) return BUDGET_USED;
    size_t want = budget < RECV_STEP ? (size_t)budget : RECV_STEP;
    ssize_t n = recv(j->sock, buffer, want, 0);
    if (n == 0) return AT_EOF;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return WOULD_BLOCK;
      return -errno;
    }
    mark_writing(j, 1);
    for (ssize_t done = 0; done < n;) {
      ssize_t w = j->offset >= 0 ? pwrite(j->file, buffer + done, (size_t)(n - done), (off_t)j->offset) : write(j->file, buffer + done, (size_t)(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        int err = w < 0 ? errno : EIO;
        mark_writing(j, 0);
        j->file_failed = 1;
        return -err;
      }
      done += w;
      if (j->offset >= 0) j->offset += w;
      j->sent += (double)w;
    }
    mark_writing(j, 0);
    budget -= n;
  }
}

static void owner_unref(owner *o) {
  if (__atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL) == 0) {
    pthread_mutex_destroy(&o->lock);
    free(o);
  }
}

/* Copies the count to JavaScript's Float64Array; false (and nothing written) once the environment is gone. */
static int report(job *j) {
  pthread_mutex_lock(&j->owner->lock);
  int alive = j->owner->alive;
  if (alive) *j->progress = j->sent;
  pthread_mutex_unlock(&j->owner->lock);
  return alive;
}

static void finish(worker *w, job *j, int result) {
  if (j->armed) epoll_ctl(w->epoll, EPOLL_CTL_DEL, j->sock, NULL);
  close(j->sock);
  close(j->file);
  j->result = result;
  owner *o = j->owner;
  int told = 0;
  /* Under the owner's lock: the environment cannot be torn down meanwhile (env_gone waits for it). */
  pthread_mutex_lock(&o->lock);
  if (o->alive) {
    *j->progress = j->sent;
    /* Unlinked from active by the caller. Blocking: the queue is unbounded, so this does not wait. */
    told = napi_call_threadsafe_function(o->done, j, napi_tsfn_blocking) == napi_ok;
  }
  pthread_mutex_unlock(&o->lock);
  if (!told) {
    /* The environment is going away: nobody is left to tell. Its references go with it. */
    free(j);
    owner_unref(o);
  }
}

static void unlink_job(job **list, job *j) {
  for (job **p = list; *p; p = &(*p)->next) {
    if (*p == j) {
      *p = j->next;
      j->next = NULL;
      return;
    }
  }
}

static void unlink_ready(worker *w, job *j) {
  for (job **p = &w->ready; *p; p = &(*p)->next_ready) {
    if (*p == j) {
      *p = j->next_ready;
      j->next_ready = NULL;
      j->on_ready = 0;
      return;
    }
  }
}

static int is_active(worker *w, job *j) {
  for (job *a = w->active; a; a = a->next)
    if (a == j) return 1;
  return 0;
}

/* Runs a job's turn: it ends (and leaves the thread's lists), waits for its socket, or waits for its next turn. */
static void run(worker *w, job *j) {
  /* A job whose environment is gone sends nothing more: nobody wants the rest. */
  int r = !report(j) ? CANCELLED
          : j->receive ? pump_receive(j, w->buffer, TURN)
                       : pump(j->sock, j->file, &j->offset, &j->left, &j->sent, TURN);
  /* Gone meanwhile: nobody is left to tell what was received (the bytes are in the file all the same). */
  if (!report(j)) r = CANCELLED;
  if (r == WOULD_BLOCK) {
    struct epoll_event ev = {.events = (j->receive ? EPOLLIN : EPOLLOUT) | EPOLLONESHOT, .data.ptr = j};
    if (epoll_ctl(w->epoll, j->armed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, j->sock, &ev) == 0) {
      j->armed = 1;
      return;
    }
    r = -errno;
  }
  if (r == BUDGET_USED) {
    j->next_ready = w->ready;
    j->on_ready = 1;
    w->ready = j;
    return;
  }
  unlink_job(&w->active, j);
  finish(w, j, r);
}

static void *loop(void *arg) {
  worker *w = arg;
  /* Named, so that per-thread CPU figures (/proc, top -H) tell these from the event loop's thread. */
  pthread_setname_np(pthread_self(), "ftp-native");
  struct epoll_event events[64];
  for (;;) {
    int n = epoll_wait(w->epoll, events, 64, w->ready ? 0 : -1);
    if (n < 0 && errno != EINTR) n = 0;
    job *fresh = NULL;
    double *cancels = NULL;
    size_t ncancels = 0;
    int sweep = 0;
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr != NULL) continue;
      uint64_t count;
      (void)!read(w->wake, &count, sizeof count);
      pthread_mutex_lock(&w->lock);
      fresh = w->incoming;
      w->incoming = NULL;
      cancels = w->cancels;
      ncancels = w->ncancels;
      w->cancels = NULL;
      w->ncancels = w->capcancels = 0;
      sweep = w->sweep;
      w->sweep = 0;
      pthread_mutex_unlock(&w->lock);
    }
    while (fresh) {
      job *j = fresh;
      fresh = j->next;
      j->next = w->active;
      w->active = j;
      j->on_ready = 1;
      j->next_ready = w->ready;
      w->ready = j;
    }
    /* Cancels before anything runs: a cancelled job's socket may be closed by JavaScript already. */
    for (size_t c = 0; c < ncancels; c++) {
      for (job *j = w->active; j; j = j->next) {
        if (j->id != cancels[c]) continue;
        unlink_job(&w->active, j);
        if (j->on_ready) unlink_ready(w, j);
        finish(w, j, CANCELLED);
        break;
      }
    }
    free(cancels);
    /* The jobs of an environment torn down: they would hold their sockets open for nobody. */
    for (job *j = sweep ? w->active : NULL, *next; j; j = next) {
      next = j->next;
      pthread_mutex_lock(&j->owner->lock);
      int alive = j->owner->alive;
      pthread_mutex_unlock(&j->owner->lock);
      if (alive) continue;
      unlink_job(&w->active, j);
      if (j->on_ready) unlink_ready(w, j);
      finish(w, j, CANCELLED);
    }
    for (int i = 0; i < n; i++) {
      job *j = events[i].data.ptr;
      if (j == NULL || !is_active(w, j)) continue;
      run(w, j);
    }
    job *turns = w->ready;
    w->ready = NULL;
    while (turns) {
      job *j = turns;
      turns = j->next_ready;
      j->next_ready = NULL;
      j->on_ready = 0;
      run(w, j);
    }
  }
  return NULL;
}

static void start_threads(void) {
  for (int i = 0; i < THREADS; i++) {
    worker *w = &workers[i];
    pthread_mutex_init(&w->lock, NULL);
    w->epoll = epoll_create1(EPOLL_CLOEXEC);
    w->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    w->buffer = i >= SEND_THREADS ? malloc(RECV_STEP) : NULL;
    if (w->epoll < 0 || w->wake < 0 || (i >= SEND_THREADS && w->buffer == NULL)) return;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(w->epoll, EPOLL_CTL_ADD, w->wake, &ev) != 0) return;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int failed = pthread_create(&t, &attr, loop, w);
    pthread_attr_destroy(&attr);
    if (failed) return;
  }
  __atomic_store_n(&started_ok, 1, __ATOMIC_RELEASE);
}

/* ---- JavaScript side ---- */

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, "ERR_SENDFILE", "sendfile: " #call " failed"); \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

/* count: a finite number of bytes, or a negative one (or Infinity) for "until the end of the file". */
static int64_t count_arg(double count) {
  return count >= 0 && count < 9.0e18 ? (int64_t)count : -1;
}

static double *progress_arg(napi_env env, napi_value value, size_t least) {
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, NULL, NULL) != napi_ok) return NULL;
  return type == napi_float64_array && length >= least ? data : NULL;
}

/* The four leading arguments both sends take: socketFd, fileFd, offset, count. False (an exception pending) if wrong. */
typedef struct {
  int32_t sock, file;
  double offset, count;
} range_args;

static int read_range(napi_env env, napi_value *argv, range_args *out) {
  return napi_get_value_int32(env, argv[0], &out->sock) == napi_ok && napi_get_value_int32(env, argv[1], &out->file) == napi_ok &&
         napi_get_value_double(env, argv[2], &out->offset) == napi_ok && napi_get_value_double(env, argv[3], &out->count) == napi_ok &&
         out->offset >= 0 && out->offset < 9.0e18 && !isnan(out->count);
}

/* A send's six arguments into argv, its first four into `out`; false with a TypeError pending if they are wrong. */
static int send_call(napi_env env, napi_callback_info info, napi_value argv[6], range_args *out) {
  size_t argc = 6;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && read_range(env, argv, out)) return 1;
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "socketFd, fileFd, offset and count must be numbers (offset finite, not negative)");
  return 0;
}

/*
 * trySend(socketFd, fileFd, offset, count, budget, progress: Float64Array) -> state; progress[0] = bytes sent.
 * Sends at most `budget` bytes (BUDGET_USED when they went and more is left).
 */
static napi_value try_send(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  range_args range;
  if (!send_call(env, info, argv, &range)) return NULL;
  double budget;
  CHECK(napi_get_value_double(env, argv[4], &budget));
  double *progress = progress_arg(env, argv[5], 1);
  if (progress == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "progress must be a Float64Array");
    return NULL;
  }
  int64_t off = (int64_t)range.offset, left = count_arg(range.count);
  double sent = 0;
  int r = pump(range.sock, range.file, &off, &left, &sent, budget >= 9.0e18 ? INT64_MAX : (int64_t)budget);
  progress[0] = sent;
  return number(env, r);
}

static void call_done(napi_env env, napi_value js_callback, void *context, void *data) {
  (void)js_callback;
  (void)context;
  job *j = data;
  owner *o = j->owner;
  if (env != NULL) {
    napi_value callback, global, argv[3];
    if (napi_get_reference_value(env, j->callback_ref, &callback) == napi_ok && callback != NULL) {
      napi_get_global(env, &global);
      argv[0] = number(env, j->result);
      argv[1] = number(env, j->sent);
      napi_get_boolean(env, j->file_failed, &argv[2]);
      napi_call_function(env, global, callback, 3, argv, NULL);
    }
    napi_delete_reference(env, j->callback_ref);
    napi_delete_reference(env, j->progress_ref);
  }
  free(j);
  owner_unref(o);
}

static void drop_instance(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  /* The thread-safe function is Node's to close at this point (its own clean-up hook aborts it). */
  owner_unref(data);
}

/*
 * The environment is being torn down (registered after its thread-safe function, so this runs before Node closes
 * it): from now on no thread of this module touches its memory or calls into it, and its jobs end.
 */
static void env_gone(void *data) {
  owner *o = data;
  pthread_mutex_lock(&o->lock);
  o->alive = 0;
  pthread_mutex_unlock(&o->lock);
  if (__atomic_load_n(&started_ok, __ATOMIC_ACQUIRE)) {
    for (int i = 0; i < THREADS; i++) {
      worker *w = &workers[i];
      pthread_mutex_lock(&w->lock);
      w->sweep = 1;
      pthread_mutex_unlock(&w->lock);
      uint64_t one = 1;
      (void)!write(w->wake, &one, sizeof one);
    }
  }
  owner_unref(o);
}

/* Queues a send or a receive on one of the threads; its id, or NULL with an exception pending. */
static napi_value queue_job(napi_env env, const range_args *range, napi_value progress_value, napi_value callback_value, int receive) {
  double *progress = progress_arg(env, progress_value, receive ? 2 : 1);
  napi_valuetype type;
  CHECK(napi_typeof(env, callback_value, &type));
  if (progress == NULL || type != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "a Float64Array for the progress and a callback are expected");
    return NULL;
  }
  pthread_once(&started_once, start_threads);
  owner *in;
  CHECK(napi_get_instance_data(env, (void **)&in));
  if (!started_ok || in == NULL) {
    napi_throw_error(env, "ERR_SENDFILE", "sendfile: its threads could not be started");
    return NULL;
  }
  job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    napi_throw_error(env, "ENOMEM", "sendfile: out of memory");
    return NULL;
  }
  j->sock = fcntl(range->sock, F_DUPFD_CLOEXEC, 0);
  j->file = j->sock < 0 ? -1 : fcntl(range->file, F_DUPFD_CLOEXEC, 0);
  if (j->file < 0) {
    int err = errno;
    if (j->sock >= 0) close(j->sock);
    free(j);
    napi_throw_error(env, err == EBADF ? "EBADF" : err == EMFILE ? "EMFILE" : err == ENFILE ? "ENFILE" : "ERR_SENDFILE", strerror(err));
    return NULL;
  }
  j->receive = receive;
  j->offset = receive && range->offset < 0 ? -1 : (int64_t)range->offset;
  j->left = count_arg(range->count);
  j->progress = progress;
  j->owner = in;
  __atomic_add_fetch(&in->refs, 1, __ATOMIC_ACQ_REL);
  napi_create_reference(env, progress_value, 1, &j->progress_ref);
  napi_create_reference(env, callback_value, 1, &j->callback_ref);
  pthread_mutex_lock(&ids_lock);
  uint64_t seq = next_seq++;
  pthread_mutex_unlock(&ids_lock);
  size_t index = receive ? SEND_THREADS + seq % RECEIVE_THREADS : seq % SEND_THREADS;
  j->id = (double)(seq * THREADS + index);
  worker *w = &workers[index];
  pthread_mutex_lock(&w->lock);
  j->next = w->incoming;
  w->incoming = j;
  pthread_mutex_unlock(&w->lock);
  uint64_t one = 1;
  (void)!write(w->wake, &one, sizeof one);
  return number(env, j->id);
}

/*
 * start(socketFd, fileFd, offset, count, progress: Float64Array, callback(state, sent)) -> id.
 * progress[0] follows the bytes sent; the callback gets SENT_ALL, AT_EOF, CANCELLED or -errno.
 */
static napi_value start(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  range_args range;
  if (!send_call(env, info, argv, &range)) return NULL;
  return queue_job(env, &range, argv[4], argv[5], 0);
}

/*
 * receive(socketFd, fileFd, offset, progress: Float64Array, callback(state, written, fileFailed)) -> id.
 * Reads the socket until its end, writing to the file from `offset` on (a negative offset: write(2), for a file
 * open for appending). progress[0] follows the bytes written; the callback gets AT_EOF, CANCELLED or -errno, with
 * fileFailed true when the error is the file's.
 */
static napi_value receive(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  range_args range = {.count = -1};
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 || napi_get_value_int32(env, argv[0], &range.sock) != napi_ok ||
      napi_get_value_int32(env, argv[1], &range.file) != napi_ok || napi_get_value_double(env, argv[2], &range.offset) != napi_ok ||
      isnan(range.offset) || range.offset >= 9.0e18) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "socketFd, fileFd and offset must be numbers");
    return NULL;
  }
  return queue_job(env, &range, argv[3], argv[4], 1);
}

/* cancel(id): the send ends (its callback gets CANCELLED) and its descriptors close; unknown ids are ignored. */
static napi_value cancel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  double id;
  CHECK(napi_get_value_double(env, argv[0], &id));
  if (!started_ok || id < 1) return NULL;
  worker *w = &workers[(uint64_t)id % THREADS];
  pthread_mutex_lock(&w->lock);
  if (w->ncancels == w->capcancels) {
    size_t cap = w->capcancels ? w->capcancels * 2 : 8;
    double *grown = realloc(w->cancels, cap * sizeof *grown);
    if (grown == NULL) {
      pthread_mutex_unlock(&w->lock);
      napi_throw_error(env, "ENOMEM", "sendfile: out of memory");
      return NULL;
    }
    w->cancels = grown;
    w->capcancels = cap;
  }
  w->cancels[w->ncancels++] = id;
  pthread_mutex_unlock(&w->lock);
  uint64_t one = 1;
  (void)!write(w->wake, &one, sizeof one);
  return NULL;
}

/* Registers trySend, start, receive, cancel and states on `exports`; false if the environment's owner could not be made. */
int sendfile_init(napi_env env, napi_value exports) {
  owner *in = calloc(1, sizeof *in);
  if (in == NULL) return 0;
  pthread_mutex_init(&in->lock, NULL);
  in->alive = 1;
  in->refs = 2; /* the instance data's and env_gone's */
  napi_value name;
  napi_create_string_utf8(env, "sendfile done", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, NULL, call_done, &in->done) != napi_ok) {
    pthread_mutex_destroy(&in->lock);
    free(in);
    return 0;
  }
  /* Sends in flight keep their sockets (and so the event loop) alive; this function alone must not. */
  napi_unref_threadsafe_function(env, in->done);
  napi_set_instance_data(env, in, drop_instance, NULL);
  napi_add_env_cleanup_hook(env, env_gone, in);
  napi_value fn;
  const struct { const char *name; napi_callback cb; } exported[] = {{"trySend", try_send}, {"start", start}, {"receive", receive}, {"cancel", cancel}};
  for (size_t i = 0; i < sizeof exported / sizeof exported[0]; i++) {
    napi_create_function(env, exported[i].name, NAPI_AUTO_LENGTH, exported[i].cb, NULL, &fn);
    napi_set_named_property(env, exports, exported[i].name, fn);
  }
  napi_value states;
  napi_create_object(env, &states);
  const struct { const char *name; int value; } named[] = {{"SENT_ALL", SENT_ALL}, {"WOULD_BLOCK", WOULD_BLOCK}, {"AT_EOF", AT_EOF}, {"CANCELLED", CANCELLED}, {"BUDGET_USED", BUDGET_USED}};
  for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) napi_set_named_property(env, states, named[i].name, number(env, named[i].value));
  napi_set_named_property(env, exports, "states", states);
  return 1;
}
