//go:build !race

package ecghttp

// raceEnabled: the race detector drops pooled objects at random, so allocation counts vary.
const raceEnabled = false
