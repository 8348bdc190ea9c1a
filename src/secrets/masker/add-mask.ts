/**
 * The GitHub workflow command `::add-mask::VALUE`. At the start of a line (after optional spaces
 * or tabs) it registers VALUE with the job's secret set and the whole line is dropped, so the
 * value never reaches the next stage, however the line is split across chunks. The value uses
 * the workflow-command escapes (%25 → %, %0D → CR, %0A → LF), so a multi-line secret can be added.
 *
 * Anywhere else on a line (typically `set -x` tracing `echo "::add-mask::$TOKEN"`), it is not a
 * command, but the rest of that line is still replaced by `***`: it is the value being leaked.
 *
 * This stage sits in front of the needle automaton and emits text through a callback, so a value
 * it registers is in force for the very next character (the automaton rebuilds and rescans).
 */
import { MAX_SECRET_LENGTH, MIN_SECRET_LENGTH, trimSeparators } from "./needles.js";

const COMMAND = "::add-mask::";
/** Spaces or tabs at the start of a line are held while they could still precede a command. */
const MAX_INDENT = 1024;

export type AddMaskEvent =
  | { accepted: true; name: string }
  | { accepted: false; name: string; reason: "too-short" | "too-long" };

type Mode = "text" | "value" | "skip";

export class AddMaskStage {
  private held = "";
  /** Whether held[0] (or the next character, if nothing is held) starts a line. */
  private bol = true;
  private mode: Mode = "text";
  private value = "";
  private tooLong = false;
  private count = 0;

  constructor(
    private readonly register: (name: string, value: string) => AddMaskEvent,
    private readonly notify: (e: AddMaskEvent) => void,
  ) {}

  push(text: string, emit: (s: string) => void): void {
    const s = this.held.length > 0 ? this.held + text : text;
    this.held = "";
    let start = 0; // first character not yet emitted or consumed
    let bol = this.bol; // whether s[start] begins a line
    for (;;) {
      if (this.mode !== "text") {
        const nl = s.indexOf("\n", start);
        if (nl === -1) {
          this.take(s.slice(start));
          this.bol = false;
          return;
        }
        this.take(s.slice(start, nl));
        if (this.mode === "value") this.finish(emit);
        else emit("\n");
        this.mode = "text";
        start = nl + 1;
        bol = true;
      }
      const j = s.indexOf(COMMAND, start);
      if (j === -1) break;
      const nl = s.lastIndexOf("\n", j - 1);
      const lineBegin = nl >= start ? nl + 1 : start;
      const atBol = nl >= start ? true : bol;
      if (atBol && /^[ \t]*$/.test(s.slice(lineBegin, j))) {
        emit(s.slice(start, lineBegin));
        this.mode = "value";
        this.value = "";
        this.tooLong = false;
      } else {
        emit(`${s.slice(start, j)}${COMMAND}***`);
        this.mode = "skip";
      }
      start = j + COMMAND.length;
    }
    // No complete command left: hold back what could still become one.
    const nl = s.lastIndexOf("\n");
    const lineBegin = nl >= start ? nl + 1 : start;
    const lineAtBol = nl >= start ? true : bol;
    let hold = s.length;
    if (lineAtBol) {
      const line = s.slice(lineBegin);
      const indent = line.length - line.replace(/^[ \t]+/, "").length;
      const restOfLine = line.slice(indent);
      if (indent <= MAX_INDENT && COMMAND.startsWith(restOfLine)) hold = lineBegin;
    }
    if (hold === s.length) {
      for (let k = Math.min(COMMAND.length - 1, s.length - start); k > 0; k--) {
        if (s.endsWith(COMMAND.slice(0, k))) {
          hold = s.length - k;
          break;
        }
      }
    }
    emit(s.slice(start, hold));
    this.held = s.slice(hold);
    this.bol = hold < s.length ? hold === lineBegin && lineAtBol : s.length > start ? s.endsWith("\n") : bol;
  }

  flush(emit: (s: string) => void): void {
    if (this.mode === "value") this.finish(emit);
    this.mode = "text";
    emit(this.held);
    this.held = "";
    this.bol = true;
  }

  private take(part: string): void {
    if (this.mode !== "value" || this.tooLong) return;
    if (this.value.length + part.length > 3 * MAX_SECRET_LENGTH) {
      this.tooLong = true;
      this.value = "";
      return;
    }
    this.value += part;
  }

  private finish(emit: (s: string) => void): void {
    const name = `add-mask #${++this.count}`;
    const raw = this.value.endsWith("\r") ? this.value.slice(0, -1) : this.value;
    this.value = "";
    const value = raw.replace(/%(25|0D|0A)/gi, (_, e: string) =>
      e === "25" ? "%" : e.toUpperCase() === "0D" ? "\r" : "\n",
    );
    let event: AddMaskEvent;
    if (this.tooLong || value.length > MAX_SECRET_LENGTH) {
      event = { accepted: false, name, reason: "too-long" };
    } else if (trimSeparators(value).length < MIN_SECRET_LENGTH) {
      event = { accepted: false, name, reason: "too-short" };
    } else {
      event = this.register(name, value);
    }
    if (!event.accepted) {
      emit(
        event.reason === "too-short"
          ? `[airlock] ::add-mask:: refused: the value is shorter than ${MIN_SECRET_LENGTH} characters and will not be masked\n`
          : `[airlock] ::add-mask:: refused: the value is longer than ${MAX_SECRET_LENGTH} characters and will not be masked\n`,
      );
    }
    this.notify(event);
  }
}
