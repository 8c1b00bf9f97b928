/* Monotonic wall clock. */
#ifndef SP_CORE_TIMER_H
#define SP_CORE_TIMER_H

/* Milliseconds since an arbitrary fixed point (CLOCK_MONOTONIC). */
double sp_now_ms(void);

#endif /* SP_CORE_TIMER_H */
