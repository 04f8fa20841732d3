/**
 * The clock for intervals, timeouts, lag and "last sync" times: epoch milliseconds that equal the
 * wall clock when the process started and then advance with the monotonic clock. A wall clock
 * stepped back (NTP correction, a VM restored from a snapshot, libfaketime) made every "last sync
 * + interval" lie in the future, so shipping stopped and lag read 0; stepped forward, it fired
 * everything at once. Times this clock returns still read as dates in logs and metrics (they drift
 * from the wall clock only by the steps since start).
 *
 * Not for what other processes compare: lease expiries and object timestamps stay wall-clock.
 */
export function processClock(): number {
  return performance.timeOrigin + performance.now();
}
