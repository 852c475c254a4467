// Command loadtest runs complete SMART flows against an example app in its
// own process and reports throughput, latency and the app's CPU and memory.
//
//	go run ./internal/loadtest -example chi -flows 1000 -concurrency 16
//
// It builds ./examples/<example>, starts it as a separate process pointed at
// a sandbox EHR (core/smarttest) that runs inside this program, and drives N
// flows, each in a fresh cookie jar: EHR launch → authorize → callback → app
// page (which reads the patient, observations and conditions through the
// ReadyClient) → one API call. Then, with -hammer, it sends that many
// requests to /fhir/api/context spread over the flows' sessions, to show the
// steady-state cost of the ready path per request, and as many to /healthz
// (no session, no launch) over the same clients, and reports the ratio of
// the two throughputs. With -launches, it first runs that many launches
// one after another, each launch → authorize → callback → one FHIR read
// (/fhir/api/patient, without the app page), and reports the app's CPU per
// launch.
//
// With -peer-cmd, it starts that command instead of an example: another
// SMART library's app that serves the same paths (/fhir/launch,
// /fhir/callback, /fhir/api/patient, /healthz), given SMART_ADDR,
// SMART_ISSUER and SMART_CLIENT_ID in its environment (as the examples
// read them), whose callback redirects to a URL with a launch_handle
// parameter, as the examples' does. It runs only the launches, to measure
// that app's CPU per launch beside ours:
//
//	go run ./internal/loadtest -peer-cmd 'node internal/loadtest/peer/fhirclient/server.js' -launches 1000
//
// The app's CPU time comes from /proc/<pid>/stat (user + system) and its
// peak RSS from VmHWM in /proc/<pid>/status, so it runs on Linux only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/internal/browsertest"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

