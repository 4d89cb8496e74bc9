ALTER TABLE notes ADD COLUMN tags TEXT NOT NULL DEFAULT '';
INSERT INTO notes (body, tags) VALUES ('hello from version 2', 'demo');
