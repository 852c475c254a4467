package benchmarks

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/redis/go-redis/v9"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/internal/browsertest"
	"github.com/fhirware/smart/internal/testservers"
	"github.com/fhirware/smart/sessions"
)

// The ready path's round trips to Redis, counted on the wire rather than
// timed: a gate between the app and a real Redis holds Redis's answers
// while the request runs, so every command that reaches Redis before the
// gate opens was sent without waiting for another's answer. One round trip
// of latency means that all of the request's commands are of that kind.
func TestReadyPathRoundTrips(t *testing.T) {
	t.Parallel()
	env := newRoundTripApp(t)
	handle, browser := env.launch(t, "pat-1")

	t.Run("with a handle", func(t *testing.T) {
		first, all, status, body := env.serve(t, browser, env.page(handle), 2)
		want := []string{"GET session", "GET launch record"}
		if !sameCommands(first, want) || len(all) != len(first) {
			t.Fatalf("the ready request sent %q before any answer, and %q in all; want %q, all before any answer: one round trip", first, all, want)
		}
		if status != http.StatusOK || body != "pat-1" {
			t.Fatalf("status %d, body %q; want 200, pat-1", status, body)
		}
	})

	t.Run("without a handle", func(t *testing.T) {
		// The browser's most recent launch: the first request with this
		// cookie reads the session, then the record it names; the App
		// remembers the handle, and the next request reads both at once.
		_, browser := env.launch(t, "pat-3")
		first, all, status, body := env.serve(t, browser, env.page(""), 1)
		if !slices.Equal(all, []string{"GET session", "GET launch record"}) || len(first) != 1 || status != http.StatusOK || body != "pat-3" {
			t.Fatalf("first request: %q before any answer, %q in all, %d %q", first, all, status, body)
		}
		first, all, status, body = env.serve(t, browser, env.page(""), 2)
		want := []string{"GET session", "GET launch record"}
		if !sameCommands(first, want) || len(all) != len(first) {
			t.Fatalf("the ready request sent %q before any answer, and %q in all; want %q, all before any answer: one round trip", first, all, want)
		}
		if status != http.StatusOK || body != "pat-3" {
			t.Fatalf("status %d, body %q; want 200, pat-3", status, body)
		}
	})

	t.Run("another browser's handle", func(t *testing.T) {
		// The record is read at once, as for its own browser, and refused
		// once the session shows it belongs to another.
		_, other := env.launch(t, "pat-2")
		first, all, status, _ := env.serve(t, other, env.page(handle), 2)
		if !sameCommands(first, []string{"GET session", "GET launch record"}) || len(all) != len(first) {
			t.Fatalf("sent %q before any answer, %q in all", first, all)
		}
		if status != http.StatusUnauthorized {
			t.Fatalf("status %d; want 401", status)
		}
	})
}

// sameCommands reports whether got holds the commands of want, in any
// order (the two reads race).
func sameCommands(got, want []string) bool {
	got, want = slices.Clone(got), slices.Clone(want)
	slices.Sort(got)
	slices.Sort(want)
	return slices.Equal(got, want)
}

type roundTripApp struct {
	ehr    *smarttest.Server
	gate   *testservers.RedisGate
	client *redis.Client
	base   string
	prefix string // the store's key prefix
}

// newRoundTripApp serves a chiware app whose sessions and records are in
// Redis behind a gate, on the session manager the library makes.
func newRoundTripApp(t *testing.T) *roundTripApp {
	addr := testservers.RedisAddr(t)
	prefix := testservers.UniquePrefix(t)
	testservers.DeleteRedisKeys(t, addr, prefix+"*")
	gate := testservers.NewRedisGate(t, addr)
	client := testservers.GoredisClient(t, gate.Addr())
	ehr, base, _ := readyApp(t, goredisstore.NewWithPrefix(client, prefix), func(c *core.Config) {
		c.StoreKeys = []core.Secret{core.Secret(base64.StdEncoding.EncodeToString(make([]byte, 32)))}
	})
	return &roundTripApp{ehr: ehr, gate: gate, client: client, base: base, prefix: prefix}
}

// launch makes a launch in a new browser, and returns its handle and the
// browser.
func (a *roundTripApp) launch(t *testing.T, patient string) (string, *http.Client) {
	browser := browsertest.New()
	t.Cleanup(browser.CloseIdleConnections)
	launch := a.ehr.EHRLaunchURL(a.base+"/fhir/launch", smarttest.LaunchContext{Patient: patient})
	page, err := browsertest.Launch(t.Context(), browser, launch)
	if err != nil {
		t.Fatal(err)
	}
	return page.Query().Get(adapters.HandleParam), browser
}

// page is the app page's URL, with handle when it is not empty.
func (a *roundTripApp) page(handle string) string {
	if handle == "" {
		return a.base + "/fhir/"
	}
	return a.base + "/fhir/?" + url.Values{adapters.HandleParam: {handle}}.Encode()
}

// serve makes one request of browser to u with Redis's answers held until
// first commands have reached Redis (or the request has ended, or 10
// seconds have passed: a bound on the wait, not a measure), and returns the
// commands that reached Redis before any answer, all the request's
// commands, each named by what it reads or writes, and the answer.
func (a *roundTripApp) serve(t *testing.T, browser *http.Client, u string, first int) (before, all []string, status int, body string) {
	t.Helper()
	a.warmPool(t, 4)
	mark := len(a.gate.Commands())
	a.gate.Hold()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel()
		var res *http.Response
		if res, err = browser.Get(u); err != nil {
			return
		}
		defer res.Body.Close()
		var b []byte
		b, err = io.ReadAll(res.Body)
		status, body = res.StatusCode, string(b)
	}()
	a.gate.WaitCommands(ctx, mark+first)
	before = a.names(a.gate.Commands()[mark:])
	a.gate.Release()
	<-done
	if err != nil {
		t.Fatal(err)
	}
	return before, a.names(a.gate.Commands()[mark:]), status, body
}

// warmPool leaves n connections idle in the client's pool, so that
// concurrent commands of a request need not dial (go-redis's handshake
// would wait for the held answers).
func (a *roundTripApp) warmPool(t *testing.T, n int) {
	ctx := context.Background()
	conns := make([]*redis.Conn, n)
	for i := range conns {
		conns[i] = a.client.Conn()
		if err := conns[i].Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

// names names each command by what it touches, without the key (a session
// token's hash, a launch handle).
func (a *roundTripApp) names(commands []string) []string {
	var out []string
	for _, c := range commands {
		verb, key, _ := strings.Cut(c, " ")
		key = strings.TrimPrefix(key, a.prefix)
		switch {
		case verb == "PING":
			continue
		case strings.HasPrefix(key, sessions.DefaultKeyPrefix+"launch:"):
			out = append(out, verb+" launch record")
		case strings.HasPrefix(key, sessions.DefaultKeyPrefix):
			out = append(out, verb+" "+strings.SplitN(strings.TrimPrefix(key, sessions.DefaultKeyPrefix), ":", 2)[0])
		default:
			out = append(out, verb+" session")
		}
	}
	return out
}
