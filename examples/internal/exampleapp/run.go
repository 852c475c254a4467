package exampleapp

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alexedwards/scs/v2"
	"golang.org/x/oauth2"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/sessions"
)

// Mount builds an example's HTTP handler with its router: the SMART routes
// made from cfg (GET /fhir/launch, GET /fhir/callback, POST /fhir/logout),
// the app routes GET /fhir/, /fhir/api/context and /fhir/api/patient
// answered with app, and GET /healthz outside the browser session.
type Mount func(cfg adapters.Config, app *App) (http.Handler, error)

// Main runs the example named router until SIGINT or SIGTERM, with the
// process's arguments and environment, and exits 1 on failure (2 on a
// wrong command line).
func Main(router string, mount Mount) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, router, mount, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, new(*usageError)):
		fmt.Fprintf(os.Stderr, "%s: %v\n", router, err)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "%s: %v\n", router, err)
		os.Exit(1)
	}
}

// usageError is a wrong command line.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// shutdownTimeout bounds the wait for requests in flight at the end.
const shutdownTimeout = 10 * time.Second

// Run serves the example until ctx ends: it reads the command line (args,
// then the environment through getenv), opens the session store, starts the
// embedded sandbox EHR when no issuer is given, builds the handler with
// mount and listens. With -private-key it also serves the app's public key
// as a JWKS at JWKSPath, by which the sandbox registers the app. It logs to
// stdout, and prints there the URL to open (the sandbox's patient list) or,
// with real issuers, the launch URL, the redirect URI and the JWKS URL to
// register.
func Run(ctx context.Context, router string, mount Mount, args []string, getenv func(string) string, stdout io.Writer) error {
	s, err := parseSettings(router, args, getenv, stdout)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err}
	}
	log := slog.New(slog.NewTextHandler(stdout, nil))

	store, err := openStore(ctx, s.store)
	if err != nil {
		return err
	}
	defer store.close()

	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("%w; choose another address with -addr", err)
	}
	defer ln.Close()
	base, err := s.baseURLFor(ln.Addr())
	if err != nil {
		return &usageError{err}
	}
	auth, err := s.clientAuth()
	if err != nil {
		return err
	}
	tp, stopTracing, err := tracing(ctx, router, getenv, stdout)
	if err != nil {
		return &usageError{err}
	}
	defer stopTracing(context.WithoutCancel(ctx))
	mp, stopMetering, err := metering(ctx, router, getenv, stdout)
	if err != nil {
		return &usageError{err}
	}
	defer stopMetering(context.WithoutCancel(ctx))

	cfg := adapters.Config{
		Config: core.Config{
			ClientID:          s.clientID,
			Scope:             s.scope,
			CallbackURL:       base + CallbackPath,
			AllowInsecureHTTP: s.insecureHTTP,
			Logger:            log,
			StoreKeys:         s.storeKeys,
			TracerProvider:    tp, // nil: the global one
			MeterProvider:     mp, // nil: the global one
		},
		RedirectURL: base + PagePath,
		LogoutURL:   base + PagePath,
	}
	var sandbox *smarttest.Server
	if s.sandbox() {
		sandbox = startSandbox(&cfg, base, auth)
		defer sandbox.Close()
		log.Info("embedded sandbox EHR started", "url", sandbox.URL()+"/", "issuer", sandbox.FHIRBaseURL(), "client_id", cfg.ClientID)
		log.Warn("the embedded sandbox serves plain http on loopback, so AllowInsecureHTTP and the CookieInsecureHTTP cookie mode are on; " +
			"run with -issuer (https) for a real EHR")
	} else {
		for _, iss := range s.issuers {
			cfg.Issuers = append(cfg.Issuers, core.Issuer{URL: iss, Auth: auth})
		}
	}
	if strings.HasPrefix(base, "http://") && cfg.AllowInsecureHTTP {
		cfg.Cookies = sessions.CookieInsecureHTTP
	}
	if store.store != nil {
		// The one-line swap: the browser sessions and the SMART records
		// move to the store.
		sm := scs.New()
		sm.Store = store.store
		sm.ErrorFunc = sessions.StoreErrorFunc(log)
		cfg.SessionManager = sm
		// And the lock on the same server, so that instances behind a
		// load balancer refresh a launch once and keep every tab's launch.
		cfg.Locker = store.locker
	}

	handler, err := mount(cfg, &App{router: router, log: log})
	if err != nil {
		return err
	}
	if auth.Signer != nil {
		if handler, err = withJWKS(handler, auth); err != nil {
			return err
		}
	}
	if tp != nil {
		handler = serverSpans(tp, handler)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	log.Info("listening", "router", router, "app", base+PagePath, "launch_url", base+LaunchPath,
		"redirect_uri", base+CallbackPath, "issuers", issuerList(cfg.Issuers), "store", storeName(s.store),
		"locker", store.lockerName(), "client_auth", authMethod(auth))
	switch {
	case sandbox != nil:
		fmt.Fprintf(stdout, "\nOpen %s/ and click \"Launch app\" next to a patient.\n\n", sandbox.URL())
	case auth.Signer != nil:
		fmt.Fprintf(stdout, "\nLaunch URL:   %s\nRedirect URI: %s\nJWKS URL:     %s\nRegister all three with your EHR, then launch the app from it.\n\n",
			base+LaunchPath, base+CallbackPath, base+JWKSPath)
	default:
		fmt.Fprintf(stdout, "\nLaunch URL:   %s\nRedirect URI: %s\nRegister both with your EHR, then launch the app from it.\n\n",
			base+LaunchPath, base+CallbackPath)
	}

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startSandbox starts the embedded sandbox EHR, whose patient list links
// to the app's launch URL, registers the app's client there (by the URL
// of its JWKS when it signs), and makes it the only issuer of cfg. The
// sandbox is plain http on loopback, so cfg allows http.
func startSandbox(cfg *adapters.Config, base string, auth core.ClientAuth) *smarttest.Server {
	sandbox := smarttest.NewServer(smarttest.Options{AppLaunchURL: base + LaunchPath})
	if cfg.ClientID == "" {
		cfg.ClientID = sandboxClientID
	}
	client := smarttest.Client{
		ID:           cfg.ClientID,
		Auth:         smarttest.AuthMethod(authMethod(auth)),
		Secret:       string(auth.Secret),
		RedirectURIs: []string{cfg.CallbackURL},
	}
	if auth.Signer != nil {
		client.JWKSURL = base + JWKSPath
	}
	sandbox.RegisterClient(client)
	cfg.Issuers = []core.Issuer{{URL: sandbox.FHIRBaseURL(), Auth: auth}}
	cfg.AllowInsecureHTTP = true
	return sandbox
}

// withJWKS answers JWKSPath with the public key of auth's signer, and
// every other path with app.
func withJWKS(app http.Handler, auth core.ClientAuth) (http.Handler, error) {
	jwks, err := core.JWKSHandler(auth)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == JWKSPath {
			jwks.ServeHTTP(w, r)
			return
		}
		app.ServeHTTP(w, r)
	}), nil
}

// authMethod names the token endpoint authentication of auth, as OAuth
// does.
func authMethod(auth core.ClientAuth) string {
	switch {
	case auth.Signer != nil:
		return "private_key_jwt"
	case auth.Secret != "" && auth.AuthStyle == oauth2.AuthStyleInParams:
		return "client_secret_post"
	case auth.Secret != "":
		return "client_secret_basic"
	}
	return "none"
}

func issuerList(issuers []core.Issuer) string {
	var urls []string
	for _, is := range issuers {
		urls = append(urls, is.URL)
	}
	return strings.Join(urls, " ")
}

// storeName is -store without a password.
func storeName(spec string) string {
	if u, err := url.Parse(spec); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	return spec
}
