-- Bundled providers the user removed: not registered again at the next start.

CREATE TABLE dismissed_bundled (
    name         text PRIMARY KEY,
    sha256       text NOT NULL,
    dismissed_at timestamptz NOT NULL DEFAULT now()
);
