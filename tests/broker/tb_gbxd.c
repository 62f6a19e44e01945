/*  tb_gbxd.c: the real gbxd as a child of a live test (tb_gbxd.h). */
#include "tb_gbxd.h"

#include "tu_cmocka.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"

void tb_replace(char **text, const char *from, const char *to)
{
    char *at = strstr(*text, from);
    if (!at)
        fail_msg("no \"%s\" to replace", from);
    char *out = NULL;
    assert_true(asprintf(&out, "%.*s%s%s", (int)(at - *text), *text, to, at + strlen(from)) > 0);
    free(*text);
    *text = out;
}

void tb_gbxd_home(tb_gbxd_t *g, const char *gbxd, const char *home, const char *log)
{
    memset(g, 0, sizeof *g);
    g->gbxd = strdup(gbxd);
    assert_non_null(g->gbxd);
    if (log) {
        g->log = strdup(log);
        assert_non_null(g->log);
    }
    assert_rc(gbx_config_write_default(home, &g->cfg), GBX_OK);
    g->port = tu_free_port();
    assert_true(g->port > 0);
    snprintf(g->endpoint, sizeof g->endpoint, "tcp://127.0.0.1:%d", g->port);
    char *port = NULL;
    assert_true(asprintf(&port, "adapter: %s\n", g->endpoint) > 0);
    tb_gbxd_edit(g, "adapter: tcp://127.0.0.1:7400\n", port);
    free(port);
    g->metrics_port = tu_free_port();
    assert_true(g->metrics_port > 0 && g->metrics_port != g->port);
    char *metrics = NULL;
    assert_true(asprintf(&metrics, "metrics: 127.0.0.1:%d", g->metrics_port) > 0);
    tb_gbxd_edit(g, "metrics: 127.0.0.1:9400", metrics);
    free(metrics);
}

void tb_gbxd_edit(tb_gbxd_t *g, const char *from, const char *to)
{
    size_t len = 0;
    char *text = (char *)tu_read_file(g->cfg, &len);
    assert_non_null(text);
    if (from)
        tb_replace(&text, from, to);
    assert_int_equal(tu_write_file(g->cfg, text, strlen(text), 0600), 0);
    free(g->text);
    g->text = text;
}

void tb_gbxd_write(tb_gbxd_t *g, const char *from, const char *to)
{
    char *text = strdup(g->text);
    assert_non_null(text);
    tb_replace(&text, from, to);
    assert_int_equal(tu_write_file(g->cfg, text, strlen(text), 0600), 0);
    free(text);
}

void tb_gbxd_start(tb_gbxd_t *g, int ms)
{
    const char *log = g->log ? g->log : "stderr";
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDOUT_FILENO); /* the banner; logs go to stderr */
        int fd = g->log ? open(g->log, O_WRONLY | O_CREAT | O_APPEND, 0600) : -1;
        if (fd >= 0)
            dup2(fd, STDERR_FILENO);
        execl(g->gbxd, "gbxd", "-c", g->cfg, (char *)NULL);
        _exit(127);
    }
    g->pid = pid;
    for (int waited = 0; waited <= ms; waited += 25) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            g->pid = 0;
            fail_msg("gbxd exited during start-up (status %d), see %s", status, log);
        }
        if (tu_port_open(g->port))
            return;
        tu_sleep_ms(25);
    }
    fail_msg("gbxd did not listen on %s within %d ms, see %s", g->endpoint, ms, log);
}

void tb_gbxd_alive(tb_gbxd_t *g)
{
    assert_true(g->pid > 0);
    int st;
    pid_t r = waitpid(g->pid, &st, WNOHANG);
    if (r == g->pid) {
        g->pid = 0;
        fail_msg("gbxd exited (status %d), see %s", st, g->log ? g->log : "stderr");
    }
    assert_int_equal(r, 0);
}

int tb_gbxd_stop(tb_gbxd_t *g, int sig, int ms)
{
    assert_true(g->pid > 0);
    assert_int_equal(kill(g->pid, sig), 0);
    for (int waited = 0; waited <= ms; waited += 10) {
        int st;
        if (waitpid(g->pid, &st, WNOHANG) == g->pid) {
            g->pid = 0;
            return st;
        }
        tu_sleep_ms(10);
    }
    return -1;
}

void tb_gbxd_term(tb_gbxd_t *g, int ms)
{
    if (g->pid <= 0)
        return;
    int st = tb_gbxd_stop(g, SIGTERM, ms);
    if (st == -1)
        fail_msg("gbxd did not exit within %d ms of SIGTERM", ms);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("gbxd ended with status %d after SIGTERM, see %s", st, g->log ? g->log : "stderr");
}

void tb_gbxd_kill(tb_gbxd_t *g)
{
    if (g->pid > 0) {
        kill(g->pid, SIGKILL);
        waitpid(g->pid, NULL, 0);
        g->pid = 0;
    }
}

int tb_gbxd_log_count(const tb_gbxd_t *g, const char *needle)
{
    size_t len = 0;
    char *text = g->log ? (char *)tu_read_file(g->log, &len) : NULL;
    if (!text)
        return 0;
    int n = 0;
    for (const char *at = text; (at = strstr(at, needle)) != NULL; at += strlen(needle))
        n++;
    free(text);
    return n;
}

void tb_gbxd_log_wait(const tb_gbxd_t *g, const char *needle, int before, int ms)
{
    for (int waited = 0; waited <= ms; waited += 20) {
        if (tb_gbxd_log_count(g, needle) > before)
            return;
        tu_sleep_ms(20);
    }
    fail_msg("no new %s in %s within %d ms", needle, g->log ? g->log : "stderr", ms);
}

void tb_gbxd_free(tb_gbxd_t *g)
{
    tb_gbxd_kill(g);
    free(g->gbxd);
    free(g->cfg);
    free(g->text);
    free(g->log);
    memset(g, 0, sizeof *g);
}
