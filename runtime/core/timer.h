/* Monotonic wall clock. */
#ifndef SP_CORE_TIMER_H
#define SP_CORE_TIMER_H

#include <stdint.h>

/* Milliseconds since an arbitrary fixed point (CLOCK_MONOTONIC). */
double sp_now_ms(void);

/* The same clock in nanoseconds, for differences that must not lose precision. */
uint64_t sp_now_ns(void);

/* Sleeps for about ns nanoseconds (at least that, unless a signal interrupts it). */
void sp_sleep_ns(uint64_t ns);

#endif /* SP_CORE_TIMER_H */
