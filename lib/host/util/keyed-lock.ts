// A per-key promise lock: work under one key runs one at a time, in call order; different keys run concurrently.

/** Returns `withLock(key, fn)`: runs `fn` after every earlier call with the same key has settled. A rejected `fn` does not block the next; a key's entry goes once its queue is empty. `locks` is passed only by tests, to watch it empty. */
export function keyedLock(locks = new Map<string, Promise<unknown>>()): <T>(key: string, fn: () => Promise<T>) => Promise<T> {
  return <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const run = (locks.get(key) ?? Promise.resolve()).then(fn, fn);
    const tail = run.catch(() => undefined);
    locks.set(key, tail);
    void tail.then(() => {
      if (locks.get(key) === tail) locks.delete(key);
    });
    return run;
  };
}
