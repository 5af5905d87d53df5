/* The chunk registry: see registry.h. */
#include "registry.h"

uint8_t rsb_registry[RSB_REGISTRY_ENTRIES];

bool rsb_registry_set(uintptr_t base, unsigned what) {
    RSB_ASSERT((base & (RSB_CHUNK_SIZE - 1)) == 0 && what <= 0xff);
    uintptr_t i = base >> RSB_CHUNK_SHIFT;
    if (i >= RSB_REGISTRY_ENTRIES) return false; /* the lookup would never find it */
    __atomic_store_n(&rsb_registry[i], (uint8_t)what, __ATOMIC_RELEASE);
    return true;
}
