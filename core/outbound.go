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

// newHTTPClient returns the client the engine uses for the EHR's discovery,
// JWKS and token endpoints: the configured one, or a default with a timeout,
// no cross-origin redirects and (with AllowAnyIssuer) the private-address
// guard; either way with capped response bodies.
func newHTTPClient(cfg *Config, limit int64) *http.Client {
	var c http.Client
	if cfg.HTTPClient != nil {
		c = *cfg.HTTPClient
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if cfg.AllowAnyIssuer && !cfg.AllowPrivateNetworks {
			d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: refusePrivateAddress}
			tr.DialContext = d.DialContext
			tr.Proxy = nil // the guard must see the real destination
		}
		c = http.Client{Timeout: DefaultHTTPTimeout, Transport: tr, CheckRedirect: sameOriginRedirect}
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = &cappedTransport{base: base, limit: limit}
	return &c
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
		return fmt.Errorf("smart: refused to dial %s: loopback, private, link-local and unspecified addresses are not allowed with AllowAnyIssuer (set AllowPrivateNetworks for local development)", ap.Addr())
	}
	return nil
}

func publicAddress(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && !a.IsLoopback() && !a.IsPrivate() && !a.IsLinkLocalUnicast() &&
		!a.IsLinkLocalMulticast() && !a.IsUnspecified() && !a.IsMulticast() &&
		!a.IsInterfaceLocalMulticast() && !cgnat.Contains(a)
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

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
		return nil, fmt.Errorf("%s %s: %w (%d > %d bytes)", req.Method, redactedURL(req.URL), errResponseTooLarge, resp.ContentLength, t.limit)
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
		resp, err := e.client.Do(req.WithContext(ctx))
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
