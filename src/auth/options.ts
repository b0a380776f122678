import { z } from 'zod'

const lockoutRule = (freeAttempts: number) =>
  z
    .strictObject({
      freeAttempts: z.number().int().min(1).max(1_000).default(freeAttempts).describe('Attempts allowed before the first lock (per account counted before the password check; a success resets the count; per address only failures count).'),
      baseLockMs: z.number().int().min(1).default(1_000).describe('Length of the first lock; each further failure doubles it.'),
      maxLockMs: z.number().int().min(1).default(15 * 60_000).describe('Longest lock.'),
      windowMs: z.number().int().min(1_000).default(60 * 60_000).describe('Failures are counted over this window.'),
    })
    .prefault({})

const ROLE = /^[a-z][a-z0-9_-]{0,63}$/
const PERMISSION = /^(\*|[a-z][a-z0-9_-]{0,63}:(\*|[a-z][a-z0-9_-]{0,63}))$/

const roleSchema = z.strictObject({
  permissions: z.array(z.string().regex(PERMISSION, 'must be resource:action, resource:* or *')).default([]),
  inherits: z.array(z.string().regex(ROLE, 'must be a lower-case role name')).default([]),
})

/** The default roles of a music API: listeners edit their own playlists, curators the catalogue, admins everything. */
export const DEFAULT_ROLES = {
  listener: { permissions: ['catalog:read', 'playlist:read', 'playlist:write', 'profile:read', 'profile:write'], inherits: [] },
  curator: { permissions: ['catalog:write'], inherits: ['listener'] },
  admin: { permissions: ['*'], inherits: ['curator'] },
}

