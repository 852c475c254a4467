package core

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"
)

// Defaults used by [New] for the Config fields left zero; each field's
// comment names its value.
const (
	defaultScope              = "launch openid fhirUser patient/*.read offline_access"
	defaultPendingLaunchTTL   = 10 * time.Minute
	defaultLaunchTTL          = 12 * time.Hour
	discoveryTTL              = time.Hour   // how long an issuer's configuration is cached
	fallbackRetryTTL          = time.Minute // the same, when read from the CapabilityStatement after the smart-configuration failed for a reason that may pass
	defaultLeeway             = time.Minute
	defaultHTTPTimeout        = 15 * time.Second
	maxResponseBytes          = 1 << 20 // the cap of each discovery, JWKS and token response
	defaultMaxFHIRBytes       = 8 << 20
	defaultMaxRetries         = 2
	defaultMaxLaunches        = 10
	defaultMaxPendingLaunches = 10
	defaultRefreshLockTTL     = 30 * time.Second
	defaultMaxIdleConnsPerEHR = 32
)

// Config configures an [Engine]. Only ClientID, CallbackURL and
// either Issuers or AllowAnyIssuer are required (CallbackURL only for
// launches); every other field has a default, named in its comment.
type Config struct {
	// ClientID is the app's client id at the EHR's authorization server.
	// An Issuer may override it.
	ClientID string

	// Scope is the space-separated scope requested on an EHR launch. The
	// default is "launch openid fhirUser patient/*.read offline_access". A
	// standalone launch (one without a launch parameter) asks for it with
	// "launch" replaced by "launch/patient", so the EHR asks the user for a
	// patient.
	//
	// With openid, the EHR must name the issuer and key set of its
	// id_tokens (in its smart-configuration, or its authorization server's
	// OpenID configuration): a launch from an EHR that names none is
	// refused by [Engine.Launch] with CodeDiscoveryFailed, before the user
	// logs in.
	Scope string

	// RequiredScope is the space-separated scope the app cannot work
	// without, such as "patient/Observation.rs". When the EHR grants a
	// launch less than this (read as the scope package's Set.Missing reads
	// it, so a granted patient/*.rs covers a required
	// patient/Observation.read),
	// [Engine.Callback] fails with CodeScopeDenied, naming the missing
	// tokens, and stores nothing. It should be part of the scope
	// requested. The default is "": any grant is accepted, and
	// [ReadyClient.MissingScopes] tells what it lacks.
	RequiredScope string

	// CallbackURL is the absolute URL of the app's callback route: the
	// OAuth redirect_uri registered with the EHR. An app that uses SMART
	// Backend Services only ([Engine.Backend]) leaves it empty: its
	// Launch then fails with CodeInvalidConfig.
	CallbackURL string

	// Storage keeps the engine's records: pending launches, launches with
	// their tokens, and each browser's lists of them. The default is an
	// in-memory Storage ([NewMemoryStorage]) of this process, which is
	// right for one instance; apps on several instances share one, such as
	// the sessions package's over Redis or PostgreSQL (the adapters use the
	// session manager's store when this is nil).
	Storage Storage

	// Locker makes the engine's read-then-write steps atomic across every
	// process that shares Storage: the take of a pending launch at its
	// callback, a token refresh (one refresh per launch, no rotated refresh
	// token lost) and a change to a browser's list of launches. The
	// default is nil: a lock of this process only, which is right for one
	// instance, or a Storage that is a [Taker] for the first step. Apps on
	// several instances set one, such as sessions/redislock's or
	// sessions/pgxlock's.
	Locker Locker

	// Issuers lists the EHRs (FHIR base URLs, the launch's iss) the app
	// accepts, each with its own settings. A launch from an issuer not in
	// the list fails with CodeUnknownIssuer unless AllowAnyIssuer is set.
	Issuers []Issuer

	// AllowAnyIssuer accepts launches from any issuer, with the settings of
	// DefaultIssuer. Only apps that are registered with many EHRs under one
	// client id need it. When it is set, the engine's HTTP client (the
	// default one or a copy of HTTPClient) refuses to connect to loopback,
	// private, link-local and every other address that is not globally
	// reachable, unless AllowPrivateNetworks is also set; and an issuer
	// that is not in Issuers must serve its discovery, authorization
	// server and key set from its own origin, which may not be the origin
	// of a configured issuer (see SECURITY.md, "The issuer-binding rule").
	// The default is false.
	AllowAnyIssuer bool

	// DefaultIssuer holds the settings for issuers accepted through
	// AllowAnyIssuer. Its URL is ignored. Its Auth may be public or
	// private_key_jwt only, and it may have no Header or
	// AuthorizationServer: New refuses them, since they would go to
	// whatever server a launch names. Its CallbackURL, when set, is the
	// redirect_uri of every such issuer.
	DefaultIssuer Issuer

	// AllowInsecureHTTP accepts http:// issuers and endpoints. It is for
	// local development and tests only: over plain http, tokens travel in
	// clear text. The default is false: https only.
	AllowInsecureHTTP bool

	// InsecureAcceptMissingIss accepts a callback without the RFC 9207 iss
	// parameter even when another issuer the app accepts shares its
	// redirect URI, so that nothing proves which authorization server
	// answered. It re-opens the mix-up attack of SECURITY.md: an EHR the
	// app accepts (with AllowAnyIssuer, any server on the internet) that a
	// clinician is lured to launch from can forward the clinician to
	// another EHR and take that EHR's code, or inject it into the
	// attacker's own launch and use the clinician's account there. Leave it
	// false; give each issuer its own Issuer.CallbackURL instead, or use
	// EHRs that send iss. The default is false.
	InsecureAcceptMissingIss bool

	// AllowPrivateNetworks lets the engine's HTTP client connect to
	// loopback and private addresses when AllowAnyIssuer is set, and, in
	// any mode, lets a launch's FHIR requests to another origin than its
	// FHIR server's (an absolute fhirUser, say) reach them. It is for local
	// development only. The default is false.
	AllowPrivateNetworks bool

	// HTTPClient makes every request to the EHR. The default is a client
	// with a 15-second timeout over a clone of
	// http.DefaultTransport that keeps MaxIdleConnsPerEHR idle connections
	// per host; a client of yours whose Transport is nil gets that clone
	// too.
	//
	// The engine uses a copy of the client you set, composed with rules a
	// client cannot turn off: redirects to another origin are refused (your
	// CheckRedirect runs after that check, on the redirects it lets
	// through); a zero Timeout becomes 15 seconds; response bodies
	// are capped (1 MiB for discovery, JWKS and token responses,
	// MaxFHIRResponseBytes for FHIR ones); a Jar is
	// dropped (the engine's requests are every user's, and a cookie an EHR
	// sets for one must not go out with another's). A non-zero Timeout and
	// your Transport's TLS and dial settings are kept.
	//
	// With AllowAnyIssuer and without AllowPrivateNetworks, the Transport
	// must be nil or an *http.Transport, or New fails with
	// CodeInvalidConfig: the engine uses a clone of it that checks every
	// address it connects to. A nil Transport, or one without a dial
	// function of its own, gets a dialer that checks the resolved address
	// before connecting. Your own DialContext (or DialTLSContext) is
	// wrapped, and the connection it returns is checked by its remote
	// address and closed if refused: that form sees the address only once
	// connected, so the connection attempt itself still happens (a clone of
	// http.DefaultTransport has a DialContext; set it to nil to have the
	// check before connecting). The clone's Proxy is removed, since through
	// a proxy the check would see the proxy's address and not the EHR's.
	// Any other RoundTripper (a recorder, a tracing wrapper) cannot be
	// checked: wrap an *http.Transport's DialContext instead, or, for local
	// development, set AllowPrivateNetworks.
	HTTPClient *http.Client

	// Now is the clock. The default is time.Now.
	Now func() time.Time

	// Logger receives structured logs. It never receives a token. The
	// default discards everything.
	Logger *slog.Logger

	// TracerProvider makes the engine's spans: launch, callback (with
	// discovery, token, JWKS and id_token verification under it), ready,
	// refresh, logout and every request to the EHR, children of the span
	// in the context the engine is called with. The W3C traceparent of a
	// request's span goes to the EHR when the global propagator writes one
	// (otel.SetTextMapPropagator); nothing else it writes does. The
	// default is the global provider (otel.GetTracerProvider), as
	// otelhttp's; without an SDK installed, spans cost next to nothing.
	//
	// No span, event or attribute ever holds a token, code, state, nonce,
	// assertion, cookie, session id, launch handle, patient, encounter or
	// user id, or a URL query: issuers appear by host, FHIR URLs with
	// every id replaced ("/fhir/Patient/{id}"), errors by their Code (as
	// smart.error.code).
	TracerProvider trace.TracerProvider

	// MeterProvider makes the engine's metrics: smart.launches and
	// smart.callbacks (by outcome and issuer host), smart.refreshes (ok,
	// failed or waited), smart.refresh.locks.active,
	// smart.fhir.request.duration (by issuer host, method and status
	// class) and smart.store.operation.duration (by operation). Their
	// attributes are as few and as free of secrets as the spans': the
	// issuer host (smart.issuer) is a configured issuer's, or "_OTHER" for
	// any issuer AllowAnyIssuer accepts, so that no launch adds values. The
	// default is the global provider (otel.GetMeterProvider).
	MeterProvider metric.MeterProvider

	// Leeway is the clock skew allowed when checking id_token times, and how
	// long before its expiry an access token is refreshed. The default is
	// one minute.
	Leeway time.Duration

	// PendingLaunchTTL is how long a user may take between the launch and
	// the callback. The default is 10 minutes.
	PendingLaunchTTL time.Duration

	// LaunchTTL is how long a finished launch is kept, with its tokens. The
	// default is 12 hours.
	LaunchTTL time.Duration

	// MaxFHIRResponseBytes caps each FHIR response read by a ReadyClient.
	// The default is 8 MiB.
	MaxFHIRResponseBytes int64

	// MaxIdleConnsPerEHR is how many idle connections the engine keeps
	// open to each host of an EHR (each scheme, host and port: its FHIR
	// server, its authorization server) for later requests to reuse, so
	// that a page's FHIR reads do not each dial, and over TLS shake hands,
	// again. Discovery, JWKS, token and FHIR requests share one pool. It
	// bounds idle connections only, not those in use: a page that makes
	// more parallel requests to one host gets them all, but the
	// connections over the bound are closed when they finish, and the next
	// page dials again; set it to the most parallel requests your app
	// makes to one EHR at busy times. In all, the engine keeps at most 100
	// idle connections (or MaxIdleConnsPerEHR, if more), closing the least
	// recently used first; an idle connection is closed after 90 seconds.
	// The default is 32; -1 keeps none, so that
	// every request opens a connection and closes it.
	//
	// It applies to the transports the engine builds: when HTTPClient or
	// its Transport is nil. A Transport of your own keeps its own pool
	// settings (an http.Transport's MaxIdleConnsPerHost, which keeps 2
	// when zero): the engine does not change them, and the clone it makes
	// to check addresses (see AllowAnyIssuer) keeps them.
	MaxIdleConnsPerEHR int

	// MaxRetries is how many times a request to the EHR's discovery or token
	// endpoint is retried after a network error or a 429, 500, 502, 503 or
	// 504 answer, with backoff. The default is 2; -1 disables retries.
	MaxRetries int

	// RefreshLockTTL bounds one token refresh: the time a refresh may take,
	// and how long the Locker's lock is held at most if its holder dies.
	// The default is 30 seconds.
	RefreshLockTTL time.Duration

	// MaxLaunches is how many finished launches one browser session keeps;
	// launching more evicts the oldest. The default is 10.
	MaxLaunches int

	// MaxPendingLaunches is how many launches one browser session may have
	// started and not yet finished; starting more deletes the oldest, so a
	// browser that calls the launch route in a loop keeps a bounded number
	// of records in the store. The default is 10.
	MaxPendingLaunches int

	// StoreKeys seal the engine's records at rest: pending launches (with
	// their PKCE verifiers), launch records (with their access, refresh
	// and id tokens and launch context) and each session's lists of them
	// are encrypted and authenticated with AES-256-GCM before they reach
	// the Storage, the record's storage key bound in, so a value copied
	// under another key does not open. Each key is 32 random bytes in
	// standard base64, as `openssl rand -base64 32` prints them (kept as a
	// Secret, so that printing a Config shows none); New refuses any other.
	//
	// The first key seals every record written; every key opens. To
	// rotate, put a new key first and keep the old one after it: records
	// sealed with the old key stay readable, and each is sealed with the
	// new key when it is next written. After LaunchTTL no record needs
	// the old key any more, and it can be removed. A sealed value names
	// its key by a short hash of the key, so the order of the others does
	// not matter.
	//
	// A record that no key opens (sealed with a key since removed, changed
	// in the store, or stored unsealed: with keys set, a plain record from
	// before they were is refused, so nobody who can write to the store
	// can plant one) is treated as missing (ErrNotFound, with a cause
	// that says so) and a warning goes to the log: the user launches again. Turning
	// StoreKeys on therefore ends the launches stored before.
	//
	// Nonces are random (96 bits), so rotate a key before it has sealed
	// about 2^32 records: for most apps, years of launches.
	//
	// The default is none: records are stored as plain JSON, readable by
	// anyone who can read the store. That is fine for an in-memory store
	// only; the adapters log a warning when another store runs without
	// StoreKeys.
	StoreKeys []Secret
}

