package adapters_test

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
)

// sharedStore stands for Redis or PostgreSQL: any scs.Store but memstore.
type sharedStore struct{}

func (sharedStore) Find(string) ([]byte, bool, error)      { return nil, false, nil }
func (sharedStore) Commit(string, []byte, time.Time) error { return nil }
func (sharedStore) Delete(string) error                    { return nil }

// The adapters warn, once, at the first request, when a store other than
// the in-memory one runs without StoreKeys or without a Locker; also when
// the store was swapped in after New, as the README shows.
func TestWarnStore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		swapAfter   bool // sm.Store set after New
		shared      bool
		keys        []core.Secret
		unsealed    int
		withoutLock int
	}{
		{"shared store without keys", false, true, nil, 1, 1},
		{"shared store swapped in after New", true, true, nil, 1, 1},
		{"shared store with keys", false, true, []core.Secret{core.Secret(base64.StdEncoding.EncodeToString(make([]byte, 32)))}, 0, 1},
		{"memstore without keys", false, false, nil, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			sm := scs.New()
			sm.Store = memstore.NewWithCleanupInterval(0)
			if tc.shared && !tc.swapAfter {
				sm.Store = sharedStore{}
			}
			s, err := adapters.New(adapters.Config{
				Config: core.Config{
					ClientID: "app", CallbackURL: "https://app.test/fhir/callback",
					Issuers:   []core.Issuer{{URL: "https://ehr.test/fhir"}},
					Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
					StoreKeys: tc.keys,
				},
				SessionManager: sm,
				RedirectURL:    "/fhir/",
			})
			if err != nil {
				t.Fatal(err)
			}
			if tc.swapAfter {
				sm.Store = sharedStore{}
			}
			h := s.Handler(http.NotFoundHandler())
			for range 2 {
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/launch", nil))
			}
			if got := strings.Count(logs.String(), "StoreKeys is empty"); got != tc.unsealed {
				t.Errorf("%d StoreKeys warnings, want %d; log:\n%s", got, tc.unsealed, logs.String())
			}
			if got := strings.Count(logs.String(), "Config.Locker is nil"); got != tc.withoutLock {
				t.Errorf("%d Locker warnings, want %d; log:\n%s", got, tc.withoutLock, logs.String())
			}
		})
	}
}
