package throttle_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/system"
	"github.com/acme/postsvc/adapters/throttle"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/testredis"
)

// benchConfig keeps the benchmarks' keys for a minute at most.
var benchConfig = config.Throttle{Window: time.Minute, AccountFailures: 10, AddrFailures: 50, SignupAttempts: 20}

func benchShared(b *testing.B) ports.AttemptThrottle {
	cfg := testredis.Config(b)
	client := testredis.Client(b, cfg)
	return throttle.NewShared(client, isolated(b, client), cfg.Timeout, benchConfig, system.NewClock(), nil, strictHealth{b})
}

// BenchmarkSharedAdmit is one login's Admit (an account and an address, both with budget
// left): one EVALSHA round trip that writes two keys, plus the local record.
func BenchmarkSharedAdmit(b *testing.B) {
	th := benchShared(b)
	i := 0
	for b.Loop() {
		if err := th.Admit(b.Context(), fmt.Sprintf("account:u%d@x.io", i), fmt.Sprintf("addr:10.0.%d.%d", i>>8&255, i&255)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkSharedAdmitRefused is an Admit under attack: the account's budget is empty, so the
// script only reads.
func BenchmarkSharedAdmitRefused(b *testing.B) {
	th := benchShared(b)
	const acct = "account:victim@x.io"
	for range 10 {
		_ = th.Admit(b.Context(), acct)
	}
	var te *domain.ThrottledError
	for b.Loop() {
		if err := th.Admit(b.Context(), acct, "addr:10.0.0.1"); !errors.As(err, &te) {
			b.Fatalf("Admit = %v, want throttled", err)
		}
	}
}

// BenchmarkSharedAdmitParallel is many logins at once on one instance (one pipelined
// connection).
func BenchmarkSharedAdmitParallel(b *testing.B) {
	th := benchShared(b)
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if err := th.Admit(b.Context(), fmt.Sprintf("account:u%d@x.io", i), fmt.Sprintf("addr:10.%d.%d.%d", i>>16&255, i>>8&255, i&255)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkMemoryAdmit is the same Admit on the in-process throttle, for comparison.
func BenchmarkMemoryAdmit(b *testing.B) {
	th := throttle.NewMemory(benchConfig, system.NewClock())
	i := 0
	for b.Loop() {
		if err := th.Admit(b.Context(), fmt.Sprintf("account:u%d@x.io", i), fmt.Sprintf("addr:10.0.%d.%d", i>>8&255, i&255)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkAdmitLongLog is one key admitting attempt after attempt under a limit of 10^8 per
// second, as in a deployment that switches throttling off by setting its limits very high (the
// load runner does): the key's log then holds every attempt of the last second, tens of
// thousands in Redis and millions in memory, while the oldest keep leaving it. Its ns/op
// should be no more than BenchmarkSharedAdmit's and BenchmarkMemoryAdmit's (which touch two
// keys): a call costs the same however long the log.
func BenchmarkAdmitLongLog(b *testing.B) {
	cfg := config.Throttle{Window: time.Second, SignupAttempts: 100_000_000}
	for _, c := range []struct {
		name string
		new  func(b *testing.B) ports.AttemptThrottle
	}{
		{"memory", func(*testing.B) ports.AttemptThrottle { return throttle.NewMemory(cfg, system.NewClock()) }},
		{"shared", func(b *testing.B) ports.AttemptThrottle {
			rc := testredis.Config(b)
			client := testredis.Client(b, rc)
			return throttle.NewShared(client, isolated(b, client), rc.Timeout, cfg, system.NewClock(), nil, strictHealth{b})
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			th := c.new(b)
			for b.Loop() {
				if err := th.Admit(b.Context(), "signup:192.0.2.1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
