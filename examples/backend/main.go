// Command backend reads FHIR data as a SMART Backend Services client: no
// user, no browser, a client_credentials token got with a private_key_jwt
// assertion. Run without flags, it starts an embedded sandbox EHR,
// registers a key it generates there, and prints a sandbox patient:
//
//	go run ./examples/backend
//
// Against a real EHR, give the issuer, the client id the EHR registered
// and the private key whose public key (with its kid) the EHR knows:
//
//	go run ./examples/backend -issuer https://ehr.example/fhir -client-id ID \
//		-private-key key.pem -kid KID -scope "system/Patient.rs" -read Patient/123
//	go run ./examples/backend … -search 'Patient?name=Shaw'
//
// -read prints the resource as indented JSON; -search prints each resource
// found as one line of JSON (NDJSON). On failure it prints the error's
// code (such as token_exchange_failed) and the error on stderr, and exits
// 1; a wrong command line exits 2.
package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/go-jose/go-jose/v4"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/fhir"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/examples/internal/exampleapp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the EHR, the network or the key failed
	exitUsage  = 2 // a wrong command line
)

// sandboxClientID is the client id at the embedded sandbox.
const sandboxClientID = "example-backend"

// settings is the command line.
type settings struct {
	issuer, clientID, privateKey, kid, alg, scope, read, search string
	insecureHTTP                                                bool

	searchType   string     // -search's resource type
	searchParams url.Values // -search's parameters
}

// run runs the command with args, printing results on stdout and errors on
// stderr, and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	s, err := parseSettings(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "backend: %v\n", err)
		return exitUsage
	}
	auth, err := s.clientAuth()
	if err != nil {
		var usage *usageError
		if errors.As(err, &usage) {
			fmt.Fprintf(stderr, "backend: %v\n", err)
			return exitUsage
		}
		fmt.Fprintf(stderr, "backend: invalid_key: %v\n", err)
		return exitFailed
	}
	if err := s.fetch(ctx, auth, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "backend: %s: %v\n", errorCode(err), err)
		return exitFailed
	}
	return exitOK
}

// usageError is a wrong command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func parseSettings(args []string, output io.Writer) (*settings, error) {
	s := &settings{}
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&s.issuer, "issuer", "", "the FHIR base `URL` of the EHR. Without it, an embedded sandbox EHR runs, with a generated key registered there")
	fs.StringVar(&s.clientID, "client-id", "", "the app's backend client `id` at the EHR (default "+sandboxClientID+" at the sandbox)")
	fs.StringVar(&s.privateKey, "private-key", "", "PEM `file` of the private key (RSA of at least 2048 bits, or ECDSA on P-384); required with -issuer")
	fs.StringVar(&s.kid, "kid", "", "`kid` of the key as the EHR registered it (default the key's RFC 7638 thumbprint)")
	fs.StringVar(&s.alg, "alg", "", "`ES384 or RS384`: checked against the key, whose type decides the algorithm (default: the key's)")
	fs.StringVar(&s.scope, "scope", "system/Patient.rs", "the system `scopes` to ask for, space-separated")
	fs.BoolVar(&s.insecureHTTP, "insecure-http", false, "allow an http:// issuer, for local development only")
	fs.StringVar(&s.read, "read", "", "the `reference` to read, such as Patient/123 (default Patient/pat-1 at the sandbox)")
	fs.StringVar(&s.search, "search", "", "the `search` to run, such as 'Patient?name=Shaw' or 'Observation?patient=123'")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q; see -help", fs.Arg(0))
	case s.read != "" && s.search != "":
		return nil, errors.New("-read and -search exclude each other")
	case s.alg != "" && s.alg != "ES384" && s.alg != "RS384":
		return nil, fmt.Errorf("-alg is %q; SMART's client assertions are ES384 or RS384", s.alg)
	case s.privateKey == "" && s.kid != "":
		return nil, errors.New("-kid needs -private-key")
	}
	if s.issuer != "" {
		switch {
		case s.clientID == "":
			return nil, errors.New("-client-id is required with -issuer: the app's backend client id at the EHR")
		case s.privateKey == "":
			return nil, errors.New("-private-key is required with -issuer: Backend Services authenticate with private_key_jwt")
		case s.read == "" && s.search == "":
			return nil, errors.New("give -read or -search with -issuer")
		}
	}
	if s.issuer == "" && s.read == "" && s.search == "" {
		s.read = "Patient/pat-1"
	}
	if s.search != "" {
		typ, query, _ := strings.Cut(s.search, "?")
		params, err := url.ParseQuery(query)
		if err != nil || typ == "" || strings.Contains(typ, "/") {
			return nil, fmt.Errorf("-search %q is not Type?name=value&…", s.search)
		}
		s.searchType, s.searchParams = typ, params
	}
	return s, nil
}

