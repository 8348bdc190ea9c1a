import { EventEmitter } from "node:events";
import { StringDecoder } from "node:string_decoder";
import type { Clock } from "../clock.js";
import type { Db } from "../store/database.js";

export type LogStream = "stdout" | "stderr" | "system";

export interface LogLine {
  seq: number;
  jobId: string;
  stepIdx: number;
  stream: LogStream;
  data: string;
  at: string;
}

/**
 * The stage between a process's output and everything that keeps or shows it. Secret masking
 * plugs in here: a filter sees text in order, may hold back a partial match until the next chunk,
 * and must release everything it holds on `flush`.
 */
export interface LogFilter {
  push(text: string): string;
  flush(): string;
}

export const passThrough: LogFilter = { push: (t) => t, flush: () => "" };

/** Live subscribers (the server's streaming route, the embedded CLI) listen here by job id. */
export const logBus = new EventEmitter().setMaxListeners(0);

const flushDelayMs = 40;

/**
 * Turns raw bytes from a step into stored, streamed log text. Decoding is per stream so a UTF-8
 * character split across chunks is not mangled; writes are batched so a chatty step costs one
 * insert per flush, not per chunk.
 */
export class LogPipeline {
  private readonly decoders = new Map<string, StringDecoder>();
  private readonly filters = new Map<string, LogFilter>();
  private pending: { stepIdx: number; stream: LogStream; data: string; at: string }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly jobId: string,
    private readonly clock: Clock,
    private readonly makeFilter: (stream: LogStream) => LogFilter = () => passThrough,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  write(stepIdx: number, stream: LogStream, chunk: Buffer | string): void {
    const key = `${stepIdx}:${stream}`;
    let text: string;
    if (typeof chunk === "string") {
      text = chunk;
    } else {
      let decoder = this.decoders.get(key);
      if (!decoder) {
        decoder = new StringDecoder("utf8");
        this.decoders.set(key, decoder);
      }
      text = decoder.write(chunk);
    }
    this.emit(stepIdx, stream, this.filterFor(key, stream).push(text));
  }

  /** Ends a step's streams: releases what decoders and filters held back. */
  endStep(stepIdx: number): void {
    for (const stream of ["stdout", "stderr", "system"] as const) {
      const key = `${stepIdx}:${stream}`;
      const rest = this.decoders.get(key)?.end() ?? "";
      if (!this.filters.has(key) && !rest) continue;
      const filter = this.filterFor(key, stream);
      const out = filter.push(rest) + filter.flush();
      this.emit(stepIdx, stream, out);
      this.decoders.delete(key);
      this.filters.delete(key);
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  private filterFor(key: string, stream: LogStream): LogFilter {
    let filter = this.filters.get(key);
    if (!filter) {
      filter = this.makeFilter(stream);
      this.filters.set(key, filter);
    }
    return filter;
  }

  private emit(stepIdx: number, stream: LogStream, data: string): void {
    if (!data) return;
    this.pending.push({ stepIdx, stream, data, at: this.clock.now().toISOString() });
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, flushDelayMs);
  }

  private flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return this.writing;
    this.writing = this.writing
      .then(async () => {
        const rows = await this.db
          .insertInto("log_chunks")
          .values(
            batch.map((b) => ({
              job_id: this.jobId,
              step_idx: b.stepIdx,
              stream: b.stream,
              data: b.data,
              at: b.at,
            })),
          )
          .returning("seq")
          .execute();
        batch.forEach((b, i) => {
          const line: LogLine = { seq: Number(rows[i]?.seq), jobId: this.jobId, ...b };
          logBus.emit(this.jobId, line);
        });
      })
      .catch(this.onError);
    return this.writing;
  }
}

export async function readLogs(db: Db, jobId: string, afterSeq = 0, limit = 5000): Promise<LogLine[]> {
  const rows = await db
    .selectFrom("log_chunks")
    .selectAll()
    .where("job_id", "=", jobId)
    .where("seq", ">", afterSeq)
    .orderBy("seq")
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    seq: Number(r.seq),
    jobId: r.job_id,
    stepIdx: r.step_idx,
    stream: r.stream as LogStream,
    data: r.data,
    at: r.at,
  }));
}
