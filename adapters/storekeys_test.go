package adapters_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
)

// sharedStore stands for Redis or PostgreSQL: any scs.Store but memstore.
type sharedStore struct{}

func (sharedStore) Find(string) ([]byte, bool, error)      { return nil, false, nil }
func (sharedStore) Commit(string, []byte, time.Time) error { return nil }
func (sharedStore) Delete(string) error                    { return nil }

// TestWarnUnsealed: New warns, once, when a shared store runs without
// StoreKeys, and is silent with keys or with the in-memory store.
func TestWarnUnsealed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		shared bool
		keys   []core.StoreKey
		warns  int
	}{
		{"shared store without keys", true, nil, 1},
		{"shared store with keys", true, []core.StoreKey{make([]byte, 32)}, 0},
		{"memstore without keys", false, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			cfg := adapters.Config{
				Config: core.Config{
					ClientID: "app", CallbackURL: "https://app.test/fhir/callback", RedirectURL: "/fhir/",
					Issuers:   []core.Issuer{{URL: "https://ehr.test/fhir"}},
					Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
					StoreKeys: tc.keys,
				},
			}
			if tc.shared {
				sm := scs.New()
				sm.Store = sharedStore{}
				cfg.SessionManager = sm
			}
			if _, err := adapters.New(cfg); err != nil {
				t.Fatal(err)
			}
			if got := strings.Count(logs.String(), "StoreKeys is empty"); got != tc.warns {
				t.Fatalf("%d warnings, want %d; log:\n%s", got, tc.warns, logs.String())
			}
		})
	}
}
