/**
 * One Fastify 5 server with one rate limiter in front of `GET /bench/hello`, for the
 * side-by-side comparison in bench/ratelimit.ts. Nothing else is registered, so the only
 * difference between variants is the limiter:
 *
 *   RL_IMPL=backbeat              backbeat/ratelimit's plugin (GCRA, draft-10 RateLimit fields)
 *   RL_IMPL=fastify-rate-limit    @fastify/rate-limit (fixed window, x-ratelimit-* headers)
 *   RL_IMPL=flexible              rate-limiter-flexible in an onRequest hook, with the
 *                                 X-RateLimit-* and Retry-After headers its README shows
 *   RL_IMPL=none                  no limiter (the ceiling)
 *   RL_STORE=memory|redis         (redis: REDIS_URL, one ioredis connection per server)
 *
 * Each limiter is configured the same way: one limit per client IP, high enough that every
 * request of the run is allowed (the common case a limiter must make cheap).
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { rateLimitPlugin } from 'backbeat/ratelimit'
import { RedisConnection } from 'backbeat/stores'
import fastifyRateLimit from '@fastify/rate-limit'
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible'
import { HELLO, helloSchema } from './hello-route.ts'

const LIMIT = 1_000_000_000
// A day: GCRA allows at most 100,000 units per second per client.
const WINDOW_S = 86_400

const impl = process.env.RL_IMPL ?? 'none'
const storeKind = process.env.RL_STORE ?? 'memory'
const redisUrl = process.env.REDIS_URL ?? ''
if (storeKind !== 'memory' && storeKind !== 'redis') throw new Error(`RL_STORE must be memory or redis, got ${storeKind}`)
if (storeKind === 'redis' && redisUrl === '') throw new Error('RL_STORE=redis needs REDIS_URL')
// Each run gets its own key space, so rounds never see another variant's counters.
const prefix = `bench:${impl}:${String(process.pid)}:`

const app: FastifyInstance = Fastify({ logger: false })
const closers: (() => Promise<unknown>)[] = []

async function redisClient(): Promise<Redis> {
  // The same client settings the @fastify/rate-limit README recommends for rate limiting.
  const client = new Redis(redisUrl, { connectTimeout: 500, maxRetriesPerRequest: 1, lazyConnect: true })
  await client.connect()
  closers.push(() => client.quit())
  return client
}

switch (impl) {
  case 'backbeat': {
    let redis: RedisConnection | undefined
    if (storeKind === 'redis') {
      redis = new RedisConnection({ url: redisUrl, name: 'bench' })
      await redis.connect()
      const connection = redis
      closers.push(() => connection.close())
    }
    await app.register(rateLimitPlugin, {
      store: storeKind,
      keyPrefix: prefix,
      policies: { burst: { limit: LIMIT, windowS: WINDOW_S } },
      ...(redis === undefined ? {} : { redis }),
    })
    break
  }
  case 'fastify-rate-limit': {
    await app.register(fastifyRateLimit, {
      max: LIMIT,
      timeWindow: WINDOW_S * 1000,
      nameSpace: prefix,
      ...(storeKind === 'redis' ? { redis: await redisClient() } : {}),
    })
    break
  }
  case 'flexible': {
    const limiter: RateLimiterAbstract =
      storeKind === 'redis'
        ? new RateLimiterRedis({ storeClient: await redisClient(), keyPrefix: prefix, points: LIMIT, duration: WINDOW_S })
        : new RateLimiterMemory({ keyPrefix: prefix, points: LIMIT, duration: WINDOW_S })
    const headers = (reply: { header: (name: string, value: string | number) => unknown }, res: RateLimiterRes): void => {
      reply.header('X-RateLimit-Limit', LIMIT)
      reply.header('X-RateLimit-Remaining', res.remainingPoints)
      reply.header('X-RateLimit-Reset', Math.ceil((Date.now() + res.msBeforeNext) / 1000))
    }
    app.addHook('onRequest', async (request, reply) => {
      try {
        headers(reply, await limiter.consume(request.ip))
      } catch (err) {
        if (!(err instanceof RateLimiterRes)) throw err
        headers(reply, err)
        reply.header('Retry-After', Math.ceil(err.msBeforeNext / 1000))
        return reply.code(429).send({ error: 'Too Many Requests' })
      }
    })
    break
  }
  case 'none':
    break
  default:
    throw new Error(`RL_IMPL must be backbeat, fastify-rate-limit, flexible or none, got ${impl}`)
}

app.get('/bench/hello', { schema: helloSchema }, async () => HELLO)
app.addHook('onClose', async () => {
  await Promise.all(closers.map((close) => close()))
})
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    void app.close().then(() => process.exit(0))
  })
}
const port = Number(process.env.PORT ?? 0)
const url = await app.listen({ host: process.env.HOST ?? '127.0.0.1', port })
process.stdout.write(`rate-limit bench server (${impl}, ${storeKind}) listening on ${url}\n`)
