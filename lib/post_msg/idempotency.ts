// Idempotency-Key for post_msg (post_msg.md §12; the IETF httpapi Idempotency-Key header draft): a retried POST is
// answered from the first one's record, kept on disk per sender account for `idempotency_window` seconds.
// DIFF: Prosody's mod_post_msg has no retry protection.

import { createHash } from 'node:crypto';
import type { HttpContext, MapStore } from '../host/api.js';
import type { Problem } from './problem.js';

/** What is kept per (account, key). `pending`: the stanza ids are chosen and the message may be routed already. */
export interface IdempotencyRecord {
  /** SHA-256 over method, path, Content-Type and body bytes. */
  fingerprint: string;
  state: 'pending' | 'done';
  /** Stanza ids, recorded before routing: a retry after a crash sends with the same ones. */
  ids: string[];
  /** Milliseconds since the epoch when the key was first used. */
  stamp: number;
  status?: number;
  contentType?: string;
  body?: string;
}

/** 1–255 visible ASCII characters (§12). */
const KEY_RE = /^[\x21-\x7e]{1,255}$/;
/** Answers not kept: a retry after them is processed anew (§12). */
const isKept = (status: number): boolean => status !== 401 && status !== 409 && status !== 429 && status < 500;
/** Every this many new keys of an account, its expired records are swept. */
const SWEEP_EVERY = 64;

export const IDEMPOTENCY_STORE = 'post_msg_idempotency';

/** The fingerprint of a request: another request under the same key is 422. */
export function fingerprint(method: string, path: string, contentType: string, body: Buffer): string {
  const h = createHash('sha256');
  for (const part of [method.toUpperCase(), path, contentType]) h.update(`${Buffer.byteLength(part)}:${part}\n`);
  return h.update(body).digest('hex');
}

/** The request's key slot: `proceed` with the ids to reuse, or the answer was given already (replay, 400/409/422). */
export type Admission = { proceed: true; slot: Slot | undefined } | { proceed: false };

export interface Slot {
  /** Stanza ids of an earlier attempt that died before its answer was recorded; undefined for a new key. */
  readonly reusedIds: string[] | undefined;
  /** Record the stanza ids on disk before routing (resolves when durable). */
  reserve(ids: string[]): Promise<void>;
  /** Record the answer (or forget the key for 401, 409, 429, 5xx), then free the slot. */
  finish(status: number, contentType: string, body: string): Promise<void>;
  /** Forget the key (an error escaped: answered 500). */
  abandon(): Promise<void>;
}

export class Idempotency {
  /** `account\nkey` of requests being processed in this process: another with the same key is 409. */
  private readonly inFlight = new Set<string>();
  private readonly newKeys = new Map<string, number>();

  constructor(
    private readonly store: MapStore<IdempotencyRecord>,
    private readonly windowSeconds: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A header problem (400), or undefined; checked before the body is read. */
  static checkHeader(header: string | undefined): Problem | undefined {
    if (header === undefined || KEY_RE.test(header)) return undefined;
    return { status: 400, detail: 'Idempotency-Key is 1 to 255 visible ASCII characters (no spaces); send a fresh random key per message.' };
  }

  /** Look the key up for this request; answers a replay, 409 or 422 itself. */
  async begin(ctx: HttpContext, account: string, key: string, body: Buffer, answerProblem: (p: Problem) => void): Promise<Admission> {
    const slotKey = `${account}\n${key}`;
    if (this.inFlight.has(slotKey)) {
      answerProblem({ status: 409, detail: 'A request with this Idempotency-Key is still being processed; retry once it is answered.' });
      return { proceed: false };
    }
    const fp = fingerprint(ctx.method, ctx.path, ctx.get('content-type'), body);
    const found = await this.store.get(account, key);
    const live = found !== undefined && this.now() - found.stamp < this.windowSeconds * 1000 ? found : undefined;
    if (live && live.fingerprint !== fp) {
      answerProblem({ status: 422, detail: 'This Idempotency-Key was used for another request; use a new key for a new message.' });
      return { proceed: false };
    }
    if (live?.state === 'done') {
      ctx.status = live.status!;
      ctx.set('Content-Type', live.contentType!);
      ctx.set('Idempotent-Replayed', 'true');
      ctx.body = live.body!;
      return { proceed: false };
    }
    // A new key, an expired one, or a pending record left by a process that died before answering.
    if (this.inFlight.has(slotKey)) {
      answerProblem({ status: 409, detail: 'A request with this Idempotency-Key is still being processed; retry once it is answered.' });
      return { proceed: false };
    }
    this.inFlight.add(slotKey);
    const reusedIds = live?.state === 'pending' && live.ids.length > 0 ? live.ids : undefined;
    const stamp = live?.stamp ?? this.now();
    let released = false;
    const release = (): void => {
      released = true;
      this.inFlight.delete(slotKey);
    };
    const slot: Slot = {
      reusedIds,
      reserve: async (ids) => {
        await this.store.set(account, key, { fingerprint: fp, state: 'pending', ids, stamp });
      },
      finish: async (status, contentType, text) => {
        if (released) return;
        try {
          if (isKept(status)) await this.store.set(account, key, { fingerprint: fp, state: 'done', ids: [], stamp, status, contentType, body: text });
          else await this.store.set(account, key, undefined);
        } finally {
          release();
        }
      },
      abandon: async () => {
        if (released) return;
        try {
          await this.store.set(account, key, undefined);
        } finally {
          release();
        }
      },
    };
    if (!live) await this.maybeSweep(account);
    return { proceed: true, slot };
  }

  /** Drop an account's expired records now and then, so that keys never used again do not pile up. */
  private async maybeSweep(account: string): Promise<void> {
    const count = (this.newKeys.get(account) ?? 0) + 1;
    if (count < SWEEP_EVERY) {
      this.newKeys.set(account, count);
      return;
    }
    this.newKeys.delete(account);
    const cutoff = this.now() - this.windowSeconds * 1000;
    const expired = new Map<string, undefined>();
    for (const [k, record] of await this.store.getAll(account)) if (record.stamp <= cutoff) expired.set(k, undefined);
    if (expired.size > 0) await this.store.setKeys(account, expired);
  }
}

/** Where the request's slot waits for its answer. */
interface IdempotencyState {
  idempotency?: Slot;
}

export function holdSlot(ctx: HttpContext, slot: Slot | undefined): void {
  if (slot) (ctx.state as IdempotencyState).idempotency = slot;
}

/** Run the handler, then record its answer under the request's key, on disk before the answer leaves. */
export async function withIdempotency(ctx: HttpContext, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (err) {
    await (ctx.state as IdempotencyState).idempotency?.abandon();
    throw err;
  }
  const slot = (ctx.state as IdempotencyState).idempotency;
  if (slot) await slot.finish(ctx.status, ctx.response.get('Content-Type') || 'application/json', typeof ctx.body === 'string' ? ctx.body : '');
}
