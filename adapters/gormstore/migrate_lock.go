package gormstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// migrationLockPrefix names the MySQL user lock taken around migrations. The database name is
// appended because GET_LOCK names are server-wide: two schemas on one server (two
// environments, or parallel test databases) must not wait for each other.
const migrationLockPrefix = "postsvc_migrate:"

// mysqlLockPoll is how long one GET_LOCK call waits. The wait is split into short calls because
// a single long one would outlast the connection's read timeout (10s by default) and be cut off
// as a broken connection.
const mysqlLockPoll = 2 * time.Second

// mysqlLocker takes and releases the migration lock with GET_LOCK and RELEASE_LOCK on a
// connection dedicated to holding it. A MySQL user lock belongs to its connection, so the
// server releases it by itself if the process dies or the connection breaks mid-migration.
type mysqlLocker struct {
	wait time.Duration
}

func (l *mysqlLocker) lock(ctx context.Context, conn *sql.Conn) error {
	name, err := migrationLockName(ctx, conn)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(l.wait)
	for {
		// GET_LOCK answers 1 when the lock is taken, 0 when the wait timed out (another
		// instance is migrating), and NULL on an error such as the thread being killed.
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", name, int(mysqlLockPoll/time.Second)).Scan(&got); err != nil {
			return fmt.Errorf("take migration lock %q: %w", name, err)
		}
		switch {
		case !got.Valid:
			return fmt.Errorf("take migration lock %q: GET_LOCK returned NULL", name)
		case got.Int64 == 1:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("take migration lock %q: still held by another instance after %s", name, l.wait)
		}
	}
}

func (l *mysqlLocker) unlock(ctx context.Context, conn *sql.Conn) error {
	name, err := migrationLockName(ctx, conn)
	if err != nil {
		return err
	}
	// RELEASE_LOCK answers 1 when released, 0 when another connection holds the lock and NULL
	// when nobody does; both of the latter mean this connection had lost the lock, so the
	// migrations may not have run under it, which is worth reporting.
	var released sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT RELEASE_LOCK(?)", name).Scan(&released); err != nil {
		return fmt.Errorf("release migration lock %q: %w", name, err)
	}
	if !released.Valid || released.Int64 != 1 {
		return fmt.Errorf("release migration lock %q: this connection did not hold it", name)
	}
	return nil
}

// migrationLockName is the lock name for the connection's current database. MySQL limits lock
// names to 64 characters, so a long database name is replaced by a digest.
func migrationLockName(ctx context.Context, conn *sql.Conn) (string, error) {
	var db sql.NullString
	if err := conn.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&db); err != nil {
		return "", fmt.Errorf("read current database: %w", err)
	}
	if !db.Valid || db.String == "" {
		return "", errors.New("the MySQL DSN names no database")
	}
	name := migrationLockPrefix + db.String
	if len(name) > 64 {
		sum := sha256.Sum256([]byte(db.String))
		name = migrationLockPrefix + hex.EncodeToString(sum[:16])
	}
	return name, nil
}
