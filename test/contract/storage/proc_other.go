//go:build !linux

package storage

import "os/exec"

// dieWithParent does nothing outside Linux: the server is stopped by Main.
func dieWithParent(*exec.Cmd) {}
