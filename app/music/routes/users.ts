import type { FastifyInstance } from 'fastify'
import { parseId } from '../ids.ts'
import { page } from '../paging.ts'
import type { MusicRepository } from '../repository.ts'
import { CreateUserBody, IdParams, PageQuery, Paging, PrivateUser, problemResponses, refTo, User, type CreateUserBodyJson, type PageQueryJson } from '../schemas.ts'

/** Users: list, get (public profile) and create (answers the private profile, with email). */
export function userRoutes(app: FastifyInstance, { repository, hashPassword }: { repository: MusicRepository; hashPassword?: ((password: string) => Promise<string>) | undefined }): Promise<void> {
  app.get<{ Querystring: PageQueryJson }>(
    '/users',
    {
      schema: {
        tags: ['users'],
        summary: 'List users',
        description: 'A page of public user profiles, oldest first.',
        querystring: PageQuery,
        response: { 200: Paging(refTo(User), 'A page of users.'), ...problemResponses },
      },
    },
    async (request) => {
      const { limit, offset } = request.query
      const { items, total } = await repository.users(limit, offset)
      return page(items, total, { path: '/v1/users', limit, offset })
    },
  )

  app.get<{ Params: { user_id: string } }>(
    '/users/:user_id',
    {
      schema: {
        tags: ['users'],
        summary: "Get a user's profile",
        description: 'The public profile: no email address.',
        params: IdParams('user_id', 'user'),
        response: { 200: refTo(User), ...problemResponses },
      },
    },
    async (request) => repository.user(parseId('user', request.params.user_id)),
  )

  app.post<{ Body: CreateUserBodyJson }>(
    '/users',
    {
      schema: {
        tags: ['users'],
        summary: 'Create a user',
        description: 'Signs a user up (public): creates the user, with a password when given, and answers 201 with the private profile and a Location header. 409 when the email address (compared case-insensitively) is taken.',
        body: CreateUserBody,
        response: { 201: refTo(PrivateUser), ...problemResponses },
      },
    },
    async (request, reply) => {
      const { display_name: displayName, email, country, password } = request.body
      const passwordHash = password === undefined || hashPassword === undefined ? undefined : await hashPassword(password)
      const user = await repository.createUser({ displayName, email, country, passwordHash })
      return reply.code(201).header('location', user.href).send(user)
    },
  )

  return Promise.resolve()
}
