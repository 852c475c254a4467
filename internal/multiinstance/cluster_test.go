package multiinstance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/chiware"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/internal/browsertest"
	"github.com/fhirware/smart/internal/testclock"
	"github.com/fhirware/smart/internal/testservers"
	"github.com/fhirware/smart/sessions"
	"github.com/fhirware/smart/sessions/goredislock"
	"github.com/fhirware/smart/sessions/pgxlock"
	"github.com/fhirware/smart/sessions/storagetest"
)

const clientID = "multi-instance-app"

// instanceNames name the instances, in the proxy's round-robin order.
var instanceNames = []string{"A", "B", "C"}

// A backend is the shared server the instances keep their sessions in.
type backend struct {
	name string
	// connect gives one instance its own connections to the server: an
	// scs store and a locker that keep every key and lock under prefix,
	// the test's own part of the server.
	connect func(t *testing.T, prefix string) (scs.Store, core.Locker)
	// cleanup removes, when the test ends, what is kept under prefix.
	cleanup func(t *testing.T, prefix string)
	// recordBytes returns the sizes of the SMART records stored under
	// prefix (not the scs sessions), read back from the server, by key
	// without the prefixes.
	recordBytes func(t *testing.T, prefix string) map[string]int
}

func backends() []backend {
	return []backend{
		{
			name: "Redis",
			connect: func(t *testing.T, prefix string) (scs.Store, core.Locker) {
				client := testservers.GoredisClient(t, testservers.RedisAddr(t))
				return underPrefix(goredisstore.New(client), prefix), storagetest.PrefixedLocker(goredislock.New(client), prefix)
			},
			cleanup: func(t *testing.T, prefix string) {
				addr := testservers.RedisAddr(t)
				testservers.DeleteRedisKeys(t, addr, "scs:session:"+prefix+"*")
				testservers.DeleteRedisKeys(t, addr, prefix+"*") // the locks
			},
			recordBytes: func(t *testing.T, prefix string) map[string]int {
				client := testservers.GoredisClient(t, testservers.RedisAddr(t))
				ctx := t.Context()
				records := "scs:session:" + prefix + sessions.DefaultKeyPrefix
				sizes := map[string]int{}
				iter := client.Scan(ctx, 0, records+"*", 100).Iterator()
				for iter.Next(ctx) {
					n, err := client.StrLen(ctx, iter.Val()).Result()
					if err != nil {
						t.Fatal(err)
					}
					sizes[strings.TrimPrefix(iter.Val(), records)] = int(n)
				}
				if err := iter.Err(); err != nil {
					t.Fatal(err)
				}
				return sizes
			},
		},
		{
			name: "PostgreSQL",
			connect: func(t *testing.T, prefix string) (scs.Store, core.Locker) {
				pool := testservers.PgPool(t, testservers.PostgresURL(t))
				return underPrefix(pgxstore.NewWithCleanupInterval(pool, 0), prefix), storagetest.PrefixedLocker(pgxlock.New(pool), prefix)
			},
			cleanup: func(t *testing.T, prefix string) {
				testservers.DeletePostgresRows(t, testservers.PostgresURL(t), prefix)
			},
			recordBytes: func(t *testing.T, prefix string) map[string]int {
				pool := testservers.PgPool(t, testservers.PostgresURL(t))
				records := prefix + sessions.DefaultKeyPrefix
				rows, err := pool.Query(t.Context(), `SELECT token, length(data) FROM sessions WHERE starts_with(token, $1) AND expiry > now()`, records)
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				sizes := map[string]int{}
				for rows.Next() {
					var key string
					var n int
					if err := rows.Scan(&key, &n); err != nil {
						t.Fatal(err)
					}
					sizes[strings.TrimPrefix(key, records)] = n
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
				return sizes
			},
		},
	}
}

// forEachBackend runs test once per backend, in parallel.
func forEachBackend(t *testing.T, test func(t *testing.T, be backend)) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			test(t, be)
		})
	}
}

