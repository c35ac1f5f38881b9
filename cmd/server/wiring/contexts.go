package wiring

import (
	"github.com/acme/postsvc/adapters/accounts/accountshttp"
	"github.com/acme/postsvc/adapters/ecg/ecghttp"
	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/adapters/media/mediahttp"
	"github.com/acme/postsvc/adapters/posts/postshttp"
	"github.com/acme/postsvc/adapters/worker"
	accountsapp "github.com/acme/postsvc/application/accounts"
	ecgapp "github.com/acme/postsvc/application/ecg"
	mediaapp "github.com/acme/postsvc/application/media"
	postsapp "github.com/acme/postsvc/application/posts"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/ports"
)

// The bounded contexts, as the kernel meets them. A new context adds one entry to each list
// that concerns it: its HTTP module, its part in deleting a user, its background jobs.

// modules are the contexts' HTTP modules.
func modules(accounts *accountshttp.Module, posts *postshttp.Module, ecg *ecghttp.Module, media *mediahttp.Module) httpapi.Modules {
	return httpapi.Modules{accounts, posts, ecg, media}
}

// RoutesOnly is every context's HTTP module on use cases that are never called: enough to
// list the routes and problem codes the service serves (the kernel's OpenAPI and problem-page
// tests check the document against it), never to serve a request.
func RoutesOnly() httpapi.Modules {
	return modules(accountshttp.New(nil, nil, nil), postshttp.New(nil), ecghttp.New(nil, ecghttp.Settings{MaxBodyBytes: 1}),
		mediahttp.New(nil, mediahttp.Settings{MaxRequestBytes: 1}))
}

// authenticators are the credential schemes: session access tokens and personal API keys (both
// of the accounts context).
func authenticators(auth *accountsapp.Auth, keys *accountsapp.APIKeys) httpapi.Authenticators {
	return httpapi.Authenticators{auth, keys}
}

// dataOwners are the contexts that keep users' data: deleting a user calls each of them.
func dataOwners(posts *postsapp.Service, ecg *ecgapp.Service, media *mediaapp.Service) []ports.UserDataOwner {
	return []ports.UserDataOwner{posts, ecg, media}
}

// noDataOwners is what the account command gets: it creates accounts and deletes none.
func noDataOwners() []ports.UserDataOwner { return nil }

// JobPool is a set of job kinds run by workers of their own in this process.
type JobPool struct {
	Name     string
	Workers  int
	Handlers map[string]worker.Handler
	// GiveUp tells a kind's use case that one of its jobs will not run again (worker.GiveUp).
	GiveUp map[string]worker.GiveUp
}

// JobPools are every pool of this process (a type of its own for wire).
type JobPools []JobPool

// jobPools names every kind of job, the use case that runs it, and the pool it runs in: the
// general pool (APP_JOBS_WORKERS) for occasional work, the ECG analyses in a pool of their
// own (APP_ECG_WORKERS), and the thumbnails and object deletions of images in another
// (APP_MEDIA_WORKERS), so a burst of uploads never delays the others, nor they it.
func jobPools(jobs config.Jobs, ecgCfg config.ECG, mediaCfg config.Media, admin *accountsapp.Admin, ecg *ecgapp.Service, media *mediaapp.Service) JobPools {
	return JobPools{
		{Name: "general", Workers: jobs.Workers, Handlers: map[string]worker.Handler{
			accountsapp.UserCleanupJob: admin.CleanUpDeletedUser,
		}},
		{Name: "ecg", Workers: ecg.RunAnalysesOn(ecgCfg.Workers), Handlers: map[string]worker.Handler{
			ecgapp.AnalyseJob:   ecg.Analyse,
			ecgapp.ReanalyseJob: ecg.Reanalyse,
		}, GiveUp: map[string]worker.GiveUp{
			ecgapp.AnalyseJob: ecg.AnalysisGivenUp,
		}},
		{Name: "media", Workers: mediaCfg.Workers, Handlers: map[string]worker.Handler{
			mediaapp.ThumbnailJob:     media.MakeThumbnail,
			mediaapp.DeleteObjectsJob: media.DeleteObjects,
		}},
	}
}
