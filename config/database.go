package config

import (
	"errors"
	"fmt"
	"strings"

	mysqldriver "github.com/go-sql-driver/mysql"
)

// MySQLDSNForm is the shape of a MySQL DSN, for messages about one that is not.
const MySQLDSNForm = "user:password@tcp(host:3306)/dbname?param=value"

// CheckMySQLDSN returns nil when the MySQL driver accepts dsn, and otherwise the error
// InvalidMySQLDSN describes. Load calls it, so a DSN the driver would refuse stops start-up
// with the setting named before anything connects.
func CheckMySQLDSN(dsn string) error {
	if _, err := mysqldriver.ParseDSN(dsn); err != nil {
		return InvalidMySQLDSN(dsn, err)
	}
	return nil
}

// InvalidMySQLDSN is the error for a DSN that the MySQL driver refused with reason: it names
// APP_DATABASE_DSN, shows the form a DSN takes and gives the driver's reason, but never the
// DSN, which holds the password. The driver's messages do not repeat the DSN, but a few quote
// a part of it (a database name, a parameter's value), which for a DSN that does not parse
// may be a piece of the password: such a reason is left out. The reason is not wrapped, so
// nothing can print its text later.
func InvalidMySQLDSN(dsn string, reason error) error {
	msg := fmt.Sprintf("%s: is not a valid MySQL DSN (expected %s)", EnvName("database.dsn"), MySQLDSNForm)
	if reason != nil {
		if text := reason.Error(); !quotesPassword(text, dsnPassword(dsn)) {
			msg += ": " + text
		} else {
			msg += " (the driver's reason quotes part of the DSN's password and is not shown)"
		}
	}
	return errors.New(msg)
}

// dsnPassword returns what may be the password of a DSN that may not parse: everything
// between the first ':' and the last '@', which covers the driver's own reading
// (user:password@...) and URL-like mistakes (mysql://user:password@host/db) alike.
func dsnPassword(dsn string) string {
	at := strings.LastIndexByte(dsn, '@')
	if at < 0 {
		return ""
	}
	_, password, found := strings.Cut(dsn[:at], ":")
	if !found {
		return ""
	}
	return password
}

// quotesPassword reports whether text holds any four consecutive bytes of password (the
// whole password when it is shorter), so that not even a piece of it is shown.
func quotesPassword(text, password string) bool {
	const window = 4
	if password == "" {
		return false
	}
	if len(password) <= window {
		return strings.Contains(text, password)
	}
	for i := 0; i+window <= len(password); i++ {
		if strings.Contains(text, password[i:i+window]) {
			return true
		}
	}
	return false
}
