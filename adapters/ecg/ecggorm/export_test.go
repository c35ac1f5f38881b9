package ecggorm

// BlocksInRow is how many blocks a stored row holds, for the tests of package ecggorm_test.
func BlocksInRow(lead, seq, samples int, data []byte) int {
	return len(appendRowBlocks(nil, lead, seq, samples, data))
}
