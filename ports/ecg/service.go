package ecg

import (
	"context"

	"github.com/acme/postsvc/domain/ecg/ecg"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
)

// Service is the ECG use case. Every method acts on the caller's own ECGs only; an admin's
// principal is refused with domain.ErrForbidden, another user's ECG is ecg.ErrNotFound.
type Service interface {
	// Receive starts an upload for p: it refuses callers who may not upload before any of the
	// body is read, and returns the spool the body's signals are decoded into. The caller
	// closes the spool once Upload has returned, or when it gives up.
	Receive(ctx context.Context, p identity.Principal) (Spool, error)
	// Upload validates the decoded draft and stores it with the spool's blocks, together with
	// its analysis job. created is false when the caller had already uploaded the same
	// content under the draft's id: the stored ECG is returned and nothing changes. The same
	// id with other content is ecg.ErrExists.
	Upload(ctx context.Context, p identity.Principal, d ecg.Draft, signals Spool) (e *ecg.ECG, created bool, err error)
	// List returns a page of the caller's ECGs, newest upload first.
	List(ctx context.Context, p identity.Principal, req ports.PageRequest) (Page, error)
	// Get returns one of the caller's ECGs (without its samples; see Signals).
	Get(ctx context.Context, p identity.Principal, id string) (*ecg.ECG, error)
	// Signals returns the packed samples of one of the caller's ECGs, which Get returned,
	// read whole before any is handed out: an ECG deleted meanwhile is ecg.ErrNotFound, never
	// a part of its signals. The caller closes them.
	Signals(ctx context.Context, p identity.Principal, e *ecg.ECG) (Signals, error)
	// Insights returns the analysis state and, once done, the measures of one of the
	// caller's ECGs.
	Insights(ctx context.Context, p identity.Principal, id string) (ecg.Insights, error)
	// Delete removes one of the caller's ECGs with its signals and insights.
	Delete(ctx context.Context, p identity.Principal, id string) error
}

// Page is one page of ECGs; NextCursor is empty on the last page.
type Page struct {
	ECGs       []*ecg.ECG
	NextCursor string
}
