/* Load generator and backend for bench/userspace-bench.sh.
 *
 *   us_bench_tool serve PORT
 *       A backend: a thread per connection. The first byte says what the
 *       client wants: 'U' = upload (read to EOF, answer with the byte
 *       count), 'D' + 8 bytes count = download (send count bytes, close),
 *       'R' = one request/response (answer "ok\n", close).
 *   us_bench_tool bulk HOST PORT up|down BYTES
 *       One bulk transfer; prints "BYTES SECONDS".
 *   us_bench_tool rate HOST PORT SECONDS THREADS
 *       Connection rate: each thread loops connect, 'R', read to EOF,
 *       close; prints "CONNECTIONS SECONDS FAILURES".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t n)
{
	char *c = p;

	while (n) {
		ssize_t r = read(fd, c, n);

		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			return -1;
		}
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

static void *serve_one(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char *buf = malloc(CHUNK);
	char op;

	if (!buf || read_all(fd, &op, 1) < 0)
		goto out;
	if (op == 'U') {
		uint64_t total = 0;
		ssize_t r;

		while ((r = read(fd, buf, CHUNK)) > 0)
			total += (uint64_t)r;
		write_all(fd, &total, sizeof(total));
	} else if (op == 'D') {
		uint64_t left;

		if (read_all(fd, &left, sizeof(left)) < 0)
			goto out;
		memset(buf, 'x', CHUNK);
		while (left) {
			size_t n = left < CHUNK ? (size_t)left : CHUNK;

			if (write_all(fd, buf, n) < 0)
				break;
			left -= n;
		}
	} else if (op == 'R') {
		write_all(fd, "ok\n", 3);
	}
out:
	free(buf);
	close(fd);
	return NULL;
}

static int serve(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);

	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0) {
		perror("bind/listen");
		return 1;
	}
	for (;;) {
		pthread_t t;
		pthread_attr_t at;
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&at, 256 * 1024);
		if (pthread_create(&t, &at, serve_one, (void *)(intptr_t)fd) != 0)
			close(fd);
		pthread_attr_destroy(&at);
	}
}

static struct sockaddr_in target;

static int dial(void)
{
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&target, sizeof(target)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int bulk(const char *dir, uint64_t bytes)
{
	char *buf = malloc(CHUNK);
	double t0 = now_s(), t1;
	uint64_t got = 0;
	int fd = dial();

	if (fd < 0 || !buf) {
		perror("connect");
		return 1;
	}
	if (strcmp(dir, "up") == 0) {
		uint64_t left = bytes;

		memset(buf, 'y', CHUNK);
		write_all(fd, "U", 1);
		while (left) {
			size_t n = left < CHUNK ? (size_t)left : CHUNK;

			if (write_all(fd, buf, n) < 0) {
				perror("write");
				return 1;
			}
			left -= n;
		}
		shutdown(fd, SHUT_WR);
		if (read_all(fd, &got, sizeof(got)) < 0 || got != bytes) {
			fprintf(stderr, "upload: server counted %llu of %llu bytes\n",
				(unsigned long long)got, (unsigned long long)bytes);
			return 1;
		}
	} else {
		ssize_t r;

		write_all(fd, "D", 1);
		write_all(fd, &bytes, sizeof(bytes));
		while ((r = read(fd, buf, CHUNK)) > 0)
			got += (uint64_t)r;
		if (got != bytes) {
			fprintf(stderr, "download: got %llu of %llu bytes\n", (unsigned long long)got,
				(unsigned long long)bytes);
			return 1;
		}
	}
	t1 = now_s();
	close(fd);
	free(buf);
	printf("%llu %.6f\n", (unsigned long long)bytes, t1 - t0);
	return 0;
}

static double rate_end;

struct rate_res {
	unsigned long ok, failed;
};

static void *rate_thread(void *arg)
{
	struct rate_res *res = arg;
	char buf[16];

	while (now_s() < rate_end) {
		int fd = dial();
		ssize_t r;
		size_t n = 0;

		if (fd < 0) {
			res->failed++;
			continue;
		}
		write_all(fd, "R", 1);
		while ((r = read(fd, buf + n, sizeof(buf) - n)) > 0)
			n += (size_t)r;
		close(fd);
		if (n == 3 && memcmp(buf, "ok\n", 3) == 0)
			res->ok++;
		else
			res->failed++;
	}
	return NULL;
}

static int rate(double seconds, int threads)
{
	pthread_t t[64];
	struct rate_res res[64];
	unsigned long ok = 0, failed = 0;
	double t0 = now_s();

	if (threads < 1 || threads > 64)
		threads = 4;
	rate_end = t0 + seconds;
	memset(res, 0, sizeof(res));
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, rate_thread, &res[i]);
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		ok += res[i].ok;
		failed += res[i].failed;
	}
	printf("%lu %.6f %lu\n", ok, now_s() - t0, failed);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && strcmp(argv[1], "serve") == 0)
		return serve(atoi(argv[2]));
	if (argc >= 4) {
		target.sin_family = AF_INET;
		target.sin_port = htons((uint16_t)atoi(argv[3]));
		if (inet_pton(AF_INET, argv[2], &target.sin_addr) != 1) {
			fprintf(stderr, "bad address %s\n", argv[2]);
			return 2;
		}
		if (argc == 6 && strcmp(argv[1], "bulk") == 0)
			return bulk(argv[4], strtoull(argv[5], NULL, 10));
		if (argc == 6 && strcmp(argv[1], "rate") == 0)
			return rate(atof(argv[4]), atoi(argv[5]));
	}
	fprintf(stderr, "usage: %s serve PORT | bulk HOST PORT up|down BYTES | rate HOST PORT SECONDS THREADS\n",
		argv[0]);
	return 2;
}
