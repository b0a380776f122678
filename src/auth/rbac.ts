import { ConfigError, type ConfigIssue } from '../core/index.ts'

/** One role: its own permissions and the roles whose permissions it inherits. */
export interface RoleDefinition {
  readonly permissions?: readonly string[]
  readonly inherits?: readonly string[]
}

/**
 * `resource:action` (`playlist:write`), `resource:*` for every action on a resource, or `*`
 * for everything.
 */
const PERMISSION = /^(\*|[a-z][a-z0-9_-]{0,63}:(\*|[a-z][a-z0-9_-]{0,63}))$/
const ROLE = /^[a-z][a-z0-9_-]{0,63}$/

/**
 * Role-based access control: roles map to permissions, roles inherit from other roles (a
 * hierarchy, checked for cycles and unknown names at construction), and each role's full
 * permission set is computed once, so a check is one or two set lookups.
 *
 * @example
 * const rbac = new Rbac({
 *   listener: { permissions: ['playlist:read', 'playlist:write'] },
 *   curator: { inherits: ['listener'], permissions: ['catalog:write'] },
 *   admin: { inherits: ['curator'], permissions: ['*'] },
 * })
 * rbac.can(['curator'], 'playlist:write') // true
 */
export class Rbac {
  readonly #expanded = new Map<string, ReadonlySet<string>>()
  readonly #ancestors = new Map<string, ReadonlySet<string>>()

  constructor(roles: Readonly<Record<string, RoleDefinition>>) {
    const issues: ConfigIssue[] = []
    for (const [name, role] of Object.entries(roles)) {
      if (!ROLE.test(name)) issues.push({ path: `roles.${name}`, message: 'role names are lower-case letters, digits, - and _' })
      for (const p of role.permissions ?? []) if (!PERMISSION.test(p)) issues.push({ path: `roles.${name}.permissions`, message: `"${p}" is not resource:action, resource:* or *` })
      for (const parent of role.inherits ?? []) if (!Object.hasOwn(roles, parent)) issues.push({ path: `roles.${name}.inherits`, message: `unknown role "${parent}"` })
    }
    if (issues.length > 0) throw new ConfigError(issues)
    const expand = (name: string, path: readonly string[]): { permissions: Set<string>; roles: Set<string> } => {
      if (path.includes(name)) throw new ConfigError([{ path: `roles.${name}.inherits`, message: `inheritance cycle: ${[...path, name].join(' -> ')}` }])
      const role = roles[name] ?? {}
      const permissions = new Set(role.permissions ?? [])
      const held = new Set([name])
      for (const parent of role.inherits ?? []) {
        const inherited = expand(parent, [...path, name])
        for (const p of inherited.permissions) permissions.add(p)
        for (const r of inherited.roles) held.add(r)
      }
      return { permissions, roles: held }
    }
    for (const name of Object.keys(roles)) {
      const { permissions, roles: held } = expand(name, [])
      this.#expanded.set(name, permissions)
      this.#ancestors.set(name, held)
    }
  }

  /** Whether a holder of `roles` may do `permission`; unknown roles grant nothing. */
  can(roles: Iterable<string>, permission: string): boolean {
    const colon = permission.indexOf(':')
    const wildcard = colon > 0 ? `${permission.slice(0, colon)}:*` : undefined
    for (const role of roles) {
      const set = this.#expanded.get(role)
      if (set === undefined) continue
      if (set.has(permission) || set.has('*') || (wildcard !== undefined && set.has(wildcard))) return true
    }
    return false
  }

  /** Whether `roles` include `role` directly or through the hierarchy (an admin is a curator). */
  hasRole(roles: Iterable<string>, role: string): boolean {
    for (const held of roles) if (this.#ancestors.get(held)?.has(role) === true) return true
    return false
  }

  /** Every permission `roles` grant, wildcards as written. */
  permissionsOf(roles: Iterable<string>): Set<string> {
    const all = new Set<string>()
    for (const role of roles) for (const p of this.#expanded.get(role) ?? []) all.add(p)
    return all
  }

  /** The role names defined. */
  get roles(): string[] {
    return [...this.#expanded.keys()]
  }
}
