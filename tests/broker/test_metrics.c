/*  test_metrics: a node's metrics (broker/metrics.h), their HTTP endpoint
    (broker/httpd.h, the real libmicrohttpd on a loopback port) and the log
    lines (broker/log.h, stderr captured in a file).

    Cases:
      counting        accepted by class and direction, held, rejected by
                      reason, counters, count_set never goes back, totals;
                      an agency's gauge never below 0; unknown slots and
                      agencies are ignored; NULL is safe everywhere
      histogram       observations land in the right bucket: the rendered
                      buckets are cumulative, +Inf and _count equal the
                      count, _sum the sum in seconds
      render          every line is a HELP, a TYPE or a sample of the family
                      just typed; no family twice; a policy version with a
                      quote, a backslash and a newline is escaped; peers and
                      agencies labelled; a checkpoint's age from its time
      health          healthy and ready; the loop not turning for 5 s: not
                      healthy; store broken: not healthy; draining: healthy
                      but not ready, "draining: gbxctl drain by op.x"; disk
                      below the minimum: not ready, a "disk:" line; the
                      store's last write failed: healthy, not ready, a
                      "writes:" line
      threads         4 threads x 100000 increments of a counter, a gauge
                      and a histogram: exact totals
      rates           an agency's rate in follows its counter (ticks of 1 s
                      for 10 minutes at 5 messages/s: about 5/s)
      http            /metrics 200 with the text and its content type;
                      /healthz and /readyz 200, then 503 with the failing
                      check after draining; /healthz stays 200 while only
                      draining; an unknown path 404; POST 405; a GET with a
                      body 400; a client trickling a byte a second is cut
                      within 12 s (5 s of life); a second
                      server on the same port: GBX_E_IO; a bad address:
                      GBX_E_ARG
      log             the logfmt line: ts, level, id, fields; lines below
                      the level are dropped; gbx_log_line splits the id;
                      gbx_log_clean makes any bytes one safe word */
#include "tu_cmocka.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sys/time.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "testutil.h"

static gbx_metrics_t *s_new(void)
{
    static const char *const agencies[] = {"hk.cr", "gd.tax"};
    static const char *const peers[] = {"gd-node-1"};
    gbx_metrics_opts_t o = {.node_id = "hk-node-1",
                            .jurisdiction = "HK",
                            .version = "9.9.9",
                            .agencies = agencies,
                            .nagencies = 2,
                            .peers = peers,
                            .npeers = 1,
                            .start_wall_ms = 1796421974000ull};
    gbx_metrics_t *m = NULL;
    assert_rc(gbx_metrics_new(&o, &m), GBX_OK);
    return m;
}

static char *s_render(gbx_metrics_t *m, uint64_t wall, uint64_t mono)
{
    char *text = NULL;
    size_t len = 0;
    assert_rc(gbx_metrics_render(m, wall, mono, &text, &len), GBX_OK);
    assert_int_equal(strlen(text), len);
    return text;
}

/*  The value of the sample line that starts with SERIES followed by ' '. */
static double s_value(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    fail_msg("no sample %s", series);
    return -1;
}

