package storage

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill the server when the test binary dies, however it dies.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
