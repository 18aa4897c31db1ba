#ifndef C_ALLOCATION_COUNTER_H
#define C_ALLOCATION_COUNTER_H

#include <stdbool.h>
#include <stdint.h>

/// Whether this build counts allocations (not under ThreadSanitizer, which owns malloc).
bool mizu_allocation_counter_available(void);

/// Starts counting the calling thread's allocations from zero.
void mizu_allocation_counter_start(void);

/// Stops counting on the calling thread and returns how many allocations it made since the start.
int64_t mizu_allocation_counter_stop(void);

#endif
