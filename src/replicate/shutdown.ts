/**
 * The final sync of one database at shutdown (controller.ts close()): the last copy of its WAL to
 * the shadow WAL, then every replica's final sync (final-sync.ts) in parallel, each handing its
 * lease over once nothing of ours is in flight; all within the deadline.
 */
import { errorMessage } from '../errors.js';
import type { Replica } from '../replica/replica.js';
import { withDeadline, type Timers } from '../util/timers.js';
import type { Entry } from './entry.js';
import { finalSync } from './final-sync.js';
import type { SyncFailure } from './types.js';

export interface ShutdownOptions {
  /** Epoch ms (wall clock) by which it must be over. */
  deadline: number;
  fast?: boolean;
  /** Take the replica's lease if start-up could not (throws when held elsewhere). */
  ensureLease: (r: Replica) => Promise<void>;
  /** Wall clock (ms), as `deadline`. */
  now: () => number;
  timers: Timers;
}

/** Final sync of `e`; what failed is pushed to `failures`. Releases the read lock at the end. */
export async function finalSyncDB(e: Entry, failures: SyncFailure[], o: ShutdownOptions): Promise<void> {
  try {
    e.db.sync();
  } catch (err) {
    failures.push({ db: e.cfg.path, replica: '(local shadow WAL)', error: errorMessage(err) });
    return;
  }
  const left = () => Math.max(250, o.deadline - o.now());
  await Promise.all(e.replicas.map(async (r) => {
    const guard = e.leases.get(r);
    const { settled, error } = await finalSync(r, guard, { deadline: o.deadline, ...(o.fast ? { fast: true } : {}), ensureLease: () => o.ensureLease(r), now: o.now, timers: o.timers });
    if (error === undefined) {
      e.log.info('final sync done', { replica: r.name, position: r.pos ? `${r.pos.generation}/${r.pos.index.toString(16).padStart(8, '0')}:${r.pos.offset}` : undefined });
    } else {
      failures.push({ db: e.cfg.path, replica: `${r.name} (${r.cfg.display})`, error: errorMessage(error) });
    }
    // Hand the replica over only once nothing of ours is in flight; a sync cut off by the
    // deadline keeps the lease until it expires (ttl), so the next instance cannot overlap it.
    if (guard && settled) {
      await withDeadline(guard.release(), left(), 'lease release timed out', o.timers).catch((err) =>
        e.log.warn('replica lease not released; the next instance takes it over when it expires', { replica: r.name, error: errorMessage(err) }));
    } else if (guard) {
      guard.stop();
    }
    // Bounded too: an SFTP store still dialling a server that never answers waits out its dial timeout (30 s).
    if (guard) await withDeadline(guard.store.close(), left(), 'lease store close timed out', o.timers).catch(() => {});
  }));
  e.db.stop();
}
