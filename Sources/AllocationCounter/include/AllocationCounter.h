#ifndef TRIBUTARY_ALLOCATION_COUNTER_H
#define TRIBUTARY_ALLOCATION_COUNTER_H
#include <stdint.h>

/// Starts counting heap allocations (malloc, calloc, realloc, aligned variants) in this process.
void tributary_allocation_counting_start(void);
/// Stops counting and returns how many allocations happened since the last start.
uint64_t tributary_allocation_counting_stop(void);

#endif
