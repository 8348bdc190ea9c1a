import type { LogLine } from "../logs/pipeline.js";

/**
 * Reassembles whole lines per step and stream. Stored chunks end wherever a write (or the
 * masker's hold-back) ended, so stdout and stderr chunks of one step can interleave mid-line;
 * printing complete lines keeps each line intact.
 */
export class LineAssembler {
  private readonly partial = new Map<string, { stream: LogLine["stream"]; text: string }>();

  /** A line longer than this is printed in pieces: a job's endless line must not grow the CLI. */
  constructor(private readonly maxLine = 64 * 1024) {}

  /** The complete lines this chunk finishes, with the stream each came from. */
  push(chunk: LogLine): { stream: LogLine["stream"]; text: string }[] {
    const key = `${chunk.stepIdx}:${chunk.stream}`;
    const lines = ((this.partial.get(key)?.text ?? "") + chunk.data).split("\n");
    let rest = lines.pop() ?? "";
    while (rest.length > this.maxLine) {
      lines.push(rest.slice(0, this.maxLine));
      rest = rest.slice(this.maxLine);
    }
    this.partial.set(key, { stream: chunk.stream, text: rest });
    return lines.map((text) => ({ stream: chunk.stream, text }));
  }

  /** Whatever never got its newline. */
  rest(): { stream: LogLine["stream"]; text: string }[] {
    const out = [...this.partial.values()].filter((p) => p.text !== "");
    this.partial.clear();
    return out;
  }
}
