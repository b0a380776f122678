/**
 * Identity. So far: JWT verification with keys pinned to one algorithm each, found by `kid`,
 * a verified-token cache, and the bearer-token Fastify plugin with per-route requirements and
 * scopes. Refresh tokens, OAuth2 with PKCE, API keys, sessions, TOTP and RBAC follow.
 */
export { JwtKeySet, JWS_ALGORITHMS, MAX_KID_LENGTH } from './jwt-keys.ts'
export type { JwsAlgorithm, JwtKey } from './jwt-keys.ts'
export { JwtVerifier } from './jwt-verifier.ts'
export type { JwtVerifierOptions, VerifiedToken } from './jwt-verifier.ts'
export { authPlugin } from './plugin.ts'
export type { AuthIdentity, AuthPluginOptions, RouteAuth } from './plugin.ts'
