package wiring

import (
	"github.com/acme/postsvc/adapters/accounts/accountshttp"
	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/adapters/posts/postshttp"
	"github.com/acme/postsvc/adapters/worker"
	accountsapp "github.com/acme/postsvc/application/accounts"
	postsapp "github.com/acme/postsvc/application/posts"
	"github.com/acme/postsvc/ports"
)

// The bounded contexts, as the kernel meets them. A new context adds one entry to each list
// that concerns it: its HTTP module, its part in deleting a user, its background jobs.

// modules are the contexts' HTTP modules.
func modules(accounts *accountshttp.Module, posts *postshttp.Module) httpapi.Modules {
	return httpapi.Modules{accounts, posts}
}

// authenticators are the credential schemes: session access tokens (the accounts context).
func authenticators(auth *accountsapp.Auth) httpapi.Authenticators {
	return httpapi.Authenticators{auth}
}

// dataOwners are the contexts that keep users' data: deleting a user calls each of them.
func dataOwners(posts *postsapp.Service) []ports.UserDataOwner {
	return []ports.UserDataOwner{posts}
}

// noDataOwners is what the account command gets: it creates accounts and deletes none.
func noDataOwners() []ports.UserDataOwner { return nil }

// JobHandlers are the contexts' background jobs by kind (a type of its own for wire).
type JobHandlers map[string]worker.Handler

// jobHandlers names every kind of job and the use case that runs it.
func jobHandlers(admin *accountsapp.Admin) JobHandlers {
	return JobHandlers{accountsapp.UserCleanupJob: admin.CleanUpDeletedUser}
}
