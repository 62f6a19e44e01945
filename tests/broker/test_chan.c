/*  test_chan: the channel of pointers between threads (broker/chan.h), with
    real threads and its real eventfd. Items are small integers cast to
    pointers (never NULL). Every wait is bounded: a taker that should wake
    and does not fails the test after S_STUCK_MS.

    Cases:
      fifo               1000 items out in order, taken in chunks of 7; the
                         ring wraps and then grows while wrapped (200 in, 150
                         out, 300 in): still in order; len follows
      push_all           three items in one call, in order; n = 0 is GBX_OK;
                         a NULL item or NULL items with n > 0 is GBX_E_ARG
      take_max           10 queued, take max 3: 3 (the first three), len 7;
                         max 0 or NULL items: 0, nothing taken
      timeout_zero       empty: returns 0 at once (well under 50 ms)
      timeout_positive   empty, 200 ms: returns 0 after at least 200 ms and
                         not much later; with 5000 ms and a push from another
                         thread after 50 ms: returns that item long before 5 s
      timeout_forever    -1 with another thread pushing after 100 ms: returns
                         that item, after about 100 ms
      eventfd            poll(gbx_chan_fd) is readable exactly when the
                         channel holds items: not at first; after push; after
                         a take that leaves one; not after the take that
                         empties it; again after push_all; not after a take
                         on an empty channel; not after close while empty
      close_wakes        a taker blocked with -1 and one with 10 s both return
                         0 soon after close; later takes with -1 do not wait
      done               0 when open (empty or not), 0 when closed with an
                         item inside, 1 once that item is taken; NULL: 1
      mpmc_stress        4 producers x 100000 items (10000 with
                         GBX_TEST_QUICK=1; half push one by one, half with
                         push_all of 16), 2 consumers taking up to 64 with a
                         100 ms timeout until gbx_chan_done: every item taken
                         exactly once, each producer's items in order within
                         each consumer */
#include "tu_cmocka.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chan.h"

#define S_STUCK_MS 10000

#define S_ITEM(i)  ((void *)(uintptr_t)((i) + 1))
#define S_INDEX(p) ((uintptr_t)(p)-1)

static uint64_t s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void s_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/*  1 when the channel's fd is readable now. */
static int s_readable(gbx_chan_t *c)
{
    struct pollfd p = {.fd = gbx_chan_fd(c), .events = POLLIN};
    int r = poll(&p, 1, 0);
    assert_true(r >= 0);
    return r == 1 && (p.revents & POLLIN);
}

static gbx_chan_t *s_new(void)
{
    gbx_chan_t *c = NULL;
    assert_rc(gbx_chan_new(&c), GBX_OK);
    assert_non_null(c);
    assert_true(gbx_chan_fd(c) >= 0);
    return c;
}

/* ----------------------------------------------------------------- cases */

static void test_fifo(void **state)
{
    (void)state;
    gbx_chan_t *c = s_new();
    for (uintptr_t i = 0; i < 1000; i++)
        assert_rc(gbx_chan_push(c, S_ITEM(i)), GBX_OK);
    assert_int_equal(gbx_chan_len(c), 1000);
    void *got[7];
    uintptr_t next = 0;
    for (;;) {
        size_t n = gbx_chan_take(c, got, 7, 0);
        if (n == 0)
            break;
        assert_true(n <= 7);
        for (size_t k = 0; k < n; k++)
            assert_int_equal(S_INDEX(got[k]), next++);
    }
    assert_int_equal(next, 1000);
    assert_int_equal(gbx_chan_len(c), 0);

    /* wrap the ring, then grow it while wrapped */
    gbx_chan_destroy(&c);
    c = s_new();
    uintptr_t in = 0;
    next = 0;
    for (int i = 0; i < 200; i++)
        assert_rc(gbx_chan_push(c, S_ITEM(in++)), GBX_OK);
    void *buf[512];
    assert_int_equal(gbx_chan_take(c, buf, 150, 0), 150);
    for (size_t k = 0; k < 150; k++)
        assert_int_equal(S_INDEX(buf[k]), next++);
    for (int i = 0; i < 300; i++)
        assert_rc(gbx_chan_push(c, S_ITEM(in++)), GBX_OK);
    assert_int_equal(gbx_chan_len(c), 350);
    size_t n = gbx_chan_take(c, buf, 512, 0);
    assert_int_equal(n, 350);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(S_INDEX(buf[k]), next++);
    assert_int_equal(next, in);
    gbx_chan_destroy(&c);
    assert_null(c);
    gbx_chan_destroy(&c); /* NULL-safe */
    gbx_chan_destroy(NULL);
}

