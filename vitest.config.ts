import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    globalSetup: ["test/global-tmpdir.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Sandbox tests create real cgroups and namespaces; two cores are shared by every worker.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2 } },
  },
});
