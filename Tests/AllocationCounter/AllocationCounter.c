// Counts the heap allocations one thread makes, for the allocation guard (in the style of
// swift-nio's allocation counter tests). It replaces malloc and friends in the executable
// that links it, so every library's calls land here; each forwards to glibc's own entry
// point. Counting is per thread and off by default: other threads only pay a thread-local read.
#include "CAllocationCounter.h"

#if defined(__linux__) && !(defined(__has_feature) && (__has_feature(thread_sanitizer) || __has_feature(address_sanitizer)))
#include <errno.h>
#include <execinfo.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *pointer);

// Initial-exec TLS in the executable: reading it never allocates (no lazy TLS block).
#define THREAD_LOCAL static __thread __attribute__((tls_model("initial-exec")))
THREAD_LOCAL bool counting;
THREAD_LOCAL bool tracing;
THREAD_LOCAL bool inTrace;
THREAD_LOCAL int64_t allocations;

static void count(void) {
    if (!counting) return;
    allocations += 1;
    if (tracing && !inTrace) {
        // MIZU_ALLOCATION_TRACE=1: who allocated, to find what to cut (symbolize the offsets).
        inTrace = true;
        void *frames[32];
        int depth = backtrace(frames, 32);
        backtrace_symbols_fd(frames, depth, 2);
        static const char separator[] = "----\n";
        fwrite(separator, 1, sizeof separator - 1, stderr);
        inTrace = false;
    }
}

void *malloc(size_t size) {
    count();
    return __libc_malloc(size);
}

void *calloc(size_t count_, size_t size) {
    count();
    return __libc_calloc(count_, size);
}

void *realloc(void *pointer, size_t size) {
    // A resize counts as an allocation too: it may move and copy.
    count();
    return __libc_realloc(pointer, size);
}

void free(void *pointer) {
    __libc_free(pointer);
}

void *memalign(size_t alignment, size_t size) {
    count();
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    count();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **result, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    count();
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL) return ENOMEM;
    *result = pointer;
    return 0;
}

bool mizu_allocation_counter_available(void) { return true; }

void mizu_allocation_counter_start(void) {
    const char *trace = getenv("MIZU_ALLOCATION_TRACE");
    tracing = trace != NULL && trace[0] == '1';
    allocations = 0;
    counting = true;
}

int64_t mizu_allocation_counter_stop(void) {
    counting = false;
    return allocations;
}

#else

bool mizu_allocation_counter_available(void) { return false; }
void mizu_allocation_counter_start(void) {}
int64_t mizu_allocation_counter_stop(void) { return 0; }

#endif
