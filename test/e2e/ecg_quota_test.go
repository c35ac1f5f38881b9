package e2e

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/acme/postsvc/domain/ecg/ecg"
)

// packedSize is what the service stores of u's samples, and what the ECG quota counts: each
// lead's samples packed (domain/ecg/ecg/block.go), a block of at most ecg.MaxBlockSamples at a
// time.
func packedSize(u ecgUpload) int64 {
	var n int64
	for _, l := range u.Leads {
		for rest := l.Signal; len(rest) > 0; {
			k := min(len(rest), ecg.MaxBlockSamples)
			n += int64(len(ecg.AppendPacked(nil, rest[:k])))
			rest = rest[k:]
		}
	}
	return n
}

// TestECGQuotaHoldsUnderConcurrentUploads: one user sends 12 uploads at once, each of the
// same size, with APP_ECG_QUOTA_BYTES room for four and a half of them. Exactly four are
// stored (202) and the others are 403 quota_exceeded with nothing stored: the uploads commit
// one at a time under the owner's lock, so together they never pass the quota, and none is
// refused that fitted. A retry of a stored one is still 200; after a DELETE the user can
// upload again, up to the quota.
func TestECGQuotaHoldsUnderConcurrentUploads(t *testing.T) {
	t.Parallel()
	const uploads = 12
	shape := makeECG("", 3, 2000, 41)
	size := packedSize(shape)
	quota := 4*size + size/2
	withID := func(i int) ecgUpload {
		u := shape
		u.ID = "quota-" + strconv.Itoa(i)
		return u
	}
	ecgBackends(t, []string{"APP_ECG_QUOTA_BYTES=" + strconv.FormatInt(quota, 10)}, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("ecg-quota"))
		// Another user shares the server and is not affected.
		b := s.signup(uniqueEmail("ecg-quota-other"))
		s.uploadECG(b.Access, withID(0), http.StatusAccepted)

		start := make(chan struct{})
		answers := make([]response, uploads)
		errs := make([]error, uploads)
		var wg sync.WaitGroup
		for i := range uploads {
			wg.Go(func() {
				body := withID(i).JSON()
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				answers[i], errs[i] = s.try(ctx, nil, "POST", "/api/v1/ecgs", a.Access, bytes.NewReader(body), nil)
			})
		}
		close(start)
		wg.Wait()
		var stored, refused []int
		for i, r := range answers {
			switch {
			case errs[i] != nil:
				t.Fatalf("upload %d: %v", i, errs[i])
			case r.Status == http.StatusAccepted:
				stored = append(stored, i)
			case r.Status == http.StatusForbidden && problemCode(r) == "quota_exceeded":
				refused = append(refused, i)
			default:
				t.Fatalf("upload %d: status %d (code %q), want 202 or 403 quota_exceeded: %s", i, r.Status, problemCode(r), truncate(r.Body))
			}
		}
		t.Logf("%d uploads of %d bytes each, quota %d: %d stored, %d refused", uploads, size, quota, len(stored), len(refused))
		if int64(len(stored))*size > quota {
			t.Fatalf("%d uploads of %d bytes stored: %d bytes, past the quota of %d", len(stored), size, int64(len(stored))*size, quota)
		}
		if len(stored) != 4 {
			t.Fatalf("%d uploads stored, want 4: the quota has room for four", len(stored))
		}
		expectProblem(t, answers[refused[0]], http.StatusForbidden, "quota_exceeded")

		// What the API and the database hold: the four, and their bytes.
		if got := s.listECGs(a.Access, 0); len(got) != len(stored) {
			t.Fatalf("the user lists %d ECGs, want %d", len(got), len(stored))
		}
		for _, i := range refused {
			expectProblem(t, s.do("GET", ecgPath(withID(i).ID), a.Access, nil), http.StatusNotFound, "ecg_not_found")
		}
		db := s.openDB()
		if n := count(t, db, "SELECT COALESCE(SUM(data_bytes), 0) FROM ecgs WHERE owner_id = ?", a.ID); int64(n) != int64(len(stored))*size {
			t.Fatalf("the user's ECGs record %d bytes, want %d", n, int64(len(stored))*size)
		}
		blocks := count(t, db, "SELECT COALESCE(SUM(data_bytes), 0) FROM ecg_blocks WHERE owner_id = ?", a.ID)
		if int64(blocks) != int64(len(stored))*size {
			t.Fatalf("the user's blocks hold %d bytes, want %d: a refused upload left blocks", blocks, int64(len(stored))*size)
		}

		// A retry of a stored upload stores nothing new, and is not refused.
		s.uploadECG(a.Access, withID(stored[0]), http.StatusOK)
		// Deleting one frees its bytes: one more fits, and then no more.
		expect(t, s.do("DELETE", ecgPath(withID(stored[1]).ID), a.Access, nil), http.StatusNoContent)
		s.uploadECG(a.Access, withID(refused[0]), http.StatusAccepted)
		_, r := s.uploadECG(a.Access, withID(refused[1]), http.StatusForbidden)
		expectProblem(t, r, http.StatusForbidden, "quota_exceeded")
		ids := []string{}
		for _, e := range s.listECGs(a.Access, 0) {
			ids = append(ids, e.ID)
		}
		slices.Sort(ids)
		want := []string{withID(stored[0]).ID, withID(stored[2]).ID, withID(stored[3]).ID, withID(refused[0]).ID}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Fatalf("the user's ECGs are %v, want %v", ids, want)
		}
		// The other user's ECG was never counted against this one, nor the reverse.
		s.uploadECG(b.Access, withID(1), http.StatusAccepted)
		if n := len(s.listECGs(b.Access, 0)); n != 2 {
			t.Fatalf("the other user lists %d ECGs, want 2", n)
		}
	})
}

// TestECGOwnerAtTheQuota: a user whose ECGs take exactly APP_ECG_QUOTA_BYTES is refused from
// the start of an upload (nothing is spooled; the id, read first, is not stored: 403
// quota_exceeded), with and without an id, while a retry of the stored ECG is still 200 and
// other content under its id 409; after a DELETE the user can upload again.
func TestECGOwnerAtTheQuota(t *testing.T) {
	t.Parallel()
	first := makeECG("full-0", 2, 1500, 43)
	quota := packedSize(first)
	ecgBackends(t, []string{"APP_ECG_QUOTA_BYTES=" + strconv.FormatInt(quota, 10)}, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("ecg-full"))
		s.uploadECG(a.Access, first, http.StatusAccepted)
		tiny := makeECG("full-1", 1, 1, 44)
		_, r := s.uploadECG(a.Access, tiny, http.StatusForbidden)
		expectProblem(t, r, http.StatusForbidden, "quota_exceeded")
		tiny.ID = ""
		_, r = s.uploadECG(a.Access, tiny, http.StatusForbidden)
		expectProblem(t, r, http.StatusForbidden, "quota_exceeded")
		s.uploadECG(a.Access, first, http.StatusOK)
		other := makeECG("full-0", 1, 1, 45)
		_, r = s.uploadECG(a.Access, other, http.StatusConflict)
		expectProblem(t, r, http.StatusConflict, "ecg_exists")
		if n := len(s.listECGs(a.Access, 0)); n != 1 {
			t.Fatalf("the user lists %d ECGs, want 1", n)
		}
		expect(t, s.do("DELETE", ecgPath(first.ID), a.Access, nil), http.StatusNoContent)
		s.uploadECG(a.Access, makeECG("full-1", 1, 1, 44), http.StatusAccepted)
	})
}
