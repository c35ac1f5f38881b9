package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// instanceFigures are the instances scenarios: each measured against one server and against
// n servers in turns.
type instanceFigures struct {
	n int
	// pairs are the scenarios, each with its one-server and n-server results.
	pairs []instancePair
	// earlier are the same scenarios against the one server earlier in the run, in turns
	// with their ceilings (the posts targets' figures), when they ran.
	earlier []result
	// rss is each server's RSS after the scenarios.
	rss []int64
	// pageBytes is the first page's body as the instances scenarios list it, and
	// earlierPageBytes as the list (cache hit) scenario did.
	pageBytes, earlierPageBytes int
}

// instancePair is one scenario against one server (single) and against n (all).
type instancePair struct {
	single, all result
}

// scenario is the pair's scenario name, without the number of instances.
func (p instancePair) scenario() string { return strings.TrimSuffix(p.single.Name, ", 1 instance") }

// ratio is the n servers' aggregate throughput over the one server's.
func (p instancePair) ratio() float64 {
	if p.single.Rate() == 0 {
		return 0
	}
	return p.all.Rate() / p.single.Rate()
}

// instancesScenarios starts -instances - 1 more servers on the same MySQL database and Redis
// prefix as the main one (the deployment the issue has in mind: instances behind a balancer,
// here on one machine), and drives the cached list and the 1 KiB add with the clients spread
// round-robin over all of them, in turns with the same scenario against the main server
// alone, so that both are measured under the same conditions. The report gives the aggregate
// requests/s of all the servers next to the one server's.
func (r *runner) instancesScenarios(ctx context.Context) error {
	n := r.opts.instances
	servers := []*process{r.server}
	defer func() {
		for _, s := range servers[1:] {
			s.stop()
		}
	}()
	for i := 1; i < n; i++ {
		addr, err := freeLoopbackAddr(ctx)
		if err != nil {
			return err
		}
		// The same settings as the main server but its profiler: one shared data folder, as
		// instances share their storage.
		env := append(r.serverEnvironment(addr), r.opts.serverEnv...)
		logf("starting instance %d of %d on %s", i+1, n, addr)
		s, err := r.startServerProcess(ctx, fmt.Sprintf("server instance %d", i+1), env, addr)
		if err != nil {
			return err
		}
		servers = append(servers, s)
	}
	fig := &instanceFigures{n: n}
	r.rep.instances = fig

	// Every server's cache holds every user's first page, at the stamps the earlier
	// scenarios left.
	if err := r.warmLists(ctx, servers); err != nil {
		return err
	}
	w := &worker{}
	if _, err := call(ctx, r.client, w, http.MethodGet, r.server.base+"/api/v1/posts", r.users[0].token, nil); err != nil {
		return err
	}
	fig.pageBytes, fig.earlierPageBytes = w.buf.Len(), len(r.rep.captured.Body)
	spread := func(w *worker) string { return servers[w.id%len(servers)].base }
	listAt := func(base func(*worker) string) op {
		return func(ctx context.Context, w *worker, seq int64) (bool, error) {
			return r.listOp(base(w))(ctx, w, seq)
		}
	}
	one := func(*worker) string { return r.server.base }
	got := r.pair(ctx, r.opts.clients,
		func(b bounds) result {
			return r.driveServers(ctx, "list (cache hit), 1 instance", b, []*process{r.server}, listAt(one))
		},
		func(b bounds) result {
			return r.driveServers(ctx, fmt.Sprintf("list (cache hit), %d instances", n), b, servers, listAt(spread))
		})
	fig.pairs = append(fig.pairs, instancePair{single: r.record(got[0], false), all: r.record(got[1], false)})

	body := r.postBody(1 << 10)
	addAt := func(base func(*worker) string) op {
		return func(ctx context.Context, w *worker, _ int64) (bool, error) {
			_, err := r.addPostAt(ctx, base(w), w, r.user(w), body)
			return false, err
		}
	}
	got = r.pair(ctx, r.opts.clients,
		func(b bounds) result {
			return r.driveServers(ctx, "add 1 KiB post, 1 instance", b, []*process{r.server}, addAt(one))
		},
		func(b bounds) result {
			return r.driveServers(ctx, fmt.Sprintf("add 1 KiB post, %d instances", n), b, servers, addAt(spread))
		})
	fig.pairs = append(fig.pairs, instancePair{single: r.record(got[0], false), all: r.record(got[1], false)})
	for _, p := range fig.pairs {
		for _, res := range r.rep.scenarios {
			if res.Name == p.scenario() {
				fig.earlier = append(fig.earlier, res)
			}
		}
	}
	for _, s := range servers {
		rss, _, _ := memStatus(s.pid())
		fig.rss = append(fig.rss, rss)
	}
	for _, p := range fig.pairs {
		logf("%s: %d instances %.0f req/s, 1 instance %.0f req/s (x%.2f)", p.scenario(), n, p.all.Rate(), p.single.Rate(), p.ratio())
	}
	return ctx.Err()
}

