/*  httpd.c: owns the monitoring endpoint's HTTP server (httpd.h). */
#include "httpd.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>
#include <pthread.h>
#include <unistd.h>

#define S_CONNECTIONS 64u  /* at once */
#define S_PER_IP      16u  /* from one address at once */
#define S_IDLE_S      3u   /* a connection idle this long is closed */
#define S_LIFE_MS     5000 /* a connection open this long is cut, busy or not */

/*  A connection's slot in the watchdog's table. */
typedef struct {
    int fd;            /* -1: free */
    uint64_t start_ms; /* monotonic */
    int cut;           /* shut down already */
} s_conn_t;

struct gbx_httpd {
    struct MHD_Daemon *mhd;
    gbx_metrics_t *metrics;
    /* the watchdog: libmicrohttpd's timeout is an idle one, so a client
       that sends a byte every second would keep its connection forever;
       this thread cuts any connection older than S_LIFE_MS */
    pthread_t watchdog;
    int watching;
    pthread_mutex_t mx;
    pthread_cond_t cv;
    int stop;
    s_conn_t conns[S_CONNECTIONS];
};

static uint64_t s_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*  Queues STATUS with BODY (taken over: freed by libmicrohttpd). */
static enum MHD_Result s_reply(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                               const char *type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result s_text(struct MHD_Connection *c, unsigned status, const char *text)
{
    char *body = strdup(text);
    return body ? s_reply(c, status, body, strlen(body), "text/plain; charset=utf-8")
                : s_reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, 0, "text/plain");
}

static enum MHD_Result s_handle(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_len, void **state)
{
    (void)version;
    (void)upload;
    gbx_httpd_t *self = cls;
    (void)upload;
    /* answered on the first call, from the headers alone: a request with a
       body, or another method, is refused before its body is read, and
       libmicrohttpd closes the connection */
    *state = self;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return s_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n");
    const char *clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if ((clen && strcmp(clen, "0") != 0) ||
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding"))
        return s_text(c, MHD_HTTP_BAD_REQUEST, "no body\n");
    (void)upload_len;
    if (strcmp(url, "/metrics") == 0) {
        char *text = NULL;
        size_t len = 0;
        if (gbx_metrics_render(self->metrics, s_ms(CLOCK_REALTIME), s_ms(CLOCK_MONOTONIC), &text,
                               &len) != GBX_OK)
            return s_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        return s_reply(c, MHD_HTTP_OK, text, len, "text/plain; version=0.0.4; charset=utf-8");
    }
    if (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0) {
        gbx_health_t h;
        gbx_metrics_health(self->metrics, s_ms(CLOCK_MONOTONIC), &h);
        int ready = url[1] == 'r';
        int ok = ready ? h.ready : h.healthy;
        if (ok)
            return s_text(c, MHD_HTTP_OK, ready ? "ready\n" : "ok\n");
        /* /healthz names only what makes it unhealthy */
        if (!ready) {
            char only[sizeof h.why] = "";
            size_t n = 0;
            for (char *line = h.why; *line;) {
                char *end = strchr(line, '\n');
                size_t l = end ? (size_t)(end - line + 1) : strlen(line);
                if ((strncmp(line, "loop:", 5) == 0 || strncmp(line, "store:", 6) == 0) &&
                    n + l < sizeof only) {
                    memcpy(only + n, line, l);
                    n += l;
                    only[n] = '\0';
                }
                line += l;
            }
            return s_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, only);
        }
        return s_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, h.why);
    }
    return s_text(c, MHD_HTTP_NOT_FOUND, "not found: /metrics, /healthz, /readyz\n");
}

/*  libmicrohttpd's thread: a connection opens (a slot in the table) or
    closes (the slot is freed, before its fd can be reused). */