type options struct {
	example     string
	flows       int
	concurrency int
	hammer      int
	launches    int
	store       string
	peerCmd     string
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var o options
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.StringVar(&o.example, "example", "chi", "which example app to run: chi, echo or gin")
	fs.IntVar(&o.flows, "flows", 1000, "complete launch flows to run")
	fs.IntVar(&o.concurrency, "concurrency", 16, "flows (and hammer requests) in flight at once")
	fs.IntVar(&o.hammer, "hammer", 20000, "requests to /fhir/api/context after the flows (0: none)")
	fs.IntVar(&o.launches, "launches", 200, "sequential launches (launch, callback, one FHIR read) to measure the app's CPU per launch (0: none)")
	fs.StringVar(&o.store, "store", "memory", "the app's -store flag: memory, redis://… or postgres://…")
	fs.StringVar(&o.peerCmd, "peer-cmd", "", "run this `command` (split at spaces, run without a shell, so that its CPU is its own) as the app instead of an example, and only the launches")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.flows < 1 || o.concurrency < 1 {
		return errors.New("-flows and -concurrency must be positive")
	}
	if o.peerCmd != "" && o.launches < 1 {
		return errors.New("-peer-cmd runs only the launches: -launches must be positive")
	}

	ehr := smarttest.NewServer(smarttest.Options{})
	defer ehr.Close()
	ehr.RegisterClient(smarttest.Client{ID: "loadtest"})

	app, err := startApp(ctx, o, ehr.FHIRBaseURL())
	if err != nil {
		return err
	}
	defer app.stop()
	if o.peerCmd != "" {
		fmt.Fprintf(out, "app: %s, pid %d, %s; sandbox EHR in the load process at %s\n",
			o.peerCmd, app.cmd.Process.Pid, app.base, ehr.URL())
	} else {
		fmt.Fprintf(out, "app: examples/%s, pid %d, %s, store %s; sandbox EHR in the load process at %s\n",
			o.example, app.cmd.Process.Pid, app.base, o.store, ehr.URL())
	}
	fmt.Fprintf(out, "machine: %d CPUs; the app, this load generator and the sandbox EHR share them\n\n", numCPU())

	browser := browsertest.New() // each flow a session of its own, over these connections
	defer browser.CloseIdleConnections()
	patients := ehr.Patients()
	if o.launches > 0 {
		tok0 := ehr.Count(smarttest.EndpointToken)
		fhir0 := ehr.Count(smarttest.EndpointFHIR)
		disc0 := ehr.Count(smarttest.EndpointDiscovery)
		cpu0, err := app.cpu()
		if err != nil {
			return err
		}
		lat, err := parallel(o.launches, 1, func(i int) error {
			return launchOnly(ctx, browser, app.base, ehr, patients[i%len(patients)].ID)
		})
		if err != nil {
			return err
		}
		cpu1, _ := app.cpu()
		fmt.Fprintf(out, "launches: %d one after another (launch, authorize, callback, one FHIR read; no app page)\n", o.launches)
		fmt.Fprintf(out, "  app CPU: %.2f ms per launch   wall p50 %s   p99 %s\n",
			(cpu1-cpu0)/float64(o.launches)*1000, pct(lat, 50), pct(lat, 99))
		fmt.Fprintf(out, "  EHR calls per launch: token %.2f, FHIR %.2f, discovery %.2f\n\n",
			float64(ehr.Count(smarttest.EndpointToken)-tok0)/float64(o.launches),
			float64(ehr.Count(smarttest.EndpointFHIR)-fhir0)/float64(o.launches),
			float64(ehr.Count(smarttest.EndpointDiscovery)-disc0)/float64(o.launches))
	}
	if o.peerCmd != "" {
		return nil // a peer serves the launches' paths, not the app page or the ready path's API
	}
	sessions := make([]session, o.flows)
	tok0, fhir0 := ehr.Count(smarttest.EndpointToken), ehr.Count(smarttest.EndpointFHIR)
	cpu0, err := app.cpu()
	if err != nil {
		return err
	}
	start := time.Now()
	lat, err := parallel(o.flows, o.concurrency, func(i int) error {
		p := patients[i%len(patients)]
		s, err := flow(ctx, browser, app.base, ehr, p.ID)
		sessions[i] = s
		return err
	})
	elapsed := time.Since(start)
	if err != nil {
		return err
	}
	cpu1, _ := app.cpu()
	rss, _ := app.peakRSS()
	fmt.Fprintf(out, "flows: %d complete flows (launch, authorize, callback, app page, API call), %d at once\n", o.flows, o.concurrency)
	fmt.Fprintf(out, "  %.0f flows/s   p50 %s   p99 %s   max %s\n", float64(o.flows)/elapsed.Seconds(), pct(lat, 50), pct(lat, 99), pct(lat, 100))
	fmt.Fprintf(out, "  app CPU: %.2f s per 1,000 flows   app peak RSS: %.1f MiB\n", (cpu1-cpu0)/float64(o.flows)*1000, float64(rss)/(1<<20))
	fmt.Fprintf(out, "  EHR calls per flow: token %.2f, FHIR %.2f; discovery %d and JWKS %d in all\n\n",
		float64(ehr.Count(smarttest.EndpointToken)-tok0)/float64(o.flows), float64(ehr.Count(smarttest.EndpointFHIR)-fhir0)/float64(o.flows),
		ehr.Count(smarttest.EndpointDiscovery), ehr.Count(smarttest.EndpointJWKS))

	if o.hammer > 0 {
		cpu0, _ := app.cpu()
		start := time.Now()
		lat, err := parallel(o.hammer, o.concurrency, func(i int) error {
			return sessions[i%len(sessions)].context()
		})
		elapsed := time.Since(start)
		if err != nil {
			return err
		}
		cpu1, _ := app.cpu()
		rss, _ := app.peakRSS()
		fmt.Fprintf(out, "steady state: %d requests to /fhir/api/context over %d sessions, %d at once\n", o.hammer, len(sessions), o.concurrency)
		fmt.Fprintf(out, "  %.0f req/s   p50 %s   p99 %s   max %s\n", float64(o.hammer)/elapsed.Seconds(), pct(lat, 50), pct(lat, 99), pct(lat, 100))
		fmt.Fprintf(out, "  app CPU: %.1f µs per request   app peak RSS: %.1f MiB\n", (cpu1-cpu0)/float64(o.hammer)*1e6, float64(rss)/(1<<20))
		ready := float64(o.hammer) / elapsed.Seconds()

		cpu0, _ = app.cpu()
		start = time.Now()
		lat, err = parallel(o.hammer, o.concurrency, func(i int) error {
			return sessions[i%len(sessions)].healthz()
		})
		elapsed = time.Since(start)
		if err != nil {
			return err
		}
		cpu1, _ = app.cpu()
		health := float64(o.hammer) / elapsed.Seconds()
		fmt.Fprintf(out, "baseline: %d requests to /healthz (no session) over the same clients, %d at once\n", o.hammer, o.concurrency)
		fmt.Fprintf(out, "  %.0f req/s   p50 %s   p99 %s   max %s\n", health, pct(lat, 50), pct(lat, 99), pct(lat, 100))
		fmt.Fprintf(out, "  app CPU: %.1f µs per request\n", (cpu1-cpu0)/float64(o.hammer)*1e6)
		fmt.Fprintf(out, "  /fhir/api/context serves %.2f of /healthz's throughput\n", ready/health)
	}
	return nil
}

