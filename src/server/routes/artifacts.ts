import { z } from "zod";
import { packManifest } from "../../artifacts/archive.js";
import { findArtifact, listArtifacts } from "../../artifacts/catalog.js";
import type { App, ServerContext } from "../context.js";

const listQuery = z.strictObject({ run: z.string().min(1).max(64).optional() });
// An artifact id or its digest.
const refParams = z.strictObject({ ref: z.string().regex(/^(art_[a-z2-7]{16}|sha256:[0-9a-f]{64})$/) });

export function artifactRoutes(app: App, ctx: ServerContext): void {
  const { db, artifacts } = ctx.controller.deps;

  app.get(
    "/artifacts",
    { config: { access: "runs:read" }, schema: { querystring: listQuery } },
    async (req) => listArtifacts(db, req.query.run ? { runId: req.query.run } : {}),
  );

  app.get(
    "/artifacts/:ref",
    { config: { access: "runs:read" }, schema: { params: refParams } },
    async (req) => {
      const { manifest: _manifest, ...info } = await findArtifact(db, req.params.ref);
      return info;
    },
  );

  app.get(
    "/artifacts/:ref/download",
    { config: { access: "runs:read" }, schema: { params: refParams } },
    async (req, reply) => {
      const found = await findArtifact(db, req.params.ref);
      reply
        .type("application/x-tar")
        .header("content-disposition", `attachment; filename="${found.name}.tar"`);
      // Blobs are checked against their digests as they stream; a corrupt one ends the response.
      return reply.send(packManifest(artifacts, found.manifest));
    },
  );
}
