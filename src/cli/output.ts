import { styleText } from "node:util";
import { AirlockError, formatPosition, isAirlockError } from "../errors.js";
import { terminalSafe } from "./terminal-text.js";

const useColor = process.stdout.isTTY && !process.env.NO_COLOR;
const useColorErr = process.stderr.isTTY && !process.env.NO_COLOR;

type Style = Parameters<typeof styleText>[0];

export function paint(style: Style, text: string, stream: "out" | "err" = "out"): string {
  return (stream === "out" ? useColor : useColorErr) ? styleText(style, text) : text;
}

const stateStyle: Record<string, Style> = {
  succeeded: "green",
  failed: "red",
  timed_out: "red",
  denied: "red",
  cancelled: "yellow",
  skipped: "gray",
  running: "cyan",
  provisioning: "cyan",
};

/** Colours `text` (default: the state itself) the way the state is shown everywhere. */
export function paintState(state: string, text = state): string {
  return paint(stateStyle[state] ?? "white", text);
}

/** A plain aligned table; the CLI prints little else. */
export function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = [
    headers,
    // Cells can hold what a job or workflow chose (a step name, an error detail): printed safely.
    ...rows.map((r) => r.map((c) => (c === null || c === undefined ? "-" : safeCell(String(c))))),
  ];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => visibleLength(r[i] ?? ""))));
  return cells
    .map((r, ri) => {
      const line = r
        .map((c, i) => c + " ".repeat((widths[i] ?? 0) - visibleLength(c)))
        .join("  ")
        .trimEnd();
      return ri === 0 ? paint("bold", line) : line;
    })
    .join("\n");
}

/** Our own colour codes (SGR) stay; every other control character is shown escaped. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: splits around ANSI colour codes.
const SGR = /(\u001b\[[0-9;]*m)/;

function safeCell(s: string): string {
  return s
    .split(SGR)
    .map((part, i) => (i % 2 === 1 ? part : terminalSafe(part)))
    .join("");
}

function visibleLength(s: string): number {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI colour codes.
  return s.replace(/\u001b\[[0-9;]*m/g, "").length;
}

/** One red line with the problem, then the hint, then the exit code for its class. */
export function reportError(err: unknown): number {
  const e = isAirlockError(err) ? err : new AirlockError("INTERNAL", (err as Error)?.message ?? String(err));
  process.stderr.write(`${paint("red", `error: ${e.message}`, "err")}\n`);
  const more = e.details?.errors;
  if (Array.isArray(more) && more.length > 1) {
    for (const item of more.slice(1) as { message: string; file?: string; line?: number; col?: number }[]) {
      const where =
        item.file && item.line
          ? `${formatPosition({ file: item.file, line: item.line, col: item.col ?? 1 })}: `
          : "";
      process.stderr.write(`${paint("red", `       ${where}${item.message}`, "err")}\n`);
    }
  }
  if (e.hint) process.stderr.write(`${paint("gray", `hint: ${e.hint}`, "err")}\n`);
  if (e.code === "INTERNAL" && process.env.AIRLOCK_DEBUG) process.stderr.write(`${(err as Error)?.stack}\n`);
  return e.exitCode;
}

export function duration(from: string | null, to: string | null): string {
  if (!from || !to) return "";
  const ms = Date.parse(to) - Date.parse(from);
  return ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`;
}
