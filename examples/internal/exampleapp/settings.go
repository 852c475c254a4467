package exampleapp

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/fhirware/smart/core"
)

// settings is the command line of an example, after flags and environment.
type settings struct {
	addr         string
	baseURL      string
	issuers      []string
	clientID     string
	clientSecret string
	privateKey   string
	kid          string
	scope        string
	store        string
	storeKeys    []core.Secret // Config.StoreKeys, from -store-key
	insecureHTTP bool
}

// sandbox reports whether the embedded sandbox EHR runs: when no issuer is
// given.
func (s *settings) sandbox() bool { return len(s.issuers) == 0 }

// sandboxClientID is the client id the app uses at the embedded sandbox
// when -client-id is not given.
const sandboxClientID = "example-app"

// envName is the environment variable of a flag: SMART_ and its name in
// capitals, dashes as underscores.
func envName(flagName string) string {
	return "SMART_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseSettings reads the flags in args, each defaulting to its environment
// variable (read with getenv), then to its built-in default.
func parseSettings(name string, args []string, getenv func(string) string, output io.Writer) (*settings, error) {
	s := &settings{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	str := func(p *string, flagName, def, usage string) {
		if v := getenv(envName(flagName)); v != "" {
			def = v
		}
		fs.StringVar(p, flagName, def, usage+" (env "+envName(flagName)+")")
	}
	str(&s.addr, "addr", "127.0.0.1:8080", "`host:port` the app listens on")
	str(&s.baseURL, "base-url", "", "the app's public `URL`; the launch URL is it + /fhir/launch, the redirect URI it + /fhir/callback (default http:// + the address listened on)")
	issuers := &listFlag{values: strings.Fields(strings.ReplaceAll(getenv(envName("issuer")), ",", " "))}
	fs.Var(issuers, "issuer", "a FHIR base `URL` the app accepts launches from; repeat for several (env "+envName("issuer")+", space or comma separated). Without any, the embedded sandbox EHR runs and is the only issuer")
	str(&s.clientID, "client-id", "", "the app's client `id` at the EHR (default "+sandboxClientID+" at the sandbox)")
	str(&s.clientSecret, "client-secret", "", "client `secret` for client_secret_basic; prefer the environment variable, which ps does not show")
	str(&s.privateKey, "private-key", "", "PEM `file` of the private key for private_key_jwt (PKCS#8, PKCS#1 or SEC 1)")
	str(&s.kid, "kid", "", "`kid` of the private key in the app's published JWKS (default the key's RFC 7638 thumbprint)")
	str(&s.scope, "scope", "", "the `scope` requested at launch (default: the library's, launch openid fhirUser patient/*.read offline_access)")
	str(&s.store, "store", "memory", "session `store`: memory, redis://host:port[/db] or postgres://…; the last two also lock, for several instances")
	var storeKey string
	str(&storeKey, "store-key", "", "base64 of 32 random `bytes` (openssl rand -base64 32) that seal the SMART records in the store with AES-256-GCM; "+
		"comma-separated to rotate: the first seals, every one opens. Prefer the environment variable, which ps does not show")
	insecure, _ := strconv.ParseBool(getenv(envName("insecure-http")))
	fs.BoolVar(&s.insecureHTTP, "insecure-http", insecure, "allow http:// issuers and a session cookie without Secure, for local development only (env "+envName("insecure-http")+"; on by itself for the embedded sandbox)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q; see -help", fs.Arg(0))
	}
	s.issuers = issuers.values
	keys, err := parseStoreKeys(storeKey)
	if err != nil {
		return nil, err
	}
	s.storeKeys = keys
	if !s.sandbox() && s.clientID == "" {
		return nil, errors.New("-client-id is required with -issuer: the app's client id at the EHR")
	}
	if s.clientSecret != "" && s.privateKey != "" {
		return nil, errors.New("-client-secret and -private-key exclude each other: choose client_secret_basic or private_key_jwt")
	}
	if s.privateKey == "" && s.kid != "" {
		return nil, errors.New("-kid needs -private-key")
	}
	return s, nil
}

// parseStoreKeys reads -store-key: base64 keys (standard or URL alphabet,
// padded or not), comma-separated, each of 32 bytes, as the standard base64
// that Config.StoreKeys takes. Its errors never show a key.
func parseStoreKeys(v string) ([]core.Secret, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var keys []core.Secret
	for i, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		var key []byte
		var err error
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if key, err = enc.DecodeString(f); err == nil {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("-store-key: key %d is not base64; make one with: openssl rand -base64 32", i+1)
		}
		if len(key) != 32 {
			return nil, fmt.Errorf("-store-key: key %d is %d bytes; each must be 32 random bytes in base64 (openssl rand -base64 32)", i+1, len(key))
		}
		keys = append(keys, core.Secret(base64.StdEncoding.EncodeToString(key)))
	}
	return keys, nil
}

// listFlag is a repeatable flag. The first value given on the command line
// replaces the default taken from the environment.
type listFlag struct {
	values []string
	set    bool
}

func (l *listFlag) String() string { return strings.Join(l.values, " ") }

func (l *listFlag) Set(v string) error {
	if !l.set {
		l.values, l.set = nil, true
	}
	l.values = append(l.values, v)
	return nil
}

// baseURLFor returns the app's public URL: -base-url, or http:// and the
// address the app listens on, with an unspecified host (":8080",
// "0.0.0.0:8080") shown as 127.0.0.1.
func (s *settings) baseURLFor(ln net.Addr) (string, error) {
	if s.baseURL != "" {
		u, err := url.Parse(s.baseURL)
		if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return "", fmt.Errorf("-base-url %q is not an absolute http(s) URL", s.baseURL)
		}
		return strings.TrimRight(s.baseURL, "/"), nil
	}
	host, port, err := net.SplitHostPort(ln.String())
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// clientAuth returns the client authentication the flags ask for: private
// key JWT, client secret (basic) or a public client.
func (s *settings) clientAuth() (core.ClientAuth, error) {
	switch {
	case s.privateKey != "":
		signer, err := readPrivateKey(s.privateKey)
		if err != nil {
			return core.ClientAuth{}, err
		}
		kid := s.kid
		if kid == "" {
			// SMART asks for a kid in every assertion: name the key by
			// its thumbprint, which stays the same across restarts.
			if kid, err = thumbprint(signer); err != nil {
				return core.ClientAuth{}, fmt.Errorf("-private-key: %s: %w", s.privateKey, err)
			}
		}
		return core.ClientAuth{Signer: signer, KeyID: kid}, nil
	case s.clientSecret != "":
		return core.ClientAuth{Secret: core.Secret(s.clientSecret)}, nil
	}
	return core.ClientAuth{}, nil
}

// readPrivateKey reads an RSA or ECDSA private key from a PEM file.
func readPrivateKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-private-key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("-private-key: %s holds no PEM block", path)
	}
	var key any
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("-private-key: %s: %w", path, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("-private-key: %s holds a %T, not a signing key", path, key)
	}
	return signer, nil
}

// thumbprint is the RFC 7638 SHA-256 thumbprint of signer's public key,
// base64url-encoded.
func thumbprint(signer crypto.Signer) (string, error) {
	t, err := (&jose.JSONWebKey{Key: signer.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(t), nil
}
