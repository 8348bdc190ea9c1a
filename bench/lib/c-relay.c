/*
 * The cheapest relay this machine can run, as a yardstick for the egress proxy on a job's path:
 * C, no event loop, one thread per direction blocking in the kernel, and no policy at all.
 *   c-relay LISTEN_HOST UPSTREAM_ADDR PORT copy|splice
 * listens on LISTEN_HOST (a free port), connects each client to UPSTREAM_ADDR:PORT and moves bytes
 * both ways until each side ends: `copy` with read/write through a 256 KB buffer, `splice` with
 * splice(2) through a 1 MB pipe (no copy into user space). Prints {"PORT": listening port} once
 * ready. Built and run by proxy-job-path.ts; not part of Airlock.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in upstream;
static int use_splice;

struct direction {
  int from, to;
};

static void copy_bytes(int from, int to) {
  static __thread char buf[256 * 1024];
  for (;;) {
    ssize_t n = read(from, buf, sizeof buf);
    if (n <= 0) return;
    for (char *p = buf; n > 0;) {
      ssize_t m = write(to, p, (size_t)n);
      if (m <= 0) return;
      p += m;
      n -= m;
    }
  }
}

static void splice_bytes(int from, int to) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return;
  fcntl(pipefd[0], F_SETPIPE_SZ, 1 << 20);
  for (;;) {
    ssize_t n = splice(from, NULL, pipefd[1], NULL, 1 << 20, SPLICE_F_MOVE);
    if (n <= 0) break;
    while (n > 0) {
      ssize_t m = splice(pipefd[0], NULL, to, NULL, (size_t)n, SPLICE_F_MOVE);
      if (m <= 0) goto out;
      n -= m;
    }
  }
out:
  close(pipefd[0]);
  close(pipefd[1]);
}

static void *pump(void *arg) {
  struct direction *d = arg;
  if (use_splice) splice_bytes(d->from, d->to);
  else copy_bytes(d->from, d->to);
  shutdown(d->to, SHUT_WR); /* pass the half-close on, as the proxy does */
  return NULL;
}

static void *serve(void *arg) {
  int client = (int)(long)arg;
  int up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (up >= 0 && connect(up, (struct sockaddr *)&upstream, sizeof upstream) == 0) {
    struct direction a = {client, up}, b = {up, client};
    pthread_t t;
    if (pthread_create(&t, NULL, pump, &a) == 0) {
      pump(&b);
      pthread_join(t, NULL);
    }
  }
  if (up >= 0) close(up);
  close(client);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: c-relay LISTEN_HOST UPSTREAM_ADDR PORT copy|splice\n");
    return 2;
  }
  use_splice = strcmp(argv[4], "splice") == 0;
  upstream.sin_family = AF_INET;
  upstream.sin_port = htons((uint16_t)atoi(argv[3]));
  struct sockaddr_in self = {.sin_family = AF_INET};
  if (inet_pton(AF_INET, argv[2], &upstream.sin_addr) != 1 || inet_pton(AF_INET, argv[1], &self.sin_addr) != 1) {
    fprintf(stderr, "c-relay: bad address\n");
    return 2;
  }
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  socklen_t len = sizeof self;
  if (l < 0 || bind(l, (struct sockaddr *)&self, sizeof self) != 0 || listen(l, 128) != 0 ||
      getsockname(l, (struct sockaddr *)&self, &len) != 0) {
    perror("c-relay");
    return 1;
  }
  printf("{\"%s\":%d}\n", argv[3], ntohs(self.sin_port));
  fflush(stdout);
  for (;;) {
    int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) continue;
    pthread_t t;
    if (pthread_create(&t, NULL, serve, (void *)(long)c) == 0) pthread_detach(t);
    else close(c);
  }
}