/** The `auth` section of the Backbeat configuration. */
export const authOptionsSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Verify credentials (bearer JWTs, API keys, sessions) on every route.'),
  realm: z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e ]{1,64}$/, 'must be 1-64 printable characters without quotes or backslashes').default('api').describe('`realm` of WWW-Authenticate challenges.'),
  jwt: z
    .strictObject({
      secretKey: z.string().min(32, 'must be at least 32 characters (256 bits) for HMAC').optional().describe('Shared secret for HS* algorithms (secret: masked in output). Without it (and without privateKey) the development preset uses a random per-process secret and production refuses to start.'),
      privateKey: z.string().includes('PRIVATE KEY', { message: 'must be a PKCS#8 PEM private key' }).optional().describe('PKCS#8 PEM private key for RS256/PS256/ES256/EdDSA (secret: masked in output); its public half is served at /.well-known/jwks.json.'),
      algorithm: z.enum(['HS256', 'HS384', 'HS512', 'RS256', 'PS256', 'ES256', 'EdDSA']).default('HS256').describe('Signing algorithm, pinned per key (never read from a token).'),
      keyId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ -').default('k1').describe('`kid` of the signing key; rotate by giving the new key another id.'),
      issuer: z.string().min(1).default('backbeat').describe('`iss` of issued tokens, required on verified ones.'),
      audience: z.string().min(1).default('backbeat-api').describe('`aud` of issued tokens, required on verified ones.'),
      accessTokenExpireMinutes: z.number().int().min(1).max(24 * 60).default(15).describe('Access token lifetime in minutes.'),
      refreshTokenExpireDays: z.number().int().min(1).max(365).default(30).describe('Lifetime of one refresh token; each use hands out a new one.'),
      refreshFamilyExpireDays: z.number().int().min(1).max(3650).default(90).describe('A sign-in ends after this many days however often its refresh token is rotated.'),
      clockSkewS: z.number().int().min(0).max(300).default(30).describe('Tolerance for exp/nbf/iat, in seconds.'),
      cacheSize: z.number().int().min(0).max(1_000_000).default(10_000).describe('Verified tokens held in memory until they expire (0 = off).'),
      jwksUrl: z.url({ protocol: /^https?$/ }).optional().describe('Also accept tokens signed by keys published at this JWKS URL (https, or http on loopback).'),
      jwksAlgorithms: z.array(z.enum(['RS256', 'PS256', 'ES256', 'EdDSA'])).default(['RS256', 'PS256', 'ES256', 'EdDSA']).describe('Algorithms accepted from the remote JWKS.'),
      jwksCooldownMs: z.number().int().min(0).default(30_000).describe('At most one JWKS refetch for unknown kids per this interval.'),
      jwksTimeoutMs: z.number().int().min(100).default(5_000).describe('JWKS fetch timeout.'),
    })
    .prefault({}),
  revocation: z
    .strictObject({
      cacheMs: z.number().int().min(0).max(60_000).default(1_000).describe('How long an instance trusts a deny-list answer; a token revoked through another instance may pass here for this long.'),
      timeoutMs: z.number().int().min(1).default(250).describe('A deny-list lookup slower than this refuses the request with 503 (fail closed).'),
    })
    .prefault({}),
  passwords: z
    .strictObject({
      scryptLogN: z.number().int().min(10).max(22).default(17).describe('scrypt cost: N = 2^scryptLogN (OWASP minimum 17). Hashes with other parameters are upgraded at the next sign-in.'),
      scryptR: z.number().int().min(1).max(32).default(8).describe('scrypt block size.'),
      scryptP: z.number().int().min(1).max(16).default(1).describe('scrypt parallelisation.'),
      minLength: z.number().int().min(8).max(128).default(8).describe('Shortest password accepted when one is set.'),
    })
    .prefault({}),
  lockout: z
    .strictObject({
      account: lockoutRule(5).describe('Per account (accounts that do not exist are counted alike).'),
      ip: lockoutRule(20).describe('Per client address.'),
    })
    .prefault({}),
  mfa: z
    .strictObject({
      issuer: z.string().min(1).max(64).regex(/^[^:]+$/, 'must not contain a colon').default('Backbeat').describe('Issuer shown by authenticator apps.'),
      enforcedRoles: z.array(z.string().regex(ROLE, 'must be a lower-case role name')).default([]).describe('Accounts holding one of these roles (or a role above it) must use MFA.'),
      stepUpMaxAgeS: z.number().int().min(10).max(86_400).default(300).describe('Default freshness required by step-up routes.'),
    })
    .prefault({}),
  roles: z.record(z.string().regex(ROLE, 'must be a lower-case role name'), roleSchema).default(DEFAULT_ROLES).describe('RBAC roles: permissions and inherited roles.'),
  apiKeys: z
    .strictObject({
      prefix: z.string().regex(/^[a-z]{2,8}_[a-z]{2,8}_$/, 'must look like bb_live_').default('bb_live_').describe('Prefix of issued keys; use another (bb_test_) per environment so keys cannot cross.'),
      pepper: z.string().min(32).optional().describe('Server-side secret mixed into key hashes (secret: masked in output).'),
      header: z.string().regex(/^[a-z0-9-]{1,64}$/, 'must be a lower-case header name').default('x-api-key').describe('Header carrying the key (a bearer token with the prefix also works).'),
    })
    .prefault({}),
  sessions: z
    .strictObject({
      cookieSecure: z.boolean().default(true).describe('Secure cookie (and the __Host- name); false only for local http.'),
      sameSite: z.enum(['strict', 'lax']).default('strict').describe('SameSite of the session cookie.'),
      idleTimeoutMinutes: z.number().int().min(1).max(24 * 60).default(30).describe('A session unused this long ends.'),
      absoluteTimeoutHours: z.number().int().min(1).max(24 * 30).default(12).describe('A session ends this long after sign-in however active.'),
      csrfSecret: z.string().min(32).optional().describe('Key of CSRF tokens (secret: masked in output); random per process when unset.'),
    })
    .prefault({}),
  spotify: z
    .strictObject({
      clientId: z.string().min(1).optional().describe('Spotify app client ID; Spotify sign-in is on when set.'),
      clientSecret: z.string().min(1).optional().describe('Spotify app client secret (secret: masked in output).'),
      redirectUri: z.url().default('http://127.0.0.1:8080/v1/auth/spotify/callback').describe('Registered redirect URI; loopback must be 127.0.0.1 or [::1], never localhost (Spotify rule).'),
      scopes: z.array(z.string().regex(/^[a-z-]+$/)).default(['user-read-email', 'user-read-private']).describe('Scopes requested at sign-in.'),
    })
    .prefault({}),
  vault: z
    .strictObject({
      keys: z.record(z.string().regex(/^\d{1,4}$/, 'key versions are integers'), z.string().min(43)).default({}).describe('Token-vault keys by version, each 32 bytes base64 (secret: masked in output).'),
      currentKey: z.number().int().min(1).optional().describe('Version sealing new entries (default the highest).'),
    })
    .prefault({}),
})

export type AuthOptions = z.infer<typeof authOptionsSchema>
