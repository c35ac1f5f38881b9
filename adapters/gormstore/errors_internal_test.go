package gormstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	mysqldriver "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/accounts/user"
)

func TestMapErr(t *testing.T) {
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	cases := []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"connection refused", dialErr, true},
		{"wrapped connection refused", fmt.Errorf("gorm: %w", dialErr), true},
		{"bad connection", driver.ErrBadConn, true},
		{"invalid connection", mysqldriver.ErrInvalidConn, true},
		{"connection done", sql.ErrConnDone, true},
		{"deadline exceeded", context.DeadlineExceeded, true},
		{"i/o timeout", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, true},
		{"connection reset", syscall.ECONNRESET, true},
		{"closed pool", errors.New("sql: database is closed"), true},
		{"too many connections", &mysqldriver.MySQLError{Number: 1040}, true},
		{"lock wait timeout", &mysqldriver.MySQLError{Number: 1205}, true},
		{"deadlock", &mysqldriver.MySQLError{Number: 1213}, true},
		{"read-only server", &mysqldriver.MySQLError{Number: 1290}, true},
		{"syntax error", &mysqldriver.MySQLError{Number: 1064}, false},
		{"duplicate key", gorm.ErrDuplicatedKey, false},
		{"record not found", gorm.ErrRecordNotFound, false},
		{"domain error", user.ErrNotFound, false},
		{"canceled by the caller", context.Canceled, false},
		{"anything else", errors.New("unexpected"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := MapErr(c.err)
			if errors.Is(got, domain.ErrUnavailable) != c.unavailable {
				t.Fatalf("MapErr(%v) = %v; unavailable = %v, want %v", c.err, got, !c.unavailable, c.unavailable)
			}
			if !errors.Is(got, c.err) {
				t.Fatalf("MapErr(%v) = %v no longer wraps the original error", c.err, got)
			}
		})
	}
	if MapErr(nil) != nil {
		t.Fatal("MapErr(nil) is not nil")
	}
	twice := MapErr(MapErr(driver.ErrBadConn))
	if n := strings.Count(twice.Error(), domain.ErrUnavailable.Error()); n != 1 {
		t.Fatalf("mapErr wrapped an already mapped error again: %v", twice)
	}
}
