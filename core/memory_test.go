package core_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/internal/testclock"
)

func TestMemoryStorage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := core.NewMemoryStorage()
	get := func(key string, want []byte) {
		t.Helper()
		got, err := st.Get(ctx, key)
		switch {
		case want == nil && !errors.Is(err, core.ErrNotFound):
			t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
		case want != nil && (err != nil || !bytes.Equal(got, want)):
			t.Fatalf("Get(%q) = %q, %v; want %q", key, got, err, want)
		}
	}
	get("missing", nil)

	v := []byte("value")
	if err := st.Set(ctx, "k", v, time.Hour); err != nil {
		t.Fatal(err)
	}
	v[0] = 'X' // the caller's slice is not kept
	get("k", []byte("value"))
	got, _ := st.Get(ctx, "k")
	got[0] = 'Y' // nor handed out
	get("k", []byte("value"))
	if err := st.Set(ctx, "k", []byte("other"), time.Hour); err != nil {
		t.Fatal(err)
	}
	get("k", []byte("other"))
	if err := st.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	get("k", nil)
	if err := st.Delete(ctx, "k"); err != nil {
		t.Errorf("deleting a missing key: %v", err)
	}

	// A record is kept for at most its ttl: none at all for a ttl of zero
	// or less.
	for _, ttl := range []time.Duration{0, -time.Second} {
		key := fmt.Sprintf("ttl-%v", ttl)
		if err := st.Set(ctx, key, []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
		get(key, nil)
	}

	tk, ok := st.(core.Taker)
	if !ok {
		t.Fatal("NewMemoryStorage is not a Taker")
	}
	if err := st.Set(ctx, "once", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if b, err := tk.Take(ctx, "once"); err != nil || string(b) != "v" {
		t.Fatalf("Take = %q, %v", b, err)
	}
	get("once", nil)
	if _, err := tk.Take(ctx, "once"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("a second Take: %v, want ErrNotFound", err)
	}
	if err := st.Set(ctx, "expired", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Take(ctx, "expired"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Take of an expired record: %v, want ErrNotFound", err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := st.Set(cancelled, "c", []byte("v"), time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Set with a cancelled context: %v", err)
	}
	get("c", nil)
	if _, err := st.Get(cancelled, "missing"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context: %v", err)
	}
}

// Of many concurrent Takes of one key, exactly one gets the value.
func TestMemoryStorageTakeIsAtomic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := core.NewMemoryStorage()
	tk := st.(core.Taker)
	const rounds, takers = 20, 50
	for round := range rounds {
		key := fmt.Sprintf("pending-%d", round)
		if err := st.Set(ctx, key, []byte("launch"), time.Hour); err != nil {
			t.Fatal(err)
		}
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			won   int
			other []error
		)
		start := make(chan struct{})
		for range takers {
			wg.Go(func() {
				<-start
				b, err := tk.Take(ctx, key)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && string(b) == "launch":
					won++
				case !errors.Is(err, core.ErrNotFound):
					other = append(other, fmt.Errorf("%q, %w", b, err))
				}
			})
		}
		close(start)
		wg.Wait()
		if won != 1 || len(other) != 0 {
			t.Fatalf("round %d: %d of %d concurrent Takes got the value, want 1; other answers: %v", round, won, takers, other)
		}
	}
}

// The engine's default Storage, an in-memory one, keeps a launch for
// LaunchTTL on the engine's clock, and not longer: the launch is gone
// after it, though its refresh token would still work.
func TestDefaultStorageKeepsALaunchForLaunchTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := testclock.New()
	ehr := smarttest.NewServer(smarttest.Options{Now: c.Now})
	t.Cleanup(ehr.Close)
	ehr.RegisterClient(smarttest.Client{ID: "app"})
	eng, err := core.New(core.Config{ClientID: "app", CallbackURL: "http://app.test/cb", Issuers: []core.Issuer{{URL: ehr.FHIRBaseURL()}},
		AllowInsecureHTTP: true, Now: c.Now, LaunchTTL: 3 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	authURL, err := eng.Launch(ctx, "b", ehr.FHIRBaseURL(), ehr.NewLaunch(pat1))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := eng.Callback(ctx, "b", authorize(t, authURL))
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Hour) // the access token (one hour) has expired: Ready refreshes
	if _, err := eng.Ready(ctx, "b", rc.Handle()); err != nil {
		t.Fatalf("within LaunchTTL: %v", err)
	}
	if n := ehr.Count(smarttest.EndpointTokenRefresh); n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
	c.Advance(time.Hour + time.Second)
	for _, handle := range []string{rc.Handle(), ""} {
		_, err = eng.Ready(ctx, "b", handle)
		wantCode(t, err, core.CodeNoLaunch)
	}
	if n := ehr.Count(smarttest.EndpointTokenRefresh); n != 1 {
		t.Errorf("%d refreshes, want still 1: a launch past LaunchTTL was refreshed", n)
	}
}