// Issuer is one EHR the app accepts launches from, with its own settings.
type Issuer struct {
	// URL is the FHIR base URL, exactly as the EHR sends it in iss (a
	// trailing slash is ignored).
	URL string

	// ClientID overrides Config.ClientID for this issuer.
	ClientID string

	// Scope overrides Config.Scope for this issuer.
	Scope string

	// Auth is how the app authenticates at the token endpoint. The default
	// is a public client (no authentication).
	Auth ClientAuth

	// Header holds extra headers sent on every request to this issuer's
	// discovery, token and FHIR endpoints, for vendor quirks. It is not
	// allowed on Config.DefaultIssuer: headers often carry credentials.
	Header http.Header

	// AuthorizationServer is the issuer identifier of the EHR's
	// authorization server (the "issuer" of its smart-configuration and
	// the "iss" of its id_tokens) when that server lives on another origin
	// than URL, as with EHRs whose OAuth service has a host of its own.
	// Discovery must then declare exactly this issuer, and its
	// authorization, token, JWKS and revocation endpoints must be on this
	// URL's origin. The default is empty: the declared issuer and every
	// endpoint must be on URL's own origin. Either way, what an issuer's
	// discovery document says can never point the app at another origin
	// than the one the app's configuration names. See SECURITY.md.
	//
	// It is also where the engine reads the OpenID configuration
	// ({AuthorizationServer}/.well-known/openid-configuration, which must
	// declare exactly this issuer) when the scope has openid and the
	// smart-configuration names no issuer or jwks_uri, or there is none;
	// see [Engine.Discover]. It may be on URL's own origin, for an EHR
	// whose OpenID issuer is not where its endpoints suggest.
	AuthorizationServer string

	// CallbackURL overrides Config.CallbackURL as the redirect_uri sent
	// to this issuer. Give each EHR its own, such as
	// "https://app.example/fhir/callback?ehr=epic", and register that
	// exact URL with it: the callback then proves which authorization
	// server answered even when the EHR sends no RFC 9207 iss, the
	// distinct-redirect-URI defence of RFC 9700 section 4.4.2. It must be
	// Config.CallbackURL with query parameters added (the same callback
	// route serves every issuer). The default is Config.CallbackURL.
	CallbackURL string
}

