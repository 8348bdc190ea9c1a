import { Spec, Validation } from "@cyclonedx/cyclonedx-library";
import { z } from "zod";

export interface SbomValidation {
  valid: boolean;
  /** "schema": the CycloneDX 1.6 JSON schema (strict) through the library's validator, which
   * needs the optional ajv packages; "structure": Airlock's own check of the required fields
   * when they are not installed. */
  by: "schema" | "structure";
  errors: string[];
}

const component = z.object({
  type: z.string(),
  name: z.string().min(1),
  version: z.string().optional(),
  purl: z.string().startsWith("pkg:").optional(),
  "bom-ref": z.string().optional(),
  hashes: z.array(z.object({ alg: z.string(), content: z.string().regex(/^[0-9a-f]+$/) })).optional(),
});

const structure = z.object({
  bomFormat: z.literal("CycloneDX"),
  specVersion: z.string().regex(/^1\.[4-6]$/),
  serialNumber: z.string().regex(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
  version: z.number().int().min(1),
  metadata: z.object({ timestamp: z.string().datetime(), component: component.optional() }),
  components: z.array(component).optional(),
  dependencies: z.array(z.object({ ref: z.string(), dependsOn: z.array(z.string()).optional() })).optional(),
});

/** Checks a CycloneDX JSON document: against the official schema where possible. */
export async function validateSbom(json: string): Promise<SbomValidation> {
  try {
    const error = await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(json);
    return { valid: error === null, by: "schema", errors: error === null ? [] : [JSON.stringify(error)] };
  } catch (err) {
    if (!(err instanceof Validation.MissingOptionalDependencyError)) throw err;
  }
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch {
    return { valid: false, by: "structure", errors: ["not JSON"] };
  }
  const r = structure.safeParse(data);
  return {
    valid: r.success,
    by: "structure",
    errors: r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`),
  };
}
