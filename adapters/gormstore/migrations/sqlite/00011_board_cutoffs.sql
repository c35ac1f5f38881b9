-- Instances cut off from Redis, through the database they still reach. See the MySQL
-- migration of the same number.

-- +goose Up
CREATE TABLE board_cutoffs (
  member TEXT NOT NULL PRIMARY KEY,
  beat   INTEGER NOT NULL
);

-- +goose Down
DROP TABLE board_cutoffs;
