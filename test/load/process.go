package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a child process serving HTTP on a loopback port: the real server or the HTTP
// ceiling.
type process struct {
	name   string
	cmd    *exec.Cmd
	base   string
	stderr *lockedBuffer
	exited chan struct{}
}

// startProcess runs bin with env (plus PATH and HOME) and waits until GET base+readyPath
// answers 200. The process is killed if ctx ends. Its output is kept (the tail) for error
// messages, and also written to logTo unless that is nil.
func startProcess(ctx context.Context, name, bin string, args, env []string, base, readyPath string, logTo io.Writer) (*process, error) {
	cmd := exec.CommandContext(ctx, bin, args...) //nolint:gosec // G204: the server binary or this runner itself
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	p := &process{name: name, cmd: cmd, base: base, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	var out io.Writer = p.stderr
	if logTo != nil {
		out = io.MultiWriter(p.stderr, logTo)
	}
	cmd.Stdout = out
	cmd.Stderr = out
	// The child gets SIGTERM should the runner die without stopping it (Linux).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	// A cancelled run asks for a graceful stop first, and kills after WaitDelay.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(90 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited during start-up:\n%s", name, p.stderr.String())
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		default:
		}
		if ready(ctx, client, base+readyPath) {
			return p, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("%s not ready within 90s:\n%s", name, p.stderr.String())
}

func ready(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// pid is the child's process id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits up to 30 s for the exit, then kills.
func (p *process) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// freeLoopbackAddr returns 127.0.0.1:<a port free right now>.
func freeLoopbackAddr(ctx context.Context) (string, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// lockedBuffer collects a child's output for error messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Keep the tail only: a long run must not grow this without bound.
	if b.buf.Len() > 1<<20 {
		tail := append([]byte(nil), b.buf.Bytes()[b.buf.Len()-(512<<10):]...)
		b.buf.Reset()
		b.buf.Write(tail)
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail is the last n lines written, for an error that the child's log may explain.
func (b *lockedBuffer) tail(n int) string {
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// memStatus reads VmRSS and VmHWM (peak RSS) of pid from /proc, in bytes.
func memStatus(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		key, value, ok := strings.Cut(s.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(value), "kB")), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse %s: %w", key, err)
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	if rss == 0 {
		return 0, 0, errors.New("no VmRSS in /proc status")
	}
	return rss, hwm, s.Err()
}

// rssSampler tracks the peak RSS of a process during one scenario: it resets the kernel's
// high-water mark (VmHWM) at the start, when the kernel allows it, and also polls VmRSS, so
// the peak is right even where the reset is refused.
type rssSampler struct {
	pid  int
	stop chan struct{}
	done chan struct{}
	peak int64
}

func startRSS(pid int) *rssSampler {
	// Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0 and later).
	_ = os.WriteFile(filepath.Join("/proc", strconv.Itoa(pid), "clear_refs"), []byte("5"), 0)
	r := &rssSampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, _, err := memStatus(pid); err == nil {
				r.peak = max(r.peak, rss)
			}
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
		}
	}()
	return r
}

// finish stops polling and returns the peak RSS seen in bytes.
func (r *rssSampler) finish() int64 {
	close(r.stop)
	<-r.done
	if _, hwm, err := memStatus(r.pid); err == nil {
		r.peak = max(r.peak, hwm)
	}
	return r.peak
}

// clockTick is the unit of the CPU times in /proc (USER_HZ), 100 per second on Linux.
const clockTick = 10 * time.Millisecond

// procCPU returns the user plus system CPU time pid has used ("self" for this process).
func procCPU(pid string) (time.Duration, error) {
	raw, err := os.ReadFile(filepath.Join("/proc", pid, "stat")) //nolint:gosec // G304: a /proc path of a pid
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces; the fields after it are fixed.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	// utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// machineBusy returns the CPU time all cores together have spent on anything but idling.
func machineBusy() (time.Duration, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	if !s.Scan() {
		return 0, errors.New("empty /proc/stat")
	}
	fields := strings.Fields(s.Text())
	if len(fields) < 6 || fields[0] != "cpu" {
		return 0, errors.New("malformed /proc/stat")
	}
	var busy int64
	for i, v := range fields[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		// Fields: user nice system idle iowait irq softirq steal guest guest_nice. Guest time
		// is already counted in user and nice.
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		busy += n
	}
	return time.Duration(busy) * clockTick, nil
}

// cpuMeter measures where CPU time goes during a scenario: the measured processes (the
// server, the servers of the instances scenarios, or the HTTP ceiling), this runner, and
// everything else on the machine (the database above all).
type cpuMeter struct {
	pids                []string
	proc, self, machine time.Duration
}

func startCPU(pid int) cpuMeter {
	if pid == 0 {
		return startCPUs(nil)
	}
	return startCPUs([]int{pid})
}

func startCPUs(pids []int) cpuMeter {
	var m cpuMeter
	for _, pid := range pids {
		m.pids = append(m.pids, strconv.Itoa(pid))
	}
	m.proc = m.procsCPU()
	m.self, _ = procCPU("self")
	m.machine, _ = machineBusy()
	return m
}

// procsCPU is the CPU time the measured processes have used, together.
func (m cpuMeter) procsCPU() time.Duration {
	var sum time.Duration
	for _, pid := range m.pids {
		if p, err := procCPU(pid); err == nil {
			sum += p
		}
	}
	return sum
}

// finish returns the CPU time used since start by the processes, the runner and the machine.
func (m cpuMeter) finish() (proc, self, machine time.Duration) {
	if len(m.pids) > 0 {
		proc = m.procsCPU() - m.proc
	}
	if s, err := procCPU("self"); err == nil {
		self = s - m.self
	}
	if b, err := machineBusy(); err == nil {
		machine = b - m.machine
	}
	return proc, self, machine
}

// backgroundWindow is the least time the machine's background load is measured over: the
// kernel counts CPU time in ticks of 10 ms, so over a few milliseconds one tick reads as
// several cores busy (a settle that ended at once reported 21.92 on two cores).
const backgroundWindow = 3 * time.Second

// coresBusy finishes m, started at start, once at least window has passed since then, and
// returns how many cores the whole machine kept busy on average meanwhile.
func coresBusy(ctx context.Context, m cpuMeter, start time.Time, window time.Duration) float64 {
	if wait := window - time.Since(start); wait > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	_, _, busy := m.finish()
	return busy.Seconds() / time.Since(start).Seconds()
}

// The machine is quiet when fewer than quietCores cores are busy over quietWindow, twice in a
// row. Work that an earlier scenario left behind (the database purging deleted rows, flushing
// pages, a server finishing background jobs) would otherwise land on the first turn of the next
// one, which is always the scenario's and never its ceiling's.
const (
	quietCores   = 0.15
	quietWindow  = 250 * time.Millisecond
	quietTimeout = 20 * time.Second
)

// waitQuiet waits until the machine is quiet, at most quietTimeout. It returns how long it
// waited and whether the machine became quiet.
func waitQuiet(ctx context.Context) (time.Duration, bool) {
	start := time.Now()
	calm := 0
	last, err := machineBusy()
	if err != nil {
		return 0, false
	}
	for time.Since(start) < quietTimeout {
		t := time.NewTimer(quietWindow)
		select {
		case <-ctx.Done():
			t.Stop()
			return time.Since(start), false
		case <-t.C:
		}
		now, err := machineBusy()
		if err != nil {
			return time.Since(start), false
		}
		if float64(now-last)/float64(quietWindow) < quietCores {
			calm++
		} else {
			calm = 0
		}
		last = now
		if calm == 2 {
			return time.Since(start), true
		}
	}
	return time.Since(start), false
}