static void test_counting(void **state)
{
    (void)state;
    gbx_metrics_t *m = s_new();
    gbx_metrics_accepted(m, 3, GBX_DIR_HK_TO_GD, 0);
    gbx_metrics_accepted(m, 3, GBX_DIR_HK_TO_GD, 1);
    gbx_metrics_accepted(m, 99, GBX_DIR_GD_TO_HK, 0);   /* no such class: UNKNOWN */
    gbx_metrics_accepted(m, 3, (gbx_direction_t)17, 0); /* ignored */
    gbx_metrics_rejected(m, GBX_E_BAD_SIGNATURE);
    gbx_metrics_rejected(m, GBX_E_BAD_SIGNATURE);
    gbx_metrics_rejected(m, (gbx_err_t)5000); /* ignored */
    gbx_metrics_count(m, GBX_MC_ACKED, 5);
    gbx_metrics_count_set(m, GBX_MC_DELIVERED, 10);
    gbx_metrics_count_set(m, GBX_MC_DELIVERED, 7); /* never back */
    uint64_t acc = 0, held = 0, rej = 0;
    gbx_metrics_totals(m, &acc, &held, &rej);
    assert_int_equal(acc, 3);
    assert_int_equal(held, 1);
    assert_int_equal(rej, 2);
    assert_int_equal(gbx_metrics_counter(m, GBX_MC_DELIVERED), 10);
    assert_int_equal(gbx_metrics_counter(m, GBX_MC_ACKED), 5);

    assert_int_equal(gbx_metrics_agency(m, "gd.tax"), 1);
    assert_int_equal(gbx_metrics_agency(m, "hk.nobody"), -1);
    gbx_metrics_agency_add(m, 1, GBX_MA_DLQ, 2);
    gbx_metrics_agency_add(m, 1, GBX_MA_DLQ, -5); /* never below 0 */
    assert_int_equal(gbx_metrics_agency_get(m, 1, GBX_MA_DLQ), 0);
    gbx_metrics_agency_add(m, -1, GBX_MA_DLQ, 1); /* an agency not served here */
    gbx_metrics_agency_set(m, 7, GBX_MA_DLQ, 1);
    assert_int_equal(gbx_metrics_agency_get(m, 7, GBX_MA_DLQ), 0);

    char *text = s_render(m, 1796421975000ull, 1000);
    assert_true(s_value(text, "gbx_messages_accepted_total{data_class=\"PERSONAL\","
                              "direction=\"hk_to_gd\"}") == 2);
    assert_true(s_value(text, "gbx_messages_held_total{data_class=\"PERSONAL\","
                              "direction=\"hk_to_gd\"}") == 1);
    assert_true(s_value(text, "gbx_messages_rejected_total{reason=\"BAD_SIGNATURE\"}") == 2);
    assert_true(s_value(text, "gbx_messages_rejected_total{reason=\"DRAINING\"}") == 0);
    assert_true(s_value(text, "gbx_messages_delivered_total") == 10);
    assert_null(strstr(text, "reason=\"NOMEM\"")); /* local errors never travel */
    free(text);

    /* NULL is safe */
    gbx_metrics_accepted(NULL, 3, GBX_DIR_HK_TO_GD, 0);
    gbx_metrics_observe(NULL, GBX_MH_FSYNC, 1);
    gbx_metrics_tick(NULL, 1);
    assert_int_equal(gbx_metrics_get(NULL, GBX_MG_DISK_FREE), 0);
    gbx_metrics_destroy(&m);
    assert_null(m);
    gbx_metrics_destroy(NULL);
}

static void test_histogram(void **state)
{
    (void)state;
    gbx_metrics_t *m = s_new();
    /* fsync bounds: 50us 100us 250us 500us 1ms ... */
    gbx_metrics_observe(m, GBX_MH_FSYNC, 40000);      /* <= 50us */
    gbx_metrics_observe(m, GBX_MH_FSYNC, 50000);      /* == 50us: le is inclusive */
    gbx_metrics_observe(m, GBX_MH_FSYNC, 200000);     /* <= 250us */
    gbx_metrics_observe(m, GBX_MH_FSYNC, 5000000000); /* beyond the last bound: +Inf only */
    char *text = s_render(m, 1796421975000ull, 1000);
    assert_true(s_value(text, "gbx_store_fsync_seconds_bucket{le=\"5e-05\"}") == 2);
    assert_true(s_value(text, "gbx_store_fsync_seconds_bucket{le=\"0.0001\"}") == 2);
    assert_true(s_value(text, "gbx_store_fsync_seconds_bucket{le=\"0.00025\"}") == 3);
    assert_true(s_value(text, "gbx_store_fsync_seconds_bucket{le=\"1\"}") == 3);
    assert_true(s_value(text, "gbx_store_fsync_seconds_bucket{le=\"+Inf\"}") == 4);
    assert_true(s_value(text, "gbx_store_fsync_seconds_count") == 4);
    double sum = s_value(text, "gbx_store_fsync_seconds_sum");
    assert_true(sum > 5.00028 && sum < 5.00030);
    assert_true(s_value(text, "gbx_delivery_latency_seconds_count") == 0);
    free(text);
    gbx_metrics_destroy(&m);
}