// ClientAuth is how the app authenticates at an issuer's token endpoint:
// with a Secret (client_secret_basic, or client_secret_post), with a
// Signer (private_key_jwt, SMART's asymmetric client authentication), or,
// with neither, as a public client that sends only its client_id.
type ClientAuth struct {
	// Secret is the client secret of a confidential client.
	Secret Secret

	// AuthStyle says how Secret is sent: in HTTP Basic auth
	// (client_secret_basic, oauth2.AuthStyleInHeader, the default when it
	// is zero) or in the form body (client_secret_post,
	// oauth2.AuthStyleInParams).
	AuthStyle oauth2.AuthStyle

	// Signer signs client assertions (private_key_jwt, RFC 7523). Any
	// crypto.Signer works, so a key held in a KMS or HSM can be used. Its
	// public key must be RSA of at least 2048 bits (the assertions are
	// signed RS384) or ECDSA on P-384 (ES384), the algorithms SMART asks
	// for. Other keys, ECDSA on P-256 or P-521 and Ed25519 among them, are
	// refused by New.
	Signer crypto.Signer

	// KeyID is the kid of the signing key in the app's published JWKS.
	KeyID string

	method authMethod // filled by validate
	alg    string     // the Signer's algorithm, filled by validate
}

// authMethod names a client authentication method of the token endpoint.
type authMethod string

