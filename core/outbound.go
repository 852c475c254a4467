package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// errResponseTooLarge is returned when a response body passes its cap.
var errResponseTooLarge = errors.New("response body exceeds the size limit")

// newClients returns the engine's clients for the EHR: client for its
// discovery, JWKS and token endpoints, with bodies capped at
// 1 MiB (maxResponseBytes), and fhir for FHIR requests, capped at
// MaxFHIRResponseBytes. Both are copies of Config.HTTPClient, or of a
// default, composed with the engine's rules (see withRules), over one
// transport, so that they share its connections: a token request and the
// FHIR reads after it use the same pool, kept per host as
// MaxIdleConnsPerEHR says (see engineTransport). With AllowAnyIssuer and
// without AllowPrivateNetworks, that transport dials only public
// addresses (see guardedTransport). A Transport the guard cannot be
// installed in is an error naming Config.HTTPClient.Transport.
func newClients(cfg *Config) (client, fhir *http.Client, err error) {
	rt, err := engineTransport(cfg, cfg.AllowAnyIssuer && !cfg.AllowPrivateNetworks)
	if err != nil {
		return nil, nil, err
	}
	return withRules(cfg, rt, maxResponseBytes), withRules(cfg, rt, cfg.MaxFHIRResponseBytes), nil
}

// newOutsideClient returns the client for a ReadyClient's requests to
// URLs outside its FHIR server's origin (an absolute fhirUser, a
// reference the app read from a request), given fhir, the client for its
// FHIR server. With AllowAnyIssuer, fhir dials only public addresses
// already and is used as it is; so it is with AllowPrivateNetworks, which
// lets any request reach any address. In allowlist mode without it, the
// FHIR server the app configured may be on a private network, but a URL
// elsewhere is not one the app configured: the client returned is fhir's
// twin with the address guard. When Config.HTTPClient's Transport cannot
// take the guard, that client refuses every request, with an error that
// says what to change; New does not fail, since only these requests need
// the guard.
func newOutsideClient(cfg *Config, fhir *http.Client) *http.Client {
	if cfg.AllowAnyIssuer || cfg.AllowPrivateNetworks {
		return fhir
	}
	// The guard is in the dialing: these requests need a transport of
	// their own, with its own pool (per host, as fhir's).
	rt, err := engineTransport(cfg, true)
	if err != nil {
		return &http.Client{Transport: refusingTransport{fmt.Errorf("smart: a URL outside the launch's FHIR server is fetched only through the check of the dialled address (no loopback, private or other non-public address), which Config.HTTPClient.Transport (a %T) cannot take: pass an *http.Transport (or none), or set AllowPrivateNetworks", cfg.HTTPClient.Transport)}}
	}
	return withRules(cfg, rt, cfg.MaxFHIRResponseBytes)
}

// refusingTransport answers every request with its error.
type refusingTransport struct{ err error }

func (t refusingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close() // as a RoundTripper must
	}
	return nil, t.err
}

// engineTransport returns the transport under the engine's clients, with
// the address guard when guard is set. Without Config.HTTPClient, or when
// its Transport is nil, it is a clone of http.DefaultTransport that keeps
// MaxIdleConnsPerEHR idle connections per host (see pooled). A Transport
// of the caller's is used as it is, or, for the guard, cloned with its own
// pool settings: the engine never changes them.
func engineTransport(cfg *Config, guard bool) (http.RoundTripper, error) {
	var base http.RoundTripper
	if cfg.HTTPClient != nil {
		base = cfg.HTTPClient.Transport
	}
	switch {
	case guard:
		tr, err := guardedTransport(base)
		if err != nil {
			return nil, err
		}
		if base == nil {
			pooled(tr, cfg.MaxIdleConnsPerEHR)
		}
		return tr, nil
	case base == nil:
		tr := defaultTransport()
		pooled(tr, cfg.MaxIdleConnsPerEHR)
		return tr, nil
	}
	return base, nil
}

