package core

import (
	"net/http"
	"testing"
)

// A program that replaced http.DefaultTransport with another RoundTripper
// still gets an engine, not a panic.
func TestNewWithReplacedDefaultTransport(t *testing.T) {
	saved := http.DefaultTransport
	http.DefaultTransport = roundTripperFunc(func(r *http.Request) (*http.Response, error) { return saved.RoundTrip(r) })
	defer func() { http.DefaultTransport = saved }()
	for _, any := range []bool{false, true} {
		_, err := New(Config{ClientID: "app", CallbackURL: "https://app.example/cb",
			Issuers: []Issuer{{URL: "https://ehr.example/fhir"}}, AllowAnyIssuer: any})
		if err != nil {
			t.Fatalf("AllowAnyIssuer=%t: %v", any, err)
		}
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
