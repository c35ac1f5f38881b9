package ecg

import (
	"strconv"

	"github.com/acme/postsvc/domain"
)

// The ECG context's failures; each describes itself (kind, stable code, message).
var (
	// ErrNotFound: no such ECG for this owner. Another user's ECG answers the same, so ids
	// cannot be probed.
	ErrNotFound = domain.NewError(domain.KindNotFound, "ecg_not_found", "There is no such ECG.")
	// ErrExists: the owner already has an ECG with this id and different content. A retried
	// upload with the same content is not an error (the stored ECG is returned).
	ErrExists = domain.NewError(domain.KindConflict, "ecg_exists",
		"An ECG with this id already exists with different content; nothing was changed.")
	// ErrQuotaExceeded: storing the upload would take the owner past their ECG storage quota
	// (the packed samples of all their ECGs). A retried upload of an ECG already stored is not
	// refused: it stores nothing new.
	ErrQuotaExceeded = domain.NewError(domain.KindForbidden, "quota_exceeded",
		"Storing this ECG would exceed your ECG storage quota; delete some ECGs first. Nothing was stored.")
)

// LeadField names a lead's field in validation errors: leads[3].name.
func LeadField(lead int, field string) string {
	return "leads[" + strconv.Itoa(lead) + "]." + field
}

// SampleError is the validation error of one sample: it names the lead (its position and,
// when known, its name) and the sample's index, so a client can find it in a 60,000-sample
// document.
func SampleError(lead int, name string, index int, problem string) error {
	field := LeadField(lead, "signal["+strconv.Itoa(index)+"]")
	msg := problem
	if name != "" {
		msg += " (lead " + strconv.Quote(name) + ")"
	}
	return domain.Invalid(field, msg)
}
