// Provided items, per host with a global view: Prosody's module:provides / module:handle_items
// (core/moduleapi.lua add_item, remove_item, handle_items). Kinds are open: any string a module invents.

import type { ItemInfo } from '../api.js';

/** The host name of global modules; a consumer there sees the items of every host. */
export const GLOBAL_HOST = '*';

type ItemCallback = (item: unknown, info: ItemInfo) => void;

interface Entry {
  readonly item: unknown;
  readonly info: ItemInfo;
}

interface Consumer {
  readonly host: string;
  readonly onAdded: ItemCallback;
  readonly onRemoved: ItemCallback | undefined;
}

export class ItemRegistry {
  /** kind → items, in the order provided. */
  private readonly items = new Map<string, Entry[]>();
  private readonly consumers = new Map<string, Consumer[]>();

  /**
   * Record an item and hand it to every consumer that sees its host. A consumer that throws refuses it:
   * those that took it are told it is gone, the item is dropped, and the error reaches the provider.
   * Returns the removal (idempotent), which tells every consumer.
   */
  add(kind: string, item: unknown, info: ItemInfo): () => void {
    const entry: Entry = { item, info: Object.freeze({ ...info }) };
    const took: Consumer[] = [];
    for (const consumer of this.consumersOf(kind, info.host)) {
      try {
        consumer.onAdded(entry.item, entry.info);
      } catch (err) {
        for (const c of took.reverse()) c.onRemoved?.(entry.item, entry.info);
        throw err;
      }
      took.push(consumer);
    }
    this.items.set(kind, [...(this.items.get(kind) ?? []), entry]);
    let isRemoved = false;
    return () => {
      if (isRemoved) return;
      isRemoved = true;
      this.items.set(kind, (this.items.get(kind) ?? []).filter((e) => e !== entry));
      for (const consumer of this.consumersOf(kind, info.host)) consumer.onRemoved?.(entry.item, entry.info);
    };
  }

  /**
   * Consume a kind on a host: `onAdded` runs now for each item already there, then for every later one;
   * `onRemoved` when an item's provider unloads. Returns the function that stops consuming (items stay).
   */
  handle(kind: string, host: string, onAdded: ItemCallback, onRemoved?: ItemCallback): () => void {
    const consumer: Consumer = { host, onAdded, onRemoved };
    const seen: Entry[] = [];
    for (const entry of this.list(kind, host)) {
      try {
        onAdded(entry.item, entry.info);
      } catch (err) {
        for (const e of seen.reverse()) onRemoved?.(e.item, e.info);
        throw err;
      }
      seen.push(entry);
    }
    this.consumers.set(kind, [...(this.consumers.get(kind) ?? []), consumer]);
    return () => {
      this.consumers.set(kind, (this.consumers.get(kind) ?? []).filter((c) => c !== consumer));
    };
  }

  /** The items of a kind a consumer on `host` sees: its own host's and the global modules' (all of them on `*`). */
  list(kind: string, host: string): Entry[] {
    return (this.items.get(kind) ?? []).filter((e) => sees(host, e.info.host));
  }

  /** Items and consumers held, all kinds together (unload specs check it returns to where it was). */
  size(): { items: number; consumers: number } {
    let items = 0;
    let consumers = 0;
    for (const list of this.items.values()) items += list.length;
    for (const list of this.consumers.values()) consumers += list.length;
    return { items, consumers };
  }

  private consumersOf(kind: string, itemHost: string): Consumer[] {
    return (this.consumers.get(kind) ?? []).filter((c) => sees(c.host, itemHost));
  }
}

/** Prosody's get_host_items: a host sees its own items and the global ones; the global host sees all. */
function sees(consumerHost: string, itemHost: string): boolean {
  return consumerHost === GLOBAL_HOST || itemHost === GLOBAL_HOST || consumerHost === itemHost;
}