// markdown writes the instances section.
func (f *instanceFigures) markdown(w io.Writer, opts options, label string) {
	if f == nil {
		return
	}
	title := fmt.Sprintf("%d instances", f.n)
	if f.n == 3 {
		title = "Three instances"
	}
	fmt.Fprintf(w, "## %s\n\n", title)
	fmt.Fprintf(w, "%d servers on this machine (%s), sharing the run's MySQL database and Redis prefix, each with its own cache of post lists; "+
		"%d keep-alive clients spread round-robin over them (client *i* on server *i* mod %d). Each scenario is measured in %d turns "+
		"alternating with the same scenario against the first server alone, with the same clients, after every server's cache was warmed "+
		"with every user's first page. The figures of all servers are the aggregate of all of them; the machine's cores are shared by all, "+
		"so on a small machine this shows the cost of sharing state, not a scale-out.\n\n",
		f.n, label, opts.clients, f.n, opts.rounds)
	fmt.Fprintf(w, "| scenario | 1 instance req/s | %d instances, aggregate req/s | ratio | p50 / p99 (1) | p50 / p99 (%d) | principals (%d) | errors | CPU per request: servers / runner / other (%d) |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n", f.n, f.n, f.n, f.n)
	for _, p := range f.pairs {
		name := p.scenario()
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.2f | %s / %s | %s / %s | %s | %d | %s |\n", name, p.single.Rate(), p.all.Rate(), p.ratio(),
			roundDur(p.single.P50), roundDur(p.single.P99), roundDur(p.all.P50), roundDur(p.all.P99), principalsNote(p.all),
			p.single.Errors+p.all.Errors, cpuSplit(p.all))
	}
	if len(f.earlier) > 0 {
		fmt.Fprintf(w, "\nThe same scenarios against one server earlier in the run, in turns with their ceilings (the targets' figures):")
		for i, res := range f.earlier {
			sep := ";"
			if i == len(f.earlier)-1 {
				sep = "."
			}
			fmt.Fprintf(w, " %s %.0f req/s%s", res.Name, res.Rate(), sep)
		}
		fmt.Fprintf(w, " They are not comparable with the figures above: in between, the add-post ceiling inserted 1 KiB posts straight into the database "+
			"(the delete scenario removes only the server's own), which now head every user's first page (%d bytes of JSON, against %d then), "+
			"and the list-miss scenario filled the list cache to its byte budget.\n", f.pageBytes, f.earlierPageBytes)
	}
	fmt.Fprintf(w, "\nServers' RSS after these scenarios:")
	for i, rss := range f.rss {
		sep := ","
		if i == len(f.rss)-1 {
			sep = "."
		}
		fmt.Fprintf(w, " %s%s", mib(rss), sep)
	}
	fmt.Fprintf(w, "\n\n")
}
