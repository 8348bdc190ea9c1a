import { getJobRow } from "../controller/job-store.js";
import { type LogLine, logBus, readLogs } from "../logs/pipeline.js";
import type { Db } from "../store/database.js";

/** States after which a job writes no more log lines (the same set the controller waits for). */
export const logsCompleteStates: readonly string[] = ["torn_down", "denied", "skipped", "cancelled"];

export interface FollowOptions {
  afterSeq: number;
  follow: boolean;
  /** Ends the stream early: the client went away or the server is shutting down. */
  signal: AbortSignal;
  /** How often the store is read for lines another process wrote, and the job state checked. */
  pollMs?: number;
}

/**
 * Yields a job's log lines in seq order: what is stored first, then (with `follow`) what arrives,
 * until the job is done and every line has been sent. Live lines come from this process's logBus;
 * the poll catches lines written by another process (a CLI-embedded scheduler sharing the store).
 * A job's lines have one writer, so seqs only grow and "seq > last sent" is enough to dedupe.
 */
export async function* jobLogLines(db: Db, jobId: string, opts: FollowOptions): AsyncGenerator<LogLine> {
  const pollMs = opts.pollMs ?? 500;
  let last = opts.afterSeq;
  const live: LogLine[] = [];
  let wake: (() => void) | undefined;
  const onLine = (line: LogLine) => {
    live.push(line);
    wake?.();
  };
  const onAbort = () => wake?.();
  // Subscribe before the first read, so a line written between the read and the subscription
  // cannot fall into the gap.
  if (opts.follow) logBus.on(jobId, onLine);
  opts.signal.addEventListener("abort", onAbort);
  try {
    let poll = true;
    let nextPollAt = 0;
    for (;;) {
      if (poll) {
        // Read the state before the lines: if it was final then, every line was already stored.
        const done = !opts.follow || logsCompleteStates.includes((await getJobRow(db, jobId)).state);
        for (;;) {
          const page = await readLogs(db, jobId, last);
          for (const line of page) {
            last = line.seq;
            yield line;
            if (opts.signal.aborted) return;
          }
          if (page.length === 0) break;
        }
        if (done) return;
        nextPollAt = Date.now() + pollMs;
      }
      if (opts.signal.aborted) return;
      // Live lines wake us without a store round trip; the poll keeps its own cadence regardless.
      poll = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(true), Math.max(0, nextPollAt - Date.now()));
        wake = () => {
          clearTimeout(timer);
          resolve(false);
        };
        if (live.length > 0 || opts.signal.aborted) wake();
      });
      wake = undefined;
      while (live.length > 0) {
        const line = live.shift() as LogLine;
        if (line.seq <= last) continue;
        last = line.seq;
        yield line;
        if (opts.signal.aborted) return;
      }
    }
  } finally {
    logBus.off(jobId, onLine);
    opts.signal.removeEventListener("abort", onAbort);
  }
}
