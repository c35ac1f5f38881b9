//go:build !race

package httpapi

// allocFactor scales the memory bounds of the tests (2 with the race detector on).
const allocFactor = 1
