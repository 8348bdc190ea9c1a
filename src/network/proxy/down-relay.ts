/**
 * The upstream → client half of a tunnel, reading into one reused buffer (Node's `onread`) and
 * writing each read straight to the client. Node's pipe() allocates a fresh 64 KB Buffer per read
 * and pauses the source whenever a chunk exceeds the client's 16 KB high-water mark; this relay
 * allocates nothing per read and pauses only while the kernel has not taken a write. Downloads are
 * the bulk of a job's egress (packages, images), so this is the direction worth the care; the
 * client → upstream half stays a pipe().
 */
import type { Socket } from "node:net";
import type { Writable } from "node:stream";

/** Large reads mean fewer syscalls and callbacks per byte; measured best at 256 KB (bench/proxy-throughput.ts). */
const BUFFER_BYTES = 256 * 1024;

export class DownRelay {
  private buffer: Buffer | undefined;
  private client: Writable | undefined;
  private upstream: Socket | undefined;
  /** Bytes that arrived before start(): copied, since the buffer is reused. */
  private early: Buffer[] = [];
  private waiting = false;

  /** Pass as `onread` when connecting the upstream socket. */
  readonly onread = {
    buffer: (): Buffer => {
      this.buffer ??= Buffer.allocUnsafe(BUFFER_BYTES);
      return this.buffer;
    },
    callback: (n: number, buf: Uint8Array): boolean => this.onRead(buf.subarray(0, n)),
  };

  /** Relays from now on; the client must be ready for upstream bytes (the 200 already written). */
  start(upstream: Socket, client: Writable): void {
    this.upstream = upstream;
    this.client = client;
    for (const chunk of this.early.splice(0)) client.write(chunk);
    upstream.once("end", () => client.end());
    upstream.resume();
  }

  private onRead(chunk: Uint8Array): boolean {
    const client = this.client;
    if (!client) {
      // A server that speaks first (SSH, SMTP) may answer before the tunnel is announced.
      this.early.push(Buffer.from(chunk));
      return false;
    }
    if (client.destroyed) return false;
    client.write(chunk, () => {
      if (!this.waiting) return;
      this.waiting = false;
      this.upstream?.resume();
    });
    // Still queued: the kernel has not taken it all, so the buffer stays ours until it has.
    if (client.writableLength > 0) {
      this.waiting = true;
      return false;
    }
    return true;
  }
}
