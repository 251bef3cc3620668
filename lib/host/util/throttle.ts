// Per-address throttle of failed credential checks, shared by HTTP and c2s (host option auth_failures_per_minute).
// In-process today; behind an interface so that several nodes can share one (Redis) later.

export interface AuthThrottle {
  /** Seconds the address must wait before its next attempt; 0 when it may try now. */
  retryAfter(address: string): number;
  /** Record a failed check; returns the seconds to wait from now on (0 while under the limit). */
  recordFailure(address: string): number;
}

const WINDOW_MS = 60_000;

/** One key per client: an IPv4 client seen through a dual-stack socket (`::ffff:1.2.3.4`) is `1.2.3.4`. */
export function clientKey(address: string): string {
  return address.toLowerCase().startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** Sliding 60 s window of failure times per address; more than `limit` failures → wait until the oldest leaves. */
export class MemoryAuthThrottle implements AuthThrottle {
  private readonly failures = new Map<string, number[]>();
  private lastSweep = 0;

  constructor(private readonly limit: number, private readonly now: () => number = Date.now) {}

  retryAfter(address: string): number {
    // Most addresses never failed: answer those without building anything.
    if (this.failures.size === 0) return 0;
    const times = this.recent(clientKey(address));
    if (times.length < this.limit) return 0;
    const oldest = times[times.length - this.limit]!;
    return Math.max(1, Math.ceil((oldest + WINDOW_MS - this.now()) / 1000));
  }

  recordFailure(address: string): number {
    const key = clientKey(address);
    const times = this.recent(key);
    times.push(this.now());
    // Keep only as many as decide the answer, so an address hammering us costs constant memory.
    if (times.length > this.limit) times.splice(0, times.length - this.limit);
    this.failures.set(key, times);
    this.sweep();
    return this.retryAfter(key);
  }

  private recent(address: string): number[] {
    const cutoff = this.now() - WINDOW_MS;
    const times = (this.failures.get(address) ?? []).filter((t) => t > cutoff);
    if (times.length === 0) this.failures.delete(address);
    return times;
  }

  /** Forget addresses whose failures have all left the window (at most once per window). */
  private sweep(): void {
    const now = this.now();
    if (now - this.lastSweep < WINDOW_MS) return;
    this.lastSweep = now;
    for (const [address, times] of this.failures) {
      if (times.every((t) => t <= now - WINDOW_MS)) this.failures.delete(address);
    }
  }
}
