package multiinstance_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/internal/pgxbound"
	"github.com/fhirware/smart/internal/testservers"
	"github.com/fhirware/smart/sessions"
	"github.com/fhirware/smart/sessions/goredislock"
	"github.com/fhirware/smart/sessions/pgxlock"
	"github.com/fhirware/smart/sessions/storagetest"
)

// The store stops answering, behind a TCP proxy that passes nothing: with
// its connections kept up (frozen, like a Redis stopped with SIGSTOP) or
// dropped and new ones left unanswered (stalled). Every request, on
// every instance, is answered 503 within the store timeout instead of
// waiting, and once the store answers again the same launch works, with
// no restart. Only a generous upper bound (three times the timeout) is
// put on how long a request takes: machines are noisy.
func TestHungStoreFailsFast(t *testing.T) {
	t.Parallel()
	forEachHang(t, testHungStore)
}

// forEachHang runs test once per backend and way of hanging the proxy in
// front of it, in parallel.
func forEachHang(t *testing.T, test func(t *testing.T, be backend, hang func(*testservers.TCPProxy))) {
	hangs := []struct {
		name string
		hang func(*testservers.TCPProxy)
	}{
		{"frozen", (*testservers.TCPProxy).Freeze},
		{"stalled", (*testservers.TCPProxy).Stall},
	}
	for _, be := range backends() {
		for _, h := range hangs {
			t.Run(be.name+"/"+h.name, func(t *testing.T) {
				t.Parallel()
				test(t, be, h.hang)
			})
		}
	}
}

// hungBound is the most a request may take while a server hangs: three
// times the store timeout, which bounds each store and Locker call.
const hungBound = 3 * sessions.DefaultStoreTimeout

// getHung makes a request while a server hangs and fails the test unless
// it is answered with want within hungBound.
func (c *cluster) getHung(u string, want int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), hungBound)
	defer cancel()
	start := time.Now()
	res, err := c.get(ctx, u)
	c.t.Logf("with the server hung: %d in %v", res.status, time.Since(start).Round(time.Millisecond))
	if err != nil {
		c.t.Fatalf("with the server hung, a request did not return within %v: %v", hungBound, err)
	}
	if res.status != want {
		c.t.Fatalf("with the server hung, instance %s answered %d %.200q, want %d", res.instance, res.status, res.body, want)
	}
}

func testHungStore(t *testing.T, be backend, hang func(*testservers.TCPProxy)) {
	proxied, proxy := hungBackend(t, be, false)
	c := newCluster(t, proxied, clusterOptions{})
	handle := c.launch("pat-1")
	c.mustGet(c.pageURL(handle), http.StatusOK)

	hang(proxy)
	for _, u := range []string{
		c.pageURL(handle), // the scs session, then the launch record
		c.pageURL(""),     // the browser's launch list too
		c.ehr.EHRLaunchURL(c.proxy.URL+"/fhir/launch", smarttest.LaunchContext{Patient: "pat-2"}), // a new pending launch
		c.pageURL(handle), // again, on the next instance
	} {
		c.getHung(u, http.StatusServiceUnavailable)
	}

	proxy.Restore()
	for range len(c.insts) { // every instance recovers
		c.mustGet(c.pageURL(handle), http.StatusOK)
	}
}

// The Locker alone stops answering (a lock server of its own, or the
// locker's connections), while the store serves. The session store comes
// first on every request, so only here are the Locker's own calls put to
// the test: each request that takes a lock (a callback's take of its
// pending launch, a launch's change to the browser's list of pending
// launches, a token refresh) is answered 503 within the store timeout,
// which the adapters put on every call to Config.Locker, while the ready
// path of a fresh token, which takes no lock, still serves. Once the
// Locker answers again, a new browser launches and reads on every
// instance. (A lock whose command the frozen proxy delivers late is held
// until its time-to-live runs out, so the browser that met the hang is
// not used again.)
func TestHungLockerFailsFast(t *testing.T) {
	t.Parallel()
	forEachHang(t, testHungLocker)
}

func testHungLocker(t *testing.T, be backend, hang func(*testservers.TCPProxy)) {
	proxied, proxy := hungBackend(t, be, true)
	c := newCluster(t, proxied, clusterOptions{})
	handle := c.launch("pat-1")
	authorize, _ := c.launchStart("pat-2")
	callback := c.authorize(authorize)

	hang(proxy)
	c.getHung(c.pageURL(handle), http.StatusOK)                               // no lock: the token is fresh
	c.getHung(callback, http.StatusServiceUnavailable)                        // the take of the pending launch
	c.getHung(c.launchURL("pat-3"), http.StatusServiceUnavailable)            // the list of pending launches
	c.clock.Advance(10 * time.Minute)                                         // the access token expires
	c.getHung(c.pageURL(handle, "read", "no"), http.StatusServiceUnavailable) // the refresh
	if n := c.ehr.Count(smarttest.EndpointTokenCode); n != 1 {
		t.Errorf("%d code exchanges; want 1, the first launch's: none under a lock that was not taken", n)
	}

	proxy.Restore()
	c.newBrowser()
	h := c.launch("pat-3")
	for range len(c.insts) {
		if res := c.mustGet(c.pageURL(h), http.StatusOK); !strings.HasPrefix(res.body, "patient=pat-3 ") {
			t.Fatalf("after the Locker came back, the page on %s: %q", res.instance, res.body)
		}
	}
}

// hungBackend is be with its clients connected through a TCP proxy the
// test can stall: the store's and the Locker's, or, with lockerOnly, the
// Locker's alone (the store's connect directly). They are configured as
// the examples configure theirs: go-redis with ContextTimeoutEnabled, so
// the store timeout's deadline reaches the connection, and pgx with a
// deadline at every write (pgxstore passes pgx no context).
func hungBackend(t *testing.T, be backend, lockerOnly bool) (backend, *testservers.TCPProxy) {
	t.Helper()
	switch be.name {
	case "Redis":
		addr := testservers.RedisAddr(t)
		proxy := testservers.NewTCPProxy(t, addr)
		dial := func(t *testing.T, addr string) *redis.Client {
			client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
			t.Cleanup(func() { client.Close() })
			return client
		}
		be.connect = func(t *testing.T, prefix string) (scs.Store, core.Locker) {
			locks := dial(t, proxy.Addr())
			store := locks
			if lockerOnly {
				store = dial(t, addr)
			}
			return underPrefix(goredisstore.New(store), prefix), storagetest.PrefixedLocker(goredislock.New(locks), prefix)
		}
		return be, proxy
	case "PostgreSQL":
		url := testservers.PostgresURL(t)
		testservers.PgPool(t, url) // creates the tables
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		proxy := testservers.NewTCPProxy(t, testservers.PgAddr(cfg))
		dial := func(t *testing.T, through *testservers.TCPProxy) *pgxpool.Pool {
			cfg, _ := pgxpool.ParseConfig(url)
			if through != nil {
				host, port, _ := net.SplitHostPort(through.Addr())
				p, _ := strconv.Atoi(port)
				cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Fallbacks = host, uint16(p), nil
			}
			pgxbound.Apply(cfg, sessions.DefaultStoreTimeout)
			pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			return pool
		}
		be.connect = func(t *testing.T, prefix string) (scs.Store, core.Locker) {
			locks := dial(t, proxy)
			store := locks
			if lockerOnly {
				store = dial(t, nil)
			}
			return underPrefix(pgxstore.NewWithCleanupInterval(store, 0), prefix), storagetest.PrefixedLocker(pgxlock.New(locks), prefix)
		}
		return be, proxy
	}
	t.Fatalf("no proxied %s", be.name)
	return be, nil
}
