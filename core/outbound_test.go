package core_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

func TestTokenEndpointFailingOnceIsRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	h.ehr.SetFaults(smarttest.Faults{FailTimes: map[smarttest.Endpoint]int{smarttest.EndpointToken: 1}})
	if _, err := h.eng.Callback(context.Background(), "b", h.launch("b", &pat1)); err != nil {
		t.Fatalf("callback after one 500: %v", err)
	}
	if got := h.ehr.Count(smarttest.EndpointToken); got != 2 {
		t.Fatalf("token endpoint called %d times, want 2 (one failure, one retry)", got)
	}
}

func TestRetriesAreBounded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{MaxRetries: 2}, core.Issuer{})
	h.ehr.SetFaults(smarttest.Faults{FailTimes: map[smarttest.Endpoint]int{smarttest.EndpointToken: 100}})
	_, err := h.eng.Callback(context.Background(), "b", h.launch("b", &pat1))
	wantCode(t, err, core.CodeTokenExchangeFailed)
	if got := h.ehr.Count(smarttest.EndpointToken); got != 3 {
		t.Fatalf("token endpoint called %d times, want 3 (1 + 2 retries)", got)
	}
}

func TestOversizedResponsesAreRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		e    smarttest.Endpoint
		code core.Code
	}{
		{"discovery", smarttest.EndpointDiscovery, core.CodeDiscoveryFailed},
		{"token", smarttest.EndpointToken, core.CodeTokenExchangeFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
			h.ehr.SetFaults(smarttest.Faults{Oversize: map[smarttest.Endpoint]int{tc.e: 1100 << 10}}) // over the 1 MiB cap
			if tc.e == smarttest.EndpointDiscovery {
				h.ehr.SetFaults(smarttest.Faults{Oversize: map[smarttest.Endpoint]int{
					smarttest.EndpointDiscovery: 1100 << 10, smarttest.EndpointMetadata: 1100 << 10}})
				_, err := h.eng.Launch(context.Background(), "b", h.ehr.FHIRBaseURL(), "")
				wantCode(t, err, tc.code)
				if !strings.Contains(err.Error(), "size limit") {
					t.Errorf("error %q does not mention the size limit", err)
				}
				return
			}
			_, err := h.eng.Callback(context.Background(), "b", h.launch("b", &pat1))
			wantCode(t, err, tc.code)
		})
	}
}

func TestSlowEHRTimesOut(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{
		HTTPClient: &http.Client{Timeout: 300 * time.Millisecond}, MaxRetries: -1}, core.Issuer{})
	h.ehr.SetFaults(smarttest.Faults{Drip: 50 * time.Millisecond})
	start := time.Now()
	_, err := h.eng.Launch(context.Background(), "b", h.ehr.FHIRBaseURL(), "")
	wantCode(t, err, core.CodeDiscoveryFailed)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v: the timeout did not bound the slow response", d)
	}
}

func TestCrossOriginRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request reached the other origin: %s", r.URL)
	}))
	t.Cleanup(other.Close)
	ehr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(ehr.Close)
	eng, err := core.New(core.Config{ClientID: "app", CallbackURL: "https://app.test/cb",
		Issuers: []core.Issuer{{URL: ehr.URL}}, AllowInsecureHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = eng.Launch(context.Background(), "b", ehr.URL, "")
	wantCode(t, err, core.CodeDiscoveryFailed)
}

func TestIssuerHeadersAreSent(t *testing.T) {
	t.Parallel()
	ehr := smarttest.NewServer(smarttest.Options{})
	t.Cleanup(ehr.Close)
	ehr.RegisterClient(smarttest.Client{ID: "app"})
	seen := make(chan string, 100)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.URL.Path + " " + r.Header.Get("Epic-Client-ID")
		r2, _ := http.NewRequestWithContext(r.Context(), r.Method, ehr.URL()+r.URL.RequestURI(), r.Body)
		r2.Header = r.Header
		resp, err := http.DefaultTransport.RoundTrip(r2)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(proxy.Close)
	// The issuer is the EHR's FHIR base, reached through the proxy: only
	// discovery goes through it, and it must carry the vendor header.
	iss := proxy.URL + "/fhir"
	eng, err := core.New(core.Config{ClientID: "app", CallbackURL: "https://app.test/cb",
		Issuers:           []core.Issuer{{URL: iss, AuthorizationServer: ehr.AuthIssuer(), Header: http.Header{"Epic-Client-ID": {"app-123"}}}},
		AllowInsecureHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Launch(context.Background(), "b", iss, ""); err != nil {
		t.Fatal(err)
	}
	if got := <-seen; got != "/fhir/.well-known/smart-configuration app-123" {
		t.Fatalf("proxy saw %q", got)
	}
}

// guardRow is an address the guard must refuse (public false) or let
// through (public true), and the range it stands for.
type guardRow struct {
	addr   string
	public bool
	why    string
}

func (r guardRow) run(t *testing.T) {
	t.Parallel()
	if got := core.PublicAddress(netip.MustParseAddr(r.addr)); got != r.public {
		t.Errorf("PublicAddress(%s) = %v, want %v (%s)", r.addr, got, r.public, r.why)
	}
}

func TestAddressGuardRanges(t *testing.T) {
	t.Parallel()
	for _, r := range []guardRow{
		// IANA IPv4 Special-Purpose Address Registry, not globally reachable.
		{"0.0.0.0", false, "0.0.0.0/8 this network"},
		{"0.255.255.255", false, "0.0.0.0/8 this network"},
		{"10.0.0.1", false, "10.0.0.0/8 private"},
		{"100.64.0.1", false, "100.64.0.0/10 shared address space"},
		{"100.127.255.254", false, "100.64.0.0/10 shared address space"},
		{"127.0.0.1", false, "127.0.0.0/8 loopback"},
		{"127.255.255.254", false, "127.0.0.0/8 loopback"},
		{"169.254.169.254", false, "169.254.0.0/16 link-local (cloud metadata)"},
		{"172.16.0.1", false, "172.16.0.0/12 private"},
		{"172.31.255.254", false, "172.16.0.0/12 private"},
		{"192.0.0.1", false, "192.0.0.0/24 IETF protocol assignments"},
		{"192.0.0.170", false, "192.0.0.0/24 NAT64 discovery"},
		{"192.0.2.1", false, "192.0.2.0/24 TEST-NET-1"},
		{"192.88.99.1", false, "192.88.99.0/24 6to4 relay anycast"},
		{"192.168.1.1", false, "192.168.0.0/16 private"},
		{"198.18.0.1", false, "198.18.0.0/15 benchmarking"},
		{"198.19.255.254", false, "198.18.0.0/15 benchmarking"},
		{"198.51.100.1", false, "198.51.100.0/24 TEST-NET-2"},
		{"203.0.113.1", false, "203.0.113.0/24 TEST-NET-3"},
		{"224.0.0.1", false, "224.0.0.0/4 multicast"},
		{"239.255.255.250", false, "224.0.0.0/4 multicast"},
		{"240.0.0.1", false, "240.0.0.0/4 reserved"},
		{"255.255.255.254", false, "240.0.0.0/4 reserved"},
		{"255.255.255.255", false, "255.255.255.255/32 limited broadcast"},
		// IANA IPv6 Special-Purpose Address Registry, not globally reachable.
		{"::", false, "::/128 unspecified"},
		{"::1", false, "::1/128 loopback"},
		{"::127.0.0.1", false, "::/96 IPv4-compatible (loopback inside)"},
		{"::8.8.8.8", false, "::/96 IPv4-compatible, deprecated: refused whatever it carries"},
		{"::ffff:127.0.0.1", false, "::ffff:0:0/96 IPv4-mapped loopback"},
		{"::ffff:10.0.0.1", false, "::ffff:0:0/96 IPv4-mapped private"},
		{"::ffff:169.254.169.254", false, "::ffff:0:0/96 IPv4-mapped link-local"},
		{"64:ff9b::a00:1", false, "64:ff9b::/96 NAT64 of 10.0.0.1"},
		{"64:ff9b::7f00:1", false, "64:ff9b::/96 NAT64 of 127.0.0.1"},
		{"64:ff9b::a9fe:a9fe", false, "64:ff9b::/96 NAT64 of 169.254.169.254"},
		{"64:ff9b:1::808:808", false, "64:ff9b:1::/48 local-use translation"},
		{"100::1", false, "100::/64 discard-only"},
		{"2001::1", false, "2001::/32 Teredo (in 2001::/23)"},
		{"2001:2::1", false, "2001:2::/48 benchmarking (in 2001::/23)"},
		{"2001:10::1", false, "2001:10::/28 ORCHID (in 2001::/23)"},
		{"2001:1ff:ffff::1", false, "2001::/23 IETF protocol assignments"},
		{"2001:db8::1", false, "2001:db8::/32 documentation"},
		{"2002:7f00:1::1", false, "2002::/16 6to4 of 127.0.0.1"},
		{"2002:a00:1::1", false, "2002::/16 6to4 of 10.0.0.1"},
		{"2002:c0a8:101::1", false, "2002::/16 6to4 of 192.168.1.1"},
		{"3fff::1", false, "3fff::/20 documentation"},
		{"3fff:fff::1", false, "3fff::/20 documentation"},
		{"5f00::1", false, "5f00::/16 segment routing SIDs"},
		{"fc00::1", false, "fc00::/7 unique local"},
		{"fd12:3456::1", false, "fc00::/7 unique local"},
		{"fe80::1", false, "fe80::/10 link-local"},
		{"fe80::1%eth0", false, "fe80::/10 link-local with a zone"},
		{"febf::1", false, "fe80::/10 link-local"},
		{"fec0::1", false, "fec0::/10 site-local, deprecated"},
		{"ff02::1", false, "ff00::/8 multicast"},
		{"ff0e::1", false, "ff00::/8 multicast"},
		{"4000::1", false, "outside 2000::/3, unallocated"},
		// Public addresses, some beside the refused ranges.
		{"8.8.8.8", true, "public IPv4"},
		{"1.1.1.1", true, "public IPv4"},
		{"100.63.255.255", true, "just below 100.64.0.0/10"},
		{"100.128.0.1", true, "just above 100.64.0.0/10"},
		{"172.32.0.1", true, "just above 172.16.0.0/12"},
		{"192.0.1.1", true, "between 192.0.0.0/24 and 192.0.2.0/24"},
		{"198.20.0.1", true, "just above 198.18.0.0/15"},
		{"223.255.255.254", true, "just below multicast"},
		{"::ffff:8.8.8.8", true, "IPv4-mapped public"},
		{"64:ff9b::808:808", true, "64:ff9b::/96 NAT64 of 8.8.8.8"},
		{"2002:808:808::1", true, "2002::/16 6to4 of 8.8.8.8"},
		{"2001:200::1", true, "just above 2001::/23"},
		{"2001:db9::1", true, "just above 2001:db8::/32"},
		{"2606:4700:4700::1111", true, "public IPv6"},
		{"2a00:1450:4001:80b::200e", true, "public IPv6"},
	} {
		t.Run(r.addr, r.run)
	}
}

// dialCounter counts the dials of a caller's own DialContext; remote, when
// set, is the address the connections report, to stand for a public host.
type dialCounter struct {
	n      atomic.Int32
	remote net.Addr
}

func (d *dialCounter) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.n.Add(1)
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil || d.remote == nil {
		return c, err
	}
	return remoteConn{Conn: c, remote: d.remote}, nil
}

type remoteConn struct {
	net.Conn
	remote net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.remote }

// anyIssuerEngine is an engine that accepts any issuer, with the address
// guard on and client as its HTTPClient.
func anyIssuerEngine(t *testing.T, client *http.Client) *core.Engine {
	t.Helper()
	eng, err := core.New(core.Config{ClientID: "app", CallbackURL: "https://app.test/cb",
		AllowAnyIssuer: true, AllowInsecureHTTP: true, HTTPClient: client, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

func TestCustomClientKeepsAddressGuard(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		client *http.Client
	}{
		{"nil transport", &http.Client{Timeout: 5 * time.Second}},
		{"empty transport", &http.Client{Transport: &http.Transport{}}},
		{"transport with a proxy", &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}},
		{"clone of the default transport", &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ehr := smarttest.NewServer(smarttest.Options{})
			t.Cleanup(ehr.Close)
			ehr.RegisterClient(smarttest.Client{ID: "app"})
			_, err := anyIssuerEngine(t, tc.client).Launch(context.Background(), "b", ehr.FHIRBaseURL(), "")
			wantCode(t, err, core.CodeDiscoveryFailed)
			if !strings.Contains(err.Error(), "refused to dial") || !strings.Contains(err.Error(), "AllowPrivateNetworks") {
				t.Errorf("error %q does not say the dial was refused and how to allow it", err)
			}
			if n := ehr.Count(smarttest.EndpointDiscovery) + ehr.Count(smarttest.EndpointMetadata); n != 0 {
				t.Errorf("the loopback issuer was contacted %d times", n)
			}
		})
	}
}

func TestCustomDialContextKeepsAddressGuard(t *testing.T) {
	t.Parallel()
	t.Run("plain", func(t *testing.T) {
		t.Parallel()
		ehr := smarttest.NewServer(smarttest.Options{})
		t.Cleanup(ehr.Close)
		d := &dialCounter{}
		_, err := anyIssuerEngine(t, &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}).
			Launch(context.Background(), "b", ehr.FHIRBaseURL(), "")
		wantCode(t, err, core.CodeDiscoveryFailed)
		if !strings.Contains(err.Error(), "refused to dial") {
			t.Errorf("error %q does not say the dial was refused", err)
		}
		if d.n.Load() == 0 {
			t.Error("the caller's DialContext was not used")
		}
		if n := ehr.Count(smarttest.EndpointDiscovery) + ehr.Count(smarttest.EndpointMetadata); n != 0 {
			t.Errorf("a request was sent on the refused connection (%d)", n)
		}
	})
	t.Run("tls", func(t *testing.T) {
		t.Parallel()
		ehr := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t.Errorf("request reached the loopback issuer: %s", r.URL)
		}))
		ehr.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused connections' handshakes
		ehr.StartTLS()
		t.Cleanup(ehr.Close)
		tlsConfig := ehr.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
		tlsConfig.ServerName = "example.com" // in httptest's certificate
		d := &dialCounter{}
		tr := &http.Transport{DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(c, tlsConfig)
			return tc, tc.HandshakeContext(ctx)
		}}
		_, err := anyIssuerEngine(t, &http.Client{Transport: tr}).
			Launch(context.Background(), "b", ehr.URL+"/fhir", "")
		wantCode(t, err, core.CodeDiscoveryFailed)
		if !strings.Contains(err.Error(), "refused to dial") {
			t.Errorf("error %q does not say the dial was refused", err)
		}
		if d.n.Load() == 0 {
			t.Error("the caller's DialTLSContext was not used")
		}
	})
	t.Run("public address passes", func(t *testing.T) {
		t.Parallel()
		// The caller's dialer reaches the fake EHR but reports a public
		// address: the wrapped dial lets it through and the launch works.
		ehr := smarttest.NewServer(smarttest.Options{})
		t.Cleanup(ehr.Close)
		ehr.RegisterClient(smarttest.Client{ID: "app"})
		d := &dialCounter{remote: &net.TCPAddr{IP: net.IPv4(8, 8, 8, 8), Port: 443}}
		_, err := anyIssuerEngine(t, &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}).
			Launch(context.Background(), "b", ehr.FHIRBaseURL(), "")
		if err != nil {
			t.Fatalf("launch through a dialer reporting a public address: %v", err)
		}
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestUncheckableTransportIsRefusedWithTheGuard(t *testing.T) {
	t.Parallel()
	rt := roundTripperFunc(http.DefaultTransport.RoundTrip)
	cfg := core.Config{ClientID: "app", CallbackURL: "https://app.test/cb",
		AllowAnyIssuer: true, HTTPClient: &http.Client{Transport: rt}}
	_, err := core.New(cfg)
	wantCode(t, err, core.CodeInvalidConfig)
	for _, want := range []string{"Config.HTTPClient.Transport ", "*http.Transport", "AllowPrivateNetworks"} {
		if err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	// Without the guard any RoundTripper is accepted.
	cfg.AllowPrivateNetworks = true
	if _, err := core.New(cfg); err != nil {
		t.Errorf("with AllowPrivateNetworks: %v", err)
	}
	cfg.AllowPrivateNetworks, cfg.AllowAnyIssuer, cfg.Issuers = false, false, []core.Issuer{{URL: "https://ehr.test/fhir"}}
	if _, err := core.New(cfg); err != nil {
		t.Errorf("without AllowAnyIssuer: %v", err)
	}
}

func TestCustomClientKeepsSameOriginRedirect(t *testing.T) {
	t.Parallel()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request reached the other origin: %s", r.URL)
	}))
	t.Cleanup(other.Close)
	ehr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(ehr.Close)
	var asked atomic.Int32
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		asked.Add(1)
		return nil // a caller's client that follows anything
	}}
	eng, err := core.New(core.Config{ClientID: "app", CallbackURL: "https://app.test/cb",
		Issuers: []core.Issuer{{URL: ehr.URL}}, AllowInsecureHTTP: true, HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	_, err = eng.Launch(context.Background(), "b", ehr.URL, "")
	wantCode(t, err, core.CodeDiscoveryFailed)
	if n := asked.Load(); n != 0 {
		t.Errorf("the caller's CheckRedirect was asked %d times about a redirect the engine refuses", n)
	}
}

func TestCustomClientCheckRedirectRunsAfterOurs(t *testing.T) {
	t.Parallel()
	// The issuer redirects within its own origin.
	mux := http.NewServeMux()
	front := httptest.NewServer(mux)
	t.Cleanup(front.Close)
	var asked atomic.Int32
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		asked.Add(1)
		return errors.New("the caller's rule")
	}}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/moved"+r.URL.Path, http.StatusFound)
	})
	eng, err := core.New(core.Config{ClientID: "app", CallbackURL: "https://app.test/cb",
		Issuers: []core.Issuer{{URL: front.URL + "/fhir"}}, AllowInsecureHTTP: true, HTTPClient: client, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = eng.Launch(context.Background(), "b", front.URL+"/fhir", "")
	wantCode(t, err, core.CodeDiscoveryFailed)
	if asked.Load() == 0 || !strings.Contains(err.Error(), "the caller's rule") {
		t.Errorf("the caller's CheckRedirect was not asked about a same-origin redirect (asked %d, error %v)", asked.Load(), err)
	}
}