const (
	authPublic            authMethod = "none"
	authClientSecretBasic authMethod = "client_secret_basic"
	authClientSecretPost  authMethod = "client_secret_post"
	authPrivateKeyJWT     authMethod = "private_key_jwt"
)

// validate checks one issuer's settings and fills its defaults.
func (is *Issuer) validate(field string, cfg *Config, any bool) error {
	if !any {
		u, err := url.Parse(is.URL)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return configError(field+".URL", "must be an absolute http(s) URL, got %q", is.URL)
		}
		if u.Scheme == "http" && !cfg.AllowInsecureHTTP {
			return configError(field+".URL", "is http (%q); use https, or set AllowInsecureHTTP for local development", is.URL)
		}
		is.URL = strings.TrimRight(is.URL, "/")
	}
	if err := is.validateServer(field, cfg, any); err != nil {
		return err
	}
	if is.ClientID == "" {
		is.ClientID = cfg.ClientID
	}
	if is.ClientID == "" {
		return configError(field+".ClientID", "is empty and Config.ClientID is empty")
	}
	a := &is.Auth
	switch {
	case a.Secret != "" && a.Signer != nil:
		return configError(field+".Auth", "has both a Secret and a Signer; set the one the EHR registered")
	case a.Secret != "":
		if any {
			return configError(field+".Auth.Secret", "is set, but DefaultIssuer's settings go to every issuer a launch names: "+
				"the secret would be sent to whatever token endpoint an unknown EHR declares. List the EHRs that share the secret in Issuers, "+
				"or use a Signer (its assertion names the token endpoint it is for)")
		}
		switch a.AuthStyle {
		case oauth2.AuthStyleAutoDetect, oauth2.AuthStyleInHeader:
			a.method = authClientSecretBasic
		case oauth2.AuthStyleInParams:
			a.method = authClientSecretPost
		default:
			return configError(field+".Auth.AuthStyle", "is %d; use oauth2.AuthStyleInHeader or oauth2.AuthStyleInParams", a.AuthStyle)
		}
	case a.Signer != nil:
		alg, err := signingAlgorithm(a.Signer)
		if err != nil {
			return configError(field+".Auth.Signer", "%v", err)
		}
		a.method, a.alg = authPrivateKeyJWT, alg
	default:
		a.method = authPublic
	}
	return nil
}

