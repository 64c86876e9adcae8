/*
 * The load generator of the session workloads (200 clients, logins): many FTP sessions at once from one thread,
 * on one epoll instance, in C. The same sessions from Node cost a whole core at ~1,400 sessions/s and became
 * what the workload measured; here they cost a fraction of one, so the server is what runs out.
 *
 * Each session: connect, 220, USER (331 → PASS, 230), then either QUIT (logins) or TYPE I, EPSV, connect the
 * data port, RETR, 150/125, the data to its end (discarded in the kernel: recv with MSG_TRUNC copies nothing)
 * and 226/250, then QUIT, 221, close. Sessions start until the deadline (or the count limit); those running
 * then finish. Any other reply, a reset, or no progress for the timeout fails the session; a failed session
 * waits 50 ms before its slot starts the next, as real clients back off.
 *
 * Output, one line of JSON on stdout: done, failed, first error, seconds, latency percentiles (ms), own CPU.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { MODE_LOGINS, MODE_CLIENTS };

enum step {
  IDLE,       /* not started, or backing off until `wake` */
  CONNECTING, /* control connection */
  GREETING,   /* waiting for 220 */
  USER_SENT,
  PASS_SENT,
  TYPE_SENT,
  EPSV_SENT,
  DATA_CONNECTING,
  RETR_SENT,  /* waiting for 150/125 */
  RECEIVING,  /* after 150: the data's end and the 226 */
  QUIT_SENT,
};

struct endpoint {
  struct session *s;
  int fd;
  int is_data;
};

struct session {
  enum step step;
  struct endpoint ctrl, data;
  double started, last_progress, wake;
  long long bytes;
  int data_ended, final_reply;
  char line[8192];
  size_t line_len;
  int multiline_code; /* the code of an open multi-line reply, or 0 */
};

static struct {
  enum mode mode;
  struct sockaddr_in addr;
  const char *user, *pass, *retr;
  long long expect_bytes;
  int concurrency;
  double seconds, timeout;
  long max_sessions;
} opt = {.concurrency = 1, .seconds = 1, .timeout = 10, .max_sessions = 1000000, .expect_bytes = -1};

static int ep;
static long started_count, done_count, failed_count, done_in_window;
static double window_end;
static char first_error[512];
static double *latencies;
static size_t latencies_len, latencies_cap;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void close_endpoint(struct endpoint *e) {
  if (e->fd >= 0) {
    close(e->fd); /* also leaves the epoll set */
    e->fd = -1;
  }
}

static void fail(struct session *s, const char *why) {
  failed_count++;
  if (first_error[0] == '\0') snprintf(first_error, sizeof first_error, "%s", why);
  close_endpoint(&s->ctrl);
  close_endpoint(&s->data);
  s->step = IDLE;
  s->wake = now_ms() + 50;
}

static int watch(struct endpoint *e, unsigned events, int op) {
  struct epoll_event ev = {.events = events, .data.ptr = e};
  return epoll_ctl(ep, op, e->fd, &ev);
}

