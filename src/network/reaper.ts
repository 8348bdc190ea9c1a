/**
 * Startup cleanup: whatever carries Airlock's names was left by a controller that died, so it is
 * removed without asking. Run it only before this controller creates its first job network.
 */
import { writeFile } from "node:fs/promises";
import { withHostNetworkLock } from "./host-lock.js";
import { anyForwardGuard, forgetBase } from "./job-network.js";
import { assertTableNames, DEFAULT_NAMES } from "./names.js";
import { FORWARD_GUARD_COMMENT, type TableNames } from "./nft.js";
import { CommandError, IP, NFT, networkFailure, run } from "./run.js";

export interface NetworkReapReport {
  namespaces: string[];
  links: string[];
  tableRemoved: boolean;
  /** ip_forward switched back off because our guard said the host did not forward before us. */
  forwardingRestored: boolean;
}

export async function listNamespaces(names: TableNames = DEFAULT_NAMES): Promise<string[]> {
  const { stdout } = await run([IP, "netns", "list"]);
  const re = new RegExp(`^${names.prefix}-[a-z2-7]{8}$`);
  return stdout
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => re.test(n));
}

export async function listLinks(names: TableNames = DEFAULT_NAMES): Promise<string[]> {
  const { stdout } = await run([IP, "-j", "link", "show"]);
  const re = new RegExp(`^${names.prefix}[a-z2-7]{8}[hj]$`);
  const links = JSON.parse(stdout || "[]") as { ifname?: string }[];
  return links.map((l) => l.ifname ?? "").filter((n) => re.test(n));
}

export async function reapNetworks(names: TableNames = DEFAULT_NAMES): Promise<NetworkReapReport> {
  assertTableNames(names);
  const report: NetworkReapReport = {
    namespaces: [],
    links: [],
    tableRemoved: false,
    forwardingRestored: false,
  };
  try {
    for (const link of await listLinks(names)) {
      await run([IP, "link", "del", link]).catch(ignoreGone);
      report.links.push(link);
    }
    for (const ns of await listNamespaces(names)) {
      await run([IP, "netns", "del", ns]).catch(ignoreGone);
      report.namespaces.push(ns);
    }
    await withHostNetworkLock(async () => {
      const table = await run([NFT, "list", "table", "inet", names.table]).catch(() => undefined);
      if (!table) return;
      await run([NFT, "delete", "table", "inet", names.table]);
      report.tableRemoved = true;
      // Switch forwarding back off only as the last installation that relied on it: another one
      // still carrying the guard has jobs that may pass traffic through right now.
      if (table.stdout.includes(FORWARD_GUARD_COMMENT) && !(await anyForwardGuard())) {
        await writeFile("/proc/sys/net/ipv4/ip_forward", "0");
        report.forwardingRestored = true;
      }
    });
  } catch (e) {
    throw networkFailure("cannot reap leftover job networks", e);
  } finally {
    forgetBase(names.table);
  }
  return report;
}

function ignoreGone(e: unknown): void {
  if (e instanceof CommandError && /Cannot find device|No such file/i.test(e.stderr)) return;
  throw e;
}
