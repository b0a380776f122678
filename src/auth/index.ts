/**
 * Identity. So far: JWT verification with keys pinned to one algorithm each, found by `kid`,
 * and a verified-token cache. The Fastify plugin, refresh tokens, OAuth2 with PKCE, API keys,
 * sessions, TOTP and RBAC follow.
 */
export { JwtKeySet, JWS_ALGORITHMS, MAX_KID_LENGTH } from './jwt-keys.ts'
export type { JwsAlgorithm, JwtKey } from './jwt-keys.ts'
export { JwtVerifier } from './jwt-verifier.ts'
export type { JwtVerifierOptions, VerifiedToken } from './jwt-verifier.ts'
