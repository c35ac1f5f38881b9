//go:build race

package e2e

// raceEnabled builds the server with the race detector when the suite itself runs with it.
const raceEnabled = true
