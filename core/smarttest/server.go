package smarttest

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a [Server]. The zero value is a working sandbox EHR.
type Options struct {
	// Addr is the TCP address to listen on, such as "127.0.0.1:9090".
	// The default is a random port on 127.0.0.1.
	Addr string

	// TLS starts the server with TLS (httptest's self-signed certificate);
	// use [Server.Client] to talk to it. The default is plain HTTP.
	TLS bool

	// Now is the server's clock, used for token, code and id_token times.
	// The default is time.Now.
	Now func() time.Time

	// AccessTokenLifetime is the lifetime of issued access tokens. The
	// default is one hour.
	AccessTokenLifetime time.Duration

	// IDTokenLifetime is the lifetime of issued id_tokens. The default is
	// one hour.
	IDTokenLifetime time.Duration

	// JWTAccessTokens makes access tokens signed JWTs (RS256, key "rsa-1")
	// instead of opaque random strings. The default is opaque tokens.
	JWTAccessTokens bool

	// IDTokenAlg is the id_token signing algorithm: "RS256", "RS384",
	// "ES256" or "ES384". The default is "RS256". Any other value makes
	// NewServer panic.
	IDTokenAlg string

	// OmitKID makes the JWKS serve only the id_token key, without a kid,
	// and id_tokens carry no kid header. The default is false.
	OmitKID bool

	// StandaloneContext is the launch context of an authorization request
	// that has no launch parameter (a standalone launch). When it is the
	// zero value, the context is the first sample patient ("pat-1") with
	// fhirUser "Practitioner/prac-1".
	StandaloneContext LaunchContext

	// NoSmartConfiguration makes /fhir/.well-known/smart-configuration
	// answer 404, so clients must fall back to /fhir/metadata, whose
	// CapabilityStatement names the endpoints (its oauth-uris extension)
	// but no issuer or key set. The default is false.
	NoSmartConfiguration bool

	// NoOpenIDConfiguration makes the authorization server's OpenID
	// Connect Discovery document, AuthIssuer()+
	// "/.well-known/openid-configuration", answer 404. With
	// NoSmartConfiguration, the EHR then names no issuer or key set
	// anywhere, and no id_token it issues can be verified. The default is
	// false: the document names the AuthIssuer(), JWKSURL() and the
	// authorization and token endpoints.
	NoOpenIDConfiguration bool

	// RelativeEndpoints makes the smart-configuration give its endpoints as
	// root-relative URLs ("/auth/token") and the CapabilityStatement as
	// path-relative ones ("../auth/token"), so clients must resolve them.
	// The issuer stays absolute. The default is false.
	RelativeEndpoints bool

	// AuthorizationResponseIss adds the RFC 9207 iss parameter (the
	// AuthIssuer) to the authorization response and advertises
	// authorization_response_iss_parameter_supported. The default is false.
	AuthorizationResponseIss bool

	// AppLaunchURL is the app's launch URL, linked from the EHR page at "/".
	// The default is empty: the page then says there is no app to launch.
	AppLaunchURL string

	// NoRevocationEndpoint leaves revocation_endpoint out of the
	// smart-configuration (and the revoke URI out of the
	// CapabilityStatement), as an EHR without token revocation does. The
	// endpoint itself still answers. The default is false: the server
	// advertises RevocationURL().
	NoRevocationEndpoint bool
}

// Server is a fake EHR: a SMART App Launch 2.2 authorization server and a
// FHIR R4 server over in-memory sample data, served by an
// [httptest.Server]. All its methods are safe for concurrent use.
type Server struct {
	opts    Options
	keys    *keySet
	handler http.Handler
	done    chan struct{}

	url       atomic.Pointer[string]
	srv       *httptest.Server
	closeOnce sync.Once
	conns     atomic.Int64 // connections accepted (Connections)

	mu             sync.Mutex
	faults         Faults
	counts         map[Endpoint]int
	fhirTokens     []string
	fhirAccepts    []string
	clients        map[string]Client
	launches       map[string]LaunchContext
	codes          map[string]*authCode
	accessTokens   map[string]*accessToken
	refreshTokens  map[string]*grant
	rotatedRefresh map[string]*grant
	assertionIDs   map[string]bool
	revokedTokens  []string
	refusals       map[Endpoint][]Refusal
	store          *resourceStore

	clientKeys clientKeySets // of clients registered by JWKS URL
}

