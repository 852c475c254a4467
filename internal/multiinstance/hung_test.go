package multiinstance_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
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
				testHungStore(t, be, h.hang)
			})
		}
	}
}

func testHungStore(t *testing.T, be backend, hang func(*testservers.TCPProxy)) {
	proxied, proxy := hungBackend(t, be)
	c := newCluster(t, proxied, clusterOptions{})
	handle := c.launch("pat-1")
	c.mustGet(c.pageURL(handle), http.StatusOK)

	hang(proxy)
	bound := 3 * sessions.DefaultStoreTimeout
	for _, u := range []string{
		c.pageURL(handle), // the scs session, then the launch record
		c.pageURL(""),     // the browser's launch list too
		c.ehr.EHRLaunchURL(c.proxy.URL+"/fhir/launch", smarttest.LaunchContext{Patient: "pat-2"}), // a new pending launch
		c.pageURL(handle), // again, on the next instance
	} {
		ctx, cancel := context.WithTimeout(t.Context(), bound)
		start := time.Now()
		res, err := c.get(ctx, u)
		cancel()
		t.Logf("with the store hung: %d in %v", res.status, time.Since(start).Round(time.Millisecond))
		if err != nil {
			t.Fatalf("with the store hung, a request did not return within %v: %v", bound, err)
		}
		if res.status != http.StatusServiceUnavailable {
			t.Fatalf("with the store hung, instance %s answered %d %.200q, want 503", res.instance, res.status, res.body)
		}
	}

	proxy.Restore()
	for range len(c.insts) { // every instance recovers
		c.mustGet(c.pageURL(handle), http.StatusOK)
	}
}

// hungBackend is be with its clients connected through a TCP proxy the
// test can stall, and configured as the examples configure theirs: go-redis
// with ContextTimeoutEnabled, so the store timeout's deadline reaches the
// connection, and pgx with a deadline at every write (pgxstore passes pgx
// no context).
func hungBackend(t *testing.T, be backend) (backend, *testservers.TCPProxy) {
	t.Helper()
	switch be.name {
	case "Redis":
		proxy := testservers.NewTCPProxy(t, testservers.RedisAddr(t))
		be.connect = func(t *testing.T, prefix string) (scs.Store, core.Locker) {
			client := redis.NewClient(&redis.Options{Addr: proxy.Addr(), ContextTimeoutEnabled: true})
			t.Cleanup(func() { client.Close() })
			return underPrefix(goredisstore.New(client), prefix), lockerUnderPrefix(goredislock.New(client), prefix)
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
		be.connect = func(t *testing.T, prefix string) (scs.Store, core.Locker) {
			cfg, _ := pgxpool.ParseConfig(url)
			host, port, _ := net.SplitHostPort(proxy.Addr())
			p, _ := strconv.Atoi(port)
			cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Fallbacks = host, uint16(p), nil
			pgxbound.Apply(cfg, sessions.DefaultStoreTimeout)
			pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			return underPrefix(pgxstore.NewWithCleanupInterval(pool, 0), prefix), lockerUnderPrefix(pgxlock.New(pool), prefix)
		}
		return be, proxy
	}
	t.Fatalf("no proxied %s", be.name)
	return be, nil
}
