// A test host's services, run inside a network namespace the test made (`ip netns exec NS node
// net-host-server.mjs CONFIG_JSON`): static HTTP (a dumb-protocol git repo, an npm registry's
// packument and tarball are just files), TCP echo ports and a DNS server that answers every A
// query with one address. Every request/connection/query is appended to `log` as a JSON line so a
// test can tell whether anything reached it. Exits by itself after `lifetimeMs`.

import { createSocket } from "node:dgram";
import { appendFileSync, createReadStream, statSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { join, normalize } from "node:path";

const config = JSON.parse(process.argv[2] ?? "{}");
const { address, log, lifetimeMs = 10 * 60_000 } = config;
const record = (entry) => appendFileSync(log, `${JSON.stringify({ at: Date.now(), ...entry })}\n`);
setTimeout(() => process.exit(0), lifetimeMs).unref();
process.on("SIGTERM", () => process.exit(0));

const listening = [];

for (const { port, root } of config.http ?? []) {
  const server = createHttpServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    // npm asks for scoped names percent-encoded; plain names are plain paths.
    const path = normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.[/\\])+/, "");
    record({
      kind: "http",
      port,
      method: req.method,
      path: url.pathname,
      host: req.headers.host,
      // What a relying party is handed (a bearer ID token), for suites that verify it themselves.
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    let file = join(root, path);
    try {
      if (statSync(file).isDirectory()) file = join(file, "index.json");
      const size = statSync(file).size;
      const type = /\.(tgz|pack|idx)$/.test(file) ? "application/octet-stream" : "application/json";
      res.writeHead(200, { "content-type": type, "content-length": size });
      createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found\n");
    }
  });
  listening.push(new Promise((r) => server.listen(port, address, r)));
}

for (const port of config.tcp ?? []) {
  const server = createTcpServer((sock) => {
    record({ kind: "tcp", port, from: sock.remoteAddress });
    sock.on("error", () => undefined);
    sock.write(`echo-${port}\n`);
    sock.pipe(sock);
  });
  listening.push(new Promise((r) => server.listen(port, address, r)));
}

if (config.dns) {
  const { port, answer } = config.dns;
  const sock = createSocket("udp4");
  sock.on("message", (msg, rinfo) => {
    // Minimal DNS: echo the question back with one A record pointing at `answer`.
    let off = 12;
    const labels = [];
    while (off < msg.length && msg[off] !== 0) {
      labels.push(msg.subarray(off + 1, off + 1 + msg[off]).toString());
      off += msg[off] + 1;
    }
    const question = msg.subarray(12, off + 5);
    record({ kind: "dns", port, name: labels.join("."), from: rinfo.address });
    const header = Buffer.from([msg[0], msg[1], 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    const rr = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...answer.split(".").map(Number)]);
    sock.send(Buffer.concat([header, question, rr]), rinfo.port, rinfo.address);
  });
  listening.push(new Promise((r) => sock.bind(port, address, r)));
}

await Promise.all(listening);
process.stdout.write("ready\n");
