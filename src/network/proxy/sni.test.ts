import { describe, expect, it } from "vitest";
import { parseClientHello } from "./sni.js";
import { captureClientHello } from "./test-support.js";

/** Re-frames one handshake message as several TLS records of at most `size` bytes each. */
function fragment(hello: Buffer, size: number): Buffer {
  const len = hello.readUInt16BE(3);
  const body = hello.subarray(5, 5 + len);
  const out: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) {
    const part = body.subarray(i, i + size);
    const header = Buffer.from([0x16, 0x03, 0x01, 0, 0]);
    header.writeUInt16BE(part.length, 3);
    out.push(header, part);
  }
  return Buffer.concat(out);
}

describe("parseClientHello", () => {
  it("reads the server name of a real ClientHello", async () => {
    const hello = await captureClientHello("registry.test");
    expect(parseClientHello(hello)).toEqual({ state: "done", serverName: "registry.test" });
  });

  it("reports no server name when the client sends none", async () => {
    const hello = await captureClientHello();
    expect(parseClientHello(hello)).toEqual({ state: "done", serverName: undefined });
  });

  it("asks for more until the whole ClientHello is there, at every cut", async () => {
    const hello = await captureClientHello("a.example.com");
    for (let cut = 0; cut < hello.length; cut++) {
      expect(parseClientHello(hello.subarray(0, cut))).toEqual({ state: "more" });
    }
  });

  it("reassembles a ClientHello split over several records", async () => {
    const hello = await captureClientHello("split.example.com");
    for (const size of [1, 3, 50, 200]) {
      expect(parseClientHello(fragment(hello, size))).toEqual({
        state: "done",
        serverName: "split.example.com",
      });
    }
  });

  it.each([
    ["plain HTTP", Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n")],
    ["SSH", Buffer.from("SSH-2.0-OpenSSH_9.6\r\n")],
    ["a zero-length record", Buffer.from([0x16, 0x03, 0x01, 0, 0])],
    ["a ServerHello", Buffer.from([0x16, 0x03, 0x03, 0, 4, 0x02, 0, 0, 0])],
    ["a ClientHello claiming 1 MB", Buffer.from([0x16, 0x03, 0x01, 0, 4, 0x01, 0x10, 0, 0])],
  ])("refuses %s", (_name, bytes) => {
    expect(parseClientHello(bytes)).toMatchObject({ state: "invalid" });
  });

  it("refuses a ClientHello whose lengths overrun it", async () => {
    const hello = Buffer.from(await captureClientHello("x.example.com"));
    // Claim an extensions block longer than the message.
    const bad = Buffer.from(hello);
    const sessionLen = bad[5 + 4 + 34] as number;
    let p = 5 + 4 + 35 + sessionLen;
    p += 2 + bad.readUInt16BE(p);
    p += 1 + (bad[p] as number);
    bad.writeUInt16BE(0xffff, p);
    expect(parseClientHello(bad)).toMatchObject({ state: "invalid" });
  });
});
