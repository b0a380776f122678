/**
 * The catalogue of every stable error code. Codes are public API: add, never rename.
 * `title` is the short, occurrence-independent summary (RFC 9457 `title`); `detail` is the
 * default message, a template whose `{name}` placeholders are filled from the error's params.
 * Both are English source strings that the i18n capability translates by code.
 */
export type ErrorCategory =
  | 'authentication'
  | 'authorization'
  | 'validation'
  | 'rate_limit'
  | 'security'
  | 'not_found'
  | 'conflict'
  | 'dependency'
  | 'internal'

export interface ErrorCodeSpec {
  readonly status: number
  readonly category: ErrorCategory
  readonly title: string
  /** What the client reads. For 5xx codes it has no placeholders: 5xx bodies carry no specifics. */
  readonly detail: string
  /** The server-side message (logs, `error.message`) when it should say more than `detail`. */
  readonly log?: string
  /** A registered problem type URI to use instead of Backbeat's own (`problemTypeBaseUri` + slug). */
  readonly type?: string
}

function spec(status: number, category: ErrorCategory, title: string, detail: string, log?: string): ErrorCodeSpec {
  return log === undefined ? { status, category, title, detail } : { status, category, title, detail, log }
}

/** Problem types registered by draft-ietf-httpapi-ratelimit-headers-10 (IANA HTTP Problem Types). */
const IANA_PROBLEM_TYPES = 'https://iana.org/assignments/http-problem-types#'

