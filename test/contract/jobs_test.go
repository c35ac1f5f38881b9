package contract_test

import (
	"path/filepath"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/accounts/accountsgorm"
	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/adapters/system"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/contract"
	"github.com/acme/postsvc/test/fakes"
	"github.com/acme/postsvc/test/fakes/accountsfake"
	"github.com/acme/postsvc/test/testdb"
)

// TestJobsGormStore runs the job queue contract on every supported database. Each test gets a
// fresh database, and its "other instances" are connection pools of their own on it, as
// separate server processes would have.
func TestJobsGormStore(t *testing.T) {
	for _, driver := range []string{config.DriverSQLite, config.DriverMySQL} {
		t.Run(driver, func(t *testing.T) {
			contract.RunJobs(t, func(t *testing.T, clock ports.Clock) contract.JobsBackend {
				cfg := jobsDatabase(t, driver)
				db := openPool(t, cfg)
				testdb.Migrate(t, db, driver)
				ids := system.NewIDs()
				queue := gormstore.NewJobQueue(db, clock, ids)
				return contract.JobsBackend{
					UoW: gormstore.NewUnitOfWork(db), Users: accountsgorm.NewStore(db),
					Queue: queue, Source: queue,
					Instance: func(t *testing.T) ports.JobSource {
						return gormstore.NewJobQueue(openPool(t, cfg), clock, ids)
					},
				}
			})
		})
	}
}

// TestJobsFake runs the job queue contract on the in-memory fake that use-case tests rely on.
func TestJobsFake(t *testing.T) {
	contract.RunJobs(t, func(t *testing.T, clock ports.Clock) contract.JobsBackend {
		store := fakes.NewStore()
		jobs := fakes.NewJobs(store, clock)
		return contract.JobsBackend{
			UoW: store, Users: accountsfake.Store{}, Queue: jobs, Source: jobs,
			Instance: func(*testing.T) ports.JobSource { return jobs },
		}
	})
}

// jobsDatabase returns the settings of a fresh, empty database of driver, dropped or removed
// when the test ends.
func jobsDatabase(t *testing.T, driver string) config.Database {
	t.Helper()
	if driver == config.DriverMySQL {
		return config.Database{
			Driver: driver, DSN: testdb.MySQLDSN(t),
			MaxOpenConns: 4, MaxIdleConns: 4, ConnMaxLifetime: time.Minute,
		}
	}
	return config.Database{
		Driver: driver, DSN: filepath.Join(t.TempDir(), "jobs.db"),
		MaxOpenConns: 4, MaxIdleConns: 4,
	}
}

// openPool opens a connection pool of its own on cfg's database, closed when the test ends.
func openPool(t *testing.T, cfg config.Database) *gorm.DB {
	t.Helper()
	db, cleanup, err := gormstore.Open(cfg)
	if err != nil {
		t.Fatalf("open %s: %v", cfg.Driver, err)
	}
	t.Cleanup(cleanup)
	return db
}