// pooled sets the pool of a transport the engine built: n idle connections
// kept per host (none when n is negative: DisableKeepAlives), and, in all,
// http.DefaultTransport's 100 or n when that is more.
func pooled(tr *http.Transport, n int) {
	if n < 0 {
		tr.DisableKeepAlives = true
		return
	}
	tr.MaxIdleConnsPerHost = n
	tr.MaxIdleConns = max(tr.MaxIdleConns, n)
}

// withRules returns a copy of Config.HTTPClient (or of a zero client) over
// rt, composed with the rules a caller cannot turn off: it follows no
// redirect to another origin (the caller's CheckRedirect runs after that
// rule), has a defaultHTTPTimeout timeout when the caller gave none, caps
// response bodies at limit, and keeps no cookie jar: the engine's requests
// are every user's, and a cookie an EHR sets for one must not go out with
// another's.
func withRules(cfg *Config, rt http.RoundTripper, limit int64) *http.Client {
	var c http.Client
	if cfg.HTTPClient != nil {
		c = *cfg.HTTPClient
	}
	c.Jar = nil
	if c.Timeout == 0 {
		c.Timeout = defaultHTTPTimeout
	}
	if check := c.CheckRedirect; check != nil {
		c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if err := sameOriginRedirect(req, via); err != nil {
				return err
			}
			return check(req, via)
		}
	} else {
		c.CheckRedirect = sameOriginRedirect
	}
	c.Transport = &cappedTransport{base: rt, limit: limit}
	return &c
}

// guardedTransport returns a clone of rt that connects only to public
// addresses. A nil rt, or a transport without a dial function of its own,
// gets a net.Dialer whose Control function checks the resolved address
// before connecting. A DialContext, Dial, DialTLSContext or DialTLS of the
// caller's own is wrapped instead, and the connection it returns is checked
// by its remote address: that form sees the address only once connected
// (and then closes the connection), so it cannot stop the connection
// attempt itself. The proxy is removed: through a proxy the guard would see
// the proxy's address, not the EHR's. Any other RoundTripper cannot be
// guarded and is a configuration error.
func guardedTransport(rt http.RoundTripper) (*http.Transport, error) {
	var tr *http.Transport
	switch t := rt.(type) {
	case nil:
		tr = defaultTransport()
		tr.DialContext = nil // replaced by the checking dialer below
	case *http.Transport:
		tr = t.Clone()
	default:
		return nil, configError("HTTPClient.Transport", "is a %T, which the engine cannot guard: with AllowAnyIssuer it must install its check of the dialled address (no loopback, private or other non-public address) in the transport's dialing, and only an *http.Transport allows that. Pass an *http.Transport (or none), or set AllowPrivateNetworks for local development", rt)
	}
	tr.Proxy = nil
	switch {
	case tr.DialContext != nil:
		tr.DialContext = checkedDial(tr.DialContext)
	case tr.Dial != nil:
		dial := tr.Dial
		tr.Dial = nil
		tr.DialContext = checkedDial(func(_ context.Context, network, addr string) (net.Conn, error) { return dial(network, addr) })
	default:
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: refusePrivateAddress}
		tr.DialContext = d.DialContext
	}
	if tr.DialTLSContext != nil {
		tr.DialTLSContext = checkedDial(tr.DialTLSContext)
	} else if tr.DialTLS != nil {
		dial := tr.DialTLS
		tr.DialTLS = nil
		tr.DialTLSContext = checkedDial(func(_ context.Context, network, addr string) (net.Conn, error) { return dial(network, addr) })
	}
	return tr, nil
}

// checkedDial wraps a caller's dial function: the connection it returns is
// closed and refused when its remote address is not public.
func checkedDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		var remote string
		if ra := conn.RemoteAddr(); ra != nil {
			remote = ra.String()
		}
		if err := refusePrivateAddress(network, remote, nil); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
}

// sameOriginRedirect follows at most five redirects, none to another origin,
// so a request carrying credentials never leaves the host it was sent to.
func sameOriginRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("stopped after 5 redirects")
	}
	if req.URL.Scheme != via[0].URL.Scheme || req.URL.Host != via[0].URL.Host {
		return fmt.Errorf("refused redirect to another origin (%s)", req.URL.Host)
	}
	return nil
}

