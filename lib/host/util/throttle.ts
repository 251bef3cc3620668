// Per-address throttle of credential checks, shared by HTTP and c2s (host option auth_failures_per_minute).
// It counts checks in flight as well as finished failures, so parallel guesses cannot outrun it.
// In-process today; behind an interface so that several nodes can share one (Redis) later.

/** One admitted credential check; exactly one of its two ends is called (later calls do nothing). */
export interface AuthAttempt {
  /** Right credentials (or no verdict): the slot is freed and nothing counts against the address. */
  succeeded(): void;
  /** Wrong credentials: the slot becomes a failure in the window. Returns the seconds to wait from now on. */
  failed(): number;
}

export type AuthAdmission = { ok: true; attempt: AuthAttempt } | { ok: false; retryAfterSeconds: number };

export interface AuthThrottle {
  /** Seconds the address must wait for its finished failures; 0 when it may try now. */
  retryAfter(address: string): number;
  /** Record a failed check made without a slot; returns the seconds to wait from now on. */
  recordFailure(address: string): number;
  /**
   * A slot for one credential check, taken before the check: at most `limit` minus the recent failures are
   * in flight per address. While the others are in flight the next one waits for a slot (a burst of right
   * passwords gets through); once the failures reach the limit, the waiting ones are refused.
   * Synchronous when the answer is known at once.
   */
  begin(address: string): AuthAdmission | Promise<AuthAdmission>;
}

const WINDOW_MS = 60_000;
/** Checks waiting for a slot per address; more are refused at once (each one is a held request). */
const MAX_WAITING = 256;
/** A check waits at most this long for a slot, then is refused. */
const MAX_WAIT_MS = 10_000;

/** One key per client: an IPv4 client seen through a dual-stack socket (`::ffff:1.2.3.4`) is `1.2.3.4`. */
export function clientKey(address: string): string {
  return address.toLowerCase().startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

interface Waiter {
  resolve(admission: AuthAdmission): void;
  timer: NodeJS.Timeout;
}

interface InFlight {
  count: number;
  waiting: Waiter[];
}

/** Sliding 60 s window of failure times per address, plus the checks in flight; `limit` of them in all. */
export class MemoryAuthThrottle implements AuthThrottle {
  private readonly failures = new Map<string, number[]>();
  private readonly inFlight = new Map<string, InFlight>();
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

  begin(address: string): AuthAdmission | Promise<AuthAdmission> {
    const key = clientKey(address);
    const wait = this.retryAfter(key);
    if (wait > 0) return { ok: false, retryAfterSeconds: wait };
    const state = this.inFlight.get(key) ?? { count: 0, waiting: [] };
    if (state.waiting.length === 0 && this.hasRoom(key, state)) return this.admit(key, state);
    if (state.waiting.length >= MAX_WAITING) return { ok: false, retryAfterSeconds: 1 };
    this.inFlight.set(key, state);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        resolve,
        timer: setTimeout(() => {
          state.waiting.splice(state.waiting.indexOf(waiter), 1);
          this.forgetIfIdle(key, state);
          resolve({ ok: false, retryAfterSeconds: 1 });
        }, MAX_WAIT_MS),
      };
      waiter.timer.unref();
      state.waiting.push(waiter);
    });
  }

  /** Checks in flight for an address (specs). */
  inFlightCount(address: string): number {
    return this.inFlight.get(clientKey(address))?.count ?? 0;
  }

  private hasRoom(key: string, state: InFlight): boolean {
    const failed = this.failures.size === 0 ? 0 : this.recent(key).length;
    return failed + state.count < this.limit;
  }

  private admit(key: string, state: InFlight): AuthAdmission {
    state.count++;
    this.inFlight.set(key, state);
    let isOpen = true;
    const end = (isFailure: boolean): number => {
      if (!isOpen) return this.retryAfter(key);
      isOpen = false;
      state.count--;
      const wait = isFailure ? this.recordFailure(key) : 0;
      this.pump(key, state);
      return wait;
    };
    return { ok: true, attempt: { succeeded: () => void end(false), failed: () => end(true) } };
  }

  /** A slot was freed: admit waiting checks while there is room, refuse them all once the failures reach the limit. */
  private pump(key: string, state: InFlight): void {
    while (state.waiting.length > 0) {
      const wait = this.retryAfter(key);
      if (wait === 0 && !this.hasRoom(key, state)) break;
      const waiter = state.waiting.shift()!;
      clearTimeout(waiter.timer);
      waiter.resolve(wait > 0 ? { ok: false, retryAfterSeconds: wait } : this.admit(key, state));
    }
    this.forgetIfIdle(key, state);
  }

  private forgetIfIdle(key: string, state: InFlight): void {
    if (state.count === 0 && state.waiting.length === 0) this.inFlight.delete(key);
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
