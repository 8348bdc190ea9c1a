import type { LogLine } from "../logs/pipeline.js";

/**
 * Reassembles whole lines per step and stream. Stored chunks end wherever a write (or the
 * masker's hold-back) ended, so stdout and stderr chunks of one step can interleave mid-line;
 * printing complete lines keeps each line intact.
 */
export class LineAssembler {
  private readonly partial = new Map<string, { stream: LogLine["stream"]; text: string }>();

  /** The complete lines this chunk finishes, with the stream each came from. */
  push(chunk: LogLine): { stream: LogLine["stream"]; text: string }[] {
    const key = `${chunk.stepIdx}:${chunk.stream}`;
    const lines = ((this.partial.get(key)?.text ?? "") + chunk.data).split("\n");
    this.partial.set(key, { stream: chunk.stream, text: lines.pop() ?? "" });
    return lines.map((text) => ({ stream: chunk.stream, text }));
  }

  /** Whatever never got its newline. */
  rest(): { stream: LogLine["stream"]; text: string }[] {
    const out = [...this.partial.values()].filter((p) => p.text !== "");
    this.partial.clear();
    return out;
  }
}
