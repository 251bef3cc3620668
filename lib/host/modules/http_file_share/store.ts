// The files of http_file_share under data_dir/http_file_share/: `<slot>` (the bytes, once complete) and
// `<slot>.json` (name, size, type, uploader, time), with an index in memory for quotas, lookups and expiry
// (Prosody's mod_http_file_share keeps the same in its `uploads` archive).

import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface Upload {
  slot: string;
  filename: string;
  size: number;
  type: string;
  uploader: string;
  /** Unix time (seconds) of the slot request. */
  time: number;
}

/** Slot ids are ours: 24 base64url characters, so a path segment can never name anything else. */
export const SLOT_ID = /^[\w-]{24}$/;

const DAY = 86_400;

export class UploadStore {
  private readonly uploads = new Map<string, Upload>();

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(dir)) {
      if (!name.endsWith('.json') || !SLOT_ID.test(name.slice(0, -5))) continue;
      try {
        const upload = JSON.parse(readFileSync(join(dir, name), 'utf8')) as Upload;
        if (upload.slot === name.slice(0, -5)) this.uploads.set(upload.slot, upload);
      } catch {
        // A record cut short by a crash: its slot is unusable, and expiry cannot date it; the file stays for an admin.
      }
    }
  }

  dataPath(slot: string): string {
    return join(this.dir, slot);
  }

  partPath(slot: string): string {
    return join(this.dir, `${slot}.part`);
  }

  get(slot: string): Upload | undefined {
    return SLOT_ID.test(slot) ? this.uploads.get(slot) : undefined;
  }

  /** Bytes and slots the account asked for in the 24 hours before `now` (Prosody's daily quota counts slot requests). */
  usedToday(uploader: string, now: number): { bytes: number; slots: number } {
    let bytes = 0;
    let slots = 0;
    for (const u of this.uploads.values()) {
      if (u.uploader !== uploader || u.time <= now - DAY) continue;
      bytes += u.size;
      slots += 1;
    }
    return { bytes, slots };
  }

  /** Record a slot: in memory at once (so parallel requests count against the quota), then on disk. */
  async add(upload: Upload): Promise<void> {
    this.uploads.set(upload.slot, upload);
    try {
      await writeFile(join(this.dir, `${upload.slot}.json`), JSON.stringify(upload), { mode: 0o600, flag: 'wx' });
    } catch (err) {
      this.uploads.delete(upload.slot);
      throw err;
    }
  }

  /** Remove every upload older than `maxAge` seconds, its bytes and its record; the slots removed. */
  async expire(now: number, maxAge: number): Promise<string[]> {
    return this.remove((u) => u.time + maxAge <= now);
  }

  /** Remove every upload of an account (deleted: its files go with it); the slots removed. */
  async removeUploader(uploader: string): Promise<string[]> {
    return this.remove((u) => u.uploader === uploader);
  }

  /** The accounts with uploads kept. */
  uploaders(): Set<string> {
    return new Set([...this.uploads.values()].map((u) => u.uploader));
  }

  private async remove(which: (u: Upload) => boolean): Promise<string[]> {
    const slots = [...this.uploads.values()].filter(which).map((u) => u.slot);
    for (const slot of slots) {
      // Out of the index first: a GET or PUT from now on finds no slot.
      this.uploads.delete(slot);
      await Promise.all([slot, `${slot}.part`, `${slot}.json`].map((f) => rm(join(this.dir, f), { force: true })));
    }
    return slots;
  }
}