// refusePrivateAddress is a net.Dialer Control function. It runs after DNS
// resolution, on the address actually dialled, so DNS rebinding cannot slip
// past it.
func refusePrivateAddress(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("smart: refused to dial %q: %w", address, err)
	}
	if !publicAddress(ap.Addr()) {
		return fmt.Errorf("smart: refused to dial %s: loopback, private, link-local and unspecified addresses are not allowed with AllowAnyIssuer, nor for a URL outside a launch's FHIR server (set AllowPrivateNetworks for local development)", ap.Addr())
	}
	return nil
}

// publicAddress reports whether a is a globally reachable unicast address:
// in none of the nonPublic ranges, and, when it carries an IPv4 address
// (IPv4-mapped, NAT64 64:ff9b::/96, 6to4 2002::/16), carrying a public one.
// An IPv6 address outside 2000::/3, the only block IANA allocates for global
// unicast, is refused too, NAT64's 64:ff9b::/96 apart.
func publicAddress(a netip.Addr) bool {
	a = a.WithZone("") // a zone would make every Prefix.Contains false
	if !a.IsValid() {
		return false
	}
	if a.Is4In6() {
		return publicAddress(a.Unmap())
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	if a.Is4() {
		return true
	}
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return publicAddress(netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(a):
		return publicAddress(netip.AddrFrom4([4]byte(b[2:6])))
	}
	return globalUnicast.Contains(a)
}

var (
	nat64         = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour     = netip.MustParsePrefix("2002::/16")
	globalUnicast = netip.MustParsePrefix("2000::/3")
)

// nonPublic lists the addresses the engine never dials with AllowAnyIssuer:
// the ranges of the IANA IPv4 and IPv6 Special-Purpose Address Registries
// (RFC 6890; iana.org/assignments/iana-ipv4-special-registry and
// iana-ipv6-special-registry) that are not globally reachable, with
// multicast and the deprecated site-local block. Whole blocks are refused
// where the registry makes a few addresses inside them reachable (anycast
// in 192.0.0.0/24 and 2001::/23): no EHR serves from those. IPv4-mapped,
// NAT64 and 6to4 addresses are judged by the IPv4 address they carry (see
// publicAddress).
var nonPublic = []netip.Prefix{
	// IPv4
	netip.MustParsePrefix("0.0.0.0/8"),          // "this network" (RFC 791)
	netip.MustParsePrefix("10.0.0.0/8"),         // private (RFC 1918)
	netip.MustParsePrefix("100.64.0.0/10"),      // shared address space, CGNAT (RFC 6598)
	netip.MustParsePrefix("127.0.0.0/8"),        // loopback (RFC 1122)
	netip.MustParsePrefix("169.254.0.0/16"),     // link-local, cloud metadata (RFC 3927)
	netip.MustParsePrefix("172.16.0.0/12"),      // private (RFC 1918)
	netip.MustParsePrefix("192.0.0.0/24"),       // IETF protocol assignments, DS-Lite, NAT64 discovery (RFC 6890)
	netip.MustParsePrefix("192.0.2.0/24"),       // documentation TEST-NET-1 (RFC 5737)
	netip.MustParsePrefix("192.88.99.0/24"),     // 6to4 relay anycast, deprecated (RFC 7526)
	netip.MustParsePrefix("192.168.0.0/16"),     // private (RFC 1918)
	netip.MustParsePrefix("198.18.0.0/15"),      // benchmarking (RFC 2544)
	netip.MustParsePrefix("198.51.100.0/24"),    // documentation TEST-NET-2 (RFC 5737)
	netip.MustParsePrefix("203.0.113.0/24"),     // documentation TEST-NET-3 (RFC 5737)
	netip.MustParsePrefix("224.0.0.0/4"),        // multicast (RFC 5771)
	netip.MustParsePrefix("240.0.0.0/4"),        // reserved (RFC 1112)
	netip.MustParsePrefix("255.255.255.255/32"), // limited broadcast (RFC 919)
	// IPv6
	netip.MustParsePrefix("::/128"),         // unspecified (RFC 4291)
	netip.MustParsePrefix("::1/128"),        // loopback (RFC 4291)
	netip.MustParsePrefix("::/96"),          // IPv4-compatible, deprecated (RFC 4291)
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use IPv4/IPv6 translation (RFC 8215)
	netip.MustParsePrefix("100::/64"),       // discard-only (RFC 6666)
	netip.MustParsePrefix("2001::/23"),      // IETF protocol assignments: Teredo, benchmarking, ORCHID … (RFC 2928)
	netip.MustParsePrefix("2001:db8::/32"),  // documentation (RFC 3849)
	netip.MustParsePrefix("3fff::/20"),      // documentation (RFC 9637)
	netip.MustParsePrefix("5f00::/16"),      // segment routing SIDs (RFC 9602)
	netip.MustParsePrefix("fc00::/7"),       // unique local (RFC 4193)
	netip.MustParsePrefix("fe80::/10"),      // link-local (RFC 4291)
	netip.MustParsePrefix("fec0::/10"),      // site-local, deprecated (RFC 3879)
	netip.MustParsePrefix("ff00::/8"),       // multicast (RFC 4291)
}

// cappedTransport wraps response bodies so that reading past limit fails.
type cappedTransport struct {
	base  http.RoundTripper
	limit int64
}

func (t *cappedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.limit {
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %w (%d > %d bytes)", req.Method, req.URL.Host, errResponseTooLarge, resp.ContentLength, t.limit)
	}
	resp.Body = &cappedBody{rc: resp.Body, left: t.limit}
	return resp, nil
}

type cappedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One more byte tells a body of exactly the limit from a longer one.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, errResponseTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }

