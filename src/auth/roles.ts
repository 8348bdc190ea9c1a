/**
 * Roles are named sets of permissions rather than a bare ordering, so a route asks "may this role
 * do X?" and never "is this role at least Y?" — adding a permission to one role cannot silently
 * widen another. The sets still nest (viewer ⊂ submitter ⊂ approver ⊂ admin); a test says so.
 */
export const roles = ["admin", "approver", "submitter", "viewer"] as const;
export type Role = (typeof roles)[number];

export const permissions = [
  "runs:read",
  "runs:create",
  "runs:cancel",
  "jobs:approve",
  "repos:read",
  "repos:write",
  "audit:read",
  "audit:verify",
  "users:read",
  "users:write",
  "tokens:write-own",
  "secrets:write",
] as const;
export type Permission = (typeof permissions)[number];

// Every role may manage its own tokens: a viewer who cannot revoke a leaked token of their own is
// a worse outcome than a viewer who can write to their own token list.
const viewer: readonly Permission[] = [
  "runs:read",
  "repos:read",
  "audit:read",
  "audit:verify",
  "tokens:write-own",
];
// Cancel is "any run", not "own runs": a submitter stopping a runaway job should not need an admin.
const submitter: readonly Permission[] = [...viewer, "runs:create", "runs:cancel"];
const approver: readonly Permission[] = [...submitter, "jobs:approve"];
// users:* (and so other people's tokens), repos:write and secrets:write stay with admins only.
const admin: readonly Permission[] = permissions;

export const permissionTable: Readonly<Record<Role, ReadonlySet<Permission>>> = {
  admin: new Set(admin),
  approver: new Set(approver),
  submitter: new Set(submitter),
  viewer: new Set(viewer),
};

export function can(role: Role, permission: Permission): boolean {
  return permissionTable[role].has(permission);
}

export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (roles as readonly string[]).includes(value);
}