static void test_render(void **state)
{
    (void)state;
    gbx_metrics_t *m = s_new();
    gbx_metrics_policy(m, "v\"1\\\n2", "abcd", 3);
    gbx_metrics_peer(m, "gd-node-1", 1);
    gbx_metrics_peer(m, "nobody", 1); /* not a peer: ignored */
    assert_int_equal(gbx_metrics_peer_up(m, "gd-node-1"), 1);
    gbx_metrics_set(m, GBX_MG_CHECKPOINT_MS, 1796421974000ull);
    gbx_metrics_agency_set(m, 0, GBX_MA_OLDEST_MS, 1796421970000ull);
    gbx_metrics_command(m, "dlq.purge", "NOT_AUTHORIZED");
    gbx_metrics_command(m, "dlq.purge", "NOT_AUTHORIZED");
    char *text = s_render(m, 1796421984000ull, 1000);
    assert_non_null(strstr(text, "gbx_policy_info{version=\"v\\\"1\\\\\\n2\",hash=\"abcd\"} 1\n"));
    assert_true(s_value(text, "gbx_peer_up{peer=\"gd-node-1\"}") == 1);
    assert_true(s_value(text, "gbx_audit_checkpoint_age_seconds") == 10);
    assert_true(s_value(text, "gbx_queue_oldest_age_seconds{agency=\"hk.cr\"}") == 14);
    assert_true(s_value(text, "gbx_queue_oldest_age_seconds{agency=\"gd.tax\"}") == 0);
    assert_true(s_value(text, "gbx_control_commands_total{command=\"dlq.purge\","
                              "result=\"NOT_AUTHORIZED\"}") == 2);
    assert_true(s_value(text, "gbx_policy_rules") == 3);
    assert_non_null(strstr(text, "gbx_build_info{version=\"9.9.9\",node=\"hk-node-1\","
                                 "jurisdiction=\"HK\"} 1\n"));

    /* the exposition format's shape, line by line */
    regex_t help, type, sample;
    assert_int_equal(regcomp(&help, "^# HELP ([a-z_]+) .+$", REG_EXTENDED), 0);
    assert_int_equal(regcomp(&type, "^# TYPE ([a-z_]+) (counter|gauge|histogram)$", REG_EXTENDED),
                     0);
    assert_int_equal(regcomp(&sample,
                             "^([a-z_]+)(\\{[a-z_]+=\"([^\"\\\\]|\\\\.)*\"(,[a-z_]+=\"([^\"\\\\]|"
                             "\\\\.)*\")*\\})? [-+0-9.e]+$",
                             REG_EXTENDED),
                     0);
    char family[128] = "", seen[8192] = " ";
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        regmatch_t g[3];
        if (regexec(&help, line, 2, g, 0) == 0)
            continue;
        if (regexec(&type, line, 3, g, 0) == 0) {
            snprintf(family, sizeof family, "%.*s", (int)(g[1].rm_eo - g[1].rm_so),
                     line + g[1].rm_so);
            char key[140];
            snprintf(key, sizeof key, " %s ", family);
            if (strstr(seen, key))
                fail_msg("family %s twice", family);
            strncat(seen, key + 1, sizeof seen - strlen(seen) - 1);
            continue;
        }
        if (regexec(&sample, line, 2, g, 0) != 0)
            fail_msg("not a sample line: %s", line);
        size_t fl = strlen(family);
        if (strncmp(line, family, fl) != 0 ||
            (line[fl] != '{' && line[fl] != ' ' && line[fl] != '_'))
            fail_msg("sample %s outside its family %s", line, family);
    }
    assert_true(lines > 100);
    regfree(&help);
    regfree(&type);
    regfree(&sample);
    free(text);
    gbx_metrics_destroy(&m);
}

static void test_health(void **state)
{
    (void)state;
    gbx_metrics_t *m = s_new();
    gbx_health_t h;
    gbx_metrics_health(m, 1000, &h); /* the loop never turned */
    assert_false(h.healthy);
    assert_non_null(strstr(h.why, "loop:"));
    gbx_metrics_set(m, GBX_MG_LOOP_MS, 1000);
    gbx_metrics_set(m, GBX_MG_DISK_MIN, 100);
    gbx_metrics_set(m, GBX_MG_DISK_FREE, 1000);
    gbx_metrics_health(m, 1500, &h);
    assert_true(h.healthy && h.ready);
    assert_string_equal(h.why, "");
    gbx_metrics_health(m, 6001, &h); /* 5001 ms without a turn */
    assert_false(h.healthy);
    assert_false(h.ready);
    gbx_metrics_draining(m, 1, "op.x", 5);
    gbx_metrics_health(m, 1500, &h);
    assert_true(h.healthy);
    assert_false(h.ready);
    assert_string_equal(h.why, "draining: gbxctl drain by op.x\n");
    char by[16];
    uint64_t since = 0;
    assert_int_equal(gbx_metrics_is_draining(m, by, sizeof by, &since), 1);
    assert_string_equal(by, "op.x");
    assert_int_equal(since, 5);
    gbx_metrics_draining(m, 0, NULL, 0);
    gbx_metrics_set(m, GBX_MG_DISK_FREE, 99);
    gbx_metrics_health(m, 1500, &h);
    assert_true(h.ready); /* the loop decides when it is low, with its margin */
    gbx_metrics_set(m, GBX_MG_DISK_LOW, 1);
    gbx_metrics_health(m, 1500, &h);
    assert_true(h.healthy);
    assert_false(h.ready);
    assert_non_null(strstr(h.why, "disk: 99B free"));
    gbx_metrics_set(m, GBX_MG_DISK_FREE, 1000);
    gbx_metrics_set(m, GBX_MG_DISK_LOW, 0);
    gbx_metrics_set(m, GBX_MG_STORE_FAILING, 1);
    gbx_metrics_health(m, 1500, &h);
    assert_true(h.healthy);
    assert_false(h.ready);
    assert_non_null(strstr(h.why, "writes: the store's last write failed"));
    gbx_metrics_set(m, GBX_MG_STORE_FAILING, 0);
    gbx_metrics_set(m, GBX_MG_STORE_BROKEN, 1);
    gbx_metrics_health(m, 1500, &h);
    assert_false(h.healthy);
    assert_false(h.ready);
    assert_non_null(strstr(h.why, "store:"));
    gbx_metrics_destroy(&m);
}