// minRSABits is the smallest RSA key accepted for client assertions.
const minRSABits = 2048

// signingAlgorithm returns the client assertion algorithm of a signer's
// key, as SMART's asymmetric client authentication allows: RS384 for RSA
// of at least 2048 bits, ES384 for ECDSA on P-384. Any other key (ECDSA on
// P-256 or P-521, Ed25519, short RSA) could not sign an assertion the EHR
// accepts, so it is refused here, at New, rather than at the first token
// request. The error says what the key is and is meant to follow the name
// of the field that holds it.
func signingAlgorithm(s crypto.Signer) (string, error) {
	want := ""
	switch k := s.Public().(type) {
	case *rsa.PublicKey:
		if k.N == nil || k.N.BitLen() < minRSABits {
			bits := 0
			if k.N != nil {
				bits = k.N.BitLen()
			}
			return "", fmt.Errorf("is a %d-bit RSA key; RS384 needs at least %d bits", bits, minRSABits)
		}
		want = "RS384"
	case *ecdsa.PublicKey:
		if k.Curve == nil || k.Curve != elliptic.P384() {
			name := "unknown"
			if k.Curve != nil {
				name = k.Curve.Params().Name
			}
			return "", fmt.Errorf("is an ECDSA key on %s; ES384 needs P-384 (or use an RSA key, for RS384)", name)
		}
		want = "ES384"
	default:
		return "", fmt.Errorf("has a %T public key; SMART needs RSA of at least %d bits (RS384) or ECDSA on P-384 (ES384)", s.Public(), minRSABits)
	}
	return want, nil
}

