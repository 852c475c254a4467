package core_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// logBuffer is a log destination for handlers written to from several
// goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// copyStorage returns a copy of the harness's stored records.
func copyStorage(m *memStorage) *memStorage {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := newMemStorage(m.now)
	c.data = maps.Clone(m.data)
	return c
}

// revokingLaunch runs a launch in browser "b", reads its patient (so the
// FHIR server sees the access token) and returns the launch's client, the
// access token, and a second engine over a copy of the stored records,
// which holds the launch's tokens after the first engine's logout.
func revokingLaunch(t *testing.T, h *harness, issuer core.Issuer) (*core.ReadyClient, string, *core.Engine) {
	t.Helper()
	ctx := context.Background()
	rc := h.complete("b", &smarttest.LaunchContext{Patient: "pat-1"})
	var p struct{ ID string }
	if err := rc.FHIR().Read(ctx, rc.Patient().String(), &p); err != nil {
		t.Fatalf("reading the patient: %v", err)
	}
	toks := h.ehr.FHIRTokens()
	if len(toks) != 1 {
		t.Fatalf("the FHIR server saw %d tokens, want 1", len(toks))
	}
	cfg := h.eng.Config()
	cfg.Storage = copyStorage(h.store)
	cfg.Logger = nil
	issuer.URL = h.ehr.FHIRBaseURL()
	cfg.Issuers = []core.Issuer{issuer}
	kept, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rc, toks[0], kept
}

// fhirStatus is the status of a read of pat-1 with the bearer token tok.
func fhirStatus(t *testing.T, ehr *smarttest.Server, tok string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ehr.FHIRBaseURL()+"/Patient/pat-1", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// wantNoLaunch checks that the browser "b" has no launch left.
func wantNoLaunch(t *testing.T, eng *core.Engine) {
	t.Helper()
	_, err := eng.Ready(context.Background(), "b", "")
	wantCode(t, err, core.CodeNoLaunch)
}

// revokeCase is a client authentication the revocation must carry.
type revokeCase struct {
	name   string
	client smarttest.Client
	issuer core.Issuer
}

// At logout the engine revokes the launch's refresh token, then its access
// token, at the EHR's revocation endpoint with the issuer's client
// authentication: afterwards the refresh token gets invalid_grant and the
// access token 401, and the launch is gone.
func TestLogoutRevokesTokens(t *testing.T) {
	t.Parallel()
	rsaKey := mustRSA(t)
	for _, tc := range []revokeCase{
		{name: "public client"},
		{
			name:   "client_secret_basic",
			client: smarttest.Client{Auth: smarttest.AuthClientSecretBasic, Secret: "s3cr&t:x"},
			issuer: core.Issuer{Auth: core.ClientAuth{Secret: "s3cr&t:x"}},
		},
		{
			name:   "private_key_jwt",
			client: smarttest.Client{Auth: smarttest.AuthPrivateKeyJWT, PublicKey: rsaKey.Public()},
			issuer: core.Issuer{Auth: core.ClientAuth{Signer: rsaKey, KeyID: "app-rsa"}},
		},
	} {
		t.Run(tc.name, tc.run)
	}
}

func (tc revokeCase) run(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var logs logBuffer
	h := newHarness(t, smarttest.Options{}, tc.client,
		core.Config{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, tc.issuer)
	rc, access, kept := revokingLaunch(t, h, tc.issuer)

	if err := h.eng.Logout(ctx, "b"); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if n := h.ehr.Count(smarttest.EndpointRevoke); n != 2 {
		t.Errorf("the revocation endpoint was called %d times, want 2 (refresh and access token)", n)
	}
	revoked := h.ehr.RevokedTokens()
	if len(revoked) != 2 || revoked[0] == "" || revoked[0] == access || revoked[1] != access {
		t.Fatalf("revoked %d tokens, want the refresh token then the access token", len(revoked))
	}
	wantNoLaunch(t, h.eng)

	// The refresh token the launch held no longer works: once the access
	// token has expired, Ready over the copied records refreshes, and fails.
	h.clock.Advance(2 * time.Hour)
	var re *oauth2.RetrieveError
	if _, err := kept.Ready(ctx, "b", rc.Handle()); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("a refresh with the revoked refresh token: %v, want invalid_grant", err)
	}
	if got := fhirStatus(t, h.ehr, access); got != http.StatusUnauthorized {
		t.Errorf("a FHIR read with the revoked access token = %d, want 401", got)
	}
	for _, tok := range revoked {
		if strings.Contains(logs.String(), tok) {
			t.Error("the log shows a token")
		}
	}
}

// A revocation that fails, with an error status or no answer at all, is
// logged without the token and the logout goes on: the launch is deleted
// and Logout returns nil.
func TestLogoutRevocationFailureDoesNotBlock(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		faults smarttest.Faults
		cfg    core.Config
		want   string // in the warning
	}{
		{name: "503", faults: smarttest.Faults{Status: map[smarttest.Endpoint]int{smarttest.EndpointRevoke: 503}}, want: "status=503"},
		{
			name: "hung", faults: smarttest.Faults{Latency: time.Hour},
			cfg:  core.Config{HTTPClient: &http.Client{Timeout: 300 * time.Millisecond}, MaxRetries: -1},
			want: "error=",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var logs logBuffer
			cfg := tc.cfg
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			h := newHarness(t, smarttest.Options{}, smarttest.Client{}, cfg, core.Issuer{})
			_, access, kept := revokingLaunch(t, h, core.Issuer{})
			h.ehr.SetFaults(tc.faults)

			if err := h.eng.Logout(ctx, "b"); err != nil {
				t.Fatalf("Logout: %v", err)
			}
			wantNoLaunch(t, h.eng)
			if h.ehr.Count(smarttest.EndpointRevoke) == 0 {
				t.Error("the revocation endpoint was never called")
			}
			out := logs.String()
			if !strings.Contains(out, "revoking a token at logout failed") || !strings.Contains(out, tc.want) ||
				!strings.Contains(out, "issuer="+h.ehr.FHIRBaseURL()) {
				t.Errorf("the log lacks a warning with the issuer and %s:\n%s", tc.want, out)
			}
			if strings.Contains(out, access) {
				t.Error("the log shows the access token")
			}
			// The refresh token is in the records the second engine holds.
			h.ehr.SetFaults(smarttest.Faults{})
			h.clock.Advance(2 * time.Hour) // Ready refreshes the expired token
			if _, err := kept.Ready(ctx, "b", ""); err != nil {
				t.Fatalf("the refresh token should still work, the revocation failed: %v", err)
			}
			for _, tok := range h.ehr.FHIRTokens() {
				if strings.Contains(out, tok) {
					t.Error("the log shows a token")
				}
			}
		})
	}
}

// An EHR that advertises no revocation endpoint gets no revocation: the
// logout deletes the launch as it always did, and the refresh token stays
// valid at the EHR.
func TestLogoutWithoutRevocationEndpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, smarttest.Options{NoRevocationEndpoint: true}, smarttest.Client{}, core.Config{}, core.Issuer{})
	_, _, kept := revokingLaunch(t, h, core.Issuer{})
	if err := h.eng.Logout(ctx, "b"); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	wantNoLaunch(t, h.eng)
	if n := h.ehr.Count(smarttest.EndpointRevoke); n != 0 {
		t.Errorf("the revocation endpoint was called %d times, want none: it is not advertised", n)
	}
	h.clock.Advance(2 * time.Hour) // Ready refreshes the expired token
	if _, err := kept.Ready(ctx, "b", ""); err != nil {
		t.Errorf("the refresh token should still work: %v", err)
	}
}
