package ecg

// SetSignalBatchBytes makes Signals read storage n bytes at a time, so that tests can read an
// ECG in several reads without storing megabytes; the returned function restores it.
func SetSignalBatchBytes(n int) (restore func()) {
	old := signalBatchBytes
	signalBatchBytes = n
	return func() { signalBatchBytes = old }
}
