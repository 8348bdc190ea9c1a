// Bundles the library into dist/ with a small manifest; no network, no dependencies.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";

const source = readFileSync("src/greet.js", "utf8");
mkdirSync("dist", { recursive: true });
writeFileSync("dist/greet.js", source);
const digest = createHash("sha256").update(source).digest("hex");
writeFileSync(
  "dist/manifest.json",
  `${JSON.stringify({ files: { "greet.js": `sha256:${digest}` } }, null, 2)}\n`,
);
console.log(`built dist/greet.js (sha256:${digest})`);