static gbx_metrics_t *s_shared;

static void *s_hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100000; i++) {
        gbx_metrics_count(s_shared, GBX_MC_ACKED, 1);
        gbx_metrics_agency_add(s_shared, 0, GBX_MA_IN, 1);
        gbx_metrics_observe(s_shared, GBX_MH_DELIVERY, 3000000);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    s_shared = s_new();
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, s_hammer, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(gbx_metrics_counter(s_shared, GBX_MC_ACKED), 400000);
    assert_int_equal(gbx_metrics_agency_get(s_shared, 0, GBX_MA_IN), 400000);
    char *text = s_render(s_shared, 1796421975000ull, 1000);
    assert_true(s_value(text, "gbx_delivery_latency_seconds_bucket{le=\"0.005\"}") == 400000);
    assert_true(s_value(text, "gbx_delivery_latency_seconds_bucket{le=\"0.0025\"}") == 0);
    free(text);
    gbx_metrics_destroy(&s_shared);
}

static void test_rates(void **state)
{
    (void)state;
    gbx_metrics_t *m = s_new();
    double in = -1, out = -1;
    gbx_metrics_tick(m, 1000);
    for (uint64_t s = 2; s <= 600; s++) {
        gbx_metrics_agency_add(m, 1, GBX_MA_IN, 5);
        gbx_metrics_tick(m, s * 1000);
    }
    gbx_metrics_agency_rates(m, 1, &in, &out);
    assert_true(in > 4.9 && in < 5.1);
    assert_true(out == 0);
    gbx_metrics_agency_rates(m, 0, &in, &out);
    assert_true(in == 0);
    gbx_metrics_destroy(&m);
}

/*  METHOD PATH on 127.0.0.1:PORT, with SEND as the request's body (may be
    ""): the status, and the answer's body in BODY. */
