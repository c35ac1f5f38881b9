-- An instance that cannot reach Redis, while the database still answers it, says so here
-- (adapters/stampboard, Cutoffs): a row per such instance, with a heartbeat counter it raises
-- while it stays cut off. Every instance polls the table and serves principals and post lists
-- from memory only while it holds no live row, so that the cut-off instance's writes, which it
-- cannot publish through Redis, apply on the very next request everywhere. The table is empty
-- while every instance reaches Redis.

-- +goose Up
CREATE TABLE board_cutoffs (
  member VARCHAR(64) NOT NULL PRIMARY KEY,
  beat   BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- +goose Down
DROP TABLE board_cutoffs;
