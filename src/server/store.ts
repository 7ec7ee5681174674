// The server's sessions on disk: <data>/sessions/<id>/ holds an EditSession (the Imagic training state),
// the upload, the render cache and server.json (this record); <data>/uploads/<id>.png holds uploads not
// yet used. Records are kept in memory and written through (atomically) on every change that matters.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../io/image.js';
import type { ImagicSettings, PresetName } from '../pipelines/imagic/index.js';
import type { Choice, CompareState, Progress, SessionStatus } from './api.js';
import { ID_PATTERN, sessionFiles } from './paths.js';

export const RECORD_VERSION = 1;

export interface SessionRecord {
  version: number;
  id: string;
  /** Grows with every save (SessionSummary.revision). */
  revision: number;
  text: string;
  model: string;
  preset: PresetName;
  settings: ImagicSettings;
  auto: boolean;
  status: SessionStatus;
  error: string | null;
  created: string;
  updated: string;
  progress: Progress;
  losses: { A: number[]; B: number[] };
  choice: Choice | null;
  candidates: { eta: number; seed: number; alignment: number; preservation: number }[];
  inputAlignment: number | null;
  threshold: number | null;
  clip: string | null;
  compare: Omit<CompareState, 'images'> & { seed: number | null };
}

export class Store {
  readonly sessionsDir: string;
  readonly uploadsDir: string;
  private readonly records = new Map<string, SessionRecord>();

  constructor(readonly root: string, private readonly log: (m: string) => void) {
    this.sessionsDir = path.join(root, 'sessions');
    this.uploadsDir = path.join(root, 'uploads');
    mkdirSync(this.sessionsDir, { recursive: true });
    mkdirSync(this.uploadsDir, { recursive: true });
    for (const id of readdirSync(this.sessionsDir)) {
      if (!ID_PATTERN.test(id)) continue;
      const file = sessionFiles(this.dir(id)).record;
      if (!existsSync(file)) continue; // being created or deleted
      try {
        const r = JSON.parse(readFileSync(file, 'utf8')) as SessionRecord;
        if (r.version !== RECORD_VERSION || r.id !== id) throw new Error(`record version ${r.version}, id ${r.id}`);
        this.records.set(id, r);
      } catch (e) {
        this.log(`warning: skipping session ${id}: unreadable server.json (${(e as Error).message})`);
      }
    }
  }

  static newId(): string {
    return randomBytes(6).toString('hex');
  }

  /** A session's folder; only for ids that passed ID_PATTERN. */
  dir(id: string): string {
    if (!ID_PATTERN.test(id)) throw new Error(`not a session id: ${JSON.stringify(id)}`);
    return path.join(this.sessionsDir, id);
  }

  uploadFile(id: string): string {
    if (!ID_PATTERN.test(id)) throw new Error(`not an upload id: ${JSON.stringify(id)}`);
    return path.join(this.uploadsDir, `${id}.png`);
  }

  get(id: string): SessionRecord | undefined {
    return ID_PATTERN.test(id) ? this.records.get(id) : undefined;
  }

  /** Newest first. */
  list(): SessionRecord[] {
    return [...this.records.values()].sort((a, b) => b.created.localeCompare(a.created));
  }

  async add(r: SessionRecord): Promise<void> {
    this.records.set(r.id, r);
    await this.save(r);
  }

  async save(r: SessionRecord): Promise<void> {
    if (!this.records.has(r.id)) return; // deleted meanwhile
    r.updated = new Date().toISOString();
    r.revision = (r.revision ?? 0) + 1;
    await writeFileAtomic(sessionFiles(this.dir(r.id)).record, Buffer.from(`${JSON.stringify(r, null, 2)}\n`));
  }

  /** Forgets the record now; removes the folder. */
  async remove(id: string): Promise<void> {
    this.records.delete(id);
    await rm(this.dir(id), { recursive: true, force: true });
  }
}