static void test_push_all(void **state)
{
    (void)state;
    gbx_chan_t *c = s_new();
    assert_rc(gbx_chan_push(c, S_ITEM(0)), GBX_OK);
    void *items[3] = {S_ITEM(1), S_ITEM(2), S_ITEM(3)};
    assert_rc(gbx_chan_push_all(c, items, 3), GBX_OK);
    assert_rc(gbx_chan_push_all(c, items, 0), GBX_OK);
    assert_rc(gbx_chan_push_all(c, NULL, 0), GBX_OK);
    assert_rc(gbx_chan_push_all(c, NULL, 2), GBX_E_ARG);
    assert_rc(gbx_chan_push(c, NULL), GBX_E_ARG);
    assert_int_equal(gbx_chan_len(c), 4);
    void *got[8];
    assert_int_equal(gbx_chan_take(c, got, 8, 0), 4);
    for (uintptr_t k = 0; k < 4; k++)
        assert_int_equal(S_INDEX(got[k]), k);
    gbx_chan_destroy(&c);
}

static void test_take_max(void **state)
{
    (void)state;
    gbx_chan_t *c = s_new();
    for (uintptr_t i = 0; i < 10; i++)
        assert_rc(gbx_chan_push(c, S_ITEM(i)), GBX_OK);
    void *got[10];
    assert_int_equal(gbx_chan_take(c, got, 3, 0), 3);
    for (uintptr_t k = 0; k < 3; k++)
        assert_int_equal(S_INDEX(got[k]), k);
    assert_int_equal(gbx_chan_len(c), 7);
    assert_int_equal(gbx_chan_take(c, got, 0, 0), 0);
    assert_int_equal(gbx_chan_take(c, NULL, 3, 0), 0);
    assert_int_equal(gbx_chan_len(c), 7);
    assert_int_equal(gbx_chan_take(c, got, 10, -1), 7);
    assert_int_equal(S_INDEX(got[0]), 3);
    gbx_chan_destroy(&c);
}

static void test_timeout_zero(void **state)
{
    (void)state;
    gbx_chan_t *c = s_new();
    void *got[1];
    uint64_t t0 = s_ms();
    assert_int_equal(gbx_chan_take(c, got, 1, 0), 0);
    assert_true(s_ms() - t0 < 1000); /* does not wait (generous: valgrind) */
    gbx_chan_destroy(&c);
}

typedef struct {
    gbx_chan_t *c;
    unsigned delay_ms;
    void *item;
} s_pusher_t;

static void *s_push_later(void *arg)
{
    s_pusher_t *p = arg;
    s_sleep_ms(p->delay_ms);
    gbx_err_t rc = gbx_chan_push(p->c, p->item);
    return rc == GBX_OK ? p : NULL;
}

static void test_timeout_positive(void **state)
{
    (void)state;
    gbx_chan_t *c = s_new();
    void *got[4];
    uint64_t t0 = s_ms();
    assert_int_equal(gbx_chan_take(c, got, 4, 200), 0);
    uint64_t el = s_ms() - t0;
    if (el < 200 || el > 200 + 1500)
        fail_msg("take(200 ms) returned after %llu ms", (unsigned long long)el);

    /* an item that comes while waiting ends the wait */
    s_pusher_t p = {c, 50, S_ITEM(42)};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, s_push_later, &p), 0);
    t0 = s_ms();
    size_t n = gbx_chan_take(c, got, 4, 5000);
    el = s_ms() - t0;
    void *ret = NULL;
    pthread_join(th, &ret);
    assert_ptr_equal(ret, &p);
    assert_int_equal(n, 1);
    assert_ptr_equal(got[0], S_ITEM(42));
    if (el > 2500)
        fail_msg("take(5000 ms) took %llu ms for an item pushed after 50 ms",
                 (unsigned long long)el);
    gbx_chan_destroy(&c);
}

static void test_timeout_forever(void **state)
{
    (void)state;
    gbx_chan_t *c = s_new();
    s_pusher_t p = {c, 100, S_ITEM(7)};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, s_push_later, &p), 0);
    void *got[4];
    uint64_t t0 = s_ms();
    size_t n = gbx_chan_take(c, got, 4, -1);
    uint64_t el = s_ms() - t0;
    void *ret = NULL;
    pthread_join(th, &ret);
    assert_ptr_equal(ret, &p);
    assert_int_equal(n, 1);
    assert_ptr_equal(got[0], S_ITEM(7));
    if (el < 90)
        fail_msg("take(-1) returned after %llu ms, before the push", (unsigned long long)el);
    gbx_chan_destroy(&c);
}

