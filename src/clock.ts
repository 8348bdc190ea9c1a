/** Injected wherever time decides something (expiry, leases, audit timestamps) so tests can freeze it. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