// cluster is one fake EHR and several app instances behind a round-robin
// proxy, with one browser.
type cluster struct {
	t      *testing.T
	be     backend
	prefix string
	clock  *testclock.Clock // the EHR's and every instance's
	ehr    *smarttest.Server
	proxy  *httptest.Server
	insts  []*instance

	next atomic.Uint64 // the proxy's round-robin counter

	browser *http.Client // from browsertest.New
}

// instance is one app instance: a chiware router with its own engine (and
// so discovery cache and key sets), session manager, store connections and
// locker. The SMART records are in the session manager's store, the
// adapters' default; the locker is the engine's Config.Locker.
type instance struct {
	name    string
	server  *httptest.Server
	forward *httputil.ReverseProxy
	store   *countingStore
	locks   *countingLocker
	// engine is the router's: over the session manager's store, with
	// locks (each call bounded by the store timeout).
	engine *core.Engine
	// browser reads the browser's SMART session id, over the instance's
	// session manager.
	browser *sessions.Browser
}

type clusterOptions struct {
	faults         smarttest.Faults
	refreshLockTTL time.Duration
	maxLaunches    int // core.Config.MaxLaunches
}

func newCluster(t *testing.T, be backend, o clusterOptions) *cluster {
	t.Helper()
	c := &cluster{t: t, be: be, prefix: testservers.UniquePrefix(t), clock: testclock.New()}
	be.cleanup(t, c.prefix)

	c.ehr = smarttest.NewServer(smarttest.Options{Now: c.clock.Now, AccessTokenLifetime: 10 * time.Minute})
	t.Cleanup(c.ehr.Close)
	c.ehr.RegisterClient(smarttest.Client{ID: clientID})
	c.ehr.SetFaults(o.faults)

	c.proxy = httptest.NewServer(http.HandlerFunc(c.serveProxy))
	t.Cleanup(c.proxy.Close)

	transport := &http.Transport{MaxIdleConnsPerHost: 200}
	t.Cleanup(transport.CloseIdleConnections)
	for _, name := range instanceNames {
		inst := c.newInstance(name, o)
		target, _ := url.Parse(inst.server.URL)
		inst.forward = &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(target)
				r.Out.Host = r.In.Host // the app sees the address the browser used
			},
			Transport: transport,
		}
		c.insts = append(c.insts, inst)
	}

	c.browser = browsertest.New()
	t.Cleanup(c.browser.CloseIdleConnections)
	return c
}

// newBrowser gives the cluster a browser without cookies, over the same
// connections.
func (c *cluster) newBrowser() { c.browser = browsertest.Fresh(c.browser) }

func (c *cluster) newInstance(name string, o clusterOptions) *instance {
	t := c.t
	store, locker := c.be.connect(t, c.prefix)
	inst := &instance{name: name, store: newCountingStore(store), locks: &countingLocker{l: locker}}
	t.Cleanup(func() { inst.store.deleteAll() })

	transport := &http.Transport{MaxIdleConnsPerHost: 200}
	t.Cleanup(transport.CloseIdleConnections)
	// The app's own session manager, in the store it shares with the
	// other instances, with the one store-error recipe. Warnings and
	// errors go to the test's output, shown when it fails.
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	sm := scs.New()
	sm.Store = withContextOf(store, inst.store)
	sm.Cookie.Name = sessions.InsecureCookieName // plain http: no __Host- prefix
	sm.ErrorFunc = sessions.StoreErrorFunc(logger)
	router, err := chiware.New(adapters.Config{
		Config: core.Config{
			ClientID:          clientID,
			CallbackURL:       c.proxy.URL + "/fhir/callback",
			Issuers:           []core.Issuer{{URL: c.ehr.FHIRBaseURL()}},
			AllowInsecureHTTP: true,
			HTTPClient:        &http.Client{Transport: transport, Timeout: 10 * time.Second},
			Logger:            logger,
			Now:               c.clock.Now,
			Locker:            inst.locks,
			RefreshLockTTL:    o.refreshLockTTL,
			MaxLaunches:       o.maxLaunches,
			// As many tabs may be between launch and callback at once.
			MaxPendingLaunches: o.maxLaunches,
		},
		SessionManager: sm,
		RedirectURL:    c.proxy.URL + "/fhir/",
		Cookies:        sessions.CookieInsecureHTTP,
	})
	if err != nil {
		t.Fatal(err)
	}
	inst.engine = router.Engine()
	inst.browser = sessions.New(sm, sessions.WithCookies(sessions.CookieInsecureHTTP))
	router.Get("/", page)
	mux := http.NewServeMux()
	mux.Handle("/fhir/", http.StripPrefix("/fhir", router))
	mux.Handle("GET /fhir/session-id", sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := inst.browser.ID(r.Context())
		io.WriteString(w, id)
	})))
	inst.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Instance", name)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(inst.server.Close)
	return inst
}

