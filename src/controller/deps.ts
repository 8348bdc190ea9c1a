import type { Logger } from "pino";
import type { ArtifactStore } from "../artifacts/store.js";
import type { Principal } from "../auth/principal.js";
import type { Clock } from "../clock.js";
import type { Config } from "../config/config.js";
import type { KeyEncryptionKey } from "../identity/index.js";
import type { EgressService } from "../network/index.js";
import type { PolicyEngine } from "../policy/index.js";
import type { SandboxDriver } from "../sandbox/index.js";
import type { Db } from "../store/database.js";
import type { ControllerIdentity } from "./job-identity.js";

export type { Principal };

/** Everything the controller works with, passed in so tests and the server wire their own. */
export interface ControllerDeps {
  db: Db;
  clock: Clock;
  config: Config;
  policy: PolicyEngine;
  driver: SandboxDriver;
  artifacts: ArtifactStore;
  logger: Logger;
  /** Null when this host cannot build job networks; jobs that need one then fail, saying why. */
  egress: EgressService | null;
  /** Why `egress` is null. */
  egressUnavailable?: string;
  /** The master key: seals secrets and signing keys at rest. */
  kek: KeyEncryptionKey;
  /** Signing keys and issuer for job ID tokens; present whenever the controller schedules. */
  identity: ControllerIdentity | null;
}