// withDefaults validates cfg and returns a copy with every default filled.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.ClientID == "" && len(cfg.Issuers) == 0 {
		return cfg, configError("ClientID", "is empty")
	}
	if cfg.Scope == "" {
		cfg.Scope = defaultScope
	}
	if cfg.CallbackURL != "" { // none: Backend Services only (see CallbackURL)
		cb, err := url.Parse(cfg.CallbackURL)
		if err != nil || !cb.IsAbs() || cb.Host == "" {
			return cfg, configError("CallbackURL", "must be the absolute URL of the callback route, got %q", cfg.CallbackURL)
		}
	}
	if len(cfg.Issuers) == 0 && !cfg.AllowAnyIssuer {
		return cfg, configError("Issuers", "is empty; list the EHRs the app accepts, or set AllowAnyIssuer")
	}
	issuers := make([]Issuer, len(cfg.Issuers))
	seen := map[string]bool{}
	for i, is := range cfg.Issuers {
		if err := is.validate(fmt.Sprintf("Issuers[%d]", i), &cfg, false); err != nil {
			return cfg, err
		}
		if seen[is.URL] {
			return cfg, configError(fmt.Sprintf("Issuers[%d].URL", i), "lists %q twice", is.URL)
		}
		seen[is.URL] = true
		issuers[i] = is
	}
	cfg.Issuers = issuers
	if cfg.AllowAnyIssuer {
		if err := cfg.DefaultIssuer.validate("DefaultIssuer", &cfg, true); err != nil {
			return cfg, err
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = otel.GetTracerProvider()
	}
	if cfg.MeterProvider == nil {
		cfg.MeterProvider = otel.GetMeterProvider()
	}
	setDefault(&cfg.Leeway, defaultLeeway)
	setDefault(&cfg.PendingLaunchTTL, defaultPendingLaunchTTL)
	setDefault(&cfg.LaunchTTL, defaultLaunchTTL)
	setDefault(&cfg.MaxFHIRResponseBytes, defaultMaxFHIRBytes)
	setDefault(&cfg.MaxLaunches, defaultMaxLaunches)
	setDefault(&cfg.MaxPendingLaunches, defaultMaxPendingLaunches)
	setDefault(&cfg.RefreshLockTTL, defaultRefreshLockTTL)
	if cfg.MaxIdleConnsPerEHR == 0 {
		cfg.MaxIdleConnsPerEHR = defaultMaxIdleConnsPerEHR
	}
	if cfg.Storage == nil {
		cfg.Storage = newMemoryStorage(cfg.Now)
	}
	cfg.StoreKeys = slices.Clone(cfg.StoreKeys) // the caller's slice may change
	switch {
	case cfg.MaxRetries == 0:
		cfg.MaxRetries = defaultMaxRetries
	case cfg.MaxRetries < 0:
		cfg.MaxRetries = 0
	}
	return cfg, nil
}

func setDefault[T int | int64 | time.Duration](p *T, def T) {
	if *p <= 0 {
		*p = def
	}
}

// standaloneScope turns an EHR-launch scope into a standalone one.
func standaloneScope(scope string) string {
	f := strings.Fields(scope)
	for i, s := range f {
		if s == "launch" {
			f[i] = "launch/patient"
		}
	}
	return strings.Join(f, " ")
}

func configError(field, format string, args ...any) error {
	return &Error{Op: "config", Code: CodeInvalidConfig, Description: "Config." + field + " " + fmt.Sprintf(format, args...)}
}
