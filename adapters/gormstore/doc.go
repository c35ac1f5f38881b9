// Package gormstore is the relational storage adapter: it implements the persistence ports
// (repositories and unit of work) with GORM on MySQL/MariaDB or SQLite, owns the versioned
// schema migrations of both dialects, and opens the connection pool.
//
// Storage structs with gorm tags are private to this package and mapped to and from the domain
// aggregates through their Rehydrate constructors, so no gorm type reaches the application.
// The only gorm type in the exported API is *gorm.DB, which the composition root passes from
// Open to the constructors.
//
// The schema is owned by the SQL migrations under migrations/<dialect>, never by GORM's
// AutoMigrate: the two dialects need different column types and collations to behave the same,
// and a migration that is reviewed as SQL is what runs in production.
package gormstore
