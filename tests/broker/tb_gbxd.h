/*  tb_gbxd: the real gbxd binary as a child process of a live test, on the
    demo configuration in a directory of its own.

    The test passes the path of the binary (GBXD_PATH, a compile definition
    of each live test, tests/broker/CMakeLists.txt). gbxd's stdout (the
    banner) goes to /dev/null, its stderr is appended to LOG (or stays the
    test's when LOG is NULL). Every wait is bounded. The functions that
    check something fail the running cmocka test (fail_msg, assert_*); they
    are for cmocka tests only.

    A test keeps one tb_gbxd_t (plain: the test reads pid, endpoint, log):

        tb_gbxd_home(&g, GBXD_PATH, home, log);   demo config, free port
        tb_gbxd_edit(&g, from, to);               optional: a setting
        tb_gbxd_start(&g, 10000);                 listening within 10 s
        ... tests; tb_gbxd_log_count, tb_gbxd_log_wait, tb_gbxd_alive ...
        tb_gbxd_term(&g, 10000);                  SIGTERM, exit 0
        tb_gbxd_free(&g);                         SIGKILL if it lives */
#ifndef GBX_TB_GBXD_H
#define GBX_TB_GBXD_H

#include <sys/types.h>

typedef struct {
    char *gbxd;        /* the binary */
    char *cfg;         /* HOME/gbxd.yaml (gbx_config_write_default) */
    char *text;        /* CONFIG as tb_gbxd_home or tb_gbxd_edit last wrote it */
    char *log;         /* gbxd's stderr, appended to; NULL: the test's */
    int port;          /* listen.adapter, on 127.0.0.1 */
    int metrics_port;  /* listen.metrics, on 127.0.0.1 */
    char endpoint[64]; /* "tcp://127.0.0.1:PORT" */
    pid_t pid;         /* the running gbxd; 0 when none */
} tb_gbxd_t;

/*  Replaces the first FROM in *TEXT (malloc'ed; replaced by a new malloc'ed
    string) by TO. Fails the test when FROM does not occur. */
void tb_replace(char **text, const char *from, const char *to);

/*  Sets up G (all of it: no tb_gbxd_free needed before): writes the demo
    configuration into HOME (gbx_config_write_default: keys, registry,
    policy.yaml, gbxd.yaml as G->cfg), takes a free loopback port (bound to
    127.0.0.1:0, read back, closed: a small race, accepted) and moves
    listen.adapter there ("adapter: tcp://127.0.0.1:7400" in CONFIG) and
    keeps CONFIG's text in G->text. GBXD is the binary to start, LOG where
    its stderr goes (NULL: the test's stderr); both are copied. */
void tb_gbxd_home(tb_gbxd_t *g, const char *gbxd, const char *home, const char *log);

/*  Reads CONFIG again (so that what others wrote into it, such as
    tu_config_test_services, is kept), replaces its first FROM by TO when
    FROM is not NULL, writes it back and keeps it in G->text: a setting for
    every later start. */
void tb_gbxd_edit(tb_gbxd_t *g, const char *from, const char *to);

/*  Writes CONFIG as G->text with its first FROM replaced by TO; G->text
    stays as it was: a setting for the next start only (the limits of one
    restart), which the next tb_gbxd_write replaces. */
void tb_gbxd_write(tb_gbxd_t *g, const char *from, const char *to);

/*  Starts gbxd -c CONFIG and waits at most MS until it listens on
    G->port. Fails the test when gbxd exits first or does not listen in
    time (G->pid is then 0, or still the child's for tb_gbxd_free). */
void tb_gbxd_start(tb_gbxd_t *g, int ms);

/*  Fails the test unless gbxd (G->pid) is still running; when it exited,
    G->pid becomes 0. */
void tb_gbxd_alive(tb_gbxd_t *g);

/*  Sends SIG to the running gbxd (G->pid > 0) and waits at most MS for it
    to exit: its wait status (G->pid becomes 0), or -1 when it still runs. */
int tb_gbxd_stop(tb_gbxd_t *g, int sig, int ms);

/*  SIGTERM and a clean exit (status 0) within MS; nothing when no gbxd
    runs. Fails the test otherwise. */
void tb_gbxd_term(tb_gbxd_t *g, int ms);

/*  SIGKILL, and reaps it, when gbxd runs; G->pid becomes 0. */
void tb_gbxd_kill(tb_gbxd_t *g);

/*  How often NEEDLE occurs in LOG (0 when there is none yet). */
int tb_gbxd_log_count(const tb_gbxd_t *g, const char *needle);

/*  Waits at most MS until NEEDLE occurs in LOG more than BEFORE times.
    Fails the test otherwise. */
void tb_gbxd_log_wait(const tb_gbxd_t *g, const char *needle, int before, int ms);

/*  tb_gbxd_kill, and frees what G holds (G may be all zero). The files
    stay. */
void tb_gbxd_free(tb_gbxd_t *g);

#endif
