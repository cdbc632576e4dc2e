#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "healthz.h"
#include "util.h"

struct healthz {
	const struct runner_stats *stats;
	double timeout_s;
	bool node_eligible;
	struct timespec start;       /* wall clock at creation: Go's m= origin */
	unsigned long long healthz_codes[2], livez_codes[2];
};

struct healthz *healthz_new(const struct runner_stats *stats, unsigned long long timeout_ms)
{
	struct healthz *h = xcalloc(1, sizeof(*h));

	h->stats = stats;
	h->timeout_s = (double)timeout_ms / 1000.0;
	/* Upstream: eligible while starting up, until a node event says not. */
	h->node_eligible = true;
	clock_gettime(CLOCK_REALTIME, &h->start);
	return h;
}

void healthz_free(struct healthz *h)
{
	free(h);
}

void healthz_set_node_eligible(struct healthz *h, bool eligible)
{
	h->node_eligible = eligible;
}

bool healthz_node_eligible(const struct healthz *h)
{
	return h->node_eligible;
}

bool healthz_is_healthy(const struct healthz *h, double now)
{
	double queued = h->stats->last_queued_time;

	/* No change waiting (starting up, or fully synced): healthy. */
	if (queued <= 0)
		return true;
	return now - queued < h->timeout_s;
}

char *healthz_go_time(const struct timespec *t, double mono, char *buf, size_t n)
{
	struct tm tm;
	char date[64], frac[16] = "", zone[16], abbr[16];
	time_t secs;
	size_t fl;

	if (!t || (t->tv_sec == 0 && t->tv_nsec == 0)) {
		snprintf(buf, n, "0001-01-01 00:00:00 +0000 UTC");
		return buf;
	}
	secs = t->tv_sec;
	localtime_r(&secs, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
	strftime(zone, sizeof(zone), "%z", &tm);
	strftime(abbr, sizeof(abbr), "%Z", &tm);
	if (t->tv_nsec) {
		/* Go's .999999999: as many digits as needed, no trailing zeros. */
		snprintf(frac, sizeof(frac), ".%09ld", t->tv_nsec);
		fl = strlen(frac);
		while (fl > 1 && frac[fl - 1] == '0')
			frac[--fl] = 0;
	}
	if (mono >= 0) {
		double ip;
		double fp = modf(mono, &ip);

		snprintf(buf, n, "%s%s %s %s m=+%.0f.%09ld", date, frac, zone, abbr, ip,
			 (long)llround(fp * 1e9) % 1000000000L);
	} else {
		snprintf(buf, n, "%s%s %s %s", date, frac, zone, abbr);
	}
	return buf;
}

static struct timespec from_double(double t)
{
	struct timespec ts = { 0 };

	if (t > 0) {
		ts.tv_sec = (time_t)t;
		ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
		if (ts.tv_nsec >= 1000000000L)
			ts.tv_nsec = 999999999L;
	}
	return ts;
}

static double ts_double(const struct timespec *ts)
{
	return (double)ts->tv_sec + (double)ts->tv_nsec / 1e9;
}

void healthz_handle(const struct http_request *req, struct http_response *resp, void *arg)
{
	struct healthz *h = arg;
	bool livez = strcmp(req->path, "/livez") == 0, healthy;
	struct timespec now, last;
	char cur_s[96], last_s[96];
	double start = ts_double(&h->start);

	if (!livez && strcmp(req->path, "/healthz") != 0) {
		resp->status = 404;
		sb_puts(&resp->body, "404 page not found\n");
		resp->nosniff = true;
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	healthy = healthz_is_healthy(h, ts_double(&now));
	if (!livez)
		healthy = healthy && h->node_eligible;
	if (healthy) {
		/* Upstream reports "now" as lastUpdated while healthy (the old
		 * meaning: the sync loop is running). */
		last = now;
	} else {
		last = from_double(h->stats->last_sync_time);
	}
	healthz_go_time(&now, ts_double(&now) - start, cur_s, sizeof(cur_s));
	if (last.tv_sec == 0 && last.tv_nsec == 0)
		healthz_go_time(NULL, -1, last_s, sizeof(last_s));
	else
		healthz_go_time(&last, ts_double(&last) - start >= 0 ? ts_double(&last) - start : -1,
				last_s, sizeof(last_s));
	resp->status = healthy ? 200 : 503;
	resp->content_type = "application/json";
	resp->nosniff = true;
	if (livez) {
		h->livez_codes[healthy ? 0 : 1]++;
		sb_printf(&resp->body, "{\"lastUpdated\": \"%s\",\"currentTime\": \"%s\"}", last_s, cur_s);
	} else {
		h->healthz_codes[healthy ? 0 : 1]++;
		sb_printf(&resp->body, "{\"lastUpdated\": \"%s\",\"currentTime\": \"%s\", \"nodeEligible\": %s}",
			  last_s, cur_s, h->node_eligible ? "true" : "false");
	}
}

void healthz_counts(const struct healthz *h, unsigned long long healthz[2], unsigned long long livez[2])
{
	healthz[0] = h->healthz_codes[0];
	healthz[1] = h->healthz_codes[1];
	livez[0] = h->livez_codes[0];
	livez[1] = h->livez_codes[1];
}