export const ERROR_CODES = {
  // ── HTTP protocol and request shape ────────────────────────────────────────────
  ERR_HTTP_BAD_REQUEST: spec(400, 'validation', 'Bad request', 'The request could not be understood.'),
  ERR_HTTP_ROUTE_NOT_FOUND: spec(404, 'not_found', 'Not found', 'No route matches {method} {path}.'),
  ERR_HTTP_METHOD_NOT_ALLOWED: spec(405, 'validation', 'Method not allowed', '{method} is not allowed on {path}; allowed: {allow}.'),
  ERR_HTTP_METHOD_NOT_IMPLEMENTED: spec(501, 'validation', 'Method not implemented', 'The request method is not one this server implements.'),
  ERR_HTTP_BODY_MALFORMED: spec(400, 'validation', 'Malformed body', 'The request body is not valid {format}, or uses a forbidden key such as __proto__.'),
  ERR_HTTP_BODY_EMPTY: spec(400, 'validation', 'Empty body', 'The request declares a JSON body but sent none.'),
  ERR_HTTP_BODY_TOO_LARGE: spec(413, 'validation', 'Body too large', 'The request body exceeds the limit of {limit} bytes.'),
  ERR_HTTP_MEDIA_TYPE_UNSUPPORTED: spec(415, 'validation', 'Unsupported media type', 'Content-Type {contentType} is not supported on this route.'),
  ERR_HTTP_CONTENT_ENCODING_UNSUPPORTED: spec(415, 'validation', 'Unsupported content coding', 'Content-Encoding {encoding} is not supported; send the body uncompressed.'),
  ERR_HTTP_CONTENT_LENGTH_INVALID: spec(400, 'validation', 'Invalid Content-Length', 'The Content-Length header does not match the body.'),
  ERR_HTTP_HEADER_INVALID: spec(400, 'validation', 'Invalid header', 'A request header is malformed.'),
  ERR_HTTP_REQUEST_ID_INVALID: spec(400, 'validation', 'Invalid request ID', 'X-Request-ID must be 1 to {maxLength} characters of A-Z, a-z, 0-9 and - _ . : / + = @.'),
  ERR_HTTP_HOST_REQUIRED: spec(400, 'validation', 'Host header required', 'HTTP/1.1 requests must carry exactly one Host header.'),
  ERR_HTTP_HEADER_TOO_LARGE: spec(431, 'validation', 'Request headers too large', 'The request headers exceed the server limit.'),
  ERR_HTTP_TIMEOUT: spec(408, 'validation', 'Request timeout', 'The request was not received in time.'),
  ERR_HTTP_SHUTTING_DOWN: spec(503, 'dependency', 'Service unavailable', 'The server is shutting down; retry on another instance.'),

  // ── Validation ────────────────────────────────────────────────────────────────
  ERR_VALIDATION_FAILED: spec(400, 'validation', 'Validation failed', 'The request has {count} invalid field(s).'),
  ERR_VALIDATION_ID_INVALID: spec(400, 'validation', 'Invalid ID', '{value} is not a valid {kind} ID: expected 22 base62 characters.'),
  ERR_VALIDATION_URI_INVALID: spec(400, 'validation', 'Invalid URI', '{value} is not a valid {kind} URI: expected spotify:{kind}:<22 base62 characters>.'),

  // ── Resources ─────────────────────────────────────────────────────────────────
  ERR_RESOURCE_NOT_FOUND: spec(404, 'not_found', 'Resource not found', '{resource} {id} was not found.'),
  ERR_RESOURCE_CONFLICT: spec(409, 'conflict', 'Conflict', '{reason}'),
  ERR_RESOURCE_PRECONDITION_FAILED: spec(412, 'conflict', 'Precondition failed', '{reason}'),

  // ── Edge protection ───────────────────────────────────────────────────────────
  ERR_RATE_LIMITED: { ...spec(429, 'rate_limit', 'Quota Exceeded', 'Too many requests; retry after {retryAfterS} s.'), type: `${IANA_PROBLEM_TYPES}quota-exceeded` },
  ERR_RATE_LIMIT_UNAVAILABLE: { ...spec(503, 'dependency', 'Temporary Reduced Capacity', 'Requests are being refused while the rate-limit store is unreachable; retry later.'), type: `${IANA_PROBLEM_TYPES}temporary-reduced-capacity` },
  ERR_EDGE_TOO_MANY_CONCURRENT: spec(429, 'rate_limit', 'Too many concurrent requests', 'This client already has {limit} requests in progress; retry when one completes.'),
  ERR_EDGE_IP_DENIED: spec(403, 'security', 'Forbidden', 'Requests from this address are not allowed.'),
  ERR_EDGE_COUNTRY_DENIED: spec(403, 'security', 'Forbidden', 'Requests from this location are not allowed.'),
  ERR_EDGE_URI_TOO_LONG: spec(414, 'validation', 'URI too long', 'The request target exceeds the limit of {limit} bytes.'),
  ERR_EDGE_TOO_MANY_HEADERS: spec(431, 'validation', 'Too many request headers', 'The request has more than {limit} header fields.'),
  ERR_EDGE_JSON_TOO_DEEP: spec(400, 'validation', 'JSON nested too deeply', 'The JSON body nests deeper than {limit} levels.'),
  ERR_EDGE_JSON_TOO_MANY_KEYS: spec(400, 'validation', 'Too many JSON members', 'The JSON body has more than {limit} object members in total.'),
  ERR_CORS_ORIGIN_DENIED: spec(403, 'security', 'Origin not allowed', 'Cross-origin requests from this origin are not allowed.'),
  ERR_CSP_REPORT_INVALID: spec(400, 'validation', 'Invalid CSP report', 'The body is not a CSP violation report.'),

  // ── Authentication ────────────────────────────────────────────────────────────
  ERR_AUTH_TOKEN_MISSING: spec(401, 'authentication', 'Authentication required', 'This request needs a bearer token.'),
  ERR_AUTH_TOKEN_MALFORMED: spec(401, 'authentication', 'Invalid token', 'The bearer token is not a well-formed JWT.'),
  ERR_AUTH_TOKEN_INVALID: spec(401, 'authentication', 'Invalid token', 'The bearer token could not be verified.', 'Token rejected: {reason}'),
  ERR_AUTH_TOKEN_EXPIRED: spec(401, 'authentication', 'Token expired', 'The bearer token has expired.'),
  ERR_AUTH_TOKEN_NOT_YET_VALID: spec(401, 'authentication', 'Token not yet valid', 'The bearer token is not valid yet.'),
  ERR_AUTH_TOKEN_CLAIM_INVALID: spec(401, 'authentication', 'Invalid token', 'The bearer token was not issued for this service.', 'Token claim {claim} rejected: {reason}'),
  ERR_AUTH_KEY_UNKNOWN: spec(401, 'authentication', 'Invalid token', 'The bearer token was signed with a key this service does not know.'),
  ERR_AUTH_INSUFFICIENT_SCOPE: spec(403, 'authorization', 'Insufficient scope', 'The bearer token lacks the scope this request needs: {scope}.'),
  ERR_AUTH_TOKEN_REVOKED: spec(401, 'authentication', 'Token revoked', 'The bearer token has been revoked; sign in again.'),
  ERR_AUTH_REVOCATION_UNAVAILABLE: spec(503, 'dependency', 'Service unavailable', 'Credentials cannot be checked right now; retry shortly.', 'The revocation store is unreachable, so credentials are refused (fail closed): {reason}'),
  ERR_AUTH_CREDENTIALS_INVALID: spec(401, 'authentication', 'Invalid credentials', 'The username or password is incorrect.'),
  ERR_AUTH_LOCKED_OUT: spec(429, 'rate_limit', 'Too many failed attempts', 'Too many failed sign-in attempts; retry after {retryAfterS} s.'),
  ERR_AUTH_REFRESH_TOKEN_INVALID: spec(401, 'authentication', 'Invalid refresh token', 'The refresh token is invalid, expired or revoked; sign in again.'),
  ERR_AUTH_REFRESH_TOKEN_REUSED: spec(401, 'authentication', 'Refresh token reused', 'This refresh token was already used; every session descended from it has been signed out.'),
  ERR_AUTH_API_KEY_MALFORMED: spec(401, 'authentication', 'Invalid API key', 'The API key is not well formed or its checksum does not match.'),
  ERR_AUTH_API_KEY_INVALID: spec(401, 'authentication', 'Invalid API key', 'The API key is unknown, revoked or expired.'),
  ERR_AUTH_SESSION_INVALID: spec(401, 'authentication', 'Session invalid', 'The session is missing, expired or signed out; sign in again.'),
  ERR_AUTH_CSRF_INVALID: spec(403, 'security', 'CSRF check failed', 'This state-changing request lacks a valid CSRF token.'),
  ERR_AUTH_MFA_REQUIRED: spec(401, 'authentication', 'MFA required', 'This request needs a multi-factor authentication within the last {maxAgeS} s.'),
  ERR_AUTH_MFA_ENROLLMENT_REQUIRED: spec(403, 'authorization', 'MFA enrolment required', 'Your role requires multi-factor authentication; enrol an authenticator first.'),
  ERR_AUTH_MFA_CODE_REQUIRED: spec(401, 'authentication', 'One-time code required', 'This account uses multi-factor authentication: send the one-time code from the authenticator app (or a recovery code) as otp.'),
  ERR_AUTH_MFA_CODE_INVALID: spec(401, 'authentication', 'Invalid code', 'The one-time code is incorrect, expired or already used.'),
  ERR_AUTH_MFA_NOT_ENROLLED: spec(409, 'conflict', 'MFA not enrolled', 'No authenticator is enrolled for this account.'),
  ERR_AUTH_MFA_ALREADY_ENROLLED: spec(409, 'conflict', 'MFA already enrolled', 'An authenticator is already enrolled for this account; remove it first.'),
  ERR_AUTH_PERMISSION_DENIED: spec(403, 'authorization', 'Forbidden', 'This request needs the permission {permission}.'),
  ERR_AUTH_ROLE_REQUIRED: spec(403, 'authorization', 'Forbidden', 'This request needs the role {role}.'),
  ERR_AUTH_NOT_OWNER: spec(403, 'authorization', 'Forbidden', 'Only the owner of this {resource} may change it.'),
  ERR_AUTH_OAUTH_STATE_INVALID: spec(400, 'validation', 'Invalid sign-in response', 'The sign-in response is invalid or has expired; start the sign-in again.', 'OAuth callback rejected: {reason}'),
  ERR_AUTH_OAUTH_DENIED: spec(403, 'authorization', 'Sign-in denied', 'The sign-in at {provider} was cancelled or denied.'),
  ERR_AUTH_OAUTH_PROVIDER_FAILED: spec(502, 'dependency', 'Bad gateway', 'The identity provider did not complete the sign-in.', 'The identity provider failed: {reason}'),
  ERR_AUTH_PROVIDER_RELINK_REQUIRED: spec(401, 'authentication', 'Sign in again', 'Access to your {provider} account has expired or was revoked; sign in with {provider} again.'),
  ERR_AUTH_VAULT_KEY_UNKNOWN: spec(500, 'internal', 'Internal server error', 'An unexpected error occurred; quote the request ID when reporting it.', 'A vault entry is encrypted with key version {version}, which is not configured'),

  // ── Dependencies ──────────────────────────────────────────────────────────────
  ERR_DEPENDENCY_UNAVAILABLE: spec(503, 'dependency', 'Dependency unavailable', 'A service this request needs is unavailable.'),
  ERR_DEPENDENCY_TIMEOUT: spec(504, 'dependency', 'Dependency timeout', 'A service this request needs did not answer in time.'),

  // ── Stores ────────────────────────────────────────────────────────────────────
  ERR_STORE_COMMAND_FAILED: spec(500, 'internal', 'Store command failed', 'A data store rejected a command.', 'A {store} command was rejected: {reason}'),
  ERR_STORE_VALUE_REJECTED: spec(400, 'validation', 'Value rejected', 'A value in the request cannot be stored: {reason}.'),

  // ── Cache ─────────────────────────────────────────────────────────────────────
  ERR_CACHE_NOT_CACHED: spec(504, 'dependency', 'Not cached', 'The request allows only a cached response (only-if-cached), and none can be used.'),
  ERR_CACHE_PURGE_INVALID: spec(400, 'validation', 'Invalid purge', 'A purge needs 1 to {max} tags of A-Z, a-z, 0-9, :, _, . and - (1-128 characters each).'),

  // ── Configuration (start-up only) ─────────────────────────────────────────────
  ERR_CONFIG_INVALID: spec(500, 'internal', 'Invalid configuration', 'The server configuration is invalid.', 'The configuration is invalid: {issues}'),

  // ── Internal ──────────────────────────────────────────────────────────────────
  ERR_INTERNAL: spec(500, 'internal', 'Internal server error', 'An unexpected error occurred; quote the request ID when reporting it.'),
} as const satisfies Record<string, ErrorCodeSpec>

export type ErrorCode = keyof typeof ERROR_CODES

/** True when `code` is one of the catalogue's codes. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code)
}
