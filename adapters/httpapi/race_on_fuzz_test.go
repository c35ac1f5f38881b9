//go:build race

package httpapi

// allocFactor scales the memory bounds of the tests: with the race detector on, the runtime
// counts each allocation of a large object twice in MemStats.TotalAlloc (a 6 MiB buffer shows
// as 12 MiB).
const allocFactor = 2