// page reads the launch's patient from the FHIR server, with the launch's
// token (refreshed when needed), unless ?read=no, and writes
// "patient=<id> handle=<handle>". A failed read is answered as the SMART
// routes answer theirs.
func page(w http.ResponseWriter, r *http.Request) {
	rc := chiware.ReadyClient(r)
	if r.URL.Query().Get("read") != "no" {
		var p struct {
			ID string `json:"id"`
		}
		if err := rc.FHIR().Read(r.Context(), rc.Patient().String(), &p); err != nil {
			chiware.Error(w, r, err)
			return
		}
		if p.ID != rc.Patient().ID {
			http.Error(w, "read Patient/"+p.ID+" for "+rc.Patient().ID, http.StatusInternalServerError)
			return
		}
	}
	fmt.Fprintf(w, "patient=%s handle=%s", rc.Patient().ID, rc.Handle())
}

// serveProxy forwards each request to the next instance in turn, or to the
// one named by the X-Pin-Instance header.
func (c *cluster) serveProxy(w http.ResponseWriter, r *http.Request) {
	var inst *instance
	if pin := r.Header.Get("X-Pin-Instance"); pin != "" {
		for _, i := range c.insts {
			if i.name == pin {
				inst = i
			}
		}
	} else {
		inst = c.insts[(c.next.Add(1)-1)%uint64(len(c.insts))]
	}
	if inst == nil {
		http.Error(w, "no such instance", http.StatusBadGateway)
		return
	}
	inst.forward.ServeHTTP(w, r)
}

// response is what the browser got.
type response struct {
	status   int
	body     string
	location string
	instance string
}

// get makes one request as the browser, following no redirect.
func (c *cluster) get(ctx context.Context, u string, header ...string) (response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return response{}, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := c.browser.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	return response{res.StatusCode, string(b), res.Header.Get("Location"), res.Header.Get("X-Instance")}, nil
}

// mustGet is get that fails the test unless the status is want.
func (c *cluster) mustGet(u string, want int, header ...string) response {
	c.t.Helper()
	res, err := c.get(c.t.Context(), u, header...)
	if err != nil {
		c.t.Fatal(err)
	}
	if res.status != want {
		c.t.Fatalf("GET %s (instance %s): %d %q, want %d", u, res.instance, res.status, res.body, want)
	}
	return res
}

// launchURL is the app's launch URL as the EHR opens it for patient.
func (c *cluster) launchURL(patient string) string {
	return c.ehr.EHRLaunchURL(c.proxy.URL+"/fhir/launch", smarttest.LaunchContext{Patient: patient, FHIRUser: "Practitioner/prac-1"})
}