/* A non-blocking TCP connection with Nagle off, registered for EPOLLOUT until it connects. */
static int open_connection(struct endpoint *e, int port) {
  struct sockaddr_in a = opt.addr;
  a.sin_port = htons((unsigned short)port);
  e->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (e->fd < 0) return -1;
  int one = 1;
  setsockopt(e->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(e->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) return -1;
  return watch(e, EPOLLOUT, EPOLL_CTL_ADD);
}

static void start(struct session *s) {
  if (started_count >= opt.max_sessions) return;
  started_count++;
  s->line_len = 0;
  s->multiline_code = 0;
  s->bytes = 0;
  s->data_ended = s->final_reply = 0;
  s->started = s->last_progress = now_ms();
  s->step = CONNECTING;
  if (open_connection(&s->ctrl, ntohs(opt.addr.sin_port)) < 0) {
    char why[128];
    snprintf(why, sizeof why, "connect: %s", strerror(errno));
    fail(s, why);
  }
}

static int send_line(struct session *s, const char *verb, const char *arg) {
  char buf[1024];
  int n = arg ? snprintf(buf, sizeof buf, "%s %s\r\n", verb, arg) : snprintf(buf, sizeof buf, "%s\r\n", verb);
  /* A command is a few bytes on an idle socket: it always fits its send buffer. MSG_NOSIGNAL: a server that has
     closed gives EPIPE, a failed session, not a SIGPIPE that ends the whole run. */
  if (send(s->ctrl.fd, buf, (size_t)n, MSG_NOSIGNAL) != n) {
    fail(s, "write of a command failed");
    return -1;
  }
  return 0;
}

static void finish(struct session *s) {
  double took = now_ms() - s->started;
  close_endpoint(&s->ctrl);
  close_endpoint(&s->data);
  done_count++;
  if (now_ms() <= window_end) done_in_window++;
  if (latencies_len == latencies_cap) {
    latencies_cap = latencies_cap ? latencies_cap * 2 : 4096;
    latencies = realloc(latencies, latencies_cap * sizeof *latencies);
    if (latencies == NULL) abort();
  }
  latencies[latencies_len++] = took;
  s->step = IDLE;
  s->wake = 0;
}

static const char *step_names[] = {"idle", "connect", "greeting", "USER", "PASS", "TYPE", "EPSV", "data connect", "RETR", "transfer", "QUIT"};

static void unexpected(struct session *s, int code, const char *text) {
  char why[256];
  snprintf(why, sizeof why, "after %s: got %d %.180s", step_names[s->step], code, text);
  fail(s, why);
}

/* The RETR is complete once both its data has ended and its final reply came. */
static void maybe_transfer_done(struct session *s) {
  if (!s->data_ended || !s->final_reply) return;
  if (opt.expect_bytes >= 0 && s->bytes != opt.expect_bytes) {
    char why[128];
    snprintf(why, sizeof why, "RETR gave %lld bytes", s->bytes);
    fail(s, why);
    return;
  }
  if (send_line(s, "QUIT", NULL) == 0) s->step = QUIT_SENT;
}

static void on_reply(struct session *s, int code, const char *text) {
  switch (s->step) {
  case GREETING:
    if (code != 220) return unexpected(s, code, text);
    if (send_line(s, "USER", opt.user) == 0) s->step = USER_SENT;
    return;
  case USER_SENT:
  case PASS_SENT:
    if (code == 331 && s->step == USER_SENT) {
      if (send_line(s, "PASS", opt.pass) == 0) s->step = PASS_SENT;
      return;
    }
    if (code != 230) return unexpected(s, code, text);
    if (opt.mode == MODE_LOGINS) {
      if (send_line(s, "QUIT", NULL) == 0) s->step = QUIT_SENT;
    } else if (send_line(s, "TYPE", "I") == 0) {
      s->step = TYPE_SENT;
    }
    return;
  case TYPE_SENT:
    if (code != 200) return unexpected(s, code, text);
    if (send_line(s, "EPSV", NULL) == 0) s->step = EPSV_SENT;
    return;
  case EPSV_SENT: {
    const char *p = strstr(text, "(|||");
    int port = p ? atoi(p + 4) : 0;
    if (code != 229 || port <= 0 || port > 65535) return unexpected(s, code, text);
    s->step = DATA_CONNECTING;
    if (open_connection(&s->data, port) < 0) fail(s, "data connect failed");
    return;
  }
  case RETR_SENT:
    if (code != 150 && code != 125) return unexpected(s, code, text);
    s->step = RECEIVING;
    return;
  case RECEIVING:
    if (code != 226 && code != 250) return unexpected(s, code, text);
    s->final_reply = 1;
    return maybe_transfer_done(s);
  case QUIT_SENT:
    if (code != 221) return unexpected(s, code, text);
    return finish(s);
  default:
    return unexpected(s, code, text);
  }
}

/* Splits what came on the control connection into lines and lines into replies (RFC 959 multi-line form). */
static void on_control_bytes(struct session *s, const char *buf, size_t n) {
  for (size_t i = 0; i < n && s->step != IDLE; i++) {
    char c = buf[i];
    if (c != '\n') {
      if (s->line_len < sizeof s->line - 1) s->line[s->line_len++] = c;
      continue;
    }
    if (s->line_len > 0 && s->line[s->line_len - 1] == '\r') s->line_len--;
    s->line[s->line_len] = '\0';
    size_t len = s->line_len;
    s->line_len = 0;
    int has_code = len >= 3 && s->line[0] >= '1' && s->line[0] <= '5' && s->line[1] >= '0' && s->line[1] <= '9' && s->line[2] >= '0' &&
                   s->line[2] <= '9';
    int code = has_code ? atoi(s->line) : 0;
    char sep = len > 3 ? s->line[3] : ' ';
    if (s->multiline_code != 0) {
      /* The closing line: the code and a space, or the code alone (3 characters: sep reads as a space). */
      if (code == s->multiline_code && sep == ' ') {
        s->multiline_code = 0;
        on_reply(s, code, len > 4 ? s->line + 4 : "");
      }
      continue;
    }
    if (!has_code) {
      fail(s, "unreadable reply line");
      return;
    }
    if (sep == '-') {
      s->multiline_code = code;
      continue;
    }
    on_reply(s, code, len > 4 ? s->line + 4 : "");
  }
}

static void on_connected(struct session *s, struct endpoint *e) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(e->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    char why[128];
    snprintf(why, sizeof why, "%s connect: %s", e->is_data ? "data" : "control", strerror(err));
    return fail(s, why);
  }
  if (watch(e, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD) < 0) return fail(s, "epoll_ctl failed");
  if (!e->is_data) {
    s->step = GREETING;
    return;
  }
  /* Connected before the transfer command, as most clients do. */
  if (send_line(s, "RETR", opt.retr) == 0) s->step = RETR_SENT;
}

