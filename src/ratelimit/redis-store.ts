import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { RedisConnection } from '../stores/index.ts'
import type { Decision, PenaltyRule, RateLimitRule } from './algorithms.ts'
import { RATE_LIMIT_SCRIPT } from './redis-script.ts'
import type { RateLimitStore } from './store.ts'

export interface RedisRateLimitStoreOptions {
  /** Put before every key (after the connection's own keyPrefix); default `bb:rl:`. */
  prefix?: string
  /**
   * `redis` (default): decisions use Redis' clock, so instances with skewed clocks agree.
   * `caller`: use the `nowMs` each call passes (tests with fake time).
   */
  clock?: 'redis' | 'caller'
}

const SCRIPT_SHA = createHash('sha1').update(RATE_LIMIT_SCRIPT).digest('hex')
const ALGORITHM_CODE = { gcra: 'g', 'sliding-window': 's', 'fixed-window': 'f' } as const

/**
 * Rate-limit state in Redis, shared by every instance: each decision is one EVALSHA of one
 * Lua script (sent in full only after a NOSCRIPT), atomic, with the policy state and the
 * client's penalty state under one hash tag so the keys are Redis Cluster-safe.
 *
 * @example
 * const store = new RedisRateLimitStore(redisConnection)
 */
export class RedisRateLimitStore implements RateLimitStore {
  readonly kind = 'redis'
  readonly #connection: RedisConnection
  readonly #prefix: string
  readonly #callerClock: boolean

  constructor(connection: RedisConnection, options: RedisRateLimitStoreOptions = {}) {
    this.#connection = connection
    this.#prefix = options.prefix ?? 'bb:rl:'
    this.#callerClock = options.clock === 'caller'
  }

  consume(key: string, rule: RateLimitRule, cost: number, nowMs: number, penalty?: PenaltyRule): Promise<Decision> {
    return this.#run('consume', 'c', key, rule, cost, nowMs, penalty).then((reply) => {
      // Allowed: {1, remaining, resetMs}; refused: {0, remaining, resetMs, retryAfterMs, block}.
      const [allowed, remaining, resetMs, retryAfterMs = 0, block = 0] = reply as [number, number, number, number?, number?]
      return { allowed: allowed === 1, limit: rule.limit, remaining, resetMs, retryAfterMs, blocked: block !== 0, blockStarted: block === 2 }
    })
  }

  async refund(key: string, rule: RateLimitRule, cost: number, nowMs: number): Promise<void> {
    await this.#run('refund', 'r', key, rule, cost, nowMs, undefined)
  }

  async reset(key: string, rule: RateLimitRule): Promise<void> {
    await this.#run('reset', 'x', key, rule, 0, 0, undefined)
  }

  /** The connection belongs to the caller; nothing to release here. */
  close(): void {
    // Nothing to do.
  }

  /** The two keys of `key` under `rule`: state and penalty, in one hash slot. */
  keysOf(key: string, rule: RateLimitRule): [string, string] {
    const tag = `${this.#prefix}{${slotSafe(key)}}:`
    return [tag + rule.name, `${tag}!penalty`]
  }

  /** One EVALSHA; the script is sent in full only when Redis answers NOSCRIPT. */
  #run(operation: string, mode: string, key: string, rule: RateLimitRule, cost: number, nowMs: number, penalty: PenaltyRule | undefined): Promise<unknown> {
    const [stateKey, penaltyKey] = this.keysOf(key, rule)
    const args = [stateKey, penaltyKey, mode, this.#callerClock ? String(nowMs) : '', ruleArg(rule), cost === 1 ? '1' : String(cost), penalty === undefined ? '0' : penaltyArg(penalty)] as const
    let client: Redis
    try {
      client = this.#connection.client
    } catch (err) {
      return Promise.reject(this.#connection.wrap(`ratelimit ${operation}`, err))
    }
    return client.evalsha(SCRIPT_SHA, 2, ...args).catch((err: unknown) => {
      if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) throw this.#connection.wrap(`ratelimit ${operation}`, err)
      // First use on this Redis (or after SCRIPT FLUSH / a failover): send the script once.
      return client.eval(RATE_LIMIT_SCRIPT, 2, ...args).catch((retryErr: unknown) => {
        throw this.#connection.wrap(`ratelimit ${operation}`, retryErr)
      })
    })
  }
}

// Rules and penalties are immutable once built, so their script arguments are formatted once.
const RULE_ARGS = new WeakMap<RateLimitRule, string>()
const PENALTY_ARGS = new WeakMap<PenaltyRule, string>()

function ruleArg(rule: RateLimitRule): string {
  let arg = RULE_ARGS.get(rule)
  if (arg === undefined) {
    arg = `${ALGORITHM_CODE[rule.algorithm]} ${String(rule.limit)} ${String(rule.windowMs)} ${String(rule.burst)}`
    RULE_ARGS.set(rule, arg)
  }
  return arg
}

function penaltyArg(penalty: PenaltyRule): string {
  let arg = PENALTY_ARGS.get(penalty)
  if (arg === undefined) {
    arg = `${String(penalty.rejections)} ${String(penalty.windowMs)} ${String(penalty.blockMs)} ${String(penalty.maxBlockMs)}`
    PENALTY_ARGS.set(penalty, arg)
  }
  return arg
}

/**
 * A key usable inside a `{hash tag}`: braces would end the tag early and long keys waste
 * memory, so those are replaced by a digest.
 */
function slotSafe(key: string): string {
  if (key.length <= 128 && !key.includes('{') && !key.includes('}')) return key
  return `h:${createHash('sha256').update(key).digest('base64url').slice(0, 32)}`
}
