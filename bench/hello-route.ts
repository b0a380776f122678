/**
 * The benchmarks' trivial read route: a small static body with a response schema, so
 * serialisation cost stays constant and any difference between servers is the stack's.
 */
export const HELLO = Object.freeze({ hello: 'world', service: 'backbeat-bench', ok: true })

export const helloSchema = {
  response: {
    200: {
      type: 'object',
      properties: { hello: { type: 'string' }, service: { type: 'string' }, ok: { type: 'boolean' } },
      required: ['hello', 'service', 'ok'],
      additionalProperties: false,
    },
  },
} as const

/** Issuer and audience of the bearer tokens the auth scenario sends. */
export const BENCH_ISSUER = 'https://bench.backbeat.test'
export const BENCH_AUDIENCE = 'backbeat-bench'
