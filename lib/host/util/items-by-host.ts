// One item per virtual host, kept from a module's handleItems(): Prosody's `hosts[host]` lookups as mod_c2s and
// mod_s2s do them. c2s and s2s both find a domain's `c2s_host` module API here.

/** Where an item was provided: the `host` of the module API's ItemInfo (util/ stays free of api.ts). */
export interface ItemHost {
  readonly host: string;
}

/** A module's `handleItems(kind, onAdded, onRemoved)` with its kind bound. */
export type HandleItems<T> = (onAdded: (item: T, info: ItemHost) => void, onRemoved: (item: T, info: ItemHost) => void) => void;

/**
 * The item each host provides, by host: the latest added wins, and a removed item is forgotten only while it is still
 * the one its host holds, so removing an older item never drops a newer one.
 */
export function itemsByHost<T>(handleItems: HandleItems<T>): ReadonlyMap<string, T> {
  const byHost = new Map<string, T>();
  handleItems(
    (item, info) => void byHost.set(info.host, item),
    (item, info) => {
      if (byHost.get(info.host) === item) byHost.delete(info.host);
    },
  );
  return byHost;
}