// clientAuth returns the key the assertions are signed with: -private-key,
// or a new one for the sandbox (ES384, or RS384 with -alg RS384). -alg must
// be the key's algorithm.
func (s *settings) clientAuth() (core.ClientAuth, error) {
	if s.privateKey != "" {
		auth, err := exampleapp.PrivateKeyAuth(s.privateKey, s.kid)
		if err != nil {
			return core.ClientAuth{}, err
		}
		if alg := keyAlg(auth.Signer); s.alg != "" && s.alg != alg {
			return core.ClientAuth{}, &usageError{fmt.Sprintf("-alg is %s, but the key of -private-key signs %s: the key's type decides the algorithm", s.alg, alg)}
		}
		return auth, nil
	}
	var signer crypto.Signer
	var err error
	if s.alg == "RS384" {
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		signer, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	}
	if err != nil {
		return core.ClientAuth{}, err
	}
	return exampleapp.SignerAuth(signer, "")
}

// keyAlg is the algorithm the engine signs with a key: RS384 for RSA,
// ES384 for ECDSA (core.New refuses the keys that cannot).
func keyAlg(signer crypto.Signer) string {
	if _, ok := signer.Public().(*rsa.PublicKey); ok {
		return "RS384"
	}
	return "ES384"
}

// fetch builds the engine for the issuer (or the sandbox), gets the
// Backend Services client and reads or searches.
func (s *settings) fetch(ctx context.Context, auth core.ClientAuth, stdout, stderr io.Writer) error {
	iss, clientID, insecure := s.issuer, s.clientID, s.insecureHTTP
	if iss == "" {
		if clientID == "" {
			clientID = sandboxClientID
		}
		sandbox := startSandbox(clientID, auth)
		defer sandbox.Close()
		iss, insecure = sandbox.FHIRBaseURL(), true // plain http on loopback
	}
	eng, err := core.New(core.Config{
		ClientID:          clientID, // no CallbackURL: Backend Services only
		Issuers:           []core.Issuer{{URL: iss, Auth: auth}},
		AllowInsecureHTTP: insecure,
		Logger:            slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	c, err := eng.Backend(ctx, iss, s.scope)
	if err != nil {
		return err
	}
	if s.read != "" {
		var res json.RawMessage
		if err := c.Read(ctx, s.read, &res); err != nil {
			return err
		}
		return printIndented(stdout, res)
	}
	for res, err := range c.Search(ctx, s.searchType, s.searchParams) {
		if err != nil {
			return err
		}
		var line bytes.Buffer
		if err := json.Compact(&line, res); err != nil {
			return err
		}
		line.WriteByte('\n')
		if _, err := line.WriteTo(stdout); err != nil {
			return err
		}
	}
	return nil
}

// startSandbox starts the embedded sandbox EHR and registers the backend
// client there by its public key, with the system scopes it may get.
func startSandbox(clientID string, auth core.ClientAuth) *smarttest.Server {
	sandbox := smarttest.NewServer(smarttest.Options{})
	sandbox.RegisterClient(smarttest.Client{
		ID:          clientID,
		Auth:        smarttest.AuthPrivateKeyJWT,
		JWKS:        jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: auth.Signer.Public(), KeyID: auth.KeyID, Use: "sig"}}},
		SystemScope: "system/*.rs",
	})
	return sandbox
}

func printIndented(w io.Writer, res json.RawMessage) error {
	var out bytes.Buffer
	if err := json.Indent(&out, res, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err := out.WriteTo(w)
	return err
}

// errorCode is the stable code of err: the engine's Code, "fhir_" and the
// FHIR server's status for its error answers, or "failed".
func errorCode(err error) string {
	var ce *core.Error
	if errors.As(err, &ce) {
		return string(ce.Code)
	}
	var fe *fhir.Error
	if errors.As(err, &fe) && fe.StatusCode != 0 {
		return fmt.Sprintf("fhir_%d", fe.StatusCode)
	}
	return "failed"
}
