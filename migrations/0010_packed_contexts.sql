-- Stored dialplan and chatplan documents travel packed (docs/performance.md,
-- "Big contexts"). A node reading a 10,000-extension context's 3 MB document made
-- the database detoast, copy and send 3 MB per lookup (~10 ms of the ~18 ms it
-- took); packed with LZ4 (the block format) the same document is 113 KB.
--
-- `packed` holds the document's UTF-8 bytes packed, `packed_length` their count
-- (the node unpacks into exactly that many bytes and refuses a block that does not
-- fill them). Writers store it beside `xml` (kept for people and tools reading the
-- table); nodes read `packed`, and `xml` only where `packed` is NULL. Documents
-- stored before this migration have no packed form: the renderer's format moved
-- to 2 with it, so they are stale until a writer renders them again (`migrate up`
-- does, as after any migration), and nodes read their rows meanwhile.
-- Derived data, as in 0009: no change capture, no history, no undo of its own.
-- migrate:up

ALTER TABLE fsconf.prerendered_contexts
    ADD COLUMN packed bytea,
    ADD COLUMN packed_length integer,
    ADD CONSTRAINT prerendered_contexts_packed_length_check
        CHECK ((packed IS NULL) = (packed_length IS NULL) AND (packed_length IS NULL OR packed_length >= 0));
-- Already compressed: PostgreSQL's own compression would only cost time.
ALTER TABLE fsconf.prerendered_contexts ALTER COLUMN packed SET STORAGE EXTERNAL;

-- migrate:down

ALTER TABLE fsconf.prerendered_contexts
    DROP CONSTRAINT prerendered_contexts_packed_length_check,
    DROP COLUMN packed_length,
    DROP COLUMN packed;
