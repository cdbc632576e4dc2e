/* The daemon's single epoll loop: file descriptors with callbacks, one-shot
 * and periodic timers (timerfd), and signals (signalfd). */
#ifndef KP_LOOP_H
#define KP_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct loop_timer;

/* events: EPOLLIN/EPOLLOUT/... as reported by epoll. */
typedef void (*loop_fd_cb)(struct loop *l, int fd, uint32_t events, void *arg);
typedef void (*loop_timer_cb)(struct loop *l, struct loop_timer *t, void *arg);
typedef void (*loop_signal_cb)(struct loop *l, int signo, void *arg);

struct loop *loop_new(void);
void loop_free(struct loop *l);

/* Registers fd for events (EPOLLIN, EPOLLOUT, ...). 0 or -errno. */
int loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_cb cb, void *arg);
int loop_mod_fd(struct loop *l, int fd, uint32_t events);
/* Stops watching fd (does not close it). */
void loop_del_fd(struct loop *l, int fd);

/* Creates a disarmed timer. */
struct loop_timer *loop_timer_new(struct loop *l, loop_timer_cb cb, void *arg);
/* Arms the timer to fire once after ms milliseconds (0 = as soon as possible). */
void loop_timer_arm(struct loop_timer *t, unsigned long long ms);
void loop_timer_disarm(struct loop_timer *t);
bool loop_timer_armed(const struct loop_timer *t);
void loop_timer_free(struct loop_timer *t);

/* Blocks signo and delivers it through the loop. 0 or -errno. */
int loop_add_signal(struct loop *l, int signo, loop_signal_cb cb, void *arg);

/* Runs until loop_quit. Returns 0 or -errno. */
int loop_run(struct loop *l);
void loop_quit(struct loop *l);

#endif