static void test_eventfd(void **state)
{
    (void)state;
    gbx_chan_t *c = s_new();
    void *got[8];
    assert_false(s_readable(c));
    assert_rc(gbx_chan_push(c, S_ITEM(0)), GBX_OK);
    assert_true(s_readable(c));
    assert_rc(gbx_chan_push(c, S_ITEM(1)), GBX_OK);
    assert_true(s_readable(c));
    assert_int_equal(gbx_chan_take(c, got, 1, 0), 1); /* one left */
    assert_true(s_readable(c));
    assert_int_equal(gbx_chan_take(c, got, 8, 0), 1); /* empties it */
    assert_false(s_readable(c));
    void *items[3] = {S_ITEM(2), S_ITEM(3), S_ITEM(4)};
    assert_rc(gbx_chan_push_all(c, items, 3), GBX_OK);
    assert_true(s_readable(c));
    assert_int_equal(gbx_chan_take(c, got, 3, 0), 3); /* exactly empties it */
    assert_false(s_readable(c));
    assert_int_equal(gbx_chan_take(c, got, 3, 0), 0); /* empty take */
    assert_false(s_readable(c));
    /* many cycles: the eventfd counter never leaves it stuck readable */
    for (int i = 0; i < 100; i++) {
        assert_rc(gbx_chan_push(c, S_ITEM(i)), GBX_OK);
        assert_rc(gbx_chan_push(c, S_ITEM(i)), GBX_OK);
        assert_true(s_readable(c));
        assert_int_equal(gbx_chan_take(c, got, 8, 0), 2);
        assert_false(s_readable(c));
    }
    gbx_chan_close(c);
    assert_false(s_readable(c));
    assert_int_equal(gbx_chan_fd(NULL), -1);
    gbx_chan_destroy(&c);
}

typedef struct {
    gbx_chan_t *c;
    int timeout_ms;
    atomic_int done;
    size_t n;
} s_taker_t;

static void *s_take_one(void *arg)
{
    s_taker_t *t = arg;
    void *got[1];
    t->n = gbx_chan_take(t->c, got, 1, t->timeout_ms);
    atomic_store(&t->done, 1);
    return NULL;
}

/*  Waits up to S_STUCK_MS for T to return. */
static int s_wait_done(s_taker_t *t)
{
    uint64_t end = s_ms() + S_STUCK_MS;
    while (!atomic_load(&t->done) && s_ms() < end)
        s_sleep_ms(2);
    return atomic_load(&t->done);
}

static void test_close_wakes(void **state)
{
    (void)state;
    gbx_chan_t *c = s_new();
    s_taker_t t[2] = {{c, -1, 0, 99}, {c, 10000, 0, 99}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, s_take_one, &t[i]), 0);
    s_sleep_ms(100); /* let them block */
    assert_false(atomic_load(&t[0].done));
    assert_false(atomic_load(&t[1].done));
    uint64_t t0 = s_ms();
    gbx_chan_close(c);
    for (int i = 0; i < 2; i++) {
        if (!s_wait_done(&t[i]))
            fail_msg("taker %d (timeout %d) still blocked %d ms after close", i, t[i].timeout_ms,
                     S_STUCK_MS);
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].n, 0);
    }
    assert_true(s_ms() - t0 < 5000);
    void *got[1];
    t0 = s_ms();
    assert_int_equal(gbx_chan_take(c, got, 1, -1), 0);
    assert_int_equal(gbx_chan_take(c, got, 1, 10000), 0);
    assert_true(s_ms() - t0 < 5000); /* not the 10 s timeout */
    gbx_chan_close(c);               /* twice is harmless */
    gbx_chan_close(NULL);
    gbx_chan_destroy(&c);
}

static void test_done(void **state)
{
    (void)state;
    gbx_chan_t *c = s_new();
    assert_false(gbx_chan_done(c));
    assert_rc(gbx_chan_push(c, S_ITEM(1)), GBX_OK);
    assert_false(gbx_chan_done(c));
    gbx_chan_close(c);
    assert_false(gbx_chan_done(c)); /* an item is still to come out */
    assert_int_equal(gbx_chan_len(c), 1);
    void *got[2];
    assert_int_equal(gbx_chan_take(c, got, 2, -1), 1);
    assert_ptr_equal(got[0], S_ITEM(1));
    assert_true(gbx_chan_done(c));
    assert_true(gbx_chan_done(NULL));
    assert_int_equal(gbx_chan_len(NULL), 0);
    gbx_chan_destroy(&c);
}

/* ------------------------------------------------------------ the stress */

#define S_PRODUCERS 4
#define S_CONSUMERS 2
#define S_CHUNK     16

