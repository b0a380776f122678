import type { Migration } from 'backbeat/stores'

/**
 * The music schema. Plain SQL that runs unchanged on Postgres 15+ and PGlite. Applied
 * migrations are checksummed by `migrate`, so never edit one: append a new one.
 *
 * Choices worth knowing:
 * - IDs are the public 22-character base62 IDs, checked by the database too, so no code
 *   path can store an ID the API would later refuse to parse.
 * - Deleting an artist removes their albums and tracks; deleting a user removes their
 *   playlists. A track still in some playlist cannot be deleted (RESTRICT): playlist
 *   positions must stay dense, and silently dropping an item would shift a client's indexes.
 * - `(playlist_id, position)` is unique but DEFERRABLE, so a reorder can move a block of
 *   rows with one UPDATE and the constraint is checked at commit.
 */
export const musicMigrations: readonly Migration[] = [
  {
    id: '0001_music_catalogue',
    sql: `
CREATE TABLE artists (
  id          text PRIMARY KEY CHECK (id ~ '^[0-9A-Za-z]{22}$'),
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  genres      text[] NOT NULL DEFAULT '{}',
  popularity  integer NOT NULL DEFAULT 0 CHECK (popularity BETWEEN 0 AND 100),
  followers   integer NOT NULL DEFAULT 0 CHECK (followers >= 0),
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX artists_name_idx ON artists (lower(name), id);

CREATE TABLE albums (
  id            text PRIMARY KEY CHECK (id ~ '^[0-9A-Za-z]{22}$'),
  artist_id     text NOT NULL REFERENCES artists (id) ON DELETE CASCADE,
  name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  album_type    text NOT NULL CHECK (album_type IN ('album', 'single', 'compilation')),
  release_date  date NOT NULL,
  label         text NOT NULL DEFAULT '',
  popularity    integer NOT NULL DEFAULT 0 CHECK (popularity BETWEEN 0 AND 100),
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX albums_artist_idx ON albums (artist_id, release_date DESC, id);
CREATE INDEX albums_name_idx ON albums (lower(name), id);

CREATE TABLE tracks (
  id            text PRIMARY KEY CHECK (id ~ '^[0-9A-Za-z]{22}$'),
  album_id      text NOT NULL REFERENCES albums (id) ON DELETE CASCADE,
  name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  disc_number   integer NOT NULL DEFAULT 1 CHECK (disc_number >= 1),
  track_number  integer NOT NULL CHECK (track_number >= 1),
  duration_ms   integer NOT NULL CHECK (duration_ms > 0),
  explicit      boolean NOT NULL DEFAULT false,
  popularity    integer NOT NULL DEFAULT 0 CHECK (popularity BETWEEN 0 AND 100),
  isrc          text UNIQUE CHECK (isrc ~ '^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$'),
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (album_id, disc_number, track_number)
);
CREATE INDEX tracks_name_idx ON tracks (lower(name), id);
CREATE INDEX tracks_popularity_idx ON tracks (popularity DESC, id);
`,
  },
  {
    id: '0002_music_users_playlists',
    sql: `
CREATE TABLE users (
  id            text PRIMARY KEY CHECK (id ~ '^[0-9A-Za-z]{22}$'),
  display_name  text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 100),
  email         text NOT NULL CHECK (position('@' IN email) > 1),
  country       text CHECK (country ~ '^[A-Z]{2}$'),
  created_at    timestamptz NOT NULL DEFAULT now()
);
-- Addresses that differ only in case reach the same mailbox for every provider that matters.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_created_idx ON users (created_at, id);

CREATE TABLE playlists (
  id             text PRIMARY KEY CHECK (id ~ '^[0-9A-Za-z]{22}$'),
  owner_id       text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  description    text NOT NULL DEFAULT '' CHECK (length(description) <= 300),
  public         boolean NOT NULL DEFAULT true,
  collaborative  boolean NOT NULL DEFAULT false,
  snapshot_id    text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  -- Spotify's rule: a collaborative playlist cannot be public.
  CHECK (NOT (collaborative AND public))
);
CREATE INDEX playlists_owner_idx ON playlists (owner_id, created_at DESC, id);

CREATE TABLE playlist_tracks (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  playlist_id  text NOT NULL REFERENCES playlists (id) ON DELETE CASCADE,
  track_id     text NOT NULL REFERENCES tracks (id) ON DELETE RESTRICT,
  position     integer NOT NULL CHECK (position >= 0),
  added_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT playlist_tracks_position_key UNIQUE (playlist_id, position) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX playlist_tracks_track_idx ON playlist_tracks (track_id);

-- Marks data sets loaded once (the demo seed), so a restart never loads them again.
CREATE TABLE music_seeds (
  name        text PRIMARY KEY,
  applied_at  timestamptz NOT NULL DEFAULT now()
);
`,
  },
  {
    id: '0003_music_accounts',
    sql: `
-- Sign-in: an scrypt PHC string (null: the account cannot use passwords), RBAC roles, and
-- the second factor: the TOTP secret sealed with the vault key (AES-256-GCM), hashed recovery
-- codes, and a pending secret during enrolment.
ALTER TABLE users
  ADD COLUMN password_hash        text CHECK (password_hash IS NULL OR password_hash LIKE '$scrypt$%'),
  ADD COLUMN roles                text[] NOT NULL DEFAULT '{listener}',
  ADD COLUMN mfa_secret           text,
  ADD COLUMN mfa_pending_secret   text,
  ADD COLUMN mfa_enrolled_at      timestamptz,
  ADD COLUMN mfa_recovery_hashes  text[] NOT NULL DEFAULT '{}',
  ADD COLUMN spotify_id           text;
CREATE UNIQUE INDEX users_spotify_id_key ON users (spotify_id) WHERE spotify_id IS NOT NULL;
`,
  },
]
