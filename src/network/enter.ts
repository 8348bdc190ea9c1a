/**
 * How a sandbox joins its job's network namespace. The wrapper (still root, before setpriv drops
 * to the job uid) execs nsenter, which setns()es into the namespace and execs the rest of the
 * command; bwrap then runs WITHOUT --unshare-net so it keeps this namespace. The namespace belongs
 * to the host's user namespace, so the job (in bwrap's own user namespace, all caps dropped) can
 * neither reconfigure it nor open raw sockets in it.
 */
import { NSENTER } from "./run.js";

export function netnsEnterArgv(nsPath: string): string[] {
  if (!/^\/run\/netns\/[a-z][a-z0-9-]{1,30}$/.test(nsPath))
    throw new TypeError(`not a netns path: ${nsPath}`);
  return [NSENTER, `--net=${nsPath}`, "--"];
}

/** /etc/resolv.conf for the sandbox: Airlock's resolver at the host end of the job's veth. */
export function resolvConf(hostAddr: string): string {
  return `nameserver ${hostAddr}\noptions timeout:2 attempts:2\n`;
}
