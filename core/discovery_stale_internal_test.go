package core

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirware/smart/internal/testclock"
)

// When fetching an issuer's configuration again fails, the cached one is
// used a minute longer (see Engine.server). The cache may have changed
// while the fetch ran: its entry evicted (AllowAnyIssuer's bound of
// maxCachedIssuers made room for other issuers) or replaced by a newer
// one (another fetch that had started earlier and succeeded). Neither is
// undone: an evicted entry does not come back past the bound, and a newer
// one is not replaced by the old one.
func TestStaleConfigurationRespectsTheCacheAsItIsNow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// change changes the cache while the fetch is held, and returns
		// the entry the issuer should have afterwards (nil: none).
		change func(e *Engine, iss string) *authServer
	}{
		{"evicted", func(e *Engine, iss string) *authServer {
			delete(e.servers, iss)
			for i := 0; len(e.servers) < maxCachedIssuers; i++ {
				e.servers[fmt.Sprintf("https://other%d.test/fhir", i)] = &authServer{disc: &Discovery{}}
			}
			return nil
		}},
		{"replaced", func(e *Engine, iss string) *authServer {
			newer := *e.servers[iss]
			newer.expires = e.cfg.Now().Add(discoveryTTL)
			e.servers[iss] = &newer
			return &newer
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var hold atomic.Bool
			arrived, release := make(chan struct{}), make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/fhir/.well-known/smart-configuration" {
					http.Error(w, "down", http.StatusServiceUnavailable)
					return
				}
				if hold.Load() {
					arrived <- struct{}{}
					<-release
					http.Error(w, "down", http.StatusServiceUnavailable)
					return
				}
				base := "http://" + r.Host
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q,"authorization_endpoint":%q,"token_endpoint":%q}`,
					base+"/auth", base+"/auth/jwks", base+"/auth/authorize", base+"/auth/token")
			}))
			t.Cleanup(srv.Close)
			clock := testclock.New()
			iss := srv.URL + "/fhir"
			e, err := New(Config{ClientID: "app", CallbackURL: "https://app.test/cb", Issuers: []Issuer{{URL: iss}},
				AllowInsecureHTTP: true, MaxRetries: -1, Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if _, err := e.Discover(ctx, iss); err != nil {
				t.Fatal(err)
			}
			clock.Advance(discoveryTTL + time.Minute)
			hold.Store(true)
			done := make(chan error, 1)
			go func() {
				_, err := e.Discover(ctx, iss)
				done <- err
			}()
			<-arrived
			e.mu.Lock()
			want := tc.change(e, iss)
			e.mu.Unlock()
			close(release)
			if err := <-done; err != nil {
				t.Fatalf("Discover through the blip: %v", err)
			}
			e.mu.RLock()
			defer e.mu.RUnlock()
			if n := len(e.servers); n > maxCachedIssuers {
				t.Errorf("the cache holds %d issuers, more than its bound of %d", n, maxCachedIssuers)
			}
			if got := e.servers[iss]; got != want {
				t.Errorf("the issuer's entry after the failed fetch is %p, want %p: the cache as it was when the fetch began came back", got, want)
			}
		})
	}
}
