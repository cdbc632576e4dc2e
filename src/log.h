/* klog-style logging ("I1127 05:20:01.123456    1234 file.c:42] msg") to a
 * log file and stderr. The file is reopened on SIGUSR1 (logrotate). */
#ifndef KP_LOG_H
#define KP_LOG_H

enum log_level { LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

/* Opens path for appending (NULL or "" = stderr only). verbosity is -v.
 * Returns 0 or -errno (then logging goes to stderr only). */
int log_open(const char *path, int verbosity);
/* Reopens the log file after rotation. Returns 0 or -errno. */
int log_reopen(void);
void log_close(void);
/* Silences stderr copies (tests). */
void log_set_stderr(int on);
int log_verbosity(void);

void log_write(enum log_level lvl, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_info(...) log_write(LOG_LVL_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...) log_write(LOG_LVL_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_error(...) log_write(LOG_LVL_ERROR, __FILE__, __LINE__, __VA_ARGS__)
/* Logged only with -v N or higher. */
#define log_v(n, ...) do { if (log_verbosity() >= (n)) log_info(__VA_ARGS__); } while (0)

#endif
