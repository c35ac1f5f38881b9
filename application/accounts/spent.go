package accounts

import (
	"context"
	"errors"
	"time"
)

// spentWorkGrace is the least time the work after a password hash keeps: storing the account
// or the session the hash paid for, and telling the throttle how the check went.
const spentWorkGrace = 2 * time.Second

// afterHashing returns the context for the work that follows a password hash: ctx itself
// while its deadline is at least spentWorkGrace away, and otherwise ctx with its deadline
// moved to spentWorkGrace from now. The client going away still cancels it.
//
// The hasher admits a check only when, by the recent hash time, it can be done before the
// request's deadline, but under load a hash can take longer than that estimate and end just
// before the deadline, or after it. Failing the request then threw the hash away and blamed a
// dependency: an outside flood of signups on a busy machine got 503 unavailable for checks the
// hasher had admitted, and each of them still used up one of the address's signups. The grace
// is short, so an unreachable database is still answered within seconds.
func afterHashing(ctx context.Context) (context.Context, context.CancelFunc) {
	if deadline, ok := ctx.Deadline(); !ok || time.Until(deadline) >= spentWorkGrace {
		return ctx, func() {}
	}
	graced, cancel := context.WithTimeout(context.WithoutCancel(ctx), spentWorkGrace)
	stop := context.AfterFunc(ctx, func() {
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cancel() // the client went away, or the server is stopping
		}
	})
	return graced, func() {
		stop()
		cancel()
	}
}