// NewServer returns a started Server, listening on Options.Addr or a random
// port on 127.0.0.1. The caller must Close it, typically with t.Cleanup.
func NewServer(opts Options) *Server {
	s := NewUnstarted(opts)
	s.Start()
	return s
}

// NewUnstarted returns a Server that is not listening yet: its Handler can be
// served by the caller, or it can be started with [Server.Start] or
// [Server.StartOn]. Until it is started, its URLs are taken from each
// request's Host and the URL methods return relative paths.
// It panics if Options.IDTokenAlg is not supported.
func NewUnstarted(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AccessTokenLifetime <= 0 {
		opts.AccessTokenLifetime = time.Hour
	}
	if opts.IDTokenLifetime <= 0 {
		opts.IDTokenLifetime = time.Hour
	}
	if opts.IDTokenAlg == "" {
		opts.IDTokenAlg = "RS256"
	}
	if opts.StandaloneContext.isZero() {
		opts.StandaloneContext = LaunchContext{Patient: "pat-1", FHIRUser: "Practitioner/prac-1"}
	}
	keys, err := newKeySet(opts.IDTokenAlg, opts.OmitKID)
	if err != nil {
		panic("smarttest: " + err.Error())
	}
	s := &Server{
		opts:           opts,
		keys:           keys,
		done:           make(chan struct{}),
		counts:         make(map[Endpoint]int),
		clients:        make(map[string]Client),
		launches:       make(map[string]LaunchContext),
		codes:          make(map[string]*authCode),
		accessTokens:   make(map[string]*accessToken),
		refreshTokens:  make(map[string]*grant),
		rotatedRefresh: make(map[string]*grant),
		assertionIDs:   make(map[string]bool),
		refusals:       make(map[Endpoint][]Refusal),
		store:          newSampleStore(opts.Now()),
	}
	s.handler = s.routes()
	return s
}

// Start starts the server on Options.Addr or a random port on 127.0.0.1.
// It panics if the server was already started or the address can't be used.
func (s *Server) Start() { s.StartOn(nil) }

// StartOn starts the server on the given listener, or as Start does when l is
// nil. It panics if the server was already started.
func (s *Server) StartOn(l net.Listener) {
	if s.srv != nil {
		panic("smarttest: server already started")
	}
	if l == nil && s.opts.Addr != "" {
		var err error
		if l, err = net.Listen("tcp", s.opts.Addr); err != nil {
			panic("smarttest: " + err.Error())
		}
	}
	srv := httptest.NewUnstartedServer(s.handler)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	if l != nil {
		srv.Listener.Close()
		srv.Listener = l
	}
	if s.opts.TLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	s.srv = srv
	u := srv.URL
	s.url.Store(&u)
}

// Close stops the server, cutting short any Latency or Drip in progress, and
// waits for requests in flight.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
	if s.srv != nil {
		s.srv.Close()
	}
}

// Handler returns the server's HTTP handler, for callers that serve it
// themselves.
func (s *Server) Handler() http.Handler { return s.handler }

// Client returns an HTTP client for the server: with Options.TLS it trusts
// the server's certificate. It is nil before the server is started.
func (s *Server) Client() *http.Client {
	if s.srv == nil {
		return nil
	}
	return s.srv.Client()
}

// URL returns the server's root URL, such as "http://127.0.0.1:PORT", or ""
// before it is started.
func (s *Server) URL() string {
	if p := s.url.Load(); p != nil {
		return *p
	}
	return ""
}

