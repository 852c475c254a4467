// Package multiinstance runs several instances of a SMART app in one test
// process, as a load balancer would: each instance with its own engine,
// discovery cache, key sets, session manager and connections, all sharing
// one real Redis or one real PostgreSQL, behind a round-robin reverse proxy
// that one browser (a cookie jar) talks to.
//
// It has only tests: it imports every layer of the module, which no other
// package may.
package multiinstance_test
