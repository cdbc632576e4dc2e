/* systemd's notification protocol without libsystemd: one datagram per
 * message to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an
 * abstract name when it starts with '@'). Without $NOTIFY_SOCKET every call
 * is a no-op that returns 0. */
#ifndef KP_SDNOTIFY_H
#define KP_SDNOTIFY_H

struct loop;
struct sd_watchdog;

/* Sends msg (e.g. "READY=1\nSTATUS=..."). 1 when sent, 0 when there is no
 * NOTIFY_SOCKET, -errno on failure. */
int sd_notify_send(const char *msg);
/* READY=1 plus STATUS=status (status may be NULL). */
int sd_notify_ready(const char *status);
/* STATUS=<printf>. */
int sd_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* STOPPING=1. */
int sd_notify_stopping(void);

/* When $WATCHDOG_USEC is set (and $WATCHDOG_PID, if set, is our pid), sends
 * WATCHDOG=1 from a loop timer every half interval, so a stuck loop stops
 * the pings. NULL when no watchdog is wanted. */
struct sd_watchdog *sd_watchdog_start(struct loop *l);
/* Interval between pings in ms (tests). */
unsigned long long sd_watchdog_interval_ms(const struct sd_watchdog *w);
/* Stops the pings and frees w (NULL is fine). */
void sd_watchdog_stop(struct sd_watchdog *w);

#endif