// launchStart opens the app's launch URL from the EHR for patient and
// returns the EHR's authorize URL the app redirected to.
func (c *cluster) launchStart(patient string, header ...string) (authorize string, served string) {
	c.t.Helper()
	res := c.mustGet(c.launchURL(patient), http.StatusFound, header...)
	if !strings.HasPrefix(res.location, c.ehr.AuthorizeURL()) {
		c.t.Fatalf("launch redirected to %q", res.location)
	}
	return res.location, res.instance
}

// authorize has the EHR approve and returns the app's callback URL.
func (c *cluster) authorize(authorize string) string {
	c.t.Helper()
	return c.mustGet(authorize, http.StatusFound).location
}

// callback lands on the app's callback and returns the launch handle of
// the page it redirects to.
func (c *cluster) callback(callback string, header ...string) (handle string, served string) {
	c.t.Helper()
	res := c.mustGet(callback, http.StatusFound, header...)
	u, err := url.Parse(res.location)
	if err != nil || u.Query().Get(adapters.HandleParam) == "" {
		c.t.Fatalf("callback redirected to %q", res.location)
	}
	return u.Query().Get(adapters.HandleParam), res.instance
}

// launch runs a whole launch for patient and returns its handle.
func (c *cluster) launch(patient string) string {
	c.t.Helper()
	page, err := browsertest.Launch(c.t.Context(), c.browser, c.launchURL(patient))
	if err != nil {
		c.t.Fatal(err)
	}
	return page.Query().Get(adapters.HandleParam)
}

// pageURL is the app page for the launch handle ("" for none).
func (c *cluster) pageURL(handle string, query ...string) string {
	q := url.Values{}
	if handle != "" {
		q.Set(adapters.HandleParam, handle)
	}
	for i := 0; i+1 < len(query); i += 2 {
		q.Set(query[i], query[i+1])
	}
	if len(q) == 0 {
		return c.proxy.URL + "/fhir/"
	}
	return c.proxy.URL + "/fhir/?" + q.Encode()
}

// hammer sends n page requests for handle at once and returns the
// failures, as text.
func (c *cluster) hammer(handle string, n int) []string {
	var (
		mu       sync.Mutex
		failures []string
		wg       sync.WaitGroup
	)
	want := "handle=" + handle
	for range n {
		wg.Go(func() {
			res, err := c.get(c.t.Context(), c.pageURL(handle))
			if err == nil && res.status == http.StatusOK && strings.HasSuffix(res.body, want) {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			failures = append(failures, fmt.Sprintf("%s: %d %q %v", res.instance, res.status, res.body, err))
		})
	}
	wg.Wait()
	return failures
}

// createPatients creates n patients at the EHR, with the bearer token of
// a FHIR request made before, and returns their ids.
func (c *cluster) createPatients(n int) []string {
	c.t.Helper()
	tokens := c.ehr.FHIRTokens()
	if len(tokens) == 0 {
		c.t.Fatal("no FHIR request was made yet")
	}
	var ids []string
	for i := range n {
		body := fmt.Sprintf(`{"resourceType":"Patient","name":[{"family":"Tab%d"}]}`, i)
		req, _ := http.NewRequestWithContext(c.t.Context(), http.MethodPost, c.ehr.FHIRBaseURL()+"/Patient", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokens[len(tokens)-1])
		req.Header.Set("Content-Type", "application/fhir+json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			c.t.Fatal(err)
		}
		var p struct {
			ID string `json:"id"`
		}
		err = json.NewDecoder(res.Body).Decode(&p)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusCreated || p.ID == "" {
			c.t.Fatalf("creating a patient: %d, %v", res.StatusCode, err)
		}
		ids = append(ids, p.ID)
	}
	return ids
}

// sessionID asks the app, through instance A, for the browser's SMART
// session id.
func (c *cluster) sessionID() string {
	c.t.Helper()
	return c.mustGet(c.proxy.URL+"/fhir/session-id", http.StatusOK, "X-Pin-Instance", "A").body
}