// launchOnly runs one EHR launch in a fresh session of browser, to the
// callback's redirect, without the app page, and one API call that reads
// the patient from the EHR.
func launchOnly(ctx context.Context, browser *http.Client, base string, ehr *smarttest.Server, patient string) error {
	s, err := launch(ctx, browser, base, ehr, patient)
	if err != nil {
		return err
	}
	return s.get("/fhir/api/patient", `"`+patient+`"`)
}

// flow runs one EHR launch in a fresh session of browser, to the app page,
// and one API call.
func flow(ctx context.Context, browser *http.Client, base string, ehr *smarttest.Server, patient string) (session, error) {
	s, err := launch(ctx, browser, base, ehr, patient)
	if err != nil {
		return s, err
	}
	if err := s.fetch(s.page, ""); err != nil {
		return s, fmt.Errorf("app page: %w", err)
	}
	return s, s.get("/fhir/api/patient", `"`+patient+`"`)
}

// session is one finished launch: its browser, the app page the callback
// sent it to, and the launch handle.
type session struct {
	client *http.Client
	base   string
	page   string
	handle string
}

// launch runs an EHR launch for patient in a fresh session of browser, to
// the callback's redirect, and returns the session.
func launch(ctx context.Context, browser *http.Client, base string, ehr *smarttest.Server, patient string) (session, error) {
	c := browsertest.Fresh(browser)
	page, err := browsertest.Launch(ctx, c, ehr.EHRLaunchURL(base+"/fhir/launch", smarttest.LaunchContext{
		Patient: patient, FHIRUser: "Practitioner/prac-1"}))
	if err != nil {
		return session{}, err
	}
	return session{client: c, base: base, page: page.String(), handle: page.Query().Get(adapters.HandleParam)}, nil
}

func (s session) context() error { return s.get("/fhir/api/context", `"patient"`) }

func (s session) healthz() error { return s.get("/healthz", "ok") }

// get requests an app path with the handle and checks the body holds want.
func (s session) get(path, want string) error {
	if err := s.fetch(s.base+path+"?"+adapters.HandleParam+"="+s.handle, want); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// fetch requests u and checks the answer is 200 with a body that holds
// want.
func (s session) fetch(u, want string) error {
	resp, err := s.client.Get(u)
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		err = ue.Err // without the URL, which holds the handle
	}
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
		return fmt.Errorf("%d: %.200s", resp.StatusCode, body)
	}
	return nil
}

// parallel runs n jobs, conc at a time, and returns each job's duration.
func parallel(n, conc int, job func(i int) error) ([]time.Duration, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t := time.Now()
				if err := job(i); err != nil {
					once.Do(func() { first = fmt.Errorf("job %d: %w", i, err) })
					next.Store(int64(n))
					return
				}
				lat[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	return lat, first
}

func pct(lat []time.Duration, p int) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	i = min(max(i-1, 0), len(s)-1)
	return s[i].Round(10 * time.Microsecond)
}

// app is the example app's process.
type app struct {
	cmd  *exec.Cmd
	base string
	dir  string
}

// startApp builds and starts the example o names, or starts o.peerCmd,
// listening on a free port of 127.0.0.1 with issuer as its only issuer.
func startApp(ctx context.Context, o options, issuer string) (*app, error) {
	dir, err := os.MkdirTemp("", "smart-loadtest-")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	var cmd *exec.Cmd
	if args := strings.Fields(o.peerCmd); len(args) > 0 {
		cmd = exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "SMART_ADDR="+addr, "SMART_ISSUER="+issuer, "SMART_CLIENT_ID=loadtest")
	} else {
		bin := filepath.Join(dir, "app")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/"+o.example)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("building examples/%s (run from the repository root): %w", o.example, err)
		}
		cmd = exec.CommandContext(ctx, bin, "-addr", addr, "-issuer", issuer, "-client-id", "loadtest",
			"-insecure-http", "-store", o.store)
	}
	logf, _ := os.Create(filepath.Join(dir, "app.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	a := &app{cmd: cmd, base: "http://" + addr, dir: dir}
	for i := 0; ; i++ {
		resp, err := http.Get(a.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return a, nil
			}
		}
		if i == 100 {
			log, _ := os.ReadFile(logf.Name())
			a.stop() // removes the log
			return nil, fmt.Errorf("the app did not answer /healthz in 10 s; the end of its log:\n%s", log[max(len(log)-2000, 0):])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (a *app) stop() {
	a.cmd.Process.Kill()
	a.cmd.Wait()
	os.RemoveAll(a.dir)
}

// cpu returns the process's user + system CPU seconds.
func (a *app) cpu() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", a.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil // USER_HZ is 100 on Linux
}

// peakRSS returns the process's peak resident set size in bytes.
func (a *app) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM")
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}
