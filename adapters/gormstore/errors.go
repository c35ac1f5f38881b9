package gormstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	mysqldriver "github.com/go-sql-driver/mysql"
	gosqlite "modernc.org/sqlite"

	"github.com/acme/postsvc/domain"
)

// mapErr is the one place where database errors are classified. An error that means the
// database cannot be reached or cannot answer in time is wrapped so that
// errors.Is(err, domain.ErrUnavailable) holds, which the HTTP layer turns into 503 with
// Retry-After; the original error stays wrapped too, so the log shows what really happened.
// Every other error is returned unchanged: business outcomes (not found, duplicate email) are
// translated by the repository method that knows what they mean, before calling mapErr.
func MapErr(err error) error {
	if err == nil || errors.Is(err, domain.ErrUnavailable) {
		return err
	}
	if isUnavailable(err) {
		return fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
	}
	return err
}

// MySQL and MariaDB server error numbers that mean "not now" rather than "not this request":
// the same statement can succeed once the server recovers, fails over or the contention ends.
var mysqlTransientErrors = map[uint16]bool{
	1040: true, // ER_CON_COUNT_ERROR: too many connections
	1053: true, // ER_SERVER_SHUTDOWN: server shutdown in progress
	1205: true, // ER_LOCK_WAIT_TIMEOUT
	1213: true, // ER_LOCK_DEADLOCK: the transaction was rolled back and may be retried
	1290: true, // ER_OPTION_PREVENTS_STATEMENT: usually --read-only during a failover
	1317: true, // ER_QUERY_INTERRUPTED
	1836: true, // ER_READ_ONLY_MODE
	1927: true, // MariaDB ER_CONNECTION_KILLED
	1969: true, // MariaDB ER_STATEMENT_TIMEOUT (max_statement_time)
	3024: true, // MySQL ER_QUERY_TIMEOUT (max_execution_time)
}

// SQLite primary result codes that mean the file cannot be used right now. The driver reports
// extended codes, whose low byte is the primary code.
var sqliteTransientErrors = map[int]bool{
	5:  true, // SQLITE_BUSY: another connection held the lock past busy_timeout
	6:  true, // SQLITE_LOCKED
	9:  true, // SQLITE_INTERRUPT: the statement was interrupted because its context ended
	10: true, // SQLITE_IOERR
	13: true, // SQLITE_FULL: the disk is full
	14: true, // SQLITE_CANTOPEN
}

// errDBClosed is database/sql's message for a pool that has been closed (during shutdown). The
// error value is not exported, so its text is the only way to recognise it.
const errDBClosed = "sql: database is closed"

func isUnavailable(err error) bool {
	switch {
	case errors.Is(err, driver.ErrBadConn),
		errors.Is(err, mysqldriver.ErrInvalidConn),
		errors.Is(err, sql.ErrConnDone),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH):
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return true
	}
	var myErr *mysqldriver.MySQLError
	if errors.As(err, &myErr) {
		return mysqlTransientErrors[myErr.Number]
	}
	var liteErr *gosqlite.Error
	if errors.As(err, &liteErr) {
		return sqliteTransientErrors[liteErr.Code()&0xff]
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == errDBClosed {
			return true
		}
	}
	return false
}
