/*  err.c: names and texts of gbx_err_t (include/gbx/err.h).
    Implements proto/spec/4-reasons.md. */
#include "gbx/err.h"

#include <stddef.h>

typedef struct {
    int num;
    int wire;
    const char *name;
    const char *text;
} s_entry_t;

static const s_entry_t s_table[] = {
#define GBX_ERR_ROW_(name, num, wire, text) {num, wire, #name, text},
    GBX_ERRORS(GBX_ERR_ROW_)
#undef GBX_ERR_ROW_
};

static const s_entry_t *s_find(gbx_err_t err)
{
    for (size_t i = 0; i < sizeof s_table / sizeof s_table[0]; i++)
        if (s_table[i].num == (int)err)
            return &s_table[i];
    return NULL;
}

const char *gbx_err_name(gbx_err_t err)
{
    const s_entry_t *e = s_find(err);
    return e ? e->name : "UNKNOWN";
}

const char *gbx_strerror(gbx_err_t err)
{
    const s_entry_t *e = s_find(err);
    return e ? e->text : "unknown error";
}

int gbx_err_on_wire(gbx_err_t err)
{
    const s_entry_t *e = s_find(err);
    return e ? e->wire : 0;
}
