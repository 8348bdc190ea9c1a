/**
 * Job output is written by the job, and the operator's terminal interprets what it is sent: an
 * escape sequence in a log line can retitle the window, rewrite the screen to hide or fake
 * lines, plant an OSC 8 link or OSC 52 clipboard content, or (on some terminals) answer back
 * into the shell's input. Before the CLI prints job-controlled text, every C0 and C1 control
 * character except tab, DEL, and the bidirectional overrides that make text read differently
 * from its bytes ("trojan source") are shown as visible escapes such as `\x1b` and `\u202e`.
 */

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const UNSAFE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function visible(ch: string): string {
  const code = ch.charCodeAt(0);
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, "0")}`
    : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** One line of job text as safe to print; a trailing CR (CRLF line ends) is dropped. */
export function terminalSafe(line: string): string {
  return line.replace(/\r$/, "").replace(UNSAFE, visible);
}