static void s_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                     enum MHD_ConnectionNotificationCode toe)
{
    gbx_httpd_t *self = cls;
    pthread_mutex_lock(&self->mx);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        for (size_t i = 0; ci && i < S_CONNECTIONS; i++)
            if (self->conns[i].fd < 0) {
                self->conns[i] = (s_conn_t){ci->connect_fd, s_ms(CLOCK_MONOTONIC), 0};
                *socket_context = &self->conns[i];
                break;
            }
    } else if (*socket_context) {
        ((s_conn_t *)*socket_context)->fd = -1;
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&self->mx);
}

static void *s_watch(void *arg)
{
    gbx_httpd_t *self = arg;
    pthread_mutex_lock(&self->mx);
    while (!self->stop) {
        uint64_t now = s_ms(CLOCK_MONOTONIC);
        for (size_t i = 0; i < S_CONNECTIONS; i++) {
            s_conn_t *k = &self->conns[i];
            if (k->fd >= 0 && !k->cut && now > k->start_ms + S_LIFE_MS) {
                /* libmicrohttpd sees it end, closes it and frees the slot */
                (void)shutdown(k->fd, SHUT_RDWR);
                k->cut = 1;
            }
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 500000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&self->cv, &self->mx, &until);
    }
    pthread_mutex_unlock(&self->mx);
    return NULL;
}

/*  Splits "HOST:PORT" / "[V6]:PORT" and resolves it. */
static int s_resolve(const char *addr, struct sockaddr_storage *out, socklen_t *outlen)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr)
        return -1;
    char host[256];
    size_t hlen = (size_t)(colon - addr);
    if (addr[0] == '[' && hlen >= 2 && addr[hlen - 1] == ']') {
        addr++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof host)
        return -1;
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res)
        return -1;
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *outlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

gbx_err_t gbx_httpd_start(const char *addr, gbx_metrics_t *metrics, gbx_httpd_t **out, char *err,
                          size_t errlen)
{
    if (!addr || !metrics || !out)
        return GBX_E_ARG;
    struct sockaddr_storage sa;
    socklen_t salen = 0;
    memset(&sa, 0, sizeof sa);
    if (s_resolve(addr, &sa, &salen) != 0) {
        snprintf(err, errlen, "%s: not an address gbxd can listen on", addr);
        return GBX_E_ARG;
    }
    gbx_httpd_t *self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    self->metrics = metrics;
    for (size_t i = 0; i < S_CONNECTIONS; i++)
        self->conns[i].fd = -1;
    pthread_mutex_init(&self->mx, NULL);
    pthread_cond_init(&self->cv, NULL);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
    if (sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    errno = 0;
    self->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, s_handle, self, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_CONNECTION_LIMIT, S_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT, S_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, S_IDLE_S, MHD_OPTION_NOTIFY_CONNECTION, s_notify, self,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024), MHD_OPTION_END);
    if (!self->mhd) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr,
                 errno ? strerror(errno) : "libmicrohttpd refused");
        pthread_cond_destroy(&self->cv);
        pthread_mutex_destroy(&self->mx);
        free(self);
        return GBX_E_IO;
    }
    self->watching = pthread_create(&self->watchdog, NULL, s_watch, self) == 0;
    if (!self->watching) {
        MHD_stop_daemon(self->mhd);
        pthread_cond_destroy(&self->cv);
        pthread_mutex_destroy(&self->mx);
        free(self);
        snprintf(err, errlen, "cannot start the connection watchdog");
        return GBX_E_NOMEM;
    }
    *out = self;
    return GBX_OK;
}

void gbx_httpd_stop(gbx_httpd_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_httpd_t *self = *self_p;
    pthread_mutex_lock(&self->mx);
    self->stop = 1;
    pthread_cond_signal(&self->cv);
    pthread_mutex_unlock(&self->mx);
    pthread_join(self->watchdog, NULL);
    MHD_stop_daemon(self->mhd);
    pthread_cond_destroy(&self->cv);
    pthread_mutex_destroy(&self->mx);
    free(self);
    *self_p = NULL;
}