static int s_http_body(int port, const char *method, const char *path, const char *send, char *body,
                       size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[256];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, strlen(send), send);
    assert_int_equal(write(fd, req, (size_t)n), n);
    static char resp[256 * 1024];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof resp - 1 && (r = read(fd, resp + got, sizeof resp - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    resp[got] = 0;
    int status = 0;
    assert_int_equal(sscanf(resp, "HTTP/1.1 %d", &status), 1);
    const char *b = strstr(resp, "\r\n\r\n");
    snprintf(body, cap, "%s", b ? b + 4 : "");
    if (strcmp(path, "/metrics") == 0 && status == 200)
        assert_non_null(strstr(resp, "text/plain; version=0.0.4"));
    return status;
}

static int s_http(int port, const char *method, const char *path, char *body, size_t cap)
{
    return s_http_body(port, method, path, "", body, cap);
}

static void test_http(void **state)
{
    (void)state;
    gbx_metrics_t *m = s_new();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    gbx_metrics_set(m, GBX_MG_LOOP_MS, (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
    int port = tu_free_port();
    char addr[64], err[256], body[8192];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    gbx_httpd_t *h = NULL;
    assert_rc(gbx_httpd_start(addr, m, &h, err, sizeof err), GBX_OK);
    assert_int_equal(s_http(port, "GET", "/metrics", body, sizeof body), 200);
    assert_non_null(strstr(body, "gbx_ready 1\n"));
    assert_int_equal(s_http(port, "GET", "/healthz", body, sizeof body), 200);
    assert_string_equal(body, "ok\n");
    assert_int_equal(s_http(port, "GET", "/readyz", body, sizeof body), 200);
    assert_string_equal(body, "ready\n");
    gbx_metrics_draining(m, 1, "op.admin", 1);
    assert_int_equal(s_http(port, "GET", "/readyz", body, sizeof body), 503);
    assert_string_equal(body, "draining: gbxctl drain by op.admin\n");
    assert_int_equal(s_http(port, "GET", "/healthz", body, sizeof body), 200);
    gbx_metrics_set(m, GBX_MG_STORE_BROKEN, 1);
    assert_int_equal(s_http(port, "GET", "/healthz", body, sizeof body), 503);
    assert_string_equal(body, "store: an fsync failed; gbxd stops and must be restarted\n");
    assert_int_equal(s_http(port, "GET", "/nothing", body, sizeof body), 404);
    assert_int_equal(s_http(port, "POST", "/metrics", body, sizeof body), 405);
    assert_int_equal(s_http_body(port, "GET", "/metrics", "abc", body, sizeof body), 400);

    /* a client sending a byte a second (never idle for 3 s) is cut within
       the 5 s a connection may live, not held open forever */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {1, 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    const char *slow = "GET /metrics HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    int cut = 0;
    for (int i = 0; i < 12 && !cut; i++) { /* 12 s at most */
        if (send(fd, slow + i, 1, MSG_NOSIGNAL) < 0) {
            cut = 1;
            break;
        }
        char b;
        ssize_t got = recv(fd, &b, 1, 0); /* waits 1 s: EAGAIN while open */
        cut = got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    }
    close(fd);
    assert_true(cut);

    gbx_httpd_t *h2 = NULL;
    assert_rc(gbx_httpd_start(addr, m, &h2, err, sizeof err), GBX_E_IO);
    assert_non_null(strstr(err, "cannot listen"));
    assert_rc(gbx_httpd_start("no-port-here", m, &h2, err, sizeof err), GBX_E_ARG);
    assert_rc(gbx_httpd_start("256.1.1.1:80", m, &h2, err, sizeof err), GBX_E_ARG);
    assert_null(h2);
    gbx_httpd_stop(&h);
    assert_null(h);
    gbx_httpd_stop(&h);
    gbx_metrics_destroy(&m);
}

/*  Runs FN with stderr going to a file; returns what was written. */
static char *s_capture(void (*fn)(void))
{
    char path[] = "/tmp/gbx-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t len = lseek(fd, 0, SEEK_END);
    char *out = calloc(1, (size_t)len + 1);
    assert_int_equal(pread(fd, out, (size_t)len, 0), len);
    close(fd);
    return out;
}

static void s_lines(void)
{
    gbx_log_set_level(GBX_LOG_INFO);
    gbx_log(GBX_LOG_INFO, "GBX-TEST", "a=%d b=%s", 1, "two");
    gbx_log(GBX_LOG_DEBUG, "GBX-HIDDEN", "x=1");
    gbx_log(GBX_LOG_ERROR, "GBX-BARE", NULL);
    gbx_log_line(GBX_LOG_WARN, "GBX-LINE agency=hk.cr why=gone");
    gbx_log_set_level(GBX_LOG_DEBUG);
    gbx_log(GBX_LOG_DEBUG, "GBX-SHOWN", "x=2");
    gbx_log_set_level(GBX_LOG_INFO);
}

static void test_log(void **state)
{
    (void)state;
    char *out = s_capture(s_lines);
    regex_t re;
    assert_int_equal(
        regcomp(&re,
                "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                "level=info id=GBX-TEST a=1 b=two\n"
                "ts=[^ ]+ level=error id=GBX-BARE\n"
                "ts=[^ ]+ level=warn id=GBX-LINE agency=hk.cr why=gone\n"
                "ts=[^ ]+ level=debug id=GBX-SHOWN x=2\n$",
                REG_EXTENDED),
        0);
    if (regexec(&re, out, 0, NULL, 0) != 0)
        fail_msg("log lines:\n%s", out);
    regfree(&re);
    free(out);

    gbx_log_level_t lvl;
    assert_int_equal(gbx_log_level_parse("warn", &lvl), 0);
    assert_int_equal(lvl, GBX_LOG_WARN);
    assert_int_equal(gbx_log_level_parse("loud", &lvl), -1);
    assert_int_equal(gbx_log_level_parse(NULL, &lvl), -1);
    char c[8];
    assert_string_equal(gbx_log_clean("a b\"c\\d\n", c, sizeof c), "a?b?c?d");
    assert_string_equal(gbx_log_clean(NULL, c, sizeof c), "-");
    assert_string_equal(gbx_log_clean("", c, sizeof c), "-");
    assert_string_equal(gbx_log_clean("0123456789", c, sizeof c), "0123456");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counting), cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_render),   cmocka_unit_test(test_health),
        cmocka_unit_test(test_threads),  cmocka_unit_test(test_rates),
        cmocka_unit_test(test_http),     cmocka_unit_test(test_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
