package bench

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // the driver of the pipeline benchmark's own reads
)

// ecgBody is a typical resting ECG as JSON: 12 leads of 5000 samples (10 s at 500 Hz), about
// 265 KB, with the given id.
func ecgBody(id string) []byte {
	var b strings.Builder
	b.Grow(300 << 10)
	fmt.Fprintf(&b, `{"id":%q,"date":"2026-11-02T08:30:00Z","leads":[`, id)
	for l := range 12 {
		if l > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"L%d","signal":[`, l)
		for i := range 5000 {
			if i > 0 {
				b.WriteByte(',')
			}
			v := int(900*math.Sin(float64(i)/40+float64(l))) - 120 + (i*7919)%61
			b.WriteString(strconv.Itoa(v))
		}
		b.WriteString("]}")
	}
	b.WriteString("]}")
	return []byte(b.String())
}

// BenchmarkECGAnalysisPipeline is the background half of an ECG on MySQL: b.N uploaded 12 ×
// 5000 ECGs (uploaded before the timer starts) analysed by the server's own job runners
// (APP_ECG_WORKERS, default one per CPU): claim, read of the packed signal, the analyses,
// the results and the job's completion. ns/op is per ECG, with the workers running in
// parallel; the database's own CPU time is not in it.
func BenchmarkECGAnalysisPipeline(b *testing.B) {
	s := newStack(b, mysqlDB, cheapHashing)
	a := s.signup(b)
	db, err := sql.Open("mysql", s.cfg.Database.DSN)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	b.StopTimer()
	for i := range b.N {
		expectStatus(b, s.serve(http.MethodPost, "/api/v1/ecgs", a.token, ecgBody(fmt.Sprintf("r%d", i))), http.StatusAccepted)
	}
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan error, 1)
	b.StartTimer()
	go func() { done <- s.srv.Jobs.Run(ctx) }()
	for {
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM ecgs WHERE status = 'pending'").Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
