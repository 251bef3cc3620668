// Per-account rate limit for post_msg (token bucket: `rate_per_second` refill, `rate_burst` capacity).
// In-process for now: the RateLimiter interface is the seam where a shared (e.g. Redis) limiter goes
// when several nodes serve HTTP, since the HTTP path should keep no state another node cannot see.

export interface RateLimiter {
  /** Take one token for `key`; 0 when allowed, else the seconds to wait before the next try. */
  take(key: string): number;
}

export interface TokenBucketOptions {
  ratePerSecond: number;
  burst: number;
  /** Milliseconds clock, for tests. */
  now?: () => number;
  /** Buckets kept before full ones are dropped (memory bound). */
  maxKeys?: number;
}

export class TokenBucketLimiter implements RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(opts: TokenBucketOptions) {
    if (!(opts.ratePerSecond > 0) || !(opts.burst >= 1)) throw new RangeError('ratePerSecond must be > 0 and burst >= 1');
    this.#rate = opts.ratePerSecond;
    this.#burst = opts.burst;
    this.#now = opts.now ?? (() => performance.now());
    this.#maxKeys = opts.maxKeys ?? 10000;
  }

  take(key: string): number {
    const now = this.#now();
    const bucket = this.#buckets.get(key) ?? { tokens: this.#burst, at: now };
    bucket.tokens = Math.min(this.#burst, bucket.tokens + ((now - bucket.at) / 1000) * this.#rate);
    bucket.at = now;
    if (!this.#buckets.has(key)) {
      if (this.#buckets.size >= this.#maxKeys) this.#sweep(now);
      this.#buckets.set(key, bucket);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.#rate));
  }

  /** Drop buckets that have refilled completely: forgetting them changes nothing. */
  #sweep(now: number): void {
    for (const [key, b] of this.#buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.#rate >= this.#burst) this.#buckets.delete(key);
    }
  }
}