// FHIRBaseURL returns the FHIR base URL, URL()+"/fhir": the SMART iss and the
// aud an app must send to the authorize endpoint.
func (s *Server) FHIRBaseURL() string { return s.URL() + "/fhir" }

// AuthIssuer returns the authorization server's issuer, URL()+"/auth": the
// issuer of the smart-configuration and of id_tokens. It is deliberately not
// the FHIR base URL.
func (s *Server) AuthIssuer() string { return s.URL() + "/auth" }

// AuthorizeURL returns the authorization endpoint's URL.
func (s *Server) AuthorizeURL() string { return s.URL() + "/auth/authorize" }

// TokenURL returns the token endpoint's URL, the aud of client assertions.
func (s *Server) TokenURL() string { return s.URL() + "/auth/token" }

// JWKSURL returns the URL of the JSON Web Key Set that verifies id_tokens.
func (s *Server) JWKSURL() string { return s.URL() + "/auth/jwks" }

// root returns the root URL for a request: the started server's URL, or one
// built from the request when the caller serves the Handler.
func (s *Server) root(r *http.Request) string {
	if u := s.URL(); u != "" {
		return u
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", s.endpoint(EndpointEHR, s.serveEHR))
	mux.Handle("GET /fhir/.well-known/smart-configuration", s.endpoint(EndpointDiscovery, s.serveSmartConfiguration))
	mux.Handle("GET /fhir/metadata", s.endpoint(EndpointMetadata, s.serveMetadata))
	fhir := s.endpoint(EndpointFHIR, s.serveFHIR)
	mux.Handle("/fhir", fhir)
	mux.Handle("/fhir/", fhir)
	mux.Handle("GET /auth/authorize", s.endpoint(EndpointAuthorize, s.serveAuthorize))
	mux.Handle("POST /auth/token", s.endpoint(EndpointToken, s.serveToken))
	mux.Handle("GET /auth/jwks", s.endpoint(EndpointJWKS, s.serveJWKS))
	mux.Handle("GET /auth/.well-known/openid-configuration", s.endpoint(EndpointOpenIDConfiguration, s.serveOpenIDConfiguration))
	mux.Handle("POST /auth/revoke", s.endpoint(EndpointRevoke, s.serveRevoke))
	return mux
}

// Count returns the number of requests served by an endpoint since the
// server started or since ResetCounts. A token request counts for
// EndpointToken and for EndpointTokenCode, EndpointTokenRefresh or
// EndpointTokenClientCredentials.
func (s *Server) Count(e Endpoint) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[e]
}

// ResetCounts sets every endpoint's count to zero, and forgets the
// Refusals.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	clear(s.counts)
	clear(s.refusals)
	s.mu.Unlock()
}

// Connections returns the number of connections the server has accepted
// since it started: every client's, new TCP connections only, so a client
// that keeps its connections alive and reuses them adds one per
// connection it holds, not one per request. It tells whether an app reuses
// its connections to the EHR. ResetCounts does not change it; compare two
// readings instead. A Handler served by the caller is not counted.
func (s *Server) Connections() int { return int(s.conns.Load()) }

// FHIRTokens returns the bearer tokens carried by FHIR resource requests
// (EndpointFHIR), in order of arrival. Requests without a token are not
// listed. The slice is a copy.
func (s *Server) FHIRTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.fhirTokens...)
}

// FHIRAccepts returns the Accept headers of FHIR resource requests
// (EndpointFHIR), in order of arrival, "" for a request without one, so
// that a test can see which media type and FHIR version (the fhirVersion
// parameter) a client asked for. The slice is a copy.
func (s *Server) FHIRAccepts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.fhirAccepts...)
}

// ExpireAccessTokens expires every access token issued so far: the FHIR
// server answers 401 to them, so clients must refresh. Tokens issued later
// are not affected.
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	for _, at := range s.accessTokens {
		at.expired = true
	}
	s.mu.Unlock()
}
