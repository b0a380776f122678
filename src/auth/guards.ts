import type { FastifyReply, FastifyRequest } from 'fastify'
import { BackbeatError } from '../core/index.ts'
import { holds, type AuthIdentity } from './plugin.ts'
import type { Rbac } from './rbac.ts'

/** A Fastify `preHandler` that refuses the request by throwing. */
export type Guard = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

const missing = (realm = 'api'): BackbeatError => new BackbeatError('ERR_AUTH_TOKEN_MISSING', { headers: { 'www-authenticate': `Bearer realm="${realm}"` } })

/** The request's identity, or a 401 when it has none. */
export function identityOf(request: FastifyRequest): AuthIdentity {
  if (request.auth === null) throw missing()
  return request.auth
}

/**
 * A preHandler guard: 401 without credentials, 403 `ERR_AUTH_PERMISSION_DENIED` without every
 * permission. Route `config.auth.permissions` does the same declaratively; guards suit
 * conditions computed per request and plugins that add routes.
 *
 * @example app.put('/v1/catalog/tracks/:id', { preHandler: requirePermission(rbac, 'catalog:write') }, handler)
 */
export function requirePermission(rbac: Rbac, ...permissions: string[]): Guard {
  return (request) => {
    const identity = identityOf(request)
    for (const permission of permissions) if (!holds(rbac, identity, permission)) return Promise.reject(new BackbeatError('ERR_AUTH_PERMISSION_DENIED', { params: { permission } }))
    return Promise.resolve()
  }
}

/**
 * A preHandler guard: 403 `ERR_AUTH_ROLE_REQUIRED` unless the caller holds one of `roles`,
 * directly or through the hierarchy.
 *
 * @example app.get('/v1/admin/users', { preHandler: requireRole(rbac, 'admin') }, handler)
 */
export function requireRole(rbac: Rbac, ...roles: string[]): Guard {
  return (request) => {
    const identity = identityOf(request)
    if (!roles.some((role) => rbac.hasRole(identity.roles, role))) return Promise.reject(new BackbeatError('ERR_AUTH_ROLE_REQUIRED', { params: { role: roles.join(' or ') } }))
    return Promise.resolve()
  }
}

/**
 * A preHandler guard: 403 `ERR_AUTH_INSUFFICIENT_SCOPE` with an RFC 6750 challenge unless the
 * credentials carry every scope.
 *
 * @example app.get('/v1/me/player', { preHandler: requireScope('user-read-playback-state') }, handler)
 */
export function requireScope(...scopes: string[]): Guard {
  return (request) => {
    const identity = identityOf(request)
    const lacking = scopes.filter((s) => !identity.scopes.has(s))
    if (lacking.length > 0) {
      return Promise.reject(
        new BackbeatError('ERR_AUTH_INSUFFICIENT_SCOPE', { params: { scope: lacking.join(' ') }, headers: { 'www-authenticate': `Bearer error="insufficient_scope", scope="${scopes.join(' ')}"` } }),
      )
    }
    return Promise.resolve()
  }
}

/**
 * Ownership: passes when the caller owns the resource, or holds `overridePermission` (an admin
 * moderating); otherwise 403 `ERR_AUTH_NOT_OWNER`. Call it in the handler once the owner is known.
 *
 * @example
 * const playlist = await repository.playlist(id)
 * assertOwner(request, playlist.owner.id, { resource: 'playlist', rbac, overridePermission: 'playlist:admin' })
 */
export function assertOwner(request: FastifyRequest, ownerId: string, options: { resource: string; rbac?: Rbac; overridePermission?: string }): AuthIdentity {
  const identity = identityOf(request)
  if (identity.subject === ownerId) return identity
  if (options.rbac !== undefined && options.overridePermission !== undefined && holds(options.rbac, identity, options.overridePermission)) return identity
  throw new BackbeatError('ERR_AUTH_NOT_OWNER', { params: { resource: options.resource } })
}