// readBody reads a whole response body and closes it.
func readBody(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// retryable reports whether a response status is worth another try.
func retryable(status int) bool {
	return status == http.StatusInternalServerError || status == http.StatusBadGateway ||
		status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout ||
		status == http.StatusTooManyRequests
}

// send makes a request to the EHR, built anew by build for every attempt (a
// client assertion must not be replayed), retrying network errors and 5xx
// answers up to MaxRetries times with exponential backoff. The caller owns
// the returned response's body.
func (e *Engine) send(ctx context.Context, is *Issuer, build func() (*http.Request, error)) (*http.Response, error) {
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		req, err := build()
		if err != nil {
			return nil, err
		}
		for k, v := range is.Header {
			req.Header[k] = v
		}
		resp, err := e.tel.do(e.client, req.WithContext(ctx))
		last := attempt >= e.cfg.MaxRetries || ctx.Err() != nil
		switch {
		case err != nil && (last || errors.Is(err, errResponseTooLarge)):
			return nil, err
		case err == nil && (last || !retryable(resp.StatusCode)):
			return resp, nil
		case err == nil:
			io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
			resp.Body.Close()
			e.log.LogAttrs(ctx, logWarn, "retrying EHR request", attrURL(req), attrStatus(resp.StatusCode))
		default:
			e.log.LogAttrs(ctx, logWarn, "retrying EHR request", attrURL(req), attrErr(err))
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		backoff *= 3
	}
}

// issuerClient returns the engine's client, adding the issuer's extra
// headers when it has any; for code (go-oidc's key set) that makes its own
// requests.
func (e *Engine) issuerClient(is *Issuer) *http.Client {
	if len(is.Header) == 0 {
		return e.client
	}
	c := *e.client
	c.Transport = &headerTransport{base: e.client.Transport, header: is.Header}
	return &c
}

type headerTransport struct {
	base   http.RoundTripper
	header http.Header
}

func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, v := range t.header {
		req.Header[k] = v
	}
	return t.base.RoundTrip(req)
}

// defaultTransport returns a clone of http.DefaultTransport, or, when a
// program has replaced http.DefaultTransport with a RoundTripper of
// another type, a transport with the same settings Go's default has.
func defaultTransport() *http.Transport {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		return t.Clone()
	}
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
	}
}
