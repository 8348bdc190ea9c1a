import { z } from "zod";
import { packManifest } from "../../artifacts/archive.js";
import { findArtifact, listArtifacts } from "../../artifacts/catalog.js";
import { revoke } from "../../artifacts/gate/index.js";
import { attestationsOf } from "../../controller/attestations.js";
import { promoteArtifact, verifyStoredArtifact } from "../../controller/verify.js";
import { type App, principalOf, type ServerContext } from "../context.js";

const listQuery = z.strictObject({ run: z.string().min(1).max(64).optional() });
// An artifact id or its digest.
const refParams = z.strictObject({ ref: z.string().regex(/^(art_[a-z2-7]{16}|sha256:[0-9a-f]{64})$/) });

const verifyBody = z.strictObject({
  artifact: z.string().regex(/^(art_[a-z2-7]{16}|sha256:[0-9a-f]{64})$/),
  repo: z.string().min(1).max(300).optional(),
  ref: z.string().min(1).max(300).optional(),
  workflow: z.string().min(1).max(500).optional(),
  protectedRefOnly: z.boolean().optional(),
});

export function artifactRoutes(app: App, ctx: ServerContext): void {
  const { db, artifacts } = ctx.controller.deps;

  const revokeBody = z.strictObject({
    kind: z.enum(["artifact", "key", "runner"]),
    subject: z.string().min(1).max(200),
    reason: z.string().min(1).max(1000),
  });
  // Revoking is an incident responder's act: admin only.
  app.post(
    "/revocations",
    { config: { access: "users:write" }, schema: { body: revokeBody } },
    async (req) => ({
      created: (await revoke(db, req.body, principalOf(req).userName)).created,
    }),
  );

  const promoteBody = z.strictObject({
    artifact: z.string().regex(/^(art_[a-z2-7]{16}|sha256:[0-9a-f]{64})$/),
    channel: z.string().min(1).max(63),
  });
  // Promotion is a release decision: approvers and admins.
  app.post(
    "/artifacts/promote",
    { config: { access: "jobs:approve" }, schema: { body: promoteBody } },
    async (req) => promoteArtifact(ctx.controller.deps, req.body, principalOf(req)),
  );

  app.get(
    "/artifacts/:ref/attestations",
    { config: { access: "runs:read" }, schema: { params: refParams } },
    async (req) => attestationsOf(ctx.controller.deps, req.params.ref),
  );

  app.post(
    "/artifacts/verify",
    { config: { access: "runs:read" }, schema: { body: verifyBody } },
    async (req) => verifyStoredArtifact(ctx.controller.deps, req.body, principalOf(req).userName),
  );

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
        .header("content-disposition", `attachment; filename="${safeFileName(found.name)}.tar"`);
      // Blobs are checked against their digests as they stream; a corrupt one ends the response.
      return reply.send(packManifest(artifacts, found.manifest));
    },
  );
}

/**
 * An artifact's name comes from a workflow; in a header it must not end the quoted string, add a
 * header (CR/LF) or carry a path, so anything but a plain file-name character becomes `_`.
 */
export function safeFileName(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "_");
  return cleaned.slice(0, 200) || "artifact";
}
