// Event chains, as Prosody's util.events: handlers run by priority (highest first, then in order added);
// the first that returns anything but undefined claims the event and ends the chain.

export type Handler<T> = (payload: T) => unknown;

interface Entry<T> {
  handler: Handler<T>;
  priority: number;
  /** Who registered it, for error logs. */
  owner: string;
}

export class EventBus<T = unknown> {
  private readonly chains = new Map<string, Entry<T>[]>();

  /** Add a handler; returns a function that removes exactly this registration. */
  add(event: string, handler: Handler<T>, priority = 0, owner = 'host'): () => void {
    const entry: Entry<T> = { handler, priority, owner };
    const chain = [...(this.chains.get(event) ?? []), entry];
    // Stable sort: equal priorities keep the order they were added in.
    chain.sort((a, b) => b.priority - a.priority);
    this.chains.set(event, chain);
    return () => this.remove(event, entry);
  }

  has(event: string): boolean {
    return (this.chains.get(event)?.length ?? 0) > 0;
  }

  /** Number of handlers on all events (unload specs check it returns to where it was). */
  size(): number {
    let n = 0;
    for (const chain of this.chains.values()) n += chain.length;
    return n;
  }

  /**
   * Run the chain. A handler may return a promise; it is awaited before the next runs.
   * A throwing handler stops the chain: the error propagates, tagged with the handler's owner.
   */
  async fire(event: string, payload: T): Promise<unknown> {
    const chain = this.chains.get(event);
    if (!chain) return undefined;
    for (const { handler, owner } of chain) {
      let result: unknown;
      try {
        result = handler(payload);
        if (isThenable(result)) result = await result;
      } catch (err) {
        if (err instanceof Error && !('owner' in err)) Object.defineProperty(err, 'owner', { value: owner, enumerable: false });
        throw err;
      }
      if (result !== undefined) return result;
    }
    return undefined;
  }

  private remove(event: string, entry: Entry<T>): void {
    const chain = this.chains.get(event);
    if (!chain) return;
    const rest = chain.filter((e) => e !== entry);
    if (rest.length === 0) this.chains.delete(event);
    else this.chains.set(event, rest);
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/** The module that registered the handler that threw, when known. */
export function errorOwner(err: unknown): string | undefined {
  return err instanceof Error && 'owner' in err ? String((err as { owner: unknown }).owner) : undefined;
}
