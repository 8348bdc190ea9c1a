import type { FastifyRequest } from "fastify";
import { describe, expect, it } from "vitest";
import { AirlockError } from "../errors.js";
import { toProblem } from "./problem.js";

const token = `alk_${"Q".repeat(43)}`;
const req = (url: string) =>
  ({ url, id: "req-1", routeOptions: { config: {} } }) as unknown as FastifyRequest;

describe("toProblem", () => {
  it("hides what an unexpected error says: paths, SQL, tokens, stack", () => {
    const err = new Error(`ENOENT: open '/var/lib/airlock/secret.key' near "select hash" ${token}`);
    const { problem, internal } = toProblem(err, req("/api/v1/runs"));
    expect(internal).toBe(true);
    expect(problem).toMatchObject({
      status: 500,
      code: "INTERNAL",
      detail: "the server failed to handle this request",
    });
    const text = JSON.stringify(problem);
    for (const leak of ["/var/lib", "select", token, "ENOENT", "at "]) expect(text).not.toContain(leak);
  });

  it("replaces Fastify's client-error texts, which may quote the body or the URL", () => {
    const fe = Object.assign(new SyntaxError(`Unexpected token in JSON at position 3: {"token":"${token}"`), {
      statusCode: 400,
      code: "FST_ERR_CTP_INVALID_JSON_BODY",
    });
    const { problem } = toProblem(fe, req(`/api/v1/runs?access_token=${token}`));
    expect(problem).toMatchObject({ status: 400, code: "REQUEST_INVALID", instance: "/api/v1/runs" });
    expect(JSON.stringify(problem)).not.toContain(token);
    const url = Object.assign(new URIError(`'/api/v1/${token}' is not a valid url component`), {
      statusCode: 400,
      code: "FST_ERR_BAD_URL",
    });
    expect(JSON.stringify(toProblem(url, req(`/api/v1/${token}`)).problem)).not.toContain(token);
    const odd = Object.assign(new Error(`odd ${token}`), { statusCode: 418, code: "SOMETHING_ELSE" });
    expect(toProblem(odd, req("/x")).problem.detail).toBe("the request could not be read");
  });

  it("shows an AirlockError as written, with a scrubbed instance", () => {
    const { problem } = toProblem(
      new AirlockError("NOT_FOUND", "no run run_x", { hint: "list runs" }),
      req(`/api/v1/${token}`),
    );
    expect(problem).toMatchObject({
      status: 404,
      detail: "no run run_x",
      hint: "list runs",
      instance: "/api/v1/[redacted]",
    });
  });
});
