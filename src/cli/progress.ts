/**
 * Restore progress for humans: a cli-progress bar when stderr is a TTY, else a plain log line
 * every few seconds (only for restores that take that long).
 */
import cliProgress from 'cli-progress';
import type { Logger } from '../log/logger.js';
import type { RestoreProgress } from '../restore/restore.js';

export function startProgress(log: Logger, intervalMs = 5000): { update: (p: RestoreProgress) => void; done: () => void } {
  const started = Date.now();
  let last = started;
  let bar: cliProgress.SingleBar | undefined;
  let finished = false;
  const tty = process.stderr.isTTY === true;
  return {
    update(p) {
      if (finished) return;
      const now = Date.now();
      if (tty) {
        if (!bar && now - started > 500) {
          bar = new cliProgress.SingleBar({ stream: process.stderr, format: 'restore [{bar}] {percentage}% | {value}/{total} bytes | {speed} MB/s | ETA {eta}s | WAL {applied}/{indexes}' }, cliProgress.Presets.shades_classic);
          bar.start(p.total, p.downloaded, { speed: '0', applied: p.applied, indexes: p.indexes });
        }
        bar?.update(p.downloaded, { speed: (p.downloaded / 1e6 / Math.max(0.001, (now - started) / 1000)).toFixed(1), applied: p.applied, indexes: p.indexes });
      } else if (now - last >= intervalMs) {
        last = now;
        const rate = p.downloaded / Math.max(0.001, (now - started) / 1000);
        log.info('restore progress', { downloaded: p.downloaded, total: p.total, applied_wal_indexes: p.applied, wal_indexes: p.indexes, mb_per_s: +(rate / 1e6).toFixed(1), eta_s: rate > 0 ? Math.round((p.total - p.downloaded) / rate) : undefined });
      }
    },
    done() {
      if (finished) return;
      finished = true;
      bar?.stop();
    },
  };
}
