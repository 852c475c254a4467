package core

import (
	"net/http"
	"testing"
	"time"
)

// poolConfig is a valid Config for an EHR at ehr.test, changed by edit.
func poolConfig(edit func(*Config)) Config {
	cfg := Config{ClientID: "app", CallbackURL: "https://app.test/cb",
		Issuers: []Issuer{{URL: "https://ehr.test/fhir"}}}
	if edit != nil {
		edit(&cfg)
	}
	return cfg
}

// transportOf returns the transport under one of the engine's clients.
func transportOf(t *testing.T, c *http.Client) http.RoundTripper {
	t.Helper()
	ct, ok := c.Transport.(*cappedTransport)
	if !ok {
		t.Fatalf("client's Transport is a %T, want *cappedTransport", c.Transport)
	}
	return ct.base
}

// The engine's discovery, JWKS and token client and its FHIR client share
// one transport, whose pool keeps MaxIdleConnsPerEHR idle connections per
// host (32 by default); the transport for URLs outside the FHIR server has
// the same pool.
func TestEngineTransportPool(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		edit      func(*Config)
		perHost   int
		total     int
		keepAlive bool
	}{
		{"default", nil, 32, 100, true},
		{"more than the default total", func(c *Config) { c.MaxIdleConnsPerEHR = 200 }, 200, 200, true},
		{"none kept", func(c *Config) { c.MaxIdleConnsPerEHR = -1 }, 0, 100, false},
		{"a client of the caller's without Transport", func(c *Config) { c.HTTPClient = &http.Client{} }, 32, 100, true},
		{"with the address guard", func(c *Config) { c.AllowAnyIssuer = true }, 32, 100, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := New(poolConfig(tc.edit))
			if err != nil {
				t.Fatal(err)
			}
			rt := transportOf(t, e.client)
			if f := transportOf(t, e.fhir); f != rt {
				t.Error("the FHIR client has a transport of its own: its connections are not shared with discovery, JWKS and token requests")
			}
			for name, c := range map[string]*http.Client{"engine's": e.client, "outside": e.outside} {
				tr, ok := transportOf(t, c).(*http.Transport)
				if !ok {
					t.Fatalf("the %s transport is a %T, want *http.Transport", name, transportOf(t, c))
				}
				if tr == http.DefaultTransport {
					t.Errorf("the %s transport is http.DefaultTransport, whose pool keeps 2 idle connections per host", name)
				}
				if tr.MaxIdleConnsPerHost != tc.perHost || tr.MaxIdleConns != tc.total || tr.DisableKeepAlives == tc.keepAlive {
					t.Errorf("the %s transport keeps %d idle connections per host, %d in all, keep-alive %t; want %d, %d, %t",
						name, tr.MaxIdleConnsPerHost, tr.MaxIdleConns, !tr.DisableKeepAlives, tc.perHost, tc.total, tc.keepAlive)
				}
			}
		})
	}
}

// A Transport of the caller's keeps its pool settings: used as it is, or
// cloned with them for the address guard, never changed.
func TestCallersTransportKeepsItsPool(t *testing.T) {
	t.Parallel()
	for _, anyIssuer := range []bool{false, true} {
		mine := &http.Transport{MaxIdleConnsPerHost: 3, MaxIdleConns: 7}
		e, err := New(poolConfig(func(c *Config) {
			c.HTTPClient = &http.Client{Transport: mine}
			c.AllowAnyIssuer = anyIssuer
			c.MaxIdleConnsPerEHR = 50
		}))
		if err != nil {
			t.Fatal(err)
		}
		tr := transportOf(t, e.fhir).(*http.Transport)
		if !anyIssuer && tr != mine {
			t.Errorf("AllowAnyIssuer=%t: the engine does not use the caller's transport as it is", anyIssuer)
		}
		if anyIssuer && tr == mine {
			t.Errorf("AllowAnyIssuer=%t: the caller's transport is used without the address guard's clone", anyIssuer)
		}
		if tr.MaxIdleConnsPerHost != 3 || tr.MaxIdleConns != 7 {
			t.Errorf("AllowAnyIssuer=%t: the engine's transport keeps %d idle connections per host and %d in all, want the caller's 3 and 7", anyIssuer, tr.MaxIdleConnsPerHost, tr.MaxIdleConns)
		}
		if mine.MaxIdleConnsPerHost != 3 || mine.MaxIdleConns != 7 {
			t.Errorf("AllowAnyIssuer=%t: the caller's transport was changed", anyIssuer)
		}
	}
}

// Every client of the engine gives up on a request after 15 seconds when
// Config.HTTPClient sets no Timeout, and keeps the caller's Timeout when it
// does.
func TestEngineHTTPTimeout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		client *http.Client
		want   time.Duration
	}{
		{"no client", nil, 15 * time.Second},
		{"a client without Timeout", &http.Client{}, 15 * time.Second},
		{"a client with its own Timeout", &http.Client{Timeout: 3 * time.Second}, 3 * time.Second},
	} {
		e, err := New(poolConfig(func(c *Config) { c.HTTPClient = tc.client }))
		if err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string]*http.Client{"engine's": e.client, "FHIR": e.fhir, "outside": e.outside} {
			if c.Timeout != tc.want {
				t.Errorf("%s: the %s client's Timeout is %v, want %v", tc.name, name, c.Timeout, tc.want)
			}
		}
	}
}
