// Filter chains, as Prosody's util/filters.lua: functions a value passes through in priority order (highest
// first, then in order added); each may replace the value, and returning undefined drops it and ends the chain.

export type Filter<T, S> = (value: T, session: S) => T | undefined;

interface Entry<T, S> {
  fn: Filter<T, S>;
  priority: number;
  /** Who added it, for error logs. */
  owner: string;
}

export class FilterChain<T, S> {
  /** Replaced, never mutated, so a run in progress keeps the list it started with. */
  private entries: readonly Entry<T, S>[] = [];

  /** Nothing registered: callers skip run() on their hot path. */
  get isEmpty(): boolean {
    return this.entries.length === 0;
  }

  /** Add a filter; returns a function that removes exactly this registration. */
  add(fn: Filter<T, S>, priority = 0, owner = 'host'): () => void {
    const entry: Entry<T, S> = { fn, priority, owner };
    // Stable sort: equal priorities keep the order they were added in.
    this.entries = [...this.entries, entry].sort((a, b) => b.priority - a.priority);
    return () => {
      this.entries = this.entries.filter((e) => e !== entry);
    };
  }

  /** Pass a value through every filter. A throwing filter stops the run; the error is tagged with its owner. */
  run(value: T, session: S): T | undefined {
    let current: T | undefined = value;
    for (const { fn, owner } of this.entries) {
      try {
        current = fn(current, session);
      } catch (err) {
        if (err instanceof Error && !('owner' in err)) Object.defineProperty(err, 'owner', { value: owner, enumerable: false });
        throw err;
      }
      if (current === undefined) return undefined;
    }
    return current;
  }
}

/** The owner of the filter (or event handler) that threw, when known. */
export function filterOwner(err: unknown): string | undefined {
  return err instanceof Error && 'owner' in err ? String((err as { owner: unknown }).owner) : undefined;
}
