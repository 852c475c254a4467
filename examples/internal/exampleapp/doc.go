// Package exampleapp is the part the chi, echo and gin examples share: the
// command line, the embedded sandbox EHR, the session store, the app page
// and its templates. Each example's main.go holds only its router's wiring,
// a [Mount] function, and hands it to [Main].
//
// An example run with no -issuer starts core/smarttest as an embedded
// sandbox EHR on a random loopback port, registers the app there and
// prints the sandbox's patient list, the one URL to open. With -issuer it
// runs against real EHRs.
//
// Every flag has an environment variable equivalent, SMART_ and the flag's
// name in capitals with dashes as underscores (-client-id is
// SMART_CLIENT_ID); a flag given on the command line wins.
package exampleapp
