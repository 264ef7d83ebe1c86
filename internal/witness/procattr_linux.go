package witness

import "syscall"

// motoProcAttr puts moto in a process group of its own, so that Stop ends
// it and whatever it spawned, and has Linux end it if the test binary
// dies without calling Stop (a crash, a timeout's kill).
func motoProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