static void on_event(struct endpoint *e, unsigned events) {
  struct session *s = e->s;
  if (e->fd < 0 || s->step == IDLE) return;
  s->last_progress = now_ms();
  if ((s->step == CONNECTING && !e->is_data) || (s->step == DATA_CONNECTING && e->is_data)) {
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(s, e);
    return;
  }
  if (e->is_data) {
    /* Bytes are counted and dropped in the kernel: nothing is copied out. */
    for (int k = 0; k < 64; k++) {
      ssize_t n = recv(e->fd, NULL, 1 << 20, MSG_TRUNC | MSG_DONTWAIT);
      if (n > 0) {
        s->bytes += n;
        continue;
      }
      if (n == 0) {
        close_endpoint(&s->data);
        s->data_ended = 1;
        if (s->step == RECEIVING) maybe_transfer_done(s);
        return;
      }
      if (errno == EAGAIN || errno == EINTR) return;
      char why[128];
      snprintf(why, sizeof why, "data: %s", strerror(errno));
      return fail(s, why);
    }
    return;
  }
  char buf[4096];
  /* Bounded: a server that floods its control connection gets its turn again at the next epoll_wait (level-
     triggered), and the deadline and the other sessions are still served meanwhile. */
  for (int k = 0; k < 16; k++) {
    ssize_t n = read(e->fd, buf, sizeof buf);
    if (n > 0) {
      on_control_bytes(s, buf, (size_t)n);
      if (s->step == IDLE || e->fd < 0) return;
      if ((size_t)n < sizeof buf) return;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    char why[128];
    snprintf(why, sizeof why, "control connection %s", n == 0 ? "closed" : strerror(errno));
    return fail(s, why);
  }
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double percentile(double p) {
  if (latencies_len == 0) return 0;
  size_t i = (size_t)(p / 100 * (double)(latencies_len - 1) + 0.5);
  return latencies[i];
}

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen --mode logins|clients --port P [--host 127.0.0.1] --user U --pass W [--retr NAME --expect-bytes N]\n"
          "               [--concurrency N] [--seconds S] [--max-sessions N] [--timeout S]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--mode")) opt.mode = !strcmp(v, "clients") ? MODE_CLIENTS : !strcmp(v, "logins") ? MODE_LOGINS : (usage(), MODE_LOGINS);
    else if (!strcmp(k, "--host")) host = v;
    else if (!strcmp(k, "--port")) port = atoi(v);
    else if (!strcmp(k, "--user")) opt.user = v;
    else if (!strcmp(k, "--pass")) opt.pass = v;
    else if (!strcmp(k, "--retr")) opt.retr = v;
    else if (!strcmp(k, "--expect-bytes")) opt.expect_bytes = atoll(v);
    else if (!strcmp(k, "--concurrency")) opt.concurrency = atoi(v);
    else if (!strcmp(k, "--seconds")) opt.seconds = atof(v);
    else if (!strcmp(k, "--max-sessions")) opt.max_sessions = atol(v);
    else if (!strcmp(k, "--timeout")) opt.timeout = atof(v);
    else usage();
  }
  if (argc % 2 == 0 || port <= 0 || port > 65535 || !opt.user || !opt.pass || opt.concurrency < 1 || opt.concurrency > 100000 ||
      (opt.mode == MODE_CLIENTS && !opt.retr))
    usage();
  opt.addr.sin_family = AF_INET;
  opt.addr.sin_port = htons((unsigned short)port);
  if (inet_pton(AF_INET, host, &opt.addr.sin_addr) != 1) usage();

  signal(SIGPIPE, SIG_IGN); /* as MSG_NOSIGNAL, for any other write */
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct session *sessions = calloc((size_t)opt.concurrency, sizeof *sessions);
  if (ep < 0 || sessions == NULL) return 1;
  for (int i = 0; i < opt.concurrency; i++) {
    struct session *s = &sessions[i];
    s->ctrl = (struct endpoint){.s = s, .fd = -1, .is_data = 0};
    s->data = (struct endpoint){.s = s, .fd = -1, .is_data = 1};
  }

  const double t0 = now_ms();
  const double deadline = t0 + opt.seconds * 1000;
  window_end = deadline;
  const double hard_stop = deadline + opt.timeout * 1000 + 1000; /* the loop is bounded in time whatever happens */
  double next_sweep = 0;
  struct epoll_event events[256];
  for (;;) {
    double now = now_ms();
    if (now >= next_sweep) {
      next_sweep = now + 20;
      for (int i = 0; i < opt.concurrency; i++) {
        struct session *s = &sessions[i];
        if (s->step == IDLE) {
          if (now < deadline && now >= s->wake) start(s);
        } else if (now - s->last_progress > opt.timeout * 1000) {
          char why[160];
          snprintf(why, sizeof why, "no progress within %g s (at %s, %lld bytes, data %s, final reply %s)", opt.timeout, step_names[s->step],
                   s->bytes, s->data_ended ? "ended" : "open", s->final_reply ? "in" : "not in");
          fail(s, why);
        }
      }
    }
    long running = started_count - done_count - failed_count;
    if ((now >= deadline || started_count >= opt.max_sessions) && running == 0) break;
    if (now >= hard_stop) break;
    int n = epoll_wait(ep, events, 256, 10);
    if (n < 0 && errno != EINTR) return 1;
    for (int i = 0; i < n; i++) {
      struct endpoint *e = events[i].data.ptr;
      struct session *s = e->s;
      on_event(e, events[i].events);
      /* A session that just ended starts its next one at once (not at the next sweep), as a client loop does. */
      if (s->step == IDLE && s->wake == 0 && now_ms() < deadline) start(s);
    }
  }
  /* Sessions still running at the hard stop (a server that trickles its data, say): failed, never just dropped. */
  for (int i = 0; i < opt.concurrency; i++) {
    if (sessions[i].step != IDLE) fail(&sessions[i], "still running when the run had to end");
  }
  double ended = now_ms();
  /* The rate is taken over the window sessions start in: stragglers after it (a session the server left
     without a reply, waiting for its timeout) must not stretch the time the completed ones are divided by. */
  double window = (started_count >= opt.max_sessions ? ended : window_end) - t0;
  if (window > ended - t0) window = ended - t0;
  long in_window = started_count >= opt.max_sessions ? done_count : done_in_window;
  qsort(latencies, latencies_len, sizeof *latencies, by_value);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  printf("{\"done\":%ld,\"failed\":%ld,\"doneInWindow\":%ld,\"window\":%.4f,\"seconds\":%.4f,\"p50\":%.3f,\"p99\":%.3f,"
         "\"cpuSeconds\":%.4f,\"firstError\":\"",
         done_count, failed_count, in_window, window / 1000, (ended - t0) / 1000, percentile(50), percentile(99), cpu);
  for (const char *p = first_error; *p; p++) {
    if (*p == '"' || *p == '\\') putchar('\\');
    putchar((unsigned char)*p < 0x20 ? ' ' : *p);
  }
  printf("\"}\n");
  return 0;
}
