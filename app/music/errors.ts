import { BackbeatError } from 'backbeat'

/** 404 for an ID that is well-formed but unknown. */
export function notFound(resource: string, id: string): BackbeatError {
  return new BackbeatError('ERR_RESOURCE_NOT_FOUND', { params: { resource, id } })
}

/**
 * 400 for a field that passed the schema but not the rules that need data (a position past
 * the end of a playlist), in the same shape as schema errors so clients handle one format.
 *
 * @example throw invalidField('body', '/position', 'must be at most 12 (the playlist length)')
 */
export function invalidField(part: 'body' | 'querystring' | 'params', pointer: string, detail: string): BackbeatError {
  return new BackbeatError('ERR_VALIDATION_FAILED', { params: { count: 1 }, extensions: { errors: [{ in: part, pointer, detail }] } })
}

/** True when a store error is the given SQLSTATE (e.g. `23505`, unique violation). */
export function hasSqlState(err: unknown, sqlState: string): boolean {
  return err instanceof BackbeatError && err.params.sqlState === sqlState
}