typedef struct {
    gbx_chan_t *c;
    int id;
    size_t n;
    int rc;
} s_producer_t;

typedef struct {
    gbx_chan_t *c;
    uint8_t *seen; /* S_PRODUCERS * n counters, one byte each */
    size_t n;
    size_t taken;
    int out_of_order;
    int bad_item;
} s_consumer_t;

static void *s_produce(void *arg)
{
    s_producer_t *p = arg;
    void *chunk[S_CHUNK];
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++) {
        void *item = S_ITEM((uintptr_t)p->id * p->n + i);
        if (p->id % 2) {
            if (gbx_chan_push(p->c, item) != GBX_OK)
                p->rc = -1;
            continue;
        }
        chunk[k++] = item;
        if (k == S_CHUNK || i + 1 == p->n) {
            if (gbx_chan_push_all(p->c, chunk, k) != GBX_OK)
                p->rc = -1;
            k = 0;
        }
    }
    return NULL;
}

static void *s_consume(void *arg)
{
    s_consumer_t *c = arg;
    void *got[64];
    size_t last[S_PRODUCERS] = {0};
    int any[S_PRODUCERS] = {0};
    for (;;) {
        size_t n = gbx_chan_take(c->c, got, 64, 100);
        if (n == 0) {
            if (gbx_chan_done(c->c))
                break;
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            uintptr_t idx = S_INDEX(got[k]);
            if (idx >= (uintptr_t)S_PRODUCERS * c->n) {
                c->bad_item++;
                continue;
            }
            size_t prod = idx / c->n, i = idx % c->n;
            if (any[prod] && i <= last[prod])
                c->out_of_order++;
            any[prod] = 1;
            last[prod] = i;
            c->seen[idx]++;
            c->taken++;
        }
    }
    return NULL;
}

static void test_mpmc_stress(void **state)
{
    (void)state;
    size_t n = tu_quick() ? 10000 : 100000;
    size_t total = S_PRODUCERS * n;
    gbx_chan_t *c = s_new();
    /* one array per consumer: a second take of an item shows as a sum of 2 */
    uint8_t *seen[S_CONSUMERS];
    s_consumer_t cons[S_CONSUMERS];
    pthread_t cth[S_CONSUMERS], pth[S_PRODUCERS];
    for (int i = 0; i < S_CONSUMERS; i++) {
        seen[i] = calloc(total, 1);
        assert_non_null(seen[i]);
        cons[i] = (s_consumer_t){c, seen[i], n, 0, 0, 0};
        assert_int_equal(pthread_create(&cth[i], NULL, s_consume, &cons[i]), 0);
    }
    s_producer_t prod[S_PRODUCERS];
    uint64_t t0 = s_ms();
    for (int i = 0; i < S_PRODUCERS; i++) {
        prod[i] = (s_producer_t){c, i, n, 0};
        assert_int_equal(pthread_create(&pth[i], NULL, s_produce, &prod[i]), 0);
    }
    for (int i = 0; i < S_PRODUCERS; i++) {
        pthread_join(pth[i], NULL);
        assert_int_equal(prod[i].rc, 0);
    }
    gbx_chan_close(c);
    for (int i = 0; i < S_CONSUMERS; i++)
        pthread_join(cth[i], NULL);
    uint64_t el = s_ms() - t0;

    size_t taken = 0;
    for (int i = 0; i < S_CONSUMERS; i++) {
        assert_int_equal(cons[i].bad_item, 0);
        assert_int_equal(cons[i].out_of_order, 0);
        taken += cons[i].taken;
    }
    size_t missing = 0, twice = 0;
    for (size_t k = 0; k < total; k++) {
        unsigned s = 0;
        for (int i = 0; i < S_CONSUMERS; i++)
            s += seen[i][k];
        missing += s == 0;
        twice += s > 1;
    }
    if (missing || twice || taken != total)
        fail_msg("%zu items: %zu taken, %zu never, %zu more than once", total, taken, missing,
                 twice);
    assert_true(gbx_chan_done(c));
    print_message("mpmc: %zu items in %llu ms (%zu / %zu by the consumers)\n", total,
                  (unsigned long long)el, cons[0].taken, cons[1].taken);
    for (int i = 0; i < S_CONSUMERS; i++)
        free(seen[i]);
    gbx_chan_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_push_all),
        cmocka_unit_test(test_take_max),
        cmocka_unit_test(test_timeout_zero),
        cmocka_unit_test(test_timeout_positive),
        cmocka_unit_test(test_timeout_forever),
        cmocka_unit_test(test_eventfd),
        cmocka_unit_test(test_close_wakes),
        cmocka_unit_test(test_done),
        cmocka_unit_test(test_mpmc_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
