import { Command } from "commander";
import { registerIdentity, registerRepo, registerUsers } from "./commands/admin.js";
import { registerApprovals } from "./commands/approvals.js";
import { registerArtifacts, registerGate, registerVerify } from "./commands/artifacts.js";
import { registerAudit } from "./commands/audit.js";
import { registerEgress } from "./commands/egress.js";
import { registerRun } from "./commands/run.js";
import { registerCancel, registerJob, registerLogs, registerRuns } from "./commands/runs.js";
import { registerSecrets } from "./commands/secrets.js";
import { registerServer } from "./commands/server.js";
import { reportError } from "./output.js";

const program = new Command()
  .name("airlock")
  .description("Run CI jobs in fresh, bounded sandboxes, and prove what they did.")
  .version("0.1.0")
  .option("--server <url>", "talk to an Airlock server instead of the embedded store (env AIRLOCK_SERVER)")
  .option("--token <token>", "API token for --server (prefer env AIRLOCK_TOKEN)")
  .option("--data-dir <dir>", "embedded data directory (env AIRLOCK_DATA_DIR)")
  .option("--config <file>", "config file (env AIRLOCK_CONFIG)")
  .showHelpAfterError();

registerRun(program);
registerRuns(program);
registerJob(program);
registerLogs(program);
registerCancel(program);
registerAudit(program);
registerApprovals(program);
registerArtifacts(program);
registerVerify(program);
registerGate(program);
registerEgress(program);
registerRepo(program);
registerIdentity(program);
registerUsers(program);
registerSecrets(program);
registerServer(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = reportError(err);
}
