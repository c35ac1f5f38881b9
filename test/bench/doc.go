// Package bench holds the Go benchmarks of the service's hot paths, measured through the real
// adapters: the Gin router with its middleware, the application services, GORM on a SQLite
// file (and MySQL for the per-request authentication check), the post-list cache, JWT and
// argon2id. The adapters are assembled by hand in the order cmd/server/wire_gen.go uses,
// because the wire injector lives in package main and cannot be imported.
//
// Run them with
//
//	go test -run '^$' -bench . -benchmem ./test/bench/
//
// CI runs every benchmark once (-benchtime=1x) so that they keep compiling and working; it
// never judges a timing. The load runner in test/load measures the same paths against their
// ceilings over real HTTP.
package bench
