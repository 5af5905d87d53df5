/* A shared library whose constructor allocates: it may run before
 * librsbmalloc's own constructor (init order is not ours to choose). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

char *rsbt_ctorlib_str;
void *rsbt_ctorlib_blocks[8];

__attribute__((constructor)) static void ctorlib_init(void)
{
    rsbt_ctorlib_str = strdup("allocated in a library constructor");
    for (int i = 0; i < 8; i++) {
        rsbt_ctorlib_blocks[i] = calloc(1, (size_t)1 << (4 + 3 * i));   /* 16 B .. 32 MiB */
        if (rsbt_ctorlib_blocks[i])
            memset(rsbt_ctorlib_blocks[i], i + 1, (size_t)1 << (4 + 3 * i));
    }
}
